"""The simulated Gateway's API at its edges: client limit, bad input, old clients, read-only,
what-if and cancel, over raw sockets and ib_async."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sim_support import Sim

ib_async = pytest.importorskip("ib_async", reason="ib_async is not installed in the test venv")


class Raw:
    """A v100+ client written by hand: handshake, startApi, framed requests."""

    def __init__(self, port: int, client_id: int, versions: bytes = b"v157..178") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(b"API\0" + struct.pack(">I", len(versions)) + versions)
        self.buffer = b""
        self.handshake = self.read()
        self.send("71", "2", str(client_id), "")

    def send(self, *fields: str) -> None:
        payload = b"".join(f.encode() + b"\0" for f in fields)
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def read(self) -> list[str]:
        while len(self.buffer) < 4 or len(self.buffer) < 4 + struct.unpack(">I", self.buffer[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        size = struct.unpack(">I", self.buffer[:4])[0]
        payload, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
        return payload.decode().split("\0")[:-1]

    def until(self, msg_id: str, limit: int = 200) -> list[list[str]]:
        seen = []
        for _ in range(limit):
            fields = self.read()
            seen.append(fields)
            if fields[0] == msg_id:
                return seen
        raise AssertionError(f"no message {msg_id} in {seen}")

    def close(self) -> None:
        self.sock.close()


def test_33rd_client_is_refused_and_the_32_stay(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory()
    clients = [Raw(sim.port, n) for n in range(1, 33)]
    for client in clients:
        client.until("9")
    extra = Raw(sim.port, 33)
    with pytest.raises(ConnectionError):
        extra.until("9")
    assert "32 clients are connected" in sim.log()
    clients[0].send("49", "1")
    assert clients[0].until("49")[-1][0] == "49"
    clients[0].close()
    time.sleep(0.3)
    again = Raw(sim.port, 34)
    again.until("9")  # a freed slot is usable again
    for client in [*clients[1:], again, extra]:
        client.close()


def test_malformed_request_gets_error_320_and_one_log_line(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory()
    client = Raw(sim.port, 1)
    client.until("9")
    client.send("20", "abc")  # reqHistoricalData with text where the request id belongs
    error = [f for f in client.until("4", 10) if f[0] == "4" and f[3] == "320"]
    while not error:
        error = [f for f in [client.read()] if f[0] == "4" and f[3] == "320"]
    assert "Unable to parse data" in error[0][4]
    client.send("49", "1")
    assert client.until("49")[-1][0] == "49"  # the connection stays up
    log = sim.log()
    assert "malformed request (message id 20)" in log and "Traceback" not in log
    client.close()


def test_pre_v100_client_gets_server_version_76(sim_factory: Callable[..., Sim]) -> None:
    """A legacy client ("63", no API prefix, no length prefixes) is answered, not held open."""
    sim = sim_factory()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(b"63\0")
        reply = b""
        while reply.count(b"\0") < 2:
            reply += sock.recv(4096)
        version, when = reply.split(b"\0")[:2]
        assert version == b"76" and len(when.split()) == 3
        sock.sendall(b"71\x001\x007\x00\x00")  # startApi, version 1, client id 7
        data = b""
        while b"9\x001\x00" not in data:
            data += sock.recv(4096)
        assert data.startswith(b"15\x001\x00DU")


def test_read_only_api_refuses_orders_with_321(sim_factory: Callable[..., Sim],
                                               tmp_path: Path) -> None:
    """A live login with IBC's ReadOnlyApi=yes: orders are refused as the real setting does."""
    ini = tmp_path / "config.ini"
    ini.write_text("TradingMode=live\nReadOnlyApi=yes\nIbLoginId=trader\nIbPassword=x\n")
    sim = sim_factory("--ibc-ini", str(ini))
    assert "Read-Only API checkbox is already set to: true" in sim.log()
    ib = ib_async.IB()
    errors: list[int] = []
    ib.errorEvent += lambda *args: errors.append(args[1])
    ib.connect("127.0.0.1", sim.port, clientId=1, timeout=5)
    [aapl] = ib.qualifyContracts(ib_async.Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, ib_async.LimitOrder("BUY", 1, 1000))
    ib.sleep(1)
    assert 321 in errors and not trade.fills
    ib.disconnect()


def test_what_if_and_cancel(sim_factory: Callable[..., Sim]) -> None:
    sim = sim_factory()
    ib = ib_async.IB()
    ib.RequestTimeout = 5
    ib.connect("127.0.0.1", sim.port, clientId=1, timeout=5)
    [aapl] = ib.qualifyContracts(ib_async.Stock("AAPL", "SMART", "USD"))
    state = ib.whatIfOrder(aapl, ib_async.MarketOrder("BUY", 100))
    change = float(state.initMarginChange)
    assert change > 0 and float(state.initMarginAfter) == pytest.approx(
        float(state.initMarginBefore) + change, abs=0.01)
    assert state.commission == 1.0  # 100 shares x 0.005 USD, 1 USD minimum
    assert ib.positions()[0].position == 100  # a what-if changes nothing
    resting = ib.placeOrder(aapl, ib_async.LimitOrder("BUY", 10, 1.00))
    ib.sleep(1)
    assert resting.orderStatus.status == "Submitted"
    ib.cancelOrder(resting.order)
    ib.sleep(1)
    assert resting.orderStatus.status == "Cancelled" and not resting.fills
    ib.disconnect()
