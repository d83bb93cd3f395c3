"""Small operations on one host, each taking a Fabric connection first (no config, no output).

Privileged work goes through ``Host.root``: plain as root, ``sudo -n`` otherwise (a password
prompt would hang an unattended run). Files travel over SFTP into a private temporary
directory and reach their place with ``install`` to a sibling name plus ``mv``: a rename,
so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import base64
import io
import shlex
from dataclasses import dataclass

import fabric  # type: ignore[import-untyped]
from invoke.runners import Result

from ibkr_ops.errors import OpsError


@dataclass
class Host:
    """A connection plus how to become root on it."""

    conn: fabric.Connection
    name: str
    sudo: bool = False
    _tmp: str | None = None

    def root(self, command: str, *, what: str = "a command", warn: bool = False,
             timeout: int | None = None, show: bool = False, pty: bool = False) -> Result:
        """Run a shell command as root; output hidden (it may concern secrets) unless ``show``."""
        result: Result = self.conn.run(self.as_root(command), hide=not show, warn=True,
                                       in_stream=False,
                                       timeout=timeout, pty=pty)
        if not result.ok and not warn:
            raise OpsError(_failure(what, result))
        return result

    def as_root(self, command: str) -> str:
        """The shell command that runs ``command`` as root for this SSH user."""
        return f"sudo -n sh -c {shlex.quote(command)}" if self.sudo else command

    def tmpdir(self) -> str:
        """A directory only the SSH user can read, for uploads on their way to root's files."""
        if self._tmp is None:
            result = self.conn.run("umask 077 && mktemp -d /tmp/ibkr-ops.XXXXXXXX", hide=True,
                                   in_stream=False)
            self._tmp = result.stdout.strip()
        return self._tmp

    def cleanup(self) -> None:
        """Remove the upload directory (best effort: the connection may be gone)."""
        if self._tmp is not None:
            self.conn.run(f"rm -rf {shlex.quote(self._tmp)}", hide=True, warn=True,
                          in_stream=False)
            self._tmp = None

    def upload(self, content: bytes, name: str) -> str:
        """Write bytes to a 0600 file in the private directory, over SFTP (never argv)."""
        path = f"{self.tmpdir()}/{name}"
        sftp = self.conn.sftp()
        with sftp.open(path, "wb") as handle:
            handle.chmod(0o600)
            handle.write(content)
        return path

    def put_file(self, path: str, content: bytes, mode: int, owner: str, group: str) -> None:
        """Atomically replace ``path`` with ``content`` and its final mode and owner."""
        staged = shlex.quote(self.upload(content, path.strip("/").replace("/", "_")))
        new, final = shlex.quote(f"{path}.ibkr-ops-new"), shlex.quote(path)
        # A copy cut short (disk full) is removed, so only whole files are ever renamed or left.
        self.root(what=f"writing {path}",
                  command=f"install -D -m {mode:04o} -o {shlex.quote(owner)} "
                  f"-g {shlex.quote(group)} {staged} {new} && mv -f {new} {final} "
                  f"|| {{ rm -f {new}; exit 1; }}; rm -f {staged}")

    def read_file(self, path: str) -> bytes | None:
        """A file's bytes (as root), or None when it does not exist."""
        result = self.root(f"test -f {shlex.quote(path)} && base64 -w0 {shlex.quote(path)}",
                           warn=True)
        if not result.ok:
            return None
        return base64.b64decode(result.stdout)

    def put_stream(self, data: io.BufferedIOBase, name: str) -> str:
        """Upload a large local file object (an installer) into the private directory."""
        path = f"{self.tmpdir()}/{name}"
        self.conn.sftp().putfo(data, path)
        return path


def _failure(what: str, result: Result) -> str:
    lines = [ln for ln in (result.stderr or result.stdout or "").strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit status {result.exited}"
    if "No space left on device" in (result.stderr or ""):
        return f"{what} failed: the host's disk is full; free space and re-run"
    return f"{what} failed on the host: {last[:200]}"
