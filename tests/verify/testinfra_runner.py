"""The go-live checks' `Runner` over a testinfra host (its ssh backend: plain OpenSSH with the
suite's ssh_config, sudo when --sudo is given)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator

from testinfra.host import Host

from ibkr_ops.checks import Ran, Result, Unreachable
from ibkr_ops.checks.runner import free_port, port_open

# What the `judge` fixture gives a test: a check's result in, the test's outcome out.
Judge = Callable[[Result], Result]


class TestinfraRunner:
    """`ibkr_ops.checks.Runner` for a testinfra host."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def name(self) -> str:
        return str(self.host.backend.get_pytest_id())

    def run(self, command: str, *, timeout: float | None = None) -> Ran:
        """testinfra has no timeout; the ssh_config's ServerAlive options end a dead session."""
        try:
            result = self.host.run(command)
        except RuntimeError as exc:  # testinfra's ssh backend: ssh itself exited 255
            why = getattr(exc.args[0], "stderr", "").strip() if exc.args else ""
            raise Unreachable(why or "ssh exited 255") from None
        return Ran(result.rc, result.stdout, result.stderr)

    @contextlib.contextmanager
    def forward(self, host: str, port: int) -> Iterator[int]:
        """`ssh -L`: a local port forwarded to ``host:port`` on the host."""
        local = free_port()
        proc = subprocess.Popen([*self.ssh_command(), "-N", "-o", "ExitOnForwardFailure=yes",
                                 "-L", f"127.0.0.1:{local}:{host}:{port}",
                                 self.host.backend.host.name],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while not port_open(local):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise Unreachable(f"the SSH tunnel to {host}:{port} did not open "
                                      f"(ssh -L exit {proc.poll()})")
                time.sleep(0.2)
            yield local
        finally:
            proc.terminate()
            proc.wait(10)
            if proc.stderr is not None:
                proc.stderr.close()

    def ssh_command(self) -> list[str]:
        """The ssh command line testinfra's ssh backend uses for this host (same config, keys)."""
        backend = self.host.backend
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
