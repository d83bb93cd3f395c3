"""IBKR's desupport of old Gateway builds: the versions, its notices, the login watch's report."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from ibkr_ops import render
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host import desupport, health, ibclog, loginwatch, watchdog
from ibkr_ops.host import gatewayversion as gv
from ibkr_ops.host.config import HostConfig
from ibkr_ops.settings import deployment_from_env

CONFIG = HostConfig(state_dir="/nonexistent")
# IBKR's notices as users quoted them (PlusGenie/ib-gateway-docker#5, 2023; QuantConnect's
# Lean.Brokerages.InteractiveBrokers#143, 2025), and the hard refusal IBAutomater looks for.
NOTICE_2023 = ("The version of the application you are running, 1019.1, needs to be upgraded, "
               "as it will be desupported on 20230718. The minimum supported version at that "
               "time will be 1019.2.")
NOTICE_2025 = ("The version of the application you are running, 1019.2, needs to be upgraded, "
               "as it will be desupported on 20250320. The minimum supported version at that "
               "time will be 1030.1.")
# As QuantConnect's IBAutomater logged it (lower case, HTML reflowed): Lean#8606.
NOTICE_REFLOWED = ("the version of the application you are running, 1019.2, needs to be      "
                   "upgraded, as it will be desupported on 20250320. the minimum supported      "
                   "version at that time will be 1030.1. the new version  can      be "
                   "downloaded here . ib gateway")
STAMP = "2026-12-03 09:30:00:123 IBC: "


@pytest.mark.parametrize(("text", "version"), [
    ("10.30", gv.Version(10, 30)), ("10.30.1t", gv.Version(10, 30, 1)),
    ("1030", gv.Version(10, 30)), ("1030.1", gv.Version(10, 30, 1)),
    (" 10.45.1h ", gv.Version(10, 45, 1)),
])
def test_versions_in_every_form_ibkr_writes_them(text: str, version: gv.Version) -> None:
    assert gv.parse(text) == version


@pytest.mark.parametrize("text", ["", "10", "latest", "10.x", "103"])
def test_a_version_that_is_none_is_refused_with_the_forms_that_work(text: str) -> None:
    with pytest.raises(UsageError, match=r"e\.g\. 10\.30, 10\.30\.1 or 1030"):
        gv.parse(text)


def test_comparison_without_a_patch_number_uses_major_and_minor() -> None:
    assert not gv.parse("1030").below(gv.parse("10.30.1"))  # some 10.30.x: not known older
    assert gv.parse("1019").below(gv.parse("10.30.1"))
    assert gv.parse("10.19.1").below(gv.parse("10.19.2"))
    assert not gv.parse("10.50.1").below(gv.parse("10.45"))
    assert gv.parse("10.9").below(gv.parse("10.10"))  # numbers, not strings


def test_the_known_minimum_follows_the_cutoff_dates() -> None:
    assert gv.minimum_on(dt.date(2025, 3, 19)) == gv.Version(10, 19, 2)
    assert gv.minimum_on(dt.date(2025, 3, 20)) == gv.Version(10, 30, 1)
    days = [c.day for c in gv.CUTOFFS]
    assert days == sorted(days) and all(c.source for c in gv.CUTOFFS)


def test_a_build_below_the_minimum_is_an_error_with_what_to_do() -> None:
    verdict = gv.assess(gv.parse("1019"), dt.date(2025, 6, 1))
    assert verdict is not None and verdict.level == "error"
    assert "10.19 is below IBKR's minimum supported version 10.30.1" in verdict.text
    assert "invoke upgrade --host HOST --gateway-installer NEW.sh" in verdict.text


def test_a_coming_cutoff_warns_within_the_period_only() -> None:
    installed = gv.parse("10.19.2")
    assert gv.assess(installed, dt.date(2025, 2, 1)) is None  # 47 days ahead
    verdict = gv.assess(installed, dt.date(2025, 3, 1))
    assert verdict is not None and verdict.level == "warning"
    assert "desupported by IBKR on 2025-03-20 (in 19 days)" in verdict.text
    assert "minimum from then on is 10.30.1" in verdict.text
    assert gv.assess(gv.parse("1030"), dt.date(2025, 3, 1)) is None


def test_the_minimum_is_a_parameter_with_the_known_one_as_default() -> None:
    """An operator who has seen a newer notice than this project raises the floor."""
    day = dt.date(2027, 1, 10)
    assert gv.assess(gv.parse("1050"), day) is None
    verdict = gv.assess(gv.parse("1050"), day, minimum=gv.parse("10.55"))
    assert verdict is not None and "below IBKR's minimum supported version 10.55" in verdict.text
    # Only the operator's floor counts then: no warning from the project's known cutoffs.
    assert gv.assess(gv.parse("1045"), dt.date(2026, 12, 3), minimum=gv.parse("10.30")) is None


@pytest.mark.parametrize(("text", "running", "day", "minimum"), [
    (NOTICE_2023, "10.19.1", dt.date(2023, 7, 18), "10.19.2"),
    (NOTICE_2025, "10.19.2", dt.date(2025, 3, 20), "10.30.1"),
    (NOTICE_REFLOWED, "10.19.2", dt.date(2025, 3, 20), "10.30.1"),
])
def test_ibkrs_notice_gives_the_build_the_date_and_the_minimum(
        text: str, running: str, day: dt.date, minimum: str) -> None:
    notice = gv.read_notice(text)
    assert notice == gv.Notice(gv.parse(running), day, gv.parse(minimum), final=False)


def test_the_refusal_of_a_desupported_build_is_final() -> None:
    notice = gv.read_notice("This version of the application is no longer supported.")
    assert notice is not None and notice.final and notice.desupported_on is None
    assert gv.read_notice("Login has completed") is None
    assert gv.read_notice("Read-only login not supported by Gateway") is None


@pytest.mark.parametrize(("line", "kind"), [
    (STAMP + NOTICE_2025, ibclog.VERSION_NOTICE),
    ("The minimum supported version at that time will be 1050.1.", ibclog.VERSION_NOTICE),
    (STAMP + "This version is no longer supported.", ibclog.DESUPPORTED),
    (STAMP + "detected dialog entitled: IBKR Gateway; event=Opened", None),
    (STAMP + "Click button: No", None),
])
def test_ibc_lines_that_carry_ibkrs_version_wording(line: str, kind: str | None) -> None:
    assert ibclog.classify(line) == kind


def test_a_version_notice_is_said_once_with_its_date_and_the_login_goes_on() -> None:
    login = loginwatch.LoginState()
    loginwatch.react(login, ibclog.STARTED, "Starting session", 1.0, CONFIG)
    first = loginwatch.react(login, ibclog.VERSION_NOTICE, NOTICE_2025, 2.0, CONFIG)
    assert first.notify is not None and not first.stop
    level, text = first.notify
    assert level == "warning"
    assert "desupported on 2025-03-20; the minimum from then on is 10.30.1" in text
    assert "invoke upgrade --host HOST --gateway-installer NEW.sh" in text
    assert login.state == "logging-in"  # a notice is no verdict on the login
    loginwatch.react(login, ibclog.COMPLETED, "Login has completed", 3.0, CONFIG)
    # The next login shows the same notice: nothing new to say.
    assert loginwatch.react(login, ibclog.VERSION_NOTICE, NOTICE_2025, 4.0, CONFIG).notify is None
    assert loginwatch.react(login, ibclog.VERSION_NOTICE, NOTICE_2023, 5.0,
                            CONFIG).notify is not None


def test_a_desupported_build_is_stopped_and_said_once() -> None:
    login = loginwatch.LoginState()
    message = "This version is no longer supported."
    first = loginwatch.react(login, ibclog.DESUPPORTED, message, 1.0, CONFIG)
    assert first.stop and first.notify is not None and first.notify[0] == "error"
    assert f"IBKR no longer supports this Gateway build (IBC: {message})" in first.notify[1]
    again = loginwatch.react(login, ibclog.DESUPPORTED, message, 2.0, CONFIG)
    assert again.stop and again.notify is None
    assert login.state in loginwatch.STAYS_DOWN


def host(tmp_path: Path, version: str = "1019") -> HostConfig:
    tmp_path.mkdir(exist_ok=True)
    creds = tmp_path / "credentials.env"
    creds.write_text(f"IBKR_USERNAME=u\nIBKR_PASSWORD=p\nTWS_MAJOR_VRSN={version}\n")
    creds.chmod(0o600)
    (tmp_path / "state").mkdir()
    return HostConfig(state_dir=str(tmp_path / "state"), credentials_file=str(creds))


class Outbox:
    def __init__(self, fail: OpsError | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, config: HostConfig, level: str, text: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append((level, text))


DAY = dt.date(2025, 3, 1)


def test_the_warning_goes_out_once_a_day(tmp_path: Path) -> None:
    config, outbox = host(tmp_path), Outbox()
    assert desupport.daily(config, DAY, outbox) == "desupport warning sent"
    assert desupport.daily(config, DAY, outbox) == "desupport warning already sent today"
    assert desupport.daily(config, DAY + dt.timedelta(days=1), outbox) == "desupport warning sent"
    assert [level for level, _ in outbox.sent] == ["warning", "warning"]
    assert "IB Gateway 10.19 will be desupported by IBKR on 2025-03-20 (in 19 days)" \
        in outbox.sent[0][1]


def test_a_warning_discord_did_not_take_is_tried_again(tmp_path: Path) -> None:
    config = host(tmp_path)
    words = desupport.daily(config, DAY, Outbox(OpsError("HTTP 503")))
    assert words == "desupport warning not sent, will retry: HTTP 503"
    outbox = Outbox()
    assert desupport.daily(config, DAY, outbox) == "desupport warning sent"
    assert len(outbox.sent) == 1


def test_nothing_is_due_for_a_supported_build_or_an_unknown_one(tmp_path: Path) -> None:
    outbox = Outbox()
    assert desupport.daily(host(tmp_path / "a", "1050"), DAY, outbox) == ""
    unknown = HostConfig(state_dir=str(tmp_path), credentials_file=str(tmp_path / "missing"))
    assert desupport.daily(unknown, DAY, outbox) == ""
    assert outbox.sent == []


def test_ibkrs_own_notice_seen_by_the_login_watch_names_the_date(tmp_path: Path) -> None:
    """A cutoff this project does not know yet: IBKR's notice is the authority."""
    config = host(tmp_path, "1050")
    login = loginwatch.LoginState(version_notice=(
        "The version of the application you are running, 1050.1, needs to be upgraded, as it "
        "will be desupported on 20270301. The minimum supported version at that time will be "
        "1055.1."))
    login.save(config)
    verdict = desupport.check(config, dt.date(2027, 2, 20))
    assert verdict is not None and verdict.level == "warning"
    assert verdict.text.startswith("IBKR's own notice says IB Gateway 10.50 will be desupported "
                                   "on 2027-03-01 (in 9 days); the minimum from then on is 10.55.1")
    assert desupport.check(config, dt.date(2027, 3, 2)) is None  # past: IBKR's refusal tells


def test_the_minimum_is_passed_in_and_defaults_to_the_known_one(tmp_path: Path) -> None:
    config = host(tmp_path, "1050")
    assert desupport.check(config, dt.date(2027, 1, 5)) is None
    verdict = desupport.check(dataclasses.replace(config, gateway_min_version="10.51"),
                              dt.date(2027, 1, 5))
    assert verdict is not None and verdict.level == "error"


def test_the_health_checks_run_sends_it_beside_its_own_verdict(tmp_path: Path) -> None:
    """A healthy Gateway stays healthy; the day's desupport message comes on its own."""
    config, outbox = host(tmp_path, "1019"), Outbox()
    checks = tuple(health.Check(name, health.OK, "fine", 1.0) for name in health.LAYERS)
    report, words = watchdog.supervise(config, health.Report(checks, 5.0), deliver=outbox)
    assert report.status == health.OK
    assert "desupport" in words
    ((level, text),) = outbox.sent  # 10.19 is below the minimum since 2025-03-20
    assert level == "error" and "IB Gateway 10.19" in text
    watchdog.supervise(config, health.Report(checks, 5.0), deliver=outbox)
    assert len(outbox.sent) == 1


def test_the_notice_the_gateways_api_told_comes_before_the_known_cutoffs(tmp_path: Path) -> None:
    config = host(tmp_path, "1045")
    told = (NOTICE_2025.replace("1019.2", "1045.1").replace("20250320", "20261220")
            .replace("1030.1", "1050.1"))
    verdict = desupport.check(config, dt.date(2026, 12, 3), notice=told)
    assert verdict is not None
    assert verdict.text.startswith("IBKR's own notice says IB Gateway 10.45 will be desupported "
                                   "on 2026-12-20 (in 17 days)")


def test_the_operators_minimum_from_credentials_reaches_the_health_checks_run(
        tmp_path: Path) -> None:
    """IBKR_GATEWAY_MIN_VERSION, carried to the host in ops.json, raises the floor there."""
    d = deployment_from_env({"IBKR_USERNAME": "u", "IBKR_PASSWORD": "p", "IBKR_TRADING_MODE": "paper",
                             "TWS_MAJOR_VRSN": "1050", "IBKR_GATEWAY_MIN_VERSION": "1055.1"})
    assert d.gateway_min_version == "10.55.1"
    config = dataclasses.replace(host(tmp_path, "1050"),
                                 gateway_min_version=render.host_config(d).gateway_min_version)
    checks = tuple(health.Check(name, health.OK, "fine", 1.0) for name in health.LAYERS)
    outbox = Outbox()
    watchdog.supervise(config, health.Report(checks, 5.0), deliver=outbox)
    ((level, text),) = outbox.sent
    assert level == "error" and "below IBKR's minimum supported version 10.55.1" in text
    with pytest.raises(UsageError, match="IBKR_GATEWAY_MIN_VERSION"):
        deployment_from_env({"IBKR_USERNAME": "u", "IBKR_PASSWORD": "p", "IBKR_TRADING_MODE": "paper",
                             "TWS_MAJOR_VRSN": "1050", "IBKR_GATEWAY_MIN_VERSION": "latest"})
