"""The host tools on a host of Gateway instances: which settings each reads, and the health
check of every instance at once (a temporary directory stands in for /etc/ibkr)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from host_peer import Conn, healthy, peer
from host_run import run_tool

from ibkr_ops.errors import UsageError
from ibkr_ops.host import installed
from ibkr_ops.host.config import HostConfig
from ibkr_ops.layout import Layout

ONE_GATEWAY_TOOLS = [
    ("ibkr-pre-restart-check",), ("ibkr-gateway-restart",), ("ibkr-login-watch",),
    ("ibkr-notify", "hello"), ("ibkr-screenshot", "--json"), ("ibkr-vnc-server",),
]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install(root: Path, instance: str | None, **settings: object) -> Path:
    """An installed Gateway's ops.json under ``root``, where the layout puts it."""
    layout = Layout(instance)
    path = root / layout.ops_json.removeprefix("/etc/ibkr/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HostConfig(gateway_unit=layout.gateway_unit, state_dir=str(root / "state"),
                               **settings).to_json())  # type: ignore[arg-type]
    return path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(installed.ROOT_VARIABLE, str(tmp_path / "etc-ibkr"))
    (tmp_path / "etc-ibkr").mkdir()
    return tmp_path / "etc-ibkr"


def on(root: Path) -> dict[str, str]:
    return {installed.ROOT_VARIABLE: str(root)}


# --- which settings ---------------------------------------------------------------------------

def test_the_default_layout_wins_and_nothing_installed_means_the_defaults(root: Path) -> None:
    assert installed.every(None, None) == [installed.Target(None, None)]
    assert installed.one(None, None).load() == HostConfig()
    install(root, "paper")
    default = install(root, None)
    assert installed.every(None, None) == [installed.Target(None, str(default))]


def test_one_instance_alone_is_the_one(root: Path) -> None:
    path = install(root, "paper", api_port=4102)
    (root / "backup").mkdir()  # the host's own directories are never an instance
    (root / "stray").mkdir()   # nor a directory without settings
    assert installed.instances() == ["paper"]
    assert installed.one(None, None) == installed.Target("paper", str(path))
    assert installed.one(None, None).load().api_port == 4102


def test_several_instances_are_all_for_the_health_check_and_refused_for_the_rest(
        root: Path) -> None:
    paper, live = install(root, "paper"), install(root, "live", trading_mode="live",
                                                  api_port=4001)
    assert installed.every(None, None) == [installed.Target("live", str(live)),
                                           installed.Target("paper", str(paper))]
    with pytest.raises(UsageError, match=r"^this host runs Gateway instances live, paper; "
                                         r"give --instance NAME$"):
        installed.one(None, None)
    assert installed.one(None, "live").load().api_port == 4001


@pytest.mark.parametrize(("config", "instance", "message"), [
    ("x.json", "paper", "--config and --instance do not go together: give one"),
    (None, "Paper", "--instance: instance name 'Paper': use 1-32 lower-case letters"),
    (None, "backup", "--instance: instance name 'backup' is taken"),
    (None, "live", "this host has no Gateway instance 'live' "),
])
def test_a_bad_choice_is_one_line(root: Path, config: str | None, instance: str,
                                  message: str) -> None:
    install(root, "paper")
    with pytest.raises(UsageError) as info:
        installed.every(config, instance)
    assert str(info.value).startswith(message)
    if instance == "live":
        assert str(info.value).endswith("; it runs paper")


@pytest.mark.parametrize("tool", ONE_GATEWAY_TOOLS)
def test_every_one_gateway_tool_refuses_to_guess_among_several(root: Path,
                                                               tool: tuple[str, ...]) -> None:
    install(root, "paper")
    install(root, "live")
    result = run_tool(*tool, env=on(root))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"{tool[0]}: this host runs Gateway instances live, paper; "
                             "give --instance NAME\n")


@pytest.mark.parametrize("tool", [*ONE_GATEWAY_TOOLS, ("ibkr-health-check",)])
@pytest.mark.parametrize("args", [["--instance", "a.b"], ["--instance", "live"],
                                  ["--instance", "paper", "--config", "x"]])
def test_every_tool_takes_instance_and_refuses_a_bad_one_in_one_line(
        root: Path, tool: tuple[str, ...], args: list[str]) -> None:
    install(root, "paper")
    result = run_tool(*tool, *args, env=on(root))
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"{tool[0]}: ")


# --- the health check of every instance -------------------------------------------------------

def test_the_health_check_of_a_named_instance_reads_its_settings(root: Path) -> None:
    with peer(healthy) as (port, _):
        install(root, "paper", api_port=port)
        install(root, "live", api_port=closed_port())
        result = run_tool("ibkr-health-check", "--instance", "paper", "--json", env=on(root))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"healthy", "checks", "server_version", "accounts", "elapsed_ms"}
    assert report["accounts"] == ["DU111", "DU222"]


def test_the_health_check_shows_every_instance_in_one_json_object(root: Path) -> None:
    with peer(healthy) as (port, _):
        install(root, "paper", api_port=port)
        install(root, "live", api_port=closed_port())
        result = run_tool("ibkr-health-check", "--json", env=on(root))
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"healthy", "instances"} and data["healthy"] is False
    live, paper = data["instances"]
    assert (live["instance"], live["healthy"]) == ("live", False)
    assert {c["name"]: c["status"] for c in live["checks"]}["port"] == "fail"
    assert (paper["instance"], paper["healthy"], paper["accounts"]) == ("paper", True,
                                                                        ["DU111", "DU222"])
    assert set(paper) == {"instance", "healthy", "checks", "server_version", "accounts",
                          "elapsed_ms"}


def test_the_health_check_shows_every_instance_in_a_block_of_its_own(root: Path) -> None:
    with peer(healthy) as (port, _):
        install(root, "paper", api_port=port)
        install(root, "live", api_port=closed_port())
        result = run_tool("ibkr-health-check", env=on(root))
    assert result.returncode == 1
    live, paper = result.stdout.rstrip("\n").split("\n\n")
    assert live.splitlines()[0] == "== live =="
    assert "port     fail" in live and live.splitlines()[-1].startswith("UNHEALTHY")
    assert paper.splitlines()[0] == "== paper =="
    assert paper.splitlines()[-1].startswith("healthy")


def test_all_healthy_is_exit_0_and_the_history_has_a_block_per_instance(root: Path) -> None:
    with peer(healthy) as (port, _), peer(healthy) as (other, _):
        install(root, "paper", api_port=port)
        install(root, "live", api_port=other)
        assert run_tool("ibkr-health-check", "--json", env=on(root)).returncode == 0
    history = run_tool("ibkr-health-check", "--history", env=on(root))
    assert history.returncode == 0, history.stderr
    assert [b.splitlines()[0] for b in history.stdout.split("\n\n")] == ["== live ==",
                                                                        "== paper =="]


@pytest.mark.parametrize("option", [["--port", "4002"], ["--host", "::1"], ["--notify"],
                                    ["--wait", "5"]])
def test_what_names_one_gateway_is_refused_across_several(root: Path,
                                                           option: list[str]) -> None:
    install(root, "paper")
    install(root, "live")
    result = run_tool("ibkr-health-check", *option, env=on(root))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"ibkr-health-check: {option[0]} acts on one Gateway and this host "
                             "runs Gateway instances live, paper; give --instance NAME\n")


def test_each_instances_journal_line_is_marked_with_its_name(root: Path, tmp_path: Path) -> None:
    path = str(tmp_path / "journal.socket")
    install(root, "paper", api_port=closed_port())
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        result = run_tool("ibkr-health-check", "--instance", "paper",
                          env={**on(root), "IBKR_OPS_JOURNAL_SOCKET": path})
        entry = dict(line.split("=", 1) for line in sock.recv(65536).decode().splitlines())
    assert result.returncode == 1
    assert entry["IBKR_INSTANCE"] == "paper"
    assert entry["MESSAGE"].startswith("paper: UNHEALTHY: service=")


def test_the_instances_are_checked_side_by_side(root: Path) -> None:
    """live's Gateway answers only once paper's has been asked: checked one after the other,
    live's probe would wait out its timeout and fail."""
    paper_asked = threading.Event()

    def live(conn: Conn) -> None:
        assert paper_asked.wait(20)
        healthy(conn)

    def paper(conn: Conn) -> None:
        paper_asked.set()
        healthy(conn)

    with peer(live) as (live_port, live_errors), peer(paper) as (paper_port, paper_errors):
        install(root, "live", api_port=live_port, health_timeout_s=5)
        install(root, "paper", api_port=paper_port, health_timeout_s=5)
        result = run_tool("ibkr-health-check", "--json", env=on(root))
    assert (live_errors, paper_errors) == ([], [])
    assert result.returncode == 0, result.stdout
    assert [i["healthy"] for i in json.loads(result.stdout)["instances"]] == [True, True]
