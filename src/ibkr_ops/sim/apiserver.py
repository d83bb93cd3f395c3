"""The Gateway's TWS API server: its listening port and one session per API connection.

A session does the handshake (the ``API`` prefix and version range, or a pre-v100 client),
takes its client id with ``startApi`` and hands every later request to ``api.Api``. Both
paths serve the API with this: the Python-only simulator and the stand-in's API child.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING

from . import api, protocol, upstream
from .config import ConfigError

if TYPE_CHECKING:
    from .gateway import Gateway

MSG_326 = "Unable to connect as the client id is already in use. Retry with a unique client id."
MAX_API_CLIENTS = 32  # IB: "each TWS session can receive up to 32 different client applications"
LEGACY_SERVER_VERSION = 76  # what a Gateway answers a pre-v100 client (its last such version)


def check_port_free(host: str, port: int) -> None:
    """ConfigError now when the API port is taken, rather than after a login."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(_unavailable(host, port, exc), 1) from None
    finally:
        probe.close()


def _unavailable(host: str, port: int, exc: OSError) -> str:
    return f"API port {host}:{port} is not available: {exc.strerror}"


class ApiServer:
    """The API port of one Gateway: open while logged in, closed on logout and restart."""

    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway
        self._server: asyncio.Server | None = None
        self._sessions: set[ClientSession] = set()
        self.connections = 0

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def open(self) -> bool:
        """Listen, logging what IBC logs when it configures the port; False (and exit 1) when
        the port is taken."""
        gw = self._gw
        host, port = gw.cfg.host, gw.cfg.api_port
        try:
            self._server = await asyncio.start_server(self._serve, host, port,
                                                      reuse_address=True, backlog=128)
        except OSError as exc:
            gw.error(_unavailable(host, port, exc))
            gw.finish(1)
            return False
        gw.log("Performing port configuration")
        gw.log(f"TWS API socket port is already set to {port}")
        if gw.cfg.read_only_api:
            gw.log("Read-Only API checkbox is already set to: true")
        gw.log("Configuration tasks completed")
        gw.sim(f"API listening on {host}:{port}")
        return True

    async def close(self) -> None:
        """Stop listening and drop every connection, as a logout does."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for session in list(self._sessions):
            session.close()
        self._gw.clients.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    def broadcast(self, code: int, text: str) -> None:
        """One error message (code -1 request) to every client that has started its API."""
        for client in list(self._gw.clients.values()):
            client.send(protocol.error(-1, code, text, client.version))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gw = self._gw
        peer = str(writer.get_extra_info("peername")[0])
        if not gw.cfg.is_trusted(peer):
            # AcceptIncomingConnectionAction=reject: an untrusted client is turned away at once.
            gw.log(f"API connection from untrusted address {peer} rejected")
            writer.close()
            return
        session = ClientSession(gw, reader, writer)
        self._sessions.add(session)
        self.connections += 1
        try:
            await session.serve()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                protocol.ProtocolError):
            pass
        finally:
            session.close()
            self._sessions.discard(session)


class ClientSession:
    """One API connection."""

    def __init__(self, gateway: Gateway, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.gw = gateway
        self.reader = reader
        self.writer = writer
        self.version = protocol.SERVER_VERSION
        self.client_id: int | None = None
        self._closed = False
        self.api = api.Api(self)

    def send(self, data: bytes) -> None:
        if not self._closed and not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.api.close()
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
        if delay:
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
        if gw.cfg.version_notice:  # as users quote it: "IBKR code 2172 on every connect"
            self.send(protocol.error(-1, upstream.VERSION_NOTICE, gw.cfg.version_notice, self.version))
        return True

    def _handle(self, fields: list[str]) -> None:
        if not self.gw.connected_to_ib and api.needs_ib(fields[0]):
            return  # requests that need IB's servers go unanswered while disconnected
        self.api.handle(fields)
