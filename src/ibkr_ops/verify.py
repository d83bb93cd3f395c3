"""`invoke verify`: the whole go-live checklist against one host, in-process.

The checks run over the checked connection every task opens (known host keys only, never
trust on first use; root directly or through passwordless sudo), so verify needs neither a
checkout nor pytest: an installed wheel runs it as it is. The testinfra suite in the
repository wraps the same checks for `nox -s verify`.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ibkr_ops import checks
from ibkr_ops.checks.checklist import everything
from ibkr_ops.checks.expect import layouts_to_check, operator_env
from ibkr_ops.checks.result import Say
from ibkr_ops.errors import UsageError
from ibkr_ops.layout import Layout, check_instance
from ibkr_ops.remote import switch
from ibkr_ops.settings import load_deployment

_VERDICT = {checks.Status.OK: "pass", checks.Status.FAIL: "FAIL",
            checks.Status.NOT_CONFIGURED: "not configured", checks.Status.SKIPPED: "skip"}


@dataclass(frozen=True)
class Report:
    """Every check's result on one host, and how long the checklist took."""

    host: str
    results: tuple[checks.Result, ...]
    seconds: float
    # The Gateway instance checked; None on a single-Gateway host.
    instance: str | None = None

    @property
    def target(self) -> str:
        """The host, and the instance when there is one: how the table and reports name it."""
        return self.host if self.instance is None else f"{self.host} instance {self.instance}"

    @property
    def ready(self) -> bool:
        """Ready to go live: nothing failed (not configured and skipped items do not count)."""
        return not any(r.failed for r in self.results)


def run(spec: str, *, instance: str | None = None, destructive: bool = False,
        credentials: Path | None = None, ssh_configs: Sequence[str] = (),
        say: Say = lambda _: None, reboot_timeout: float = 300.0) -> list[Report]:
    """Run the checklist against one host: against each of its Gateways in turn, or the
    instance named (by ``instance``, else by the operator's file's IBKR_INSTANCE). The
    operator's file is read before connecting, so a bad one stops here with nothing touched;
    its secrets never leave this machine."""
    operator = None
    if credentials:
        d = load_deployment(credentials)
        operator, instance = operator_env(d), instance or d.instance
    if instance is not None:
        check_instance(instance)
    host = switch.open_root(spec, ssh_configs=ssh_configs)
    reports: list[Report] = []
    try:
        runner = checks.FabricRunner(host)
        layouts = layouts_to_check(runner, instance)
        if operator is not None and len(layouts) > 1:
            raise UsageError(f"{spec} has Gateway instances {_names(layouts)}: give --instance "
                             "NAME (or IBKR_INSTANCE in the file) to say which the file is for")
        for layout in layouts:
            if len(layouts) > 1:
                say(f"instance {layout.instance}")
            started = time.monotonic()
            results = everything(runner, say, operator=operator, destructive=destructive,
                                 reboot_timeout=reboot_timeout, layout=layout,
                                 rebooted_with=_rebooted_with(reports, layouts))
            reports.append(Report(spec, tuple(results), time.monotonic() - started,
                                  layout.instance))
    finally:
        host.conn.close()
    return reports


def _names(layouts: Sequence[Layout]) -> str:
    return ", ".join(layout.instance or "(single Gateway)" for layout in layouts)


def _rebooted_with(done: Sequence[Report], layouts: Sequence[Layout]) -> str | None:
    """The instance whose checks rebooted the host already: the first one's, once done."""
    return layouts[0].instance if done else None


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def _figures(results: list[checks.Result]) -> str:
    return "; ".join(f"{name.removesuffix('_s')} {_seconds(value)} s"
                     if name.endswith("_s") and isinstance(value, float) else f"{name} {value}"
                     for r in results for name, value in r.figures)


def _verdict(results: list[checks.Result]) -> str:
    """An item's verdict over its checks (item 11 has three): any failure fails it."""
    for status in (checks.Status.FAIL, checks.Status.OK, checks.Status.NOT_CONFIGURED):
        if any(r.status is status for r in results):
            return _VERDICT[status]
    return _VERDICT[checks.Status.SKIPPED]


def table(report: Report) -> str:
    """The go-live table: one line per checklist item with its verdict and figures, then
    why for each check of it that is not a plain pass."""
    lines = [f"go-live checklist: host {report.target}"]
    for item, title in checks.TITLES.items():
        results = [r for r in report.results if r.item == item]
        if not results:
            continue
        lines.append(f"  {item:>2}  {title:<50} {_verdict(results):<5} {_figures(results)}"
                     .rstrip())
        lines += [f"      {r.detail}" for r in results if r.status is not checks.Status.OK]
    lines.append(f"checklist duration {report.seconds:.1f} s"
                 + ("" if report.ready else "  (NOT ready to go live)"))
    return "\n".join(lines)


def junit_xml(reports: Sequence[Report]) -> bytes:
    """The results as a JUnit XML report, for CI systems that show one: a test suite per
    Gateway checked, one document (``testsuites`` around several)."""
    suites = [_suite(report) for report in reports]
    root = suites[0] if len(suites) == 1 else ET.Element("testsuites")
    if len(suites) > 1:
        root.extend(suites)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _suite(report: Report) -> ET.Element:
    name = "go-live checklist" + (f" ({report.instance})" if report.instance else "")
    suite = ET.Element("testsuite", name=name, hostname=report.host,
                       tests=str(len(report.results)),
                       failures=str(sum(r.failed for r in report.results)),
                       skipped=str(sum(r.status in (checks.Status.NOT_CONFIGURED,
                                                    checks.Status.SKIPPED)
                                       for r in report.results)),
                       time=f"{report.seconds:.1f}")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"checklist.item{r.item}", name=r.name)
        if r.figures:
            props = ET.SubElement(case, "properties")
            for name, value in r.figures:
                ET.SubElement(props, "property", name=name, value=str(value))
        if r.failed:
            ET.SubElement(case, "failure", message=r.detail)
        elif r.status is not checks.Status.OK:
            ET.SubElement(case, "skipped", message=f"{r.status}: {r.detail}")
    return suite
