"""Discord webhook URLs: the one check, shared by the settings (render, install) and the
host's notifier, so a URL install accepts is one the host sends to. Standard library only.

Messages never repeat the URL: it holds the webhook's token.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from typing import Final

from ibkr_ops.errors import UsageError

DISCORD_HOSTS: Final = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
# Discord's ids are snowflakes (decimal) and its tokens URL-safe base64.
_PATH: Final = re.compile(r"/api(?:/v[0-9]{1,2})?/webhooks/([0-9]{1,20})/([A-Za-z0-9_-]{1,100})/?")
_PAIR: Final = r"[A-Za-z0-9_]{1,40}=[A-Za-z0-9_]{1,40}"
_QUERY: Final = re.compile(f"{_PAIR}(?:&{_PAIR})*")
MAX_LENGTH: Final = 2048


class WebhookUrlError(UsageError):
    """A URL the notifier cannot use; ``why`` completes "DISCORD_WEBHOOK_URL ..."."""

    def __init__(self, why: str) -> None:
        super().__init__(f"DISCORD_WEBHOOK_URL {why}; the value is not shown")
        self.why = why


@dataclass(frozen=True)
class Webhook:
    """A checked webhook URL; ``label`` is safe to print (the id, never the token)."""

    url: str
    token: str
    label: str


def parse_webhook(url: str) -> Webhook:
    """The webhook, or a WebhookUrlError saying what is wrong with the URL and how to fix it."""
    url = url.strip()
    if len(url) > MAX_LENGTH or not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise WebhookUrlError("is not a URL (too long, or blank, control or non-ASCII "
                              "characters); copy it again from Discord")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        raise WebhookUrlError(f"is not a valid URL ({str(exc)[:60]})") from None
    host = parts.hostname or ""
    loopback = _loopback(host)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback):
        raise WebhookUrlError("must use https (plain http only to a loopback address such as "
                              "127.0.0.1, a local relay)")
    if port == 0:
        raise WebhookUrlError("has port 0; leave the port out")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("must not hold a user name or password before the host")
    if not loopback and host not in DISCORD_HOSTS:
        raise WebhookUrlError(f"is not a Discord webhook URL (the host must be "
                              f"{DISCORD_HOSTS[0]})")
    match = _PATH.fullmatch(parts.path)
    if not match:
        raise WebhookUrlError("does not have the /api/webhooks/ID/TOKEN form "
                              "(https://discord.com/api/webhooks/ID/TOKEN)")
    if parts.fragment or (parts.query and not _QUERY.fullmatch(parts.query)):
        raise WebhookUrlError("has a #fragment or a query other than name=value pairs such as "
                              "thread_id=123")
    return Webhook(url, match[2], f"webhook {match[1]} at {host}")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
