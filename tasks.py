"""Operator tasks: `invoke --list`. Only composes the collections in ibkr_ops.tasks."""

from ibkr_ops.tasks.namespace import build

ns = build()
