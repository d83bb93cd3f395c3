"""The Gateway builds kept side by side: reading a host's builds, choosing which runs, which
came before and which go, the refusals before anything is copied, and the link's shell."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.gateway_installer import GatewayInstaller
from ibkr_ops.host import gatewayversion
from ibkr_ops.remote import builds
from ibkr_ops.remote.builds import parse_inventory
from ibkr_ops.remote.upgrade import UpgradeReport, minimum
from ibkr_ops.settings import parse_deployment

HOME = "/home/trader"
SHA = "ab" * 32
# What inventory_command prints on a host upgraded once from a build installed before builds
# were kept (10.19.2 at ibgateway/1019), now on 10.30.1 with 10.30.2 installed and never run.
HOST = f"""\
ARCH x86_64
FREE_KB 4194304
BUILD {HOME}/Jts/builds/10.30.1 sha256={SHA} version=10.30.1 channel=stable arch=x86_64
BUILD {HOME}/Jts/builds/10.30.2 sha256={"cd" * 32} version=10.30.2 channel=latest arch=x86_64
LEGACY {HOME}/Jts/ibgateway/1019 sha256={"ef" * 32} version=10.19.2 channel=stable arch=x86_64
LINK 1030 {HOME}/Jts/builds/10.30.1
RAN 1764000000 10.19.2
RAN 1764100000 10.30.1
"""


def installer(version: str = "10.30.3", sha: str = "12" * 32,
              arch: str = "x86_64") -> GatewayInstaller:
    return GatewayInstaller(Path(f"/dl/{version}/ibgateway-stable-standalone-linux-x64.sh"),
                            sha, version, "stable", arch)


def test_the_hosts_builds_are_read_with_their_provenance() -> None:
    inv = parse_inventory(HOST)
    assert [b.version for b in inv.builds] == ["10.30.1", "10.30.2", "10.19.2"]
    assert inv.free_mb == 4096 and inv.arch == "x86_64"
    legacy = inv.by_version("10.19.2")
    assert legacy is not None and legacy.legacy and legacy.major == "1019"
    assert inv.links == {"1030": f"{HOME}/Jts/builds/10.30.1"}
    assert inv.history == ["10.19.2", "10.30.1"]


def test_the_running_build_is_the_one_the_running_majors_link_leads_to() -> None:
    inv = parse_inventory(HOST)
    assert inv.running("1030", HOME) == inv.by_version("10.30.1")
    # A build from before builds were kept runs from the real directory itself.
    assert inv.running("1019", HOME) == inv.by_version("10.19.2")
    assert inv.running("1045", HOME) is None


def test_previous_is_the_last_other_build_that_ran_and_kept_orders_by_last_run() -> None:
    inv = parse_inventory(HOST)
    running = inv.running("1030", HOME)
    assert inv.previous(running) == inv.by_version("10.19.2")
    assert [b.version for b in inv.kept(running)] == ["10.19.2", "10.30.2"]
    gone = parse_inventory(HOST.replace(f"LEGACY {HOME}/Jts/ibgateway/1019", "X"))
    assert gone.previous(gone.running("1030", HOME)) is None  # 10.19.2 ran, but is gone


@pytest.mark.parametrize(("keep", "removed"), [(1, ["10.19.2", "10.30.2"]), (2, ["10.30.2"]),
                                               (3, []), (9, [])])
def test_prune_keeps_the_running_build_and_the_most_recently_run_others(
        keep: int, removed: list[str]) -> None:
    inv = parse_inventory(HOST)
    chosen = builds.prune_choice(inv, inv.running("1030", HOME), keep)
    assert [b.version for b in chosen] == removed


def test_removing_a_build_takes_the_links_to_it_along() -> None:
    inv = parse_inventory(HOST)
    old = inv.by_version("10.30.1")
    assert old is not None
    assert builds.remove([old], inv, HOME) == (
        f"rm -rf -- {HOME}/Jts/builds/10.30.1 {HOME}/Jts/ibgateway/1030")


def test_a_build_of_unknown_version_is_named_by_its_major() -> None:
    inv = parse_inventory(f"LEGACY {HOME}/Jts/ibgateway/1030\n")
    assert [b.version for b in inv.builds] == ["legacy-1030"]
    assert inv.builds[0].major == "1030"


def check(given: GatewayInstaller, *, text: str = HOST, running: str | None = "10.30.1",
          pin: str | None = None, floor: str = "10.30.1", size: int = 300 << 20) -> None:
    inv = parse_inventory(text)
    builds.check_upgrade(given, inv, inv.by_version(running) if running else None, pin=pin,
                         minimum=gatewayversion.parse(floor), size=size, home=HOME)


def test_a_newer_build_that_fits_passes() -> None:
    check(installer())
    check(installer("10.30.1"), running=None)  # nothing runs: nothing to compare with


@pytest.mark.parametrize(("given", "kwargs", "expected"), [
    (installer("10.30.1"), {}, "IB Gateway 10.30.1, the build already running; nothing to "
                               "upgrade (`--rollback` goes back to the previous build)"),
    (installer("10.30.9", sha=SHA), {}, "the build already running"),
    (installer("10.19.2"), {}, "below the minimum supported version 10.30.1 (IBKR refuses its "
                               "logins)"),
    (installer("10.30.3"), {"floor": "10.45"}, "below the minimum supported version 10.45"),
    (installer(), {"pin": "0" * 64}, "but IBKR_GATEWAY_SHA256 pins " + "0" * 64),
    (installer(arch="aarch64"), {}, "is IB Gateway for aarch64, but the host is x86_64"),
    (installer(), {"size": 2 << 30}, f"only 4096 MB free in {HOME}; a second build beside the "
                                     "running one needs about 7171 MB: free space there first"),
])
def test_each_bad_input_is_refused_in_one_line_before_anything_is_copied(
        given: GatewayInstaller, kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        check(given, **kwargs)  # type: ignore[arg-type]
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_minimum_is_the_operators_else_the_known_one() -> None:
    d = parse_deployment("IBKR_USERNAME=u\nIBKR_PASSWORD=p\nIBKR_TRADING_MODE=paper\n"
                         "TWS_MAJOR_VRSN=1030\n", source="test")
    assert minimum(d) == gatewayversion.minimum_on(gatewayversion.CHECKED)
    assert str(minimum(dataclasses.replace(d, gateway_min_version="10.45.1"))) == "10.45.1"


@pytest.mark.parametrize("bad", ["0", "21", "two", ""])
def test_keep_builds_takes_one_to_twenty(bad: str) -> None:
    assert builds.check_keep("2") == 2
    with pytest.raises(UsageError, match="give 1 to 20 builds"):
        builds.check_keep(bad)


def test_the_report_says_what_runs_what_is_kept_and_how_long_the_switch_took() -> None:
    report = UpgradeReport("h", steps=["pre-restart check: ok"], running="10.30.3 (stable)",
                           kept=["10.30.1 (stable)"], removed=["10.19.2"], switch_s=12.34,
                           health="healthy (accounts DU1, 9 ms)")
    assert report.lines() == [
        "pre-restart check: ok", "running: IB Gateway 10.30.3 (stable)",
        "kept: 10.30.1 (stable)", "removed: 10.19.2",
        "switch: 12.3 s from the restart to healthy", "health: healthy (accounts DU1, 9 ms)"]
    failed = dataclasses.replace(report, rollback_s=5.0, error="not healthy; rolled back")
    assert failed.lines()[-2:] == ["rollback: 5.0 s from the restart to healthy",
                                   "FAILED: not healthy; rolled back"]


def test_status_lines_name_the_running_build_and_the_kept_ones() -> None:
    inv = parse_inventory(HOST)
    assert builds.describe(inv, inv.running("1030", HOME)) == [
        "IB Gateway build running: 10.30.1 (stable, sha256 abababababab…)",
        "IB Gateway builds kept: 10.19.2 (stable, sha256 efefefefefef…, installed before builds "
        "were kept), 10.30.2 (latest, sha256 cdcdcdcdcdcd…)"]


# The link's shell, run for real in a scratch home (as root: it runs mkdir as the user).
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runuser needs root")


def sh(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=True)


def fake_build(path: Path, version: str | None) -> None:
    (path / "jars").mkdir(parents=True)
    if version:
        (path / ".ibkr-ops-provenance").write_text(f"sha256={SHA} version={version}\n")


@needs_root
def test_a_link_moves_a_build_from_before_builds_were_kept_beside_the_others(
        tmp_path: Path) -> None:
    home = str(tmp_path)
    legacy = tmp_path / "Jts/ibgateway/1030"
    fake_build(legacy, "10.30.1")
    fake_build(tmp_path / "Jts/builds/10.30.2", "10.30.2")
    sh(builds.link(home, "1030", f"{home}/Jts/builds/10.30.2", "root"))
    assert os.readlink(legacy) == f"{home}/Jts/builds/10.30.2"
    assert (tmp_path / "Jts/builds/10.30.1/jars").is_dir()
    inv = parse_inventory(subprocess.run(
        ["sh", "-c", builds.inventory_command(home)], check=True, capture_output=True,
        text=True).stdout)
    assert sorted(b.version for b in inv.builds) == ["10.30.1", "10.30.2"]
    # Back: the link is re-pointed in one rename, the builds stay where they are.
    sh(builds.link(home, "1030", f"{home}/Jts/builds/10.30.1", "root"))
    assert os.readlink(legacy) == f"{home}/Jts/builds/10.30.1"


@needs_root
def test_linking_the_old_build_itself_keeps_it_running_from_its_new_place(
        tmp_path: Path) -> None:
    home = str(tmp_path)
    legacy = tmp_path / "Jts/ibgateway/1019"
    fake_build(legacy, None)
    sh(builds.link(home, "1019", str(legacy), "root"))
    assert os.readlink(legacy) == f"{home}/Jts/builds/legacy-1019"
    assert (legacy / "jars").is_dir()
    # Named by its old place again (the caller read it before the move): the link stays.
    sh(builds.link(home, "1019", str(legacy), "root"))
    assert os.readlink(legacy) == f"{home}/Jts/builds/legacy-1019"
