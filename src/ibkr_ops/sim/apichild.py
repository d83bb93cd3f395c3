"""``ibkr-gateway-sim api``: the simulator's API engine alone, as the Java stand-in's child.

The Gateway stand-in (``standin/ibgateway``, run by the real IBC) starts this once IBC's
login has completed, with the port and read-only flag IBC set in its settings dialog. Its
stdin is a pipe from the JVM: control commands (``STATUS``, ``FAULT hang``, ``CLEAR``, one
per line) and ``EXIT``; end-of-file means the JVM died, and the API goes with it. Its stdout
carries ``READY`` and one reply per command; its log lines go to stderr, which the JVM logs.
Lines the engine would write in IBC's name are dropped: under the real IBC, IBC speaks for
itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import control
from .config import ConfigError, SimConfig
from .gateway import Gateway
from .lines import read_lines

# The JVM pings twice a second; this long without one, it counts as stopped or frozen.
SILENT_AFTER = 2.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ibkr-gateway-sim api",
                                     description="The API engine of the Gateway stand-in.")
    parser.add_argument("--port", type=int, required=True, help="API port (IBC's setting)")
    parser.add_argument("--read-only", choices=["yes", "no"], default="yes",
                        help="the Read-Only API setting")
    parser.add_argument("--trading-mode", choices=["paper", "live"], required=True)
    parser.add_argument("--login-id", required=True, help="the logged-in user")
    parser.add_argument("--settings-dir", type=Path, required=True,
                        help="the Gateway's settings directory (jts.ini: trusted addresses)")
    parser.add_argument("--warm", action="store_true", help="logged in by an autorestart token")
    parser.add_argument("--accounts", help="comma-separated account ids")
    parser.add_argument("--logins", type=Path, help="login record file")
    parser.add_argument("--api-host", help="listen address (default from jts.ini)")
    parser.add_argument("--gateway-version",
                        help="the Gateway release claimed: its API server version follows")
    parser.add_argument("--fault", action="append", default=[], help="hang | slow-handshake=S")
    parser.add_argument("--version-notice", default="",
                        help="IBKR's desupport notice the Gateway shows, for API message 2172")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    cfg = SimConfig(headless=True, login_id=args.login_id, port=args.port,
                    read_only_api=args.read_only == "yes", settings_dir=args.settings_dir,
                    logins_file=args.logins, version_notice=args.version_notice)
    cfg.set_trading_mode(args.trading_mode)
    if args.accounts:
        cfg.set_accounts(args.accounts)
    if args.gateway_version:
        cfg.gateway_version = args.gateway_version
    if args.api_host:
        cfg.host = args.api_host
    else:
        cfg.apply_jts_ini(args.settings_dir / "jts.ini")
    cfg.add_faults(args.fault)
    cfg.finish()
    return cfg


def _log(line: str) -> None:
    if " IBC: " in line:
        return
    print(line.split(" SIM: ", 1)[-1], file=sys.stderr, flush=True)


def _reply(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def serve(gw: Gateway, commands: asyncio.StreamReader, reply: Callable[[str], None],
                warm: bool) -> int:
    """Serve the API of ``gw``, logged in from the start, while the JVM lives.

    Control commands arrive one per line on ``commands`` and each gets one ``reply``, the
    same one the simulator's control channel gives; ``READY`` is replied first, once the port
    listens. ``EXIT`` is an orderly stop (the session logs out); end-of-file means the JVM is
    gone, however it went, so the API goes down at once without a logout, as it would inside
    a killed JVM.
    """
    gw.login.warm = warm
    gw.login.completed(warm=warm)
    if not await gw.api_server.open():
        return 1
    reply("READY")
    gw.faults.arm_all()
    pinged = [time.monotonic()]
    gw.spawn(_follow_jvm(gw, pinged))
    async for line in read_lines(commands):
        command = line.strip()
        if command == "PING":
            pinged[0] = time.monotonic()
        elif command == "EXIT":
            await gw.shutdown()
            return 0
        elif command:
            reply(control.answer(gw, command))
    gw.sim("the JVM is gone: the API closes without a logout")
    os._exit(1)


async def _follow_jvm(gw: Gateway, pinged: list[float]) -> None:
    """While the JVM does not ping (stopped, frozen), new API connections get no answer, as
    in a frozen Gateway (the ``hang`` fault's behaviour, switched on and off silently)."""
    frozen = False
    while True:
        await asyncio.sleep(0.5)
        silent = time.monotonic() - pinged[0] > SILENT_AFTER
        if silent and not frozen and "hang" not in gw.faults:
            frozen = True
            gw.faults.active["hang"] = None
            gw.sim("the JVM has stopped answering: so does the API")
        elif frozen and not silent:
            frozen = False
            gw.faults.active.pop("hang", None)
            gw.sim("the JVM answers again: so does the API")


async def _serve_stdin(cfg: SimConfig, warm: bool) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return await serve(Gateway(cfg, out=_log), reader, _reply, warm)


def main(argv: list[str]) -> int:
    # Signals are the JVM's: inside a real Gateway there is no second process to signal (a
    # TERM to the process group must not end the API before the JVM has logged out).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return asyncio.run(_serve_stdin(cfg, args.warm))
