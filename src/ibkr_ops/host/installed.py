"""Which Gateway a host tool acts on: ``--config``, ``--instance`` or what the host has installed.

A host runs either the single-Gateway layout (``/etc/ibkr/ops.json``) or named instances
(``/etc/ibkr/NAME/ops.json``, see ``layout.py``). A unit always says which one it means
(``Layout.instance_args``); a person at the shell need not when there is only one. With
neither option:
- the default layout's settings exist: that Gateway, exactly as before instances existed;
- else exactly one instance: that one;
- else several: the tools that act on one Gateway refuse with one line naming them (``one``),
  the health check takes them all (``every``);
- else nothing installed: the tools' built-in defaults (a developer's machine).
Standard library only, and cheap: the health check runs this at every start.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from ibkr_ops import layout
from ibkr_ops.errors import UsageError
from ibkr_ops.host.config import HostConfig

# A test points the tools at a directory of its own, as IBKR_OPS_JOURNAL_SOCKET does the journal.
ROOT_VARIABLE = "IBKR_OPS_CONFIG_ROOT"


@dataclass(frozen=True)
class Target:
    """One Gateway to act on: its instance name (None: the single-Gateway layout, or a file
    given with ``--config``) and its settings file (None: nothing installed, the defaults)."""

    instance: str | None
    path: str | None

    def load(self) -> HostConfig:
        """Its settings; those of an instance know its name even if the file does not say it."""
        config = HostConfig() if self.path is None else HostConfig.load(self.path)
        if config.instance is None and self.instance is not None:
            config = dataclasses.replace(config, instance=self.instance)
        return config


def _root() -> str:
    return os.environ.get(ROOT_VARIABLE) or layout.CONFIG_ROOT


def _rooted(path: str) -> str:
    """A layout path under the root (the layout names it under ``/etc/ibkr``)."""
    return _root() + path.removeprefix(layout.CONFIG_ROOT)


def ops_json(instance: str | None) -> str:
    """The settings file of the default layout (None) or of one instance."""
    return _rooted(layout.Layout(instance).ops_json)


def instances() -> list[str]:
    """The named instances installed on this host, sorted: directories of the root with a
    valid instance name and an ops.json (``backup`` and the like are never one)."""
    try:
        entries = os.listdir(_root())
    except OSError:
        return []
    found = []
    for name in entries:
        try:
            layout.check_instance(name)
        except ValueError:
            continue
        if os.path.isfile(ops_json(name)):
            found.append(name)
    return sorted(found)


def option_instance(name: str) -> str:
    """An ``--instance`` value as units and directories can carry it; a UsageError saying why
    not (shared by the host tools and the operator's tasks)."""
    try:
        return layout.check_instance(name)
    except ValueError as exc:
        raise UsageError(f"--instance: {exc}") from None


def every(config: str | None, instance: str | None) -> list[Target]:
    """The Gateways a command means: the one named, or all this host runs (see above)."""
    if config is not None and instance is not None:
        raise UsageError("--config and --instance do not go together: give one")
    if config is not None:
        return [Target(None, config)]
    if instance is not None:
        path = ops_json(option_instance(instance))
        if not os.path.isfile(path):
            installed = instances()
            raise UsageError(f"this host has no Gateway instance {instance!r} ({path} is missing)"
                             + (f"; it runs {', '.join(installed)}" if installed else ""))
        return [Target(instance, path)]
    if os.path.isfile(ops_json(None)):
        return [Target(None, ops_json(None))]
    named = instances()
    if not named:
        return [Target(None, None)]
    return [Target(name, ops_json(name)) for name in named]


def one(config: str | None, instance: str | None) -> Target:
    """The one Gateway a command acts on; several installed and none named is a UsageError."""
    targets = every(config, instance)
    if len(targets) > 1:
        names = ", ".join(t.instance or "" for t in targets)
        raise UsageError(f"this host runs Gateway instances {names}; give --instance NAME")
    return targets[0]
