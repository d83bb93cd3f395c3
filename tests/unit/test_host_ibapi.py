"""The minimal API wire client against a scripted peer speaking the real framing."""

from __future__ import annotations

import struct
import time

import pytest
from host_peer import Conn, healthy, logged_in, peer

from ibkr_ops.host import ibapi


def hang_after_connect(conn: Conn) -> None:
    """Accept TCP, then say nothing: the failure a port check cannot see."""
    while True:
        conn._fill()


def in_use(conn: Conn) -> None:
    """What a real Gateway does for a taken clientId: 326, then close."""
    conn.handshake()
    conn.start_api()
    conn.send(4, 2, -1, 326, "Unable to connect as the client id is already in use.", "")


def test_healthy_probe_reads_version_accounts_and_time() -> None:
    with peer(healthy) as (port, errors):
        status = ibapi.probe("127.0.0.1", port, client_id=999, timeout=5)
    assert not errors
    assert status.server_version == 176
    assert status.accounts == ("DU111", "DU222")
    assert status.server_time == 1764082800
    assert status.client_id == 999
    assert status.notices == ()


def test_handshake_claims_text_framing_versions_only() -> None:
    seen: list[str] = []

    def record(conn: Conn) -> None:
        seen.append(conn.handshake())
        conn.start_api()
        healthy_rest(conn)

    def healthy_rest(conn: Conn) -> None:
        conn.send(15, 1, "DU1")
        conn.send(9, 1, 1)
        conn.read()
        conn.send(49, 1, 5)

    with peer(record) as (port, _):
        ibapi.probe("127.0.0.1", port, 999, 5)
    assert seen == ["v157..176"]


def test_hang_fails_at_handshake_stage_within_timeout() -> None:
    with peer(hang_after_connect) as (port, _), pytest.raises(ibapi.ProbeError) as info:
        ibapi.probe("127.0.0.1", port, 999, timeout=0.5)
    assert info.value.stage == "handshake"
    assert "no answer" in str(info.value)


def test_326_moves_to_the_next_client_id() -> None:
    with peer(in_use, healthy) as (port, errors):
        status = ibapi.probe("127.0.0.1", port, client_id=999, timeout=5)
    assert not errors
    assert status.client_id == 1000


def test_326_on_every_id_names_them_all() -> None:
    with peer(in_use) as (port, _), pytest.raises(ibapi.ClientIdInUse) as info:
        ibapi.probe("127.0.0.1", port, client_id=7, timeout=5, tries=3)
    assert "clientId 7, 8, 9 already in use" in str(info.value)


def test_close_during_login_reports_the_last_gateway_message() -> None:
    def reject(conn: Conn) -> None:
        conn.handshake()
        conn.start_api()
        conn.send(4, 2, -1, 502, "Couldn't connect to TWS.", "")

    with peer(reject) as (port, _), pytest.raises(ibapi.ProbeError) as info:
        ibapi.probe("127.0.0.1", port, 999, 5)
    assert info.value.stage == "login"
    assert "502 Couldn't connect to TWS." in str(info.value)


def test_empty_account_list_is_not_logged_in() -> None:
    def no_accounts(conn: Conn) -> None:
        conn.handshake()
        conn.start_api()
        conn.send(15, 1, "")
        conn.send(9, 1, 1)
        conn.read()

    with peer(no_accounts) as (port, _), pytest.raises(ibapi.ProbeError) as info:
        ibapi.probe("127.0.0.1", port, 999, 5)
    assert "no managed accounts" in str(info.value)


def test_old_server_version_is_refused() -> None:
    def old(conn: Conn) -> None:
        conn.handshake(version=150)
        conn.read()

    with peer(old) as (port, _), pytest.raises(ibapi.ProbeError) as info:
        ibapi.probe("127.0.0.1", port, 999, 5)
    assert "older than 157" in str(info.value)


def test_connection_refused_is_a_connect_stage_error() -> None:
    with peer(healthy) as (port, _):
        pass
    with pytest.raises(ibapi.ProbeError) as info:
        ibapi.probe("127.0.0.1", port, 999, 2)
    assert info.value.stage == "connect"


def test_other_gateway_errors_become_notices() -> None:
    def competing(conn: Conn) -> None:
        conn.handshake()
        conn.start_api()
        conn.send(4, 2, -1, 10197, "No market data during competing live session", "")
        conn.send(15, 1, "DU1")
        conn.send(9, 1, 1)
        conn.read()
        conn.send(49, 1, 5)

    with peer(competing) as (port, _):
        status = ibapi.probe("127.0.0.1", port, 999, 5)
    assert status.notices == ("10197 No market data during competing live session",)
    assert status.status_messages == ()


def frame(*fields: object) -> bytes:
    payload = b"".join(str(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def test_farm_status_is_kept_whether_it_comes_before_or_after_the_time() -> None:
    def farms(conn: Conn) -> None:
        logged_in(conn, (2104, "Market data farm connection is OK:usfarm"))
        conn.read()
        # The time and a status behind it in one write: both have arrived together.
        conn.sock.sendall(frame(49, 1, 5) + frame(4, 2, -1, 2105,
                                                  "HMDS data farm connection is broken:ushmds", ""))
        conn.read()  # held open until the probe closes

    with peer(farms) as (port, errors):
        status = ibapi.probe("127.0.0.1", port, 999, 5)
    assert not errors
    assert status.server_time == 5
    assert [code for code, _ in status.status_messages] == [2104, 2105]
    assert status.notices == ()


def test_farm_status_a_little_after_the_time_is_waited_for() -> None:
    def late(conn: Conn) -> None:
        logged_in(conn)
        conn.read()
        conn.send(49, 1, 5)
        time.sleep(0.05)
        conn.send(4, 2, -1, 2104, "Market data farm connection is OK:usfarm", "")
        conn.read()

    with peer(late) as (port, _):
        status = ibapi.probe("127.0.0.1", port, 999, 5)
    assert status.status_messages == ((2104, "Market data farm connection is OK:usfarm"),)


def test_lost_link_to_ibkr_does_not_wait_out_the_timeout_for_the_time() -> None:
    """1100 at connect and no answer to reqCurrentTime (IBKR unreachable): logged in, no time,
    within the short wait rather than the probe's timeout."""
    def lost(conn: Conn) -> None:
        logged_in(conn, (1100, "Connectivity between IB and Trader Workstation has been lost."))
        conn.read()
        conn.read()  # the time request goes unanswered

    started = time.monotonic()
    with peer(lost) as (port, _):
        status = ibapi.probe("127.0.0.1", port, 999, 10)
    assert status.server_time is None
    assert status.status_messages[0][0] == 1100
    assert time.monotonic() - started < 10 - 2

