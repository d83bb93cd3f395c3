"""The notifier ends by its deadline whatever the webhook does, reads a bounded answer, and
never calls a delivered message failed. Real local HTTP servers misbehave on purpose."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import socketserver
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ibkr_ops.host import notify, watchdog, webhttp
from ibkr_ops.host.config import HostConfig

TOKEN = "bounds-token-never-shown"
Behaviour = Callable[[socket.socket], None]


def _read_request(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(65536)


@contextmanager
def server(behaviour: Behaviour) -> Iterator[str]:
    """A webhook URL served by ``behaviour(socket)`` after the request is read."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            _read_request(self.request)
            with contextlib.suppress(OSError):  # the client hung up, as a bounded one does
                behaviour(self.request)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as srv:
        thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{srv.server_address[1]}/api/webhooks/42/{TOKEN}"
        finally:
            srv.shutdown()


def trickle(first: bytes) -> Behaviour:
    """Sends ``first``, then one byte every 0.2 s, for ever (a header that never ends)."""
    def behave(sock: socket.socket) -> None:
        sock.sendall(first)
        while True:
            sock.sendall(b"x")
            time.sleep(0.2)
    return behave


def endless_body(status: bytes) -> Behaviour:
    """A status and headers, then a body without end, as fast as the client takes it."""
    chunk = b"A" * 65536

    def behave(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n\r\n")
        while True:
            sock.sendall(chunk)
    return behave


def answer(status: bytes, body: bytes, *headers: bytes) -> Behaviour:
    def behave(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                     + b"".join(h + b"\r\n" for h in headers)
                     + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return behave


POLICY = notify.Policy(deadline_s=2.0, attempts=3, backoff_s=0.05, max_backoff_s=0.1,
                       request_timeout_s=10.0)
# Generous: a hang takes for ever, a bounded client ends at about deadline_s.
HANG = POLICY.deadline_s + 5.0


def payloads(text: str = "x") -> list[dict[str, object]]:
    return notify.build_payloads("info", text, host="gw1", mode="paper",
                                 now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.monotonic()
    try:
        result: object = call()
    except notify.WebhookError as exc:
        result = exc
    return time.monotonic() - started, result


@pytest.mark.parametrize("first", [b"", b"HTTP/1.1 200 OK\r\nX-Slow: "],
                         ids=["status-line", "headers"])
def test_a_trickling_webhook_ends_at_the_deadline(first: bytes) -> None:
    """Each byte comes well within the per-read timeout: only an overall deadline ends it."""
    with server(trickle(first)) as url:
        elapsed, result = timed(lambda: notify.send(notify.parse_webhook(url), payloads(),
                                                    POLICY))
    assert isinstance(result, notify.WebhookError), result
    assert "not delivered" in str(result) and TOKEN not in str(result)
    assert elapsed < HANG, f"{elapsed:.1f} s"


@pytest.mark.parametrize(("status", "delivered"), [(b"200 OK", True), (b"500 Oops", False),
                                                   (b"404 Not Found", False)])
def test_an_endless_answer_is_read_only_up_to_the_cap(status: bytes, delivered: bool) -> None:
    with server(endless_body(status)) as url:
        tracemalloc.start()
        try:
            elapsed, result = timed(lambda: notify.send(notify.parse_webhook(url), payloads(),
                                                        POLICY))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert elapsed < HANG, f"{elapsed:.1f} s"
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    if delivered:
        assert result == notify.Delivery([""])  # delivered; the id was in the unread part
    else:
        assert isinstance(result, notify.WebhookError)


def test_a_pause_after_the_last_part_never_fails_a_delivered_message() -> None:
    """Discord says 'no more for 60 s' after the message: it was delivered all the same."""
    with server(answer(b"200 OK", b'{"id": "123"}', b"X-RateLimit-Remaining: 0",
                       b"X-RateLimit-Reset-After: 60")) as url:
        result = notify.send(notify.parse_webhook(url), payloads(), POLICY)
    assert result == notify.Delivery(["123"])


def test_parts_a_pause_would_push_past_the_deadline_are_dropped_not_failed() -> None:
    with server(answer(b"200 OK", b'{"id": "7"}', b"X-RateLimit-Remaining: 0",
                       b"X-RateLimit-Reset-After: 60")) as url:
        elapsed, result = timed(lambda: notify.send(
            notify.parse_webhook(url), payloads("y" * 3 * notify.CHUNK), POLICY))
    assert result == notify.Delivery(["7"], dropped=2)
    assert elapsed < HANG


@pytest.mark.parametrize("body", [b'{"id": NaN}', b'{"id": Infinity}', b"[" * 100_000,
                                  b'{"id": {"nested": [1, 2]}}', b"\xff\xfe not json",
                                  b'["a list"]', b"1" * 5000])
def test_a_strange_success_body_is_delivered_without_an_id(body: bytes) -> None:
    with server(answer(b"200 OK", body)) as url:
        assert notify.send(notify.parse_webhook(url), payloads(), POLICY) == notify.Delivery([""])


@pytest.mark.parametrize("body", [b'{"retry_after": NaN}', b'{"retry_after": Infinity}',
                                  b'{"retry_after": 1e999}', b"{" * 100_000,
                                  b'{"retry_after": "soon"}', b'{"retry_after": -5}'])
def test_a_strange_429_body_waits_a_bounded_default(body: bytes) -> None:
    with server(answer(b"429 Too Many Requests", body)) as url:
        elapsed, result = timed(lambda: notify.send(notify.parse_webhook(url), payloads(),
                                                    POLICY, sleep=lambda s: None))
    assert isinstance(result, notify.WebhookError) and "429" in str(result)
    assert elapsed < HANG


@pytest.mark.parametrize("body", [b'{"message": NaN}', b"[" * 100_000,
                                  b'{"message": {"x": 1}}'])
def test_a_strange_refusal_is_one_clear_line(body: bytes) -> None:
    with server(answer(b"400 Bad Request", body)) as url, \
            pytest.raises(notify.WebhookError, match=r"refused the message \(400\)") as caught:
        notify.send(notify.parse_webhook(url), payloads(), POLICY)
    assert "\n" not in str(caught.value)


def test_the_health_check_runs_budget_leaves_room_for_the_next_check() -> None:
    # Defaults: a check every 30 s with a 10 s probe leave 20 s, half of it for the alert.
    assert notify.check_run_policy(HostConfig()).deadline_s == 10.0
    assert notify.check_run_policy(HostConfig(health_interval_s=60)).deadline_s == 20.0
    tight = HostConfig(health_interval_s=10, health_timeout_s=10.0)
    assert notify.check_run_policy(tight).deadline_s == 2.0
    assert notify.check_run_policy(HostConfig(health_interval_s=30)).deadline_s == 10.0


def test_the_health_check_runs_alert_to_a_trickling_webhook_ends_in_its_budget() -> None:
    config = HostConfig(health_interval_s=10, health_timeout_s=10.0, hostname="gw1")
    with server(trickle(b"HTTP/1.1 200 OK\r\n")) as url, \
            pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISCORD_WEBHOOK_URL", url)
        patch.setenv("IBKR_PASSWORD", "unused-here")
        # The health-check run's own delivery function.
        elapsed, result = timed(lambda: watchdog._deliver(config, "error", "Gateway down"))
    assert isinstance(result, notify.WebhookError)
    assert elapsed < 2.0 + 5.0, f"{elapsed:.1f} s"


def test_a_name_that_never_resolves_in_time_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_lookup(*args: object, **kwargs: object) -> list[object]:
        time.sleep(30)
        return []

    monkeypatch.setattr(webhttp.socket, "getaddrinfo", slow_lookup)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="name lookup"):
        webhttp.post_json("https://discord.com/api/webhooks/1/t", {}, b"{}", {},
                          time.monotonic() + 0.5)
    assert time.monotonic() - started < 5


def test_a_tls_handshake_that_never_completes_is_bounded() -> None:
    """The server takes the connection and never says hello back."""
    with server(trickle(b"")) as url:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            webhttp.post_json(url.replace("http://", "https://"), {}, b"{}", {},
                              time.monotonic() + 1.0)
    assert time.monotonic() - started < 1.0 + 5.0
