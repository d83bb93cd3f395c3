"""Pure parts of migrate and go-live: refusals, confirmation, what the bot is told, the order."""

from __future__ import annotations

import fabric  # type: ignore[import-untyped]
import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.errors import UsageError
from ibkr_ops.remote import golive, migrate
from ibkr_ops.remote.primitives import Host
from ibkr_ops.settings import Deployment, describe, parse_deployment
from ibkr_ops.tasks.migrate import confirm_live, go_live
from ibkr_ops.tasks.migrate import migrate as migrate_task


def deployment(mode: str, extra: str = "") -> Deployment:
    return parse_deployment(f"IBKR_USERNAME=jdoe_{mode}\nIBKR_PASSWORD=s3cret-pw\n"
                            f"IBKR_TRADING_MODE={mode}\nTWS_MAJOR_VRSN=1030\n{extra}")


def test_a_paper_file_is_refused_for_go_live() -> None:
    with pytest.raises(UsageError, match="IBKR_TRADING_MODE=live"):
        golive.require_live(deployment("paper"), "live.env")
    golive.require_live(deployment("live"), "live.env")


def test_live_default_port_is_4001_unless_set() -> None:
    assert deployment("live").api_port == 4001
    assert deployment("live", "IBKR_API_PORT=4100\n").api_port == 4100


@pytest.mark.parametrize(("typed", "ok"), [("jdoe_live", True), (" jdoe_live\n", True),
                                           ("jdoe_paper", False), ("", False)])
def test_confirmation_needs_the_live_username(typed: str, ok: bool) -> None:
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return typed

    if ok:
        confirm_live(deployment("live"), "gw1", yes_live=False, ask=ask)
    else:
        with pytest.raises(UsageError, match="does not match"):
            confirm_live(deployment("live"), "gw1", yes_live=False, ask=ask)
    assert "LIVE" in asked[0] and "s3cret" not in asked[0]


def test_without_a_terminal_only_yes_live_confirms() -> None:
    with pytest.raises(UsageError, match="--yes-live"):
        confirm_live(deployment("live"), "gw1", yes_live=False, ask=None)
    confirm_live(deployment("live"), "gw1", yes_live=True, ask=None)


def test_bot_is_told_the_new_port_and_order_permission() -> None:
    paper, live = deployment("paper"), deployment("live", "IBKR_READ_ONLY_API=no\n")
    lines = golive.bot_changes(paper, live)
    assert lines[0] == "bot: port 4002 -> 4001, live account"
    assert "orders are allowed (real money)" in lines[1]
    assert "orders are refused" in golive.bot_changes(live, paper)[1]


def test_migrate_bot_lines_name_the_target_and_keep_the_port() -> None:
    old, new = (Host(fabric.Connection(a), name) for a, name in (("10.0.0.1", "old"),
                                                                  ("10.0.0.2", "new")))
    lines = migrate.bot_changes(deployment("paper"), old, new)
    assert "new (10.0.0.2)" in lines[0] and "4002" in lines[0]
    open_api = deployment("paper", "IBKR_API_HOST=10.0.0.2\nIBKR_TRUSTED_IPS=127.0.0.1,10.0.0.2\n")
    assert migrate.bot_changes(open_api, old, new)[0] == \
        "bot: connect to 10.0.0.2:4002 instead of 10.0.0.1"


def test_live_order_stops_the_source_before_the_target_starts() -> None:
    steps = migrate.live_order("old", "new")
    stop = next(i for i, s in enumerate(steps) if "stop and disable the Gateway on old" in s)
    start = next(i for i, s in enumerate(steps) if "start the Gateway on new" in s)
    assert stop < start and "restart old" in steps[-1]


def test_dry_run_settings_are_masked() -> None:
    shown = describe(deployment("paper", "DISCORD_WEBHOOK_URL=https://discord.com/api/webhooks/1/tok\n"))
    assert shown["IBKR_PASSWORD"] == "********" and shown["DISCORD_WEBHOOK_URL"] == "********"
    assert "s3cret" not in repr(shown) and "tok" not in shown["DISCORD_WEBHOOK_URL"]


def test_same_source_and_target_is_refused_before_connecting() -> None:
    with pytest.raises(UsageError, match="same host"):
        migrate.refuse_same_host("root@10.0.0.9", "10.0.0.9")
    with pytest.raises(Exit, match="same host") as caught:  # no connection is tried
        migrate_task(Context(), source="root@10.0.0.9", target="10.0.0.9")
    assert caught.value.code == 2


@pytest.mark.parametrize("kwargs", [{}, {"source": "a"}, {"target": "b"}])
def test_migrate_task_needs_both_hosts(kwargs: dict[str, str]) -> None:
    with pytest.raises(Exit, match="--source HOST and --target HOST") as caught:
        migrate_task(Context(), **kwargs)
    assert caught.value.code == 2


def test_go_live_task_needs_a_host() -> None:
    with pytest.raises(Exit, match="--host is required"):
        go_live(Context())
