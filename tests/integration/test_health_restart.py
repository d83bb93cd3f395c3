"""`ibkr-gateway-restart` against the simulator: a warm restart through IBC's command
server, reported to a Discord-compatible receiver; and the bounded failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from discord_sim import DiscordSim, discord_sim
from host_run import SCRIPTS
from sim_support import Sim, free_port

SCRIPT = SCRIPTS / "ibkr-gateway-restart"


def restart(tmp_path: Path, sim: DiscordSim, api_port: int, command_port: int,
            *args: str, **settings: object) -> subprocess.CompletedProcess[str]:
    """Run the restart runner; `--force` by default so the test does not depend on the clock
    (the runner refuses inside the trading session, like the service's ExecStartPre)."""
    creds = tmp_path / "credentials.env"
    creds.write_text(f"DISCORD_WEBHOOK_URL={sim.url}\n")
    os.chmod(creds, 0o600)
    path = tmp_path / "ops.json"
    path.write_text(json.dumps({"api_port": api_port, "command_server_port": command_port,
                                "state_dir": str(tmp_path / "state"),
                                "credentials_file": str(creds), "hostname": "gw1",
                                **settings}))
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM",
                                                             "DISCORD_WEBHOOK_URL")}
    return subprocess.run([sys.executable, str(SCRIPT), "--config", str(path),
                           *(args or ("--force",))],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def test_warm_restart_comes_back_without_a_new_login(sim_factory: Callable[..., Sim],
                                                     tmp_path: Path) -> None:
    command_port = free_port()
    gateway = sim_factory("--command-server-port", str(command_port), "--restart-delay", "0.5",
                          "--login-delay", "1")
    with discord_sim(tmp_path) as sim:
        result = restart(tmp_path, sim, gateway.port, command_port)
        messages = sim.messages()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Gateway restart (warm, by hand) starting: not a systemd host" in result.stdout
    assert "IBC: OK RESTART" in result.stdout
    # The simulator's session now comes from a warm login: no second factor was asked for.
    assert gateway.status()["warm"] is True
    # One flow, two messages: what is about to happen, then how it went.
    starting, done = (m["embeds"][0] for m in messages)
    assert starting["title"] == done["title"] == "INFO · gw1 · paper"
    assert starting["description"].startswith("Gateway restart (warm, by hand) starting: ")
    assert done["description"].startswith("Gateway restart (warm) done in ")
    assert "reclaimed:" in done["description"]
    (entry,) = [json.loads(line) for line in
                (tmp_path / "state" / "restarts.jsonl").read_text().splitlines()]
    assert (entry["cause"], entry["mode"], entry["ok"]) == ("manual", "warm", True)


def test_no_command_server_fails_clearly(sim_factory: Callable[..., Sim],
                                         tmp_path: Path) -> None:
    gateway = sim_factory()
    with discord_sim(tmp_path) as sim:
        result = restart(tmp_path, sim, gateway.port, free_port())
        messages = sim.messages()
    assert result.returncode == 1
    assert "is CommandServerPort set in config.ini?" in result.stdout
    assert [m["embeds"][0]["title"] for m in messages] == ["INFO · gw1 · paper",
                                                          "ERROR · gw1 · paper"]
    assert "Traceback" not in result.stderr


def test_warm_restart_whose_api_never_answers_is_bounded(sim_factory: Callable[..., Sim],
                                                         tmp_path: Path) -> None:
    command_port = free_port()
    gateway = sim_factory("--command-server-port", str(command_port), "--restart-delay", "0.2")
    assert gateway.ctl("FAULT hang").startswith("OK")
    with discord_sim(tmp_path) as sim:
        result = restart(tmp_path, sim, gateway.port, command_port,
                         warm_restart_timeout_s=4, health_timeout_s=1)
    assert result.returncode == 1
    assert "API already down before the restart" in result.stdout
    assert "API not healthy after" in result.stdout
    assert "no answer at the handshake stage" in result.stdout
    assert "Gateway restart (warm) FAILED" in result.stdout


def test_refuses_inside_a_blackout_without_force(sim_factory: Callable[..., Sim],
                                                 tmp_path: Path) -> None:
    gateway = sim_factory()
    always = ["* 00:00-12:00", "* 12:00-00:00"]
    with discord_sim(tmp_path) as sim:
        result = restart(tmp_path, sim, gateway.port, free_port(), "--no-notify",
                         blackout_windows=always)
        assert sim.messages() == []
    assert result.returncode == 1
    assert result.stderr.startswith("ibkr-gateway-restart: restart refused: ")
    assert "inside the blackout window" in result.stderr
    assert "--force overrides" in result.stderr
    assert gateway.status()["warm"] is False
