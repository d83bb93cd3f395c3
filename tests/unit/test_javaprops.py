"""config.ini reaches IBC exactly as the user wrote it: read back by a real JVM.

IBC loads config.ini with ``java.util.Properties.load(InputStream)`` (ISO-8859-1, backslash
escapes) and trims each value. Every password and login here goes through the product's path
(settings → render) and is read back by Java's own parser, by IBC's own ``DefaultSettings``
where the IBC zip is given, and by the simulator, which must agree with both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jvm_support import Jvm

from ibkr_ops import javaprops
from ibkr_ops.errors import UsageError
from ibkr_ops.render import render
from ibkr_ops.settings import Deployment, deployment_from_env
from ibkr_ops.sim import config as sim_config

PASSWORDS = [
    "Ab\\cd-9",              # a backslash: Properties would drop it
    "C:\\users\\x",          # \u without four hex digits: Properties would throw
    "\\\\server\\share\\",   # doubled and trailing backslashes (a trailing one continues a line)
    "\\u0041-not-an-escape",
    'say "hi"',
    "it's-fine",
    "$HOME$1",
    "#not-a-comment",
    "!not-a-comment-either",
    "a=b=c",
    "key:value",
    "=leading-equals",
    ":leading-colon",
    "inner  blanks stay",
    "Pässwörd",              # Latin-1: raw UTF-8 bytes would arrive as PÃ¤sswÃ¶rd
    "ÿþ-latin1-edges",
    "€uro-42",               # outside Latin-1
    "emoji-😀-🔐",           # outside the BMP: UTF-16 surrogate pairs in Java
    "密码-Пароль-كلمة",      # CJK, Cyrillic, Arabic
    "tab\tinside",           # a control character inside the value is carried too
    "`backtick`;semi[section]",
    "%s{0}&<>|*?~^",
]
LOGINS = ["jdoe", "émile", "user\\x", "j.doe@example.com", "名前", "ab#c=d:e!f"]


def deployment(username: str = "jdoe", password: str = "pw") -> Deployment:  # noqa: S107
    return deployment_from_env({"IBKR_USERNAME": username, "IBKR_PASSWORD": password,
                                "IBKR_TRADING_MODE": "paper", "TWS_MAJOR_VRSN": "1030"})


def config_ini(d: Deployment) -> bytes:
    return next(f.content for f in render(d) if f.path == "/etc/ibkr/config.ini")


CASES = [(login, password) for password in PASSWORDS for login in LOGINS[:1]] + \
        [(login, "Pässwörd\\€") for login in LOGINS[1:]]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One rendered config.ini per case, in CASES order."""
    folder = tmp_path_factory.mktemp("ini")
    paths = []
    for number, (login, password) in enumerate(CASES):
        path = folder / f"{number}.ini"
        path.write_bytes(config_ini(deployment(login, password)))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def java_view(jvm: Jvm, rendered: list[Path]) -> list[dict[str, str]]:
    """``Properties.load`` of every rendered file, in one JVM."""
    results = jvm.properties(*rendered)
    assert all("props" in r for r in results), results
    return [r["props"] for r in results]


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)), ids=repr)
def test_java_properties_read_the_login_and_password_as_written(
        java_view: list[dict[str, str]], index: int, case: tuple[str, str]) -> None:
    login, password = case
    assert java_view[index]["IbPassword"] == password
    assert java_view[index]["IbLoginId"] == login


def test_ibc_default_settings_read_them_as_written(jvm: Jvm, rendered: list[Path]) -> None:
    """IBC's own class (Properties.load, then getString's trim) gives IBKR what was written."""
    jvm.require_ibc()
    seen = jvm.ibc_settings(["IbLoginId", "IbPassword"], *rendered)
    assert seen == [{"IbLoginId": login, "IbPassword": password} for login, password in CASES]


def test_simulator_reads_every_rendered_file_as_java_does(
        java_view: list[dict[str, str]], rendered: list[Path]) -> None:
    """Every key of every rendered file, not only the credentials (the sim trims like IBC)."""
    for path, props in zip(rendered, java_view, strict=True):
        trimmed = {k: v.strip("".join(map(chr, range(0x21)))) for k, v in props.items()}
        assert sim_config.read_properties(path) == trimmed


def test_rendered_config_is_ascii_with_the_old_values_unchanged() -> None:
    """Plain values keep their plain form: the reference renders stay readable."""
    text = config_ini(deployment("jdoe", "Pa55-word!secret")).decode("ascii")
    assert "IbLoginId=jdoe\n" in text and "IbPassword=Pa55-word!secret\n" in text
    assert "AutoRestartTime=04:31 PM\n" in text


# Raw Properties files: the simulator's reader must agree with Java's on each.
RAW = [
    b"a=1\nb = 2\nc:3\nd 4\ne\t=\t5\nf\\\n  g=6\n",
    b"  # comment\n! comment\n#c\\\nkey=after-a-comment-ending-in-backslash\n",
    b"k=continued \\\n   line \\\\\nnext=x\r\nwin=crlf\r\nmac=cr\rlast=eof\\",
    b"k\\ ey\\=x=v\\tw\\nx\\fy\\rz\\q\n=empty-key\n:also\nnovalue\n\n\n",
    b"k=\\u00e9\\u20ac\\ud83d\\ude00\nlat=\xe9\xff\nsp=\\  two\n",
    b"k=v \t\f\ntrail=\\\n",
    b"k=C:\\users\\x\n",
    b"k=\\u12\n",
    b"k=\\u12G4\n",
    b"dup=1\ndup=2\n",
    b"a=1\\\n\nb=2\n",
    b"a=1\\\r\n b=2\r\n",
]


def test_simulator_parser_agrees_with_java_on_raw_files(jvm: Jvm, tmp_path: Path) -> None:
    paths = []
    for number, data in enumerate(RAW):
        paths.append(tmp_path / f"{number}.properties")
        paths[-1].write_bytes(data)
    for data, java in zip(RAW, jvm.properties(*paths), strict=True):
        if "error" in java:
            with pytest.raises(ValueError, match="Malformed"):
                sim_config.parse_properties(data)
            assert "Malformed \\uxxxx encoding" in java["error"]
        else:
            assert sim_config.parse_properties(data) == java["props"], data


def test_a_malformed_escape_stops_the_simulator_as_it_stops_ibc(tmp_path: Path) -> None:
    ini = tmp_path / "config.ini"
    ini.write_bytes(b"IbPassword=C:\\users\\x\n")
    with pytest.raises(sim_config.ConfigError) as caught:
        sim_config.SimConfig().apply_ini(ini)
    assert caught.value.exit_code == 1 and "Malformed" in str(caught.value)


@pytest.mark.parametrize("password", [" leading", "trailing ", "\tlead-tab", "end-newline\n",
                                      "\x00nul-first", "   "])
def test_a_password_ibc_would_trim_is_refused_in_one_line(password: str) -> None:
    with pytest.raises(UsageError) as caught:
        deployment(password=password)
    message = str(caught.value)
    assert "\n" not in message and "IBKR_PASSWORD" in message
    assert password.strip() not in message or not password.strip()


def test_a_login_ibc_would_trim_is_refused() -> None:
    with pytest.raises(UsageError, match="IBKR_USERNAME"):
        deployment(username="jdoe ")


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_escape_round_trips_through_the_properties_reader(value: str) -> None:
    """Any text, escaped, reads back as itself (the sim's reader agrees with Java above)."""
    line = ("k=" + javaprops.escape(value) + "\n").encode("ascii")
    assert sim_config.parse_properties(line) == {"k": value}
