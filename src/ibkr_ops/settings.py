"""A deployment's inputs (credentials.env plus task options) as one frozen, validated value.

Everything downstream (render, install, migrate) takes a ``Deployment`` and nothing else, so
validation happens once, before any host is touched. The same keys are written back to the
host's ``credentials.env``, which is how ``migrate`` reads a deployment as it stands.
Each key's name, default, range and help is its row in ``host/schema.py``; this module adds
what only the operator side has: secrets held as ``Secret``, the checks between keys, and the
credentials template.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from ibkr_ops import javaprops, schedule
from ibkr_ops.errors import UsageError
from ibkr_ops.host import envfile, schema
from ibkr_ops.host.envfile import parse_env, read_env_file
from ibkr_ops.host.schema import KEYS, NON_HEAP_MB, REQUIRED, SECRET_KEYS
from ibkr_ops.layout import Layout

TradingMode = Literal["paper", "live"]
TwofaAction = Literal["exit", "restart"]
RestartMode = Literal["auto", "warm", "cold"]
ExistingSession = Literal["primary", "primaryoverride", "secondary", "manual"]
MemoryRestart = Literal["window", "force", "off"]

__all__ = ["KEYS", "REQUIRED", "SECRET_KEYS", "Deployment", "Secret", "credentials_template",
           "deployment_from_env", "describe", "load_deployment", "parse_deployment"]
_S = schema.BY_NAME


class Secret:
    """A string that never shows itself in repr, str, f-strings or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value, for the one place that must write it (a 0600 file)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Deployment:
    """Everything a host receives, validated. Secrets are ``Secret`` so they cannot leak by repr.

    One field per row of ``schema.IN_FILE`` (the credentials.env keys), defaulted by it.
    """

    username: str
    password: Secret = field(repr=False)
    trading_mode: TradingMode
    tws_major_vrsn: str
    gateway_sha256: str | None = _S["gateway_sha256"].default
    gateway_min_version: str | None = _S["gateway_min_version"].default
    discord_webhook_url: Secret | None = field(default=None, repr=False)
    api_port: int = _S["api_port"].default
    api_host: str = _S["api_host"].default
    read_only_api: bool = _S["read_only_api"].default
    trusted_ips: tuple[str, ...] = _S["trusted_ips"].default
    service_user: str = _S["service_user"].default
    instance: str | None = _S["instance"].default
    restart_time: str = _S["restart_time"].default
    timezone: str = _S["timezone"].default
    restart_mode: RestartMode = _S["restart_mode"].default
    blackout_windows: tuple[str, ...] = _S["blackout_windows"].default
    twofa_timeout_action: TwofaAction = _S["twofa_timeout_action"].default
    existing_session_action: ExistingSession = _S["existing_session_action"].default
    twofa_device: str | None = _S["twofa_device"].default
    memory_max_mb: int = _S["memory_max_mb"].default
    java_heap_mb: int = _S["java_heap_mb"].default
    command_server_port: int = _S["command_server_port"].default
    health_client_id: int = _S["health_client_id"].default
    display: str = _S["display"].default
    health_interval_s: int = _S["health_interval_s"].default
    hang_restart_after: int = _S["hang_restart_after"].default
    max_restarts_per_hour: int = _S["max_restarts_per_hour"].default
    memory_restart: MemoryRestart = _S["memory_restart"].default
    maintenance_windows: tuple[str, ...] = _S["maintenance_windows"].default
    bot_idle_alert_min: int = _S["bot_idle_alert_min"].default

    @property
    def memory_ceiling_mb(self) -> int:
        """systemd's MemoryHigh= and the watchdog's ceiling (a rule of the schema)."""
        return schema.memory_ceiling_mb(self.memory_max_mb)

    @property
    def is_live(self) -> bool:
        return self.trading_mode == "live"

    @property
    def home(self) -> str:
        return Layout.home(self.service_user)

    @property
    def gateway_dir(self) -> str:
        return Layout.gateway_dir(self.home, self.tws_major_vrsn)

    @property
    def ibc_trusted_ips(self) -> str:
        """IBC's TrustedTwsApiClientIPs: the trusted addresses after 127.0.0.1, which IBC puts
        first in jts.ini (``trusted_ips`` is in that order, so both write the same line)."""
        return ",".join(ip for ip in self.trusted_ips if ip != "127.0.0.1")

    @property
    def restart_hour_minute(self) -> tuple[int, int]:
        hour, minute = self.restart_time.split(":")
        return int(hour), int(minute)

    def env_items(self) -> list[tuple[str, str]]:
        """The deployment as credentials.env keys, in the schema's order (secrets revealed)."""
        items = []
        for setting in schema.IN_FILE:
            value = getattr(self, setting.name)
            if value is not None:
                items.append((setting.key, value.reveal() if isinstance(value, Secret)
                              else setting.dump(value)))
        return items


# --- parsing ---------------------------------------------------------------------------------

_Bad = Callable[[str, str], UsageError]


def load_deployment(path: Path, overrides: Mapping[str, str] | None = None) -> Deployment:
    """Read a credentials file (which must be 0600) and apply task options on top of it."""
    return deployment_from_env(read_env_file(path), overrides, source=str(path))


def parse_deployment(text: str, overrides: Mapping[str, str] | None = None,
                     source: str = "credentials") -> Deployment:
    """Like ``load_deployment`` for text already in memory (migrate never writes it to disk)."""
    return deployment_from_env(parse_env(text, source), overrides, source=source)


def deployment_from_env(values: Mapping[str, str], overrides: Mapping[str, str] | None = None,
                        source: str = "credentials") -> Deployment:
    """Validate KEY=VALUE pairs into a ``Deployment``; the first problem is one UsageError."""
    merged = {**values, **(overrides or {})}
    for key in merged:
        if key not in schema.BY_KEY:
            close = [k for k in KEYS if k.split("_")[-1] == key.split("_")[-1]]
            tip = f" (did you mean {close[0]}?)" if close else f"; known keys: {', '.join(KEYS)}"
            raise UsageError(f"{source}: unknown key {key}{tip}")
    for key in REQUIRED:
        if not merged.get(key, "").strip():
            raise UsageError(f"{source}: {key} is missing; set it to {schema.BY_KEY[key].hint_text}")

    def bad(key: str, why: str) -> UsageError:
        return UsageError(f"{source}: {key} {why}; set it to {schema.BY_KEY[key].hint_text}")

    kwargs: dict[str, object] = {}
    for key, raw in merged.items():
        setting = schema.BY_KEY[key]
        value = raw if setting.verbatim else raw.strip()
        if value == "" and not setting.required:
            continue
        kwargs[setting.name] = _convert(setting, value, bad)
    kwargs.setdefault("api_port", schema.API_PORTS[cast(str, kwargs["trading_mode"])])
    deployment = Deployment(**kwargs)  # type: ignore[arg-type]
    _cross_check(deployment, bad)
    return deployment


def _convert(setting: schema.Setting[Any], value: str, bad: _Bad) -> object:
    # The login reaches IBKR as written: blanks are kept, and refused if IBC would drop them.
    if setting.verbatim and (problem := javaprops.trim_problem(value)):
        raise bad(setting.key, problem)
    try:
        parsed = setting.parse(value)
    except schema.Invalid as exc:
        raise bad(setting.key, str(exc)) from None
    return Secret(parsed) if setting.secret else parsed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cross_check(d: Deployment, bad: _Bad) -> None:
    why = schedule.refusal(*d.restart_hour_minute, d.timezone, d.blackout_windows)
    if why:
        raise bad("IBKR_RESTART_TIME", f"{d.restart_time} breaks the restart rules: {why} "
                                       "(move it, or the blackout window)")
    if d.java_heap_mb > d.memory_max_mb - NON_HEAP_MB:
        raise bad("IBKR_JAVA_HEAP_MB", f"is {d.java_heap_mb}, which leaves less than "
                                       f"{NON_HEAP_MB} MB of IBKR_MEMORY_MAX_MB "
                                       f"({d.memory_max_mb}) for the JVM's non-heap memory "
                                       "(lower it or raise IBKR_MEMORY_MAX_MB)")
    if d.command_server_port == d.api_port:
        raise bad("IBKR_COMMAND_SERVER_PORT", "equals the API port")
    if "127.0.0.1" not in d.trusted_ips:
        raise bad("IBKR_TRUSTED_IPS", "must include 127.0.0.1 (the health check connects there)")
    if not _is_loopback(d.api_host) and d.api_host not in d.trusted_ips:
        raise bad("IBKR_API_HOST", "is not loopback and not in IBKR_TRUSTED_IPS (the Gateway "
                                   "would turn the health check away)")


def describe(d: Deployment) -> dict[str, str]:
    """A printable view of a deployment with the secrets masked (for --dry-run and reports)."""
    return {key: "********" if key in SECRET_KEYS else value for key, value in d.env_items()}


def credentials_template() -> str:
    """deploy/ibkr/credentials.env.template: every setting with its help, by section."""
    lines = list(_TEMPLATE_HEADER)
    for section in schema.SECTIONS:
        lines += ["", f"# --- {section} ".ljust(90, "-")]
        for setting in schema.IN_FILE:
            if setting.section != section:
                continue
            lines += envfile.comment_lines(setting.comment)
            example = setting.example if setting.example is not None else setting.shown_default
            lines.append(envfile.example_line(setting.key, example, active=setting.required))
    return "\n".join(lines) + "\n"


_TEMPLATE_HEADER = (
    "# ibkr-ops deployment settings: copy to credentials.env, fill in, then "
    "`chmod 600 credentials.env`.",
    "# Syntax is systemd's EnvironmentFile=: KEY=VALUE, optional \"double\" or 'single' quotes,",
    "# '#' comments on lines of their own, blank lines; Windows line ends are fine. Put a value",
    "# with a backslash, a quote or blanks in 'single quotes' (taken as written). Whatever systemd",
    "# would read differently from what the file shows is refused, naming the line, as is a file",
    "# that group or others can read.",
    "# Task options (invoke install --api-port=... etc.) override these keys.",
)
