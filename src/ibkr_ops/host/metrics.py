"""The Gateway's health as a Prometheus text file for node_exporter's textfile collector.

Written by every health-check run, replaced in one rename (the collector must never read
half a file), mode 0644 and without secrets. Point node_exporter's
`--collector.textfile.directory` at its folder.

On a host of several Gateways each instance writes a file of its own into the one folder
(``Layout.metrics_file``) and every series carries an ``instance`` label with its name
(Prometheus, with its default ``honor_labels: false``, keeps it as ``exported_instance``
beside the scrape target's own). The single-Gateway host's series have no such label, as
before, so existing queries and dashboards keep working.
"""

from __future__ import annotations

import os
import tempfile

from ibkr_ops.errors import OpsError
from ibkr_ops.host import health, history, upstream
from ibkr_ops.host.config import HostConfig, metrics_path

_MB = 1024 * 1024


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render(config: HostConfig, report: health.Report, restarts: list[history.Restart],
           last_login: float | None, rss_mb: float | None, now: float) -> str:
    """The text exposition format: HELP and TYPE for each family, one sample per line."""
    labels = f'mode="{config.trading_mode}"'
    if config.instance is not None:
        labels += f',instance="{_label(config.instance)}"'
    checks = {c.name: c for c in report.checks}
    families: list[tuple[str, str, str, list[str]]] = [
        ("ibkr_gateway_up", "gauge", "1 when every health-check layer passed (ok or warn).",
         [f"ibkr_gateway_up{{{labels}}} {int(report.healthy)}"]),
        ("ibkr_gateway_check_ok", "gauge", "1 per layer that passed in the last health check.",
         [f'ibkr_gateway_check_ok{{{labels},check="{c.name}"}} '
          f"{int(c.status in (health.OK, health.WARN))}" for c in report.checks]),
        ("ibkr_gateway_health_check_timestamp_seconds", "gauge",
         "When the last health check ran (Unix time).",
         [f"ibkr_gateway_health_check_timestamp_seconds{{{labels}}} {_number(round(now, 3))}"]),
    ]
    api = checks.get("api")
    if api is not None and api.status in (health.OK, health.WARN):
        families.append(("ibkr_gateway_api_latency_seconds", "gauge",
                         "Time the health check's API handshake and login took.",
                         [f"ibkr_gateway_api_latency_seconds{{{labels}}} "
                          f"{_number(round(api.ms / 1000, 4))}"]))
    if report.link is not None:
        families += _upstream(labels, report.link)
    if rss_mb is not None:
        families.append(("ibkr_gateway_resident_memory_bytes", "gauge",
                         "Resident memory of the Gateway's JVM.",
                         [f"ibkr_gateway_resident_memory_bytes{{{labels}}} {int(rss_mb * _MB)}"]))
    families.append(("ibkr_gateway_memory_ceiling_bytes", "gauge",
                     "Resident memory at which the watchdog restarts the Gateway.",
                     [f"ibkr_gateway_memory_ceiling_bytes{{{labels}}} "
                      f"{config.memory_ceiling_mb * _MB}"]))
    counts = {cause: 0 for cause in history.CAUSES}
    for entry in restarts:
        counts[entry.cause] = counts.get(entry.cause, 0) + 1
    families.append(("ibkr_gateway_restarts_total", "counter",
                     "Gateway restarts recorded on this host, by cause.",
                     [f'ibkr_gateway_restarts_total{{{labels},cause="{cause}"}} {n}'
                      for cause, n in sorted(counts.items())]))
    if last_login is not None:
        families.append(("ibkr_gateway_last_login_timestamp_seconds", "gauge",
                         "When IBC last completed a login (Unix time).",
                         [f"ibkr_gateway_last_login_timestamp_seconds{{{labels}}} "
                          f"{_number(round(last_login, 3))}"]))
    lines = []
    for name, kind, text, samples in families:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"


def _upstream(labels: str, link: upstream.Link) -> list[tuple[str, str, str, list[str]]]:
    """IBKR's side: the Gateway's link to IBKR and each data farm it reported."""
    families = [("ibkr_gateway_ibkr_connected", "gauge",
                 "1 while the Gateway reports its connection to IBKR up (0 after code 1100).",
                 [f"ibkr_gateway_ibkr_connected{{{labels}}} {int(link.connected)}"])]
    if link.farms:
        families.append(("ibkr_gateway_data_farm_ok", "gauge",
                         "1 per data farm the Gateway reports OK or inactive, 0 when broken.",
                         [f'ibkr_gateway_data_farm_ok{{{labels},farm="{_label(f.name)}",'
                          f'kind="{f.kind}"}} {int(f.ok)}' for f in link.farms]))
    return families


def _label(value: str) -> str:
    """A label value as the exposition format escapes it (the farm name is the Gateway's)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write(config: HostConfig, text: str) -> str:
    """Replace the metrics file in one step; return its path."""
    target = metrics_path(config)
    folder = os.path.dirname(target)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ibkr_gateway.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise OpsError(f"cannot write metrics {target}: {exc.strerror or exc}") from None
    return target
