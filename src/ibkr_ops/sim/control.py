"""The simulator's control channel: the commands a test sends to play IBKR and the person.

``STATUS``, ``APPROVE``, ``FAULT NAME[=VALUE]``, ``CLEAR [NAME]``, ``RESTART``, ``STOP`` (see
``cli.CONTROL_HELP``), one per line, each answered by one ``OK …`` or ``ERROR …`` line. The
Python-only simulator serves them on ``--control-port``; the stand-in's API child answers the
ones the JVM passes on (``STATUS``, the API's faults) with the same ``answer``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from typing import TYPE_CHECKING

from .config import ConfigError
from .lines import read_lines

if TYPE_CHECKING:
    from .gateway import Gateway

UNKNOWN = "ERROR unknown command; use STATUS, APPROVE, FAULT, CLEAR, RESTART or STOP"


async def start(gw: Gateway) -> asyncio.Server | None:
    """Listen on ``--control-port`` (None when it is not given); ConfigError when taken."""
    port = gw.cfg.control_port
    if not port:
        return None
    try:
        server = await asyncio.start_server(functools.partial(_serve, gw), gw.cfg.control_host,
                                            port, reuse_address=True)
    except OSError as exc:
        raise ConfigError(f"control port {port} is not available: {exc.strerror}", 1) from None
    gw.sim(f"control port listening on {gw.cfg.control_host}:{port}")
    return server


def answer(gw: Gateway, line: str) -> str:  # noqa: PLR0911 - one return per command
    """Carry out one control command; its reply line."""
    verb, _, arg = line.strip().partition(" ")
    verb = verb.upper()
    arg = arg.strip()
    try:
        if verb == "STATUS":
            return "OK " + json.dumps(status(gw), sort_keys=True)
        if verb == "APPROVE":
            if gw.login.approve():
                gw.sim("second factor approved (control command)")
                return "OK approved"
            return f"ERROR no second-factor prompt is pending (state {gw.state})"
        if verb == "FAULT":
            if not arg:
                return "ERROR usage: FAULT NAME[=VALUE]"
            return f"OK fault {gw.faults.switch_on(arg)} on"
        if verb == "CLEAR":
            gw.faults.clear(arg or None)
            return "OK cleared"
        if verb == "RESTART":
            if not gw.logged_in:
                return "ERROR not logged in"
            gw.login.request_restart("control command")
            return "OK restarting"
        if verb == "STOP":
            gw.finish(0)
            return "OK stopping"
    except ConfigError as exc:
        return f"ERROR {exc}"
    return UNKNOWN


def status(gw: Gateway) -> dict[str, object]:
    """What ``STATUS`` reports: enough for a test to wait on and assert about."""
    return {
        "pid": os.getpid(),
        "state": gw.state,
        "logged_in": gw.logged_in,
        "warm": gw.login.warm,
        "trading_mode": gw.cfg.trading_mode,
        "accounts": gw.cfg.accounts,
        "api_port": gw.cfg.api_port,
        "api_open": gw.api_server.listening,
        "clients": sorted(gw.clients),
        "connections": gw.api_server.connections,
        "logins": gw.login.count,
        "faults": dict(gw.faults.active),
        "leaked_mb": gw.faults.leaked_mb,
        "heap_mb": gw.cfg.heap_mb,
        "display_connected": gw.display is not None and not gw.display.lost,
    }


async def _serve(gw: Gateway, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    try:
        async for line in read_lines(reader):
            if line.strip():
                writer.write(answer(gw, line).encode() + b"\n")
                await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
