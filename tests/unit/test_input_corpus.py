"""Inputs as users really have them: each is one line and exit status 2 from the real entry
points (`invoke render`, `ibkr-notify`, `ibkr-health-check`), nothing written, no secret and
no traceback shown; or it round-trips exactly."""
# ruff: noqa: RUF001 - digits of other scripts, on purpose: they must be refused

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from host_run import run_tool
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.host.cli import health_main, notify_main
from ibkr_ops.host.envfile import parse_env
from ibkr_ops.render import env_file_text
from ibkr_ops.settings import load_deployment
from ibkr_ops.tasks.deploy import render as render_task

PASSWORD = "Corpus-Pw-never-shown-42"
BASE = ("IBKR_USERNAME=alice\n"
        f"IBKR_PASSWORD={PASSWORD}\n"
        "IBKR_TRADING_MODE=paper\n"
        "TWS_MAJOR_VRSN=1030\n")
NINES = "9" * 5000

# (extra line for credentials.env, words the one-line refusal must contain)
SETTINGS = [
    ("IBKR_TIMEZONE=America", "IBKR_TIMEZONE"),  # a directory of zones, not a zone
    ("IBKR_TIMEZONE=../../../etc/passwd", "IBKR_TIMEZONE"),
    ("IBKR_TIMEZONE=Mars/Olympus", "IBKR_TIMEZONE"),
    (f"IBKR_API_PORT={NINES}", "IBKR_API_PORT"),
    (f"IBKR_HEALTH_CLIENT_ID={NINES}", "IBKR_HEALTH_CLIENT_ID"),
    (f"IBKR_MEMORY_MAX_MB={NINES}", "IBKR_MEMORY_MAX_MB"),
    ("IBKR_API_PORT=٤٠٠٢", "IBKR_API_PORT"),  # Arabic-Indic digits
    ("IBKR_API_PORT=+4002", "IBKR_API_PORT"),
    ("IBKR_API_PORT=4002.0", "IBKR_API_PORT"),
    ("IBKR_API_PORT=0x0FA2", "IBKR_API_PORT"),
    ("IBKR_HEALTH_INTERVAL_S=-5", "IBKR_HEALTH_INTERVAL_S"),
    ("IBKR_RESTART_TIME=١٦:٣٠", "IBKR_RESTART_TIME"),
    ("IBKR_DISPLAY=:١", "IBKR_DISPLAY"),
    ("IBKR_RESTART_BLACKOUTS=Mon ١٦:٠٠-١٦:٢٠", "IBKR_RESTART_BLACKOUTS"),
]
VERSIONS = [("١٠٣٠", "Arabic-Indic"), ("１０３０", "fullwidth"), ("10.30", "dotted")]
WEBHOOKS = [
    "http://[::1",
    "http://[::1]:99999/api/webhooks/1/SeCrEtTok3n",
    "http://localhost:8080/api/webhooks/1/SeCrEtTok3n",
    "https://discord.com:0/api/webhooks/1/SeCrEtTok3n",
    "https://discord.com:65536/api/webhooks/1/SeCrEtTok3n",
    "https://discord.com:-1/api/webhooks/1/SeCrEtTok3n",
    "https://discord.com:abc/api/webhooks/1/SeCrEtTok3n",
    "https://discord.com/api/webhooks/1/SeCr.EtTok3n",
    "https://discord.com/api/webhooks/١/SeCrEtTok3n",
    "https://discord.com/api/webhooks/1/SeCrEtTök3n",
    "https://user:pass@discord.com/api/webhooks/1/SeCrEtTok3n",
    "http://10.0.0.5/api/webhooks/1/SeCrEtTok3n",
    "http://discord.com/api/webhooks/1/SeCrEtTok3n",
    "https://evil.example/api/webhooks/1/SeCrEtTok3n",
    "https://discord.com.evil.example/api/webhooks/1/SeCrEtTok3n",
    "https://discord.com/api/webhooks/1/SeCrEtTok3n#fragment",
    "https://discord.com/api/webhooks/1/SeCrEtTok3n?x=<script>",
    "https://discord.com/api/webhooks/1/ SeCrEtTok3n",
    "https://discord.com/api/webhooks/1/" + "t" * 3000,
    "ftp://discord.com/api/webhooks/1/SeCrEtTok3n",
]
# (credentials.env text, words of the refusal): what an editor or a person leaves in a file
FILES = [
    ("\ufeff" + BASE, "byte-order mark"),
    (BASE.replace(f"={PASSWORD}", f'="{PASSWORD}" # my password'), "after the closing quote"),
    (BASE.replace(f"={PASSWORD}", "=Ab\\cd-9"), "unquoted backslash"),
    (BASE + "# old value was \\\n", "comment ends in a backslash"),
    ("export " + BASE, "remove 'export'"),
    (BASE + "IBKR_API_PORT=40\0" + "02\n", "NUL"),
    (BASE.replace(f"={PASSWORD}", f'="{PASSWORD}'), "never closed"),
    (BASE.replace(f"={PASSWORD}", f"=' {PASSWORD}'"), "IBC strips"),
    (BASE.replace(f"={PASSWORD}", f'="{PASSWORD}\t"'), "IBC strips"),
    (BASE.replace("=alice", "='alice '"), "IBKR_USERNAME"),
    (BASE + "IBKR_API_PORT\n", "expected KEY=VALUE"),
]


def write_private(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "credentials.env"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(path, 0o600)
    return path


def refused_by_render(credentials: str, out: Path) -> str:
    """`invoke render`'s one line, checked: status 2, one line, nothing written, no secret."""
    before = set(out.parent.iterdir())
    with pytest.raises(Exit) as caught:
        render_task(Context(), credentials=[credentials], out=str(out), config_only=True)
    message = str(caught.value.message)
    assert caught.value.code == 2, message
    assert "\n" not in message and PASSWORD not in message and "SeCr" not in message
    assert set(out.parent.iterdir()) == before
    return message


@pytest.mark.parametrize(("line", "words"), SETTINGS, ids=[s[0][:40] for s in SETTINGS])
def test_a_bad_setting_is_one_line(tmp_path: Path, line: str, words: str) -> None:
    path = write_private(tmp_path, BASE + line + "\n")
    assert words in refused_by_render(str(path), tmp_path / "out")


@pytest.mark.parametrize(("version", "kind"), VERSIONS)
def test_a_version_in_other_digits_is_refused(tmp_path: Path, version: str, kind: str) -> None:
    del kind
    path = write_private(tmp_path, BASE.replace("=1030", f"={version}"))
    assert "TWS_MAJOR_VRSN" in refused_by_render(str(path), tmp_path / "out")


@pytest.mark.parametrize("url", WEBHOOKS, ids=[u[:45] for u in WEBHOOKS])
def test_a_webhook_the_host_would_refuse_is_refused_by_render(tmp_path: Path, url: str) -> None:
    path = write_private(tmp_path, BASE + f"DISCORD_WEBHOOK_URL='{url}'\n")
    message = refused_by_render(str(path), tmp_path / "out")
    assert "DISCORD_WEBHOOK_URL" in message and url not in message


@pytest.mark.parametrize("url", WEBHOOKS, ids=[u[:45] for u in WEBHOOKS])
def test_and_the_hosts_notifier_refuses_the_same_ones(tmp_path: Path, url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """One validation: ibkr-notify says the same, in one line, with status 2."""
    settings = tmp_path / "ops.json"
    settings.write_text(json.dumps({"credentials_file": str(tmp_path / "none.env")}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISCORD_WEBHOOK_URL", url)
        assert notify_main(["--config", str(settings), "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DISCORD_WEBHOOK_URL" in err and url not in err


@pytest.mark.parametrize(("text", "words"), FILES, ids=[w for _, w in FILES])
def test_a_file_as_editors_leave_it_is_one_true_line(tmp_path: Path, text: str,
                                                     words: str) -> None:
    path = write_private(tmp_path, text)
    assert words in refused_by_render(str(path), tmp_path / "out")


def test_latin1_bytes_name_their_line(tmp_path: Path) -> None:
    path = write_private(tmp_path, BASE.encode() + b"IBKR_SERVICE_USER=tr\xe4der\n")
    assert "line 5: not UTF-8" in refused_by_render(str(path), tmp_path / "out")


def _fifo(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "fifo", 0o600)
    return str(tmp_path / "fifo")


def _huge(tmp_path: Path) -> str:
    return str(write_private(tmp_path, BASE + "#" + "x" * 300_000 + "\n"))


def _loop(tmp_path: Path) -> str:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return str(tmp_path / "loop")


CREDENTIAL_PATHS: list[tuple[str, Callable[[Path], str], str]] = [
    ("dev-zero", lambda _: "/dev/zero", "is a device"),
    ("fifo", _fifo, "is a named pipe"),
    ("directory", str, "is a directory"),
    ("huge", _huge, "larger than"),
    ("symlink-loop", _loop, "cannot be read"),
    ("missing", lambda p: str(p / "absent.env"), "no such file"),
    ("nul", lambda p: str(p / "a\0b"), "NUL"),
]


@pytest.mark.parametrize(("name", "make", "words"), CREDENTIAL_PATHS,
                         ids=[c[0] for c in CREDENTIAL_PATHS])
def test_a_credentials_path_that_is_no_file_is_one_line(tmp_path: Path, name: str,
                                                        make: Callable[[Path], str],
                                                        words: str) -> None:
    del name
    work = tmp_path / "work"
    work.mkdir()
    assert words in refused_by_render(make(tmp_path), work / "out")


def _under_file(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile" / "out"


def _nonempty(tmp_path: Path) -> Path:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("x")
    return tmp_path / "full"


def _is_file(tmp_path: Path) -> Path:
    (tmp_path / "plain").write_text("x")
    return tmp_path / "plain"


OUTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("under-a-file", _under_file, "cannot write"),
    ("non-empty", _nonempty, "not empty"),
    ("a-file", _is_file, "not a directory"),
    ("in-proc", lambda _: Path("/proc/ibkr-ops-out"), "cannot write"),
    ("nul", lambda p: p / "o\0ut", "NUL"),
]


@pytest.mark.parametrize(("name", "make", "words"), OUTS, ids=[o[0] for o in OUTS])
def test_a_bad_out_is_one_line(tmp_path: Path, name: str, make: Callable[[Path], Path],
                               words: str) -> None:
    del name
    creds = tmp_path / "creds"
    creds.mkdir()
    path = write_private(creds, BASE)
    out = make(tmp_path)
    with pytest.raises(Exit) as caught:
        render_task(Context(), credentials=[str(path)], out=str(out), config_only=True)
    assert caught.value.code == 2 and words in str(caught.value.message)
    assert "\n" not in str(caught.value.message)
    assert not [p for p in tmp_path.rglob(".*") if p.name.startswith((".out", ".full", ".o"))]


# Exact round trips: the password reaches the host's credentials.env and its parser intact.
ROUND_TRIPS = [
    ("'$HOME and `cmd`'", "$HOME and `cmd`"),
    ("'C:\\users\\x'", "C:\\users\\x"),
    ('"say \\"hi\\""', 'say "hi"'),
    ('"# not a comment ;"', "# not a comment ;"),
    ('"two\nlines"', "two\nlines"),
    ("Pässwörd€😀", "Pässwörd€😀"),
    ('"in  ner  blanks"', "in  ner  blanks"),
    ("a=b:c!d", "a=b:c!d"),
]


@pytest.mark.parametrize(("written", "meant"), ROUND_TRIPS, ids=[m for _, m in ROUND_TRIPS])
@pytest.mark.parametrize("ending", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_password_round_trips_to_the_host(tmp_path: Path, written: str, meant: str,
                                            ending: str) -> None:
    text = BASE.replace(f"={PASSWORD}", f"={written}").replace("\n", ending)
    d = load_deployment(write_private(tmp_path, text))
    # A line end inside quotes is part of the value, CR and all, as systemd reads it.
    meant = meant.replace("\n", ending)
    assert d.password.reveal() == meant
    assert parse_env(env_file_text(d))["IBKR_PASSWORD"] == meant


# ops.json as the host tools read it (the settings file has no secrets; still one line).
OPS = [
    ('{"notify_timeout_s": NaN}', "NaN"),
    ('{"health_timeout_s": Infinity}', "Infinity"),
    ('{"health_timeout_s": 1e999}', "finite"),
    ('{"api_port": ' + NINES + "}", "invalid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"display": ":١"}', "display"),
    ('{"api_port": "4002"}', "api_port"),
    ("\ufeff{}", "invalid JSON"),
]


@pytest.mark.parametrize(("text", "words"), OPS, ids=[w for _, w in OPS])
@pytest.mark.parametrize("tool", ["notify", "health"])
def test_a_bad_settings_file_is_one_line_for_the_host_tools(
        tmp_path: Path, text: str, words: str, tool: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "ops.json"
    settings.write_text(text)
    main = notify_main if tool == "notify" else health_main
    args = ["--config", str(settings), *(["x"] if tool == "notify" else [])]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_a_settings_path_that_is_no_file_is_one_line(tmp_path: Path, path: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    if path == "fifo":
        path = _fifo(tmp_path)
    assert health_main(["--config", path]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("args", [["--port", "٤٠٠٢"], ["--port", NINES], ["--client-id", NINES],
                                  ["--client-id", "١"], ["--port", "0"]])
def test_host_tool_options_take_ascii_numbers_only(args: list[str]) -> None:
    result = run_tool("ibkr-health-check", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
def test_invoke_render_from_the_shell_ends_with_one_line(tmp_path: Path, source: str) -> None:
    """The real command line, in a fresh process: bounded, status 2, no traceback."""
    if source == "fifo":
        source = _fifo(tmp_path)
    done = subprocess.run([sys.executable, "-m", "invoke", "render", "--credentials", source,
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0
