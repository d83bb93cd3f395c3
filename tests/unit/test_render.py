"""Rendering: byte-for-byte golden files, systemd's own verdict on every unit, the schedule."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.errors import OpsError
from ibkr_ops.layout import UNITS
from ibkr_ops.remote.install import instance_files
from ibkr_ops.render import render, render_template, restart_calendar
from ibkr_ops.settings import Deployment, load_deployment
from ibkr_ops.tasks.common import instances
from ibkr_ops.tasks.deploy import render as render_task

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
NEW_YORK = ZoneInfo("America/New_York")
needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed (apt install systemd)")


def reference(mode: str, tmp_path: Path) -> Deployment:
    src = tmp_path / f"{mode}.env"
    shutil.copy(REFERENCE / f"{mode}.env", src)
    os.chmod(src, 0o600)
    return load_deployment(src)


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_render_matches_reference_byte_for_byte(tmp_path: Path, mode: str) -> None:
    files = render(reference(mode, tmp_path))
    golden = REFERENCE / mode
    on_disk = sorted("/" + str(p.relative_to(golden)) for p in golden.rglob("*") if p.is_file())
    assert [f.path for f in files] == on_disk, "files added or removed: re-render deploy/reference"
    for f in files:
        expected = (golden / f.path.lstrip("/")).read_bytes()
        assert f.content == expected, (
            f"{f.path} differs from deploy/reference/{mode}: run `invoke render --config-only "
            f"--credentials deploy/reference/{mode}.env --out deploy/reference/{mode}` after "
            "reviewing the change")


def test_render_of_a_paper_and_live_pair_matches_reference_byte_for_byte(tmp_path: Path) -> None:
    # As `invoke render` reads the two files: each an instance, the restarts staggered.
    sources = []
    for name in ("paper.env", "pair-live.env"):
        shutil.copy(REFERENCE / name, tmp_path / name)
        os.chmod(tmp_path / name, 0o600)
        sources.append(str(tmp_path / name))
    files = instance_files(instances(sources, {}), tools=False)
    golden = REFERENCE / "pair"
    on_disk = sorted("/" + str(p.relative_to(golden)) for p in golden.rglob("*") if p.is_file())
    assert [f.path for f in files] == on_disk, "files added or removed: re-render deploy/reference"
    for f in files:
        assert f.content == (golden / f.path.lstrip("/")).read_bytes(), (
            f"{f.path} differs from deploy/reference/pair: run `invoke render --config-only "
            "--credentials deploy/reference/paper.env --credentials "
            "deploy/reference/pair-live.env --out deploy/reference/pair` (on copies of the two "
            "files of mode 0600) after reviewing the change")


def test_modes_and_owners(tmp_path: Path) -> None:
    files = {f.path: f for f in render(reference("paper", tmp_path))}
    ini, env = files["/etc/ibkr/config.ini"], files["/etc/ibkr/credentials.env"]
    assert (ini.mode, ini.owner, ini.secret) == (0o600, "trader", True)
    assert (env.mode, env.owner, env.secret) == (0o600, "root", True)
    assert all(f.mode == 0o644 for f in files.values() if f.is_unit)


def test_password_only_in_the_two_private_files(tmp_path: Path) -> None:
    d = reference("live", tmp_path)
    for f in render(d):
        if d.password.reveal().encode() in f.content:
            assert f.secret and f.mode == 0o600, f.path


def test_safe_ibc_defaults(tmp_path: Path) -> None:
    ini = next(f for f in render(reference("paper", tmp_path)) if f.path.endswith("config.ini"))
    text = ini.content.decode()
    for line in ("AcceptIncomingConnectionAction=reject", "AllowBlindTrading=no",
                 "ExistingSessionDetectedAction=primary", "ReadOnlyApi=yes",
                 "OverrideTwsApiPort=4002", "BindAddress=127.0.0.1", "TradingMode=paper",
                 "AutoRestartTime=04:31 PM", "ReloginAfterSecondFactorAuthenticationTimeout=no"):
        assert f"\n{line}\n" in text, line


def test_gateway_unit_keeps_the_password_out_of_argv_and_environment(tmp_path: Path) -> None:
    d = reference("paper", tmp_path)
    unit = next(f for f in render(d) if f.path.endswith("/ibkr-gateway.service")).content.decode()
    exec_lines = [ln for ln in unit.splitlines() if ln.startswith(("Exec", "Environment"))]
    assert exec_lines and not any(d.password.reveal() in ln or "--pw" in ln for ln in exec_lines)
    assert "EnvironmentFile" not in unit
    assert "\nMemoryDenyWriteExecute=" not in unit
    assert "\nRequires=xvfb.service\n" in unit and "\nBindsTo=" not in unit
    assert "RestartPreventExitStatus=2 3 4 5 6 7 87" in unit


def test_missing_template_variable_names_template_and_variable() -> None:
    with pytest.raises(OpsError, match=r"xvfb\.service\.j2: 'd' is undefined"):
        render_template("xvfb.service.j2")


@needs_analyze
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    for mode in ("paper", "live"):
        unit_dir = tmp_path / mode
        unit_dir.mkdir()
        for f in render(reference(mode, tmp_path)):
            if f.is_unit:
                (unit_dir / Path(f.path).name).write_bytes(f.content)
        paths = [str(unit_dir / u) for u in UNITS]
        result = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True,
                                text=True, check=False)
        # Only the executables that exist on an installed host, not here, may be reported.
        problems = [ln for ln in (result.stdout + result.stderr).splitlines()
                    if ln.strip() and "is not executable: No such file or directory" not in ln]
        assert problems == [], "\n".join(problems)


def elapses(spec: str, base: str, count: int) -> list[datetime]:
    out = subprocess.run(
        ["systemd-analyze", "calendar", f"--iterations={count}", f"--base-time={base}", spec],
        capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"}).stdout
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC",
                        out)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for s in stamps]


@needs_analyze
@pytest.mark.parametrize("base", ["2027-03-10 00:00 UTC", "2027-11-04 00:00 UTC"])
def test_restart_timer_fires_sunday_to_friday_at_1630_new_york_across_dst(tmp_path: Path,
                                                                          base: str) -> None:
    """Sunday's run is the weekly full login; Saturday's restart is the Gateway's own."""
    spec = restart_calendar(reference("paper", tmp_path))
    times = elapses(spec, base, 10)
    assert len(times) == 10
    local = [t.astimezone(NEW_YORK) for t in times]
    assert all((t.hour, t.minute) == (16, 30) and t.weekday() != 5 for t in local)
    assert any(t.weekday() == 6 for t in local)
    # Both sides of the change are in the window: 21:30 UTC (EST) and 20:30 UTC (EDT).
    assert {t.hour for t in times} == {20, 21}
    assert all(b - a <= timedelta(days=2, hours=1) for a, b in itertools.pairwise(times))


def test_render_task_writes_nothing_on_bad_input(tmp_path: Path) -> None:
    creds = tmp_path / "c.env"
    creds.write_text("IBKR_USERNAME=a\nIBKR_PASSWORD=hunter2hunter2\nIBKR_TRADING_MODE=demo\n"
                     "TWS_MAJOR_VRSN=1030\n")
    os.chmod(creds, 0o600)
    out = tmp_path / "out"
    with pytest.raises(Exit) as info:
        render_task(Context(), credentials=[str(creds)], out=str(out))
    assert info.value.code == 2
    assert "IBKR_TRADING_MODE" in str(info.value.message)
    assert "hunter2" not in str(info.value.message)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [creds]


def test_render_task_writes_config_and_host_tools_with_modes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    creds = tmp_path / "paper.env"
    shutil.copy(REFERENCE / "paper.env", creds)
    os.chmod(creds, 0o600)
    out = tmp_path / "out"
    render_task(Context(), credentials=[str(creds)], out=str(out))
    assert (out / "etc/ibkr/config.ini").stat().st_mode & 0o777 == 0o600
    assert (out / "usr/local/bin/ibkr-health-check").stat().st_mode & 0o777 == 0o755
    assert (out / "usr/local/lib/ibkr-ops/ibkr_ops.zip").is_file()
    assert "0600  " in capsys.readouterr().out
