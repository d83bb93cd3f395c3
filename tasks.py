"""Operator tasks: `invoke --list`. Only composes the collections in ibkr_ops.tasks."""

from invoke import Collection

from ibkr_ops.tasks import deploy

ns = Collection()
ns.add_task(deploy.render)
ns.configure({"run": {"echo": False}})
