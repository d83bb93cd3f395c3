"""Which Gateways a host has, and how a host tool is pointed at one of them.

A host's Gateways are found by their settings: ``/etc/ibkr/ops.json`` is the single-Gateway
layout, ``/etc/ibkr/NAME/ops.json`` instance NAME. One shell command lists them, parsed
without a connection; ``on_host`` runs it over the connection a task holds.
"""

from __future__ import annotations

import shlex

from ibkr_ops.errors import UsageError
from ibkr_ops.host.installed import option_instance
from ibkr_ops.layout import CONFIG_ROOT, DEFAULT, Layout, check_instance
from ibkr_ops.remote.primitives import Host

_OPS = DEFAULT.ops_json.rsplit("/", 1)[1]
# Each Gateway's settings file, the single-Gateway layout's first.
LIST_COMMAND = (f"for f in {shlex.quote(DEFAULT.ops_json)} {shlex.quote(CONFIG_ROOT)}/*/"
                f"{_OPS}; do [ -f \"$f\" ] && echo \"$f\"; done; true")


def layout_name(word: str) -> str | None:
    """An instance name as a listing shows it ('-': the single-Gateway layout); '' for a
    directory that is no instance's (a copy of ops.json in the backup directory)."""
    if word == "-":
        return None
    try:
        return check_instance(word)
    except ValueError:
        return ""


def parse_listing(text: str) -> list[Layout]:
    """The Gateways ``LIST_COMMAND`` printed: the single-Gateway layout first, then the
    instances by name."""
    found: list[Layout] = []
    for path in (raw.strip() for raw in text.splitlines()):
        if path == DEFAULT.ops_json:
            found.insert(0, DEFAULT)
            continue
        inner = path.removeprefix(CONFIG_ROOT + "/").removesuffix("/" + _OPS)
        if path.endswith("/" + _OPS) and "/" not in inner and (name := layout_name(inner)):
            found.append(Layout(name))
    return sorted(found, key=lambda layout: (layout.instance is not None, layout.instance or ""))


def names(layouts: list[Layout]) -> str:
    """The Gateways for a message: 'paper, live' or 'the single Gateway'."""
    return ", ".join(layout.instance or "the single Gateway" for layout in layouts) or "none"


def on_host(host: Host, instance: str | None = None) -> list[Layout]:
    """The host's Gateways, or only ``instance`` (UsageError if the host has no such one).
    A host with no settings at all is taken as the single-Gateway layout, whose tools then
    say what is missing."""
    found = parse_listing(str(host.root(LIST_COMMAND, warn=True).stdout))
    if instance is None:
        return found or [DEFAULT]
    wanted = Layout(option_instance(instance))
    if wanted not in found:
        raise UsageError(f"{host.name} has no Gateway instance {instance!r} (it has: "
                         f"{names(found)})")
    return [wanted]


def tool_command(tool: str, layout: Layout, *args: str) -> str:
    """A host tool acting on one Gateway, as its units call it (``--instance NAME``)."""
    return " ".join([shlex.quote(tool) + layout.instance_args, *(shlex.quote(a) for a in args)])
