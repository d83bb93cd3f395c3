"""Where the package finds its files that are not modules it imports: the Jinja2 templates,
the host tools' shims, the go-live checks' host-side probes and their testinfra suite.

One place, so that where they live is decided here and nowhere else. The probes are package
data already; templates, shims and the suite are still read from the checkout the package
was installed from (``pip install -e .``). Shipping them in a wheel means moving them under
``src/ibkr_ops/`` and changing the three functions below, nothing else.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def templates() -> Path:
    """The directory of Jinja2 templates (IBC's config.ini, every unit and timer)."""
    return _CHECKOUT / "templates"


def scripts() -> Path:
    """The directory of host-side executables (thin shims over ``ibkr_ops.host``)."""
    return _CHECKOUT / "scripts"


def verify_suite() -> Path:
    """The testinfra suite that wraps the go-live checks for `invoke verify`."""
    return _CHECKOUT / "tests" / "verify"


def hostside(script: str) -> str:
    """The source of a host-side probe of the go-live checks (``ibkr_ops.checks.hostside``)."""
    return (resources.files("ibkr_ops.checks.hostside") / script).read_text(encoding="utf-8")
