"""`ibkr_ops.verify`: the table and the JUnit report `invoke verify` makes of the checks'
results, and a bad operator file refused before any host is touched."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ibkr_ops import verify
from ibkr_ops.checks import Result, Status
from ibkr_ops.errors import OpsError

REPORT = verify.Report("gw1", (
    Result(1, "gateway_starts", Status.OK, "xvfb.service and ibkr-gateway.service active"),
    Result(6, "manual_restart", Status.OK, "healthy again", (("restart_s", 12.34),)),
    Result(7, "notification_accepted", Status.NOT_CONFIGURED, "DISCORD_WEBHOOK_URL is not set"),
    Result(0, "settings_match", Status.SKIPPED, "no credentials file given"),
    Result(11, "secret_file_private", Status.OK, "/etc/ibkr/config.ini 0600 trader"),
    Result(11, "secret_file_private", Status.FAIL, "/etc/ibkr/credentials.env is 0644, not 0600"),
    Result(10, "bot_connects", Status.OK, "accounts DU1", (("connect_s", 0.0421),)),
), 42.0)


def test_table_has_one_line_per_item_in_order_and_says_why() -> None:
    """Item 11's two checks make one FAIL line, with the failing check's detail under it."""
    lines = verify.table(REPORT).splitlines()
    assert lines[0] == "go-live checklist: host gw1"
    assert [line.split()[0] for line in lines[1:] if line.startswith("  ") and
            not line.startswith("      ")] == ["0", "1", "6", "7", "10", "11"]
    restart = next(line for line in lines if "Manual restart works" in line)
    assert restart.split()[-4:] == ["pass", "restart", "12.3", "s"]
    assert next(line for line in lines if "bot connects" in line).endswith("connect 0.042 s")
    failed = lines.index(next(line for line in lines if "Security" in line))
    assert "FAIL" in lines[failed]
    assert lines[failed + 1:failed + 3] == ["      /etc/ibkr/credentials.env is 0644, not 0600",
                                            "checklist duration 42.0 s  (NOT ready to go live)"]
    assert "not configured" in next(line for line in lines if "Notifications" in line)
    assert lines[-1] == "checklist duration 42.0 s  (NOT ready to go live)"
    assert not REPORT.ready


def test_junit_report_read_back_by_a_junit_parser() -> None:
    suite = ET.fromstring(verify.junit_xml([REPORT]))  # noqa: S314 - our own report
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "1", "2")
    cases = [(case.get("name"), {child.tag for child in case}) for case in suite.iter("testcase")]
    assert cases == [("gateway_starts", set()), ("manual_restart", {"properties"}),
                     ("notification_accepted", {"skipped"}), ("settings_match", {"skipped"}),
                     ("secret_file_private", set()), ("secret_file_private", {"failure"}),
                     ("bot_connects", {"properties"})]
    prop = next(suite.iter("property"))
    assert (prop.get("name"), prop.get("value")) == ("restart_s", "12.34")


def test_a_bad_operator_file_stops_before_connecting(tmp_path: Path) -> None:
    """192.0.2.1 (TEST-NET) would time out: the error comes from the file, at once."""
    creds = tmp_path / "credentials.env"
    creds.write_text("IBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN=1030\nIBKR_USERNAME=u\n"
                     "IBKR_PASSWORD=p\nIBKR_API_PORT=four\n")
    creds.chmod(0o600)
    started = time.monotonic()
    with pytest.raises(OpsError, match="IBKR_API_PORT"):
        verify.run("root@192.0.2.1", credentials=creds)
    assert time.monotonic() - started < 5


def test_each_instance_gets_its_own_table_and_test_suite() -> None:
    """A host with paper and live Gateways: two tables, each naming its instance, and one
    JUnit document holding a suite per instance."""
    paper = verify.Report("gw1", REPORT.results, 40.0, "paper")
    live = verify.Report("gw1", REPORT.results[:1], 2.0, "live")
    assert verify.table(paper).splitlines()[0] == "go-live checklist: host gw1 instance paper"
    root = ET.fromstring(verify.junit_xml([paper, live]))  # noqa: S314 - our own report
    assert root.tag == "testsuites"
    assert [(s.get("name"), s.get("tests")) for s in root] == [
        ("go-live checklist (paper)", "7"), ("go-live checklist (live)", "1")]
