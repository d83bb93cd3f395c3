"""Every path, unit and timer the product puts on a host, named in one place.

Both sides read it: the operator side renders and installs these names, the host tools find
their settings, state and units by them. So it ships in the host tools zip and imports the
standard library only (plain strings, no pathlib: the health check starts often).

``Layout()`` is today's single-Gateway host, name for name. ``Layout("paper")`` is the seam
for Gateways side by side on one host: its units are systemd instances
(``ibkr-gateway@paper.service``), its files live one level down (``/etc/ibkr/paper/``,
``/var/lib/ibkr-ops/paper/``, ``/var/log/ibkr/paper/``) and its Gateway settings in
``~/Jts-paper``; what every Gateway shares (IBC, the Gateway installation, the host tools)
keeps one place. The default layout's own names are left exactly as they are, so a host
installed before instances existed stays valid as the default instance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

UNIT_DIR: Final = "/etc/systemd/system"
# The settings of every Gateway of a host: the default's files here, an instance's one level
# down. The host tools list a host's instances from it (``host/installed.py``).
CONFIG_ROOT: Final = "/etc/ibkr"
# The host tools' state, likewise; what the Gateways of a host share sits here too.
STATE_ROOT: Final = "/var/lib/ibkr-ops"
BIN_DIR: Final = "/usr/local/bin"
LIB_DIR: Final = "/usr/local/lib/ibkr-ops"
TOOLS_ZIP: Final = f"{LIB_DIR}/ibkr_ops.zip"
IBC_DIR: Final = "/opt/ibc"
# What an installed IBC or Gateway directory records about its source, to skip a re-install.
SOURCE_MARKER: Final = ".ibkr-ops-source"

# The host tools (`/usr/local/bin` shims over ``ibkr_ops.host``): one set for every instance.
HEALTH_CHECK: Final = "ibkr-health-check"
NOTIFY: Final = "ibkr-notify"
RESTART: Final = "ibkr-gateway-restart"
PRE_RESTART: Final = "ibkr-pre-restart-check"
PREPARE: Final = "ibkr-gateway-prepare"
LOGIN_WATCH: Final = "ibkr-login-watch"
SCREENSHOT: Final = "ibkr-screenshot"
VNC_SERVER: Final = "ibkr-vnc-server"
TOOLS: Final = (HEALTH_CHECK, NOTIFY, RESTART, PRE_RESTART, PREPARE, LOGIN_WATCH, SCREENSHOT,
                VNC_SERVER)

# The units of one Gateway as the single-instance host names them; each is also the stem of
# its template (`<name>.j2`), whatever an instance calls it.
DISPLAY_UNIT: Final = "xvfb.service"
GATEWAY_UNIT: Final = "ibkr-gateway.service"
RESTART_SERVICE: Final = "ibkr-gateway-restart.service"
RESTART_TIMER: Final = "ibkr-gateway-restart.timer"
HEALTH_SERVICE: Final = "ibkr-health-check.service"
HEALTH_TIMER: Final = "ibkr-health-check.timer"
WATCH_UNIT: Final = "ibkr-login-watch.service"
UNITS: Final = (DISPLAY_UNIT, GATEWAY_UNIT, RESTART_SERVICE, RESTART_TIMER, HEALTH_SERVICE,
                HEALTH_TIMER, WATCH_UNIT)
# What `systemctl enable` acts on; the two oneshot services are started by their timers.
ENABLED_UNITS: Final = (DISPLAY_UNIT, GATEWAY_UNIT, RESTART_TIMER, HEALTH_TIMER, WATCH_UNIT)

# Lower case, no dots or "@": valid in a unit's instance part and in a directory name, and
# never mistaken for a file the default layout keeps in the same directory.
_INSTANCE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Directories the default layout keeps where an instance's directory would go.
_RESERVED = ("backup", "metrics")


def check_instance(name: str) -> str:
    """An instance name as units and directories can carry it, or ValueError saying why not."""
    if not _INSTANCE.fullmatch(name):
        raise ValueError(f"instance name {name!r}: use 1-32 lower-case letters, digits, '-' or "
                         "'_', starting with a letter (e.g. paper, live)")
    if name in _RESERVED:
        raise ValueError(f"instance name {name!r} is taken by the host's own "
                         f"{name} directory; choose another")
    return name


@dataclass(frozen=True)
class Layout:
    """One Gateway's names on a host; ``instance=None`` is the single-Gateway host."""

    instance: str | None = None

    def __post_init__(self) -> None:
        if self.instance is not None:
            check_instance(self.instance)

    def _below(self, directory: str) -> str:
        return directory if self.instance is None else f"{directory}/{self.instance}"

    @property
    def _suffix(self) -> str:
        """What a file name shared with other Gateways carries of this one (``-paper``)."""
        return "" if self.instance is None else f"-{self.instance}"

    @property
    def instance_args(self) -> str:
        """What a unit passes a host tool so it acts on this Gateway: `` --instance NAME``, or
        nothing for the single-Gateway host (whose units stay as they were installed)."""
        return "" if self.instance is None else f" --instance {self.instance}"

    def unit(self, name: str) -> str:
        """This instance's name for one of ``UNITS`` (``ibkr-gateway@paper.service``)."""
        if self.instance is None:
            return name
        stem, _, kind = name.rpartition(".")
        return f"{stem}@{self.instance}.{kind}"

    # Settings (root's, mode 0755 directory) ---------------------------------------------------
    @property
    def config_dir(self) -> str:
        return self._below(CONFIG_ROOT)

    @property
    def credentials(self) -> str:
        """Every setting and both secrets (0600 root): the deployment as it stands."""
        return f"{self.config_dir}/credentials.env"

    @property
    def config_ini(self) -> str:
        """IBC's settings, the password among them (0600, the service user's)."""
        return f"{self.config_dir}/config.ini"

    @property
    def ops_json(self) -> str:
        """The host tools' settings (0644, no secrets)."""
        return f"{self.config_dir}/ops.json"

    @property
    def backup_dir(self) -> str:
        """Where go-live and migrate keep copies of the settings (0700 root)."""
        return f"{self.config_dir}/backup"

    @property
    def needrestart_conf(self) -> str:
        """needrestart's override that keeps apt from restarting the display or Gateway."""
        return f"/etc/needrestart/conf.d/ibkr-ops{self._suffix}.conf"

    # State and logs ---------------------------------------------------------------------------
    @property
    def state_dir(self) -> str:
        """The host tools' state: watchdog, restart history, login."""
        return self._below(STATE_ROOT)

    @property
    def metrics_dir(self) -> str:
        """node_exporter's textfile directory: one for every Gateway of a host, since the
        collector reads one directory (each instance writes a file of its own in it)."""
        return f"{STATE_ROOT}/metrics"

    @property
    def metrics_file(self) -> str:
        """This Gateway's Prometheus text file (``ibkr_gateway-paper.prom``)."""
        return f"{self.metrics_dir}/ibkr_gateway{self._suffix}.prom"

    @property
    def writable_state(self) -> tuple[str, ...]:
        """What the health check's unit writes besides the logs: its state, and an
        instance's metrics file, which lives outside it (the default's is inside)."""
        return (self.state_dir,) if self.instance is None else (self.state_dir, self.metrics_dir)

    @property
    def login_lock(self) -> str:
        """The directory whose flock(2) lets one Gateway of the host log in at a time. A
        directory every layout has, opened read-only: so a sandboxed unit that cannot write
        it (ProtectSystem=strict) can still take the lock."""
        return STATE_ROOT

    @staticmethod
    def added_record() -> str:
        """What the install added to the host (packages, the service user), host-wide: what
        `uninstall --purge` takes away. A dot in its name, so no instance's directory."""
        return f"{STATE_ROOT}/added.list"

    @property
    def log_dir(self) -> str:
        """The Gateway's and IBC's log files (the service user's)."""
        return self._below("/var/log/ibkr")

    # The service user's home ------------------------------------------------------------------
    @staticmethod
    def home(service_user: str) -> str:
        """Where `useradd --create-home` puts the service user's home."""
        return f"/home/{service_user}"

    @staticmethod
    def tws_dir(home: str) -> str:
        """The Gateway's installation root (IBC's --tws-path), shared by every instance."""
        return f"{home}/Jts"

    @staticmethod
    def gateway_builds(home: str) -> str:
        """IBC's ``ibgateway/<major>`` paths: links into ``builds_dir`` (and, on a host
        installed before builds were kept, its build itself)."""
        return f"{home}/Jts/ibgateway"

    @staticmethod
    def gateway_dir(home: str, major_version: str) -> str:
        """Where IBC finds the Gateway of a major version: a link to the build it runs (in
        ``builds_dir``), or that build itself on a host installed before builds were kept."""
        return f"{Layout.gateway_builds(home)}/{major_version}"

    @staticmethod
    def builds_dir(home: str) -> str:
        """Every installed Gateway build side by side, each in a directory of its version;
        ``gateway_dir`` is a link to the one that build's major version runs (IBC finds the
        Gateway as ``<tws-path>/ibgateway/<major>``, so the unit never names a build)."""
        return f"{home}/Jts/builds"

    @staticmethod
    def build_dir(home: str, version: str) -> str:
        """One installed build (``10.30.1``), installed there by its own installer and never
        moved afterwards: install4j writes absolute paths into it."""
        return f"{home}/Jts/builds/{version}"

    @staticmethod
    def build_history(home: str) -> str:
        """The builds the Gateway switched to, oldest first (``<unix time> <version>``)."""
        return f"{home}/Jts/builds/.ibkr-ops-history"

    def settings_dir(self, home: str) -> str:
        """The Gateway's own settings and jts.ini (IBC's --tws-settings-path)."""
        return f"{home}/Jts" if self.instance is None else f"{home}/Jts-{self.instance}"

    # Units --------------------------------------------------------------------------------------
    @property
    def display_unit(self) -> str:
        return self.unit(DISPLAY_UNIT)

    @property
    def gateway_unit(self) -> str:
        return self.unit(GATEWAY_UNIT)

    @property
    def restart_service(self) -> str:
        return self.unit(RESTART_SERVICE)

    @property
    def restart_timer(self) -> str:
        return self.unit(RESTART_TIMER)

    @property
    def health_service(self) -> str:
        return self.unit(HEALTH_SERVICE)

    @property
    def health_timer(self) -> str:
        return self.unit(HEALTH_TIMER)

    @property
    def watch_unit(self) -> str:
        return self.unit(WATCH_UNIT)

    @property
    def units(self) -> tuple[str, ...]:
        """Every unit of this Gateway, in the order of ``UNITS``."""
        return tuple(self.unit(u) for u in UNITS)

    @property
    def enabled_units(self) -> tuple[str, ...]:
        return tuple(self.unit(u) for u in ENABLED_UNITS)

    @property
    def journal_units(self) -> tuple[str, ...]:
        """The services whose journal tells this Gateway's story (`invoke logs`)."""
        return tuple(self.unit(u) for u in UNITS if u.endswith(".service"))

    @staticmethod
    def unit_path(unit: str) -> str:
        return f"{UNIT_DIR}/{unit}"

    @property
    def dropin_name(self) -> str:
        """The drop-in a user's bot service gets, to start after this Gateway is healthy."""
        return f"ibkr-gateway{self._suffix}.conf"

    def dropin_path(self, service: str) -> str:
        return f"{UNIT_DIR}/{service}.d/{self.dropin_name}"

    # Host-wide ----------------------------------------------------------------------------------
    @staticmethod
    def tool(name: str) -> str:
        """Where one of ``TOOLS`` is installed."""
        return f"{BIN_DIR}/{name}"

    @property
    def health_check_tool(self) -> str:
        return self.tool(HEALTH_CHECK)

    @property
    def notify_tool(self) -> str:
        return self.tool(NOTIFY)

    @property
    def restart_tool(self) -> str:
        return self.tool(RESTART)

    @property
    def pre_restart_tool(self) -> str:
        return self.tool(PRE_RESTART)

    @property
    def prepare_tool(self) -> str:
        return self.tool(PREPARE)

    @property
    def login_watch_tool(self) -> str:
        return self.tool(LOGIN_WATCH)

    @property
    def ibc_dir(self) -> str:
        """IBC, unpacked from its release zip: one for every instance."""
        return IBC_DIR

    @property
    def tools_zip(self) -> str:
        """The host tools' package (``ibkr_ops.host`` and this module), one for every instance."""
        return TOOLS_ZIP

    @property
    def root_dirs(self) -> tuple[str, ...]:
        """Directories root owns (mode 0755) that the install makes before any file."""
        own = (self.config_dir, self.state_dir, LIB_DIR)
        return own if self.instance is None else (*own, self.metrics_dir)

    def user_dirs(self, home: str) -> tuple[str, ...]:
        """Directories the service user owns (mode 0750): its logs and Gateway settings."""
        return (self.log_dir, self.settings_dir(home))

    @staticmethod
    def source_marker(directory: str) -> str:
        return f"{directory}/{SOURCE_MARKER}"


DEFAULT: Final = Layout()
