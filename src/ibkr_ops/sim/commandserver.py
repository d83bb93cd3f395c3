"""IBC's command server, simulated: its access rule, its commands and its replies.

As IBC 3.24 has it: ``CommandServerPort``, ``BindAddress`` and ``ControlFrom`` decide who may
connect; ``STOP``, ``RESTART``, ``PAUSE``, ``RECONNECTACCOUNT``, ``RECONNECTDATA`` and ``EXIT``
are answered with IBC's ``INFO``/``OK``/``ERROR`` lines (``SuppressInfoMessages``,
``CommandPrompt``). The Java stand-in has no such server: there the real IBC runs its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .config import ConfigError
from .lines import read_lines

if TYPE_CHECKING:
    from .gateway import Gateway

Reply = Callable[[str], Awaitable[None]]


async def start(gw: Gateway) -> asyncio.Server | None:
    """Listen on ``CommandServerPort`` (None when it is not set); ConfigError when taken."""
    cfg = gw.cfg
    port = cfg.command_server_port
    if not port:
        gw.log("CommandServer is not started because the port is not configured")
        return None
    host = cfg.bind_address or None
    gw.log(f"CommandServer is starting with port {port}")
    try:
        server = await asyncio.start_server(functools.partial(_serve, gw), host, port,
                                            reuse_address=True, backlog=5)
    except OSError as exc:
        raise ConfigError(f"CommandServerPort {port} is not available: {exc.strerror}",
                          1) from None
    gw.log(f"CommandServer listening on address: {host or 'all addresses'} port: {port}")
    if cfg.control_from:
        gw.log(f"CommandServer: ControlFrom setting = {','.join(cfg.control_from)}")
    gw.log("CommandServer started and is ready to accept commands")
    return server


def permitted(peer: str, local: str, control_from: list[str]) -> bool:
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
    for entry in control_from:
        if entry.lower() in (peer.lower(), plain.lower()):
            return True
        with contextlib.suppress(OSError):
            if plain in socket.gethostbyname_ex(entry)[2]:
                return True
    return False


def restart_minute(now: dt.datetime) -> dt.datetime:
    """IBC's RESTART time: the next whole minute (callers wait out seconds 58 and 59 first)."""
    return (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)


async def _serve(  # noqa: PLR0912 - one branch per IBC command
        gw: Gateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    cfg = gw.cfg
    peer = str(writer.get_extra_info("peername")[0])
    local = str(writer.get_extra_info("sockname")[0])
    if not permitted(peer, local, cfg.control_from):
        gw.log(f"CommandServer denied access to: {peer}")
        writer.close()
        return
    gw.log(f"CommandServer accepted connection from: {peer}")

    async def reply(line: str) -> None:
        writer.write(line.encode() + b"\n")
        await writer.drain()

    try:
        if not cfg.suppress_info:
            await reply("INFO IBC Command Server")
        if cfg.command_prompt:
            writer.write(cfg.command_prompt.encode())
        async for command in read_lines(reader):
            if command == "":
                continue
            gw.log(f"CommandServer received command: {command}")
            verb = command.upper()
            if verb == "EXIT":
                await reply("OK Goodbye")
                break
            if verb == "STOP":
                await _stop(gw, reply, writer)
                break
            if verb in ("RESTART", "PAUSE"):
                await _restart(gw, verb, reply)
                break
            if verb == "ENABLEAPI":
                await reply("ERROR ENABLEAPI is not valid for the IB Gateway")
            elif verb in ("RECONNECTDATA", "RECONNECTACCOUNT"):
                await reply("OK ")
                if verb == "RECONNECTACCOUNT":
                    gw.login.reconnect_account()
            else:
                await reply("ERROR Command invalid")
                gw.log(f"CommandServer: invalid command received: {command}")
            if cfg.command_prompt:
                writer.write(cfg.command_prompt.encode())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _stop(gw: Gateway, reply: Reply, writer: asyncio.StreamWriter) -> None:
    if gw.stopping:
        await reply("ERROR STOP already in progress")
        return
    if not gw.cfg.suppress_info:
        await reply("INFO Closing IBC")
    await reply("OK Shutting down: STOP command")
    writer.close()
    if not gw.logged_in:
        gw.log("Login has not completed: exiting immediately")
    gw.stopping = True
    gw.finish(0)


async def _restart(gw: Gateway, verb: str, reply: Reply) -> None:
    """RESTART or PAUSE: IBC sets the auto-restart time to the next minute and lets the
    Gateway restart itself then (``--restart-delay`` shortens the wait)."""
    cfg, login = gw.cfg, gw.login
    gw.log(f"RestartTask: pauseOnly = {str(verb == 'PAUSE').lower()}")
    gw.log(f"RestartTask: verb = {verb}")
    if login.restart_pending:
        gw.log(f"{verb} already in progress")
        await reply(f"ERROR {verb} already in progress")
        return
    login.restart_pending = True
    if verb == "PAUSE":
        if not cfg.suppress_info:
            await reply("INFO Pausing TWS")
        (cfg.settings_dir / f"PAUSE{cfg.session_id}").touch()
    elif not cfg.suppress_info:
        await reply("INFO Restarting TWS")
    await reply(f"OK {verb} in progress")
    while dt.datetime.now().second >= 58:
        await asyncio.sleep(0.2)
    action = restart_minute(dt.datetime.now())
    label = action.strftime("%I:%M %p")
    gw.log(f"Setting auto-restart time to {label}")
    await reply(f"OK {verb} at {label}")
    if cfg.restart_delay is not None:
        delay = cfg.restart_delay
    else:
        delay = (action - dt.datetime.now()).total_seconds()
    gw.spawn(_delayed_restart(gw, max(0.0, delay), verb))


async def _delayed_restart(gw: Gateway, delay: float, verb: str) -> None:
    await asyncio.sleep(delay)
    if gw.logged_in:
        gw.login.request_restart(f"{verb} command")
    else:
        gw.login.restart_pending = False
