"""Installed settings of the host-side tools: ops.json (mode 0644, no secrets).

The operator side builds a `HostConfig` from the deployment settings and writes `to_json()`;
the host tools read it back with `HostConfig.load()`. Every field has a safe default so a
host (or a developer's machine) without the file still gets sensible behaviour. Names,
defaults and ranges are the settings schema's (``host/schema.py``), shared with the operator
side. Standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import typing
from dataclasses import dataclass
from typing import Any

from ibkr_ops import layout
from ibkr_ops.errors import UsageError
from ibkr_ops.host import schema

# Plain strings and open() rather than pathlib: pathlib's imports are a noticeable share of
# the health check's start-up time.
DEFAULT_PATH = layout.DEFAULT.ops_json
_S = schema.BY_NAME


@dataclass(frozen=True)
class HostConfig:
    """Everything the health check, pre-restart check, restart runner and notifier need.

    One field per ``schema.HOST`` row, named, defaulted and checked by it (help and ranges
    live there); a test holds the two to each other.
    """

    trading_mode: str = _S["trading_mode"].default
    api_host: str = _S["api_host"].default
    api_port: int = _S["api_port"].default
    # High on purpose: bots use small ids; 326 ("in use") makes the probe try the next ones.
    health_client_id: int = _S["health_client_id"].default
    health_timeout_s: float = _S["health_timeout_s"].default
    gateway_unit: str = _S["gateway_unit"].default
    display_unit: str = _S["display_unit"].default
    display: str = _S["display"].default
    service_user: str = _S["service_user"].default
    memory_ceiling_mb: int = _S["memory_ceiling_mb"].default
    memory_warn_ratio: float = _S["memory_warn_ratio"].default
    command_server_host: str = _S["command_server_host"].default
    command_server_port: int = _S["command_server_port"].default
    # auto: warm Monday to Friday, cold on the first restart after Sunday 01:00 ET.
    restart_mode: str = _S["restart_mode"].default
    warm_restart_timeout_s: float = _S["warm_restart_timeout_s"].default
    cold_restart_timeout_s: float = _S["cold_restart_timeout_s"].default
    market_timezone: str = _S["market_timezone"].default
    # Refuse restarts this many minutes before the open, so the Gateway is back in time.
    pre_open_guard_min: int = _S["pre_open_guard_min"].default
    # Extra refusals, e.g. "Mon..Fri 20:00-21:00", "Sun 18:00-02:00", "* 00:15-01:45" (market tz).
    blackout_windows: tuple[str, ...] = _S["blackout_windows"].default
    extra_holidays: tuple[str, ...] = _S["extra_holidays"].default
    maintenance_windows: tuple[str, ...] = _S["maintenance_windows"].default
    notify_timeout_s: float = _S["notify_timeout_s"].default
    # The watchdog (the health-check timer's runs): failed API probes in a row with the
    # process alive before a restart (the run re-probes at once), and the cap on its own
    # restarts. Checks every 30 s: at 60 s the wait for the next check alone averaged 30 s.
    health_interval_s: int = _S["health_interval_s"].default
    hang_restart_after: int = _S["hang_restart_after"].default
    max_restarts_per_hour: int = _S["max_restarts_per_hour"].default
    memory_restart: str = _S["memory_restart"].default
    twofa_timeout_action: str = _S["twofa_timeout_action"].default
    login_stall_s: float = _S["login_stall_s"].default
    # A crash loop: this many automatic restarts by systemd within the window; the Gateway is
    # then stopped for the back-off (doubled each time, at most an hour) and started again.
    crash_loop_crashes: int = _S["crash_loop_crashes"].default
    crash_loop_window_s: float = _S["crash_loop_window_s"].default
    crash_backoff_s: float = _S["crash_backoff_s"].default
    # The Gateway's link to IBKR reported lost (1100) for this long is an outage (upstream
    # fail); shorter losses are the Gateway's to repair and only a warning.
    upstream_lost_fail_s: float = _S["upstream_lost_fail_s"].default
    bot_idle_alert_min: int = _S["bot_idle_alert_min"].default
    gateway_min_version: str | None = _S["gateway_min_version"].default
    metrics_file: str = _S["metrics_file"].default
    hostname: str = _S["hostname"].default
    state_dir: str = _S["state_dir"].default
    log_dir: str = _S["log_dir"].default
    credentials_file: str = _S["credentials_file"].default
    login_lock: str = _S["login_lock"].default
    # The Gateway's instance name on a host of several (None: the single-Gateway layout).
    instance: str | None = _S["instance"].default

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
    default = layout.DEFAULT.metrics_file.removeprefix(layout.DEFAULT.state_dir + "/")
    return config.metrics_file or os.path.join(config.state_dir, default)


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
    for f in dataclasses.fields(c):
        try:
            _S[f.name].check(getattr(c, f.name))
        except schema.Invalid as exc:
            raise UsageError(f"{f.name} {exc}") from None
    if c.api_port == c.command_server_port:
        raise UsageError("command_server_port must differ from api_port")
