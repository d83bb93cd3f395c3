"""The simulated Gateway installed by its installer and run by IBC's own scripts.

Variant ``ibc`` uses the real IBC 3.24.1 zip named by IBKR_OPS_IBC_ZIP; variant ``sim-ibc``
uses the simulated IBC zip that ``invoke sim.artifacts`` writes. The install and start path
is the same for both.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sim_support import free_port, port_open, run_client, send_line, wait_for

from ibkr_ops.sim import artifacts

VERSION = artifacts.TWS_MAJOR_VRSN


@pytest.fixture(scope="session")
def sim_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("artifacts")
    return {k: Path(v) for k, v in artifacts.write_all(out).items()}


@pytest.fixture(params=["ibc", "sim-ibc"])
def ibc_zip(request: pytest.FixtureRequest, sim_artifacts: dict[str, Path]) -> Path:
    if request.param == "sim-ibc":
        return sim_artifacts["ibc_zip"]
    real = os.environ.get("IBKR_OPS_IBC_ZIP", "")
    if not real:
        pytest.skip("IBKR_OPS_IBC_ZIP is not set: the real IBC scripts are not tested here; "
                    "the sim-ibc variant runs the same flow with the simulated IBC zip")
    if not Path(real).is_file():
        pytest.fail(f"IBKR_OPS_IBC_ZIP={real} is not a file")
    return Path(real)


@dataclass
class Stack:
    """An installed Gateway + IBC in a temporary tree, like /home/trader/Jts and /opt/ibc."""

    root: Path
    ibc_path: Path
    tws_path: Path
    settings: Path
    ini: Path
    api_port: int
    command_port: int
    control_port: int
    display: str
    procs: list[subprocess.Popen[bytes]]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
        env.update({"DISPLAY": self.display, "HOME": str(self.root),
                    "IBKR_GATEWAY_SIM_CONTROL_PORT": str(self.control_port),
                    "IBKR_GATEWAY_SIM_RESTART_DELAY": "0",
                    "IBKR_GATEWAY_SIM_SECOND_FACTOR_DELAY": "0.3"})
        env.update(extra)
        return env

    def ibcstart(self, log: Path, *, twofa: str = "exit", **env: str) -> subprocess.Popen[bytes]:
        command = [str(self.ibc_path / "scripts" / "ibcstart.sh"), VERSION, "-g",
                   f"--tws-path={self.tws_path}", f"--tws-settings-path={self.settings}",
                   f"--ibc-path={self.ibc_path}", f"--ibc-ini={self.ini}", "--mode=paper",
                   f"--on2fatimeout={twofa}"]
        return self._start(command, log, env)

    def gatewaystart_inline(self, log: Path, **env: str) -> subprocess.Popen[bytes]:
        script = self.ibc_path / "gatewaystart.sh"
        text = script.read_text()
        values = {"TWS_MAJOR_VRSN": VERSION, "IBC_INI": str(self.ini), "TRADING_MODE": "paper",
                  "TWOFA_TIMEOUT_ACTION": "exit", "IBC_PATH": str(self.ibc_path),
                  "TWS_PATH": str(self.tws_path), "TWS_SETTINGS_PATH": str(self.settings),
                  "LOG_PATH": str(self.root / "ibc-logs")}
        for name, value in values.items():
            text, count = re.subn(rf"^{name}=.*$", f"{name}={value}", text, flags=re.M)
            assert count == 1, name
        script.write_text(text)
        return self._start([str(script), "-inline"], log, env)

    def _start(self, command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env(**env),
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def wait_api(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        wait_for(lambda: port_open(self.api_port) or proc.poll() is not None, timeout,
                 "the API port under IBC")
        assert proc.poll() is None, "IBC's script exited before the API opened"

    def java_pids(self) -> list[int]:
        found = subprocess.run(["pgrep", "-f", f"java.*{self.ini}"], capture_output=True,
                               text=True, check=False).stdout.split()
        return [int(p) for p in found]


def install_gateway(installer: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(installer), "-q", "-dir", str(target)], capture_output=True,
                          text=True, check=False, timeout=60)


@pytest.fixture
def stack(tmp_path: Path, ibc_zip: Path, sim_artifacts: dict[str, Path],
          xvfb: str) -> Iterator[Stack]:
    root = tmp_path / "home"
    tws_path = root / "Jts"
    done = install_gateway(sim_artifacts["installer"], tws_path / "ibgateway" / VERSION)
    assert done.returncode == 0, done.stderr
    ibc_path = tmp_path / "opt-ibc"
    with zipfile.ZipFile(ibc_zip) as archive:
        archive.extractall(ibc_path)
    for script in [*ibc_path.glob("*.sh"), *ibc_path.glob("scripts/*.sh")]:
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    settings = tws_path  # IBC's default: settings beside the installation
    api_port, command_port, control_port = free_port(), free_port(), free_port()
    ini = root / "ibc" / "config.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(f"IbLoginId=simtrader\nIbPassword=pw-never-in-argv\nTradingMode=paper\n"
                   f"OverrideTwsApiPort={api_port}\nCommandServerPort={command_port}\n"
                   "SecondFactorAuthenticationTimeout=3\nReloginAfterSecondFactorAuthenticationTimeout=no\n")
    ini.chmod(0o600)
    result = Stack(root, ibc_path, tws_path, settings, ini, api_port, command_port,
                   control_port, xvfb, [])
    yield result
    for proc in result.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_installer_lays_out_an_offline_gateway(tmp_path: Path,
                                               sim_artifacts: dict[str, Path]) -> None:
    """-q -dir DIR: jars, vmoptions with the real default heap, .install4j, a Java 17 "JRE"."""
    target = tmp_path / "Jts" / "ibgateway" / VERSION
    done = install_gateway(sim_artifacts["installer"], target)
    assert done.returncode == 0, done.stderr
    assert list((target / "jars").glob("*.jar"))
    assert "-Xmx768m" in (target / "ibgateway.vmoptions").read_text().splitlines()
    assert (target / ".install4j" / "i4jruntime.jar").is_file()
    jre = Path((target / ".install4j" / "inst_jre.cfg").read_text().strip())
    java = jre / "bin" / "java"
    shown = subprocess.run([str(java), "-XshowSettings:properties"], capture_output=True,
                           text=True, check=False)
    assert re.search(r"^ *java\.runtime\.version = 17\.", shown.stderr, re.M), shown.stderr
    assert (target / "ibgateway").is_file()


def test_installer_refuses_interactive_mode(tmp_path: Path,
                                            sim_artifacts: dict[str, Path]) -> None:
    """Without -q the simulated installer says it only runs unattended."""
    done = subprocess.run([str(sim_artifacts["installer"]), "-dir", str(tmp_path / "gw")],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "-q" in done.stderr


def test_ibcstart_runs_the_gateway(stack: Stack, tmp_path: Path, async_python: str) -> None:
    """ibcstart.sh starts "java … IbcGateway INI MODE"; the API answers ib_async."""
    proc = stack.ibcstart(tmp_path / "ibc.log")
    stack.wait_api(proc)
    result = run_client(async_python, stack.api_port, 1, "basic")
    assert str(result["accounts"][0]).startswith("DU")  # type: ignore[index]
    pids = stack.java_pids()
    assert len(pids) == 1
    cmdline = Path(f"/proc/{pids[0]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "ibgateway" in cmdline and "ibcalpha.ibc.IbcGateway" in cmdline
    assert "pw-never-in-argv" not in cmdline
    log = (tmp_path / "ibc.log").read_text()
    assert "Second Factor Authentication initiated" in log and "Login has completed" in log
    assert (stack.tws_path / "ibgateway" / VERSION / "ibgateway1").exists()


def test_gatewaystart_inline(stack: Stack, tmp_path: Path, async_python: str) -> None:
    """gatewaystart.sh -inline (the systemd form) brings the API up; a second start is refused."""
    proc = stack.gatewaystart_inline(tmp_path / "gw.log")
    stack.wait_api(proc)
    assert run_client(async_python, stack.api_port, 2, "connect")["ok"] is True
    again = stack.gatewaystart_inline(tmp_path / "gw2.log")
    assert again.wait(10) == 1
    assert "already running" in (tmp_path / "gw2.log").read_text()
    logs = list((stack.root / "ibc-logs").glob("ibc-*_GATEWAY-*.txt"))
    assert logs and "Login has completed" in logs[0].read_text()


def test_warm_restart_relaunched_by_ibcstart(stack: Stack, tmp_path: Path,
                                             async_python: str) -> None:
    """RESTART → autorestart file, exit 0, relaunch with -Drestart, no second factor, same ibcstart."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log)
    stack.wait_api(proc)
    first_java = stack.java_pids()
    reply = send_line(stack.command_port, "RESTART", read_all=True)
    assert reply.startswith("OK RESTART in progress\n")
    assert re.search(r"^OK RESTART at \d\d:\d\d [AP]M$", reply, re.M), reply
    wait_for(lambda: "Re-starting session" in log.read_text(), 20, "the warm relaunch")
    stack.wait_api(proc)
    assert proc.poll() is None
    second_java = stack.java_pids()
    assert second_java and second_java != first_java
    text = log.read_text()
    assert "-Drestart=" in text
    after = text[text.index("Re-starting session"):]
    assert "Second Factor Authentication initiated" not in after
    assert text.count("Second Factor Authentication initiated") == 1
    assert run_client(async_python, stack.api_port, 3, "connect")["ok"] is True
    assert not list(stack.settings.glob("*/autorestart")), "the relaunch consumes the file"


def test_second_factor_timeout_exits_87_without_relaunch(stack: Stack, tmp_path: Path) -> None:
    """No approval → exit 87; with --on2fatimeout=exit ibcstart.sh does not relaunch."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, IBKR_GATEWAY_SIM_SECOND_FACTOR="manual")
    assert proc.wait(30) == 87
    text = log.read_text()
    assert text.count("IBC returned exit status 87") == 1
    assert text.count("Second Factor Authentication initiated") == 1
    assert not port_open(stack.api_port)


def test_second_factor_timeout_relaunched_with_restart_action(stack: Stack,
                                                              tmp_path: Path) -> None:
    """With --on2fatimeout=restart ibcstart.sh relaunches after 87 (a new cold login)."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, twofa="restart", IBKR_GATEWAY_SIM_SECOND_FACTOR="manual")
    wait_for(lambda: log.read_text().count("Second Factor Authentication initiated") >= 2, 30,
             "a relaunch after exit status 87")
    assert proc.poll() is None


def test_sigterm_stops_the_stack(stack: Stack, tmp_path: Path) -> None:
    """TERM to ibcstart.sh is forwarded to "java", which exits like the JVM (143)."""
    proc = stack.ibcstart(tmp_path / "ibc.log")
    stack.wait_api(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 143
    wait_for(lambda: not stack.java_pids(), 5, "java to exit")


def test_no_display_fails_with_one_line(stack: Stack, tmp_path: Path) -> None:
    """Without an X server the Gateway cannot start: one clear line and a non-zero exit."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, DISPLAY=":1999")
    assert proc.wait(20) != 0
    assert "Can't connect to X11 window server using ':1999'" in log.read_text()


def test_command_server_stop(stack: Stack, tmp_path: Path) -> None:
    """STOP: OK reply, the Gateway logs out and IBC's script ends with status 0."""
    proc = stack.ibcstart(tmp_path / "ibc.log")
    stack.wait_api(proc)
    assert send_line(stack.command_port, "STOP") == "OK Shutting down: STOP command\n"
    assert proc.wait(15) == 0

