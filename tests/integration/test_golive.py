"""`go-live` on a sandbox guest: paper -> live -> paper, refusals, and the automatic rollback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import migrate_support as ms
import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops import sandbox
from ibkr_ops.remote import golive, switch
from ibkr_ops.tasks.migrate import go_live

WAIT_S = 60.0


@pytest.fixture(scope="module")
def guest(sandbox_guests: Callable[[int], list[sandbox.Guest]]) -> str:
    """The session's third guest, for go-live alone (the migrate tests use the first two)."""
    return sandbox_guests(3)[2].name


@pytest.fixture
def paper(guest: str) -> str:
    """The guest runs a healthy paper deployment (installed, or put back, by `install`)."""
    d = ms.deployment("paper")
    ms.install(guest, d)
    with ms.root(guest) as host:
        switch.start_gateway(host)
        switch.ready(host, WAIT_S, ms.say)
    return guest


def live_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "live.env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(ms.credentials_text("live", "live_trader", extra))
    return path


def accounts(name: str) -> list[str]:
    return [str(a) for a in ms.health(name)["accounts"]]  # type: ignore[attr-defined]


def test_refuses_without_confirmation(paper: str, tmp_path: Path) -> None:
    before = ms.state(paper)
    with pytest.raises(Exit) as caught:  # pytest's stdin is not a terminal
        go_live(Context(), host=paper, credentials=str(live_file(tmp_path)))
    assert "--yes-live" in str(caught.value.message)
    assert caught.value.code == 2
    assert ms.state(paper) == before


def test_refuses_a_paper_file(paper: str, tmp_path: Path) -> None:
    path = tmp_path / "paper.env"
    path.write_text(ms.credentials_text("paper"))
    path.chmod(0o600)
    with pytest.raises(Exit, match="IBKR_TRADING_MODE=live"):
        go_live(Context(), host=paper, credentials=str(path), yes_live=True)


def test_refuses_inside_a_blackout_unless_forced(paper: str, tmp_path: Path) -> None:
    # A deployment cannot say "always blacked out" (its daily restart would break it): the
    # host's own settings are changed here, as the pre-restart check reads them.
    ops = "/etc/ibkr/ops.json"
    ms.run(paper, f"python3 -c \"import json; p = '{ops}'; d = json.load(open(p)); "
                  "d['blackout_windows'] = ['* 00:00-12:00', '* 12:00-00:00']; "
                  "json.dump(d, open(p, 'w'))\"")
    before = ms.state(paper)
    try:
        with pytest.raises(Exit, match="blackout"):
            go_live(Context(), host=paper, credentials=str(live_file(tmp_path)), yes_live=True)
        assert ms.state(paper) == before
    finally:
        ms.install(paper, ms.deployment("paper"))


def test_paper_to_live_and_rollback(paper: str, tmp_path: Path) -> None:
    assert all(a.startswith("DU") for a in accounts(paper))
    go_live(Context(), host=paper, credentials=str(live_file(tmp_path)), yes_live=True,
            force=True, wait=WAIT_S)
    assert accounts(paper) and all(a.startswith("U") for a in accounts(paper))
    assert '"api_port": 4001' in ms.run(paper, "cat /etc/ibkr/ops.json")
    backup = ms.run(paper, f"stat -c '%a %U' {golive.paper_backup()} "
                           f"{golive.paper_backup()}/credentials.env").split("\n")
    assert backup[:2] == ["700 root", "600 root"]
    embed = ms.discord_messages(paper)[-1]["embeds"][0]  # type: ignore[index]
    assert str(embed["description"]).startswith("LIVE: ")
    assert str(embed["title"]).startswith("LIVE · ")

    go_live(Context(), host=paper, rollback=True, force=True, wait=WAIT_S)
    assert accounts(paper) and all(a.startswith("DU") for a in accounts(paper))
    assert '"api_port": 4002' in ms.run(paper, "cat /etc/ibkr/ops.json")


def test_rejected_live_login_rolls_back_to_paper(paper: str, tmp_path: Path) -> None:
    """The fault is cleared once the live login has failed, so the paper login succeeds."""
    path = live_file(tmp_path)
    ms.set_fault(paper, "reject-login")
    cursor = ms.run(paper, "journalctl -u ibkr-gateway -n0 --show-cursor -o cat").split()[-1]
    failures: list[BaseException] = []

    def attempt() -> None:
        try:
            go_live(Context(), host=paper, credentials=str(path), yes_live=True, force=True,
                    wait=30)
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    worker = threading.Thread(target=attempt)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while "Login failed" not in ms.run(paper, f"journalctl -u ibkr-gateway -o cat "
                                                  f"--after-cursor '{cursor}'"):
            assert time.monotonic() < deadline, "the live login never failed"
            time.sleep(1)
    finally:
        ms.set_fault(paper, None)
        worker.join(300)
    (failure,) = failures
    assert isinstance(failure, Exit) and "rolled back to paper" in str(failure.message)
    assert all(a.startswith("DU") for a in accounts(paper))
    last = ms.discord_messages(paper)[-1]
    assert "back on paper" in str(last["embeds"][0]["description"])  # type: ignore[index]
