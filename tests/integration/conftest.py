"""Sandbox guests for integration tests: real systemd hosts, brought up once per session.

The guests live in a state directory of their own (so a developer's `invoke sandbox.*`
guests are never touched) but boot from the shared cached base tree, which the first
session on a machine builds (about two minutes). They are torn down when the session ends.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator

import pytest

from ibkr_ops import sandbox
from ibkr_ops.sandbox.paths import STATE_ENV, Layout, layout

#: Guests shared by the session are named it1, it2, ...; tests that reboot or destroy a
#: guest bring up one of their own instead.
SHARED_PREFIX = "it"


def sandbox_unavailable() -> str | None:
    """Why this machine cannot run sandbox guests, or None when it can."""
    if os.geteuid() != 0:
        return "sandbox guests need root (namespaces, overlay mounts, cgroups)"
    if shutil.which("systemd-nspawn") is None or shutil.which("debootstrap") is None:
        return "systemd-nspawn or debootstrap missing: apt-get install systemd-container debootstrap"
    return None


@pytest.fixture(scope="session")
def sandbox_layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    """A private sandbox state directory for this session; every guest in it is removed at
    the end. The environment variable is set process-wide so supervisors inherit it."""
    reason = sandbox_unavailable()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("sandbox")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STATE_ENV, str(state))
        try:
            yield layout()
        finally:
            sandbox.down()


@pytest.fixture(scope="session")
def sandbox_guests(sandbox_layout: Layout) -> Callable[[int], list[sandbox.Guest]]:
    """`sandbox_guests(n)`: the session's shared guests it1..itN, up and reachable by SSH.

    Guests already up are reused, so asking again costs a second, not a boot.
    """

    def bring_up(count: int) -> list[sandbox.Guest]:
        return sandbox.up([f"{SHARED_PREFIX}{i}" for i in range(1, count + 1)])

    return bring_up


@pytest.fixture(scope="session")
def sandbox_guest(sandbox_guests: Callable[[int], list[sandbox.Guest]]) -> sandbox.Guest:
    """The session's first shared guest (name, host, port, user, identity_file, ssh_config)."""
    return sandbox_guests(1)[0]


@pytest.fixture
def own_guest(
    sandbox_layout: Layout, request: pytest.FixtureRequest
) -> Iterator[sandbox.Guest]:
    """A guest for this test alone (it may reboot, power off or break it); removed after."""
    words = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    name = f"own-{words[:14]}".rstrip("-")
    (guest,) = sandbox.up([name])
    try:
        yield guest
    finally:
        sandbox.down(name)
