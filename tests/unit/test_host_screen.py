"""The screenshot's parts: xwd decoding, PNG encoding (read back by Pillow), the window list,
and both against a real Xvfb with a real window on it."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from collections.abc import Iterator

import pytest

from ibkr_ops.errors import OpsError
from ibkr_ops.host import screen

Image = pytest.importorskip("PIL.Image", reason="Pillow (vncdotool's dependency) is missing")

PIXELS = [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(1, 2, 3), (250, 128, 7), (0, 0, 0)]]


def xwd_dump(pixels: list[list[tuple[int, int, int]]], *, byte_order: int = 0, bpp: int = 32,
             pad: int = 0, ncolors: int = 2) -> bytes:
    """An xwd file as xwd writes it for a TrueColor visual (masks 0xff0000/0xff00/0xff)."""
    height, width = len(pixels), len(pixels[0])
    step = bpp // 8
    bytes_per_line = width * step + pad
    name = b"xwdump\0"
    header = struct.pack(">25I", 100 + len(name), 7, 2, 24, width, height, 0, byte_order, 32,
                         0, 32, bpp, bytes_per_line, 4, 0xFF0000, 0xFF00, 0xFF, 8, 256, ncolors,
                         width, height, 0, 0, 0)
    body = b""
    for row in pixels:
        for r, g, b in row:
            value = ((r << 16) | (g << 8) | b) & ((1 << bpp) - 1)
            body += value.to_bytes(step, "little" if byte_order == 0 else "big")
        body += b"\xee" * pad
    return header + name + b"\0" * 12 * ncolors + body


def decoded(data: bytes) -> list[list[tuple[int, int, int]]]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        return [[image.getpixel((x, y)) for x in range(image.width)]
                for y in range(image.height)]


@pytest.mark.parametrize(("byte_order", "bpp", "pad"), [(0, 32, 0), (1, 32, 0), (0, 24, 3),
                                                        (1, 24, 2)])
def test_xwd_to_png_keeps_every_pixel(byte_order: int, bpp: int, pad: int) -> None:
    image = screen.parse_xwd(xwd_dump(PIXELS, byte_order=byte_order, bpp=bpp, pad=pad))
    assert (image.width, image.height) == (3, 2)
    assert decoded(screen.png(image)) == PIXELS


@pytest.mark.parametrize(("data", "message"), [
    (b"", "xwd wrote no image"),
    (xwd_dump(PIXELS)[:-5], "truncated"),
    (xwd_dump(PIXELS, bpp=16), "unsupported xwd image"),
])
def test_unusable_xwd_output_is_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(OpsError, match=message):
        screen.parse_xwd(data)


CHILDREN = """
xwininfo: Window id: 0x50d (the root window) (has no name)

  Root window id: 0x50d (the root window) (has no name)
  Parent window id: 0x0 (none)
     3 children:
     0x400031 "Second Factor Authentication": ("xmessage" "Xmessage")  146x52+150+130  +150+130
     0x200030 "IBKR Gateway": ("sun-awt-X11-XFramePeer" "ibgateway-GWClient")  800x600+0+0  +0+0
     0x200004 (has no name): ()  1x1+-1+-1  +-1+-1
"""


def test_window_list_keeps_titled_windows_with_their_place() -> None:
    found = screen.parse_children(CHILDREN)
    assert [wid for wid, _ in found] == ["0x400031", "0x200030"]
    assert found[0][1] == screen.Window("Second Factor Authentication", 150, 130, 146, 52)
    assert found[1][1].describe() == "'IBKR Gateway' (800x600 at 0,0)"
    assert screen.is_viewable("  Map State: IsViewable\n")
    assert not screen.is_viewable("  Map State: IsUnMapped\n")


@pytest.fixture
def window_on(xvfb: str) -> Iterator[str]:
    if not shutil.which("xmessage") or not shutil.which("xwd"):
        pytest.skip("x11-utils and x11-apps are not installed (pyproject's apt list has them)")
    proc = subprocess.Popen(["xmessage", "-display", xvfb, "-geometry", "+40+50", "-title",
                             "Login window", "hello"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if screen.windows(xvfb, "xvfb.service"):
                break
            subprocess.run(["sleep", "0.05"], check=True)
        yield xvfb
    finally:
        proc.kill()
        proc.wait(5)


def test_capture_and_windows_on_a_real_display(window_on: str) -> None:
    image = screen.capture(window_on, "xvfb.service")
    assert (image.width, image.height) == (1024, 768)  # the xvfb fixture's screen
    (window,) = screen.windows(window_on, "xvfb.service")
    assert (window.title, window.x, window.y) == ("Login window", 40, 50)
    box = (window.x, window.y, window.x + window.width, window.y + window.height)
    with Image.open(io.BytesIO(screen.png(image))) as picture:
        inside = picture.crop(box).getcolors(maxcolors=1 << 20) or []
        outside = picture.crop((box[2] + 2, 0, 1024, 768)).getcolors(maxcolors=1 << 20) or []
    assert len(inside) > 1  # the window is drawn where xwininfo says it is...
    assert outside == [(outside[0][0], (0, 0, 0))]  # ...on an otherwise black screen


def test_a_display_that_is_not_there_is_one_clear_error() -> None:
    if not shutil.which("xwd"):
        pytest.skip("x11-apps is not installed")
    with pytest.raises(OpsError, match=r"xwd on display :239 failed: .*is xvfb@paper\.service "
                                       r"running\?\)"):
        screen.capture(":239", "xvfb@paper.service")
