"""Where the package finds its files that are not modules it imports: the Jinja2 templates,
the host tools' shims and the go-live checks' host-side probes.

All of them are package data read through importlib.resources, so a wheel (``pipx install``)
works from any directory exactly as a checkout does; nothing here knows where a checkout is.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

import jinja2

_PACKAGE = "ibkr_ops"
_TEMPLATES = "templates"


def template_loader() -> jinja2.BaseLoader:
    """Jinja2's loader for the package's templates (IBC's config.ini, every unit and timer)."""
    return jinja2.PackageLoader(_PACKAGE, _TEMPLATES)


def templates() -> Traversable:
    """The directory of Jinja2 templates, to name it in an error."""
    return resources.files(_PACKAGE) / _TEMPLATES


def scripts() -> Traversable:
    """The directory of host-side executables (thin shims over ``ibkr_ops.host``)."""
    return resources.files(_PACKAGE) / "scripts"


def hostside(script: str) -> str:
    """The source of a host-side probe of the go-live checks (``ibkr_ops.checks.hostside``)."""
    return (resources.files("ibkr_ops.checks.hostside") / script).read_text(encoding="utf-8")

