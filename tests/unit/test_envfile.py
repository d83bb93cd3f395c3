"""credentials.env read exactly as systemd's EnvironmentFile= reads it, or refused truthfully.

The same files go to a guest's real systemd in tests/integration/test_envfile_systemd.py.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from envfile_cases import READS, REFUSED
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_ops.errors import UsageError
from ibkr_ops.host.envfile import MAX_BYTES, format_env, parse_env, quote, read_env_file, scan
from ibkr_ops.render import env_file_text
from ibkr_ops.settings import deployment_from_env, load_deployment, parse_deployment


@pytest.mark.parametrize(("text", "expected"), READS, ids=repr)
def test_reads_what_systemd_reads(text: str, expected: dict[str, str]) -> None:
    assert parse_env(text) == expected


@pytest.mark.parametrize(("text", "line", "words", "systemd"), REFUSED, ids=repr)
def test_refuses_in_one_line_what_systemd_reads_otherwise(
        text: str, line: int, words: str, systemd: dict[str, str]) -> None:
    with pytest.raises(UsageError) as caught:
        parse_env(text, "creds.env")
    message = str(caught.value)
    assert message.startswith(f"creds.env, line {line}: ") and words in message
    assert "\n" not in message
    for value in systemd.values():  # the values are secrets: never in the message
        assert len(value) < 3 or value not in message


@pytest.mark.parametrize(("text", "line", "words", "systemd"), REFUSED, ids=repr)
def test_the_lenient_scan_reads_what_systemd_252_reads(
        text: str, line: int, words: str, systemd: dict[str, str]) -> None:
    """The refusal messages' claims ("systemd would ...") hold for the state machine."""
    del line, words
    entries = {e.key: e.value for e in scan(text) if e.key.isidentifier()}
    assert entries == systemd


def private_file(tmp_path: Path, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials.env"
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def test_a_windows_file_reads_like_a_unix_one(tmp_path: Path) -> None:
    unix = ('IBKR_USERNAME=alice\nIBKR_PASSWORD="Pa ss\\\\w0rd"\nIBKR_TRADING_MODE=paper\n'
            "TWS_MAJOR_VRSN=1030\n")
    windows = private_file(tmp_path, unix.replace("\n", "\r\n").encode())
    d = load_deployment(windows)
    assert d == parse_deployment(unix)
    assert d.password.reveal() == "Pa ss\\w0rd" and "\r" not in env_file_text(d)


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: os.mkfifo(p, 0o600), "is a named pipe"),
    (lambda p: p.write_bytes(b"A=" + b"x" * MAX_BYTES), "larger than"),
    (lambda p: p.write_bytes(b"A=1\nB=caf\xe9\n"), "line 2: not UTF-8"),
    (lambda p: p.symlink_to(p), "cannot be read"),
], ids=["directory", "fifo", "huge", "latin-1", "symlink-loop"])
def test_unreadable_inputs_are_one_line(tmp_path: Path, make: object, words: str) -> None:
    path = tmp_path / "credentials.env"
    make(path)  # type: ignore[operator]
    if path.is_file() and not path.is_symlink():
        os.chmod(path, 0o600)
    with pytest.raises(UsageError, match=words) as caught:
        read_env_file(path)
    assert "\n" not in str(caught.value)


def test_a_device_is_refused_without_reading_it() -> None:
    with pytest.raises(UsageError, match="is a device"):
        read_env_file(Path("/dev/zero"), private=False)


def test_a_group_readable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="chmod 600"):
        read_env_file(private_file(tmp_path, b"A=1\n", 0o640))


@pytest.mark.parametrize("value", ["plain", "", "two words", 'q"uote', "back\\slash", "$HOME",
                                   "`cmd`", "new\nline", "cr\rhere", " lead", "trail ", "#x",
                                   "'single'", "é€😀", "a\\\nb", "\t"])
def test_quote_reads_back_exactly(value: str) -> None:
    assert parse_env(f"K={quote(value)}\n") == {"K": value}


KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
VALUES = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=60)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_format_then_parse_is_the_identity(items: dict[str, str]) -> None:
    assert parse_env(format_env(items.items(), ["a header", ""])) == items


# What settings accept for a login and a password: no blank or control character at either
# end (IBC trims those), no whitespace in a login.
_EDGE = st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
_INNER = st.characters(exclude_categories=("Cs",), exclude_characters="\0")
PASSWORDS = st.one_of(st.text(_EDGE, min_size=1, max_size=1),
                      st.builds(lambda a, b, c: a + b + c, _EDGE, st.text(_INNER, max_size=30),
                                _EDGE))
LOGINS = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
                               exclude_characters=string.whitespace), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(LOGINS, PASSWORDS)
def test_what_install_writes_reads_back_identically_on_the_host(login: str,
                                                                password: str) -> None:
    """The operator's file → settings → the host's credentials.env → the host's parser."""
    operator_file = format_env([("IBKR_USERNAME", login), ("IBKR_PASSWORD", password),
                                ("IBKR_TRADING_MODE", "paper"), ("TWS_MAJOR_VRSN", "1030")])
    d = parse_deployment(operator_file)
    assert (d.username, d.password.reveal()) == (login, password)
    on_host = env_file_text(d)
    assert parse_env(on_host) == dict(d.env_items())
    assert parse_deployment(on_host) == d


def test_the_reference_files_keep_their_form() -> None:
    d = deployment_from_env({"IBKR_USERNAME": "live_user", "IBKR_PASSWORD": "CHANGE ME #live",
                             "IBKR_TRADING_MODE": "live", "TWS_MAJOR_VRSN": "1030"})
    assert 'IBKR_PASSWORD="CHANGE ME #live"\n' in env_file_text(d)
    assert "IBKR_USERNAME=live_user\n" in env_file_text(d)
