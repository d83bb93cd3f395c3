"""`invoke screenshot` and `invoke vnc` against a real installed guest, with a real viewer.

The guest runs the real IBC with the Gateway stand-in, in live mode, its second factor set
to a passkey-style dialog whose "Approve" button only a person can press: the dialog IBC
waits at, the window a screenshot must show, the button an interactive VNC viewer clicks
(and a view-only one cannot).
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import migrate_support as ms
import pytest
from invoke.context import Context
from test_install import shell

from ibkr_ops import sandbox
from ibkr_ops.host.screen import parse_children
from ibkr_ops.remote import vnc
from ibkr_ops.tasks.screen import screenshot

Image = pytest.importorskip("PIL.Image", reason="Pillow (vncdotool's dependency) is missing")

REPO = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("vnc_client.py")
DIALOG_TITLE = "Second Factor Authentication"
GATEWAY = "ibkr-gateway.service"


@pytest.fixture(scope="module")
def installed(sandbox_guests: Callable[[int], list[sandbox.Guest]]) -> Iterator[sandbox.Guest]:
    guest = sandbox_guests(1)[0]
    ms.install(guest.name, ms.deployment("live", username="screen_trader"))
    yield guest
    ms.set_sim_property(guest.name, "second_factor", None)
    shell(guest, f"systemctl restart {GATEWAY}")


@dataclass
class Dialog:
    """The stand-in's passkey dialog on the Gateway's display (:1), as xwininfo places it."""

    guest: sandbox.Guest
    since: str
    x: int
    y: int
    width: int
    height: int

    @property
    def approve(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height - 6  # the button along the bottom

    def journal(self) -> str:
        return shell(self.guest, f"journalctl -u {GATEWAY} -o cat --no-pager --since @{self.since}")

    def approved(self) -> bool:
        return "second factor approved (Approve button)" in self.journal()

    def logged_in(self) -> bool:
        return "IBC: Login has completed" in self.journal()

    def on_screen(self) -> bool:
        return find_dialog(self.guest) is not None


def find_dialog(guest: sandbox.Guest) -> tuple[int, int, int, int] | None:
    for window_id, window in parse_children(shell(guest, "xwininfo -display :1 -root -children")):
        if window.title == DIALOG_TITLE and "IsViewable" in shell(
                guest, f"xwininfo -display :1 -id {window_id}"):
            return window.x, window.y, window.width, window.height
    return None


@pytest.fixture
def dialog(installed: sandbox.Guest) -> Iterator[Dialog]:
    """A live login waiting at the passkey dialog, until someone presses Approve."""
    ms.set_sim_property(installed.name, "second_factor", "passkey")
    since = shell(installed, "date +%s").strip()
    shell(installed, f"systemctl restart {GATEWAY}")
    deadline = time.monotonic() + 60
    while (place := find_dialog(installed)) is None:
        assert time.monotonic() < deadline, shell(installed, f"journalctl -u {GATEWAY} -n 30")
        time.sleep(0.5)
    yield Dialog(installed, since, *place)
    ms.set_sim_property(installed.name, "second_factor", "off")


def view(address: str, password: str, out: Path, click: tuple[int, int] | None = None,
         ) -> dict[str, int]:
    """Connect the real viewer through the tunnel: capture a frame, click if asked."""
    argv = [sys.executable, str(CLIENT), address, str(out)]
    argv += [str(v) for v in click] if click else []
    done = subprocess.run(argv, input=password + "\n", capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def not_flat(path: Path) -> int:
    """How many colours the picture has (1 means a blank screen)."""
    with Image.open(path) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])


def non_loopback_listeners(guest: sandbox.Guest) -> set[str]:
    lines = shell(guest, "ss -Hltn").splitlines()
    local = {line.split()[3] for line in lines if len(line.split()) > 3}
    return {a for a in local if not re.match(r"(127\.\d+\.\d+\.\d+|\[::1\]):\d+$", a)}


def vnc_traces(guest: sandbox.Guest) -> str:
    """Every x11vnc process, listener and transient unit left on the guest."""
    return shell(guest, "pgrep -a x11vnc; ss -Hltnp | grep x11vnc; "
                        f"systemctl list-units --all --no-legend '{vnc.UNIT_PREFIX}*'").strip()


def readable_everywhere(guest: sandbox.Guest) -> str:
    """What any local user or admin can read: process lists, environments, the journal."""
    return shell(guest, "ps -eo args; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; "
                        "journalctl --no-pager -o cat; "
                        f"systemctl show '{vnc.UNIT_PREFIX}*' 2>/dev/null")


def test_screenshot_is_a_png_of_the_display_with_its_windows(
        dialog: Dialog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gw.png"
    screenshot(Context(), host=dialog.guest.name, out=str(out))
    printed = capsys.readouterr().out
    with Image.open(out) as image:
        assert (image.format, image.size) == ("PNG", (1280, 1024))
        inside = image.convert("RGB").getpixel((dialog.x + dialog.width // 2,
                                                 dialog.y + dialog.height // 3))
    assert not_flat(out) > 1 and inside != (0, 0, 0)  # the dialog, not a black screen
    assert out.stat().st_mode & 0o777 == 0o600
    assert f"'{DIALOG_TITLE}' (" in printed and f"at {dialog.x},{dialog.y})" in printed
    assert "'IBKR Gateway' (" in printed  # the stand-in's login frame behind it
    # xwd is a one-shot client: nothing of it is left running.
    assert shell(dialog.guest, "pgrep -a xwd; pgrep -a xwininfo").strip() == ""


def test_vnc_view_only_shows_the_screen_and_ignores_clicks(dialog: Dialog,
                                                          tmp_path: Path) -> None:
    guest = dialog.guest
    before = non_loopback_listeners(guest)
    # Sample the listeners continuously while the server starts and serves.
    shell(guest, "nohup sh -c 'for i in $(seq 150); do ss -Hltn; sleep 0.05; done' "
                 ">/root/ss-during.log 2>&1 &")
    with vnc.session(guest.name, interactive=False, max_s=300,
                     ssh_configs=(sandbox.ssh_config_path(),)) as s:
        assert s.forward.port > 0 and s.address.startswith("127.0.0.1:")
        frame = view(s.address, s.password, tmp_path / "frame.png", click=dialog.approve)
        assert frame == {"width": 1280, "height": 1024}
        assert not_flat(tmp_path / "frame.png") > 1
        time.sleep(1)
        assert dialog.on_screen() and not dialog.approved()  # the click did nothing
        listening = shell(guest, "ss -Hltnp | grep x11vnc")
        assert re.search(r"127\.0\.0\.1:59\d\d ", listening), listening
        seen = readable_everywhere(guest)
        assert "x11vnc" in seen and s.password not in seen
        password, unit = s.password, s.server.unit
    time.sleep(8)  # let the sampler finish
    sampled = shell(guest, "cat /root/ss-during.log")
    assert ":59" in sampled  # the sampler saw the VNC listener
    assert {line.split()[3] for line in sampled.splitlines() if len(line.split()) > 3
            and not re.match(r"(127\.\d+\.\d+\.\d+|\[::1\]):\d+$", line.split()[3])} <= before
    assert vnc_traces(guest) == "", f"left behind after {unit}"
    assert password not in readable_everywhere(guest)


def test_vnc_interactive_click_finishes_the_login(dialog: Dialog, tmp_path: Path) -> None:
    with vnc.session(dialog.guest.name, interactive=True, max_s=300,
                     ssh_configs=(sandbox.ssh_config_path(),)) as s:
        view(s.address, s.password, tmp_path / "frame.png", click=dialog.approve)
        deadline = time.monotonic() + 30
        while not dialog.logged_in():
            assert time.monotonic() < deadline, dialog.journal()[-3000:]
            time.sleep(0.5)
    assert dialog.approved() and not dialog.on_screen()
    assert vnc_traces(dialog.guest) == ""
    # The login watch's alert for this prompt said what was on screen and what to run, once.
    alerts = [m["embeds"][0]["description"] for m in ms.discord_messages(dialog.guest.name)
              if f"On screen: '{DIALOG_TITLE}'" in m["embeds"][0]["description"]]
    assert alerts, ms.discord_messages(dialog.guest.name)[-3:]
    assert alerts[-1].endswith("--interactive`") and "invoke vnc --host " in alerts[-1]


@dataclass
class Operator:
    """`invoke vnc` run as an operator runs it, its output read as it comes."""

    proc: subprocess.Popen[str]
    lines: list[str]
    reader: threading.Thread

    def field(self, name: str) -> str:
        line = next(line for line in self.lines if line.strip().startswith(f"{name}:"))
        return line.split(":", 1)[1].split()[0]

    def finish(self, timeout: float) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self.reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code, "".join(self.lines)


def _invoke_vnc(guest: sandbox.Guest, *args: str) -> Operator:
    """Start `invoke vnc`; returns once it printed the password line."""
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), "vnc", "--host",
                             guest.name, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not any("password:" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        time.sleep(0.1)
    return Operator(proc, lines, reader)


def test_vnc_task_ends_on_ctrl_c_and_when_idle(installed: sandbox.Guest, tmp_path: Path) -> None:
    run = _invoke_vnc(installed)
    assert view(run.field("address"), run.field("password"), tmp_path / "a.png")["width"] == 1280
    run.proc.send_signal(signal.SIGINT)
    code, out = run.finish(20)
    assert code == 0 and "session ended (Ctrl-C)" in out, out
    assert vnc_traces(installed) == ""

    started = time.monotonic()
    run = _invoke_vnc(installed, "--idle", "4")
    view(run.field("address"), run.field("password"), tmp_path / "b.png")
    code, out = run.finish(30)
    assert code == 0 and "no viewer connected for 4 s" in out, out
    assert time.monotonic() - started >= 4
    assert vnc_traces(installed) == ""


BROWSER_DROPIN = "/etc/systemd/system/ibkr-gateway.service.d/zz-it-browser.conf"
PAGE_TITLE = "Passkey sign-in"
SANDBOX_FAILURES = ("No usable sandbox", "Failed to move to new namespace",
                    "zygote_host_impl_linux", "sandbox_linux.cc")


@dataclass
class BrowserRun:
    """Chromium run as the Gateway unit's programme: did it show the page, sandboxed?"""

    window: bool
    renderers: int
    state: str
    log: str


def browser_in_gateway_unit(guest: sandbox.Guest, extra: str = "") -> BrowserRun:
    """Swap the installed Gateway unit's programme for Chromium (every other line, all the
    hardening included, stays as installed), start it and look at what it does."""
    page = f"<title>{PAGE_TITLE}</title><h1>Approve with your passkey</h1>"
    dropin = ("[Service]\nExecStartPre=\nExecStart=\nExecStart=/usr/bin/chromium "
              "--no-first-run --no-default-browser-check --disable-gpu --password-store=basic "
              "--user-data-dir=/home/trader/.cache/it-chromium file:///home/trader/it-page.html\n"
              + extra)
    shell(guest, f"printf %s {shlex.quote(page)} > /home/trader/it-page.html; "
                 f"mkdir -p {Path(BROWSER_DROPIN).parent}; printf %s {shlex.quote(dropin)} > "
                 f"{BROWSER_DROPIN}; systemctl daemon-reload; "
                 "systemctl reset-failed ibkr-gateway.service; "
                 "systemctl restart ibkr-gateway.service")
    started = time.monotonic()
    window = False
    while time.monotonic() - started < 40 and not window:
        window = f"{PAGE_TITLE} - Chromium" in shell(
            guest, "xwininfo -display :1 -root -children")
        state = shell(guest, "systemctl is-active ibkr-gateway.service").strip()
        if state == "failed" or (state != "active" and time.monotonic() - started > 10):
            break
        time.sleep(0.5)
    time.sleep(2)  # let the renderer settle (or crash)
    procs = shell(guest, "ps -eo unit:40,args | grep '^ibkr-gateway.service '")
    return BrowserRun(window, procs.count("--type=renderer"),
                      shell(guest, "systemctl is-active ibkr-gateway.service").strip(),
                      shell(guest, "journalctl -u ibkr-gateway.service -o cat --no-pager "
                                   f"--since=-{int(time.monotonic() - started) + 5}s"))


@pytest.fixture
def gateway_back(installed: sandbox.Guest) -> Iterator[sandbox.Guest]:
    yield installed
    shell(installed, f"rm -f {BROWSER_DROPIN}; systemctl daemon-reload; "
                     "systemctl reset-failed ibkr-gateway.service; "
                     "systemctl restart ibkr-gateway.service")


def test_chromium_runs_sandboxed_under_the_gateway_units_hardening(
        gateway_back: sandbox.Guest) -> None:
    run = browser_in_gateway_unit(gateway_back)
    assert run.window and run.state == "active", run.log[-3000:]
    assert run.renderers >= 1, run.log[-3000:]  # the page has a renderer, in its sandbox
    assert not any(f in run.log for f in SANDBOX_FAILURES), run.log[-3000:]


def test_the_namespace_restriction_alone_would_stop_chromium(gateway_back: sandbox.Guest) -> None:
    """Why the unit relaxes RestrictNamespaces=: with `yes`, Chromium cannot sandbox."""
    run = browser_in_gateway_unit(gateway_back, "RestrictNamespaces=yes\n")
    assert not run.window, run.log[-3000:]
    assert any(f in run.log for f in SANDBOX_FAILURES), run.log[-3000:]
