"""``python3 -m ibkr_ops.sim`` and the zipapp entry point."""

import sys

from ibkr_ops.sim.cli import main

sys.exit(main())
