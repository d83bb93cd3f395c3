"""Discord webhook notifier: bounded in time, never leaks the webhook token or the password.

A health check calls this on every state change, so it must give up within a bounded time
whatever Discord does: 429s are honoured (`retry_after` / `Retry-After`), 5xx and timeouts
are retried with capped backoff, 401/404 (bad or deleted webhook) stop at once with a clear
message. Long texts are split over several messages and trimmed past a limit, never refused.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ibkr_ops import __version__
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host.config import HostConfig
from ibkr_ops.host.envfile import read_env_file
from ibkr_ops.host.webhook import Webhook, parse_webhook

COLOURS = {"info": 0x3498DB, "warning": 0xF1C40F, "error": 0xE74C3C}
USER_AGENT = f"DiscordBot (https://pypi.org/project/ibkr-ops/, {__version__})"
# Discord: description <= 4096 and <= 6000 characters per message over all embeds; leave
# room for the title and footer.
CHUNK = 3900
MAX_PARTS = 5
REDACTED = "[redacted]"


class WebhookError(OpsError):
    """The message was not delivered; the text never contains the webhook URL."""


@dataclass(frozen=True)
class Policy:
    """How hard to try: at most `attempts` tries per message, all within `deadline_s`."""

    deadline_s: float = 20.0
    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 4.0
    request_timeout_s: float = 10.0


def check_run_policy(config: HostConfig) -> Policy:
    """The health-check timer's budget for its one alert: at most half of what the interval
    leaves after the check itself (2 s at least), so notifying never delays the next check."""
    spare = (config.health_interval_s - config.health_timeout_s) / 2
    return Policy(deadline_s=min(config.notify_timeout_s, max(spare, 2.0)))


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (longest first, so none survives in part)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def split_text(text: str, size: int = CHUNK, max_parts: int = MAX_PARTS) -> list[str]:
    """Pieces of at most `size` characters, cut at line ends where possible; past
    `max_parts` the rest is dropped with a note saying how much."""
    parts: list[str] = []
    rest = text
    while rest and len(parts) < max_parts:
        if len(rest) <= size:
            parts.append(rest)
            rest = ""
            break
        cut = rest.rfind("\n", size // 2, size)
        cut = cut if cut > 0 else size
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        note = "\n… [trimmed: {} more characters]"
        keep = max(size - len(note.format(len(text))), 0)
        dropped = len(rest) + max(len(parts[-1]) - keep, 0)
        parts[-1] = parts[-1][:keep] + note.format(dropped)
    return parts or [""]


def _title(level: str, *, host: str, mode: str, instance: str | None = None) -> str:
    """Whose news it is, where a person reading a phone looks first. A live Gateway's
    messages begin with LIVE, whatever its instance is called; on a host of several Gateways
    the instance follows the host, with its trading mode when its name does not say it
    (``INFO · gw1 · test (paper)``). The single-Gateway host's titles are as they were."""
    if mode == "live":
        return f"LIVE · {level.upper()} · {host}" + (f" · {instance}" if instance else "")
    who = mode if instance in (None, mode) else f"{instance} ({mode})"
    return f"{level.upper()} · {host} · {who}"


def build_payloads(level: str, text: str, *, host: str, mode: str, now: dt.datetime,
                   instance: str | None = None) -> list[dict[str, Any]]:
    """One Discord message per piece: an embed coloured by level, host/mode/time on each."""
    if level not in COLOURS:
        raise UsageError(f"level must be one of {', '.join(COLOURS)}, not {level!r}")
    pieces = split_text(text.strip() or "(no text)")
    stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds")
    whose = mode if instance is None else f"{instance} · {mode}"
    footer = f"{host} · {whose} · {now:%Y-%m-%d %H:%M:%S %Z}"
    payloads = []
    for number, piece in enumerate(pieces, start=1):
        title = _title(level, host=host, mode=mode, instance=instance)
        if len(pieces) > 1:
            title += f" ({number}/{len(pieces)})"
        payloads.append({
            "username": "ibkr-ops",
            "allowed_mentions": {"parse": []},
            "embeds": [{"title": title[:256], "description": piece,
                        "color": COLOURS[level], "timestamp": stamp,
                        "footer": {"text": footer[:2048]}}],
        })
    return payloads


@dataclass(frozen=True)
class Delivery:
    """What reached Discord: the message ids, and the parts left unsent (``dropped``) when a
    rate-limit pause before them would pass the deadline (the parts sent stay delivered)."""

    ids: list[str]
    dropped: int = 0


def send(webhook: Webhook, payloads: list[dict[str, Any]], policy: Policy = Policy(), *,
         sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Deliver each payload in order, all within one deadline (connecting, sending, every
    byte of each answer, retries and pauses)."""
    deadline = time.monotonic() + policy.deadline_s
    ids: list[str] = []
    pause = 0.0
    for number, payload in enumerate(payloads):
        if pause > 0:
            if time.monotonic() + pause > deadline:
                return Delivery(ids, len(payloads) - number)
            sleep(pause)
        message_id, pause = _post(webhook, payload, policy, deadline, sleep)
        ids.append(message_id)
    return Delivery(ids)


def _post(webhook: Webhook, payload: dict[str, Any], policy: Policy, deadline: float,
          sleep: Callable[[float], None]) -> tuple[str, float]:
    """POST one message; return (id, seconds to pause before the next one)."""
    # Imported here: http.client pulls in email and ssl (~20 ms), which a healthy
    # health-check run never needs.
    import http.client  # noqa: PLC0415

    from ibkr_ops.host import webhttp  # noqa: PLC0415

    body = json.dumps(payload).encode()
    problem = "no attempt made"
    for attempt in range(policy.attempts):
        now = time.monotonic()
        if now >= deadline:
            break
        try:
            answer = webhttp.post_json(webhook.url, {"wait": "true"}, body,
                                       {"User-Agent": USER_AGENT},
                                       min(deadline, now + policy.request_timeout_s))
        except (OSError, http.client.HTTPException) as exc:
            problem = f"no answer ({webhttp.reason(exc)})"
        else:
            if 200 <= answer.status < 300:
                return _delivered(answer.body, answer.headers)
            if answer.status == 429:
                problem = "rate limited by Discord (429)"
                _wait(_retry_after(answer.body, answer.headers), deadline, webhook, sleep)
                continue
            if answer.status < 500:
                raise WebhookError(_refusal(webhook, answer.status, answer.body))
            problem = f"Discord answered {answer.status}"
        backoff = min(policy.backoff_s * 2**attempt, policy.max_backoff_s)
        if attempt + 1 < policy.attempts:
            _wait(backoff * random.uniform(0.5, 1.0), deadline, webhook, sleep)  # noqa: S311
    raise WebhookError(f"{webhook.label}: not delivered within {policy.deadline_s:g} s "
                       f"and {policy.attempts} attempts; last: {problem}")


def _json(raw: bytes | None) -> dict[str, Any]:
    """Discord's JSON answer as a dict; anything else (NaN, nesting too deep, not an object,
    cut short) is an empty dict, never an exception."""
    def refuse(name: str) -> None:
        raise ValueError(name)

    try:
        value = json.loads(raw or b"{}", parse_constant=refuse)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _delivered(raw: bytes | None, headers: Any) -> tuple[str, float]:
    message_id = _json(raw).get("id", "")
    pause = 0.0
    if headers.get("X-RateLimit-Remaining") == "0":
        pause = _float(headers.get("X-RateLimit-Reset-After"))
    return (str(message_id) if isinstance(message_id, str | int) else ""), pause


def _retry_after(raw: bytes | None, headers: Any) -> float:
    """Seconds Discord asks us to wait: body `retry_after`, else the Retry-After header."""
    value = _json(raw).get("retry_after")
    return _float(value if value is not None else headers.get("Retry-After"), default=1.0)


def _float(value: object, default: float = 0.0) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return default
    return max(number, 0.0) if math.isfinite(number) else default


def _wait(seconds: float, deadline: float, webhook: Webhook,
          sleep: Callable[[float], None]) -> None:
    if time.monotonic() + seconds > deadline:
        raise WebhookError(f"{webhook.label}: Discord asks to wait {seconds:.1f} s, "
                           "past the notification deadline; not delivered")
    sleep(seconds)


def _refusal(webhook: Webhook, status: int, raw: bytes | None) -> str:
    """The clear, final message for a 4xx Discord will keep answering."""
    if status == 401:
        return (f"{webhook.label}: Discord rejected the webhook token (401); "
                "put a valid DISCORD_WEBHOOK_URL in the credentials file")
    if status == 404:
        return (f"{webhook.label}: webhook not found (404), it was probably deleted; "
                "create a new one and update DISCORD_WEBHOOK_URL")
    detail = _json(raw).get("message", "")
    detail = detail if isinstance(detail, str) else ""
    return f"{webhook.label}: Discord refused the message ({status}{': ' if detail else ''}" \
           f"{redact(str(detail), [webhook.token])})"


def deliver(config: HostConfig, level: str, text: str, policy: Policy | None = None,
            environ: dict[str, str] | None = None) -> Delivery:
    """Send from a host: webhook and password from the environment or the credentials file.

    The IBKR password is redacted from the text, as is the webhook token.
    """
    # An empty variable counts as unset, as it would for systemd's EnvironmentFile=.
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if v}
    if "DISCORD_WEBHOOK_URL" not in env or "IBKR_PASSWORD" not in env:
        try:
            env = {**read_env_file(Path(config.credentials_file)), **env}
        except UsageError as exc:
            if "DISCORD_WEBHOOK_URL" not in env:
                raise UsageError(f"no DISCORD_WEBHOOK_URL in the environment; {exc}") from None
    url = env.get("DISCORD_WEBHOOK_URL", "")
    if not url:
        raise UsageError(f"no DISCORD_WEBHOOK_URL in the environment or {config.credentials_file}")
    webhook = parse_webhook(url)
    clean = redact(text, [env.get("IBKR_PASSWORD", ""), webhook.token, webhook.url])
    from zoneinfo import ZoneInfo  # noqa: PLC0415 - only needed when a message goes out

    payloads = build_payloads(level, clean, host=config.hostname or socket.gethostname(),
                              mode=config.trading_mode, instance=config.instance,
                              now=dt.datetime.now(ZoneInfo(config.market_timezone)))
    return send(webhook, payloads, policy or Policy(deadline_s=config.notify_timeout_s))
