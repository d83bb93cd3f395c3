"""Checklist item 10: a trading bot (ib_async) connects through an SSH tunnel to the API."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import sys

from ibkr_ops.checks.expect import Expect
from ibkr_ops.checks.result import Failed, Passed, check, require
from ibkr_ops.checks.runner import Runner

CLIENT_TIMEOUT_S = 60


@check(10)
def bot_connects(runner: Runner, expect: Expect) -> Passed:
    """ib_async with a fresh clientId reads the managed accounts and the server time."""
    # Fresh: well away from the small ids bots use and from the health check's own id.
    client_id = 20000 + secrets.randbelow(10000)
    client_id += client_id == expect.health_client_id
    with runner.forward(expect.api_host, expect.api_port) as port:
        try:
            done = subprocess.run([sys.executable, "-m", "ibkr_ops.checks.botclient", str(port),
                                   str(client_id)], capture_output=True, text=True,
                                  timeout=CLIENT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise Failed(f"the ib_async client did not finish within {CLIENT_TIMEOUT_S} s") from None
    lines = done.stderr.strip().splitlines()
    require(done.returncode == 0, f"ib_async client failed: {lines[-1] if lines else done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    accounts = result["accounts"]
    require(accounts, "the Gateway reported no managed accounts")
    require(all(expect.account_matches(a) for a in accounts),
            f"managed accounts {accounts} are not {expect.trading_mode} accounts "
            f"({expect.account_prefix}...)")
    server = dt.datetime.fromtimestamp(result["time"], dt.UTC)
    skew = abs((server - dt.datetime.now(dt.UTC)).total_seconds())
    require(skew < 600, f"server time {server:%Y-%m-%d %H:%M:%S} UTC is {skew:.0f} s off this clock")
    return Passed.of(f"ib_async (clientId {client_id}) read accounts {', '.join(accounts)}",
                     connect_s=float(result["connect_s"]))
