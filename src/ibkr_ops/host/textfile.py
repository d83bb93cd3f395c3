"""Reading a small settings file given by path: only a regular file, of bounded size, as UTF-8.

A named pipe or /dev/zero given by mistake would otherwise hang the reader or fill its
memory; every problem is one UsageError naming the path (and the line of bad UTF-8), never
the contents. Standard library only.
"""

from __future__ import annotations

import os
import stat

from ibkr_ops.errors import UsageError


def read_text(path: str | os.PathLike[str], *, what: str, max_bytes: int = 256 * 1024,
              private: bool = False) -> str:
    """The file's text; with ``private`` refuse one that group or others can read.

    ``what`` names the kind of file in the messages ("credentials.env", "settings file").
    """
    if "\0" in os.fspath(path):
        raise UsageError(f"the path of the {what} has a NUL character")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; give the path of your {what}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror}); check the file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a directory" if stat.S_ISDIR(info.st_mode) else
                    "a named pipe" if stat.S_ISFIFO(info.st_mode) else
                    "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "not a regular file")
            raise UsageError(f"{path}: is {kind}, not a {what}; give the path of your {what}")
        if private and info.st_mode & 0o077:
            raise UsageError(f"{path}: readable by group or others (mode "
                             f"{info.st_mode & 0o777:o}); run: chmod 600 {path}")
        chunks: list[bytes] = []
        while sum(map(len, chunks)) <= max_bytes and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror}); check the file") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise UsageError(f"{path}: larger than {max_bytes // 1024} KiB, not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}, line {line}: not UTF-8 text; save the file as UTF-8") from None
