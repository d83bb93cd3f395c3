"""TWS API wire framing as the Gateway speaks it (text framing, server versions below 194).

See the project's ibapi-protocol notes: a 4-byte big-endian length, then NUL-terminated text
fields. The client opens with the unprefixed bytes ``API\\0`` and a ``v<min>..<max>`` range.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time

from .versions import server_version

# The claimed Gateway's own maximum (10.30: 187). A client gets min(its maximum, this): ib_async
# 2.1.0 (157..178) 178, ib_insync 0.9.86 (157..176) 176, IB's ibapi 10.51 (100..226) 187.
SERVER_VERSION = server_version()
MIN_CLIENT_VERSION = 100
MAX_MESSAGE = 1 << 24

API_PREFIX = b"API\0"
_RANGE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s.*)?$", re.DOTALL)


class ProtocolError(Exception):
    """The peer sent something a Gateway would drop the connection for."""


def encode(*fields: object) -> bytes:
    """One framed message: every field as text with a NUL terminator."""
    payload = b"".join(_field(f) + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def _field(value: object) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"1" if value else b"0"
    return str(value).encode()


def decode_fields(payload: bytes) -> list[str]:
    """Split a payload into its fields, as the clients do (the last empty element dropped)."""
    parts = payload.decode("utf-8", errors="replace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """The payload of the next framed message (raises IncompleteReadError at EOF)."""
    header = await reader.readexactly(4)
    (size,) = struct.unpack(">I", header)
    if size > MAX_MESSAGE:
        raise ProtocolError(f"message of {size} bytes is too long")
    return await reader.readexactly(size)


def parse_version_range(text: str) -> tuple[int, int]:
    """``v157..178`` (optionally followed by connect options) -> (157, 178)."""
    match = _RANGE.match(text)
    if not match:
        raise ProtocolError(f"bad version range {text!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if high < low:
        raise ProtocolError(f"bad version range {text!r}")
    return low, high


def choose_version(low: int, high: int, server_max: int = SERVER_VERSION) -> int:
    """The server version to answer: never above the client's maximum (the real Gateway's rule)."""
    if high < MIN_CLIENT_VERSION:
        raise ProtocolError(f"client version {high} is too old")
    return min(high, server_max)


def connection_time(now: float | None = None) -> str:
    """Local time as the Gateway prints it in the handshake: ``YYYYMMDD HH:MM:SS TZ``."""
    stamp = time.localtime(now)
    return time.strftime("%Y%m%d %H:%M:%S ", stamp) + (stamp.tm_zone or "UTC")


def error(req_id: int, code: int, message: str, version: int = SERVER_VERSION) -> bytes:
    """Error message (id 4); from version 166 it carries the (empty) advancedOrderRejectJson."""
    if version >= 166:
        return encode(4, 2, req_id, code, message, "")
    return encode(4, 2, req_id, code, message)
