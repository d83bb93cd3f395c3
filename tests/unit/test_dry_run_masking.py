"""A dry run's diffs hold no secret: not the planned ones, not the host's current ones, in no
form a file can spell them (raw, quoted for systemd, escaped for Java, JSON, the token)."""

from __future__ import annotations

import json

import pytest

from ibkr_ops import javaprops
from ibkr_ops.host import envfile
from ibkr_ops.remote import diff
from ibkr_ops.render import render
from ibkr_ops.settings import Deployment, deployment_from_env

OLD_HOOK = "https://discord.com/api/webhooks/111111111111111111/old-token_AAAA"
NEW_HOOK = "https://discord.com/api/webhooks/222222222222222222/new-token_BBBB"
PASSWORDS = ["plain-Pw-123", 'quo"te\\back', "dollar$$`tick`", "Pässwörd€😀", "#hash ;semi",
             "C:\\users\\x", "two  blanks", "it's=a:b!c"]


def deployment(password: str, hook: str | None, **extra: str) -> Deployment:
    env = {"IBKR_USERNAME": "jdoe", "IBKR_PASSWORD": password, "IBKR_TRADING_MODE": "paper",
           "TWS_MAJOR_VRSN": "1030", **extra}
    if hook:
        env["DISCORD_WEBHOOK_URL"] = hook
    return deployment_from_env(env)


def spellings(secret: str) -> list[str]:
    quoted = envfile.quote(secret)
    out = {secret, quoted, quoted.strip('"'), javaprops.escape(secret), json.dumps(secret)[1:-1]}
    if "/webhooks/" in secret:
        out.add(secret.rsplit("/", 1)[-1])
    return sorted(out)


def dry_run(old: Deployment | None, new: Deployment) -> str:
    """What the install's dry run prints for these two deployments' files."""
    before = {f.path: f.content for f in render(old)} if old else {}
    changes = [(f.path, before.get(f.path), f.content) for f in render(new)
               if before.get(f.path) != f.content]
    planned = [s.reveal() for s in (new.password, new.discord_webhook_url) if s]
    return "".join(diff.unified(changes, planned))


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        for spelling in spellings(secret):
            assert spelling not in text, f"{spelling!r} shown"


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_first_install_shows_no_secret(password: str) -> None:
    text = dry_run(None, deployment(password, NEW_HOOK))
    assert "+IbPassword=********\n" in text and "+IBKR_PASSWORD=********\n" in text
    assert "+DISCORD_WEBHOOK_URL=********\n" in text
    assert_hidden(text, password, NEW_HOOK)


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_rotation_shows_neither_the_old_nor_the_new_secrets(password: str) -> None:
    text = dry_run(deployment("Old-Pw-9\\q\"", OLD_HOOK), deployment(password, NEW_HOOK))
    assert_hidden(text, password, NEW_HOOK, "Old-Pw-9\\q\"", OLD_HOOK)
    assert "-IBKR_PASSWORD=********\n" in text
    assert "+IBKR_PASSWORD=******** (changed)\n" in text
    assert "+IbPassword=******** (changed)\n" in text
    assert "+DISCORD_WEBHOOK_URL=******** (changed)\n" in text


def test_an_unchanged_secret_is_not_called_changed() -> None:
    text = dry_run(deployment("Same-Pw-1", NEW_HOOK),
                   deployment("Same-Pw-1", NEW_HOOK, IBKR_API_PORT="4102"))
    assert "+OverrideTwsApiPort=4102" in text and "(changed)" not in text
    assert "Same-Pw-1" not in text


def test_a_removed_webhook_hides_the_old_one() -> None:
    text = dry_run(deployment("Pw-1", OLD_HOOK), deployment("Pw-1", None))
    assert_hidden(text, OLD_HOOK, "Pw-1")
    assert "-DISCORD_WEBHOOK_URL=********\n" in text


HAND_EDITED = [
    # (host's credentials.env, host's config.ini) in states a person might leave them in
    ("IBKR_PASSWORD = 'Hand Edited 1' # note\n", "IbPassword = Hand Edited 1\n"),
    ('\ufeffIBKR_PASSWORD="Hand\nEdited 1"\n', "IbPassword:Hand\\\n    Edited 1\n"),
    ("IBKR_PASSWORD=Hand-Edited-1\nIBKR_PASSWORD=Hand-Edited-2\n",
     "  IbPassword Hand-Edited-1\nIbPassword=Hand-Edited-2\n"),
    ('IBKR_PASSWORD="Hand-Edited-1 never closed\n', "IbPassword=Hand-Edited-1\\\\\n"),
    ("DISCORD_WEBHOOK_URL=" + OLD_HOOK + "\n",
     "# old hook in a comment: " + OLD_HOOK + "\nIbPassword=x\n"),
]


@pytest.mark.parametrize(("env", "ini"), HAND_EDITED)
def test_the_hosts_current_files_are_masked_whatever_their_state(env: str, ini: str) -> None:
    new = deployment("New-Pw-2", NEW_HOOK)
    changes = [("/etc/ibkr/credentials.env", env.encode(),
                next(f.content for f in render(new) if f.path.endswith(".env"))),
               ("/etc/ibkr/config.ini", ini.encode(),
                next(f.content for f in render(new) if f.path.endswith(".ini")))]
    text = "".join(diff.unified(changes, ["New-Pw-2", NEW_HOOK]))
    assert_hidden(text, "Hand Edited 1", "Hand-Edited-1", "Hand-Edited-2", "Edited 1", OLD_HOOK,
                  "New-Pw-2", NEW_HOOK)


def test_a_secret_outside_its_key_is_masked_in_any_file() -> None:
    unit = b"[Service]\nEnvironment=X=Old-Pw-9\n"
    text = "".join(diff.unified(
        [("/etc/ibkr/credentials.env", b"IBKR_PASSWORD=Old-Pw-9\n", b"IBKR_PASSWORD=New\n"),
         ("/etc/systemd/system/x.service", unit, b"[Service]\n")], ["New"]))
    assert "Old-Pw-9" not in text and "Environment=X=********" in text
