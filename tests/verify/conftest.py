"""The go-live checklist's plumbing: refuse to run without a host, expectations, the table.

The checks themselves are `ibkr_ops.checks` (the same functions go-live and migrate run);
each test here wraps one of them over testinfra's ssh backend and turns its result into a
pass, a failure or a skip. Expectations come from the host's own installed settings by
default; with --credentials FILE the operator's file is the expectation instead, and an
extra check (item 0) says whether the host still holds those settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testinfra.host import Host
from testinfra_runner import Judge, TestinfraRunner

from ibkr_ops.checks import TITLES, Expect, Installed, Result, Status, Unreachable, read_installed
from ibkr_ops.checks.expect import operator_env as non_secret
from ibkr_ops.errors import OpsError
from ibkr_ops.settings import load_deployment


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ibkr-ops verify")
    group.addoption("--destructive", action="store_true",
                    help="also run the checks that restart, kill and reboot (items 6, 8, 9)")
    group.addoption("--credentials", metavar="FILE",
                    help="take expectations from this credentials.env (default: the host's own "
                         "installed settings) and check the host still matches it")
    group.addoption("--verify-label", metavar="NAME", help="host name for the summary table")
    group.addoption("--reboot-timeout", type=float, default=300.0, metavar="S",
                    help="seconds a reboot may take until healthy again (default 300)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "checklist(number): the go-live checklist item a test encodes")
    hosts = config.getoption("hosts", None)
    if not hosts:
        raise pytest.UsageError(
            "tests/verify checks a gateway host; give it: --hosts=ssh://USER@HOST[:PORT] "
            "(testinfra would otherwise check this machine). Or: invoke verify --host=NAME")
    for spec in hosts.split(","):
        if not spec.startswith("ssh://"):
            raise pytest.UsageError(
                f"--hosts={spec}: use ssh://USER@HOST[:PORT]; testinfra's default paramiko "
                "backend accepts any host key, the ssh backend checks it against known_hosts")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run in checklist order, state-changing checks last; skip those without --destructive."""
    skip = pytest.mark.skip(reason="changes the host's state; run with --destructive")
    for item in items:
        if item.get_closest_marker("destructive") and not config.getoption("destructive"):
            item.add_marker(skip)
    items.sort(key=lambda i: (bool(i.get_closest_marker("destructive")), _number(i)))


def _number(item: pytest.Item) -> int:
    marker = item.get_closest_marker("checklist")
    if marker is None:
        raise pytest.UsageError(f"{item.nodeid} has no @pytest.mark.checklist(N)")
    return int(marker.args[0])


# --- fixtures ---------------------------------------------------------------------------------

STRICT_SSH = "-o StrictHostKeyChecking=yes -o BatchMode=yes"


@pytest.fixture(autouse=True)
def _strict_host_keys(host: Host) -> None:
    """Whatever the user's ssh_config says, never accept an unknown or changed host key.

    Set on the backend itself: testinfra 10 parses --ssh-extra-args but never passes it on.
    """
    extra = host.backend.ssh_extra_args or ""
    if STRICT_SSH not in extra:
        host.backend.ssh_extra_args = f"{extra} {STRICT_SSH}".strip()

@pytest.fixture
def runner(host: Host) -> TestinfraRunner:
    """The host as the checks read it."""
    return TestinfraRunner(host)


_SETTINGS: dict[str, Installed] = {}


@pytest.fixture
def installed(runner: TestinfraRunner) -> Installed:
    """The host's installed settings (no secrets), read once per host."""
    if runner.name not in _SETTINGS:
        try:
            _SETTINGS[runner.name] = read_installed(runner)
        except Unreachable as exc:  # no check can run: say why once
            pytest.exit(f"cannot reach the host over SSH: {exc}", returncode=1)
        except OpsError as exc:
            pytest.fail(f"{exc} (as a user other than root, add --sudo)", pytrace=False)
    return _SETTINGS[runner.name]


@pytest.fixture
def operator_env(request: pytest.FixtureRequest) -> dict[str, str] | None:
    """Non-secret keys of the operator's --credentials file, when one was given."""
    path = request.config.getoption("credentials")
    if not path:
        return None
    try:
        return non_secret(load_deployment(Path(path)))
    except OpsError as exc:
        raise pytest.UsageError(f"--credentials: {exc}") from None


@pytest.fixture
def expect(installed: Installed, operator_env: dict[str, str] | None) -> Expect:
    """What the host must look like (see the module docstring for where it comes from)."""
    return Expect.of(installed, operator_env)


@pytest.fixture
def say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Progress lines for long waits, shown live even while output is captured."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")

    def line(text: str) -> None:
        if reporter is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(f"    {text}")

    return line


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Record a figure of this check (seconds in names ending `_s`): a property in the JUnit
    XML and a column of the table. Not `record_property`, which xunit2 reports refuse."""

    def add(name: str, value: object) -> None:
        if isinstance(value, float):
            value = round(value, 1 if value >= 1 else 3)
        request.node.user_properties.append((name, value))

    return add


@pytest.fixture
def judge(record: Callable[[str, object], None], request: pytest.FixtureRequest) -> Judge:
    """Turn a check's result into this test's outcome, with its figures recorded."""

    def outcome(result: Result) -> Result:
        for name, value in result.figures:
            record(name, value)
        if result.status is Status.FAIL:
            pytest.fail(result.detail, pytrace=False)
        if result.status in (Status.NOT_CONFIGURED, Status.SKIPPED):
            request.node.user_properties.append(("verdict", str(result.status)))
            pytest.skip(result.detail)
        return result

    return outcome


# --- the summary table -----------------------------------------------------------------------

_RESULTS: dict[tuple[str, int], list[tuple[str, str]]] = {}
_STARTED = time.monotonic()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect each test's outcome and figures under its checklist item."""
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed") or \
            (report.when == "teardown" and report.outcome == "failed"):
        number = next((v for k, v in report.user_properties if k == "checklist"), None)
        if not isinstance(number, int):
            return
        host = next((str(v) for k, v in report.user_properties if k == "host"), "?")
        verdict = next((str(v) for k, v in report.user_properties if k == "verdict"),
                       report.outcome)
        figures = "" if report.when != "call" else ", ".join(
            f"{k.removesuffix('_s')} {v} s" if k.endswith("_s") else f"{k} {v}"
            for k, v in report.user_properties if k not in ("checklist", "host", "verdict"))
        _RESULTS.setdefault((host, number), []).append((verdict, figures))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tag each report with its checklist item and host (the table reads them back)."""
    item.user_properties.append(("checklist", _number(item)))
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    label = item.config.getoption("verify_label") or (host.backend.get_pytest_id() if host else "?")
    item.user_properties.append(("host", label))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The go-live table: one line per checklist item and host, with measured times."""
    results = _RESULTS
    if not results:
        return
    write = terminalreporter.write_line
    terminalreporter.section("go-live checklist")
    for host in sorted({h for h, _ in results}):
        write(f"host {host}")
        for number, title in TITLES.items():
            outcomes = results.get((host, number))
            if not outcomes:
                continue
            states = {o for o, _ in outcomes}
            verdict = ("FAIL" if "failed" in states else "pass" if "passed" in states
                       else "not configured" if str(Status.NOT_CONFIGURED) in states else "skip")
            figures = "; ".join(f for _, f in outcomes if f)
            write(f"  {number:>2}  {title:<50} {verdict:<5} {figures}")
    elapsed = time.monotonic() - _STARTED
    write(f"suite duration {elapsed:.1f} s" + ("" if exitstatus == 0 else "  (NOT ready to go live)"))
