"""Installed settings of the host-side tools: ops.json (mode 0644, no secrets).

The operator side builds a `HostConfig` from the deployment settings and writes `to_json()`;
the host tools read it back with `HostConfig.load()`. Every field has a safe default so a
host (or a developer's machine) without the file still gets sensible behaviour.
Standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import typing
from dataclasses import dataclass
from typing import Any

from ibkr_ops import layout
from ibkr_ops.errors import UsageError

# Plain strings and open() rather than pathlib: pathlib's imports are a noticeable share of
# the health check's start-up time.
DEFAULT_PATH = layout.DEFAULT.ops_json

TRADING_MODES = ("paper", "live")
RESTART_MODES = ("auto", "warm", "cold")
# window: restart at the next moment the pre-restart check allows; force: at once; off: never.
MEMORY_RESTARTS = ("window", "force", "off")
TWOFA_ACTIONS = ("exit", "restart")
# IBKR's own downtime, New York time: the nightly reset and the weekend maintenance. A new
# login there can fail or lock the account, so re-logins wait for the end.
MAINTENANCE_WINDOWS = ("* 23:45-00:45", "Fri 23:00-03:00")


@dataclass(frozen=True)
class HostConfig:
    """Everything the health check, pre-restart check, restart runner and notifier need."""

    trading_mode: str = "paper"
    api_host: str = "127.0.0.1"
    api_port: int = 4002
    # High on purpose: bots use small ids; 326 ("in use") makes the probe try the next ones.
    health_client_id: int = 999
    health_timeout_s: float = 10.0
    gateway_unit: str = layout.DEFAULT.gateway_unit
    display_unit: str = layout.DEFAULT.display_unit
    display: str = ":1"
    service_user: str = "trader"
    memory_ceiling_mb: int = 1536
    memory_warn_ratio: float = 0.85
    command_server_host: str = "127.0.0.1"
    command_server_port: int = 7462
    # auto: warm Monday to Friday, cold on the first restart after Sunday 01:00 ET.
    restart_mode: str = "auto"
    warm_restart_timeout_s: float = 300.0
    cold_restart_timeout_s: float = 600.0
    market_timezone: str = "America/New_York"
    # Refuse restarts this many minutes before the open, so the Gateway is back in time.
    pre_open_guard_min: int = 10
    # Extra refusals, e.g. "Mon..Fri 20:00-21:00", "Sun 18:00-02:00", "* 00:15-01:45" (market tz).
    blackout_windows: tuple[str, ...] = ()
    # Ad-hoc NYSE closures (YYYY-MM-DD) that no rule predicts, e.g. a national day of mourning.
    extra_holidays: tuple[str, ...] = ()
    maintenance_windows: tuple[str, ...] = MAINTENANCE_WINDOWS
    notify_timeout_s: float = 20.0
    # The watchdog (the health-check timer's runs): failed API probes in a row with the
    # process alive before a restart (the run re-probes at once), and the cap on its own
    # restarts. Checks every 30 s: at 60 s the wait for the next check alone averaged 30 s.
    health_interval_s: int = 30
    hang_restart_after: int = 3
    max_restarts_per_hour: int = 3
    memory_restart: str = "window"
    # What IBC does when a second factor is not approved in time (IBKR_TWOFA_TIMEOUT_ACTION).
    twofa_timeout_action: str = "exit"
    # A login that makes no progress this long (no second-factor prompt either) is reported
    # with the window IBC last saw: usually a dialog IBC has no handler for.
    login_stall_s: float = 120.0
    # A crash loop: this many automatic restarts by systemd within the window; the Gateway is
    # then stopped for the back-off (doubled each time, at most an hour) and started again.
    crash_loop_crashes: int = 5
    crash_loop_window_s: float = 600.0
    crash_backoff_s: float = 300.0
    # The Gateway's link to IBKR reported lost (1100) for this long is an outage (upstream
    # fail); shorter losses are the Gateway's to repair and only a warning.
    upstream_lost_fail_s: float = 180.0
    # Warn when no API client but the health check has been connected for this many minutes
    # of the regular session (0: off): the Gateway answers, but no bot trades through it.
    bot_idle_alert_min: int = 0
    # node_exporter's textfile collector format; empty: <state_dir>/metrics/ibkr_gateway.prom.
    metrics_file: str = ""
    hostname: str = ""
    state_dir: str = layout.DEFAULT.state_dir
    log_dir: str = layout.DEFAULT.log_dir
    credentials_file: str = layout.DEFAULT.credentials

    def __post_init__(self) -> None:
        _check_types(self)
        _check_values(self)

    @classmethod
    def load(cls, path: str | os.PathLike[str] = DEFAULT_PATH) -> HostConfig:
        """Read and validate a settings file; any problem is a UsageError naming the key."""
        from ibkr_ops.host import textfile  # noqa: PLC0415 - only runs with a settings file

        text = textfile.read_text(path, what="settings file (ops.json)")

        def refuse(name: str) -> None:
            raise ValueError(f"{name} is not a number JSON allows")

        try:
            data = json.loads(text, parse_constant=refuse)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"settings {path} line {exc.lineno}: invalid JSON ({exc.msg})"
            ) from None
        except (ValueError, RecursionError) as exc:
            # NaN/Infinity, an integer of thousands of digits, nesting too deep for Python.
            why = str(exc).split(";")[0] if isinstance(exc, ValueError) else "nested too deeply"
            raise UsageError(f"settings {path}: invalid JSON ({why})") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: object, source: str = "settings") -> HostConfig:
        """Build from parsed JSON: unknown keys and wrong types are errors, lists become tuples."""
        if not isinstance(data, dict):
            raise UsageError(f"{source}: expected a JSON object at the top level")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"{source}: unknown key {unknown[0]!r}; remove it or fix its spelling")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        try:
            return cls(**values)
        except UsageError as exc:
            raise UsageError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        """Stable, human-readable JSON for ops.json (sorted keys, trailing newline)."""
        data = {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def metrics_path(config: HostConfig) -> str:
    """Where the Prometheus text file goes."""
    return config.metrics_file or os.path.join(config.state_dir, "metrics", "ibkr_gateway.prom")


def load_default(path: str | None) -> HostConfig:
    """The settings for a run: an explicit path must exist; the default path may be absent."""
    if path is not None:
        return HostConfig.load(path)
    if os.path.exists(DEFAULT_PATH):
        return HostConfig.load(DEFAULT_PATH)
    return HostConfig()


def _check_types(config: HostConfig) -> None:
    hints = typing.get_type_hints(HostConfig)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        expected = hints[f.name]
        if not _is_instance(value, expected):
            shown = repr(value) if isinstance(value, float) else type(value).__name__
            raise UsageError(f"{f.name} must be {_describe(expected)}, not {shown}")


def _is_instance(value: Any, expected: Any) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and \
            math.isfinite(value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typing.get_origin(expected) is tuple:
        (item,) = {a for a in typing.get_args(expected) if a is not Ellipsis}
        return isinstance(value, tuple) and all(_is_instance(v, item) for v in value)
    return isinstance(value, expected)


def _describe(expected: Any) -> str:
    if typing.get_origin(expected) is tuple:
        return "a list of strings"
    names = {int: "an integer", float: "a finite number", str: "a string"}
    return names.get(expected, str(expected))


def _check_values(c: HostConfig) -> None:
    _choice("trading_mode", c.trading_mode, TRADING_MODES)
    _choice("restart_mode", c.restart_mode, RESTART_MODES)
    _check_watchdog(c)
    for name in ("api_port", "command_server_port"):
        if not 1 <= getattr(c, name) <= 65535:
            raise UsageError(f"{name} must be a TCP port (1-65535)")
    if c.api_port == c.command_server_port:
        raise UsageError("command_server_port must differ from api_port")
    if not 0 <= c.health_client_id < 2**31:
        raise UsageError("health_client_id must be between 0 and 2147483647")
    for name in ("health_timeout_s", "warm_restart_timeout_s", "cold_restart_timeout_s",
                 "notify_timeout_s", "memory_ceiling_mb", "crash_loop_window_s",
                 "crash_backoff_s", "upstream_lost_fail_s", "login_stall_s"):
        if getattr(c, name) <= 0:
            raise UsageError(f"{name} must be greater than 0")
    if not 0 < c.memory_warn_ratio <= 1:
        raise UsageError("memory_warn_ratio must be in (0, 1]")
    if not 0 <= c.pre_open_guard_min <= 240:
        raise UsageError("pre_open_guard_min must be between 0 and 240")
    if not re.fullmatch(r":[0-9]{1,3}", c.display):
        raise UsageError(f"display must look like ':1', not {c.display!r}")
    # Imported here: the calendar code is only needed to validate and by the pre-restart check.
    from ibkr_ops.host import market  # noqa: PLC0415

    market.check_timezone(c.market_timezone)
    for window in c.blackout_windows:
        market.parse_window(window)
    for window in c.maintenance_windows:
        market.parse_window(window, "maintenance_windows")
    for day in c.extra_holidays:
        market.parse_day(day, "extra_holidays")


def _check_watchdog(c: HostConfig) -> None:
    _choice("memory_restart", c.memory_restart, MEMORY_RESTARTS)
    _choice("twofa_timeout_action", c.twofa_timeout_action, TWOFA_ACTIONS)
    for name in ("health_interval_s", "hang_restart_after", "crash_loop_crashes"):
        if getattr(c, name) < 1:
            raise UsageError(f"{name} must be at least 1")
    if c.max_restarts_per_hour < 0:
        raise UsageError("max_restarts_per_hour must not be negative (0: never restart)")
    if not 0 <= c.bot_idle_alert_min <= 480:
        raise UsageError("bot_idle_alert_min must be between 0 (off) and 480")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
