"""The simulator's settings: IBC's config.ini, the simulator's own knobs and its faults.

Sources, later ones winning: built-in defaults, ``<install dir>/sim.properties`` (written by
the simulated installer), ``IBKR_GATEWAY_SIM_*`` environment variables, then the command line
(or, under IBC, the ``-D`` properties and arguments ``ibcstart.sh`` passes to "java").
"""

from __future__ import annotations

import configparser
import dataclasses
import datetime as dt
import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable
from pathlib import Path

from .versions import GATEWAY_VERSION, server_version

# IBC's ErrorCodes as the shell sees them (value % 256).
EXIT_INI_MISSING = 1103 % 256
EXIT_INVALID_TRADING_MODE = 1104 % 256
EXIT_INVALID_SETTING = 1105 % 256
EXIT_LOGIN_DIALOG_TIMEOUT = 1112 % 256

FAULTS: dict[str, bool] = {
    # name -> takes a numeric value
    "hang": False,
    "slow-handshake": True,
    "crash-after": True,
    "reject-login": False,
    "twofa-timeout": False,
    "leak": True,
    "existing-session": False,
    "no-login-dialog": False,
    # A live Gateway whose logout after a TERM takes S seconds (the stop grace is for it).
    "slow-stop": True,
    # IBKR's side (sim/upstream.py): market and historical data farms broken; link lost.
    "farm-broken": False,
    "connectivity-lost": False,
}

ENV_PREFIX = "IBKR_GATEWAY_SIM_"
_FLOAT_KNOBS = ("login_delay", "second_factor_delay", "second_factor_timeout")
_TEXT_KNOBS = {"control_host": "control_host", "api_host": "host",
               "gateway_version": "gateway_version"}


class ConfigError(Exception):
    """A setting the simulator cannot run with; ``exit_code`` is what the process returns."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_fault(spec: str) -> tuple[str, float | None]:
    """``slow-handshake=2.5`` -> ("slow-handshake", 2.5); ``hang`` -> ("hang", None)."""
    name, sep, raw = spec.strip().partition("=")
    name = name.strip().lower()
    if name not in FAULTS:
        raise ConfigError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    if FAULTS[name]:
        if not sep:
            raise ConfigError(f"fault {name} needs a value: {name}=NUMBER")
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"fault {name}: {raw!r} is not a number") from None
        if value < 0:
            raise ConfigError(f"fault {name}: the value must not be negative")
        return name, value
    if sep:
        raise ConfigError(f"fault {name} takes no value")
    return name, None


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


def read_properties(path: Path) -> dict[str, str]:
    """IBC's config.ini as IBC reads it: ``Properties.load`` (see ``parse_properties``), then
    ``Settings.getString``'s trim. Raises ConfigError where IBC would stop."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(
            f'ini file "{path}" either does not exist, or is a directory.  quitting...',
            EXIT_INI_MISSING) from None
    except OSError as exc:
        raise ConfigError(f"cannot read ini file {path}: {exc.strerror}", EXIT_INI_MISSING) from None
    try:
        values = parse_properties(raw)
    except ValueError as exc:
        # Uncaught in IBC's DefaultSettings: the JVM ends with the exception, status 1.
        raise ConfigError(f'Exception in thread "main" java.lang.IllegalArgumentException: {exc}',
                          1) from None
    return {key: _java_trim(value) for key, value in values.items()}


def _java_trim(text: str) -> str:
    """``String.trim``: drops every character up to U+0020 at both ends."""
    return text.strip("".join(map(chr, range(0x21))))


_BLANKS = " \t\f"


def _logical_lines(text: str) -> list[str]:
    """``Properties.LineReader``: comments and blank lines dropped, continuations joined."""
    lines: list[str] = []
    buf: list[str] = []
    skip_white, appended, new_line, comment, backslash, skip_lf = True, False, True, False, \
        False, False
    for char in text:
        if skip_lf:
            skip_lf = False
            if char == "\n":
                continue
        if skip_white:
            if char in _BLANKS or (not appended and char in "\r\n"):
                continue
            skip_white = appended = False
        if new_line:
            new_line = False
            comment = char in "#!"
        if char not in "\r\n":
            buf.append(char)
            backslash = not backslash if char == "\\" else False
            continue
        if comment or not buf:
            comment, new_line, skip_white, buf = False, True, True, []
            continue
        if backslash:
            buf.pop()
            skip_white = appended = True
            backslash = False
            skip_lf = char == "\r"
            continue
        lines.append("".join(buf))
        buf, new_line, skip_white = [], True, True
    if buf and not comment:
        lines.append("".join(buf[:-1] if backslash else buf))
    return lines


def _unescape(text: str) -> str:
    """``Properties.loadConvert``; a bad ``\\uXXXX`` is the ValueError Java's load throws."""
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped == "u":
            digits = "".join(next(chars, "") for _ in range(4))
            if len(digits) < 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("Malformed \\uxxxx encoding.")
            out.append(chr(int(digits, 16)))
        else:
            out.append({"t": "\t", "r": "\r", "n": "\n", "f": "\f"}.get(escaped, escaped))
    # Surrogate pairs (an emoji as \\ud83d\\ude00) become the one character Java sees.
    return "".join(out).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def parse_properties(data: bytes) -> dict[str, str]:
    """``java.util.Properties.load(InputStream)``: ISO-8859-1, ``key=value``, ``key:value`` or
    ``key value``, ``#``/``!`` comments, backslash escapes and continuation lines."""
    values: dict[str, str] = {}
    for line in _logical_lines(data.decode("latin-1")):
        end, start, separator, backslash = len(line), len(line), False, False
        for index, char in enumerate(line):
            if char in "=:" and not backslash:
                start, separator = index + 1, True
                end = index
                break
            if char in _BLANKS and not backslash:
                start = end = index
                start += 1
                break
            backslash = not backslash if char == "\\" else False
        while start < len(line) and (line[start] in _BLANKS or
                                     (not separator and line[start] in "=:")):
            separator = separator or line[start] in "=:"
            start += 1
        values[_unescape(line[:end])] = _unescape(line[start:])
    return values


def _yes(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return True
    if lowered in ("no", "false"):
        return False
    return default


def _int(settings: dict[str, str], key: str, default: int) -> int:
    value = settings.get(key, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"invalid value for {key}: {value!r} is not a whole number",
                          EXIT_INVALID_SETTING) from None


_TIME_12H = re.compile(r"^(\d{1,2}):(\d{2}) ?([AaPp][Mm])$")


def parse_restart_time(value: str) -> dt.time | None:
    """IBC's ``hh:mm AM`` (AutoRestartTime); None when malformed (IBC only logs it)."""
    match = _TIME_12H.match(value.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if not (1 <= hour <= 12 and 0 <= minute <= 59):
        return None
    hour %= 12
    if match.group(3).lower() == "pm":
        hour += 12
    return dt.time(hour, minute)


def account_ids(login_id: str, mode: str, count: int = 1) -> list[str]:
    """Stable simulated account ids: ``DU…`` for paper, ``U…`` for live."""
    digest = hashlib.sha256(f"{login_id}/{mode}".encode()).hexdigest()
    base = int(digest[:12], 16) % 9_000_000 + 1_000_000
    prefix = "DU" if mode == "paper" else "U"
    return [f"{prefix}{base + i}" for i in range(count)]


def user_dir_name(login_id: str) -> str:
    """The per-user settings folder name the Gateway keeps under its settings directory."""
    digest = hashlib.sha256(login_id.encode()).digest()
    return "".join(chr(ord("a") + b % 26) for b in digest[:20])


def default_settings_dir() -> Path:
    """Where a stand-alone simulator keeps its settings (IBC passes ``-DjtsConfigDir``)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ibkr-gateway-sim"


@dataclasses.dataclass
class SimConfig:
    """Everything one simulated Gateway process needs."""

    port: int | None = None
    host: str = "127.0.0.1"
    # The Gateway's own API setting (jts.ini [IBGateway] TrustedIPs); loopback is always allowed.
    trusted_ips: tuple[str, ...] = ("127.0.0.1",)
    login_id: str = "simuser"
    password: str = ""
    trading_mode: str = "paper"
    accounts: list[str] = dataclasses.field(default_factory=list)
    read_only_api: bool = False
    command_server_port: int = 0
    control_from: list[str] = dataclasses.field(default_factory=list)
    bind_address: str = ""
    command_prompt: str = ""
    suppress_info: bool = True
    auto_restart_time: str = ""
    second_factor_timeout: float = 180.0
    relogin_after_2fa_timeout: bool = False
    login_dialog_timeout: float = 60.0
    existing_session_action: str = "manual"
    ini_path: Path | None = None
    # simulator knobs
    login_delay: float = 0.0
    second_factor: str = "auto"  # auto | manual | passkey | off
    second_factor_delay: float = 1.0
    restart_delay: float | None = None  # None: at the next minute, as IBC's RESTART does
    restart_mode: str = "inprocess"  # inprocess | exit (under ibcstart.sh)
    faults: dict[str, float | None] = dataclasses.field(default_factory=dict)
    gateway_version: str = GATEWAY_VERSION  # the release claimed; the API server version follows
    # IBKR's notice of a coming desupport, told to each API client at connect (message 2172).
    version_notice: str = ""
    server_version: int = dataclasses.field(default_factory=server_version)
    control_port: int = 0
    control_host: str = "127.0.0.1"
    settings_dir: Path = dataclasses.field(default_factory=default_settings_dir)
    logins_file: Path | None = None
    restart_dir: str | None = None  # -Drestart=<dir>: a warm start
    session_id: str = ""
    headless: bool = False
    heap_mb: int | None = None  # the JVM's -Xmx (under IBC, from ibgateway.vmoptions)
    ibc_mode: bool = False

    @property
    def api_port(self) -> int:
        if self.port is not None:
            return self.port
        return 4002 if self.trading_mode == "paper" else 4001

    @property
    def logins_path(self) -> Path:
        return self.logins_file or self.settings_dir / "ibkr-gateway-sim-logins.jsonl"

    @property
    def user_dir(self) -> Path:
        return self.settings_dir / user_dir_name(self.login_id)

    def apply_ini(self, path: Path) -> None:
        """Take the IBC settings the simulator honours from ``path``."""
        settings = read_properties(path)
        self.ini_path = path
        self.login_id = settings.get("IbLoginId", "") or self.login_id
        self.password = settings.get("IbPassword", "")
        mode = settings.get("TradingMode", "").lower()
        if mode:
            self.set_trading_mode(mode)
        port = _int(settings, "OverrideTwsApiPort", 0)
        if port:
            self.port = port
        self.read_only_api = _yes(settings.get("ReadOnlyApi"), self.read_only_api)
        self.command_server_port = _int(settings, "CommandServerPort", 0)
        self.control_from = [h.strip() for h in settings.get("ControlFrom", "").split(",")
                             if h.strip()]
        self.bind_address = settings.get("BindAddress", "")
        self.command_prompt = settings.get("CommandPrompt", "")
        self.suppress_info = _yes(settings.get("SuppressInfoMessages"), True)
        self.auto_restart_time = settings.get("AutoRestartTime", "")
        self.second_factor_timeout = float(_int(settings, "SecondFactorAuthenticationTimeout", 180))
        self.login_dialog_timeout = float(_int(settings, "LoginDialogDisplayTimeout", 60))
        # IBC 3.24's reloginPermitted(): this key, else the older ExitAfter… key, else no.
        relogin = (settings.get("ReloginAfterSecondFactorAuthenticationTimeout", "")
                   or settings.get("ExitAfterSecondFactorAuthenticationTimeout", ""))
        self.relogin_after_2fa_timeout = _yes(relogin, False)
        self.existing_session_action = (settings.get("ExistingSessionDetectedAction", "")
                                        or "manual").lower()

    def apply_jts_ini(self, path: Path) -> None:
        """The Gateway's own settings file: which API clients it trusts.

        Trusting only loopback keeps the API on 127.0.0.1; trusting other addresses makes it
        listen on every interface and turn away the rest, as the Gateway does.
        """
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            return  # the real Gateway rewrites a jts.ini it cannot read
        listed = parser.get("IBGateway", "TrustedIPs", fallback="")
        self.trusted_ips = tuple(dict.fromkeys(
            ["127.0.0.1", *(ip.strip() for ip in listed.split(",") if ip.strip())]))
        if self.host == "127.0.0.1" and any(not _loopback(ip) for ip in self.trusted_ips):
            self.host = "0.0.0.0"  # noqa: S104 - the Gateway listens everywhere, trusts few

    def is_trusted(self, peer: str) -> bool:
        """Whether an API client at ``peer`` may connect."""
        return _loopback(peer) or peer in self.trusted_ips

    def set_trading_mode(self, mode: str) -> None:
        if mode.lower() not in ("live", "paper"):
            raise ConfigError(f"Invalid Trading Mode argument or .ini file setting: {mode}",
                              EXIT_INVALID_TRADING_MODE)
        self.trading_mode = mode.lower()

    def apply_sim_properties(self, path: Path) -> None:
        """``key=value`` simulator defaults the simulated installer wrote (none: no file)."""
        if not path.is_file():
            return
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.strip().startswith("#"):
                self.apply_knob(key.strip(), value.strip())

    def apply_env(self, env: dict[str, str] | os._Environ[str]) -> None:
        """``IBKR_GATEWAY_SIM_*`` variables (they pass through IBC's scripts to "java")."""
        for key, raw in env.items():
            if key.startswith(ENV_PREFIX):
                self.apply_knob(key[len(ENV_PREFIX):].lower(), raw)

    def apply_knob(self, name: str, raw: str) -> None:
        """One simulator setting by name (environment, sim.properties)."""
        name = name.replace("-", "_")
        try:
            if name in _FLOAT_KNOBS:
                setattr(self, name, float(raw))
            elif name == "restart_delay":
                self.restart_delay = float(raw) if raw.strip() else None
            elif name == "second_factor":
                self.set_second_factor(raw)
            elif name == "faults":
                self.add_faults(filter(str.strip, raw.split(",")))
            elif name == "control_port":
                self.control_port = int(raw)
            elif name in _TEXT_KNOBS:
                setattr(self, _TEXT_KNOBS[name], raw)
            elif name == "logins":
                self.logins_file = Path(raw) if raw else None
            elif name == "accounts":
                self.set_accounts(raw)
        except ValueError:
            raise ConfigError(f"simulator setting {name}: bad value {raw!r}") from None

    def set_accounts(self, text: str) -> None:
        """Comma-separated account ids, as every source spells them."""
        self.accounts = [a.strip() for a in text.split(",") if a.strip()]

    def add_faults(self, specs: Iterable[str]) -> None:
        """Faults on from the start, each ``NAME[=VALUE]``; ConfigError names a bad one."""
        for spec in specs:
            name, value = parse_fault(spec)
            self.faults[name] = value

    def set_second_factor(self, raw: str) -> None:
        value = raw.strip().lower()
        # passkey: the stand-in's dialog has an Approve button; here it waits like manual.
        if value not in ("auto", "manual", "passkey", "off"):
            raise ConfigError(f"second factor must be auto, manual, passkey or off, not {raw!r}")
        self.second_factor = value

    def finish(self) -> None:
        """Fill the derived values once every source has been applied."""
        if not self.accounts:
            self.accounts = account_ids(self.login_id, self.trading_mode)
        try:
            self.server_version = server_version(self.gateway_version)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not (0 < self.api_port < 65536):
            raise ConfigError(f"API port {self.api_port} is out of range")
        if self.command_server_port and self.command_server_port == self.api_port:
            raise ConfigError("CommandServerPort must not be the API port", EXIT_INVALID_SETTING)
