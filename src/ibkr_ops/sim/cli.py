"""``ibkr-gateway-sim``: run a simulated IB Gateway, talk to a running one, check login records.

    ibkr-gateway-sim --port 4002 [--ibc-ini config.ini] [--fault hang] ...   run one
    ibkr-gateway-sim ctl --control-port 7499 APPROVE|STATUS|FAULT x|CLEAR|RESTART|STOP
    ibkr-gateway-sim logins FILE...                  exit 1 if two processes held one account
    ibkr-gateway-sim api --port P ...                the API engine alone (the Java stand-in's)

The simulated installation's "java" runs ``python3 <gateway jar> --as-java <java args>``;
that form reads its settings the way IBC's ``ibcstart.sh`` passes them (see ``javacli``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from . import apichild, logins
from .config import ConfigError, SimConfig
from .gateway import run_config
from .javacli import java_main

CONTROL_HELP = """control commands (one line each, reply 'OK …' or 'ERROR …'):
  STATUS            one JSON object: state, pid, accounts, api_open, clients, faults, …
  APPROVE           approve the pending second-factor prompt (play the person with the phone)
  FAULT NAME[=V]    switch a fault on: hang, slow-handshake=S, crash-after=S, reject-login,
                    twofa-timeout, leak=MB_PER_MIN, existing-session, no-login-dialog,
                    slow-stop=S, farm-broken, connectivity-lost
  CLEAR [NAME]      switch one fault (or all) off
  RESTART           warm restart now (as IBC's RESTART, without waiting for the minute)
  STOP              log out and exit 0
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ibkr-gateway-sim",
        description="Simulated IB Gateway + IBC speaking the TWS API wire protocol.",
        epilog=CONTROL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, help="API port (default: OverrideTwsApiPort, "
                        "else 4002 paper / 4001 live)")
    parser.add_argument("--host", help="API listen address (default 127.0.0.1)")
    parser.add_argument("--ibc-ini", type=Path, help="IBC config.ini to read settings from")
    parser.add_argument("--trading-mode", choices=["paper", "live"], help="overrides TradingMode")
    parser.add_argument("--login-id", help="user name when no config.ini is given")
    parser.add_argument("--accounts", help="comma-separated account ids (default derived from "
                        "the user: DU… paper, U… live)")
    parser.add_argument("--login-delay", type=float, help="seconds from the login dialog to "
                        "the login (default 0)")
    parser.add_argument("--second-factor", choices=["auto", "manual", "off"],
                        help="cold logins wait for a second factor: approved automatically "
                        "after --second-factor-delay (auto, default), only by the control "
                        "command APPROVE (manual), or never asked (off)")
    parser.add_argument("--second-factor-delay", type=float,
                        help="seconds until automatic approval (default 1)")
    parser.add_argument("--second-factor-timeout", type=float,
                        help="overrides SecondFactorAuthenticationTimeout (default 180)")
    parser.add_argument("--fault", action="append", default=[], metavar="F",
                        help="hang | slow-handshake=S | crash-after=S | reject-login | "
                        "twofa-timeout | leak=MB_PER_MIN | existing-session | no-login-dialog | "
                        "slow-stop=S | farm-broken | connectivity-lost")
    parser.add_argument("--control-port", type=int, help="serve control commands on this "
                        "port (loopback; default off)")
    parser.add_argument("--command-server-port", type=int,
                        help="overrides IBC's CommandServerPort")
    parser.add_argument("--settings-dir", type=Path, help="the Gateway settings directory "
                        "(default $XDG_STATE_HOME/ibkr-gateway-sim)")
    parser.add_argument("--logins-file", type=Path, help="login record (default "
                        "<settings dir>/ibkr-gateway-sim-logins.jsonl)")
    parser.add_argument("--restart-delay", type=float, help="seconds from a RESTART command "
                        "to the restart (default: the next minute, as IBC)")
    parser.add_argument("--restart-exits", action="store_true", help="a warm restart writes "
                        "the autorestart file and exits 0 (as under ibcstart.sh) instead of "
                        "logging in again in-process")
    parser.add_argument("--headless", action="store_true",
                        help="do not require an X server on DISPLAY")
    return parser


# Options whose value goes unchanged into the SimConfig field of the same name.
DIRECT_OPTIONS = ("settings_dir", "login_id", "port", "host", "login_delay", "second_factor",
                  "second_factor_delay", "second_factor_timeout", "control_port",
                  "command_server_port", "logins_file", "restart_delay")


def config_from_args(args: argparse.Namespace, env: dict[str, str] | None = None) -> SimConfig:
    cfg = SimConfig()
    if args.ibc_ini is not None:
        cfg.apply_ini(args.ibc_ini)
    cfg.apply_env(os.environ if env is None else env)
    for option in DIRECT_OPTIONS:
        value = getattr(args, option)
        if value is not None:
            setattr(cfg, "port" if option == "port" else option, value)
    if args.trading_mode:
        cfg.set_trading_mode(args.trading_mode)
    if args.accounts:
        cfg.set_accounts(args.accounts)
    cfg.add_faults(args.fault)
    if args.restart_exits:
        cfg.restart_mode = "exit"
    cfg.headless = args.headless
    cfg.finish()
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--as-java"]:
        return java_main(argv[1:])
    if argv[:1] == ["ctl"]:
        return ctl_main(argv[1:])
    if argv[:1] == ["logins"]:
        return logins_main(argv[1:])
    if argv[:1] == ["api"]:
        return apichild.main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.port is None and args.ibc_ini is None:
        build_parser().error("give --port (or --ibc-ini with OverrideTwsApiPort/TradingMode)")
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"ibkr-gateway-sim: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return run_config(cfg)


def send_control(port: int, command: str, host: str = "127.0.0.1", timeout: float = 10) -> str:
    """Send one control command and return the reply line."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


def ctl_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ibkr-gateway-sim ctl", epilog=CONTROL_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--control-port", type=int, required=True, help="the simulator's "
                        "--control-port (or IBKR_GATEWAY_SIM_CONTROL_PORT)")
    parser.add_argument("--host", default="127.0.0.1", help="where the simulator runs")
    parser.add_argument("command", nargs="+", help="e.g. APPROVE, STATUS, FAULT hang")
    args = parser.parse_args(argv)
    try:
        reply = send_control(args.control_port, " ".join(args.command), args.host)
    except OSError as exc:
        print(f"ibkr-gateway-sim ctl: error: {args.host}:{args.control_port}: {exc}",
              file=sys.stderr)
        return 1
    print(reply)
    return 0 if reply.startswith("OK") else 1


def logins_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ibkr-gateway-sim logins",
                                     description="Exit 1 if two Gateway processes held one "
                                     "account at the same time.")
    parser.add_argument("files", nargs="+", type=Path, help="login records (one per host)")
    args = parser.parse_args(argv)
    found = logins.overlaps(args.files)
    for first, second in found:
        print(f"overlap: {first.account} held by {first.host}/{first.instance[:8]} "
              f"and {second.host}/{second.instance[:8]} at {second.start:.3f}")
    if not found:
        print(f"no overlap in {len(logins.sessions(args.files))} sessions")
    return 1 if found else 0

