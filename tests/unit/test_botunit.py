"""`invoke install --bot-unit`: names, the drop-in systemd accepts, and its place in the plan."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit
from test_remote_plan import HEALTHY_HOST
from test_render import needs_analyze, reference

from ibkr_ops.botunit import dropins, service_name, service_names
from ibkr_ops.errors import UsageError
from ibkr_ops.remote.facts import parse_facts
from ibkr_ops.remote.install import plan_items
from ibkr_ops.remote.plan import make_plan
from ibkr_ops.render import render
from ibkr_ops.tasks.hosts import install as install_task

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"


@pytest.mark.parametrize(("given", "name"), [
    ("bot", "bot.service"), ("bot.service", "bot.service"), ("my-bot_2", "my-bot_2.service"),
    ("bot@paper", "bot@paper.service"), ("bot@.service", "bot@.service"),
    ("a\\x2db", "a\\x2db.service"),
])
def test_service_names_get_their_suffix(given: str, name: str) -> None:
    assert service_name(given) == name


@pytest.mark.parametrize(("given", "message"), [
    ("", "not a systemd service name"), ("my bot", "not a systemd service name"),
    ("../etc/passwd", "not a systemd service name"), ("bot/x", "not a systemd service name"),
    ("@x", "not a systemd service name"), ("b" * 250, "not a systemd service name"),
    ("bot.timer", "not a service"), ("bot.socket", "not a service"),
    ("ibkr-gateway", "the Gateway's own units"), ("xvfb.service", "the Gateway's own units"),
])
def test_bad_names_are_one_clear_line(given: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        service_name(given)
    assert "\n" not in str(info.value) and repr(given) in str(info.value)


def test_each_service_once_in_order() -> None:
    assert service_names(["b", "a.service", "b.service"]) == ("b.service", "a.service")


def test_dropin_orders_after_the_gateway_and_waits_for_it() -> None:
    (f,) = dropins(("bot.service",), 120)
    assert (f.path, f.mode, f.owner, f.is_unit) == (
        "/etc/systemd/system/bot.service.d/ibkr-gateway.conf", 0o644, "root", True)
    lines = f.content.decode().splitlines()
    for line in ("[Unit]", "Wants=ibkr-gateway.service", "After=ibkr-gateway.service",
                 "[Service]", "ExecStartPre=/usr/local/bin/ibkr-health-check --wait 120",
                 "TimeoutStartSec=180"):
        assert line in lines


@needs_analyze
def test_systemd_analyze_verify_accepts_a_bot_with_the_dropin(tmp_path: Path) -> None:
    for f in render(reference("paper", tmp_path)):
        if f.path.endswith("/ibkr-gateway.service"):
            (tmp_path / "ibkr-gateway.service").write_bytes(f.content)
    shutil.copy(EXAMPLES / "trading-bot.service", tmp_path)
    (f,) = dropins(("trading-bot.service",), 300)
    (tmp_path / "trading-bot.service.d").mkdir()
    (tmp_path / "trading-bot.service.d" / "ibkr-gateway.conf").write_bytes(f.content)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "trading-bot.service")],
                            capture_output=True, text=True, check=False)
    # As in test_render: only executables that exist on an installed host may be reported.
    problems = [ln for ln in (result.stdout + result.stderr).splitlines()
                if ln.strip() and "is not executable: No such file or directory" not in ln]
    assert problems == [], "\n".join(problems)
    # It was read: systemd names the wait's executable it would run.
    assert "/usr/local/bin/ibkr-health-check" in result.stdout + result.stderr


def test_dropin_is_planned_written_and_then_unchanged() -> None:
    (f,) = dropins(("bot.service",), 300)
    plan = make_plan(parse_facts(HEALTHY_HOST), [f], None, None)
    assert plan.files == [f] and plan.daemon_reload
    assert (f.path, "changed") in plan_items(plan, dry_run=False)
    assert plan.gateway_action is None  # the Gateway does not read it: no restart
    again = HEALTHY_HOST + f"\nSUM {f.path} {hashlib.sha256(f.content).hexdigest()}"
    plan = make_plan(parse_facts(again), [f], None, None)
    assert plan.files == [] and not plan.daemon_reload
    assert (f.path, "unchanged") in plan_items(plan, dry_run=False)


def test_reference_renders_hold_no_dropin(tmp_path: Path) -> None:
    assert not any(".service.d/" in f.path for f in render(reference("paper", tmp_path)))


@pytest.mark.parametrize(("args", "message"), [
    ({"bot_unit": ["my bot"]}, "--bot-unit 'my bot': not a systemd service name"),
    ({"bot_unit": ["bot"], "bot_wait": "soon"}, "--bot-wait 'soon': give whole seconds"),
])
def test_install_task_refuses_before_any_host_is_contacted(
        tmp_path: Path, args: dict[str, object], message: str) -> None:
    creds = tmp_path / "paper.env"
    shutil.copy(ROOT / "deploy" / "reference" / "paper.env", creds)
    os.chmod(creds, 0o600)
    with pytest.raises(Exit) as info:
        # Port 1 refuses connections: had it been tried, the error would say "cannot connect".
        install_task(Context(), host=["root@127.0.0.1:1"], credentials=[str(creds)],
                     **args)  # type: ignore[arg-type]
    assert info.value.code == 2
    assert str(info.value.message).startswith(f"error: {message}")
    assert "\n" not in str(info.value.message)


def test_readme_shows_the_example_bot_and_the_dropin_as_they_are() -> None:
    readme = (ROOT / "README.md").read_text()
    for example in ("trading_bot.py", "trading-bot.service"):
        assert textwrap.indent((EXAMPLES / example).read_text(), "    ") in readme, example
    (f,) = dropins(("trading-bot.service",), 300)
    settings = [ln for ln in f.content.decode().splitlines() if not ln.startswith("#")]
    assert textwrap.indent("\n".join(settings), "    ") in readme
