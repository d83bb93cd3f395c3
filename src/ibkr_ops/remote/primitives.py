"""One host's connection and how steps run on it (no config, no output).

Privileged work goes through ``Host.root``: plain as root, ``sudo -n`` otherwise (a password
prompt would hang an unattended run). A ``Step`` is a command plus what it uploads first:
uploads travel over SFTP into a private temporary directory, where the command finds them in
``$STAGED`` (``files`` builds the commands that move them into place).
"""

from __future__ import annotations

import base64
import io
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import fabric  # type: ignore[import-untyped]
from invoke.runners import Result

from ibkr_ops.errors import OpsError

# The variable a step's command finds its upload in (a path in the private directory).
STAGED = '"$STAGED"'


@dataclass(frozen=True)
class Upload:
    """What a step puts in the private upload directory first: bytes, a local file streamed
    (an installer), or neither (a name for the host to download into)."""

    name: str
    data: bytes | None = None
    path: Path | None = None


@dataclass(frozen=True)
class Step:
    """One action on a host as root: the command it runs, named for failures and progress.

    Plain data, so a plan's steps can be read and compared without a host."""

    command: str
    what: str = "a command"
    say: str | None = None
    timeout: int | None = None
    upload: Upload | None = None


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

    @property
    def address(self) -> str:
        """The address the connection reached (an ssh_config name resolved)."""
        return str(self.conn.host)

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

    def run_step(self, step: Step) -> Result:
        """Stage the step's upload (its path in ``$STAGED``), then run its command as root."""
        command = step.command
        if step.upload is not None:
            command = f"STAGED={shlex.quote(self._stage(step.upload))}; {command}"
        return self.root(command, what=step.what, timeout=step.timeout)

    def _stage(self, upload: Upload) -> str:
        if upload.data is not None:
            return self.upload(upload.data, upload.name)
        if upload.path is not None:
            with upload.path.open("rb") as handle:
                return self.put_stream(handle, upload.name)
        return f"{self.tmpdir()}/{upload.name}"

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


def run_steps(host: Host, steps: Iterable[Step], progress: Callable[[str], None]) -> None:
    """Run steps in order, saying each one that says something; the first failure stops."""
    for step in steps:
        if step.say:
            progress(step.say)
        host.run_step(step)


def _failure(what: str, result: Result) -> str:
    lines = [ln for ln in (result.stderr or result.stdout or "").strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit status {result.exited}"
    if "No space left on device" in (result.stderr or ""):
        return f"{what} failed: the host's disk is full; free space and re-run"
    return f"{what} failed on the host: {last[:200]}"
