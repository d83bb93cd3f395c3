"""The simulated Gateway installed by its installer and run by IBC's scripts.

Variant ``ibc`` uses the real IBC 3.24.1 zip named by IBKR_OPS_IBC_ZIP: its scripts start a
real JVM (the machine's Java 17), IBC's own Java code and the Gateway stand-in, which IBC
logs in to. Variant ``sim-ibc`` uses the simulated IBC zip that ``invoke sim.artifacts``
writes, which runs the Python-only simulator in IBC's place. The install and start path is
the same for both. The real IBC's reactions to the Gateway's windows are in test_standin.py.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import stat
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sim_support import free_port, port_open, real_ibc_zip, run_client, send_line, wait_for

from ibkr_ops.host import gatewayversion, ibapi, ibclog, upstream
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
    return real_ibc_zip()


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
    real: bool
    version: str = VERSION  # TWS_MAJOR_VRSN of the installed Gateway

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
        env.update({"DISPLAY": self.display, "HOME": str(self.root),
                    "IBKR_GATEWAY_SIM_CONTROL_PORT": str(self.control_port),
                    "IBKR_GATEWAY_SIM_RESTART_DELAY": "0",
                    "IBKR_GATEWAY_SIM_SECOND_FACTOR_DELAY": "0.3"})
        env.update(extra)
        return env

    def ibcstart(self, log: Path, *, twofa: str = "exit", mode: str = "paper",
                 **env: str) -> subprocess.Popen[bytes]:
        command = [str(self.ibc_path / "scripts" / "ibcstart.sh"), self.version, "-g",
                   f"--tws-path={self.tws_path}", f"--tws-settings-path={self.settings}",
                   f"--ibc-path={self.ibc_path}", f"--ibc-ini={self.ini}", f"--mode={mode}",
                   f"--on2fatimeout={twofa}"]
        return self._start(command, log, env)

    def set_ini(self, **values: str) -> None:
        """Change (or add) IBC settings in the stack's config.ini."""
        lines = [line for line in self.ini.read_text().splitlines()
                 if line.partition("=")[0] not in values]
        self.ini.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")

    def ctl(self, command: str) -> str:
        return send_line(self.control_port, command).strip()

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
def stack(tmp_path: Path, ibc_zip: Path, sim_artifacts: dict[str, Path], xvfb: str,
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Parametrized indirectly with an ``artifacts.Release``: that release's installer."""
    root = tmp_path / "home"
    tws_path = root / "Jts"
    release: artifacts.Release = getattr(request, "param", artifacts.Release())
    installer = sim_artifacts["installer"]
    if release != artifacts.Release():
        installer = Path(artifacts.write_all(tmp_path / "release", release)["installer"])
    done = install_gateway(installer, tws_path / "ibgateway" / release.tws_major_vrsn)
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
                   control_port, xvfb, [], real=ibc_zip != sim_artifacts["ibc_zip"],
                   version=release.tws_major_vrsn)
    yield result
    for proc in result.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_installer_lays_out_an_offline_gateway(tmp_path: Path,
                                               sim_artifacts: dict[str, Path]) -> None:
    """-q -dir DIR: the stand-in's jar, vmoptions with the real default heap, .install4j
    naming this machine's Java 17 runtime (with AWT), as the real ibcstart.sh reads it."""
    target = tmp_path / "Jts" / "ibgateway" / VERSION
    done = install_gateway(sim_artifacts["installer"], target)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(target / "jars" / f"jts4launch-{VERSION}.jar") as jar:
        assert "ibgateway/GWClient.class" in jar.namelist()
    assert (target / "jars" / "ibkr-gateway-sim.pyz").is_file()
    assert "-Xmx768m" in (target / "ibgateway.vmoptions").read_text().splitlines()
    assert (target / ".install4j" / "i4jruntime.jar").is_file()
    jre = Path((target / ".install4j" / "inst_jre.cfg").read_text().strip())
    assert (jre / "lib" / "libawt_xawt.so").is_file()
    shown = subprocess.run([str(jre / "bin" / "java"), "-XshowSettings:properties", "-version"],
                           capture_output=True, text=True, check=False)
    spec = re.search(r"^ *java\.specification\.version = (\d+)", shown.stderr, re.M)
    assert spec and int(spec.group(1)) >= 17, shown.stderr
    assert (target / "ibgateway").is_file()


def _fake_jre(home: Path, spec: str, awt: bool) -> Path:
    """A directory that answers like a Java runtime of version ``spec``."""
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '    java.specification.version = {spec}' >&2\n")
    java.chmod(0o755)
    if awt:
        (home / "lib" / "libawt_xawt.so").write_bytes(b"")
    return home


@pytest.mark.parametrize(("spec", "awt", "message"), [
    ("11", True, "is version 11; the Gateway needs 17 or newer"),
    ("17", False, "is headless (no X11 toolkit)"),
    (None, False, "no Java runtime found"),
])
def test_installer_without_a_usable_java_writes_nothing(
        tmp_path: Path, sim_artifacts: dict[str, Path], spec: str | None, awt: bool,
        message: str) -> None:
    """No Java, too old or headless: one line naming it and the package, nothing installed."""
    roots = tmp_path / "jvm"
    roots.mkdir()
    env = {"HOME": str(tmp_path), "IBKR_GATEWAY_SIM_JVM_ROOT": str(roots)}
    if spec is not None:
        env["JAVA_HOME"] = str(_fake_jre(tmp_path / "jre", spec, awt))
    java_dir = tmp_path / "no-java-bin"  # PATH without java: only the shell tools it needs
    java_dir.mkdir()
    for tool in ("bash", "sed", "head", "tail", "base64", "tar", "gzip", "mkdir", "cat",
                 "dirname", "readlink", "cp", "printf"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                               text=True, check=False).stdout.strip()
        if found:
            (java_dir / tool).symlink_to(found)
    env["PATH"] = str(java_dir)
    target = tmp_path / "gw"
    done = subprocess.run([str(sim_artifacts["installer"]), "-q", "-dir", str(target)],
                          capture_output=True, text=True, check=False, env=env, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "openjdk-17-jre" in lines[0], done.stderr
    assert not target.exists()


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
    assert "Login has completed" in log
    if stack.real:  # IBC's own Java code typed into the stand-in's login frame
        assert "IBC: Click button: Paper Log In" in log
        assert "GW-SIM: logged in (full login), paper trading" in log
        assert Path(f"/proc/{pids[0]}/exe").resolve().name == "java"
    assert (stack.tws_path / "ibgateway" / VERSION / "ibgateway1").exists()


@pytest.mark.parametrize("stack", [artifacts.Release("10.19.2", "latest")], indirect=True,
                         ids=["10.19.2"])
def test_installed_release_is_the_gateway_the_api_claims(stack: Stack, tmp_path: Path,
                                                          async_python: str) -> None:
    """The installer's release reaches the API: Gateway 10.19 speaks server version 176, below
    ib_async's 178 (10.30 answers 178), under IBC in the directory its version names."""
    proc = stack.ibcstart(tmp_path / "ibc.log")
    stack.wait_api(proc)
    assert run_client(async_python, stack.api_port, 1, "basic")["server_version"] == 176
    assert (stack.tws_path / "ibgateway" / "1019" / "jars" / "jts4launch-1019.jar").is_file()


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
    wait_for(lambda: "Login has completed" in log.read_text().partition("Re-starting session")[2],
             10, "IBC's login after the relaunch")
    text = log.read_text()
    assert "-Drestart=" in text
    after = text[text.index("Re-starting session"):]
    assert "Second Factor Authentication initiated" not in after
    assert "Login has completed" in after
    if stack.real:
        assert "IBC: Setting auto-restart time to" in text  # IBC's RESTART, no Restart... menu
        assert "GW-SIM: autorestart token accepted" in after
    assert run_client(async_python, stack.api_port, 3, "connect")["ok"] is True
    assert not list(stack.settings.glob("*/autorestart")), "the relaunch consumes the file"


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



# ---- The real IBC's own Java code against the stand-in's windows (variant ibc only) ------
REAL = pytest.mark.parametrize("ibc_zip", ["ibc"], indirect=True)


def _lines(log: Path, text: str) -> int:
    return log.read_text().count(text)


@REAL
def test_live_login_waits_for_the_second_factor_then_serves(stack: Stack, tmp_path: Path,
                                                            async_python: str) -> None:
    """Live: IBC sees the stand-in's "Second Factor Authentication" dialog; the API opens only
    once the prompt is approved (APPROVE on the control port: the person with the phone)."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, mode="live", IBKR_GATEWAY_SIM_SECOND_FACTOR="manual")
    wait_for(lambda: "IBC: Second Factor Authentication initiated" in log.read_text(), 20,
             "IBC to see the second-factor dialog")
    assert not port_open(stack.api_port) and "Login has completed" not in log.read_text()
    assert stack.ctl("APPROVE") == "OK approved"
    stack.wait_api(proc)
    wait_for(lambda: "IBC: Login has completed" in log.read_text(), 10, "IBC's login")
    assert str(run_client(async_python, stack.api_port, 4, "basic")["accounts"][0]).startswith("U")  # type: ignore[index]
    assert "IBC: Click button: Log In" in log.read_text()


def test_unapproved_second_factor_without_relogin_leaves_ibc_waiting(stack: Stack,
                                                                     tmp_path: Path) -> None:
    """ReloginAfterSecondFactorAuthenticationTimeout=no: IBC does not exit (no 87); the JVM
    stays up at the login frame without an API. The host's login watch has to act."""
    log = tmp_path / "ibc.log"
    stack.set_ini(SecondFactorAuthenticationTimeout="3",
                  ReloginAfterSecondFactorAuthenticationTimeout="no",
                  ExitAfterSecondFactorAuthenticationTimeout="")
    proc = stack.ibcstart(log, mode="live", IBKR_GATEWAY_SIM_SECOND_FACTOR="manual",
                          IBKR_GATEWAY_SIM_SECOND_FACTOR_TIMEOUT="4")
    wait_for(lambda: "Re-login after second factor authentication timeout not required"
             in log.read_text(), 30, "IBC's verdict on the expired prompt")
    time.sleep(3)
    assert proc.poll() is None and len(stack.java_pids()) == 1
    assert not port_open(stack.api_port)
    assert _lines(log, "Second Factor Authentication initiated") == 1
    assert "exit status 87" not in log.read_text()
    assert json.loads(stack.ctl("STATUS")[3:])["state"] == "login-dialog"


def test_unapproved_second_factor_with_relogin_prompts_again(stack: Stack, tmp_path: Path) -> None:
    """ReloginAfterSecondFactorAuthenticationTimeout=yes: IBC logs in again on the same frame,
    a new prompt; approving that one logs in."""
    log = tmp_path / "ibc.log"
    stack.set_ini(SecondFactorAuthenticationTimeout="3",
                  ReloginAfterSecondFactorAuthenticationTimeout="yes")
    proc = stack.ibcstart(log, mode="live", twofa="restart",
                          IBKR_GATEWAY_SIM_SECOND_FACTOR="manual",
                          IBKR_GATEWAY_SIM_SECOND_FACTOR_TIMEOUT="4")
    wait_for(lambda: _lines(log, "Second Factor Authentication initiated") >= 2, 40,
             "IBC's second login")
    assert "Re-login after second factor authentication timeout in 5 second" in log.read_text()
    assert stack.ctl("APPROVE") == "OK approved"
    stack.wait_api(proc)


@REAL
def test_rejected_password_makes_ibc_cold_restart_and_retry(stack: Stack, tmp_path: Path) -> None:
    """IBC answers the "Login failed" dialog with a cold restart and the same password again:
    why the host's login watch stops the Gateway at the first rejection."""
    log = tmp_path / "ibc.log"
    stack.ibcstart(log, IBKR_GATEWAY_SIM_FAULTS="reject-login")
    wait_for(lambda: _lines(log, "IBC: Login attempt: 1") >= 2, 30, "IBC's second attempt")
    text = log.read_text()
    assert "IBC: Login failed" in text and "IBC: Cold restart in progress" in text
    assert "IBC will cold-restart shortly" in text
    assert not port_open(stack.api_port)


@REAL
def test_existing_session_is_continued_as_primary(stack: Stack, tmp_path: Path) -> None:
    log = tmp_path / "ibc.log"
    stack.set_ini(ExistingSessionDetectedAction="primary")
    proc = stack.ibcstart(log, IBKR_GATEWAY_SIM_FAULTS="existing-session")
    stack.wait_api(proc)
    text = log.read_text()
    assert "IBC: detected dialog entitled: Existing session detected; event=Opened" in text
    assert "IBC: Click button: Continue Login" in text


@REAL
def test_kill_9_of_the_jvm_takes_the_api_down_at_once(stack: Stack, tmp_path: Path) -> None:
    proc = stack.ibcstart(tmp_path / "ibc.log")
    stack.wait_api(proc)
    (java,) = stack.java_pids()
    os.kill(java, signal.SIGKILL)
    wait_for(lambda: not port_open(stack.api_port), 2, "the API to close with the JVM")
    assert proc.wait(10) == 137


@REAL
def test_a_crashed_api_engine_ends_the_jvm(stack: Stack, tmp_path: Path) -> None:
    """The API is part of the Gateway: its engine dying must not leave a JVM that looks fine."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log)
    stack.wait_api(proc)
    (java,) = stack.java_pids()
    children = subprocess.run(["pgrep", "-P", str(java)], capture_output=True, text=True,
                              check=False).stdout.split()
    (engine,) = children
    os.kill(int(engine), signal.SIGKILL)
    assert proc.wait(15) == 1
    text = log.read_text()
    assert "GW-SIM: the API server process exited unexpectedly" in text
    assert "IBC returned exit status 1" in text


@REAL
def test_unknown_dialog_blocks_the_login_and_ibc_names_it(stack: Stack, tmp_path: Path) -> None:
    """A window IBC has no handler for: IBC logs its title and waits; nothing logs in."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, IBKR_GATEWAY_SIM_FAULTS="unknown-dialog")
    wait_for(lambda: "detected dialog entitled: Important Notice; event=Opened"
             in log.read_text(), 20, "IBC to see the notice")
    time.sleep(3)
    assert proc.poll() is None and "Login has completed" not in log.read_text()
    assert not port_open(stack.api_port)


@REAL
def test_warm_restart_after_the_weekly_reset_needs_a_full_login(stack: Stack,
                                                                tmp_path: Path) -> None:
    """An autorestart token from before IBKR's Sunday reset is refused: the relaunched JVM
    shows the login frame, and IBC, relaunched with -Drestart, types nothing."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log)
    stack.wait_api(proc)
    (saved,) = stack.settings.glob("*/standin.properties")
    saved.write_text(re.sub(r"full_login=\d+", "full_login=1000000000", saved.read_text()))
    assert send_line(stack.command_port, "RESTART").startswith("OK RESTART")
    wait_for(lambda: "Re-starting session" in log.read_text(), 30, "the warm relaunch")
    wait_for(lambda: "autorestart token is from before IBKR's weekly reset" in log.read_text(),
             10, "the stand-in to refuse the token")
    time.sleep(2)
    after = log.read_text().partition("Re-starting session")[2]
    assert "Login has completed" not in after and not port_open(stack.api_port)


@REAL
def test_the_newer_version_offer_is_answered_by_ibcs_own_handler(stack: Stack,
                                                                 tmp_path: Path) -> None:
    """IBC's NewerVersionDialogHandler finds "Newer Version" in a label and clicks "No" (there
    is no "OK"): the offer goes away and the login completes."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, IBKR_GATEWAY_SIM_FAULTS="newer-version")
    stack.wait_api(proc)
    wait_for(lambda: "IBC: Login has completed" in log.read_text(), 10, "IBC's login")
    text = log.read_text()
    assert "IBC: detected dialog entitled: Newer Version; event=Opened" in text
    assert "IBC: Click button: No" in text and "newer version offer: No clicked" in text


@REAL
def test_a_desupport_notice_leaves_the_login_going_and_ibc_logs_only_its_title(
        stack: Stack, tmp_path: Path) -> None:
    """IBKR's notice of a coming cutoff is an HTML text: IBC's GatewayDialogHandler logs a
    "Gateway" dialog's labels only, so the date does not reach IBC's log (the health check's
    API message 2172 carries it). IBC leaves the notice open and the login goes on."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, IBKR_GATEWAY_SIM_FAULTS="version-notice")
    stack.wait_api(proc)
    wait_for(lambda: "IBC: Login has completed" in log.read_text(), 10, "IBC's login")
    text = log.read_text()
    assert "detected dialog entitled: IBKR Gateway; event=Closed" not in text  # still shown
    assert "IBC: detected dialog entitled: IBKR Gateway; event=Opened" in text
    assert "showing the desupport notice for 1030.1 (20261215)" in text
    assert not [line for line in text.splitlines() if " IBC: " in line and "20261215" in line]
    assert [line for line in text.splitlines() if ibclog.classify(line) in
            (ibclog.VERSION_NOTICE, ibclog.DESUPPORTED)] == []


@REAL
def test_a_refused_build_is_named_in_ibcs_log_in_words_the_login_watch_reads(
        stack: Stack, tmp_path: Path) -> None:
    """A JOptionPane's text is drawn in labels, which IBC logs for a "Gateway" dialog: the
    login watch takes that line as a desupported build. IBC does not answer it; nothing logs
    in, and OK (a person at the screen) closes the Gateway."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, IBKR_GATEWAY_SIM_FAULTS="desupported")
    wait_for(lambda: any(ibclog.classify(line) == ibclog.DESUPPORTED
                         for line in log.read_text().splitlines()), 20, "IBC to log the refusal")
    (line,) = [line for line in log.read_text().splitlines()
               if ibclog.classify(line) == ibclog.DESUPPORTED]
    assert ibclog.message_of(line) == ("This version, 1030.1, is no longer supported. Please "
                                       "download and install the new version.")
    assert " IBC: " in line  # IBC's own line, not the stand-in's
    time.sleep(2)
    assert proc.poll() is None and "Login has completed" not in log.read_text()
    assert not port_open(stack.api_port)
    assert json.loads(stack.ctl("STATUS")[3:])["state"] == "desupported"


@REAL
def test_the_desupport_date_reaches_the_health_checks_api_connection(stack: Stack,
                                                                     tmp_path: Path) -> None:
    """What IBC's log cannot carry, the Gateway tells every API client: message 2172 with
    IBKR's words, which the health check's probe keeps and reads the date from."""
    log = tmp_path / "ibc.log"
    proc = stack.ibcstart(log, IBKR_GATEWAY_SIM_FAULTS="version-notice",
                          IBKR_GATEWAY_SIM_DESUPPORT_DATE="20270301")
    stack.wait_api(proc)
    status = ibapi.probe("127.0.0.1", stack.api_port, 998, 10)
    (text,) = [t for code, t in status.status_messages if code == upstream.VERSION_NOTICE]
    notice = gatewayversion.read_notice(text)
    assert notice is not None and notice.desupported_on == datetime.date(2027, 3, 1)
    assert (str(notice.running), str(notice.minimum)) == ("10.30.1", "10.50.1")
