"""The go-live checklist as a library: each check reads a host through a `Runner` and returns
a `Result` (item, status ok / fail / not configured / skipped, a one-line detail, figures).

`go-live` and `migrate` call `read_only` and `invoke verify` calls `everything`, in-process
over their own connection; the testinfra suite (`nox -s verify`) wraps each check in a test
of its own.
"""

from ibkr_ops.checks.checklist import read_only
from ibkr_ops.checks.expect import Expect, Installed, installed_layouts, read_installed
from ibkr_ops.checks.result import TITLES, Result, Status
from ibkr_ops.checks.runner import FabricRunner, Ran, Runner, Unreachable

__all__ = ["TITLES", "Expect", "FabricRunner", "Installed", "Ran", "Result", "Runner", "Status",
           "Unreachable", "installed_layouts", "read_installed", "read_only"]
