"""Checklist item 10: a trading bot (ib_async) connects through an SSH tunnel to the API."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from checklist import ACCOUNT_PREFIX, Expect, poll
from sim_support import BOT_CLIENT, free_port, port_open
from testinfra.host import Host


def ssh_command(host: Host) -> list[str]:
    """The ssh command line testinfra's ssh backend uses for this host (same config and keys)."""
    backend = host.backend
    argv = ["ssh"]
    if backend.ssh_config:
        argv += ["-F", backend.ssh_config]
    if backend.host.user:
        argv += ["-o", f"User={backend.host.user}"]
    if backend.host.port:
        argv += ["-o", f"Port={backend.host.port}"]
    if backend.ssh_identity_file:
        argv += ["-i", backend.ssh_identity_file]
    argv += (backend.ssh_extra_args or "").split()
    return [*argv, "-o", "ConnectTimeout=10", "-o", "ControlPath=none"]


@pytest.fixture
def tunnel(host: Host, expect: Expect, say: Callable[[str], None]) -> Iterator[int]:
    """`ssh -L`: a local port forwarded to the API address on the host; yields the port."""
    port = free_port()
    forward = f"127.0.0.1:{port}:{expect.api_host}:{expect.api_port}"
    proc = subprocess.Popen([*ssh_command(host), "-N", "-o", "ExitOnForwardFailure=yes",
                             "-L", forward, host.backend.host.name],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        poll("the SSH tunnel to the API port", lambda: port_open(port) or
             (proc.poll() is not None and pytest.fail(f"ssh -L exited {proc.returncode}"))
             or None, 20, say, interval=0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.checklist(10)
def test_bot_connects_through_ssh_tunnel(expect: Expect, tunnel: int,
                                         record: Callable[[str, object], None]) -> None:
    """ib_async with a fresh clientId reads the managed accounts and the server time."""
    # Fresh: well away from the small ids bots use and from the health check's own id.
    client_id = 20000 + secrets.randbelow(10000)
    client_id += client_id == expect.health_client_id
    done = subprocess.run([sys.executable, str(BOT_CLIENT), str(tunnel), str(client_id), "basic"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"ib_async client failed: {done.stderr.strip()[-500:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    accounts = result["accounts"]
    prefix = ACCOUNT_PREFIX[expect.trading_mode]
    assert accounts, "the Gateway reported no managed accounts"
    assert all(a.startswith(prefix) for a in accounts), \
        f"managed accounts {accounts} are not {expect.trading_mode} accounts ({prefix}...)"
    server = dt.datetime.fromtimestamp(result["time"], dt.UTC)
    skew = abs((server - dt.datetime.now(dt.UTC)).total_seconds())
    assert skew < 600, f"server time {server:%Y-%m-%d %H:%M:%S} UTC is {skew:.0f} s off this clock"
    record("connect_s", result["connect_s"])
