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
import signal
import sys
from pathlib import Path

from .config import ConfigError, SimConfig, parse_fault
from .gateway import Gateway


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
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    cfg = SimConfig(headless=True, login_id=args.login_id, port=args.port,
                    read_only_api=args.read_only == "yes", settings_dir=args.settings_dir,
                    logins_file=args.logins)
    cfg.set_trading_mode(args.trading_mode)
    if args.accounts:
        cfg.accounts = [a.strip() for a in args.accounts.split(",") if a.strip()]
    if args.gateway_version:
        cfg.gateway_version = args.gateway_version
    if args.api_host:
        cfg.host = args.api_host
    else:
        cfg.apply_jts_ini(args.settings_dir / "jts.ini")
    for spec in args.fault:
        name, value = parse_fault(spec)
        cfg.faults[name] = value
    cfg.finish()
    return cfg


def _log(line: str) -> None:
    if " IBC: " in line:
        return
    print(line.split(" SIM: ", 1)[-1], file=sys.stderr, flush=True)


def _reply(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _serve(cfg: SimConfig, warm: bool) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return await Gateway(cfg, out=_log).run_api(reader, _reply, warm)


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
    return asyncio.run(_serve(cfg, args.warm))
