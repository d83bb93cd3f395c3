"""systemd's own EnvironmentFile= parser (a guest's systemd 252) reads our files as we do.

Each file goes to a transient unit with ``EnvironmentFile=``; the unit's environment, as the
service sees it (``env -0``), is compared with what ``envfile`` reads, and, for the files
it refuses, with what the refusal says systemd would read.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from envfile_cases import READS, REFUSED

from ibkr_ops import sandbox
from ibkr_ops.host.envfile import format_env, parse_env
from ibkr_ops.sandbox.connect import connection

pytestmark = pytest.mark.root

ALPHABET = [*"aZ09 \t\n\r\"'\\$`#;=:!@%&*(){}[]|<>?~^,./-_+", "é", "€", "😀", "密", "\x01", "\x7f",
            "\u00a0"]


def generated_files(count: int = 40) -> list[tuple[str, dict[str, str]]]:
    """Files as `install` writes them, of values drawn from the characters that need care."""
    rng = random.Random(22)  # noqa: S311 - test data, fixed for reproducibility
    files = []
    for _ in range(count):
        values = {f"K{i}": "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 30)))
                  for i in range(3)}
        files.append((format_env(values.items(), ["written like install writes"]), values))
    return files


def systemd_environments(guest: sandbox.Guest, texts: list[str], tmp_path: Path) -> list[bytes]:
    """``env -0`` of a transient unit per file, as raw bytes."""
    outputs = []
    with connection(guest.name) as conn:
        conn.run("rm -rf /root/envtest && mkdir -m 0700 /root/envtest", hide=True)
        for number, text in enumerate(texts):
            local = tmp_path / f"{number}.env"
            local.write_bytes(text.encode())
            conn.put(str(local), f"/root/envtest/{number}.env")
        conn.run("for f in /root/envtest/*.env; do systemd-run --wait --quiet --collect "
                 "-p EnvironmentFile=$f -p StandardOutput=file:$f.out /usr/bin/env -0 "
                 "|| exit 1; done", hide=True)
        for number in range(len(texts)):
            local = tmp_path / f"{number}.out"
            conn.get(f"/root/envtest/{number}.env.out", str(local))
            outputs.append(local.read_bytes())
        conn.run("rm -rf /root/envtest", hide=True)
    return outputs


def ours(env: bytes, keys: set[str]) -> dict[str, str]:
    pairs = (item.decode().partition("=") for item in env.split(b"\0") if item)
    return {key: value for key, _, value in pairs if key in keys}


def test_systemd_reads_exactly_what_the_parser_reads(sandbox_guest: sandbox.Guest,
                                                     tmp_path: Path) -> None:
    generated = generated_files()
    cases = [*READS, *generated]
    for text, expected in cases:
        assert parse_env(text) == expected
    envs = systemd_environments(sandbox_guest, [text for text, _ in cases], tmp_path)
    for (text, expected), env in zip(cases, envs, strict=True):
        assert ours(env, set(expected) | {"K", "A", "B", "C"}) == expected, text


def test_systemd_reads_the_refused_files_as_their_messages_say(sandbox_guest: sandbox.Guest,
                                                               tmp_path: Path) -> None:
    envs = systemd_environments(sandbox_guest, [text for text, *_ in REFUSED], tmp_path)
    for (text, _, _, systemd), env in zip(REFUSED, envs, strict=True):
        assert ours(env, {"K", "A", "B", "\ufeffA", "1B", "export B"}) == systemd, text
