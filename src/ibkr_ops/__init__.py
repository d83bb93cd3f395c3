"""ibkr-ops: IB Gateway under IBC as a verified, self-healing systemd service."""

__version__ = "0.1.0"
