"""`invoke upgrade` on one sandbox guest under the real IBC: builds side by side, the switch,
the automatic rollback, `--rollback`, prune and the refusals, in the order an operator meets
them (each test starts from the state the one before left).

The guest starts on the simulated Gateway 10.19.2; the process answering on the API port says
which build runs (the stand-in's API child starts from its build's directory). The build that
never logs in is a simulated 10.30.2 whose login waits a day (a knob baked into its installer).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import migrate_support as ms
import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops import sandbox
from ibkr_ops.gateway_installer import GatewayInstaller, gateway_installer
from ibkr_ops.remote import upgrade
from ibkr_ops.remote.install import install_host, wait_healthy
from ibkr_ops.remote.upgrade import UpgradeOptions, UpgradeReport
from ibkr_ops.sandbox.paths import Layout
from ibkr_ops.sim import artifacts as sim_artifacts
from ibkr_ops.tasks.upgrade import upgrade as upgrade_task

WAIT_S = 60.0
GUEST = "upgrade"
BUILDS = "/home/trader/Jts/builds"
LINKS = "/home/trader/Jts/ibgateway"
EXTRA = "IBKR_GATEWAY_MIN_VERSION=10.19.2\n"


def build(into: Path, version: str, *knobs: tuple[str, str]) -> GatewayInstaller:
    release = sim_artifacts.Release(version, knobs=knobs)
    path = into / version / release.installer_name
    path.parent.mkdir()
    path.write_bytes(sim_artifacts.build_installer(release))
    return gateway_installer(path)


@pytest.fixture(scope="module")
def installers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GatewayInstaller]:
    into = tmp_path_factory.mktemp("installers")
    return {"10.19.2": build(into, "10.19.2"), "10.30.1": build(into, "10.30.1"),
            "never": build(into, "10.30.2", ("login_delay", "86400")),
            "10.30.3": build(into, "10.30.3"), "10.19.1": build(into, "10.19.1")}


@pytest.fixture(scope="module")
def guest(sandbox_layout: Layout, installers: dict[str, GatewayInstaller]) -> Iterator[str]:
    """A guest of this module's own, installed with Gateway 10.19.2 through `install`, then
    laid out as before builds were kept."""
    sandbox.up([GUEST])
    try:
        d = ms.deployment(extra=EXTRA)
        d = dataclasses.replace(d, tws_major_vrsn="1019")
        options = dataclasses.replace(ms.options(), gateway=installers["10.19.2"])
        report = install_host(GUEST, d, options, ms.say)
        assert report.error is None, report.error
        # As a host installed before builds were kept has it: the build at IBC's path itself.
        ms.run(GUEST, f"systemctl stop ibkr-gateway.service && rm {LINKS}/1019 && "
                      f"mv {BUILDS}/10.19.2 {LINKS}/1019 && rm -r {BUILDS} && "
                      "systemctl start ibkr-gateway.service")
        with ms.root(GUEST) as host:
            wait_healthy(host, WAIT_S, ms.say)
        yield GUEST
    finally:
        sandbox.down(GUEST)


def options(wait_s: float = WAIT_S) -> UpgradeOptions:
    # The guest's clock may be inside the trading session: the check is asked and overruled.
    return UpgradeOptions(dataclasses.replace(ms.options(wait_s), gateway=None), force=True)


def run_upgrade(installer: GatewayInstaller, wait_s: float = WAIT_S) -> UpgradeReport:
    with ms.root(GUEST) as host:
        return upgrade.upgrade(host, installer, options(wait_s), ms.say)


def serves(name: str, version: str, where: str = "") -> None:
    """Healthy, and the API answering is the one of build ``version`` (the stand-in's API
    child runs from its build's jars, ``where`` if not in builds/; the health check's client
    caps the server version, so that does not tell builds apart)."""
    health = ms.health(name)
    assert health["healthy"] is True, health
    children = ms.run(name, "ps -eo args | grep '[i]bkr-gateway-sim.pyz api'")
    assert f"{where or BUILDS + '/' + version}/jars/ibkr-gateway-sim.pyz" in children, children
    assert f"--gateway-version {version}" in children, children


def real_directory(name: str, path: str) -> bool:
    return ms.run(name, f"test -d {path} && ! test -L {path} && echo yes").strip() == "yes"


def link(name: str, major: str) -> str:
    return ms.run(name, f"readlink {LINKS}/{major}").strip()


def builds(name: str) -> set[str]:
    return set(ms.run(name, f"ls {BUILDS}").split())


def pid(name: str) -> str:
    return ms.run(name, "systemctl show -p MainPID --value ibkr-gateway.service").strip()


def test_a_host_from_before_builds_were_kept_runs_as_it_is(guest: str) -> None:
    assert real_directory(guest, f"{LINKS}/1019")
    serves(guest, "10.19.2", where=f"{LINKS}/1019")
    with ms.root(guest) as host:
        assert upgrade.build_lines(host) == [
            "IB Gateway build running: 10.19.2 (stable, sha256 "
            f"{ms.run(guest, f'cat {LINKS}/1019/.ibkr-ops-provenance')[7:19]}…, installed "
            "before builds were kept)", "IB Gateway builds kept: none"]


def test_upgrade_to_a_new_major_version_is_healthy_and_keeps_the_previous_build(
        guest: str, installers: dict[str, GatewayInstaller]) -> None:
    report = run_upgrade(installers["10.30.1"])
    assert report.error is None, report.lines()
    assert report.running.startswith("10.30.1 (stable, sha256 ")
    assert [k.split()[0] for k in report.kept] == ["10.19.2"]
    assert report.switch_s > 0 and report.health.startswith("healthy")
    assert "TWS_MAJOR_VRSN=1030" in ms.run(guest, "cat /etc/ibkr/credentials.env")
    assert "ibcstart.sh 1030 " in ms.run(guest, "cat /etc/systemd/system/ibkr-gateway.service")
    assert link(guest, "1030") == f"{BUILDS}/10.30.1"
    # The build from before stays where it is: nothing needed its place.
    assert builds(guest) == {"10.30.1"} and real_directory(guest, f"{LINKS}/1019")
    serves(guest, "10.30.1")
    said = [json.dumps(m) for m in ms.discord_messages(guest)]
    assert any("approve it on IBKR Mobile" in m and "10.30.1" in m for m in said), said


def test_a_build_that_never_logs_in_is_rolled_back_by_itself(
        guest: str, installers: dict[str, GatewayInstaller]) -> None:
    settings = ms.run(guest, "sha256sum /etc/ibkr/credentials.env /etc/ibkr/config.ini "
                             "/etc/systemd/system/ibkr-gateway.service")
    report = run_upgrade(installers["never"], wait_s=45)
    assert report.error is not None and "rolled back to IB Gateway 10.30.1" in report.error
    assert "not healthy after 45 s" in report.error
    assert report.rollback_s > 0
    # The old build again, with its settings, and the failed one gone.
    serves(guest, "10.30.1")
    assert link(guest, "1030") == f"{BUILDS}/10.30.1"
    assert builds(guest) == {"10.30.1"}
    assert ms.run(guest, "sha256sum /etc/ibkr/credentials.env /etc/ibkr/config.ini "
                         "/etc/systemd/system/ibkr-gateway.service") == settings


def test_rollback_on_request_returns_to_the_previous_build(guest: str) -> None:
    with ms.root(guest) as host:
        report = upgrade.rollback(host, options(), ms.say)
    assert report.error is None, report.lines()
    assert report.running.startswith("10.19.2")
    assert [k.split()[0] for k in report.kept] == ["10.30.1"]
    assert "TWS_MAJOR_VRSN=1019" in ms.run(guest, "cat /etc/ibkr/credentials.env")
    # Its place is needed for the link now: moved beside the others while stopped.
    assert link(guest, "1019") == f"{BUILDS}/10.19.2"
    assert builds(guest) == {"10.19.2", "10.30.1"}
    serves(guest, "10.19.2")


@pytest.mark.parametrize("case", ["not an installer", "truncated", "same version",
                                  "below the minimum", "pin mismatch"])
def test_bad_input_is_one_line_and_the_running_build_runs_on(
        guest: str, installers: dict[str, GatewayInstaller], tmp_path: Path, case: str) -> None:
    path, expected = installers["10.30.3"].path, ""
    if case == "not an installer":
        path = tmp_path / "notes.sh"
        path.write_text("#!/bin/sh\necho hello\n")
        expected = "not an install4j shell installer"
    elif case == "truncated":
        path = tmp_path / installers["10.30.3"].path.name
        path.write_bytes(installers["10.30.3"].path.read_bytes()[:-5000])
        expected = "truncated"
    elif case == "same version":
        path, expected = installers["10.19.2"].path, "the build already running"
    elif case == "below the minimum":
        path, expected = installers["10.19.1"].path, "below the minimum supported version 10.19.2"
    else:
        ms.run(guest, f"echo IBKR_GATEWAY_SHA256={'0' * 64} >> /etc/ibkr/credentials.env")
        expected = "but IBKR_GATEWAY_SHA256 pins"
    before, running = ms.state(guest), pid(guest)
    try:
        with pytest.raises(Exit) as caught:
            upgrade_task(Context(), host=guest, gateway_installer=str(path), force=True)
    finally:
        ms.run(guest, "sed -i '/^IBKR_GATEWAY_SHA256=/d' /etc/ibkr/credentials.env")
    message = str(caught.value.message)
    assert caught.value.code == 2 and expected in message, message
    assert "\n" not in message.strip()
    if case != "pin mismatch":  # the test itself wrote the pin into the settings
        assert ms.state(guest) == before
    assert pid(guest) == running
    assert builds(guest) == {"10.19.2", "10.30.1"}
    serves(guest, "10.19.2")


def test_a_successful_upgrade_prunes_all_but_the_running_and_previous_build(
        guest: str, installers: dict[str, GatewayInstaller]) -> None:
    report = run_upgrade(installers["10.30.3"])
    assert report.error is None, report.lines()
    assert report.removed == ["10.30.1"]
    assert builds(guest) == {"10.19.2", "10.30.3"}
    assert link(guest, "1030") == f"{BUILDS}/10.30.3"
    serves(guest, "10.30.3")
    with ms.root(guest) as host:
        lines = upgrade.build_lines(host)
    assert lines[0].startswith("IB Gateway build running: 10.30.3 (stable, sha256 "), lines
    assert lines[1].startswith("IB Gateway builds kept: 10.19.2 (stable"), lines


def test_install_with_another_build_goes_beside_the_running_one_and_switches(
        guest: str, installers: dict[str, GatewayInstaller]) -> None:
    """`install` with a new build on a running host: the upgrade's way, not over it."""
    options = dataclasses.replace(ms.options(WAIT_S), gateway=installers["10.30.1"], force=True)
    report = install_host(guest, ms.deployment(extra=EXTRA), options, ms.say)
    assert report.error is None, report.error
    gateway = dict(report.items)["IB Gateway"]
    assert gateway.startswith("changed (") and "running: IB Gateway 10.30.1" in gateway
    assert "kept: 10.30.3" in gateway and "removed: 10.19.2" in gateway
    assert builds(guest) == {"10.30.1", "10.30.3"}
    serves(guest, "10.30.1")
