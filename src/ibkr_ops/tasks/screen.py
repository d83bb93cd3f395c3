"""Tasks that show a person the Gateway's screen: `screenshot` and `vnc`."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from invoke.context import Context
from invoke.tasks import task

from ibkr_ops.errors import UsageError
from ibkr_ops.host.screen import Window
from ibkr_ops.remote import screen, vnc
from ibkr_ops.tasks.common import connected, ssh_configs, user_errors
from ibkr_ops.tasks.hosts import HOST_HELP


def default_out(host: str, now: dt.datetime) -> Path:
    """screenshot-HOST-YYYYmmdd-HHMMSS.png in the current directory."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", host)
    return Path(f"screenshot-{name}-{now:%Y%m%d-%H%M%S}.png")


def window_lines(windows: tuple[Window, ...]) -> list[str]:
    """The windows a person would see, or a line saying there are none."""
    if not windows:
        return ["no windows on the display (is the Gateway running? `invoke status`)"]
    return [f"  {w.describe()}" for w in windows]


@task(help={"host": HOST_HELP,
            "out": "where to write the PNG (default screenshot-HOST-TIME.png here)"})
def screenshot(c: Context, host: str | None = None, out: str | None = None) -> None:
    """Save a PNG of the Gateway's screen and list the windows on it."""
    with user_errors():
        if not host:
            raise UsageError("--host is required")
        path = screen.check_out(Path(out) if out else default_out(host, dt.datetime.now()))
        with connected(host) as target:
            shot = screen.take(target)
        screen.write_png(path, shot.png)
        print(f"{path}: {shot.width}x{shot.height}, display {shot.display} on {host}")
        print("\n".join(window_lines(shot.windows)))


@task(name="vnc", help={"host": HOST_HELP,
                        "interactive": "let your viewer click and type (a passkey, a device choice); "
                                       "default: view only",
                        "idle": "end after this many seconds with no viewer connected "
                                "(default 600)",
                        "limit": "end after this many seconds in any case (default 3600)",
                        "local_port": "port on 127.0.0.1 here for your viewer "
                                      "(default: a free one)"})
def vnc_session(c: Context, host: str | None = None, interactive: bool = False,
                idle: int = 600, limit: int = 3600, local_port: int = 0) -> None:
    """See the Gateway's screen live in a VNC viewer, over SSH (Ctrl-C ends it)."""
    with user_errors():
        if not host:
            raise UsageError("--host is required")
        if idle <= 0:
            raise UsageError("--idle must be more than 0 seconds")
        with vnc.session(host, interactive=interactive, max_s=limit, local_port=local_port,
                         ssh_configs=ssh_configs()) as s:
            mode = ("interactive: your clicks and keys reach the Gateway" if interactive
                    else "view only (--interactive to click and type)")
            port = s.forward.port
            print(f"VNC to the Gateway's screen on {host}, {mode}", flush=True)
            print(f"  address:  {s.address}   (e.g. `vncviewer 127.0.0.1::{port}`, "
                  f"or vnc://127.0.0.1:{port})", flush=True)
            print(f"  password: {s.password}   (this session only)", flush=True)
            print(f"Ends on Ctrl-C, after {idle:.0f} s without a viewer or after {limit} s.",
                  flush=True)
            try:
                why = vnc.wait(s, idle_s=idle, max_s=limit)
            except KeyboardInterrupt:
                why = "Ctrl-C"
        print(f"session ended ({why}); VNC server and tunnel stopped", flush=True)

