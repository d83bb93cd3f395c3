"""The login record and its overlap check."""

from __future__ import annotations

import json
from pathlib import Path

from ibkr_ops.sim import logins


def write(path: Path, *events: dict[str, object]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


def ev(ts: float, event: str, instance: str, account: str = "U1", host: str = "h") -> dict[str, object]:
    return {"ts": ts, "event": event, "instance": instance, "account": account, "host": host,
            "user": "u", "pid": 1}


def test_sequential_sessions_do_not_overlap(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write(path, ev(1, "login", "a"), ev(2, "logout", "a"), ev(3, "login", "b"))
    assert logins.overlaps([path]) == []
    assert [(s.start, s.end) for s in logins.sessions([path])] == [(1, 2), (3, None)]


def test_overlap_across_hosts(tmp_path: Path) -> None:
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    write(old, ev(1, "login", "a", host="old"), ev(5, "logout", "a", host="old"))
    write(new, ev(4, "login", "b", host="new"))
    pairs = logins.overlaps([old, new])
    assert len(pairs) == 1 and pairs[0][1].host == "new"


def test_different_accounts_never_overlap(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    write(path, ev(1, "login", "a", account="U1"), ev(2, "login", "b", account="DU2"))
    assert logins.overlaps([path]) == []


def test_stale_session_of_a_dead_process_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    logins.record(path, "login", account="U1", user="u", instance="dead")
    lines = path.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["pid"] = 2 ** 22 + 12345  # no such process
    path.write_text(json.dumps(entry) + "\n")
    assert logins.close_stale(path, "U1") == 1
    assert logins.sessions([path])[0].end is not None


def test_live_process_session_is_not_closed(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    logins.record(path, "login", account="U1", user="u", instance="me")
    assert logins.close_stale(path, "U1") == 0


def test_garbage_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text("not json\n[1]\n" + json.dumps(ev(1, "login", "a")) + "\n")
    assert len(logins.sessions([path])) == 1
