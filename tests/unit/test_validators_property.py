"""The validators never fail with anything but one clear line, whatever text they get, and
render and the host's notifier accept exactly the same webhook URLs (hypothesis, bounded)."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_ops.errors import UsageError
from ibkr_ops.host import webhook
from ibkr_ops.host.config import HostConfig
from ibkr_ops.settings import KEYS, REQUIRED, deployment_from_env

BASE = {"IBKR_USERNAME": "alice", "IBKR_PASSWORD": "pw-123", "IBKR_TRADING_MODE": "paper",
        "TWS_MAJOR_VRSN": "1030"}
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=80)
URLISH = st.builds(lambda scheme, host, port, path, tail: f"{scheme}://{host}{port}{path}{tail}",
                   st.sampled_from(["https", "http", "ftp", "HTTPS", ""]),
                   st.sampled_from(["discord.com", "127.0.0.1", "[::1]", "[::1", "localhost",
                                    "10.0.0.5", "discord.com.evil", "user@discord.com", ""]),
                   st.sampled_from(["", ":0", ":443", ":65536", ":-1", ":x", ":8080"]),
                   st.sampled_from(["/api/webhooks/1/tok", "/api/v10/webhooks/123/a-b_c",
                                    "/api/webhooks//tok", "/api/webhooks/1/", "/"]),
                   TEXT)


def one_line(exc: UsageError) -> None:
    assert "\n" not in str(exc) and str(exc)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([k for k in KEYS if k not in ("IBKR_USERNAME", "IBKR_PASSWORD")]), TEXT)
def test_any_value_of_any_setting_is_accepted_or_one_line(key: str, value: str) -> None:
    try:
        deployment_from_env({**BASE, key: value})
    except UsageError as exc:
        one_line(exc)


@settings(max_examples=300, deadline=None)
@given(st.one_of(URLISH, TEXT))
def test_render_and_the_notifier_agree_on_every_webhook_url(url: str) -> None:
    if not url.strip():
        return  # blank: no webhook, for the settings as for the notifier
    try:
        hook = webhook.parse_webhook(url)
    except webhook.WebhookUrlError as exc:
        one_line(exc)
        with pytest.raises(UsageError, match="DISCORD_WEBHOOK_URL"):
            deployment_from_env({**BASE, "DISCORD_WEBHOOK_URL": url})
        return
    parts = urllib.parse.urlsplit(hook.url)
    webhook_id = parts.path.rstrip("/").split("/")[-2]
    assert hook.url.isascii() and parts.path.endswith("/" + hook.token)
    # The printable label holds the id and the host, nothing of the path after the id.
    assert hook.label == f"webhook {webhook_id} at {parts.hostname}"
    d = deployment_from_env({**BASE, "DISCORD_WEBHOOK_URL": url})
    assert d.discord_webhook_url is not None


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner,
                                                                                max_size=3),
                    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(HostConfig.__dataclass_fields__)), JSON,
                       max_size=3))
def test_any_settings_file_content_is_accepted_or_one_line(data: dict[str, object]) -> None:
    try:
        HostConfig.from_dict(json.loads(json.dumps(data)))
    except UsageError as exc:
        one_line(exc)


def test_the_required_keys_are_the_ones_the_property_keeps_valid() -> None:
    assert set(REQUIRED) == set(BASE)
