"""`migrate` between two sandbox guests running the simulated Gateway under IBC and systemd."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import migrate_support as ms
import pytest

from ibkr_ops import sandbox
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.layout import DEFAULT
from ibkr_ops.remote import switch
from ibkr_ops.remote.migrate import MigrateOptions, MigrateReport, migrate
from ibkr_ops.settings import Deployment
from ibkr_ops.sim import logins


@pytest.fixture(scope="module")
def pair(sandbox_guests: Callable[[int], list[sandbox.Guest]]) -> tuple[str, str]:
    """Guest A (the source) and guest B (the target)."""
    a, b = sandbox_guests(2)
    return a.name, b.name


@pytest.fixture(scope="module")
def paper() -> Deployment:
    return ms.deployment("paper")


@pytest.fixture
def source(pair: tuple[str, str], paper: Deployment) -> str:
    """A runs the paper deployment (installed and healthy); B's Gateway, if any, is stopped."""
    a, b = pair
    ms.install(a, paper)
    with ms.root(a) as host:
        switch.start_gateway(host)
    if ms.unit_state(b)[0] != "not-found":
        with ms.root(b) as host:
            switch.stop_gateway(host)
    return a


def run_migrate(a: str, b: str, *, stop_source: bool = False, dry_run: bool = False,
                wait_s: float = 120.0) -> MigrateReport:
    with ms.root(a) as src, ms.root(b) as tgt:
        return migrate(src, tgt, MigrateOptions(ms.options(wait_s), stop_source, dry_run),
                       lambda _h: ms.say)


def test_dry_run_changes_nothing_on_either_guest(source: str, pair: tuple[str, str],
                                                 paper: Deployment,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b = pair
    before = ms.state(a), ms.state(b)
    report = run_migrate(a, b, stop_source=True, dry_run=True)
    assert (ms.state(a), ms.state(b)) == before
    assert report.settings["IBKR_PASSWORD"] == "********"
    assert any("would stop and disable" in step for step in report.source_steps)
    assert report.target_report is not None and report.target_report.error is None
    assert paper.password.reveal() not in capsys.readouterr().out


def test_failing_target_leaves_source_running_and_target_stopped(
        source: str, pair: tuple[str, str], paper: Deployment) -> None:
    a, b = pair
    ms.install(b, paper)  # B gets its Gateway now, so the fault below applies to its next start
    with ms.root(b) as host:
        switch.stop_gateway(host)
    ms.set_fault(b, "hang")
    before = ms.state(a)
    try:
        with pytest.raises(OpsError, match=f"{a} is untouched and still running"):
            run_migrate(a, b, stop_source=True, wait_s=15)
    finally:
        ms.set_fault(b, None)
    after = ms.state(a)
    # Only the backup on A is new: everything else, the Gateway's PID included, is as it was.
    assert [line for line in after.splitlines() if "/etc/ibkr/backup/" not in line] == \
        [line for line in before.splitlines() if "/etc/ibkr/backup/" not in line]
    assert ms.health(a)["healthy"] is True
    assert ms.unit_state(b) == ("disabled", "inactive")


def test_migrate_paper_then_stop_source(source: str, pair: tuple[str, str], paper: Deployment,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = pair
    started = time.time()
    with ms.argv_recorder([a, b]) as argv:
        report = run_migrate(a, b)
    assert ms.run(b, f"cat {DEFAULT.credentials}") == ms.run(a, f"cat {DEFAULT.credentials}")
    assert ms.run(b, f"cat {DEFAULT.config_ini}") == ms.run(a, f"cat {DEFAULT.config_ini}")
    assert ms.health(b)["healthy"] is True
    assert ms.unit_state(a) == ("enabled", "active")
    assert report.bot and "4002" in report.bot[0]
    backups = ms.run(a, f"stat -c '%a %U %n' {DEFAULT.backup_dir}/migrate-*/*").splitlines()
    assert backups and all(line.startswith("600 root ") for line in backups)

    run_migrate(a, b, stop_source=True)
    assert ms.unit_state(a) == ("disabled", "inactive")
    assert ms.run(a, f"test -f {DEFAULT.config_ini} && echo kept").strip() == "kept"
    assert ms.health(b)["healthy"] is True

    secret = paper.password.reveal()
    assert secret not in capsys.readouterr().out
    assert "ibcstart.sh" in "".join(argv), "the command-line recorder saw nothing"
    assert not any(secret in text for text in argv), "the password was in a command line"
    assert secret not in ms.journal(a) and secret not in ms.journal(b)
    roots = [Path.home(), Path(tempfile.gettempdir()), Path.cwd()]
    assert ms.local_files_with(secret, started, roots) == []


def test_migrate_a_deployment_without_a_webhook(pair: tuple[str, str]) -> None:
    """No DISCORD_WEBHOOK_URL: the go-live checks say item 7 is not configured, and the
    migration goes through (it used to refuse every deployment without a webhook)."""
    a, b = pair
    ms.install(a, ms.deployment("paper", webhook=False))
    with ms.root(a) as host:
        switch.start_gateway(host)
    if ms.unit_state(b)[0] != "not-found":
        with ms.root(b) as host:
            switch.stop_gateway(host)
    report = run_migrate(a, b, stop_source=True)
    assert report.target_report is not None
    assert "go-live checks passed (9 ok; not configured: 7 (Notifications received))" in \
        report.target_report.health
    assert "DISCORD_WEBHOOK_URL" not in ms.run(b, f"cat {DEFAULT.credentials}")
    assert ms.health(b)["healthy"] is True
    assert ms.unit_state(a) == ("disabled", "inactive")


def test_live_migration_never_has_two_logins_at_once(pair: tuple[str, str],
                                                    tmp_path: Path) -> None:
    """A -> B, then B -> A with A failing (B comes back): the login records never overlap."""
    a, b = pair
    ms.install(a, ms.deployment("live", "live_trader"))
    if ms.unit_state(b)[0] != "not-found":
        with ms.root(b) as host:
            switch.stop_gateway(host)
    before = ms.state(a)
    with pytest.raises(UsageError, match="--stop-source"):
        run_migrate(a, b)
    assert ms.state(a) == before

    report = run_migrate(a, b, stop_source=True)
    assert any("live mode" in step for step in report.source_steps)
    assert str(ms.health(b)["accounts"]).startswith("['U")
    assert ms.unit_state(a) == ("disabled", "inactive")

    ms.set_fault(a, "hang")  # A logs in but its API never answers: not healthy in time
    try:
        with pytest.raises(OpsError, match=f"{b} was restarted and is healthy"):
            run_migrate(b, a, stop_source=True, wait_s=15)
    finally:
        ms.set_fault(a, None)
    assert ms.health(b)["healthy"] is True
    assert ms.unit_state(a) == ("disabled", "inactive")

    paths = ms.fetch_logins([a, b], tmp_path)
    live = [s for s in logins.sessions(paths) if s.account.startswith("U")]
    assert len({s.host for s in live}) == 2 and len(live) >= 3, live
    assert ms.live_overlaps(paths) == []
