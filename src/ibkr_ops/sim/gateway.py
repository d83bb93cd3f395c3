"""The simulated IB Gateway + IBC: login lifecycle, API server, command server, faults.

Log lines go to stdout as IBC writes them (``yyyy-MM-dd HH:mm:ss:SSS IBC: message``) and use
IBC's own wording where IBC has one: ``Starting session: …``, ``Re-starting session``,
``Second Factor Authentication initiated``, ``Login has completed``, ``Login failed``,
``Exiting after error with exit code=…``. Lines about the simulation itself say ``SIM:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from . import api, logins, paper, protocol, upstream
from .config import (
    EXIT_LOGIN_DIALOG_TIMEOUT,
    ConfigError,
    SimConfig,
    parse_fault,
    parse_restart_time,
)

MSG_326 = "Unable to connect as the client id is already in use. Retry with a unique client id."
MAX_API_CLIENTS = 32  # IB: "each TWS session can receive up to 32 different client applications"
LEGACY_SERVER_VERSION = 76  # what a Gateway answers a pre-v100 client (its last such version)
X11_SOCKETS = "/tmp/.X11-unix"  # noqa: S108 - the X server's fixed socket directory
MSG_1100 = upstream.LOST[1]


class Gateway:
    """One simulated Gateway process; ``await run()`` returns its exit status."""

    def __init__(self, config: SimConfig, out: Callable[[str], None] | None = None) -> None:
        self.cfg = config
        self._out = out or _print
        self.instance = uuid.uuid4().hex
        self.state = "starting"
        self.clients: dict[int, ClientSession] = {}
        self.next_order_id = 1
        self.paper = paper.Paper(config.accounts)
        self.faults: dict[str, float | None] = dict(config.faults)
        self.connected_to_ib = False
        self.logged_in = False
        self.login_count = 0
        self.connections = 0
        self._exit: asyncio.Future[int] | None = None
        self._restart: asyncio.Event | None = None
        self._approve: asyncio.Event | None = None
        self._api_server: asyncio.Server | None = None
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._leak: list[bytearray] = []
        self._leak_task: asyncio.Task[None] | None = None
        self._restart_pending = False
        self._stopping = False
        self._warm = config.restart_dir is not None
        self._display: socket.socket | None = None
        self._display_lost = False

    # ---------------------------------------------------------------- logging
    def log(self, message: str) -> None:
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S:%f")[:-3]
        self._out(f"{stamp} IBC: {message}")

    def sim(self, message: str) -> None:
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S:%f")[:-3]
        self._out(f"{stamp} SIM: {message}")

    # ---------------------------------------------------------------- lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._exit = loop.create_future()
        self._restart = asyncio.Event()
        self._approve = asyncio.Event()
        for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_signal, code)
        try:
            self._preflight()
        except ConfigError as exc:
            self._error(str(exc))
            return exc.exit_code
        self.log("Starting Gateway")
        self.log(f"TWS Settings directory is: {self.cfg.settings_dir}")
        if self.cfg.ini_path:
            self.log(f"using default settings provider: ini file is {self.cfg.ini_path}")
        self.sim(f"pid {os.getpid()}, trading mode {self.cfg.trading_mode}, "
                 f"API port {self.cfg.api_port}, accounts {','.join(self.cfg.accounts)}")
        try:
            await self._start_command_server()
            await self._start_control_server()
        except ConfigError as exc:
            self._error(str(exc))
            await self._shutdown()
            return exc.exit_code
        for name, value in list(self.faults.items()):
            self._arm(name, value)
        if self._display is not None:
            self._spawn(self._hold_display(self._display))
        self._spawn(self._lifecycle())
        code = await self._exit
        await self._shutdown()
        return code

    async def run_api(self, commands: asyncio.StreamReader, reply: Callable[[str], None],
                      warm: bool) -> int:
        """The API engine alone, logged in from the start: the Java stand-in's child.

        Control commands arrive one per line on ``commands`` and each gets one ``reply``;
        ``READY`` is replied first, once the port listens. ``EXIT`` is an orderly stop (the
        session logs out); end-of-file means the JVM is gone, however it went, so the API
        goes down at once without a logout, as it would inside a killed JVM.
        """
        self._exit = asyncio.get_running_loop().create_future()
        self._restart = asyncio.Event()
        self._approve = asyncio.Event()
        self._warm = warm
        self._logged_in(warm=warm)
        if not await self._open_api():
            return await self._exit
        reply("READY")
        for name, value in list(self.faults.items()):
            self._arm(name, value)
        pinged = [time.monotonic()]
        self._spawn(self._follow_jvm(pinged))
        async for line in _lines(commands):
            if line.strip() == "PING":
                pinged[0] = time.monotonic()
            elif line.strip() == "EXIT":
                await self._shutdown()
                return 0
            elif line.strip():
                reply(self.control(line.strip()))
        self.sim("the JVM is gone: the API closes without a logout")
        os._exit(1)

    async def _follow_jvm(self, pinged: list[float]) -> None:
        """The JVM pings twice a second; while it does not (stopped, frozen), new API
        connections get no answer, as in a frozen Gateway (the "hang" fault's behaviour)."""
        frozen = False
        while True:
            await asyncio.sleep(0.5)
            silent = time.monotonic() - pinged[0] > 2.0
            if silent and not frozen and "hang" not in self.faults:
                frozen = True
                self.faults["hang"] = None
                self.sim("the JVM has stopped answering: so does the API")
            elif frozen and not silent:
                frozen = False
                self.faults.pop("hang", None)
                self.sim("the JVM answers again: so does the API")

    def _preflight(self) -> None:
        if not self.cfg.headless:
            self._display = connect_display(os.environ.get("DISPLAY", ""))
        self.cfg.settings_dir.mkdir(parents=True, exist_ok=True)
        jts = self.cfg.settings_dir / "jts.ini"
        if not jts.exists():
            jts.write_text("[IBGateway]\nApiOnly=true\n\n[Logon]\nLocale=en\n"
                           "SupportsSSL=gdc1.ibllc.com:4000,true\n")
        # Fail at once on a busy API port instead of after the login.
        probe = socket.socket(_family(self.cfg.host), socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((self.cfg.host, self.cfg.api_port))
        except OSError as exc:
            raise ConfigError(f"API port {self.cfg.host}:{self.cfg.api_port} is not available: "
                              f"{exc.strerror}", 1) from None
        finally:
            probe.close()

    def _error(self, message: str) -> None:
        print(f"ibkr-gateway-sim: error: {message}", file=sys.stderr, flush=True)
        self.log(f"ERROR: {message}")

    def finish(self, code: int) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(code)

    def _on_signal(self, code: int) -> None:
        self.sim(f"terminated by signal (exit status {code})")
        if "slow-stop" in self.faults:
            delay = self.faults["slow-stop"] or 0.0
            self.sim(f"slow-stop={delay:g}: logging out takes {delay:g} s")
            asyncio.get_running_loop().call_later(delay, self.finish, code)
            return
        self.finish(code)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._error(f"internal error: {exc!r}")
            self.finish(1)

    async def _hold_display(self, sock: socket.socket) -> None:
        """Keep the X connection open, as AWT does, and die with it like the JVM.

        The real JVM's X I/O error handler prints one line on stderr (which ibcstart.sh
        discards) and Xlib then calls exit(1): no shutdown hook runs, so the Gateway does not
        log out and its session stays open until the next login. That exit is what makes a
        crashed Xvfb restart the Gateway unit (Restart=on-failure).
        """
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        while True:
            try:
                data = await loop.sock_recv(sock, 4096)
            except OSError:
                data = b""
            if not data:
                break
        display = os.environ.get("DISPLAY", "")
        print(f"X connection to {display} host broken (explicit kill or server shutdown)",
              file=sys.stderr, flush=True)
        self.sim(f"X server of display {display} went away: exiting with status 1 as the "
                 "JVM does (no logout)")
        self._display_lost = True
        self.finish(1)

    async def _shutdown(self) -> None:
        self._stopping = True
        await self._close_api()
        if not self._display_lost:
            self._logout("shutdown")
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _lifecycle(self) -> None:
        if self._restart is None:
            raise RuntimeError("run() sets up the restart event")
        while True:
            if not await self._login():
                return
            if not await self._open_api():
                return
            self._spawn(self._auto_restart())
            await self._restart.wait()
            self._restart.clear()
            self._restart_pending = False
            self.sim("warm restart: closing the API and logging out")
            await self._close_api()
            self._logout("restart")
            if self.cfg.restart_mode == "exit":
                self._write_autorestart()
                self.sim("exiting for ibcstart.sh to relaunch with -Drestart")
                self.finish(0)
                return
            self._warm = True

    async def _login(self) -> bool:  # noqa: PLR0911 - one return per IBC login outcome
        """Cold or warm login; False when the process should not go on (exit already set)."""
        if self._approve is None:
            raise RuntimeError("run() sets up the approval event")
        self.state = "login"
        while True:
            if self._warm:
                self.log("Re-starting session")
                self._consume_autorestart()
                await asyncio.sleep(self.cfg.login_delay)
                return self._logged_in(warm=True)
            timeout = self.cfg.login_dialog_timeout
            self.log("Starting session: will exit if login dialog is not displayed within "
                     f"{int(timeout)} seconds")
            if "no-login-dialog" in self.faults:
                await asyncio.sleep(timeout)
                self.log("IBC closing after TWS/Gateway failed to display login dialog")
                self.log(f"Exiting after error with exit code={1112}")
                self.finish(EXIT_LOGIN_DIALOG_TIMEOUT)
                return False
            self.log("Login dialog WINDOW_OPENED: LoginState is LOGGED_OUT")
            if self.cfg.ibc_mode and not self.cfg.password:
                # IBC leaves the dialog for a person to fill in; nobody will here.
                self.state = "login-dialog"
                self.log("IbPassword is not set: the user must log in manually")
                return False
            self.log(f"Setting Trading mode = {self.cfg.trading_mode}")
            self.log("Setting user name")
            self.log("Setting password")
            self.log("Login attempt: 1")
            self.log("Click button: Log In")
            await asyncio.sleep(self.cfg.login_delay)
            if "reject-login" in self.faults:
                self._rejected()
                return False
            if self.cfg.second_factor == "off":
                return self._logged_in(warm=False)
            self.state = "second-factor"
            self._approve.clear()
            self.log("Second Factor Authentication initiated")
            started = time.monotonic()
            if self.cfg.second_factor == "auto" and "twofa-timeout" not in self.faults:
                self._spawn(self._auto_approve(self.cfg.second_factor_delay))
            try:
                await asyncio.wait_for(self._approve.wait(), self.cfg.second_factor_timeout)
            except TimeoutError:
                pass
            else:
                return self._logged_in(warm=False)
            self.log(f"Duration since login: {int(time.monotonic() - started)} seconds")
            if self.cfg.relogin_after_2fa_timeout:
                self.log("Re-login after second factor authentication timeout in 5 second")
                await asyncio.sleep(5)
                continue
            # IBC 3.24 (LoginManager): no relogin permitted, no exit either; the Gateway waits
            # at its login dialog. Exit 1111 (87) is for an approved login that never completes.
            self.log("Re-login after second factor authentication timeout not required")
            self.state = "login-dialog"
            return False

    def _rejected(self) -> None:
        self.state = "login-failed"
        self.log("Login failed")
        self.log("Login error message: Unrecognized Username or Password")
        if self.cfg.ibc_mode and self.cfg.session_id:
            # IBC 3.24 dismisses the dialog and cold-restarts: ibcstart.sh relaunches Java,
            # which tries the same password again, and again.
            self.log("Cold restart after Login Failed dialog encountered")
            (self.cfg.settings_dir / f"COLDRESTART{self.cfg.session_id}").touch()
            self.finish(0)

    async def _auto_approve(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.state == "second-factor" and "twofa-timeout" not in self.faults:
            self.sim("second factor approved (automatically)")
            self.approve()

    def approve(self) -> bool:
        if self.state != "second-factor" or self._approve is None:
            return False
        self._approve.set()
        return True

    def _logged_in(self, warm: bool) -> bool:
        self.state = "logged-in"
        self.logged_in = True
        self.connected_to_ib = "connectivity-lost" not in self.faults
        self.login_count += 1
        self.log("Login has completed")
        for account in self.cfg.accounts:
            logins.close_stale(self.cfg.logins_path, account)
            logins.record(self.cfg.logins_path, "login", account=account,
                          user=self.cfg.login_id, mode=self.cfg.trading_mode, warm=warm,
                          instance=self.instance, api_port=self.cfg.api_port)
        if "existing-session" in self.faults:
            self._spawn(self._existing_session())
        return True

    def _logout(self, reason: str) -> None:
        if not self.logged_in:
            return
        self.logged_in = False
        self.connected_to_ib = False
        for account in self.cfg.accounts:
            logins.record(self.cfg.logins_path, "logout", account=account,
                          user=self.cfg.login_id, mode=self.cfg.trading_mode, reason=reason,
                          instance=self.instance, api_port=self.cfg.api_port)

    async def _existing_session(self) -> None:
        """Another login took this user's session: the API stays up but IB is gone."""
        await asyncio.sleep(0)
        if not self.logged_in:
            return
        self.log("detected dialog entitled: Existing session detected; event=Activated")
        self.log("End this session and let the other session proceed (scenario 2)")
        self._logout("existing-session")
        self.state = "session-lost"
        for client in list(self.clients.values()):
            client.send(protocol.error(-1, 1100, MSG_1100, client.version))

    def _consume_autorestart(self) -> None:
        """The real Gateway deletes the autorestart file it was relaunched for."""
        name = self.cfg.restart_dir or ""
        if not name:
            return
        path = self.cfg.settings_dir / name / "autorestart"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _write_autorestart(self) -> None:
        folder = self.cfg.user_dir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "autorestart").write_text(f"{int(time.time())}\n")
        self.log(f"Auto-restart file written: {folder / 'autorestart'}")

    async def _auto_restart(self) -> None:
        """AutoRestartTime from config.ini: a daily warm restart at that local time."""
        value = self.cfg.auto_restart_time
        if not value:
            return
        at = parse_restart_time(value)
        if at is None:
            self.log(f"Invalid AutoRestartTime setting: '{value}' (ignored)")
            return
        self.log(f"Setting auto-restart time to {at.strftime('%I:%M %p')}")
        now = dt.datetime.now()
        await asyncio.sleep((next_occurrence(now, at) - now).total_seconds())
        self.request_restart("AutoRestartTime")

    def request_restart(self, why: str) -> None:
        if self._restart is not None and self.logged_in:
            self.sim(f"restart requested ({why})")
            self._restart.set()

    # ---------------------------------------------------------------- faults
    def set_fault(self, spec: str) -> str:
        name, value = parse_fault(spec)
        self.faults[name] = value
        self._arm(name, value)
        self.sim(f"fault on: {spec}")
        return name

    def clear_fault(self, name: str | None) -> None:
        names = list(self.faults) if not name else [name]
        for item in names:
            self.faults.pop(item, None)
            if item == "leak" and self._leak_task is not None:
                self._leak_task.cancel()
                self._leak_task = None
                self._leak.clear()
            elif item in upstream.FAULTS:
                upstream.switch(self, item, on=False)
        self.sim(f"faults cleared: {', '.join(names) or 'none'}")

    def _arm(self, name: str, value: float | None) -> None:
        if name == "crash-after":
            self._spawn(self._crash(value or 0.0))
        elif name == "leak":
            if self._leak_task is not None:
                self._leak_task.cancel()
            self._leak_task = asyncio.ensure_future(self._leak_memory(value or 0.0))
            self._tasks.add(self._leak_task)
            self._leak_task.add_done_callback(self._task_done)
        elif name == "existing-session" and self.logged_in:
            self._spawn(self._existing_session())
        elif name in upstream.FAULTS:
            upstream.switch(self, name, on=True)
        elif name == "twofa-timeout" and self.state == "second-factor":
            pass  # the pending automatic approval checks the fault before approving

    async def _crash(self, after: float) -> None:
        await asyncio.sleep(after)
        self.sim(f"crash-after={after:g}: killing the process (SIGKILL)")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    async def _leak_memory(self, mb_per_minute: float) -> None:
        """Grow the resident set by touching fresh pages, like the Gateway's slow leak."""
        step = 0.25
        chunk = int(mb_per_minute * 1024 * 1024 / 60 * step)
        while chunk > 0:
            self._leak.append(bytearray(b"\x01") * chunk)
            await asyncio.sleep(step)

    # ---------------------------------------------------------------- API server
    async def _open_api(self) -> bool:
        try:
            self._api_server = await asyncio.start_server(
                self._serve_api, self.cfg.host, self.cfg.api_port, reuse_address=True, backlog=128)
        except OSError as exc:
            self._error(f"API port {self.cfg.host}:{self.cfg.api_port} is not available: "
                        f"{exc.strerror}")
            self.finish(1)
            return False
        self.log("Performing port configuration")
        self.log(f"TWS API socket port is already set to {self.cfg.api_port}")
        if self.cfg.read_only_api:
            self.log("Read-Only API checkbox is already set to: true")
        self.log("Configuration tasks completed")
        self.sim(f"API listening on {self.cfg.host}:{self.cfg.api_port}")
        return True

    async def _close_api(self) -> None:
        server, self._api_server = self._api_server, None
        if server is not None:
            server.close()
        for client in list(self.clients.values()) + list(ClientSession.pending(self)):
            client.close()
        self.clients.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _serve_api(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername")[0])
        if not self.cfg.is_trusted(peer):
            # AcceptIncomingConnectionAction=reject: an untrusted client is turned away at once.
            self.log(f"API connection from untrusted address {peer} rejected")
            writer.close()
            return
        session = ClientSession(self, reader, writer)
        self.connections += 1
        try:
            await session.serve()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                protocol.ProtocolError):
            pass
        finally:
            session.close()

    # ---------------------------------------------------------------- IBC command server
    async def _start_command_server(self) -> None:
        port = self.cfg.command_server_port
        if not port:
            self.log("CommandServer is not started because the port is not configured")
            return
        host = self.cfg.bind_address or None
        self.log(f"CommandServer is starting with port {port}")
        try:
            server = await asyncio.start_server(self._serve_commands, host, port,
                                                reuse_address=True, backlog=5)
        except OSError as exc:
            raise ConfigError(f"CommandServerPort {port} is not available: {exc.strerror}",
                              1) from None
        self._servers.append(server)
        self._listen_addresses = {str(s.getsockname()[0]) for s in server.sockets}
        self.log(f"CommandServer listening on address: {host or 'all addresses'} port: {port}")
        if self.cfg.control_from:
            self.log(f"CommandServer: ControlFrom setting = {','.join(self.cfg.control_from)}")
        self.log("CommandServer started and is ready to accept commands")

    def _permitted(self, peer: str, local: str) -> bool:
        """IBC's isPermittedClient: the listening address, loopback, or a ControlFrom entry."""
        try:
            address = ipaddress.ip_address(peer.split("%", maxsplit=1)[0])
        except ValueError:
            return False
        if address.is_loopback or (address.version == 6 and address.ipv4_mapped is not None
                                   and address.ipv4_mapped.is_loopback):
            return True
        if peer == local:
            return True
        plain = str(address.ipv4_mapped) if address.version == 6 and address.ipv4_mapped else peer
        for entry in self.cfg.control_from:
            if entry.lower() in (peer.lower(), plain.lower()):
                return True
            with contextlib.suppress(OSError):
                if plain in socket.gethostbyname_ex(entry)[2]:
                    return True
        return False

    async def _serve_commands(  # noqa: PLR0912, PLR0915 - one branch per IBC command
            self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername")[0])
        local = str(writer.get_extra_info("sockname")[0])
        if not self._permitted(peer, local):
            self.log(f"CommandServer denied access to: {peer}")
            writer.close()
            return
        self.log(f"CommandServer accepted connection from: {peer}")
        newline = b"\n"

        async def reply(line: str) -> None:
            writer.write(line.encode() + newline)
            await writer.drain()

        try:
            if not self.cfg.suppress_info:
                await reply("INFO IBC Command Server")
            if self.cfg.command_prompt:
                writer.write(self.cfg.command_prompt.encode())
            async for raw in _lines(reader):
                command = raw
                if command == "":
                    continue
                self.log(f"CommandServer received command: {command}")
                verb = command.upper()
                if verb == "EXIT":
                    await reply("OK Goodbye")
                    break
                if verb == "STOP":
                    if self._stopping:
                        await reply("ERROR STOP already in progress")
                        break
                    if not self.cfg.suppress_info:
                        await reply("INFO Closing IBC")
                    await reply("OK Shutting down: STOP command")
                    writer.close()
                    if not self.logged_in:
                        self.log("Login has not completed: exiting immediately")
                    self._stopping = True
                    self.finish(0)
                    return
                if verb in ("RESTART", "PAUSE"):
                    await self._command_restart(verb, reply)
                    break
                if verb == "ENABLEAPI":
                    await reply("ERROR ENABLEAPI is not valid for the IB Gateway")
                elif verb in ("RECONNECTDATA", "RECONNECTACCOUNT"):
                    await reply("OK ")
                    if verb == "RECONNECTACCOUNT":
                        self._reconnect_account()
                else:
                    await reply("ERROR Command invalid")
                    self.log(f"CommandServer: invalid command received: {command}")
                if self.cfg.command_prompt:
                    writer.write(self.cfg.command_prompt.encode())
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _command_restart(self, verb: str, reply: Callable[[str], object]) -> None:
        self.log(f"RestartTask: pauseOnly = {str(verb == 'PAUSE').lower()}")
        self.log(f"RestartTask: verb = {verb}")
        if self._restart_pending:
            self.log(f"{verb} already in progress")
            await reply(f"ERROR {verb} already in progress")  # type: ignore[misc]
            return
        self._restart_pending = True
        if verb == "PAUSE":
            if not self.cfg.suppress_info:
                await reply("INFO Pausing TWS")  # type: ignore[misc]
            sid = self.cfg.session_id
            (self.cfg.settings_dir / f"PAUSE{sid}").touch()
        elif not self.cfg.suppress_info:
            await reply("INFO Restarting TWS")  # type: ignore[misc]
        await reply(f"OK {verb} in progress")  # type: ignore[misc]
        while dt.datetime.now().second >= 58:
            await asyncio.sleep(0.2)
        now = dt.datetime.now()
        action = restart_minute(now)
        label = action.strftime("%I:%M %p")
        self.log(f"Setting auto-restart time to {label}")
        await reply(f"OK {verb} at {label}")  # type: ignore[misc]
        if self.cfg.restart_delay is not None:
            delay = self.cfg.restart_delay
        else:
            delay = (action - dt.datetime.now()).total_seconds()
        self._spawn(self._delayed_restart(max(0.0, delay), verb))

    async def _delayed_restart(self, delay: float, verb: str) -> None:
        await asyncio.sleep(delay)
        if self.logged_in:
            self.request_restart(f"{verb} command")
        else:
            self._restart_pending = False

    def _reconnect_account(self) -> None:
        """Ctrl-Alt-R: a lost session (existing-session fault cleared) comes back."""
        if self.state == "session-lost" and "existing-session" not in self.faults:
            self.state = "logged-in"
            self._logged_in(warm=True)
            for client in list(self.clients.values()):
                client.send(protocol.error(-1, 1102, "Connectivity between IB and Trader "
                                           "Workstation has been restored - data maintained.",
                                           client.version))

    # ---------------------------------------------------------------- control server
    async def _start_control_server(self) -> None:
        port = self.cfg.control_port
        if not port:
            return
        try:
            server = await asyncio.start_server(self._serve_control, self.cfg.control_host, port,
                                                reuse_address=True)
        except OSError as exc:
            raise ConfigError(f"control port {port} is not available: {exc.strerror}", 1) from None
        self._servers.append(server)
        self.sim(f"control port listening on {self.cfg.control_host}:{port}")

    async def _serve_control(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        try:
            async for line in _lines(reader):
                if not line.strip():
                    continue
                answer = self.control(line.strip())
                writer.write(answer.encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def control(self, line: str) -> str:  # noqa: PLR0911 - one return per command
        """One control command (see cli.CONTROL_HELP); returns the reply line."""
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        try:
            if verb == "STATUS":
                return "OK " + json.dumps(self.status(), sort_keys=True)
            if verb == "APPROVE":
                if self.approve():
                    self.sim("second factor approved (control command)")
                    return "OK approved"
                return f"ERROR no second-factor prompt is pending (state {self.state})"
            if verb == "FAULT":
                if not arg:
                    return "ERROR usage: FAULT NAME[=VALUE]"
                return f"OK fault {self.set_fault(arg)} on"
            if verb == "CLEAR":
                self.clear_fault(arg or None)
                return "OK cleared"
            if verb == "RESTART":
                if not self.logged_in:
                    return "ERROR not logged in"
                self.request_restart("control command")
                return "OK restarting"
            if verb == "STOP":
                self.finish(0)
                return "OK stopping"
        except ConfigError as exc:
            return f"ERROR {exc}"
        return "ERROR unknown command; use STATUS, APPROVE, FAULT, CLEAR, RESTART or STOP"

    def status(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "state": self.state,
            "logged_in": self.logged_in,
            "warm": self._warm,
            "trading_mode": self.cfg.trading_mode,
            "accounts": self.cfg.accounts,
            "api_port": self.cfg.api_port,
            "api_open": self._api_server is not None,
            "clients": sorted(self.clients),
            "connections": self.connections,
            "logins": self.login_count,
            "faults": {k: v for k, v in self.faults.items()},
            "leaked_mb": round(sum(len(b) for b in self._leak) / 1048576, 1),
            "heap_mb": self.cfg.heap_mb,
            "display_connected": self._display is not None and not self._display_lost,
        }


class ClientSession:
    """One API connection."""

    _pending: ClassVar[dict[int, set[ClientSession]]] = {}

    def __init__(self, gateway: Gateway, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.gw = gateway
        self.reader = reader
        self.writer = writer
        self.version = protocol.SERVER_VERSION
        self.client_id: int | None = None
        self._closed = False
        self.api = api.Api(self)
        ClientSession._pending.setdefault(id(gateway), set()).add(self)

    @classmethod
    def pending(cls, gateway: Gateway) -> list[ClientSession]:
        return list(cls._pending.get(id(gateway), ()))

    def send(self, data: bytes) -> None:
        if not self._closed and not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.api.close()
        ClientSession._pending.get(id(self.gw), set()).discard(self)
        if self.client_id is not None and self.gw.clients.get(self.client_id) is self:
            del self.gw.clients[self.client_id]
        with contextlib.suppress(Exception):
            self.writer.close()

    async def serve(self) -> None:
        gw = self.gw
        if "hang" in gw.faults:
            while await self.reader.read(65536):
                pass
            return
        prefix = await self.reader.readexactly(1)
        if prefix.isdigit():
            await self._legacy(prefix + await self.reader.readuntil(b"\0"))
            return
        if prefix + await self.reader.readexactly(3) != protocol.API_PREFIX:
            return
        low, high = protocol.parse_version_range(
            (await protocol.read_message(self.reader)).decode("utf-8", "replace"))
        self.version = protocol.choose_version(low, high, gw.cfg.server_version)
        delay = gw.faults.get("slow-handshake")
        if "slow-handshake" in gw.faults and delay:
            await asyncio.sleep(delay)
        self.send(protocol.encode(self.version, protocol.connection_time()))
        while True:
            fields = protocol.decode_fields(await protocol.read_message(self.reader))
            if not fields:
                continue
            if self.client_id is None:
                if fields[0] == "71" and not self._start_api(fields):
                    await self.writer.drain()
                    return
                continue
            self._handle(fields)
            await self.writer.drain()

    async def _legacy(self, first: bytes) -> None:
        """A pre-v100 client ("63\\0", no ``API`` prefix, no length prefixes): answered as a
        Gateway does, with server version 76 and the time, then its accounts and next order id
        after its client id; it speaks unframed fields, so only those few requests are read."""
        gw = self.gw
        version = first.rstrip(b"\0").decode("ascii", "replace")
        if not version.isdigit():
            return
        gw.sim(f"pre-v100 API client (version {version}): answering as server version "
               f"{LEGACY_SERVER_VERSION}")
        self.version = LEGACY_SERVER_VERSION
        self.writer.write(f"{LEGACY_SERVER_VERSION}\0{protocol.connection_time()}\0".encode())
        field = (await self.reader.readuntil(b"\0")).rstrip(b"\0").decode()
        if field == "71":  # startApi: version, clientId, optional capabilities
            await self.reader.readuntil(b"\0")
            field = (await self.reader.readuntil(b"\0")).rstrip(b"\0").decode()
            await self.reader.readuntil(b"\0")
        if not field.lstrip("-").isdigit() or int(field) in gw.clients:
            self.writer.write(b"4\x002\x00-1\x00326\x00" + MSG_326.encode() + b"\x00")
            return
        self.client_id = int(field)
        gw.clients[self.client_id] = self
        self.writer.write(f"15\x001\x00{','.join(gw.cfg.accounts)}\x00"
                          f"9\x001\x00{gw.next_order_id}\x00".encode())
        await self.writer.drain()
        while await self.reader.readuntil(b"\0"):
            pass  # unframed requests cannot be split without each one's field count

    def _start_api(self, fields: list[str]) -> bool:
        gw = self.gw
        try:
            client_id = int(fields[2])
        except (IndexError, ValueError):
            return False
        if client_id in gw.clients:
            gw.sim(f"API client id {client_id} already in use: error 326")
            self.send(protocol.error(-1, 326, MSG_326, self.version))
            return False
        if len(gw.clients) >= MAX_API_CLIENTS:
            gw.sim(f"API client {client_id} refused: {MAX_API_CLIENTS} clients are connected")
            return False
        self.client_id = client_id
        gw.clients[client_id] = self
        self.send(protocol.encode(15, 1, ",".join(gw.cfg.accounts)))
        self.send(protocol.encode(9, 1, gw.next_order_id))
        for code, text in upstream.at_connect(gw.faults, gw.connected_to_ib):
            self.send(protocol.error(-1, code, text, self.version))
        return True

    def _handle(self, fields: list[str]) -> None:
        if not self.gw.connected_to_ib and api.needs_ib(fields[0]):
            return  # requests that need IB's servers go unanswered while disconnected
        self.api.handle(fields)


async def _lines(reader: asyncio.StreamReader):  # type: ignore[no-untyped-def]
    """Lines as Java's readLine splits them: LF, CR or CRLF; the terminator dropped."""
    buffer = b""
    skip_lf = False
    while True:
        chunk = await reader.read(4096)
        if not chunk:
            if buffer:
                yield buffer.decode("utf-8", "replace")
            return
        buffer += chunk
        while buffer:
            if skip_lf and buffer.startswith(b"\n"):
                buffer = buffer[1:]
            skip_lf = False
            match = re.search(b"[\r\n]", buffer)
            if match is None:
                break
            cut = match.start()
            line, terminator, buffer = buffer[:cut], buffer[cut:cut + 1], buffer[cut + 1:]
            skip_lf = terminator == b"\r"
            yield line.decode("utf-8", "replace")


def next_occurrence(now: dt.datetime, at: dt.time) -> dt.datetime:
    """The next local time ``at`` strictly after ``now`` (today or tomorrow)."""
    target = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    return target


def restart_minute(now: dt.datetime) -> dt.datetime:
    """IBC's RESTART time: the next whole minute (callers wait out seconds 58 and 59 first)."""
    return (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connect_display(display: str) -> socket.socket:
    """The X11 connection AWT opens at start, set up and returned open for the JVM's lifetime.

    Java's AWT fails without an X server; so does the simulated Gateway. The connection setup
    (byte order, protocol 11.0, no authorisation) is answered by any X server; a refusal is the
    same error as no server, as in Java.
    """
    message = ("Can't connect to X11 window server using '{}' as the value of the DISPLAY "
               "variable.")
    if not display:
        raise ConfigError("No X11 DISPLAY variable was set, but this program performed an "
                          "operation which requires it.", 1)
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        raise ConfigError(message.format(display), 1)
    targets: list[tuple[socket.AddressFamily, object]] = []
    if host in ("", "unix"):
        targets.append((socket.AF_UNIX, f"\0{X11_SOCKETS}/X{number}"))
        targets.append((socket.AF_UNIX, f"{X11_SOCKETS}/X{number}"))
    else:
        targets.append((socket.AF_INET, (host, 6000 + int(number))))
    setup = b"l\0" + (11).to_bytes(2, "little") + bytes(8)
    for family, address in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            sock.connect(address)  # type: ignore[arg-type]
            sock.sendall(setup)
            head = _recv_exactly(sock, 8)
            _recv_exactly(sock, int.from_bytes(head[6:8], "little") * 4)
        except OSError:
            sock.close()
            continue
        if head[0] != 1:  # 0 failed, 2 authenticate
            sock.close()
            break
        sock.settimeout(None)
        return sock
    raise ConfigError(message.format(display), 1)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the X server closed the connection")
        data += chunk
    return data


def _print(line: str) -> None:
    print(line, flush=True)


def run_config(config: SimConfig) -> int:
    """Run one simulated Gateway to completion; its exit status."""
    try:
        return asyncio.run(Gateway(config).run())
    except KeyboardInterrupt:
        return 130


def load_sim_properties(path: Path, config: SimConfig) -> None:
    """``key=value`` simulator defaults written by the simulated installer."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            config.apply_knob(key.strip(), value.strip())
