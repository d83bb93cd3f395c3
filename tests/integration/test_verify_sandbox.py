"""The go-live checklist (`invoke verify`) end to end on a sandbox guest installed by the
installer with the simulated IBC and Gateway and the in-guest Discord receiver.

The whole suite, destructive checks included, must pass on a good install; and it must
fail, naming the item, on a host that is wrong in a way the checklist covers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from sim_support import real_ibc_zip

from ibkr_ops import demo, sandbox, verify
from ibkr_ops.remote.install import install_host
from ibkr_ops.sandbox.connect import connection
from ibkr_ops.sandbox.paths import Layout
from ibkr_ops.settings import load_deployment

GUEST = "vfy-it"


@pytest.fixture(scope="module")
def installed_guest(sandbox_layout: Layout, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[str]:
    """A guest of this module, installed the way `invoke demo` installs; removed after."""
    config_home = tmp_path_factory.mktemp("config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(config_home))  # a fresh demo credentials file
        sandbox.up([GUEST])
        try:
            d = load_deployment(demo.credentials_file())
            report = install_host(GUEST, d, demo.install_options(real_ibc_zip(), 180), lambda _: None)
            assert report.error is None, report.error
            yield GUEST
        finally:
            sandbox.down(GUEST)


def outcomes(junitxml: Path) -> dict[str, str]:
    """Test name → passed/failed/skipped from a JUnit XML report."""
    result = {}
    for case in ET.parse(junitxml).getroot().iter("testcase"):  # noqa: S314 - our own run's report
        kinds = {child.tag for child in case}
        result[case.get("name", "?")] = ("failed" if kinds & {"failure", "error"}
                                         else "skipped" if "skipped" in kinds else "passed")
    return result


def test_full_checklist_passes_on_a_good_install(installed_guest: str, tmp_path: Path) -> None:
    """Every item, destructive ones included, passes; only the settings-drift check skips."""
    report = tmp_path / "verify.xml"
    assert verify.run(installed_guest, destructive=True, junitxml=str(report),
                      ssh_configs=(sandbox.ssh_config_path(),)) == 0
    seen = outcomes(report)
    assert {name.split("[")[0] for name in seen} >= {
        "test_gateway_starts", "test_api_port_on_configured_address_only",
        "test_health_check_passes", "test_enabled_for_boot", "test_restart_timer_next_elapse",
        "test_manual_restart", "test_notification_accepted_by_webhook", "test_reboot_survival",
        "test_crash_recovery", "test_bot_connects_through_ssh_tunnel",
        "test_secret_file_private", "test_password_leaks_nowhere"}
    skipped = [name for name, outcome in seen.items() if outcome == "skipped"]
    assert [name.split("[")[0] for name in skipped] == ["test_installed_settings_match_operator_file"]


def test_checklist_fails_on_a_readable_credentials_file(installed_guest: str,
                                                        tmp_path: Path) -> None:
    """A credentials.env others can read fails item 11, and item 7 because ibkr-notify then
    refuses to read the webhook from it; every other item still passes."""
    report = tmp_path / "verify.xml"
    conn = connection(installed_guest)
    conn.run("chmod 0644 /etc/ibkr/credentials.env", hide=True, in_stream=False)
    try:
        assert verify.run(installed_guest, junitxml=str(report),
                          ssh_configs=(sandbox.ssh_config_path(),)) != 0
    finally:
        conn.run("chmod 0600 /etc/ibkr/credentials.env", hide=True, in_stream=False)
        conn.close()
    failed = sorted(name for name, outcome in outcomes(report).items() if outcome == "failed")
    assert failed == ["test_notification_accepted_by_webhook[ssh://gateway-host]",
                      "test_secret_file_private[ssh://gateway-host-/etc/ibkr/credentials.env-root]"]


def test_verify_refuses_an_unknown_host_key(installed_guest: str,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    """With a known_hosts that lacks the guest's key, nothing runs: no trust on first use."""
    guest = next(g for g in sandbox.guests() if g.name == installed_guest)
    spec = f"root@{guest.host}"  # not the sandbox name: its known_hosts entry is not consulted
    assert verify.run(spec) != 0
    out = capfd.readouterr().out
    assert "cannot reach the host over SSH" in out and "Host key verification failed" in out
    assert " passed" not in out, "a check ran against an unverified host"
