"""Layered health check of the Gateway: service, display, process, port, API, upstream, memory.

Each layer answers one question and reports ok/warn/fail/skip with its time, so a failure
names the layer at fault. The `api` layer is the one a port check cannot replace: a
Gateway can accept TCP and still never answer, which strands a trading bot. The `upstream`
layer reads what the Gateway said about IBKR's side at connect: a broken data farm or a
lost connection to IBKR leaves a bot "connected but with no data".

On a host that runs several Gateway instances and a run that names none, every instance is
checked, and ``--json`` prints one object around their reports (``combined``)::

    {"healthy": <every instance healthy>,
     "instances": [{"instance": "live", <that instance's usual report: "healthy", "checks",
                    "server_version", "accounts", "elapsed_ms">}, ...]}

in the order of their names. One Gateway (the single-Gateway host, or ``--instance NAME``)
prints its usual report alone, exactly as before instances existed.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ibkr_ops.errors import OpsError
from ibkr_ops.host import ibapi, proc, systemd, upstream
from ibkr_ops.host.config import HostConfig

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
LAYERS = ("service", "display", "process", "port", "api", "upstream", "memory")
_MB = 1024 * 1024


@dataclass(frozen=True)
class Check:
    """One layer's verdict."""

    name: str
    status: str
    detail: str
    ms: float


@dataclass(frozen=True)
class Report:
    """All layers of one run, plus what the API probe learned."""

    checks: tuple[Check, ...]
    elapsed_ms: float
    server_version: int | None = None
    accounts: tuple[str, ...] = ()
    # The Gateway's resident memory, for the metrics file (None: no process to measure).
    rss_mb: float | None = None
    # The Gateway's unit as this run saw it (None off systemd): the watchdog's crash counter.
    gateway_unit: systemd.UnitState | None = None
    # IBKR's side as the Gateway reported it (None when the API did not answer).
    link: upstream.Link | None = None
    # API clients (bots) connected when the check ended; None when the API did not answer or
    # is on another machine.
    api_clients: int | None = None
    # IBKR's notice of a coming desupport as the Gateway told it at connect (API code 2172).
    version_notice: str = ""

    @property
    def healthy(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def status(self) -> str:
        """Overall: fail if any layer failed, else warn if any warned, else ok."""
        statuses = {c.status for c in self.checks}
        return FAIL if FAIL in statuses else WARN if WARN in statuses else OK

    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status in (FAIL, WARN)]

    def failures(self) -> str:
        """The failing layers with their details, on one line ("" when none fails)."""
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if c.status == FAIL)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object of the command-line contract."""
        return {
            "healthy": self.healthy,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail,
                        "ms": round(c.ms, 1)} for c in self.checks],
            "server_version": self.server_version,
            "accounts": list(self.accounts),
            "elapsed_ms": round(self.elapsed_ms, 1),
        }

    def summary(self) -> str:
        """One line for the journal: the verdict, every layer's status, the problems' details."""
        head = "healthy" if self.healthy else "UNHEALTHY"
        layers = " ".join(f"{c.name}={c.status}" for c in self.checks)
        issues = "; ".join(f"{c.name}: {c.detail}" for c in self.problems())
        return f"{head}: {layers} ({self.elapsed_ms:.0f} ms)" + (f" - {issues}" if issues else "")


def combined(reports: Sequence[tuple[str | None, Report]]) -> dict[str, Any]:
    """The `--json` object of one Gateway's report, or of several instances' (see above)."""
    if len(reports) == 1:
        return reports[0][1].to_dict()
    return {"healthy": all(r.healthy for _, r in reports),
            "instances": [{"instance": name, **r.to_dict()} for name, r in reports]}


@dataclass
class _Run:
    """Facts one layer learns and a later layer uses."""

    config: HostConfig
    units: dict[str, systemd.UnitState] = field(default_factory=dict)
    units_error: str = ""
    pid: int | None = None
    port_open: bool = False
    api: ibapi.ApiStatus | None = None
    link: upstream.Link | None = None
    clients: int | None = None
    rss_mb: float | None = None
    version_notice: str = ""


def run(config: HostConfig) -> Report:
    """Run every layer in order against the Gateway the settings describe."""
    started = time.monotonic()
    state = _Run(config)
    on_systemd = systemd.is_systemd_host()
    if on_systemd:
        try:
            found = systemd.show_units(config.gateway_unit, config.display_unit)
            state.units = {config.gateway_unit: found[0], config.display_unit: found[1]}
        except OpsError as exc:
            state.units_error = str(exc)
    layers: list[Callable[[_Run], tuple[str, str]]] = [
        _service if on_systemd else _not_systemd,
        _display if on_systemd else _not_systemd,
        _process, _port, _api, _upstream, _memory,
    ]
    checks = tuple(_timed(name, layer, state) for name, layer in zip(LAYERS, layers, strict=True))
    return Report(
        checks=checks,
        elapsed_ms=(time.monotonic() - started) * 1000,
        server_version=state.api.server_version if state.api else None,
        accounts=state.api.accounts if state.api else (),
        rss_mb=state.rss_mb,
        gateway_unit=state.units.get(config.gateway_unit),
        link=state.link,
        api_clients=state.clients,
        version_notice=state.version_notice,
    )


def wait(config: HostConfig, timeout_s: float, progress: Callable[[str], None],
         poll_s: float = 1.0) -> tuple[Report, float]:
    """Re-run every layer until none fails or `timeout_s` passes: (last report, seconds).

    What a bot's ExecStartPre runs, so the bot's first connect meets a logged-in API. Each
    run's probes are cut to the time left, so a hanging API cannot stretch the deadline.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        left = deadline - time.monotonic()
        report = run(replace(config, health_timeout_s=max(min(config.health_timeout_s, left),
                                                          0.1)))
        waited = time.monotonic() - started
        if report.healthy or time.monotonic() >= deadline:
            return report, waited
        progress(f"waiting for the Gateway ({waited:.0f} s of {timeout_s:g} s): "
                 f"{report.failures()}")
        time.sleep(min(poll_s, max(deadline - time.monotonic(), 0)))


def _timed(name: str, layer: Callable[[_Run], tuple[str, str]], state: _Run) -> Check:
    start = time.monotonic()
    status, detail = layer(state)
    return Check(name, status, detail, (time.monotonic() - start) * 1000)


def _not_systemd(_: _Run) -> tuple[str, str]:
    return SKIP, "not a systemd host"


def _unit(state: _Run, name: str) -> tuple[str, str] | systemd.UnitState:
    if state.units_error:
        if os.geteuid() != 0:
            # A caller other than root (a bot's ExecStartPre) may be kept from systemd's bus
            # by its unit's sandboxing; the port and API layers still judge the Gateway.
            return SKIP, f"{state.units_error} (systemd not reachable as uid {os.geteuid()})"
        return FAIL, state.units_error
    return state.units[name]


def _service(state: _Run) -> tuple[str, str]:
    unit = _unit(state, state.config.gateway_unit)
    if isinstance(unit, tuple):
        return unit
    return (OK if unit.active else FAIL), unit.describe()


def _display(state: _Run) -> tuple[str, str]:
    unit = _unit(state, state.config.display_unit)
    if isinstance(unit, tuple):
        return unit
    if not unit.active:
        return FAIL, unit.describe()
    answer = x_display_answers(state.config.display, timeout=2.0)
    if answer is None:
        return FAIL, f"{unit.name} is active but display {state.config.display} does not answer"
    return OK, f"display {state.config.display} answers ({answer})"


def x_display_answers(display: str, timeout: float) -> str | None:
    """Send the X11 connection setup and read the reply; None when nothing answers.

    Any reply (success, failed, authenticate) proves the server is up and serving; the
    verdict is returned for the detail line.
    """
    number = display.lstrip(":").split(".")[0]
    setup = b"l\0" + (11).to_bytes(2, "little") + bytes(8)
    # Xvfb listens on the abstract socket (reachable under PrivateTmp=) and the path socket.
    path = f"/tmp/.X11-unix/X{number}"  # noqa: S108 - X11's fixed socket location
    for address in ("\0" + path, path):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
                sock.sendall(setup)
                reply = sock.recv(1)
        except OSError:
            continue
        if reply:
            return {0: "refused the connection", 1: "accepted", 2: "wants authentication"}.get(
                reply[0], "answered")
    return None


def _process(state: _Run) -> tuple[str, str]:
    config = state.config
    state.pid, where = proc.locate(config, state.units.get(config.gateway_unit))
    if not where:
        return SKIP, f"API host {config.api_host} is not this machine"
    if state.pid is None:
        unit = state.units.get(config.gateway_unit)
        by_port = unit is None or not unit.control_group
        if by_port and os.geteuid() != 0 and proc.has_listener(config.api_port):
            # /proc/PID/fd of another user's process is closed to us: the socket is there,
            # its owner cannot be named; the API layer says whether it is a Gateway.
            return SKIP, (f"port {config.api_port} has a listener whose process uid "
                          f"{os.geteuid()} cannot see (root can)")
        return FAIL, f"no Gateway process {where}"
    return OK, f"pid {state.pid} ({proc.name(state.pid)}) {where}"


def _port(state: _Run) -> tuple[str, str]:
    config = state.config
    address = f"{config.api_host}:{config.api_port}"
    try:
        with socket.create_connection((config.api_host, config.api_port),
                                      timeout=min(config.health_timeout_s, 3.0)):
            state.port_open = True
    except TimeoutError:
        return FAIL, f"{address}: no answer to the TCP connect"
    except OSError as exc:
        return FAIL, f"{address}: {exc.strerror or exc}"
    return OK, f"{address} accepts TCP"


def _api(state: _Run) -> tuple[str, str]:
    config = state.config
    if not state.port_open:
        return SKIP, "not tried: the port is closed"
    try:
        state.api = ibapi.probe(config.api_host, config.api_port, config.health_client_id,
                                config.health_timeout_s)
    except ibapi.ProbeError as exc:
        return FAIL, f"{exc} (timeout {config.health_timeout_s:g} s)"
    api = state.api
    if config.api_host in proc.LOCAL_HOSTS:
        state.clients = proc.clients_of(config.api_port)  # the probe's connection is closed
    detail = f"server version {api.server_version}, accounts {','.join(api.accounts)}"
    if api.client_id != config.health_client_id:
        detail += f", clientId {config.health_client_id} in use so used {api.client_id}"
    if api.server_time is None:
        detail += ", no server time (the Gateway's link to IBKR is lost: see upstream)"
    if api.notices:
        return WARN, f"{detail}; Gateway says: {api.notices[-1]}"
    return OK, detail


def _upstream(state: _Run) -> tuple[str, str]:
    if state.api is None:
        return SKIP, "not tried: the API did not answer"
    state.link = upstream.read(state.api.status_messages)
    state.version_notice = next((text for code, text in state.api.status_messages
                                 if code == upstream.VERSION_NOTICE), "")
    lost = upstream.lost_for(state.config, state.link, time.time())
    return upstream.judge(state.link, lost, state.config.upstream_lost_fail_s)


def _memory(state: _Run) -> tuple[str, str]:
    config = state.config
    rss = proc.rss_bytes(state.pid) if state.pid is not None else None
    if rss is None:
        if state.pid is not None:  # e.g. a caller under ProtectProc=invisible
            return SKIP, f"/proc/{state.pid} is not readable as uid {os.geteuid()}"
        return SKIP, "no process to measure"
    used, ceiling = rss / _MB, config.memory_ceiling_mb
    state.rss_mb = used
    detail = f"{used:.0f} MB resident of a {ceiling} MB ceiling"
    if used >= ceiling:
        return FAIL, detail
    if used >= ceiling * config.memory_warn_ratio:
        return WARN, f"{detail} (warning from {config.memory_warn_ratio:.0%})"
    return OK, detail
