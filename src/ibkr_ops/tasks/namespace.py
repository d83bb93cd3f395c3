"""The operator's Invoke namespace, built in one place for `tasks.py` and any other entry point."""

from __future__ import annotations

from invoke.collection import Collection

from ibkr_ops.tasks import (
    demo,
    deploy,
    hosts,
    migrate,
    sandbox,
    screen,
    sim,
    uninstall,
    upgrade,
    verify,
)


def _long_flags_only(collection: Collection) -> Collection:
    """Switch off Invoke's automatic short flags for every task: they turn `--host` into `-h`,
    which shadows `-h/--help`, and give a second option starting with the same letter an
    empty flag (`--=STRING` in `invoke --help install`)."""
    for task in collection.tasks.values():
        task.auto_shortflags = False
    for sub in collection.collections.values():
        _long_flags_only(sub)
    return collection


def build() -> Collection:
    """Every operator task, with the sandbox and simulator collections beside them."""
    ns = Collection()
    for t in (deploy.render, hosts.install, hosts.status, hosts.logs, hosts.restart,
              hosts.health_check, hosts.pre_restart_check, hosts.notify, verify.verify,
              migrate.migrate, migrate.go_live, upgrade.upgrade, screen.screenshot,
              screen.vnc_session, uninstall.uninstall, demo.demo):
        ns.add_task(t)
    ns.add_collection(sandbox.ns, "sandbox")
    ns.add_collection(sim.ns, "sim")
    ns.configure({"run": {"echo": False}})
    return _long_flags_only(ns)
