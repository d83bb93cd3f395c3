"""A trading bot's first minute, as a separate process: `python -m ibkr_ops.checks.botclient
PORT CLIENT_ID` connects ib_async to 127.0.0.1:PORT and prints one JSON object (connect time,
managed accounts, server time). Its own process, so ib_async's event loop and a hung
connection stay out of the caller's, and a timeout can end it."""

from __future__ import annotations

import json
import sys
import time

from ib_async import IB


def main(argv: list[str] | None = None) -> int:
    port, client_id = (int(arg) for arg in (argv or sys.argv[1:]))
    ib = IB()
    ib.RequestTimeout = 10
    started = time.monotonic()
    ib.connect("127.0.0.1", port, clientId=client_id, timeout=20)
    connect_s = time.monotonic() - started
    try:
        now = ib.reqCurrentTime()
        accounts = ib.managedAccounts()
    finally:
        ib.disconnect()
    print(json.dumps({"connect_s": round(connect_s, 3), "time": now.timestamp(),
                      "accounts": accounts}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
