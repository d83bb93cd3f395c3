"""The installed command (`ibkr-gateway-ops TASK ...`): Invoke's `Program` over the operator
namespace, so a wheel or `pipx install` runs every task from any directory, with no
`tasks.py` to look for; in a checkout `invoke` and `tasks.py` give the same tasks."""

from __future__ import annotations

from invoke.program import Program

from ibkr_ops import __version__
from ibkr_ops.tasks.namespace import build

NAME = "ibkr-gateway-ops"

program = Program(version=__version__, namespace=build(), name=NAME, binary=NAME)
