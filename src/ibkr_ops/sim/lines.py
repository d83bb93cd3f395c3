"""Text lines as Java's ``BufferedReader.readLine`` splits them.

IBC's command server reads its commands that way, so the simulated one does too; the control
channel and the stand-in's pipe to its API child use the same rule, so a client that works
with one works with all.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator


async def read_lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """Lines ended by LF, CR or CRLF, the terminator dropped; a last unended line counts."""
    buffer = b""
    skip_lf = False
    while True:
        chunk = await reader.read(4096)
        if not chunk:
            if buffer:
                yield buffer.decode("utf-8", "replace")
            return
        buffer += chunk
        while buffer:
            if skip_lf and buffer.startswith(b"\n"):
                buffer = buffer[1:]
            skip_lf = False
            match = re.search(b"[\r\n]", buffer)
            if match is None:
                break
            cut = match.start()
            line, terminator, buffer = buffer[:cut], buffer[cut:cut + 1], buffer[cut + 1:]
            skip_lf = terminator == b"\r"
            yield line.decode("utf-8", "replace")
