"""Desired state and host facts → what to do. Pure, so every decision is testable without a host."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote.artifacts import GatewayInstaller, IbcSource
from ibkr_ops.remote.facts import Facts
from ibkr_ops.render import ManagedFile


def _watch_inputs(layout: Layout) -> tuple[str, ...]:
    """What the login watch reads once at its start: a change restarts it (it resumes at its
    cursor)."""
    return (layout.unit_path(layout.watch_unit), layout.tools_zip, layout.ops_json)


def _gateway_inputs(layout: Layout) -> tuple[str, ...]:
    """Files the Gateway (or IBC) reads at start: a change needs a Gateway restart."""
    return (layout.config_ini, layout.unit_path(layout.gateway_unit),
            layout.unit_path(layout.display_unit))


@dataclass
class Plan:
    """Every action for one host, in the order they are applied."""

    packages: list[str] = field(default_factory=list)
    create_user: bool = False
    ibc: IbcSource | None = None
    gateway: GatewayInstaller | None = None
    files: list[ManagedFile] = field(default_factory=list)
    unchanged_files: list[ManagedFile] = field(default_factory=list)
    daemon_reload: bool = False
    enable: list[str] = field(default_factory=list)
    restart_display: bool = False
    gateway_action: str | None = None  # "restart" or "start"
    gateway_reason: str = ""
    extra_units: tuple[str, ...] = ()
    restart_extra: list[str] = field(default_factory=list)
    restart_watch: bool = False
    layout: Layout = DEFAULT

    @property
    def changes_anything(self) -> bool:
        return bool(self.packages or self.create_user or self.ibc or self.gateway or self.files
                    or self.enable or self.gateway_action)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_plan(facts: Facts, files: list[ManagedFile], ibc: IbcSource | None,
              gateway: GatewayInstaller | None, extra_units: tuple[str, ...] = (),
              extra_inputs: tuple[str, ...] = (), layout: Layout = DEFAULT) -> Plan:
    """Compare what the host has with what it should have; ``None`` sources mean keep."""
    plan = Plan(packages=facts.missing_packages, create_user=not facts.user_exists,
                extra_units=extra_units, layout=layout)
    if ibc is not None and facts.ibc_source != ibc.ident:
        plan.ibc = ibc
    # The same installer under another file name is the same build: nothing to install.
    if (gateway is not None and facts.gateway_source != gateway.ident
            and facts.gateway_build.get("sha256") != gateway.sha256):
        plan.gateway = gateway
    for f in files:
        if facts.checksums.get(f.path) == sha256(f.content):
            plan.unchanged_files.append(f)
        else:
            plan.files.append(f)
    changed = {f.path for f in plan.files}
    plan.daemon_reload = any(f.is_unit for f in plan.files)
    plan.enable = [u for u in (*layout.enabled_units, *extra_units)
                   if facts.units.get(u, ("none", ""))[0] != "enabled"]
    # An extra unit (the demo's receiver) restarts when any extra file changed: its own.
    extra_changed = any(p in changed for p in extra_inputs)
    plan.restart_extra = [u for u in extra_units if layout.unit_path(u) in changed
                          or extra_changed]
    plan.restart_watch = any(p in changed for p in _watch_inputs(layout))
    plan.restart_display = layout.unit_path(layout.display_unit) in changed
    reasons = [p.rsplit("/", 1)[-1] for p in _gateway_inputs(layout) if p in changed]
    reasons += ["IBC"] if plan.ibc else []
    reasons += ["Gateway installation"] if plan.gateway else []
    active = facts.units.get(layout.gateway_unit, ("", "inactive"))[1] == "active"
    if reasons and active:
        plan.gateway_action, plan.gateway_reason = "restart", "changed: " + ", ".join(reasons)
    elif not active:
        plan.gateway_action, plan.gateway_reason = "start", "not running"
    return plan


@dataclass
class HostPlan:
    """A host's plan for several Gateways: one ``Plan`` per instance, in the order given,
    whose shared parts (packages, user, IBC, the Gateway build) are the first's, and the
    instance (if any) that takes over the host's single-Gateway layout (``migrate_into``)."""

    plans: list[Plan]
    migrate_into: Layout | None = None

    @property
    def shared(self) -> Plan:
        return self.plans[0]

    @property
    def files(self) -> list[ManagedFile]:
        """Every file to write, once (the host tools are in every instance's plan)."""
        return list({f.path: f for p in self.plans for f in p.files}.values())

    @property
    def unchanged_files(self) -> list[ManagedFile]:
        changed = {f.path for f in self.files}
        return [f for f in {f.path: f for p in self.plans for f in p.unchanged_files}.values()
                if f.path not in changed]

    @property
    def daemon_reload(self) -> bool:
        return self.migrate_into is not None or any(p.daemon_reload for p in self.plans)

    @property
    def changes_anything(self) -> bool:
        return self.migrate_into is not None or any(p.changes_anything for p in self.plans)


MIGRATION_REASON = "moved in from the single-Gateway layout: {old} stops, this one starts"


def make_host_plan(facts: Facts, files: list[tuple[Layout, list[ManagedFile]]],
                   ibc: IbcSource | None, gateway: GatewayInstaller | None,
                   extra_units: tuple[str, ...] = (), extra_inputs: tuple[str, ...] = (),
                   migrate_into: Layout | None = None) -> HostPlan:
    """One plan per (layout, its files, shared ones included); the host's extra units (the
    demo's receiver) go with the first. The instance that takes over the single-Gateway
    layout starts once its predecessor has stopped: that is the one restart it costs."""
    plans = [make_plan(facts, own, ibc, gateway, extra_units if n == 0 else (),
                       extra_inputs if n == 0 else (), layout)
             for n, (layout, own) in enumerate(files)]
    for plan in plans:
        if migrate_into is not None and plan.layout == migrate_into:
            plan.gateway_action = "start"
            plan.gateway_reason = MIGRATION_REASON.format(old=DEFAULT.gateway_unit)
    return HostPlan(plans, migrate_into)
