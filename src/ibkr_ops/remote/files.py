"""File and directory steps: each a shell command that leaves whole files or none.

A file reaches its place by ``install`` to a sibling name and a rename, so a reader sees the
old file or the new one, never half of one; a directory is replaced the same way.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from ibkr_ops.remote.primitives import STAGED, Step, Upload
from ibkr_ops.render import ManagedFile


def quoted(paths: Iterable[str]) -> str:
    return " ".join(shlex.quote(p) for p in paths)


def make_dirs(paths: Iterable[str], mode: int, owner: str = "root") -> str:
    """Create directories (and parents) with ``mode`` and owner; existing ones are kept."""
    who = "" if owner == "root" else f" -o {shlex.quote(owner)} -g {shlex.quote(owner)}"
    return f"install -d -m {mode:04o}{who} {quoted(paths)}"


def put(f: ManagedFile) -> Step:
    """Upload ``f`` and move it into place with its mode and owner, atomically."""
    new, final = shlex.quote(f"{f.path}.ibkr-ops-new"), shlex.quote(f.path)
    # A copy cut short (disk full) is removed, so only whole files are ever renamed or left.
    command = (f"install -D -m {f.mode:04o} -o {shlex.quote(f.owner)} -g {shlex.quote(f.group)} "
               f"{STAGED} {new} && mv -f {new} {final} || {{ rm -f {new}; exit 1; }}; "
               f"rm -f {STAGED}")
    return Step(command, what=f"writing {f.path}", say=f"writing {f.path}",
                upload=Upload(f.path.strip("/").replace("/", "_"), data=f.content))


def swap_dir(new: str, final: str) -> str:
    """Put a completely unpacked ``new`` in place of ``final`` in two renames."""
    old = f"{final}.ibkr-ops-old"
    return (f"if [ -e {shlex.quote(final)} ]; then mv {shlex.quote(final)} {shlex.quote(old)}; "
            f"fi; mv {shlex.quote(new)} {shlex.quote(final)}; rm -rf {shlex.quote(old)}")


def record(text: str, path: str) -> str:
    """Write one line to ``path`` (a source marker), the step's last act."""
    return f"printf '%s\\n' {shlex.quote(text)} > {shlex.quote(path)}"
