"""The host layout: today's names exactly, and an instance's names everywhere render reaches."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_remote_plan import HEALTHY_HOST
from test_render import needs_analyze, reference

from ibkr_ops import resources
from ibkr_ops.botunit import dropins
from ibkr_ops.host.config import metrics_path
from ibkr_ops.layout import DEFAULT, TOOLS, TOOLS_ZIP, UNITS, Layout
from ibkr_ops.remote.artifacts import tools_zip
from ibkr_ops.remote.facts import facts_command, parse_facts
from ibkr_ops.remote.plan import make_plan
from ibkr_ops.render import host_config, render

PAPER = Layout("paper")


def test_default_layout_is_todays_single_gateway_host() -> None:
    """Existing hosts keep working only if every name stays exactly as it was installed."""
    assert Layout(None) == DEFAULT
    assert (DEFAULT.credentials, DEFAULT.config_ini, DEFAULT.ops_json, DEFAULT.backup_dir) == (
        "/etc/ibkr/credentials.env", "/etc/ibkr/config.ini", "/etc/ibkr/ops.json",
        "/etc/ibkr/backup")
    assert (DEFAULT.state_dir, DEFAULT.log_dir, DEFAULT.needrestart_conf) == (
        "/var/lib/ibkr-ops", "/var/log/ibkr", "/etc/needrestart/conf.d/ibkr-ops.conf")
    assert (DEFAULT.ibc_dir, DEFAULT.tools_zip, DEFAULT.health_check_tool) == (
        "/opt/ibc", "/usr/local/lib/ibkr-ops/ibkr_ops.zip", "/usr/local/bin/ibkr-health-check")
    assert DEFAULT.units == (
        "xvfb.service", "ibkr-gateway.service", "ibkr-gateway-restart.service",
        "ibkr-gateway-restart.timer", "ibkr-health-check.service", "ibkr-health-check.timer",
        "ibkr-login-watch.service")
    assert DEFAULT.enabled_units == ("xvfb.service", "ibkr-gateway.service",
                                     "ibkr-gateway-restart.timer", "ibkr-health-check.timer",
                                     "ibkr-login-watch.service")
    assert DEFAULT.unit_path(DEFAULT.gateway_unit) == "/etc/systemd/system/ibkr-gateway.service"
    assert DEFAULT.dropin_path("bot.service") == "/etc/systemd/system/bot.service.d/ibkr-gateway.conf"
    home = DEFAULT.home("trader")
    assert (home, DEFAULT.settings_dir(home), DEFAULT.gateway_dir(home, "10.37")) == (
        "/home/trader", "/home/trader/Jts", "/home/trader/Jts/ibgateway/10.37")
    assert DEFAULT.root_dirs == ("/etc/ibkr", "/var/lib/ibkr-ops", "/usr/local/lib/ibkr-ops")
    assert DEFAULT.user_dirs(home) == ("/var/log/ibkr", "/home/trader/Jts")


def test_an_instance_has_its_own_units_files_and_state_and_shares_the_rest() -> None:
    assert PAPER.units == tuple(u.replace(".", "@paper.", 1) for u in UNITS)
    assert PAPER.gateway_unit == "ibkr-gateway@paper.service"
    assert (PAPER.config_ini, PAPER.state_dir, PAPER.log_dir, PAPER.backup_dir) == (
        "/etc/ibkr/paper/config.ini", "/var/lib/ibkr-ops/paper", "/var/log/ibkr/paper",
        "/etc/ibkr/paper/backup")
    assert PAPER.settings_dir("/home/trader") == "/home/trader/Jts-paper"
    assert PAPER.needrestart_conf == "/etc/needrestart/conf.d/ibkr-ops-paper.conf"
    assert PAPER.dropin_name == "ibkr-gateway-paper.conf"
    own = ("credentials", "config_ini", "ops_json", "backup_dir", "state_dir", "log_dir",
           "needrestart_conf", "dropin_name", *(f"{n}_unit" for n in ("display", "gateway",
                                                                      "watch")),
           "restart_service", "restart_timer", "health_service", "health_timer")
    assert all(getattr(PAPER, n) != getattr(DEFAULT, n) for n in own)
    assert not set(PAPER.units) & set(Layout("live").units)
    shared = ("ibc_dir", "tools_zip", "health_check_tool", "notify_tool", "restart_tool")
    assert all(getattr(PAPER, n) == getattr(DEFAULT, n) for n in shared)
    assert PAPER.gateway_dir("/home/trader", "10.37") == DEFAULT.gateway_dir("/home/trader", "10.37")


@pytest.mark.parametrize(("name", "why"), [
    ("Paper", "lower-case"), ("pa.per", "lower-case"), ("a@b", "lower-case"), ("", "lower-case"),
    ("1live", "starting with a letter"), ("x" * 33, "1-32"), ("backup", "taken"),
    ("metrics", "taken"), ("../etc", "lower-case"),
])
def test_an_instance_name_systemd_or_the_directories_would_refuse_is_refused(
        name: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Layout(name)


def _defaults_named(text: str) -> list[str]:
    """Every name of the default layout's own (not shared) in a rendered file."""
    patterns = [rf"(?<![@\w-]){re.escape(u)}" for u in UNITS]
    # Shared by every Gateway of a host: the metrics folder and the state root's login lock.
    patterns += [r"/etc/ibkr/(?!paper/)", r'/var/lib/ibkr-ops(?!/paper|/metrics[ /]|")',
                 r"ibkr_gateway\.prom",
                 r"/var/log/ibkr(?!/paper)", r"settings-(dir|path)=/home/trader/Jts(?!-paper)"]
    return [m.group(0) for p in patterns for m in re.finditer(p, text)]


def test_every_rendered_name_comes_from_the_layout(tmp_path: Path) -> None:
    """An instance's render names none of the default layout's paths or units, so no template
    holds one (the default render's are checked byte for byte against the goldens)."""
    d = reference("paper", tmp_path)
    files = render(d, PAPER)
    assert {f.path for f in files} == {
        PAPER.credentials, PAPER.config_ini, PAPER.ops_json, PAPER.needrestart_conf,
        *(PAPER.unit_path(u) for u in PAPER.units)}
    found = {f.path: _defaults_named(f.content.decode()) for f in files}
    assert {path: names for path, names in found.items() if names} == {}
    gateway = next(f for f in files if f.path == PAPER.unit_path(PAPER.gateway_unit))
    assert f"--ibc-ini={PAPER.config_ini} " in gateway.content.decode()
    assert "Requires=xvfb@paper.service" in gateway.content.decode()
    dropin = dropins(("bot.service",), 60, PAPER)[0]
    assert dropin.path == "/etc/systemd/system/bot.service.d/ibkr-gateway-paper.conf"
    assert _defaults_named(dropin.content.decode()) == []
    assert "After=ibkr-gateway@paper.service" in dropin.content.decode()


def test_the_host_tools_settings_name_the_instances_units_and_directories(tmp_path: Path) -> None:
    config = host_config(reference("paper", tmp_path), PAPER)
    assert (config.gateway_unit, config.display_unit, config.state_dir, config.log_dir,
            config.credentials_file) == (PAPER.gateway_unit, PAPER.display_unit,
                                         PAPER.state_dir, PAPER.log_dir, PAPER.credentials)


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_needrestart_reads_the_override_as_the_units_names(tmp_path: Path) -> None:
    """needrestart's configuration is Perl: Perl itself says which units it matches ('@' in
    an instance name must not be read as an array)."""
    for layout in (DEFAULT, PAPER):
        conf = next(f for f in render(reference("paper", tmp_path), layout)
                    if f.path == layout.needrestart_conf)
        path = tmp_path / f"{layout.instance}.conf"
        path.write_bytes(conf.content)
        probe = ("our %nrconf; do $ARGV[0]; die $@ if $@; for my $u (@ARGV[1..$#ARGV]) "
                 "{ print \"$u\\n\" if grep { $u =~ $_ } keys %{$nrconf{override_rc}} }")
        wanted = (layout.display_unit, layout.gateway_unit, layout.restart_service,
                  layout.health_service)
        asked = [*wanted, layout.watch_unit, "xvfb@paperx.service", "nginx.service"]
        out = subprocess.run(["perl", "-w", "-e", probe, str(path), *asked],
                             capture_output=True, text=True, check=True)
        assert out.stderr == "" and out.stdout.split() == list(wanted)


@needs_analyze
def test_systemd_analyze_verify_accepts_an_instances_units(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    for f in render(reference("paper", tmp_path), PAPER):
        if f.is_unit:
            (unit_dir / Path(f.path).name).write_bytes(f.content)
    result = subprocess.run(["systemd-analyze", "verify", *(str(unit_dir / u) for u in PAPER.units)],
                            capture_output=True, text=True, check=False)
    problems = [ln for ln in (result.stdout + result.stderr).splitlines()
                if ln.strip() and "is not executable: No such file or directory" not in ln]
    assert problems == [], "\n".join(problems)


def test_plan_and_facts_ask_about_the_layouts_units() -> None:
    facts = parse_facts(HEALTHY_HOST)  # the default Gateway's units, all enabled and active
    plan = make_plan(facts, [], None, None, layout=PAPER)
    assert plan.enable == list(PAPER.enabled_units)
    assert plan.gateway_action == "start"  # the instance's Gateway is not running
    assert make_plan(facts, [], None, None).gateway_action is None
    command = facts_command([], PAPER.enabled_units, "trader", "/home/trader/Jts/ibgateway/10.37",
                            PAPER)
    assert "GATEWAY_UNIT=ibkr-gateway@paper.service" in command
    assert "OPS_JSON=/etc/ibkr/paper/ops.json" in command


def test_the_tools_zip_alone_runs_the_host_tools_with_the_layouts_defaults(tmp_path: Path) -> None:
    """A host has the zip and python3 only: the layout must be in it."""
    archive = tmp_path / "ibkr_ops.zip"
    archive.write_bytes(tools_zip())
    assert "ibkr_ops/layout.py" in zipfile.ZipFile(archive).namelist()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from ibkr_ops.host.config import DEFAULT_PATH, HostConfig; import ibkr_ops.host.cli; "
            "c = HostConfig(); print(DEFAULT_PATH, c.gateway_unit, c.state_dir, "
            "c.credentials_file, ibkr_ops.host.cli.__file__)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(archive)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[:4] == [DEFAULT.ops_json, DEFAULT.gateway_unit, DEFAULT.state_dir,
                       DEFAULT.credentials]
    assert out[4].startswith(str(archive))


def test_every_shim_loads_the_zip_the_layout_installs() -> None:
    """The shims find the zip before they can import anything: the one copy of its path,
    held to the layout's here."""
    shims = sorted(p for p in resources.scripts().iterdir() if p.is_file())
    assert [p.name for p in shims] == sorted(TOOLS)
    for shim in shims:
        assert f'LIB = "{TOOLS_ZIP}"' in shim.read_text(), shim.name


def test_an_instances_units_tell_every_host_tool_which_gateway(tmp_path: Path) -> None:
    """A tool reading the host's settings alone would not know which Gateway it serves."""
    assert (DEFAULT.instance_args, PAPER.instance_args) == ("", " --instance paper")
    files = render(reference("paper", tmp_path), PAPER)
    dropin = dropins(("bot.service",), 60, PAPER)[0]
    calls = [line.split("=", 1)[1] for f in [*files, dropin] if f.is_unit or f is dropin
             for line in f.content.decode().splitlines()
             if line.startswith("Exec") and "/usr/local/bin/" in line]
    tools = {call.split()[0].rsplit("/", 1)[1] for call in calls}
    # The rest run over SSH (`invoke notify`, `screenshot`, `vnc`), told the instance there.
    assert tools == set(TOOLS) - {"ibkr-notify", "ibkr-screenshot", "ibkr-vnc-server"}
    assert [c for c in calls
            if "--instance paper" not in c and "ibkr-gateway-prepare" not in c] == []


def test_instances_keep_their_state_apart_and_their_metrics_in_the_one_folder(
        tmp_path: Path) -> None:
    """node_exporter reads one folder: every Gateway of a host writes its own file there."""
    d = reference("paper", tmp_path)
    default, paper, live = (host_config(d, layout) for layout in (DEFAULT, PAPER, Layout("live")))
    assert (default.instance, paper.instance, live.instance) == (None, "paper", "live")
    assert default.metrics_file == ""  # the default layout's ops.json keeps its old value
    assert [metrics_path(c) for c in (default, paper, live)] == [
        "/var/lib/ibkr-ops/metrics/ibkr_gateway.prom",
        "/var/lib/ibkr-ops/metrics/ibkr_gateway-paper.prom",
        "/var/lib/ibkr-ops/metrics/ibkr_gateway-live.prom"]
    assert DEFAULT.metrics_file == metrics_path(default)
    assert len({paper.state_dir, live.state_dir, default.state_dir}) == 3
    assert paper.login_lock == live.login_lock == default.login_lock == DEFAULT.state_dir
    # The install makes the folder, and the instance's health check may write there.
    assert PAPER.metrics_dir in PAPER.root_dirs
    unit = next(f for f in render(d, PAPER) if f.path == PAPER.unit_path(PAPER.health_service))
    assert ("ReadWritePaths=/var/lib/ibkr-ops/paper /var/lib/ibkr-ops/metrics "
            "/var/log/ibkr/paper\n") in unit.content.decode()
