"""The settings schema is the one declaration: both dataclasses, ops.json, the template, the
task options' help and every range check follow from its rows."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import types
import typing
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.host import schema
from ibkr_ops.host.config import HostConfig
from ibkr_ops.remote.artifacts import tools_zip
from ibkr_ops.remote.facts import MODE_PROBE, parse_facts
from ibkr_ops.render import host_config
from ibkr_ops.settings import Deployment, credentials_template, deployment_from_env, parse_deployment
from ibkr_ops.tasks import deploy, hosts

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "ibkr" / "credentials.env.template"
BASE = {"IBKR_USERNAME": "alice", "IBKR_PASSWORD": "pw-123", "IBKR_TRADING_MODE": "paper",
        "TWS_MAJOR_VRSN": "1030"}
INTS = [s for s in schema.SETTINGS if isinstance(s, schema.Int)]


def test_every_deployment_field_is_a_credentials_row_in_order_with_its_default() -> None:
    fields = dataclasses.fields(Deployment)
    assert [f.name for f in fields] == [s.name for s in schema.IN_FILE]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            assert f.default == schema.BY_NAME[f.name].default, f.name


def test_every_hostconfig_field_is_a_host_row_with_its_default_and_type() -> None:
    hints = typing.get_type_hints(HostConfig)
    fields = dataclasses.fields(HostConfig)
    assert sorted(f.name for f in fields) == sorted(s.name for s in schema.HOST)
    for f in fields:
        default = schema.BY_NAME[f.name].default
        assert f.default == default, f.name
        expected = hints[f.name]
        origin = typing.get_origin(expected)
        assert isinstance(default, expected if origin is types.UnionType else origin or expected), \
            f.name


def test_a_setting_both_sides_have_has_one_default() -> None:
    shared = {f.name for f in dataclasses.fields(Deployment)} & \
             {f.name for f in dataclasses.fields(HostConfig)}
    assert len(shared) >= 16
    d = deployment_from_env(BASE)
    assert all(getattr(d, name) == getattr(HostConfig(), name) for name in shared)
    # ops.json of a default deployment is HostConfig's defaults: nothing is renamed on the way.
    assert host_config(d) == HostConfig()


def test_memory_high_and_the_ceiling_are_one_quantity_derived_from_memory_max() -> None:
    d = deployment_from_env({**BASE, "IBKR_MEMORY_MAX_MB": "3072"})
    assert host_config(d).memory_ceiling_mb == d.memory_ceiling_mb == 2304
    assert schema.MEMORY_CEILING_MB.derived and not schema.MEMORY_CEILING_MB.key


def test_names_and_keys_are_unique() -> None:
    assert len(schema.BY_NAME) == len(schema.SETTINGS)
    assert len(schema.BY_KEY) == len(schema.IN_FILE)
    assert all(s.key.isupper() and s.section for s in schema.IN_FILE)


@pytest.mark.parametrize("setting", [s for s in schema.IN_FILE if s.default not in (None, (), "")],
                         ids=lambda s: s.key)
def test_a_default_written_to_the_file_reads_back_as_itself(setting: schema.Setting[Any]) -> None:
    assert setting.parse(setting.dump(setting.default)) == setting.default


@pytest.mark.parametrize("setting", INTS, ids=lambda s: s.name)
def test_a_range_check_refuses_just_outside_and_takes_its_bounds(setting: schema.Int) -> None:
    assert setting.check(setting.low) == setting.low
    with pytest.raises(schema.Invalid, match=f"not a number (from|of at least) {setting.low}"):
        setting.check(setting.low - 1)
    if setting.high is not None:
        assert setting.parse(str(setting.high)) == setting.high
        with pytest.raises(schema.Invalid):
            setting.parse(str(setting.high + 1))
    if setting.key:  # the hint an error message ends with names the row's own bound
        assert str(setting.low) in setting.hint_text


@pytest.mark.parametrize(("name", "refused", "taken"), [
    ("api_port", 1023, 1024), ("api_port", 65536, 65535),
    ("command_server_port", 1023, 1024),
    ("health_interval_s", 9, 10), ("health_interval_s", 3601, 3600),
    ("health_client_id", 0, 1),
    ("hang_restart_after", 61, 60), ("bot_idle_alert_min", 481, 480),
])
def test_the_operator_and_the_host_refuse_the_same_boundary(name: str, refused: int,
                                                            taken: int) -> None:
    """The ranges that used to differ (ports 1-65535 on the host, 1024-65535 in the file;
    the health interval and clientId) are one range on both sides."""
    key = schema.BY_NAME[name].key
    ports = {"IBKR_COMMAND_SERVER_PORT": "7462"} if name == "api_port" else {}
    with pytest.raises(UsageError, match=key):
        deployment_from_env({**BASE, **ports, key: str(refused)})
    with pytest.raises(UsageError, match=name):
        HostConfig.from_dict({name: refused})
    assert getattr(deployment_from_env({**BASE, **ports, key: str(taken)}), name) == taken
    assert getattr(HostConfig.from_dict({name: taken}), name) == taken


def test_the_shipped_template_is_the_schemas() -> None:
    assert TEMPLATE.read_text() == credentials_template(), (
        "regenerate it: python -c 'from ibkr_ops.settings import credentials_template; "
        "print(credentials_template(), end=\"\")' > deploy/ibkr/credentials.env.template")


def test_every_example_in_the_template_is_a_valid_value() -> None:
    """Uncommenting any example line gives a file that loads."""
    lines = [line[1:] if line.startswith("#IBKR_") else line
             for line in credentials_template().splitlines()]
    text = "\n".join(lines).replace("IBKR_USERNAME=\n", "IBKR_USERNAME=alice\n") \
        .replace("IBKR_PASSWORD=\n", "IBKR_PASSWORD=pw\n") \
        .replace("webhooks/ID/TOKEN", "webhooks/123/TOKEN")
    d = parse_deployment(text)
    assert d.twofa_device == "IB Key" and d.blackout_windows == ("Mon..Fri 16:00-16:20",
                                                                  "Sun 17:00-18:00")


def test_every_setting_in_the_file_is_explained_in_the_template() -> None:
    text = credentials_template()
    assert all(f"{s.key}=" in text for s in schema.IN_FILE)
    assert all(s.comment for s in schema.IN_FILE if s is not schema.TIMEZONE)


@pytest.mark.parametrize("task", [hosts.install, deploy.render], ids=lambda t: t.name)
def test_the_setting_options_help_is_the_schemas(task: Any) -> None:
    for option, setting in schema.OPTIONS.items():
        assert task.help[option] == setting.option_help
        assert setting.key in task.help[option]
    assert "1024-65535" in schema.API_PORT.option_help
    assert "auto, warm or cold" in schema.RESTART_MODE.option_help


def test_the_tools_zip_carries_the_schema() -> None:
    with zipfile.ZipFile(io.BytesIO(tools_zip())) as archive:
        assert "ibkr_ops/host/schema.py" in archive.namelist()


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_the_installed_mode_is_read_with_the_host_tools_own_reader(tmp_path: Path,
                                                                   mode: str) -> None:
    """The facts script's mode line runs the shipped zip's HostConfig on the rendered
    ops.json, in a python without site-packages, as a bare host has."""
    archive = tmp_path / "ibkr_ops.zip"
    archive.write_bytes(tools_zip())
    ops = tmp_path / "ops.json"
    ops.write_text(host_config(deployment_from_env({**BASE, "IBKR_TRADING_MODE": mode})).to_json())
    ran = subprocess.run([sys.executable, "-I", "-S", "-c", MODE_PROBE, str(archive), str(ops)],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert parse_facts(ran.stdout).trading_mode == mode
    ops.write_text('{"trading_mode": "demo"}')
    broken = subprocess.run([sys.executable, "-I", "-S", "-c", MODE_PROBE, str(archive), str(ops)],
                            capture_output=True, text=True, check=False, cwd=tmp_path)
    assert broken.returncode != 0 and "MODE" not in broken.stdout


def test_the_deployments_literal_types_are_the_rows_choices() -> None:
    """mypy's view of a choice (``Literal[...]``) spells the same words as the row."""
    hints = typing.get_type_hints(Deployment)
    literals = {name: typing.get_args(hint) for name, hint in hints.items()
                if typing.get_origin(hint) is typing.Literal}
    assert len(literals) == 5
    for name, words in literals.items():
        setting = schema.BY_NAME[name]
        assert isinstance(setting, schema.Choice) and words == setting.choices, name
