"""The simulated IB Gateway + IBC as one process: what its parts share, and its life.

Log lines go to stdout as IBC writes them (``yyyy-MM-dd HH:mm:ss:SSS IBC: message``) and use
IBC's own wording where IBC has one: ``Starting session: …``, ``Re-starting session``,
``Second Factor Authentication initiated``, ``Login has completed``, ``Login failed``,
``Exiting after error with exit code=…``. Lines about the simulation itself say ``SIM:``.

The parts, one module each: ``login`` (the login lifecycle), ``apiserver`` (the API port and
its sessions), ``faults``, ``commandserver`` (IBC's), ``control`` (the test's channel) and
``display`` (the X connection). The stand-in's API child (``apichild``) runs a Gateway with
only the API, the faults and the control commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from . import apiserver, commandserver, control, paper
from .config import ConfigError, SimConfig
from .display import Display
from .faults import Faults
from .login import Login

if TYPE_CHECKING:
    from .apiserver import ClientSession


class Gateway:
    """One simulated Gateway process; ``await run()`` returns its exit status."""

    def __init__(self, config: SimConfig, out: Callable[[str], None] | None = None) -> None:
        self.cfg = config
        self._out = out or _print
        self.instance = uuid.uuid4().hex
        self.state = "starting"
        self.logged_in = False
        self.connected_to_ib = False
        self.stopping = False
        self.clients: dict[int, ClientSession] = {}  # by client id, once startApi is done
        self.next_order_id = 1
        self.paper = paper.Paper(config.accounts)
        self.faults = Faults(self, config.faults)
        self.login = Login(self)
        self.api_server = apiserver.ApiServer(self)
        self.display: Display | None = None
        self._exit: asyncio.Future[int] | None = None
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- logging
    def log(self, message: str) -> None:
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S:%f")[:-3]
        self._out(f"{stamp} IBC: {message}")

    def sim(self, message: str) -> None:
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S:%f")[:-3]
        self._out(f"{stamp} SIM: {message}")

    def error(self, message: str) -> None:
        print(f"ibkr-gateway-sim: error: {message}", file=sys.stderr, flush=True)
        self.log(f"ERROR: {message}")

    # ---------------------------------------------------------------- lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._exit = loop.create_future()
        for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_signal, code)
        try:
            self._preflight()
        except ConfigError as exc:
            self.error(str(exc))
            return exc.exit_code
        self.log("Starting Gateway")
        self.log(f"TWS Settings directory is: {self.cfg.settings_dir}")
        if self.cfg.ini_path:
            self.log(f"using default settings provider: ini file is {self.cfg.ini_path}")
        self.sim(f"pid {os.getpid()}, trading mode {self.cfg.trading_mode}, "
                 f"API port {self.cfg.api_port}, accounts {','.join(self.cfg.accounts)}")
        try:
            for start in (commandserver.start, control.start):
                server = await start(self)
                if server is not None:
                    self._servers.append(server)
        except ConfigError as exc:
            self.error(str(exc))
            await self.shutdown()
            return exc.exit_code
        self.faults.arm_all()
        if self.display is not None:
            self.spawn(self._hold_display(self.display))
        self.spawn(self.login.lifecycle())
        code = await self._exit
        await self.shutdown()
        return code

    def _preflight(self) -> None:
        if not self.cfg.headless:
            self.display = Display(os.environ.get("DISPLAY", ""))
        self.cfg.settings_dir.mkdir(parents=True, exist_ok=True)
        jts = self.cfg.settings_dir / "jts.ini"
        if not jts.exists():
            jts.write_text("[IBGateway]\nApiOnly=true\n\n[Logon]\nLocale=en\n"
                           "SupportsSSL=gdc1.ibllc.com:4000,true\n")
        apiserver.check_port_free(self.cfg.host, self.cfg.api_port)

    def finish(self, code: int) -> None:
        """End the process with ``code`` (the first call wins)."""
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(code)

    def _on_signal(self, code: int) -> None:
        self.sim(f"terminated by signal (exit status {code})")
        if "slow-stop" in self.faults:
            delay = self.faults.get("slow-stop") or 0.0
            self.sim(f"slow-stop={delay:g}: logging out takes {delay:g} s")
            asyncio.get_running_loop().call_later(delay, self.finish, code)
            return
        self.finish(code)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A background task of this process: cancelled at shutdown; one that fails ends the
        process with status 1, as an uncaught exception ends the Gateway."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.error(f"internal error: {task.exception()!r}")
            self.finish(1)

    async def _hold_display(self, display: Display) -> None:
        """Die with the X server like the JVM: exit 1, no logout (see ``Display.hold``)."""
        await display.hold()
        self.sim(f"X server of display {display.name} went away: exiting with status 1 as "
                 "the JVM does (no logout)")
        self.finish(1)

    async def shutdown(self) -> None:
        """Close the API, log out (unless the X server took the JVM down) and stop the rest."""
        self.stopping = True
        await self.api_server.close()
        if self.display is None or not self.display.lost:
            self.login.logout("shutdown")
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task


def _print(line: str) -> None:
    print(line, flush=True)


def run_config(config: SimConfig) -> int:
    """Run one simulated Gateway to completion; its exit status."""
    try:
        return asyncio.run(Gateway(config).run())
    except KeyboardInterrupt:
        return 130
