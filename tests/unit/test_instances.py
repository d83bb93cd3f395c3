"""Gateways side by side on one host: their names and the clashes refused before any host."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.errors import UsageError
from ibkr_ops.host import schema
from ibkr_ops.instances import (
    INSTANCE_OVERHEAD_MB,
    RESTART_GAP_MIN,
    SYSTEM_HEADROOM_MB,
    Instance,
    check_installed,
    check_memory,
    host_instances,
    memory_needed_mb,
    minutes_apart,
    stagger,
)
from ibkr_ops.remote.facts import ENV_KEYS, ENV_PROBE, Facts, Installed, parse_facts
from ibkr_ops.settings import load_deployment
from ibkr_ops.tasks.common import instances
from ibkr_ops.tasks.deploy import render as render_task
from ibkr_ops.tasks.hosts import install as install_task
from ibkr_ops.tasks.migrate import go_live

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
PAPER = (REFERENCE / "paper.env").read_text()
# The reference live file, on a display and command port of its own beside paper.
LIVE = (REFERENCE / "live.env").read_text() + "IBKR_DISPLAY=:2\nIBKR_COMMAND_SERVER_PORT=7463\n"
PASSWORDS = ("CHANGE-ME-placeholder", "CHANGE ME #live")


def private(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


def pair(tmp_path: Path, live: str = LIVE, paper: str = PAPER) -> list[str]:
    return [private(tmp_path, "paper.env", paper), private(tmp_path, "live.env", live)]


def without(text: str, key: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith(f"{key}="))


def refused(files: list[str], out: Path) -> str:
    """The one line both `install` and `render` refuse with: status 2, no secret in it, no
    file written and no host contacted (port 1 refuses connections: had install tried, its
    report would say "cannot connect" and the status be 1)."""
    messages = []
    for run in (lambda: install_task(Context(), host=["root@127.0.0.1:1"], credentials=files),
                lambda: render_task(Context(), credentials=files, out=str(out))):
        with pytest.raises(Exit) as info:
            run()
        message = str(info.value.message)
        assert info.value.code == 2, message
        assert "\n" not in message and not any(p in message for p in PASSWORDS)
        messages.append(message)
    assert not out.exists()
    assert messages[0] == messages[1]
    return messages[0]


CLASHES = [
    ("same name", LIVE + "IBKR_INSTANCE=paper\n", "both are Gateway instance 'paper'; set another "
                                                 "IBKR_INSTANCE in one of them"),
    ("same api port", LIVE + "IBKR_API_PORT=4002\n", "both use port 4002 (IBKR_API_PORT)"),
    ("same command port", without(LIVE, "IBKR_COMMAND_SERVER_PORT"),
     "both use port 7462 (IBKR_COMMAND_SERVER_PORT)"),
    ("api port is the other's command port",
     without(LIVE, "IBKR_COMMAND_SERVER_PORT") + "IBKR_COMMAND_SERVER_PORT=4002\n",
     "both use port 4002 (IBKR_API_PORT in the first, IBKR_COMMAND_SERVER_PORT in the second)"),
    ("same display", without(LIVE, "IBKR_DISPLAY"), "both use X display :1 (IBKR_DISPLAY)"),
    ("same account", LIVE.replace("IBKR_USERNAME=live_user", "IBKR_USERNAME=Demo_User"),
     "both log in as the same IBKR_USERNAME: the second login would log the first out"),
    ("service user", LIVE + "IBKR_SERVICE_USER=ops\n",
     "IBKR_SERVICE_USER differs ('trader' and 'ops'), but the Gateways of a host run as one user"),
    ("gateway build", LIVE.replace("TWS_MAJOR_VRSN=1030", "TWS_MAJOR_VRSN=1045"),
     "TWS_MAJOR_VRSN differs ('1030' and '1045'), but the Gateways of a host run one Gateway "
     "installation"),
    ("gateway pin", LIVE + "IBKR_GATEWAY_SHA256=" + "ab" * 32 + "\n",
     "IBKR_GATEWAY_SHA256 differs (none and 'abababababab...')"),
]


@pytest.mark.parametrize(("live", "words"), [(live, words) for _, live, words in CLASHES],
                         ids=[name for name, _, _ in CLASHES])
def test_a_clash_is_one_line_naming_both_files(tmp_path: Path, live: str, words: str) -> None:
    files = pair(tmp_path, live)
    message = refused(files, tmp_path / "out")
    assert message.startswith(f"error: {files[0]} and {files[1]}: "), message
    assert words in message


def test_two_files_of_one_mode_are_told_to_name_their_instances(tmp_path: Path) -> None:
    other = PAPER.replace("IBKR_USERNAME=demo_user", "IBKR_USERNAME=second_paper_user")
    message = refused(pair(tmp_path, other), tmp_path / "out")
    assert "both are Gateway instance 'paper' (named by its trading mode: neither sets " \
           "IBKR_INSTANCE)" in message


def test_the_same_file_twice_is_refused(tmp_path: Path) -> None:
    paper = private(tmp_path, "paper.env", PAPER)
    again = f"{tmp_path}/./paper.env"
    message = refused([paper, again], tmp_path / "out")
    assert f"--credentials {paper} and {again} are the same file" in message


@pytest.mark.parametrize(("name", "why"), [
    ("Paper", "use 1-32 lower-case letters"),
    ("paper@2", "use 1-32 lower-case letters"),
    ("a" * 33, "use 1-32 lower-case letters"),
    ("backup", "is taken by the host's own backup directory"),
])
def test_an_instance_name_the_layout_refuses_is_refused(tmp_path: Path, name: str,
                                                        why: str) -> None:
    files = pair(tmp_path, LIVE + f"IBKR_INSTANCE={name}\n")
    message = refused(files, tmp_path / "out")
    assert message.startswith(f"error: {files[1]}: IBKR_INSTANCE is refused: ") and why in message


def test_paper_and_live_are_two_instances_named_by_their_mode(tmp_path: Path) -> None:
    found = host_instances([(f, load_deployment(Path(f))) for f in pair(tmp_path)])
    assert [(i.name, i.layout.gateway_unit) for i in found] == [
        ("paper", "ibkr-gateway@paper.service"), ("live", "ibkr-gateway@live.service")]
    assert [i.settings_dir for i in found] == ["/home/trader/Jts-paper", "/home/trader/Jts-live"]


def test_render_writes_each_instance_in_its_own_units_and_paths(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_task(Context(), credentials=pair(tmp_path), out=str(out))
    units = out / "etc/systemd/system"
    assert sorted(p.name for p in units.iterdir() if "gateway@" in p.name) == [
        "ibkr-gateway@live.service", "ibkr-gateway@paper.service"]
    assert not (units / "ibkr-gateway.service").exists()
    live = (units / "ibkr-gateway@live.service").read_text()
    assert "Requires=xvfb@live.service" in live
    assert "--tws-settings-path=/home/trader/Jts-live" in live
    assert "--ibc-ini=/etc/ibkr/live/config.ini" in live and "--mode=live" in live
    assert "After=ibkr-gateway@paper.service" in (units / "ibkr-health-check@paper.service").read_text()
    assert "Unit=ibkr-gateway-restart@live.service" in (units / "ibkr-gateway-restart@live.timer").read_text()
    assert "TradingMode=live" in (out / "etc/ibkr/live/config.ini").read_text()
    assert "TradingMode=paper" in (out / "etc/ibkr/paper/config.ini").read_text()
    assert (out / "usr/local/lib/ibkr-ops/ibkr_ops.zip").is_file()  # shared, once
    assert not (out / "etc/ibkr/config.ini").exists()


def test_one_file_keeps_the_single_gateway_layout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_task(Context(), credentials=[private(tmp_path, "paper.env", PAPER)], out=str(out),
                config_only=True)
    golden = REFERENCE / "paper"
    rendered = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert rendered == sorted(p.relative_to(golden) for p in golden.rglob("*") if p.is_file())
    assert all((out / p).read_bytes() == (golden / p).read_bytes() for p in rendered)


def test_one_file_with_a_name_is_that_instance(tmp_path: Path) -> None:
    files = [private(tmp_path, "live.env", LIVE + "IBKR_INSTANCE=main\n")]
    out = tmp_path / "out"
    render_task(Context(), credentials=files, out=str(out), config_only=True)
    assert (out / "etc/systemd/system/ibkr-gateway@main.service").is_file()
    assert "IBKR_INSTANCE=main" in (out / "etc/ibkr/main/credentials.env").read_text()
    # go-live takes the instance the file names; the file and --instance must agree.
    with pytest.raises(Exit) as info:
        go_live(Context(), host="root@127.0.0.1:1", credentials=files[0], instance="other",
                yes_live=True)
    assert info.value.code == 2
    assert str(info.value.message) == (f"error: {files[0]} says IBKR_INSTANCE=main, but "
                                       "--instance other: give one of them")


# --- memory, on the facts the install gathers ------------------------------------------------

def test_memory_counts_each_gateways_limit_and_the_headroom(tmp_path: Path) -> None:
    found = host_instances([(f, load_deployment(Path(f))) for f in pair(tmp_path)])
    # The reference files: paper's default 2048 MB, live's 3072 MB.
    needed = 2048 + 3072 + SYSTEM_HEADROOM_MB + 2 * INSTANCE_OVERHEAD_MB
    assert memory_needed_mb([i.deployment.memory_max_mb for i in found]) == needed
    check_memory(found, Facts(memory_mb=needed))
    with pytest.raises(UsageError) as info:
        check_memory(found, Facts(memory_mb=needed - 1))
    message = str(info.value)
    assert message.startswith(f"{found[0].source} and {found[1].source}: 2 Gateways need "
                              f"{needed} MB (2048 + 3072 MB of IBKR_MEMORY_MAX_MB")
    assert f"but the host has {needed - 1} MB; lower IBKR_MEMORY_MAX_MB" in message
    assert "\n" not in message


def test_memory_of_a_gateway_alone_is_left_to_preflight(tmp_path: Path) -> None:
    paper = private(tmp_path, "paper.env", PAPER)
    (alone,) = host_instances([(paper, load_deployment(Path(paper)))])
    assert alone.name is None
    check_memory([alone], Facts(memory_mb=2048))  # MemoryMax= 2048 on a 2 GB host, as today


def installed_host(memory_mb: int = 8000, **live: int | str | None) -> Facts:
    """A host with the reference pair installed as instances, as its facts read them."""
    return Facts(memory_mb=memory_mb, installed={
        "paper": Installed("paper", "demo_user", ("16:30", "America/New_York"), 4002, 7462,
                           ":1", 2048),
        "live": dataclasses.replace(Installed("live", "live_user", ("16:45", "America/New_York"),
                                              4001, 7463, ":2", 3072), **live)})


def third(tmp_path: Path, **settings: str) -> list[Instance]:
    """One file for a third instance, 'test', on ports, a display and a login of its own (but
    ``settings``)."""
    own = {"IBKR_USERNAME": "test_user", "IBKR_INSTANCE": "test", "IBKR_API_PORT": "4010",
           "IBKR_COMMAND_SERVER_PORT": "7470", "IBKR_DISPLAY": ":3", **settings}
    text = without(PAPER, "IBKR_USERNAME") + "".join(f"{k}={v}\n" for k, v in own.items())
    return instances([private(tmp_path, "test.env", text)], {})


@pytest.mark.parametrize(("key", "value", "why"), [
    ("IBKR_API_PORT", "4001", "both use port 4001 (IBKR_API_PORT); give one of them another "
                              "port"),
    ("IBKR_COMMAND_SERVER_PORT", "7463", "both use port 7463 (IBKR_COMMAND_SERVER_PORT)"),
    ("IBKR_DISPLAY", ":2", "both use X display :2 (IBKR_DISPLAY); give one of them another"),
    ("IBKR_USERNAME", "Live_User", "both log in as the same IBKR_USERNAME"),
])
def test_a_file_is_checked_against_the_installed_instances_it_leaves(tmp_path: Path, key: str,
                                                                     value: str, why: str) -> None:
    found = third(tmp_path, **{key: value})
    with pytest.raises(UsageError) as info:
        check_installed(found, installed_host())
    assert str(info.value).startswith(f"{found[0].source} and the host's Gateway instance "
                                      f"'live' (installed, left as it is): {why}")
    check_installed(third(tmp_path), installed_host())


def test_what_an_installed_instance_does_not_say_is_not_compared(tmp_path: Path) -> None:
    unknown = installed_host(api_port=None, command_server_port=None, display=None,
                             username=None)
    check_installed(third(tmp_path, IBKR_API_PORT="4001", IBKR_DISPLAY=":2",
                          IBKR_USERNAME="live_user"), unknown)


def test_memory_counts_the_installed_instances_left_beside_the_files(tmp_path: Path) -> None:
    found = third(tmp_path)
    needed = memory_needed_mb([2048, 2048, 3072])
    check_memory(found, installed_host(needed))
    with pytest.raises(UsageError) as info:
        check_memory(found, installed_host(needed - 1))
    assert str(info.value).startswith(
        f"{found[0].source}, beside the host's Gateway instances 'paper', 'live' (installed, "
        f"left as they are): 3 Gateways need {needed} MB (2048 + 2048 + 3072 MB of "
        "IBKR_MEMORY_MAX_MB")
    # The pair reinstalled: nothing is left beside it, and its own limits are counted once.
    pair_ = host_instances([(f, load_deployment(Path(f))) for f in pair(tmp_path)])
    check_memory(pair_, installed_host(memory_needed_mb([2048, 3072])))


def test_one_file_beside_one_installed_instance_is_two_gateways(tmp_path: Path) -> None:
    facts = installed_host(memory_needed_mb([2048, 3072]) - 1)
    del facts.installed["paper"]
    with pytest.raises(UsageError, match=r"beside the host's Gateway instance 'live' \(installed, "
                                         r"left as it is\): 2 Gateways need"):
        check_memory(third(tmp_path), facts)


def test_the_installed_values_are_read_by_the_hosts_parser_without_the_password(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_task(Context(), credentials=pair(tmp_path), out=str(out), config_only=True)
    env = out / "etc" / "ibkr" / "live" / "credentials.env"
    src = Path(__file__).resolve().parents[2] / "src"
    printed = subprocess.run([sys.executable, "-c", ENV_PROBE, str(src), "live", str(env),
                              *ENV_KEYS], capture_output=True, text=True, check=True).stdout
    assert not any(p in printed for p in PASSWORDS)
    found = parse_facts("LAYOUT live live\n" + printed).installed["live"]
    assert found == Installed("live", "live_user", ("16:45", "America/New_York"), 4001, 7463,
                              ":2", 3072)


# --- the daily restarts, staggered -------------------------------------------------------------

def restarts(found: list[Instance]) -> list[str]:
    return [f"{i.deployment.restart_time} {i.deployment.timezone}" for i in found]


def loaded(tmp_path: Path, live: str = LIVE, paper: str = PAPER) -> list[Instance]:
    """The pair as `invoke install` reads it (which files set IBKR_RESTART_TIME included)."""
    return instances(pair(tmp_path, live, paper), {})


def test_the_step_is_the_restart_runners_bound() -> None:
    assert RESTART_GAP_MIN == 15  # warm 300 s, then a cold login 600 s


def test_the_credentials_template_tells_the_step() -> None:
    # The schema cannot import the step, so its text says it: this holds the two together.
    step = f"staggered by {RESTART_GAP_MIN} minutes by default"
    assert step in " ".join(schema.RESTART_TIME.comment.split())
    assert step in " ".join(schema.INSTANCE.comment.split())
    assert f"less than {RESTART_GAP_MIN} minutes from another Gateway's on the host are " \
           "refused" in " ".join(schema.RESTART_TIME.comment.split())


def test_default_restarts_are_staggered_by_the_step(tmp_path: Path) -> None:
    assert restarts(loaded(tmp_path)) == ["16:30 America/New_York", "16:45 America/New_York"]


def test_a_default_restart_keeps_clear_of_a_set_one(tmp_path: Path) -> None:
    found = loaded(tmp_path, live=LIVE + "IBKR_RESTART_TIME=16:40\n")
    # 16:30 and 16:45 are within 15 min of live's 16:40: paper's next step is 17:00.
    assert restarts(found) == ["17:00 America/New_York", "16:40 America/New_York"]


def test_a_default_restart_skips_a_step_the_restart_rules_refuse(tmp_path: Path) -> None:
    live = LIVE.replace("IBKR_RESTART_BLACKOUTS=Mon..Fri 16:00-16:20; Sun 17:00-18:00",
                        "IBKR_RESTART_BLACKOUTS=Mon..Fri 16:40-16:50")
    assert restarts(loaded(tmp_path, live)) == ["16:30 America/New_York",
                                                "17:00 America/New_York"]


@pytest.mark.parametrize(("paper", "live", "words"), [
    ("16:30", "16:40", "their daily restarts (16:30 America/New_York and 16:40 "
                       "America/New_York) are 10 min apart"),
    ("18:44", "18:30", "their daily restarts (18:44 America/New_York and 18:30 "
                       "America/New_York) are 14 min apart"),
])
def test_set_restarts_too_close_are_refused_naming_both_files(tmp_path: Path, paper: str,
                                                              live: str, words: str) -> None:
    files = pair(tmp_path, LIVE + f"IBKR_RESTART_TIME={live}\n",
                 PAPER + f"IBKR_RESTART_TIME={paper}\n")
    message = refused(files, tmp_path / "out")
    assert message.startswith(f"error: {files[0]} and {files[1]}: {words}"), message
    assert "set IBKR_RESTART_TIME at least 15 min apart, or leave it out of one" in message


def test_restarts_in_two_zones_are_compared_as_moments(tmp_path: Path) -> None:
    # 21:40 in London is 16:40 in New York all year but for the weeks between the two
    # changes to summer time: 10 min from paper's 16:30 on a winter day.
    files = pair(tmp_path, LIVE + "IBKR_RESTART_TIME=21:40\nIBKR_TIMEZONE=Europe/London\n",
                 PAPER + "IBKR_RESTART_TIME=16:30\n")
    assert "are 10 min apart" in refused(files, tmp_path / "out")
    assert minutes_apart(("16:30", "America/New_York"), ("22:30", "Europe/London")) == 60


def test_a_host_s_other_instances_are_kept_clear_of(tmp_path: Path) -> None:
    paper = private(tmp_path, "paper.env", PAPER + "IBKR_INSTANCE=paper\n")
    (alone,) = instances([paper], {})
    (moved,) = stagger([alone], others={"live": ("16:30", "America/New_York")})
    assert moved.deployment.restart_time == "16:45"
    (kept,) = stagger([alone], others={"live": ("16:45", "America/New_York")},
                      installed={"paper": ("16:30", "America/New_York")})
    assert kept.deployment.restart_time == "16:30"
    set_ = private(tmp_path, "set.env", PAPER + "IBKR_INSTANCE=paper\nIBKR_RESTART_TIME=16:35\n")
    (fixed,) = instances([set_], {})
    with pytest.raises(UsageError, match=r"set\.env: its daily restart \(16:35 America/New_York\) "
                                         r"is less than 15 min from that of the host's Gateway "
                                         r"instance 'live' \(16:30 America/New_York\)"):
        stagger([fixed], others={"live": ("16:30", "America/New_York")})


def test_an_instance_keeps_the_step_it_has_whatever_the_order(tmp_path: Path) -> None:
    found = loaded(tmp_path)  # paper first
    have = {"live": ("16:30", "America/New_York"), "paper": ("16:45", "America/New_York")}
    assert restarts(stagger(found, installed=have)) == ["16:45 America/New_York",
                                                         "16:30 America/New_York"]


def test_a_gateway_alone_keeps_its_restart_time(tmp_path: Path) -> None:
    (alone,) = instances([private(tmp_path, "paper.env", PAPER)], {})
    assert alone.deployment.restart_time == "16:30" and not alone.restart_set
