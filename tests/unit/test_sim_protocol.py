"""TWS API framing and version choice of the simulator."""

from __future__ import annotations

import asyncio
import struct

import pytest

from ibkr_ops.sim import protocol, versions


def test_encode_frames_nul_terminated_fields() -> None:
    assert protocol.encode(49, 1, 1700000000) == struct.pack(">I", 16) + b"49\x001\x001700000000\x00"
    assert protocol.encode(True, None, "x") == struct.pack(">I", 5) + b"1\x00\x00x\x00"


def test_decode_drops_the_trailing_empty_field() -> None:
    assert protocol.decode_fields(b"71\x002\x001\x00\x00") == ["71", "2", "1", ""]


@pytest.mark.parametrize(("text", "expected"), [
    ("v157..178", (157, 178)), ("v157..176", (157, 176)), ("v100..151 +PACEAPI", (100, 151)),
    ("v176", (176, 176)),
])
def test_version_range(text: str, expected: tuple[int, int]) -> None:
    assert protocol.parse_version_range(text) == expected


@pytest.mark.parametrize("text", ["", "157..178", "v178..157", "vx..y"])
def test_bad_version_range(text: str) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_version_range(text)


def test_version_never_above_the_client_maximum() -> None:
    assert protocol.choose_version(157, 178) == 178
    assert protocol.choose_version(157, 170) == 170
    assert protocol.choose_version(100, 226) == 187  # IB's ibapi 10.51 against Gateway 10.30
    assert protocol.choose_version(100, 226, 176) == 176
    with pytest.raises(protocol.ProtocolError):
        protocol.choose_version(10, 20)


def test_error_carries_json_field_from_166() -> None:
    fields = protocol.decode_fields(protocol.error(-1, 326, "in use")[4:])
    assert fields == ["4", "2", "-1", "326", "in use", ""]
    assert protocol.decode_fields(protocol.error(-1, 326, "x", 160)[4:]) == ["4", "2", "-1", "326", "x"]


def test_connection_time_format() -> None:
    text = protocol.connection_time(0)
    date, clock, zone = text.split(" ")
    assert len(date) == 8 and len(clock) == 8 and zone


def test_read_message_rejects_huge_lengths() -> None:
    async def go() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(struct.pack(">I", 1 << 30))
        with pytest.raises(protocol.ProtocolError):
            await protocol.read_message(reader)
    asyncio.run(go())


def test_server_version_follows_the_claimed_gateway() -> None:
    assert versions.server_version("10.30.1") == 187
    assert versions.server_version("10.19.2") == 176
    with pytest.raises(ValueError, match=r"known: 10\.19, 10\.30"):
        versions.server_version("10.45.1")
