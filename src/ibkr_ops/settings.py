"""A deployment's inputs (credentials.env plus task options) as one frozen, validated value.

Everything downstream (render, install, migrate) takes a ``Deployment`` and nothing else, so
validation happens once, before any host is touched. The same keys are written back to the
host's ``credentials.env``, which is how ``migrate`` reads a deployment as it stands.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, cast

from ibkr_ops import javaprops, schedule
from ibkr_ops.errors import UsageError
from ibkr_ops.host import market, webhook
from ibkr_ops.host.config import MAINTENANCE_WINDOWS
from ibkr_ops.host.envfile import parse_env, read_env_file
from ibkr_ops.layout import Layout

TradingMode = Literal["paper", "live"]
TwofaAction = Literal["exit", "restart"]
RestartMode = Literal["auto", "warm", "cold"]
ExistingSession = Literal["primary", "primaryoverride", "secondary", "manual"]
MemoryRestart = Literal["window", "force", "off"]

DEFAULT_PORTS: Final = {"paper": 4002, "live": 4001}
# Metaspace, code cache, threads and native buffers of the JVM on top of its -Xmx heap.
NON_HEAP_MB: Final = 256


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
    """Everything a host receives, validated. Secrets are ``Secret`` so they cannot leak by repr."""

    username: str
    password: Secret = field(repr=False)
    trading_mode: TradingMode
    tws_major_vrsn: str
    discord_webhook_url: Secret | None = field(default=None, repr=False)
    api_port: int = 4002
    api_host: str = "127.0.0.1"
    read_only_api: bool = True
    trusted_ips: tuple[str, ...] = ("127.0.0.1",)
    service_user: str = "trader"
    restart_time: str = "16:30"
    timezone: str = "America/New_York"
    restart_mode: RestartMode = "auto"
    blackouts: tuple[str, ...] = ()
    twofa_timeout_action: TwofaAction = "exit"
    existing_session_action: ExistingSession = "primary"
    twofa_device: str | None = None
    memory_max_mb: int = 2048
    java_heap_mb: int = 1024
    command_server_port: int = 7462
    health_client_id: int = 999
    display: str = ":1"
    health_interval_s: int = 30
    hang_restart_after: int = 3
    max_restarts_per_hour: int = 3
    memory_restart: MemoryRestart = "window"
    maintenance_windows: tuple[str, ...] = MAINTENANCE_WINDOWS
    bot_idle_alert_min: int = 0

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
        """The deployment as credentials.env keys, in the template's order (secrets revealed)."""
        return [(spec.key, spec.dump(getattr(self, spec.attr))) for spec in _SPECS
                if getattr(self, spec.attr) is not None]


# --- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    key: str
    attr: str
    hint: str
    secret: bool = False

    def dump(self, value: object) -> str:
        if isinstance(value, Secret):
            return value.reveal()
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, tuple):
            if self.attr == "maintenance_windows":
                return "; ".join(value) or "none"
            return ("; " if self.attr == "blackouts" else ",").join(value)
        return str(value)


_SPECS: Final = (
    _Spec("IBKR_USERNAME", "username", "your IBKR login name"),
    _Spec("IBKR_PASSWORD", "password", "your IBKR password", secret=True),
    _Spec("IBKR_TRADING_MODE", "trading_mode", "paper or live"),
    _Spec("TWS_MAJOR_VRSN", "tws_major_vrsn", "digits, e.g. 1030 for Gateway 10.30.x"),
    _Spec("DISCORD_WEBHOOK_URL", "discord_webhook_url",
          "https://discord.com/api/webhooks/ID/TOKEN", secret=True),
    _Spec("IBKR_API_PORT", "api_port", "a TCP port, 1024-65535"),
    _Spec("IBKR_API_HOST", "api_host", "the address bots connect to, e.g. 127.0.0.1"),
    _Spec("IBKR_READ_ONLY_API", "read_only_api", "yes or no"),
    _Spec("IBKR_TRUSTED_IPS", "trusted_ips", "comma-separated IP addresses"),
    _Spec("IBKR_SERVICE_USER", "service_user", "a Linux user name, e.g. trader"),
    _Spec("IBKR_RESTART_TIME", "restart_time", "HH:MM, 24-hour"),
    _Spec("IBKR_TIMEZONE", "timezone", "an IANA zone, e.g. America/New_York"),
    _Spec("IBKR_RESTART_MODE", "restart_mode", "auto, warm or cold"),
    _Spec("IBKR_RESTART_BLACKOUTS", "blackouts",
          "';'-separated windows, e.g. 'Mon..Fri 16:00-16:20; Sun 17:00-18:00'"),
    _Spec("IBKR_TWOFA_TIMEOUT_ACTION", "twofa_timeout_action", "exit or restart"),
    _Spec("IBKR_EXISTING_SESSION_ACTION", "existing_session_action",
          "primary, primaryoverride, secondary or manual"),
    _Spec("IBKR_TWOFA_DEVICE", "twofa_device",
          "the second-factor device's name exactly as the Gateway lists it, e.g. IB Key"),
    _Spec("IBKR_MEMORY_MAX_MB", "memory_max_mb", "megabytes, at least 768"),
    _Spec("IBKR_JAVA_HEAP_MB", "java_heap_mb",
          "megabytes, at least 512 and at most IBKR_MEMORY_MAX_MB minus 256"),
    _Spec("IBKR_COMMAND_SERVER_PORT", "command_server_port", "a TCP port, 1024-65535"),
    _Spec("IBKR_HEALTH_CLIENT_ID", "health_client_id", "an API clientId your bots never use"),
    _Spec("IBKR_DISPLAY", "display", "an X display such as :1 (not :0 on WSL)"),
    _Spec("IBKR_HEALTH_INTERVAL_S", "health_interval_s", "seconds between health checks, 10-3600"),
    _Spec("IBKR_HANG_RESTART_AFTER", "hang_restart_after",
          "failed API probes in a row (re-probed seconds apart) before a restart, 1-60"),
    _Spec("IBKR_MAX_RESTARTS_PER_HOUR", "max_restarts_per_hour",
          "automatic restarts allowed per hour, 0-60 (0: never)"),
    _Spec("IBKR_MEMORY_RESTART", "memory_restart",
          "window (outside the session), force (at once) or off"),
    _Spec("IBKR_MAINTENANCE_WINDOWS", "maintenance_windows",
          "';'-separated New York windows, e.g. '* 23:45-00:45; Fri 23:00-03:00', or none"),
    _Spec("IBKR_BOT_IDLE_ALERT_MIN", "bot_idle_alert_min",
          "minutes of the trading session without a bot connected before a warning, "
          "0-480 (0: off)"),
)
KEYS: Final = tuple(spec.key for spec in _SPECS)
# Keys whose values are Secret: masked wherever a file or a setting is shown.
SECRET_KEYS: Final = tuple(spec.key for spec in _SPECS if spec.secret)
REQUIRED: Final = ("IBKR_USERNAME", "IBKR_PASSWORD", "IBKR_TRADING_MODE", "TWS_MAJOR_VRSN")
_BY_KEY: Final = {spec.key: spec for spec in _SPECS}
_VERBATIM: Final = ("IBKR_USERNAME", "IBKR_PASSWORD")
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
        if key not in _BY_KEY:
            close = [k for k in KEYS if k.split("_")[-1] == key.split("_")[-1]]
            tip = f" (did you mean {close[0]}?)" if close else f"; known keys: {', '.join(KEYS)}"
            raise UsageError(f"{source}: unknown key {key}{tip}")
    for key in REQUIRED:
        if not merged.get(key, "").strip():
            raise UsageError(f"{source}: {key} is missing; set it to {_BY_KEY[key].hint}")

    def bad(key: str, why: str) -> UsageError:
        return UsageError(f"{source}: {key} {why}; set it to {_BY_KEY[key].hint}")

    kwargs: dict[str, object] = {}
    for key, raw in merged.items():
        # The login reaches IBKR as written: blanks are kept, and refused if IBC would drop them.
        value = raw if key in _VERBATIM else raw.strip()
        if value == "" and key not in REQUIRED:
            continue
        kwargs[_BY_KEY[key].attr] = _convert(key, value, bad)
    kwargs.setdefault("api_port", DEFAULT_PORTS[cast(str, kwargs["trading_mode"])])
    deployment = Deployment(**kwargs)  # type: ignore[arg-type]
    _cross_check(deployment, bad)
    return deployment


def _convert(key: str, value: str, bad: _Bad) -> object:  # noqa: PLR0911, PLR0912
    if key in _VERBATIM and (problem := javaprops.trim_problem(value)):
        raise bad(key, problem)
    if key in SECRET_KEYS:
        if key == "DISCORD_WEBHOOK_URL":
            _check_webhook(value, bad)
        return Secret(value)
    if key == "IBKR_USERNAME":
        if re.search(r"\s", value):
            raise bad(key, "contains whitespace")
        return value
    if key == "IBKR_TRADING_MODE":
        return _choice(key, value.lower(), ("paper", "live"), bad)
    if key == "TWS_MAJOR_VRSN":
        if not re.fullmatch(r"[0-9]{3,4}", value):
            raise bad(key, f"is not a major version number ({value[:20]!r})")
        return value
    if key in ("IBKR_API_PORT", "IBKR_COMMAND_SERVER_PORT"):
        return _int(key, value, 1024, 65535, bad)
    if key == "IBKR_HEALTH_CLIENT_ID":
        return _int(key, value, 1, 2**31 - 1, bad)
    if key == "IBKR_MEMORY_MAX_MB":
        return _int(key, value, 768, 65536, bad)
    if key == "IBKR_JAVA_HEAP_MB":
        return _int(key, value, 512, 65536, bad)
    if key == "IBKR_API_HOST":
        return _ip(key, value, bad)
    if key == "IBKR_TRUSTED_IPS":
        ips = [_ip(key, item.strip(), bad) for item in value.split(",") if item.strip()]
        # 127.0.0.1 first and no repeats: the order IBC writes jts.ini's TrustedIPs in.
        return tuple(dict.fromkeys(sorted(ips, key=lambda ip: ip != "127.0.0.1")))
    if key == "IBKR_READ_ONLY_API":
        return _bool(key, value, bad)
    if key == "IBKR_SERVICE_USER":
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", value) or value == "root":
            raise bad(key, f"is not a usable service user ({value[:32]!r})")
        return value
    if key == "IBKR_RESTART_TIME":
        return _hhmm(key, value, bad)
    if key == "IBKR_TIMEZONE":
        try:
            market.check_timezone(value)
        except UsageError:
            raise bad(key, f"is not a known IANA time zone ({value[:40]!r})") from None
        return value
    if key == "IBKR_RESTART_MODE":
        return _choice(key, value.lower(), ("auto", "warm", "cold"), bad)
    if key == "IBKR_RESTART_BLACKOUTS":
        return tuple(_blackout(key, item.strip(), bad) for item in value.split(";") if item.strip())
    if key == "IBKR_TWOFA_TIMEOUT_ACTION":
        return _choice(key, value.lower(), ("exit", "restart"), bad)
    if key == "IBKR_EXISTING_SESSION_ACTION":
        return _choice(key, value.lower(), ("primary", "primaryoverride", "secondary", "manual"),
                       bad)
    if key == "IBKR_TWOFA_DEVICE":
        return _device(key, value, bad)
    if key == "IBKR_HEALTH_INTERVAL_S":
        return _int(key, value, 10, 3600, bad)
    if key == "IBKR_HANG_RESTART_AFTER":
        return _int(key, value, 1, 60, bad)
    if key == "IBKR_MAX_RESTARTS_PER_HOUR":
        return _int(key, value, 0, 60, bad)
    if key == "IBKR_MEMORY_RESTART":
        return _choice(key, value.lower(), ("window", "force", "off"), bad)
    if key == "IBKR_BOT_IDLE_ALERT_MIN":
        return _int(key, value, 0, 480, bad)
    if key == "IBKR_MAINTENANCE_WINDOWS":
        if value.lower() == "none":
            return ()
        return tuple(_blackout(key, item.strip(), bad) for item in value.split(";") if item.strip())
    if key == "IBKR_DISPLAY":
        if not re.fullmatch(r":[0-9]{1,3}", value) or value == ":0":
            raise bad(key, f"is not a free X display ({value[:10]!r})")
        return value
    raise AssertionError(key)  # every key in _SPECS is handled above


def _choice(key: str, value: str, options: tuple[str, ...], bad: _Bad) -> str:
    if value not in options:
        raise bad(key, f"is {value[:20]!r}, not one of {', '.join(options)}")
    return value


def _int(key: str, value: str, low: int, high: int, bad: _Bad) -> int:
    # ASCII digits only (int() takes Arabic-Indic ones too), and few: int() refuses thousands.
    if not re.fullmatch(r"[0-9]{1,10}", value) or not low <= int(value) <= high:
        raise bad(key, f"is {value[:20]!r}, not a number from {low} to {high}")
    return int(value)


def _bool(key: str, value: str, bad: _Bad) -> bool:
    lowered = value.lower()
    if lowered in ("yes", "true", "1", "on"):
        return True
    if lowered in ("no", "false", "0", "off"):
        return False
    raise bad(key, f"is {value[:20]!r}, not yes or no")


def _ip(key: str, value: str, bad: _Bad) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise bad(key, f"has {value[:40]!r}, which is not an IP address") from None


def _hhmm(key: str, value: str, bad: _Bad) -> str:
    match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", value)
    if not match:
        raise bad(key, f"is {value[:20]!r}, not a 24-hour HH:MM time")
    return f"{int(match[1]):02d}:{match[2]}"


def _device(key: str, value: str, bad: _Bad) -> str:
    # IBC trims it and compares it, case-sensitively, with each entry of the Gateway's device
    # list; java.util.Properties reads it as ISO-8859-1 with backslash escapes, config.ini is
    # written as UTF-8: plain ASCII without backslashes reads back as written.
    if len(value) > 64 or not value.isprintable():
        raise bad(key, "is not a device name (printable, at most 64 characters)")
    if "\\" in value or not value.isascii():
        raise bad(key, f"has a character IBC's config.ini cannot hold as written ({value[:20]!r})")
    return value


def _blackout(key: str, item: str, bad: _Bad) -> str:
    try:
        market.parse_window(item)
    except UsageError:
        raise bad(key, f"has {item[:40]!r}, not 'DAYS HH:MM-HH:MM'") from None
    return item


def _check_webhook(value: str, bad: _Bad) -> None:
    try:
        webhook.parse_webhook(value)
    except webhook.WebhookUrlError as exc:
        raise bad("DISCORD_WEBHOOK_URL", exc.why) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cross_check(d: Deployment, bad: _Bad) -> None:
    why = schedule.refusal(*d.restart_hour_minute, d.timezone, d.blackouts)
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
    out: dict[str, str] = {}
    for spec in _SPECS:
        value = getattr(d, spec.attr)
        if value is None:
            continue
        out[spec.key] = "********" if isinstance(value, Secret) else spec.dump(value)
    return out


