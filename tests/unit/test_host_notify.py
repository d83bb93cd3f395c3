"""The notifier against the Discord-compatible receiver running as a real HTTP server."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from discord_sim import TOKEN, DiscordSim, discord_sim
from host_run import run_tool

from ibkr_ops.errors import UsageError
from ibkr_ops.host import notify
from ibkr_ops.host.config import HostConfig

FAST = notify.Policy(deadline_s=5, attempts=4, backoff_s=0.01, max_backoff_s=0.05)
NOW = dt.datetime(2026, 11, 25, 16, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5), "EST"))
PASSWORD = "hunter2-Pa55word"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[DiscordSim]:
    with discord_sim(tmp_path) as running:
        yield running


class Sleeps(list[float]):
    """Records each wait the notifier asks for (the waits are short, so it also sleeps)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


def payloads(text: str, level: str = "info") -> list[dict[str, object]]:
    return notify.build_payloads(level, text, host="gw1", mode="paper", now=NOW)


def test_delivers_an_embed_with_host_mode_time_and_colour(sim: DiscordSim) -> None:
    ids = notify.send(notify.parse_webhook(sim.url), payloads("Gateway down", "error"), FAST).ids
    (message,) = sim.messages()
    assert ids == [message["id"]]
    (embed,) = message["embeds"]
    assert embed["title"] == "ERROR · gw1 · paper"
    assert embed["description"] == "Gateway down"
    assert embed["color"] == notify.COLOURS["error"]
    assert embed["footer"]["text"] == "gw1 · paper · 2026-11-25 16:30:00 EST"
    assert embed["timestamp"] == "2026-11-25T21:30:00+00:00"


def test_live_hosts_say_live_first() -> None:
    (live,) = notify.build_payloads("info", "restarted", host="gw1", mode="live", now=NOW)
    assert live["embeds"][0]["title"] == "LIVE · INFO · gw1"  # type: ignore[index]


def test_long_text_is_split_then_trimmed_never_refused(sim: DiscordSim) -> None:
    lines = "\n".join(f"line {i:05d} " + "x" * 60 for i in range(600))  # ~43k characters
    notify.send(notify.parse_webhook(sim.url), payloads(lines), FAST)
    messages = sim.messages()
    assert len(messages) == notify.MAX_PARTS
    assert set(sim.statuses()) == {200}
    descriptions = [m["embeds"][0]["description"] for m in messages]
    assert descriptions[0].startswith("line 00000")
    assert "trimmed:" in descriptions[-1]
    assert messages[1]["embeds"][0]["title"].endswith(f"(2/{notify.MAX_PARTS})")


def test_split_keeps_every_character_when_it_fits() -> None:
    text = "a" * 5000 + "\n" + "b" * 3000
    parts = notify.split_text(text)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    assert all(len(p) <= notify.CHUNK for p in parts)


def test_trim_note_counts_what_was_dropped() -> None:
    parts = notify.split_text("z" * 1000, size=100, max_parts=2)
    kept = sum(p.count("z") for p in parts)
    assert all(len(p) <= 100 for p in parts)
    assert parts[-1].endswith(f"[trimmed: {1000 - kept} more characters]")


@pytest.mark.parametrize("answer", [{"status": 429, "retry_after": 0.2},
                                    {"status": 429, "retry_after": 0.2, "header_only": True}])
def test_429_waits_as_told_then_delivers(sim: DiscordSim, answer: dict[str, object]) -> None:
    sim.respond(answer)
    sleeps = Sleeps()
    notify.send(notify.parse_webhook(sim.url), payloads("x"), FAST, sleep=sleeps)
    assert sim.statuses() == [429, 200]
    # Body retry_after 0.2; the header alone is whole seconds (Retry-After: 1).
    assert sleeps[0] == (1.0 if answer.get("header_only") else 0.2)


def test_429_longer_than_the_deadline_gives_up_at_once(sim: DiscordSim) -> None:
    sim.respond({"status": 429, "retry_after": 60})
    with pytest.raises(notify.WebhookError, match=r"asks to wait 60\.0 s"):
        notify.send(notify.parse_webhook(sim.url), payloads("x"), FAST)
    assert sim.statuses() == [429]


def test_5xx_is_retried_with_backoff(sim: DiscordSim) -> None:
    sim.respond(500, 502)
    notify.send(notify.parse_webhook(sim.url), payloads("x"), FAST)
    assert sim.statuses() == [500, 502, 200]


def test_5xx_forever_gives_up_after_the_attempts(sim: DiscordSim) -> None:
    sim.respond(*[500] * 10)
    with pytest.raises(notify.WebhookError) as info:
        notify.send(notify.parse_webhook(sim.url), payloads("x"), FAST)
    assert sim.statuses() == [500] * FAST.attempts
    assert "last: Discord answered 500" in str(info.value)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(("status", "words"), [(401, "rejected the webhook token"),
                                                (404, "probably deleted")])
def test_401_and_404_stop_at_once_with_a_clear_reason(sim: DiscordSim, status: int,
                                                      words: str) -> None:
    sim.respond(status)
    with pytest.raises(notify.WebhookError) as info:
        notify.send(notify.parse_webhook(sim.url), payloads("x"), FAST)
    assert words in str(info.value)
    assert TOKEN not in str(info.value)
    assert sim.statuses() == [status]


def test_unreachable_webhook_gives_up_without_the_token() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/webhooks/1/{TOKEN}"
    with pytest.raises(notify.WebhookError) as info:
        notify.send(notify.parse_webhook(url), payloads("x"), FAST)
    assert "no answer (Connection refused)" in str(info.value)
    assert TOKEN not in str(info.value)


def test_rate_limit_headers_pace_multi_part_messages(tmp_path: Path) -> None:
    with discord_sim(tmp_path, "--rate", "2/0.5") as sim:
        notify.send(notify.parse_webhook(sim.url), payloads("y" * 3 * notify.CHUNK), FAST)
        assert sim.statuses() == [200, 200, 200]


@pytest.mark.parametrize("url", [
    "https://discord.com/api/webhooks/abc/def",
    "ftp://discord.com/api/webhooks/1/tok",
    f"http://discord.com/api/webhooks/1/{TOKEN}",
    "not a url",
])
def test_bad_webhook_urls_are_refused_without_echo(url: str) -> None:
    with pytest.raises(UsageError) as info:
        notify.parse_webhook(url)
    assert url not in str(info.value)
    assert TOKEN not in str(info.value)


def test_password_and_token_are_redacted_from_the_text(sim: DiscordSim, tmp_path: Path) -> None:
    creds = tmp_path / "credentials.env"
    creds.write_text(f"IBKR_PASSWORD='{PASSWORD}'\nDISCORD_WEBHOOK_URL={sim.url}\n")
    os.chmod(creds, 0o600)
    config = HostConfig(credentials_file=str(creds), hostname="gw1")
    notify.deliver(config, "warning", f"login failed with {PASSWORD} at {sim.url}",
                   FAST, environ={})
    stored = sim.store.read_text()
    assert PASSWORD not in stored
    assert TOKEN not in stored
    assert "login failed with [redacted] at [redacted]" in stored


def test_no_webhook_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    config = HostConfig(credentials_file=str(tmp_path / "absent.env"))
    with pytest.raises(UsageError, match="no DISCORD_WEBHOOK_URL"):
        notify.deliver(config, "info", "x", FAST, environ={})


def test_cli_delivers_and_never_prints_the_token(sim: DiscordSim, tmp_path: Path) -> None:
    creds = tmp_path / "credentials.env"
    creds.write_text(f"DISCORD_WEBHOOK_URL={sim.url}\nIBKR_PASSWORD={PASSWORD}\n")
    os.chmod(creds, 0o600)
    settings = tmp_path / "ops.json"
    settings.write_text(json.dumps({"credentials_file": str(creds), "hostname": "gw1"}))
    ok = run_tool("ibkr-notify", "--config", str(settings), "--level", "warning",
                  f"memory high; pw {PASSWORD}", env={"DISCORD_WEBHOOK_URL": ""})
    sim.respond(401)
    refused = run_tool("ibkr-notify", "--config", str(settings), "x",
                       env={"DISCORD_WEBHOOK_URL": sim.url})
    assert ok.returncode == 0, ok.stderr
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "401" in refused.stderr
    for result in (ok, refused):
        assert TOKEN not in result.stdout + result.stderr
        assert PASSWORD not in result.stdout + result.stderr
    (message,) = sim.messages()
    assert message["embeds"][0]["description"] == "memory high; pw [redacted]"


def test_cli_bad_level_exits_2_with_one_line() -> None:
    result = run_tool("ibkr-notify", "--level", "panic", "x")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("mode", "instance", "title", "whose"), [
    ("paper", None, "WARNING · gw1 · paper", "paper"),
    ("live", None, "LIVE · WARNING · gw1", "live"),
    ("paper", "paper", "WARNING · gw1 · paper", "paper · paper"),
    ("paper", "test", "WARNING · gw1 · test (paper)", "test · paper"),
    ("live", "live", "LIVE · WARNING · gw1 · live", "live · live"),
    ("live", "main", "LIVE · WARNING · gw1 · main", "main · live"),
    # A name that says the opposite of the mode cannot hide a live Gateway.
    ("live", "paper", "LIVE · WARNING · gw1 · paper", "paper · live"),
])
def test_the_title_names_the_instance_and_live_stays_first(
        mode: str, instance: str | None, title: str, whose: str) -> None:
    (message,) = notify.build_payloads("warning", "x", host="gw1", mode=mode, now=NOW,
                                       instance=instance)
    embed = message["embeds"][0]  # type: ignore[index]
    assert embed["title"] == title
    assert embed["footer"]["text"] == f"gw1 · {whose} · 2026-11-25 16:30:00 EST"


def test_an_instance_host_delivers_under_the_instances_name(sim: DiscordSim,
                                                            tmp_path: Path) -> None:
    creds = tmp_path / "credentials.env"
    creds.write_text(f"DISCORD_WEBHOOK_URL={sim.url}\n")
    os.chmod(creds, 0o600)
    config = HostConfig(credentials_file=str(creds), hostname="gw1", trading_mode="live",
                        api_port=4001, instance="main")
    notify.deliver(config, "error", "Gateway UNHEALTHY", FAST, environ={})
    (message,) = sim.messages()
    assert message["embeds"][0]["title"] == "LIVE · ERROR · gw1 · main"
