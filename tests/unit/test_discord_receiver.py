"""The Discord-compatible receiver refuses what Discord refuses and keeps what it accepts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from discord_sim import TOKEN, WEBHOOK_ID, DiscordSim, discord_sim

from ibkr_ops.sim.discord import EMBED_TOTAL, Invalid, validate

UA = {"User-Agent": "DiscordBot (test, 1)", "Content-Type": "application/json"}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[DiscordSim]:
    with discord_sim(tmp_path) as running:
        yield running


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(  # noqa: S310 - the local receiver
        url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def embed(**fields: Any) -> dict[str, Any]:
    return {"embeds": [fields]}


@pytest.mark.parametrize(("payload", "code"), [
    ({}, 50006),
    ({"content": ""}, 50006),
    ({"content": "x" * 2001}, 50035),
    ({"embeds": [{"title": "t"}] * 11}, 50035),
    (embed(title="t" * 257), 50035),
    (embed(description="d" * 4097), 50035),
    (embed(footer={"text": "f" * 2049}), 50035),
    (embed(fields=[{"name": "n", "value": "v" * 1025}]), 50035),
    (embed(fields=[{"name": "n", "value": "v"}] * 26), 50035),
    (embed(color="red"), 50035),
    (embed(timestamp="yesterday"), 50035),
    ({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}, 50035),
    ({"content": "x", "username": "Discord alerts"}, 50035),
    ([1, 2], 50035),
])
def test_validate_refuses_what_discord_refuses(payload: object, code: int) -> None:
    with pytest.raises(Invalid) as info:
        validate(payload)
    assert info.value.code == code


def test_validate_accepts_the_limits_exactly() -> None:
    validate({"content": "x" * 2000})
    validate({"embeds": [{"description": "d" * 4096}, {"description": "d" * (EMBED_TOTAL - 4096)}]})
    validate(embed(title="t" * 256, color=0xFFFFFF, timestamp="2026-11-25T21:30:00+00:00"))


def test_wait_true_returns_the_message_and_stores_it(sim: DiscordSim) -> None:
    status, _, body = post(sim.url + "?wait=true", json.dumps({"content": "hi"}).encode(), UA)
    assert status == 200
    message = json.loads(body)
    assert message["id"] and message["content"] == "hi"
    assert sim.messages() == [message]
    assert json.loads(sim.store.read_text().splitlines()[0]) == message


def test_without_wait_answers_204(sim: DiscordSim) -> None:
    status, _, body = post(sim.url, json.dumps({"content": "hi"}).encode(), UA)
    assert (status, body) == (204, b"")
    assert len(sim.messages()) == 1


@pytest.mark.parametrize(("headers", "status"), [
    ({"Content-Type": "application/json"}, 403),  # urllib's default User-Agent
    ({"User-Agent": "DiscordBot (x, 1)", "Content-Type": "text/plain"}, 400),
])
def test_headers_are_checked(sim: DiscordSim, headers: dict[str, str], status: int) -> None:
    assert post(sim.url, b'{"content": "x"}', headers)[0] == status
    assert sim.messages() == []


def test_invalid_json_is_50109(sim: DiscordSim) -> None:
    status, _, body = post(sim.url, b"{", UA)
    assert (status, json.loads(body)["code"]) == (400, 50109)


def test_wrong_token_401_unknown_webhook_404(sim: DiscordSim) -> None:
    bad_token = sim.url.replace(TOKEN, "wrong")
    unknown = sim.url.replace(WEBHOOK_ID, "1")
    assert post(bad_token, b'{"content": "x"}', UA)[0] == 401
    assert post(unknown, b'{"content": "x"}', UA)[0] == 404


def test_queued_answers_come_first_then_normal_service(sim: DiscordSim) -> None:
    sim.respond({"status": 429, "retry_after": 0.25}, 500)
    status, headers, body = post(sim.url, b'{"content": "x"}', UA)
    assert status == 429
    assert json.loads(body)["retry_after"] == 0.25
    assert headers["Retry-After"] == "0.25"
    assert post(sim.url, b'{"content": "x"}', UA)[0] == 500
    assert post(sim.url, b'{"content": "x"}', UA)[0] == 204
    assert sim.statuses() == [429, 500, 204]


def test_rate_bucket_answers_429_with_headers(tmp_path: Path) -> None:
    with discord_sim(tmp_path, "--rate", "2/60") as sim:
        first = post(sim.url, b'{"content": "1"}', UA)
        second = post(sim.url, b'{"content": "2"}', UA)
        third = post(sim.url, b'{"content": "3"}', UA)
    assert first[1]["X-RateLimit-Remaining"] == "1"
    assert second[1]["X-RateLimit-Remaining"] == "0"
    assert third[0] == 429
    assert json.loads(third[2])["retry_after"] > 0
