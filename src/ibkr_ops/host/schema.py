"""Every setting, declared once: its names, type, default, range, help and who needs it.

A row names a setting twice over: ``name`` is the attribute of ``Deployment`` and of
``HostConfig`` and the key in ``/etc/ibkr/ops.json``; ``key`` is its line in credentials.env
(empty when only the host tools have it). ``host`` says whether ops.json carries it. Both
dataclasses take their defaults from here and validate through ``parse`` (text from
credentials.env or a task option) and ``check`` (a typed value from ops.json), so a range
cannot differ between the operator's side and the host's. The credentials template's comments
(``comment``) and the task options' help come from the same rows.

Standard library only: the host tools validate ops.json with it (calendar and webhook checks
are imported when a value is checked, never at start-up).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ibkr_ops.layout import DEFAULT as LAYOUT
from ibkr_ops.layout import check_instance

T = TypeVar("T")

TRADING_MODES = ("paper", "live")
# The API port each trading mode defaults to (IBC's and the Gateway's own defaults).
API_PORTS = {"paper": 4002, "live": 4001}
# Metaspace, code cache, threads and native buffers of the JVM on top of its -Xmx heap.
NON_HEAP_MB = 256


class Invalid(ValueError):
    """A value a setting refuses; the message completes "<name> ..." and never holds a secret
    in full (at most the first characters of what was given)."""


def memory_ceiling_mb(memory_max_mb: int) -> int:
    """systemd's MemoryHigh= (3/4 of MemoryMax=), where the kernel starts throttling the JVM,
    is also the watchdog's memory ceiling: it restarts the Gateway before it crawls."""
    return memory_max_mb * 3 // 4


# Not frozen, no __eq__: every host tool imports the fifty rows at start-up, and a frozen
# dataclass's __init__ costs that start-up several milliseconds; the rows are constants.
@dataclass(kw_only=True, eq=False)
class Setting(Generic[T]):
    """One setting. ``help`` is a short phrase (what it is), ``hint`` what values it takes
    (``{low}`` and ``{high}`` are filled in from the range), ``comment`` the credentials
    template's text above its line."""

    name: str
    default: T
    help: str
    hint: str = ""
    key: str = ""
    host: bool = False
    # Taken from the deployment by a rule (``Deployment`` has a property of this name).
    derived: bool = False
    required: bool = False
    secret: bool = False
    # Reaches IBKR as written: blanks are kept (and refused where IBC would drop them).
    verbatim: bool = False
    option: str = ""
    section: str = ""
    comment: str = ""
    example: str | None = None
    default_text: str | None = None

    @property
    def hint_text(self) -> str:
        return self.hint

    @property
    def shown_default(self) -> str:
        """The default as credentials.env spells it (``none`` for no value)."""
        if self.default_text is not None:
            return self.default_text
        return self.dump(self.default) if self.default not in (None, ()) else "none"

    @property
    def option_help(self) -> str:
        """The help of the task option that overrides it, e.g. ``--api-port``."""
        default = "" if self.required else f", default {self.shown_default}"
        return f"{self.help}: {self.hint_text} ({self.key}{default})"

    def parse(self, text: str) -> T:
        """The value of credentials.env text (already stripped unless ``verbatim``)."""
        raise Invalid("cannot be set in credentials.env")

    def check(self, value: T) -> T:
        """The value itself, normalised, if it is in range; else Invalid."""
        return value

    def dump(self, value: T) -> str:
        """The value as credentials.env text that ``parse`` reads back to it."""
        return str(value)


@dataclass(kw_only=True, eq=False)
class Text(Setting[str]):
    """A string; ``valid`` normalises it or raises Invalid."""

    valid: Callable[[str], str] | None = None

    def parse(self, text: str) -> str:
        return self.check(text)

    def check(self, value: str) -> str:
        return self.valid(value) if self.valid else value


@dataclass(kw_only=True, eq=False)
class OptionalText(Setting[str | None]):
    """A string that may be absent (None: not set)."""

    valid: Callable[[str], str] | None = None

    def parse(self, text: str) -> str | None:
        return self.check(text)

    def check(self, value: str | None) -> str | None:
        return self.valid(value) if self.valid and value is not None else value


@dataclass(kw_only=True, eq=False)
class Choice(Setting[str]):
    """One of a few words, case-insensitive in credentials.env."""

    choices: tuple[str, ...]

    @property
    def hint_text(self) -> str:
        return self.hint or _or_list(self.choices)

    def parse(self, text: str) -> str:
        return self.check(text.lower())

    def check(self, value: str) -> str:
        if value not in self.choices:
            raise Invalid(f"is {value[:20]!r}, not one of {', '.join(self.choices)}")
        return value


@dataclass(kw_only=True, eq=False)
class Int(Setting[int]):
    """A whole number from ``low`` to ``high`` (no upper bound when ``high`` is None)."""

    low: int
    high: int | None = None

    @property
    def hint_text(self) -> str:
        return self.hint.format(low=self.low, high=self.high)

    def _range(self) -> str:
        return f"from {self.low} to {self.high}" if self.high is not None else \
            f"of at least {self.low}"

    def parse(self, text: str) -> int:
        # ASCII digits only (int() takes Arabic-Indic ones too), and few: int() refuses thousands.
        if not re.fullmatch(r"[0-9]{1,10}", text) or not self._fits(int(text)):
            raise Invalid(f"is {text[:20]!r}, not a number {self._range()}")
        return int(text)

    def check(self, value: int) -> int:
        if not self._fits(value):
            raise Invalid(f"is {value}, not a number {self._range()}")
        return value

    def _fits(self, value: int) -> bool:
        return self.low <= value and (self.high is None or value <= self.high)


@dataclass(kw_only=True, eq=False)
class Float(Setting[float]):
    """A finite number above 0 and at most ``high``; only the host tools have these."""

    high: float | None = None

    def check(self, value: float) -> float:
        if not value > 0 or (self.high is not None and value > self.high):
            bound = f" and at most {self.high:g}" if self.high is not None else ""
            raise Invalid(f"is {value!r}, not a number above 0{bound}")
        return value


@dataclass(kw_only=True, eq=False)
class Bool(Setting[bool]):
    """yes or no (true/false, 1/0, on/off are read too); written as yes or no."""

    def parse(self, text: str) -> bool:
        lowered = text.lower()
        if lowered in ("yes", "true", "1", "on"):
            return True
        if lowered in ("no", "false", "0", "off"):
            return False
        raise Invalid(f"is {text[:20]!r}, not yes or no")

    def dump(self, value: bool) -> str:
        return "yes" if value else "no"


@dataclass(kw_only=True, eq=False)
class List(Setting[tuple[str, ...]]):
    """Items separated by ``separator``; each normalised by ``item``, the whole by ``tidy``.
    ``none_word`` is written for no items where empty text would mean "the default"."""

    separator: str
    item: Callable[[str], str] | None = None
    tidy: Callable[[tuple[str, ...]], tuple[str, ...]] | None = None
    none_word: str = ""

    def parse(self, text: str) -> tuple[str, ...]:
        if self.none_word and text.lower() == self.none_word:
            return ()
        return self.check(tuple(p.strip() for p in text.split(self.separator) if p.strip()))

    def check(self, value: tuple[str, ...]) -> tuple[str, ...]:
        items = tuple(self.item(v) for v in value) if self.item else value
        return self.tidy(items) if self.tidy else items

    def dump(self, value: tuple[str, ...]) -> str:
        joiner = self.separator + (" " if self.separator == ";" else "")
        return joiner.join(value) or self.none_word


def _or_list(words: tuple[str, ...]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


# --- value rules ------------------------------------------------------------------------------


def _username(value: str) -> str:
    if re.search(r"\s", value):
        raise Invalid("contains whitespace")
    return value


def _major_version(value: str) -> str:
    if not re.fullmatch(r"[0-9]{3,4}", value):
        raise Invalid(f"is not a major version number ({value[:20]!r})")
    return value


def _ip(value: str) -> str:
    if value == "127.0.0.1":  # the default: the host tools' start-up skips importing ipaddress
        return value
    import ipaddress  # noqa: PLC0415 - only when a setting is checked

    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(f"has {value[:40]!r}, which is not an IP address") from None


def _loopback_first(ips: tuple[str, ...]) -> tuple[str, ...]:
    # 127.0.0.1 first and no repeats: the order IBC writes jts.ini's TrustedIPs in.
    return tuple(dict.fromkeys(sorted(ips, key=lambda ip: ip != "127.0.0.1")))


def _service_user(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", value) or value == "root":
        raise Invalid(f"is not a usable service user ({value[:32]!r})")
    return value


def _hhmm(value: str) -> str:
    match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", value)
    if not match:
        raise Invalid(f"is {value[:20]!r}, not a 24-hour HH:MM time")
    return f"{int(match[1]):02d}:{match[2]}"


def _timezone(value: str) -> str:
    from ibkr_ops.errors import UsageError  # noqa: PLC0415
    from ibkr_ops.host import market  # noqa: PLC0415 - the calendar only to check a value

    try:
        market.check_timezone(value)
    except UsageError:
        raise Invalid(f"is not a known IANA time zone ({value[:40]!r}; is the tzdata package "
                      "installed?)") from None
    return value


def _window(value: str) -> str:
    from ibkr_ops.errors import UsageError  # noqa: PLC0415
    from ibkr_ops.host import market  # noqa: PLC0415

    try:
        market.parse_window(value)
    except UsageError:
        raise Invalid(f"has {value[:40]!r}, not 'DAYS HH:MM-HH:MM'") from None
    return value


def _day(value: str) -> str:
    import datetime as dt  # noqa: PLC0415

    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"has {value[:20]!r}, not a date (YYYY-MM-DD)") from None
    return value


def _device(value: str) -> str:
    # IBC trims it and compares it, case-sensitively, with each entry of the Gateway's device
    # list; java.util.Properties reads it as ISO-8859-1 with backslash escapes, config.ini is
    # written as UTF-8: plain ASCII without backslashes reads back as written.
    if len(value) > 64 or not value.isprintable():
        raise Invalid("is not a device name (printable, at most 64 characters)")
    if "\\" in value or not value.isascii():
        raise Invalid(f"has a character IBC's config.ini cannot hold as written ({value[:20]!r})")
    return value


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise Invalid(f"is not a sha256 ({len(value)} characters)")
    return value.lower()


def _gateway_version(value: str) -> str:
    from ibkr_ops.errors import UsageError  # noqa: PLC0415
    from ibkr_ops.host import gatewayversion  # noqa: PLC0415 - only to check a value

    try:
        return str(gatewayversion.parse(value))
    except UsageError:
        raise Invalid(f"has {value[:20]!r}, not a Gateway version (e.g. 10.30.1 or 1030)") from None


def _display(value: str) -> str:
    # :0 is the desktop's (WSLg's on WSL): a second X server there fails or takes it over.
    if not re.fullmatch(r":[0-9]{1,3}", value) or value == ":0":
        raise Invalid(f"is not a free X display such as ':1' ({value[:10]!r})")
    return value


def _instance(value: str) -> str:
    try:
        return check_instance(value)
    except ValueError as exc:
        raise Invalid(f"is refused: {exc}") from None


def _webhook(value: str) -> str:
    from ibkr_ops.host import webhook  # noqa: PLC0415

    try:
        webhook.parse_webhook(value)
    except webhook.WebhookUrlError as exc:
        raise Invalid(exc.why) from None
    return value


# --- the settings, in credentials.env's order ---------------------------------------------------

REQUIRED_SECTION = "Required"
NOTIFY = "Optional: notifications"
API = "Optional: API"
SERVICE = "Optional: service"
RESTARTS = "Optional: restarts and logins"
HEALING = "Optional: self-healing"
SECTIONS = (REQUIRED_SECTION, NOTIFY, API, SERVICE, RESTARTS, HEALING)

USERNAME = Text(
    name="username", key="IBKR_USERNAME", default="", required=True, verbatim=True,
    help="IBKR login name", hint="your IBKR login name", valid=_username,
    section=REQUIRED_SECTION, example="",
    comment="Your IBKR login name (for paper trading: the paper account's login, or the live one).")
PASSWORD = Text(
    name="password", key="IBKR_PASSWORD", default="", required=True, verbatim=True, secret=True,
    help="IBKR password", hint="your IBKR password", section=REQUIRED_SECTION, example="",
    comment="Your IBKR password. It reaches IBC only through /etc/ibkr/config.ini (0600), never "
            "argv.")
TRADING_MODE = Choice(
    name="trading_mode", key="IBKR_TRADING_MODE", default="paper", required=True, host=True,
    option="mode", choices=TRADING_MODES, help="trading mode",
    section=REQUIRED_SECTION, example="paper",
    comment="paper or live. live trades real money: use `invoke go-live` to switch an installed "
            "host.")
TWS_MAJOR_VRSN = Text(
    name="tws_major_vrsn", key="TWS_MAJOR_VRSN", default="", required=True,
    help="Gateway major version", hint="digits, e.g. 1030 for Gateway 10.30.x",
    valid=_major_version, section=REQUIRED_SECTION, example="1030",
    comment="The Gateway's major version: the digits of its version without the dots after the "
            "first\npart, e.g. 1030 for 10.30.1t. It names /home/trader/Jts/ibgateway/<version>.")
GATEWAY_SHA256 = OptionalText(
    name="gateway_sha256", key="IBKR_GATEWAY_SHA256", default=None, valid=_sha256,
    help="the only Gateway installer hosts may receive",
    hint="the installer's sha256 (64 hex digits, as `sha256sum` prints it)",
    section=REQUIRED_SECTION, example="",
    comment="Optional: the sha256 of the one Gateway installer the hosts may receive (`sha256sum "
            "FILE`);\ninstall refuses any other before copying anything.")
GATEWAY_MIN_VERSION = OptionalText(
    name="gateway_min_version", key="IBKR_GATEWAY_MIN_VERSION", default=None, host=True,
    valid=_gateway_version, help="IBKR's minimum supported Gateway version, if newer than known",
    hint="a Gateway version, e.g. 10.30.1 or 1030", section=REQUIRED_SECTION, example="10.30.1",
    comment="Optional: IBKR's minimum supported Gateway version, when you have seen a newer "
            "notice than\nthis tool knows; below it the health check reports an error once a "
            "day. Default: the\nminimum from IBKR's notices as this tool knows them.")
DISCORD_WEBHOOK_URL = OptionalText(
    name="discord_webhook_url", key="DISCORD_WEBHOOK_URL", default=None, secret=True,
    help="Discord webhook for notifications", hint="https://discord.com/api/webhooks/ID/TOKEN",
    valid=_webhook, section=NOTIFY, example="https://discord.com/api/webhooks/ID/TOKEN",
    comment="A Discord webhook (Server settings > Integrations > Webhooks). https only; plain http "
            "only\nto a loopback relay. It contains a token: it stays in this file and /etc/ibkr "
            "(0600).")
# 1024 and up: the Gateway runs as the unprivileged service user, which cannot listen below.
API_PORT = Int(
    name="api_port", key="IBKR_API_PORT", default=API_PORTS["paper"], host=True,
    option="api_port", low=1024, high=65535, help="API port bots connect to",
    hint="a TCP port, {low}-{high}", default_text="4002 paper, 4001 live",
    section=API, example="4002",
    comment="Port bots connect to. Default 4002 for paper, 4001 for live.")
API_HOST = Text(
    name="api_host", key="IBKR_API_HOST", default="127.0.0.1", host=True, option="api_host",
    help="address the API listens at", hint="an IP address bots connect to, e.g. 127.0.0.1",
    valid=_ip, section=API,
    comment="Address the API is reached at on the host. Default 127.0.0.1: bots on the host or "
            "through\nan SSH tunnel. Anything else exposes the API to that network.")
READ_ONLY_API = Bool(
    name="read_only_api", key="IBKR_READ_ONLY_API", default=True, option="read_only_api",
    help="forbid orders through the API", hint="yes or no", section=API,
    comment="yes: bots can read but not place, modify or cancel orders. Set no to trade. "
            "Default yes.")
TRUSTED_IPS = List(
    name="trusted_ips", key="IBKR_TRUSTED_IPS", default=("127.0.0.1",), option="trusted_ips",
    separator=",", item=_ip, tidy=_loopback_first, help="addresses allowed to use the API",
    hint="comma-separated IP addresses", section=API,
    comment="Addresses allowed to connect to the API, comma-separated; must include 127.0.0.1.")
SERVICE_USER = Text(
    name="service_user", key="IBKR_SERVICE_USER", default="trader", host=True,
    option="service_user", help="Linux user the Gateway runs as",
    hint="a Linux user name, e.g. trader", valid=_service_user, section=SERVICE,
    comment="Linux user the Gateway runs as (created if missing). Default trader.")
# No task option: one install may take several files, and each names its own instance.
# On the host too: the tools name the instance in their notifications and metrics.
INSTANCE = OptionalText(
    name="instance", key="IBKR_INSTANCE", default=None, valid=_instance, host=True,
    help="the Gateway's instance name on its host",
    hint="the name of this Gateway on its host, e.g. paper or live", section=SERVICE,
    example="paper", default_text="the trading mode beside other Gateways, none alone",
    comment="The name of this Gateway on a host that runs several side by side (one credentials "
            "file\neach, e.g. paper and live): its units become ibkr-gateway@NAME.service. 1-32 "
            "lower-case\nletters, digits, '-' or '_'. Default: IBKR_TRADING_MODE when the install "
            "is given more than\none credentials file; none (the single-Gateway host) for one "
            "file alone. The daily restarts\nof a host's instances are staggered by 15 minutes "
            "by default (see IBKR_RESTART_TIME).")
RESTART_TIME = Text(
    name="restart_time", key="IBKR_RESTART_TIME", default="16:30", option="restart_time",
    help="daily restart time, Mon-Fri", hint="HH:MM, 24-hour", valid=_hhmm, section=RESTARTS,
    comment="Daily restart, Monday to Friday, in IBKR_TIMEZONE. Defaults 16:30 America/New_York\n"
            "(after the US close; follows daylight saving time). The Gateways of one host are\n"
            "staggered by 15 minutes by default (16:30, 16:45, ...) so that two logins never run "
            "at\nonce; set times less than 15 minutes from another Gateway's on the host are "
            "refused.")
TIMEZONE = Text(
    name="timezone", key="IBKR_TIMEZONE", default="America/New_York", option="timezone",
    help="time zone of the restart time", hint="an IANA zone, e.g. America/New_York",
    valid=_timezone, section=RESTARTS)
RESTART_MODE = Choice(
    name="restart_mode", key="IBKR_RESTART_MODE", default="auto", host=True,
    option="restart_mode", choices=("auto", "warm", "cold"),
    help="kind of the daily and automatic restarts", section=RESTARTS,
    comment="auto: warm restart (no new login) Mon-Fri, cold (new login, phone approval) on the "
            "first\nrestart after IBKR's Sunday 01:00 ET token reset. warm or cold force one kind. "
            "Default auto.")
BLACKOUT_WINDOWS = List(
    name="blackout_windows", key="IBKR_RESTART_BLACKOUTS", default=(), host=True,
    separator=";", item=_window, help="windows in which no restart may run",
    hint="';'-separated windows, e.g. 'Mon..Fri 16:00-16:20; Sun 17:00-18:00'",
    section=RESTARTS, example="Mon..Fri 16:00-16:20; Sun 17:00-18:00",
    comment="Extra windows in which no restart may run, ';'-separated, New York time (the "
            "regular\nsession 09:30-16:00 on NYSE trading days is always refused). An end before "
            "the start\nruns past midnight; '*' means every day:")
TWOFA_TIMEOUT_ACTION = Choice(
    name="twofa_timeout_action", key="IBKR_TWOFA_TIMEOUT_ACTION", default="exit", host=True,
    choices=("exit", "restart"), help="what IBC does when a second factor is not approved",
    section=RESTARTS,
    comment="When the second factor is not approved in time: exit (stay down, notify; default) "
            "or\nrestart (try again, which sends another phone prompt).")
EXISTING_SESSION_ACTION = Choice(
    name="existing_session_action", key="IBKR_EXISTING_SESSION_ACTION", default="primary",
    choices=("primary", "primaryoverride", "secondary", "manual"),
    help="what to do when another login to the account appears", section=RESTARTS,
    comment="When another login to the same account appears: primary (keep this Gateway; "
            "default),\nprimaryoverride (a new primary login wins), secondary (this Gateway gives "
            "way), manual.")
TWOFA_DEVICE = OptionalText(
    name="twofa_device", key="IBKR_TWOFA_DEVICE", default=None, valid=_device,
    help="second-factor device IBC picks",
    hint="the second-factor device's name exactly as the Gateway lists it, e.g. IB Key",
    section=RESTARTS, example="IB Key",
    comment="The second-factor device IBC picks when the Gateway asks which one to use (accounts "
            "with\nmore than one), spelt exactly as the Gateway lists it. Default: none, a person "
            "picks it\n(`invoke vnc --host HOST --interactive`).")
MEMORY_MAX_MB = Int(
    name="memory_max_mb", key="IBKR_MEMORY_MAX_MB", default=2048, option="memory_max_mb",
    low=768, high=65536, help="memory limit of the Gateway (systemd MemoryMax=)",
    hint="megabytes, at least {low}", section=SERVICE,
    comment="Memory limit of the Gateway (systemd MemoryMax=). MemoryHigh=, where the kernel "
            "starts\nto throttle it, is 3/4 of it and is the health check's ceiling: a warning "
            "from 85 % of\nthe ceiling, a restart above it (see IBKR_MEMORY_RESTART). Default 2048.")
# Not a setting of its own: MemoryHigh= and the watchdog's ceiling, from IBKR_MEMORY_MAX_MB.
MEMORY_CEILING_MB = Int(
    name="memory_ceiling_mb", default=memory_ceiling_mb(MEMORY_MAX_MB.default), host=True,
    derived=True, low=1, help="the watchdog's memory ceiling in MB: systemd MemoryHigh=, 3/4 of "
                               "IBKR_MEMORY_MAX_MB")
JAVA_HEAP_MB = Int(
    name="java_heap_mb", key="IBKR_JAVA_HEAP_MB", default=1024, low=512, high=65536,
    help="the Gateway's Java heap in MB",
    hint="megabytes, at least {low} and at most IBKR_MEMORY_MAX_MB minus " + str(NON_HEAP_MB),
    section=SERVICE,
    comment="The Gateway's Java heap (-Xmx in its ibgateway.vmoptions, set before every start; "
            "the\ninstaller's 768 is often too small). At least 512, and at least 256 below\n"
            "IBKR_MEMORY_MAX_MB for the JVM's memory outside the heap. Default 1024.")
COMMAND_SERVER_PORT = Int(
    name="command_server_port", key="IBKR_COMMAND_SERVER_PORT", default=7462, host=True,
    low=1024, high=65535, help="IBC command server port", hint="a TCP port, {low}-{high}",
    section=SERVICE,
    comment="IBC command server port on 127.0.0.1, used for warm restarts. Default 7462.")
# 0 is the API's master client, which also sees orders placed by hand: never the probe's.
HEALTH_CLIENT_ID = Int(
    name="health_client_id", key="IBKR_HEALTH_CLIENT_ID", default=999, host=True, low=1,
    high=2**31 - 1, help="API clientId of the health check",
    hint="an API clientId your bots never use ({low}-{high})", section=API,
    comment="The API clientId the health check uses; pick one your bots never use. Default 999.")
DISPLAY = Text(
    name="display", key="IBKR_DISPLAY", default=":1", host=True, valid=_display,
    help="virtual X display of the Gateway", hint="an X display such as :1 (not :0 on WSL)",
    section=SERVICE,
    comment="Virtual display for the Gateway's GUI. Default :1 (:0 belongs to WSLg on WSL).")
# 10 s and up: each check may take its own 10 s handshake timeout before the next one starts.
HEALTH_INTERVAL_S = Int(
    name="health_interval_s", key="IBKR_HEALTH_INTERVAL_S", default=30, host=True, low=10,
    high=3600, help="seconds between health checks",
    hint="seconds between health checks, {low}-{high}", section=HEALING,
    comment="Seconds between health checks (the timer that also heals). Default 30.")
HANG_RESTART_AFTER = Int(
    name="hang_restart_after", key="IBKR_HANG_RESTART_AFTER", default=3, host=True, low=1,
    high=60, help="failed API probes in a row before a restart",
    hint="failed API probes in a row (re-probed seconds apart) before a restart, {low}-{high}",
    section=HEALING,
    comment="Failed API probes in a row, with the Gateway process alive, before it is "
            "restarted: after\na failed check the same run probes again, seconds apart. Warm "
            "through IBC first, cold only\nif that does not bring the API back; a JVM whose IBC "
            "command server is silent too is frozen\nand is stopped at once instead. Default 3.")
MAX_RESTARTS_PER_HOUR = Int(
    name="max_restarts_per_hour", key="IBKR_MAX_RESTARTS_PER_HOUR", default=3, host=True,
    low=0, high=60, help="automatic restarts allowed per hour",
    hint="automatic restarts allowed per hour, {low}-{high} (0: never)", section=HEALING,
    comment="Automatic restarts (hung API, crash loop, memory) allowed per hour; past it the host "
            "is\nleft for a person, with an error notification. Default 3.")
MEMORY_RESTART = Choice(
    name="memory_restart", key="IBKR_MEMORY_RESTART", default="window", host=True,
    choices=("window", "force", "off"), help="restart above the memory ceiling",
    hint="window (outside the session), force (at once) or off", section=HEALING,
    comment="Above the memory ceiling: window (restart at the next moment the pre-restart check\n"
            "allows, never during the session; default), force (restart at once) or off.")
# IBKR's own downtime, New York time: the nightly reset and the weekend maintenance. A new
# login there can fail or lock the account, so re-logins wait for the end.
MAINTENANCE_WINDOWS = List(
    name="maintenance_windows", key="IBKR_MAINTENANCE_WINDOWS",
    default=("* 23:45-00:45", "Fri 23:00-03:00"), host=True, separator=";", item=_window,
    none_word="none", help="IBKR's own downtime windows",
    hint="';'-separated New York windows, e.g. '* 23:45-00:45; Fri 23:00-03:00', or none",
    section=HEALING,
    comment="IBKR's own downtime in New York time, ';'-separated: the nightly reset and the "
            "weekend\nmaintenance (IBKR's status page lists its windows). Inside one, outside "
            "trading hours, an\nunhealthy Gateway is reported once and re-logins (automatic or "
            "by the restart timer) wait\nfor its end; `invoke restart --force` still acts. none: "
            "no windows.")
BOT_IDLE_ALERT_MIN = Int(
    name="bot_idle_alert_min", key="IBKR_BOT_IDLE_ALERT_MIN", default=0, host=True, low=0,
    high=480, help="minutes without a bot before a warning",
    hint="minutes of the trading session without a bot connected before a warning, "
         "{low}-{high} (0: off)", section=HEALING,
    comment="Warn once when, in the regular session, the Gateway answers but no API client (your "
            "bot)\nhas been connected for this many minutes, and once when one is back. 0 "
            "(default): off.")

# Only the host tools have these (ops.json); the install writes their defaults.
HOST_ONLY: tuple[Setting[Any], ...] = (
    Float(host=True, name="health_timeout_s", default=10.0,
          help="seconds the API handshake and login of a health check may take"),
    Text(host=True, name="gateway_unit", default=LAYOUT.gateway_unit, help="the Gateway's systemd unit"),
    Text(host=True, name="display_unit", default=LAYOUT.display_unit, help="the display's systemd unit"),
    Float(host=True, name="memory_warn_ratio", default=0.85, high=1.0,
          help="share of the memory ceiling from which the health check warns"),
    Text(host=True, name="command_server_host", default="127.0.0.1", valid=_ip,
         help="address of IBC's command server"),
    Float(host=True, name="warm_restart_timeout_s", default=300.0,
          help="seconds a warm restart may take until the API answers"),
    Float(host=True, name="cold_restart_timeout_s", default=600.0,
          help="seconds a cold restart (new login) may take until the API answers"),
    Text(host=True, name="market_timezone", default="America/New_York", valid=_timezone,
         help="the market's time zone, of the session, blackout and maintenance windows"),
    Int(host=True, name="pre_open_guard_min", default=10, low=0, high=240,
        help="minutes before the open in which restarts are refused"),
    List(host=True, name="extra_holidays", default=(), separator=",", item=_day,
         help="ad-hoc NYSE closures (YYYY-MM-DD) that no rule predicts"),
    Float(host=True, name="notify_timeout_s", default=20.0, help="seconds a notification may take"),
    Float(host=True, name="login_stall_s", default=120.0,
          help="seconds without login progress before the window IBC saw is reported"),
    Int(host=True, name="crash_loop_crashes", default=5, low=1,
        help="automatic restarts by systemd within the window that make a crash loop"),
    Float(host=True, name="crash_loop_window_s", default=600.0, help="the crash loop's window in seconds"),
    Float(host=True, name="crash_backoff_s", default=300.0,
          help="first back-off in seconds after a crash loop (doubled each time, at most 1 h)"),
    Float(host=True, name="upstream_lost_fail_s", default=180.0,
          help="seconds the link to IBKR may be lost before it is an outage"),
    Text(host=True, name="metrics_file", default="",
         help="node_exporter textfile; empty: <state_dir>/metrics/ibkr_gateway.prom"),
    Text(host=True, name="hostname", default="", help="the name notifications give the host"),
    Text(host=True, name="state_dir", default=LAYOUT.state_dir, help="the host tools' state"),
    Text(host=True, name="log_dir", default=LAYOUT.log_dir, help="IBC's and the Gateway's logs"),
    Text(host=True, name="credentials_file", default=LAYOUT.credentials,
         help="the deployment's credentials.env"),
    Text(host=True, name="login_lock", default=LAYOUT.login_lock,
         help="the directory whose lock lets one Gateway of the host log in at a time"),
)

# credentials.env's settings, in the order the host's file lists them.
IN_FILE: tuple[Setting[Any], ...] = (
    USERNAME, PASSWORD, TRADING_MODE, TWS_MAJOR_VRSN, GATEWAY_SHA256, GATEWAY_MIN_VERSION,
    DISCORD_WEBHOOK_URL, API_PORT, API_HOST, READ_ONLY_API, TRUSTED_IPS, SERVICE_USER, INSTANCE,
    RESTART_TIME, TIMEZONE, RESTART_MODE, BLACKOUT_WINDOWS, TWOFA_TIMEOUT_ACTION, EXISTING_SESSION_ACTION,
    TWOFA_DEVICE, MEMORY_MAX_MB, JAVA_HEAP_MB, COMMAND_SERVER_PORT, HEALTH_CLIENT_ID, DISPLAY,
    HEALTH_INTERVAL_S, HANG_RESTART_AFTER, MAX_RESTARTS_PER_HOUR, MEMORY_RESTART,
    MAINTENANCE_WINDOWS, BOT_IDLE_ALERT_MIN,
)
SETTINGS: tuple[Setting[Any], ...] = (*IN_FILE, MEMORY_CEILING_MB, *HOST_ONLY)
BY_NAME = {s.name: s for s in SETTINGS}
BY_KEY = {s.key: s for s in IN_FILE}
KEYS = tuple(BY_KEY)
REQUIRED = tuple(s.key for s in IN_FILE if s.required)
SECRET_KEYS = tuple(s.key for s in IN_FILE if s.secret)
# What ops.json carries, which the host tools' HostConfig declares field by field.
HOST = tuple(s for s in SETTINGS if s.host)
# Task option → the setting it overrides (e.g. --api-port → IBKR_API_PORT).
OPTIONS = {s.option: s for s in IN_FILE if s.option}
