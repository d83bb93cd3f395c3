"""The go-live checklist (`invoke verify`) end to end on a sandbox guest installed by the
installer with the simulated IBC and Gateway and the in-guest Discord receiver.

The whole suite, destructive checks included, must pass on a good install; and it must
fail, naming the item, on a host that is wrong in a way the checklist covers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_support import real_ibc_zip

from ibkr_ops import demo, sandbox, verify
from ibkr_ops.checks import Status
from ibkr_ops.errors import OpsError
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


def outcomes(report: verify.Report) -> dict[str, list[Status]]:
    """Check name → its statuses (a check that covers two files appears twice)."""
    seen: dict[str, list[Status]] = {}
    for result in report.results:
        seen.setdefault(result.name, []).append(result.status)
    return seen


def test_full_checklist_passes_on_a_good_install(installed_guest: str) -> None:
    """Every item, destructive ones included, passes; only the settings-drift check skips."""
    (report,) = verify.run(installed_guest, destructive=True,
                           ssh_configs=(sandbox.ssh_config_path(),))
    assert report.ready, verify.table(report)
    assert outcomes(report) == {
        "settings_match": [Status.SKIPPED], "gateway_starts": [Status.OK],
        "api_port_listens": [Status.OK], "health_passes": [Status.OK],
        "enabled_for_boot": [Status.OK], "timer_scheduled": [Status.OK],
        "notification_accepted": [Status.OK], "bot_connects": [Status.OK],
        "secret_file_private": [Status.OK, Status.OK], "password_leaks_nowhere": [Status.OK],
        "manual_restart": [Status.OK], "reboot_survival": [Status.OK],
        "crash_recovery": [Status.OK]}, verify.table(report)
    figures = {name for r in report.results for name, _ in r.figures}
    assert {"restart_s", "ssh_back_s", "healthy_s", "recovery_s"} <= figures


def test_checklist_fails_on_a_readable_credentials_file(installed_guest: str) -> None:
    """A credentials.env others can read fails item 11, and item 7 because ibkr-notify then
    refuses to read the webhook from it; every other item still passes."""
    conn = connection(installed_guest)
    conn.run("chmod 0644 /etc/ibkr/credentials.env", hide=True, in_stream=False)
    try:
        (report,) = verify.run(installed_guest, ssh_configs=(sandbox.ssh_config_path(),))
    finally:
        conn.run("chmod 0600 /etc/ibkr/credentials.env", hide=True, in_stream=False)
        conn.close()
    assert not report.ready
    failed = sorted((r.name, r.detail) for r in report.results if r.failed)
    assert [name for name, _ in failed] == ["notification_accepted", "secret_file_private"]
    assert "/etc/ibkr/credentials.env" in dict(failed)["secret_file_private"]


def test_verify_refuses_an_unknown_host_key(installed_guest: str) -> None:
    """With a known_hosts that lacks the guest's key, nothing runs: no trust on first use."""
    guest = next(g for g in sandbox.guests() if g.name == installed_guest)
    spec = f"root@{guest.host}"  # not the sandbox name: its known_hosts entry is not consulted
    with pytest.raises(OpsError, match="unknown host key") as refused:
        verify.run(spec)
    assert "passed" not in str(refused.value)
