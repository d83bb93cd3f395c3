"""What a host is and has, gathered in one SSH round trip and parsed without a connection.

The script is plain POSIX sh (a bare server may lack everything else) and prints one
``KEY value`` line per fact; ``parse_facts`` is pure, so the plan can be tested on text.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ibkr_ops import packages
from ibkr_ops.errors import OpsError
from ibkr_ops.gateway_installer import PROVENANCE_FILE, parse_provenance, supported_arch
from ibkr_ops.host import schema
from ibkr_ops.layout import CONFIG_ROOT, DEFAULT, Layout
from ibkr_ops.remote.gateways import layout_name

MIN_MEMORY_MB = 2048
WARN_MEMORY_MB = 4096
MIN_DISK_MB = 1024
WSL_SYSTEMD_FIX = ("add to /etc/wsl.conf:  [boot]  systemd=true  then run `wsl.exe --shutdown` "
                   "in Windows and open the distribution again")

_SCRIPT = r"""
echo "ARCH $(uname -m)"
if [ -d /run/systemd/system ]; then echo "SYSTEMD 1"; else echo "SYSTEMD 0"; fi
echo "KERNEL $(cat /proc/sys/kernel/osrelease 2>/dev/null)"
. /etc/os-release 2>/dev/null && echo "OS $ID $VERSION_ID"
echo "MEM_KB $(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "DISK_KB $(df -Pk / | awk 'NR==2 {print $4}')"
echo "UID $(id -u)"
echo "PRIV $PRIV"
echo "PYTHON $(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
for p in $PACKAGES; do
  s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
  case "$s" in *" installed") echo "PKG $p 1";; *) echo "PKG $p 0";; esac
done
id -u "$SERVICE_USER" >/dev/null 2>&1 && echo "USER 1" || echo "USER 0"
for f in $FILES; do
  [ -f "$f" ] && echo "SUM $f $(sha256sum "$f" | cut -d' ' -f1)"
done
[ -f "$IBC_MARKER" ] && echo "IBC $(cat "$IBC_MARKER")"
if [ -f "$OPS_JSON" ]; then
  python3 -c "$MODE_PROBE" "$TOOLS_ZIP" "$OPS_JSON" 2>/dev/null || echo "MODE unknown"
fi
if [ -d "$GATEWAY_DIR/jars" ]; then
  echo "GATEWAY $(cat "$GATEWAY_MARKER" 2>/dev/null || echo unknown)"
  [ -f "$GATEWAY_DIR/$PROVENANCE" ] && echo "BUILD $(cat "$GATEWAY_DIR/$PROVENANCE")"
fi
for u in $UNITS; do
  e=$(systemctl is-enabled "$u" 2>/dev/null); a=$(systemctl is-active "$u" 2>/dev/null)
  echo "UNIT $u ${e:-none} ${a:-none}"
done
echo "MAINPID $(systemctl show -p MainPID --value "$GATEWAY_UNIT" 2>/dev/null)"
for f in "$CONFIG_ROOT/$OPS_NAME" "$CONFIG_ROOT"/*/"$OPS_NAME"; do
  [ -f "$f" ] || continue
  d=${f%/*}; n=${d#"$CONFIG_ROOT"}; n=${n#/}; n=${n:--}
  m=$(python3 -c "$MODE_PROBE" "$TOOLS_ZIP" "$f" 2>/dev/null); m=${m#MODE }
  echo "LAYOUT $n ${m:-unknown}"
  c="$d/$CREDENTIALS_NAME"
  if [ -f "$c" ]; then python3 -c "$ENV_PROBE" "$TOOLS_ZIP" "$n" "$c" $ENV_KEYS 2>/dev/null; fi
done
true
"""


# The installed mode as the host tools read it (HostConfig, checked by the settings schema),
# with the tools that wrote it: no second parser of ops.json.
MODE_PROBE = ("import sys; sys.path.insert(0, sys.argv[1]); "
              "from ibkr_ops.host.config import HostConfig; "
              "print('MODE', HostConfig.load(sys.argv[2]).trading_mode)")


# Of each Gateway installed on the host: the login (for a migration to instances, and an
# account no second instance may log in to), the daily restart (for the stagger), what it
# holds that another instance may not (its ports and display) and its MemoryMax= (for the
# host's memory), read with the host's own parser of credentials.env. Never the password:
# only these keys are printed, each a word (the schema refuses blanks in them).
ENV_KEYS = (schema.USERNAME.key, schema.RESTART_TIME.key, schema.TIMEZONE.key,
            schema.API_PORT.key, schema.COMMAND_SERVER_PORT.key, schema.DISPLAY.key,
            schema.MEMORY_MAX_MB.key)
ENV_PROBE = ("import sys, pathlib; sys.path.insert(0, sys.argv[1]); "
             "from ibkr_ops.host.envfile import read_env_file; "
             "v = read_env_file(pathlib.Path(sys.argv[3])); "
             "print('LENV', sys.argv[2], *(v.get(k) or '-' for k in sys.argv[4:]))")


def facts_command(files: Iterable[str], units: Iterable[str], service_user: str,
                  gateway_dir: str, layout: Layout = DEFAULT) -> str:
    """The one shell command that prints every fact (run as root, or with sudo when allowed)."""
    env = {
        "PACKAGES": " ".join(packages.every_name()),
        "FILES": " ".join(files),
        "UNITS": " ".join(units),
        "SERVICE_USER": service_user,
        "GATEWAY_DIR": gateway_dir,
        "GATEWAY_MARKER": layout.source_marker(gateway_dir),
        "IBC_MARKER": layout.source_marker(layout.ibc_dir),
        "OPS_JSON": layout.ops_json,
        "GATEWAY_UNIT": layout.gateway_unit,
        "TOOLS_ZIP": layout.tools_zip,
        "MODE_PROBE": MODE_PROBE,
        "PROVENANCE": PROVENANCE_FILE,
        # Where the default layout and every instance keep their settings (/etc/ibkr/NAME).
        "CONFIG_ROOT": CONFIG_ROOT,
        "OPS_NAME": DEFAULT.ops_json.rsplit("/", 1)[1],
        "CREDENTIALS_NAME": DEFAULT.credentials.rsplit("/", 1)[1],
        "ENV_PROBE": ENV_PROBE,
        "ENV_KEYS": " ".join(ENV_KEYS),
    }
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    body = shlex.quote(_SCRIPT)
    return (f"if [ \"$(id -u)\" = 0 ]; then env PRIV=root {assigns} sh -c {body}; "
            f"elif sudo -n true 2>/dev/null; then sudo -n env PRIV=sudo {assigns} sh -c {body}; "
            f"else env PRIV=none {assigns} sh -c {body}; fi")


@dataclass
class Installed:
    """One Gateway the host has installed, default layout or instance."""

    trading_mode: str = "unknown"
    username: str | None = None
    restart: tuple[str, str] | None = None  # (HH:MM, zone)
    # None where its credentials.env does not say (then nothing is compared with it).
    api_port: int | None = None
    command_server_port: int | None = None
    display: str | None = None
    memory_max_mb: int | None = None


@dataclass
class Facts:
    """A host as ``facts_command`` saw it."""

    arch: str = ""
    systemd: bool = False
    kernel: str = ""
    os: str = ""
    memory_mb: int = 0
    disk_mb: int = 0
    uid: int = -1
    privilege: str = "none"
    python: str = ""
    packages: dict[str, bool] = field(default_factory=dict)
    user_exists: bool = False
    checksums: dict[str, str] = field(default_factory=dict)
    ibc_source: str | None = None
    gateway_source: str | None = None
    # The installed build's sha256, version, channel, arch (none on hosts installed before).
    gateway_build: dict[str, str] = field(default_factory=dict)
    units: dict[str, tuple[str, str]] = field(default_factory=dict)
    gateway_pid: int = 0
    # Of the deployment installed now: None when there is none, "unknown" when its settings
    # do not read (then it is not known to be paper, nor live).
    trading_mode: str | None = None
    # Every Gateway installed on the host, by instance name (None: the default layout).
    installed: dict[str | None, Installed] = field(default_factory=dict)

    @property
    def instances(self) -> list[str]:
        """The host's named Gateway instances, sorted."""
        return sorted(n for n in self.installed if n is not None)

    @property
    def single_layout(self) -> bool:
        """The host has today's single-Gateway layout (/etc/ibkr/ops.json)."""
        return None in self.installed

    @property
    def is_wsl(self) -> bool:
        return "microsoft" in self.kernel.lower() or "wsl" in self.kernel.lower()

    @property
    def required_packages(self) -> tuple[str, ...]:
        """What this host needs, under its release's package names."""
        os_id, _, version = self.os.partition(" ")
        return packages.required_packages(os_id, version)

    @property
    def missing_packages(self) -> list[str]:
        return [p for p in self.required_packages if not self.packages.get(p, False)]


def _int(value: str) -> int:
    return int(value) if value.isdigit() else 0


_SCALARS: dict[str, tuple[str, Callable[[str], object]]] = {
    "ARCH": ("arch", str),
    "SYSTEMD": ("systemd", lambda v: v == "1"),
    "KERNEL": ("kernel", str),
    "OS": ("os", str),
    "MEM_KB": ("memory_mb", lambda v: _int(v) // 1024),
    "DISK_KB": ("disk_mb", lambda v: _int(v) // 1024),
    "UID": ("uid", _int),
    "PRIV": ("privilege", str),
    "PYTHON": ("python", str),
    "USER": ("user_exists", lambda v: v == "1"),
    "IBC": ("ibc_source", str),
    "GATEWAY": ("gateway_source", str),
    "MAINPID": ("gateway_pid", _int),
    "MODE": ("trading_mode", str),
}


def parse_facts(text: str) -> Facts:
    """Parse the script's output; unknown lines are ignored so old hosts stay readable."""
    f = Facts()
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        rest = rest.strip()
        parts = rest.split()
        if key in _SCALARS:
            attr, convert = _SCALARS[key]
            setattr(f, attr, convert(rest))
        elif key == "PKG" and len(parts) == 2:
            f.packages[parts[0]] = parts[1] == "1"
        elif key == "SUM" and len(parts) == 2:
            f.checksums[parts[0]] = parts[1]
        elif key == "BUILD":
            f.gateway_build = parse_provenance(rest)
        elif key == "UNIT" and len(parts) == 3:
            f.units[parts[0]] = (parts[1], parts[2])
        elif key == "LAYOUT" and len(parts) == 2 and (name := layout_name(parts[0])) != "":
            f.installed[name] = Installed(trading_mode=parts[1])
        elif (key == "LENV" and len(parts) == 1 + len(ENV_KEYS)
              and (name := layout_name(parts[0])) in f.installed):
            _read_env(f.installed[name], parts[1:])
    return f


def _read_env(found: Installed, values: list[str]) -> None:
    """One Gateway's ``ENV_KEYS`` values, in that order ('-': its file does not say)."""
    user, time, zone, api, command, display, memory = (None if v == "-" else v for v in values)
    found.username, found.display = user, display
    found.restart = (time, zone) if time and zone else None
    found.api_port, found.command_server_port, found.memory_max_mb = (
        int(v) if v and v.isdigit() else None for v in (api, command, memory))


def preflight(f: Facts) -> list[str]:
    """Refuse hosts the stack cannot run on (OpsError); return warnings for the report."""
    if not supported_arch(f.arch):
        raise OpsError(f"architecture {f.arch or 'unknown'} is not supported: IB Gateway is "
                       "built for x86_64 and aarch64 only; use such a server")
    if not f.systemd:
        if f.is_wsl:
            raise OpsError(f"WSL without systemd: {WSL_SYSTEMD_FIX}")
        raise OpsError("systemd is not running as PID 1 (no /run/systemd/system); use a host "
                       "booted with systemd")
    if f.privilege == "none":
        raise OpsError(f"user (uid {f.uid}) is neither root nor allowed passwordless sudo; "
                       "connect as root or add a NOPASSWD sudoers rule")
    if f.memory_mb < MIN_MEMORY_MB:
        raise OpsError(f"{f.memory_mb} MB of RAM; the Gateway needs at least {MIN_MEMORY_MB} MB")
    if f.disk_mb < MIN_DISK_MB:
        raise OpsError(f"only {f.disk_mb} MB free on /; free at least {MIN_DISK_MB} MB")
    if not f.packages:
        raise OpsError("no dpkg on this host: only Debian 12 and Ubuntu 24.04 are supported")
    if not f.python and f.packages.get("python3", False):
        raise OpsError("python3 is installed but does not run; repair it "
                       "(apt-get install --reinstall python3)")
    warnings = []
    if f.memory_mb < WARN_MEMORY_MB:
        warnings.append(f"{f.memory_mb} MB of RAM: below {WARN_MEMORY_MB} MB the Gateway may run "
                        "short during the day")
    if f.is_wsl:
        warnings.append("WSL: timers do not fire while Windows sleeps or the distribution is "
                        "stopped; see the README's WSL section")
    return warnings
