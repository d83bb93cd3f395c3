"""Unified diffs of what an install would change, with no secret in them, old or new.

A dry run shows each host file next to its planned content. In both, the values of the secret
keys of credentials.env and config.ini are masked by position, by each format's own reader
(so the host's current password and webhook are masked whatever they are, even in a file
hand-edited into any state), and then every remaining occurrence of a known secret, in each
form a file can hold it (raw, quoted for systemd, escaped for Java, in JSON, the webhook's
token alone), is masked wherever it is. A changed secret says so, never what it was.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Collection, Iterable

from ibkr_ops import javaprops
from ibkr_ops.host import envfile
from ibkr_ops.settings import SECRET_KEYS

MASK = "********"
# Shorter strings would mask unrelated text; the secret keys' own values are masked by
# position whatever their length.
_SHORTEST_FORM = 4
Masker = Callable[[str, Collection[str], Collection[str]], tuple[str, dict[str, str]]]


def _masker(path: str) -> tuple[Masker, Collection[str]] | None:
    if path.endswith(".env"):
        return envfile.mask, SECRET_KEYS
    if path.endswith(".ini"):
        return javaprops.mask, javaprops.SECRET_KEYS
    return None


def forms(secrets: Iterable[str]) -> list[str]:
    """Every way the files can spell each secret, longest first (so none survives in part)."""
    found: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        quoted = envfile.quote(secret.replace("\0", ""))
        found |= {secret, quoted, quoted.strip('"'), javaprops.escape(secret),
                  json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        if "/webhooks/" in secret:
            found.add(secret.rstrip("/").rsplit("/", 1)[-1])
    return sorted((f for f in found if len(f) >= _SHORTEST_FORM), key=len, reverse=True)


def host_secrets(path: str, old: bytes | None) -> list[str]:
    """The secret values a host's current file holds (an environment file, read leniently)."""
    if old is None or not path.endswith(".env"):
        return []
    entries = envfile.scan(old.decode(errors="replace"))
    return [e.value for e in entries if e.key.lstrip("\ufeff") in SECRET_KEYS]


def masked_pair(path: str, old: str, new: str, secrets: list[str]) -> tuple[str, str]:
    """``old`` and ``new`` with every secret masked (``secrets``: as ``forms`` returns)."""
    masker = _masker(path)
    if masker is not None:
        mask, keys = masker
        _, before = mask(old, keys, ())
        _, after = mask(new, keys, ())
        changed = {k for k in after if k in before and after[k] != before[k]}
        old, new = mask(old, keys, ())[0], mask(new, keys, changed)[0]
    for secret in secrets:
        old, new = old.replace(secret, MASK), new.replace(secret, MASK)
    return old, new


def unified(changes: list[tuple[str, bytes | None, bytes]], planned: Iterable[str]) -> list[str]:
    """Diff lines for ``(path, host's bytes or None, planned bytes)``; ``planned`` are the
    deployment's secrets, and the host's current ones are read from its files here."""
    known = [*planned]
    for path, old, _ in changes:
        known += host_secrets(path, old)
    secrets = forms(known)
    out: list[str] = []
    for path, old, new in changes:
        before, after = masked_pair(path, (old or b"").decode(errors="replace"),
                                    new.decode(errors="replace"), secrets)
        out += difflib.unified_diff(before.splitlines(keepends=True),
                                    after.splitlines(keepends=True),
                                    f"{path} (host)" if old is not None else "/dev/null",
                                    f"{path} (new)")
    return out
