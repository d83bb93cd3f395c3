"""A Discord-compatible webhook receiver for tests and sandbox guests (standard library only).

It checks each message the way Discord's API documents it (JSON body and content type, a
User-Agent, content <= 2000, <= 10 embeds, per-field embed limits and 6000 characters in
all, no empty message), answers 204 or, with `?wait=true`, 200 and a message object, and
can be told to answer 429/500/401/404 for the next requests. Accepted messages are appended
to a JSON-lines store file and served back:

    python3 -m ibkr_ops.sim.discord --port 0 --store /tmp/discord.jsonl
    POST /api/webhooks/ID/TOKEN[?wait=true]   the webhook
    GET  /_sim/messages                       accepted messages (JSON list)
    GET  /_sim/requests                       every webhook request with its answer status
    POST /_sim/respond  [{"status": 429, "retry_after": 0.2}, {"status": 500}]  queue answers
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import re
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_PATH = re.compile(r"/api(?:/v\d+)?/webhooks/(\d+)/([\w-]+)/?\Z")
LIMITS = {"title": 256, "description": 4096, "footer.text": 2048, "author.name": 256,
          "field.name": 256, "field.value": 1024}
EMBED_TOTAL = 6000
# Discord epoch, for snowflake-looking ids.
_EPOCH_MS = 1420070400000


class Invalid(Exception):
    """A payload Discord would refuse: (status, JSON code, message)."""

    def __init__(self, message: str, code: int = 50035, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def validate(payload: object) -> None:
    """Raise Invalid for anything Discord's webhook endpoint answers 400 to."""
    if not isinstance(payload, dict):
        raise Invalid("Invalid Form Body: body must be a JSON object")
    content = payload.get("content")
    if content is not None and (not isinstance(content, str) or len(content) > 2000):
        raise Invalid("Invalid Form Body: content must be 2000 or fewer in length")
    username = payload.get("username")
    if username is not None:
        if not isinstance(username, str) or not 1 <= len(username) <= 80:
            raise Invalid("Invalid Form Body: username must be 1 to 80 characters")
        if re.search("clyde|discord", username, re.IGNORECASE):
            raise Invalid("Invalid Form Body: username cannot contain 'clyde' or 'discord'")
    embeds = payload.get("embeds") or []
    if not isinstance(embeds, list) or len(embeds) > 10:
        raise Invalid("Invalid Form Body: embeds must be a list of 10 or fewer")
    total = sum(_check_embed(index, embed) for index, embed in enumerate(embeds))
    if total > EMBED_TOTAL:
        raise Invalid(f"Invalid Form Body: embed size exceeds maximum size of {EMBED_TOTAL}")
    if not content and not embeds:
        raise Invalid("Cannot send an empty message", code=50006)


def _check_embed(index: int, embed: object) -> int:
    """Check one embed's limits; return the characters it counts toward the 6000 total."""
    if not isinstance(embed, dict):
        raise Invalid(f"Invalid Form Body: embeds.{index} must be an object")
    texts = {
        "title": embed.get("title"),
        "description": embed.get("description"),
        "footer.text": (embed.get("footer") or {}).get("text"),
        "author.name": (embed.get("author") or {}).get("name"),
    }
    fields = embed.get("fields") or []
    if not isinstance(fields, list) or len(fields) > 25:
        raise Invalid(f"Invalid Form Body: embeds.{index}.fields must be 25 or fewer")
    pairs = [(f"field.{part}", field.get(part)) for field in fields for part in ("name", "value")]
    total = 0
    for key, value in [*texts.items(), *pairs]:
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > LIMITS[key]:
            raise Invalid(f"Invalid Form Body: embeds.{index}.{key} must be a string of "
                          f"{LIMITS[key]} or fewer in length")
        total += len(value)
    color = embed.get("color")
    if color is not None and (isinstance(color, bool) or not isinstance(color, int)
                              or not 0 <= color <= 0xFFFFFF):
        raise Invalid(f"Invalid Form Body: embeds.{index}.color must be an integer colour")
    stamp = embed.get("timestamp")
    if stamp is not None:
        try:
            dt.datetime.fromisoformat(str(stamp))
        except ValueError:
            raise Invalid(f"Invalid Form Body: embeds.{index}.timestamp is not ISO8601") from None
    return total


class Receiver:
    """The receiver's state: queued answers, request log, store file, optional rate bucket."""

    def __init__(self, store: Path, webhook: str | None = None,
                 rate: tuple[int, float] | None = None) -> None:
        self.store = store
        self.webhook = webhook
        self.rate = rate
        self.queue: deque[dict[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()
        self.ids = itertools.count(1)

    def messages(self) -> list[dict[str, Any]]:
        try:
            lines = self.store.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line]

    def handle(self, path: str, query: str, headers: Any,
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one webhook POST: (status, extra headers, body)."""
        match = WEBHOOK_PATH.match(path)
        with self.lock:
            answer = self._answer(match, parse_qs(query), headers, body)
            self.requests.append({"path_webhook_id": match[1] if match else None,
                                  "status": answer[0], "at": time.time()})
        return answer

    def _answer(self, match: re.Match[str] | None, query: dict[str, list[str]], headers: Any,
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        if match is None:
            return _json(404, {"message": "404: Not Found", "code": 0})
        refused = self._gate(match, headers)
        if refused is not None:
            return refused
        try:
            payload = _payload(headers, body)
        except Invalid as exc:
            return _json(exc.status, {"message": str(exc), "code": exc.code})
        message = self._record(match[1], payload)
        if query.get("wait", ["false"])[0].lower() == "true":
            return _json(200, message, self._bucket_headers())
        return 204, self._bucket_headers(), b""

    def _gate(self, match: re.Match[str],
              headers: Any) -> tuple[int, dict[str, str], bytes] | None:
        """Answers that come before the body is read: webhook, token, Cloudflare, 429/5xx."""
        if self.webhook is not None:
            wanted_id, wanted_token = self.webhook.split("/", 1)
            if match[1] != wanted_id:
                return _json(404, {"message": "Unknown Webhook", "code": 10015})
            if match[2] != wanted_token:
                return _json(401, {"message": "Invalid Webhook Token", "code": 50027})
        agent = headers.get("User-Agent") or ""
        if not agent or agent.startswith("Python-urllib"):
            # Cloudflare's answer to a missing or default library User-Agent.
            return 403, {"Content-Type": "text/plain"}, b"error code: 1010"
        if self.queue:
            return _scripted(self.queue.popleft())
        return self._rate_limited()

    def _record(self, webhook_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        message = {
            "id": str(((int(now * 1000) - _EPOCH_MS) << 22) + next(self.ids)),
            "type": 0, "webhook_id": webhook_id, "channel_id": "1",
            "content": payload.get("content") or "", "embeds": payload.get("embeds") or [],
            "author": {"id": webhook_id, "username": payload.get("username", "webhook"),
                       "bot": True},
            "timestamp": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
        }
        with self.store.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(message) + "\n")
        return message

    def _rate_limited(self) -> tuple[int, dict[str, str], bytes] | None:
        if self.rate is None:
            return None
        limit, per = self.rate
        now = time.monotonic()
        while self.sent and self.sent[0] <= now - per:
            self.sent.popleft()
        if len(self.sent) >= limit:
            wait = round(self.sent[0] + per - now, 3)
            return _scripted({"status": 429, "retry_after": wait})
        self.sent.append(now)
        return None

    def _bucket_headers(self) -> dict[str, str]:
        if self.rate is None:
            return {}
        limit, per = self.rate
        reset_after = max(self.sent[0] + per - time.monotonic(), 0) if self.sent else 0
        return {"X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(max(limit - len(self.sent), 0)),
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": "sim"}


def _payload(headers: Any, body: bytes) -> dict[str, Any]:
    """The parsed, validated JSON body, or Invalid with Discord's code."""
    if (headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
        raise Invalid("Invalid Form Body: Content-Type must be application/json")
    try:
        payload = json.loads(body)
    except ValueError:
        raise Invalid("The request body contains invalid JSON.", code=50109) from None
    validate(payload)
    return dict(payload)


def _json(status: int, body: object,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, \
        json.dumps(body).encode()


def _scripted(spec: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A queued answer: 429 carries retry_after in the body and Retry-After in a header."""
    status = int(spec.get("status", 500))
    if status == 429:
        wait = float(spec.get("retry_after", 1.0))
        body: dict[str, Any] = {"message": "You are being rate limited.", "retry_after": wait,
                                "global": False}
        headers = {"X-RateLimit-Scope": "user"}
        if spec.get("header_only"):
            body = {"message": "You are being rate limited.", "global": False}
        headers["Retry-After"] = str(max(int(wait + 0.999), 1) if spec.get("header_only")
                                     else wait)
        return _json(429, body, headers)
    known = {401: ("Invalid Webhook Token", 50027), 404: ("Unknown Webhook", 10015)}
    message, code = known.get(status, ("Internal Server Error", 0))
    return _json(status, {"message": message, "code": code})


def parse_respond(spec: str) -> dict[str, Any]:
    """`429=0.5` (retry_after), `429h=2` (Retry-After header only), `500`, `401`, `404`."""
    head, _, value = spec.partition("=")
    header_only = head.endswith("h")
    status = int(head.rstrip("h"))
    answer: dict[str, Any] = {"status": status}
    if status == 429:
        answer["retry_after"] = float(value or 1)
        answer["header_only"] = header_only
    return answer


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to one Receiver."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "discord-sim"

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if url.path == "/_sim/respond":
                answers = [a if isinstance(a, dict) else {"status": a} for a in json.loads(body)]
                with receiver.lock:
                    receiver.queue.extend(answers)
                self._reply(204, {}, b"")
                return
            self._reply(*receiver.handle(url.path, url.query, self.headers, body))

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/_sim/messages":
                self._reply(*_json(200, receiver.messages()))
            elif path == "/_sim/requests":
                with receiver.lock:
                    self._reply(*_json(200, list(receiver.requests)))
            else:
                self._reply(*_json(404, {"message": "404: Not Found", "code": 0}))

        def do_DELETE(self) -> None:
            if urlsplit(self.path).path == "/_sim/messages":
                receiver.store.write_text("")
                self._reply(204, {}, b"")
            else:
                self._reply(*_json(404, {"message": "404: Not Found", "code": 0}))

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: request lines carry the webhook token."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; print the listening URL first so callers can wait for it."""
    parser = argparse.ArgumentParser(prog="python3 -m ibkr_ops.sim.discord",
                                     description="Discord-compatible webhook receiver.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--store", type=Path, required=True,
                        help="JSON-lines file of accepted messages")
    parser.add_argument("--webhook", metavar="ID/TOKEN",
                        help="accept only this webhook (others get 404/401)")
    parser.add_argument("--respond", action="append", default=[], metavar="SPEC",
                        help="queue an answer: 429=SECONDS, 429h=SECONDS, 500, 401, 404")
    parser.add_argument("--rate", metavar="N/SECONDS",
                        help="rate-limit bucket per receiver, e.g. 5/2 (off by default)")
    args = parser.parse_args(argv)
    try:
        responds = [parse_respond(spec) for spec in args.respond]
        rate = None
        if args.rate:
            count, per = args.rate.split("/")
            rate = (int(count), float(per))
    except ValueError:
        parser.error("--respond takes 429=S, 429h=S, 500, 401 or 404; --rate takes N/SECONDS")
    args.store.touch()
    receiver = Receiver(args.store, args.webhook, rate)
    receiver.queue.extend(responds)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(receiver))
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
