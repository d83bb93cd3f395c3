"""The Prometheus text file, read back with the reference parser of the format."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ibkr_ops.host import health, history, metrics, upstream
from ibkr_ops.host.config import HostConfig, metrics_path


def report(api: str = health.OK) -> health.Report:
    checks = tuple(health.Check(n, api if n == "api" else health.OK, "d", 12.5)
                   for n in health.LAYERS)
    return health.Report(checks, 40.0, rss_mb=300.0)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_every_figure_the_issue_names_parses() -> None:
    config = HostConfig(trading_mode="live")
    restarts = [history.Restart(1.0, "hang", "warm", True), history.Restart(2.0, "hang", "cold",
                                                                            True),
                history.Restart(3.0, "memory", "warm", True)]
    got = samples(metrics.render(config, report(), restarts, 1_800_000_000.25, 300.0, 5.0))
    mode = ("mode", "live")
    assert got[("ibkr_gateway_up", (mode,))] == 1
    assert got[("ibkr_gateway_api_latency_seconds", (mode,))] == 0.0125
    assert got[("ibkr_gateway_resident_memory_bytes", (mode,))] == 300 * 1024 * 1024
    assert got[("ibkr_gateway_restarts_total", (("cause", "hang"), mode))] == 2
    assert got[("ibkr_gateway_restarts_total", (("cause", "memory"), mode))] == 1
    assert got[("ibkr_gateway_restarts_total", (("cause", "crash-loop"), mode))] == 0
    assert got[("ibkr_gateway_last_login_timestamp_seconds", (mode,))] == 1_800_000_000.25


def test_a_failed_api_reports_down_and_no_latency() -> None:
    got = samples(metrics.render(HostConfig(), report(health.FAIL), [], None, None, 5.0))
    assert got[("ibkr_gateway_up", (("mode", "paper"),))] == 0
    assert not any(name == "ibkr_gateway_api_latency_seconds" for name, _ in got)
    assert got[("ibkr_gateway_check_ok", (("check", "api"), ("mode", "paper")))] == 0


def test_the_file_is_replaced_whole_and_readable(tmp_path: Path) -> None:
    config = dataclasses.replace(HostConfig(), state_dir=str(tmp_path))
    path = metrics.write(config, "a 1\n")
    assert path == metrics_path(config) == str(tmp_path / "metrics" / "ibkr_gateway.prom")
    metrics.write(config, "a 2\n")
    assert Path(path).read_text() == "a 2\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(tmp_path / "metrics")) == ["ibkr_gateway.prom"]


def test_ibkrs_side_is_exported_per_farm() -> None:
    link = upstream.read([(2104, "Market data farm connection is OK:usfarm"),
                          (2105, "HMDS data farm connection is broken:ushmds")])
    rep = dataclasses.replace(report(), link=link)
    got = samples(metrics.render(HostConfig(), rep, [], None, None, 5.0))
    mode = ("mode", "paper")
    assert got[("ibkr_gateway_ibkr_connected", (mode,))] == 1
    assert got[("ibkr_gateway_data_farm_ok",
                (("farm", "usfarm"), ("kind", "market data"), mode))] == 1
    assert got[("ibkr_gateway_data_farm_ok",
                (("farm", "ushmds"), ("kind", "historical data"), mode))] == 0
    lost = dataclasses.replace(report(), link=upstream.read([(1100, "lost")]))
    got = samples(metrics.render(HostConfig(), lost, [], None, None, 5.0))
    assert got[("ibkr_gateway_ibkr_connected", (mode,))] == 0
    assert not any(name == "ibkr_gateway_data_farm_ok" for name, _ in got)


def test_an_instances_series_all_carry_its_name_and_the_single_gateways_none() -> None:
    link = upstream.read([(2104, "Market data farm connection is OK:usfarm")])
    rep = dataclasses.replace(report(), link=link)
    restarts = [history.Restart(1.0, "hang", "warm", True)]
    for instance in ("live", None):
        config = HostConfig(trading_mode="live", api_port=4001, instance=instance)
        got = samples(metrics.render(config, rep, restarts, 1.0, 300.0, 5.0))
        assert len(got) > 10
        labels = [dict(key) for _, key in got]
        assert all(label.get("instance") == instance for label in labels), instance
        assert all(label["mode"] == "live" for label in labels)
