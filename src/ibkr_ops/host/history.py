"""The host's restart history: one JSON line per restart, whoever did it, with its cause.

Append-only (`<state_dir>/restarts.jsonl`), so the health check, the restart runner and a
person's `ibkr-gateway-restart` can all record without a lock: each record is one short
write with O_APPEND. The watchdog reads it to cap automatic restarts, `invoke status` to show
them, and the metrics file to count them by cause.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ibkr_ops.errors import OpsError
from ibkr_ops.host.config import HostConfig

FILE = "restarts.jsonl"
KEEP = 1000
# Causes of restarts the watchdog starts by itself: these count against the hourly cap.
AUTOMATIC = ("hang", "crash-loop", "memory")
CAUSES = (*AUTOMATIC, "scheduled", "manual")


@dataclass(frozen=True)
class Restart:
    """One restart: when (epoch s), why, how, whether it came back, and what it took."""

    at: float
    cause: str
    mode: str
    ok: bool
    seconds: float = 0.0
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None

    def describe(self) -> str:
        """`warm restart (hung API) done in 14 s, memory 812 -> 301 MB`."""
        what = f"{self.mode} restart ({CAUSE_WORDS.get(self.cause, self.cause)})"
        text = f"{what} {'done' if self.ok else 'FAILED'} in {self.seconds:.0f} s"
        if self.rss_before_mb is not None and self.rss_after_mb is not None:
            text += f", memory {self.rss_before_mb:.0f} -> {self.rss_after_mb:.0f} MB"
        return text


CAUSE_WORDS = {"hang": "hung API", "crash-loop": "after a crash loop",
               "memory": "memory above the ceiling", "scheduled": "daily",
               "manual": "by hand"}


def path(config: HostConfig) -> Path:
    return Path(config.state_dir) / FILE


def record(config: HostConfig, entry: Restart) -> None:
    """Append one restart; the file is trimmed to the last KEEP entries now and then."""
    target = path(config)
    line = json.dumps(asdict(entry), sort_keys=True) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line)
        if target.stat().st_size > KEEP * 400:
            _trim(target)
    except OSError as exc:
        raise OpsError(f"cannot record the restart in {target}: {exc.strerror or exc}") from None


def _trim(target: Path) -> None:
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)[-KEEP // 2:]
    tmp = target.with_name(f".{target.name}.trim")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, target)


def load(config: HostConfig) -> list[Restart]:
    """Every recorded restart, oldest first; unreadable lines are skipped."""
    try:
        text = path(config).read_text(encoding="utf-8")
    except OSError:
        return []
    found = []
    for raw in text.splitlines():
        try:
            found.append(Restart(**json.loads(raw)))
        except (ValueError, TypeError):
            continue
    return found


def automatic_since(restarts: list[Restart], since: float) -> list[Restart]:
    """The watchdog's own restarts since a moment: what the hourly cap counts."""
    return [r for r in restarts if r.cause in AUTOMATIC and r.at >= since]
