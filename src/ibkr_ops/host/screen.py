"""What the Gateway's virtual display shows: a PNG of it and the windows on it.

A person must sometimes see the Gateway (a passkey ceremony, a device choice, a dialog IBC
does not know). The picture comes from `xwd` (x11-apps), a one-shot X client, so nothing is
left running; it is turned into a PNG here with the standard library only. The window list
comes from `xwininfo` (x11-utils): the display's top-level windows that are mapped and have a
title, which is what a person would see on it (Xvfb runs without a window manager, so every
frame and dialog is a direct child of the root window). The login watch uses the same list
to say in an alert what is on screen.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from dataclasses import dataclass

from ibkr_ops.errors import OpsError

TIMEOUT_S = 20.0
_HEADER = struct.Struct(">25I")  # XWDFileHeader: 25 CARD32, most significant byte first
_ZPIXMAP = 2
_CHILD = re.compile(r'^\s+(0x[0-9a-f]+) (?:"(?P<title>.*)"|\(has no name\)): \(.*\)\s+'
                    r"(?P<w>\d+)x(?P<h>\d+)\+(-?\d+)\+(-?\d+)\s+\+(?P<x>-?\d+)\+(?P<y>-?\d+)\s*$")


@dataclass(frozen=True)
class Image:
    """Pixels as 8-bit RGB triples, row after row."""

    width: int
    height: int
    rgb: bytes


@dataclass(frozen=True)
class Window:
    """A window a person would see: its title and where it is on the display."""

    title: str
    x: int
    y: int
    width: int
    height: int

    def describe(self) -> str:
        return f"{self.title!r} ({self.width}x{self.height} at {self.x},{self.y})"


def parse_xwd(data: bytes) -> Image:
    """Decode an `xwd` dump of a TrueColor display (Xvfb's 24-bit depth, 32 bits a pixel)."""
    if len(data) < _HEADER.size:
        raise OpsError("xwd wrote no image (is the display running?)")
    (header_size, version, pixmap_format, _depth, width, height, _xoffset, byte_order,
     _unit, _bit_order, _pad, bits_per_pixel, bytes_per_line, _visual, red_mask, green_mask,
     blue_mask, _bits_per_rgb, _entries, ncolors, *_window) = _HEADER.unpack_from(data)
    if version != 7 or pixmap_format != _ZPIXMAP or bits_per_pixel not in (24, 32):
        raise OpsError(f"unsupported xwd image (version {version}, format {pixmap_format}, "
                       f"{bits_per_pixel} bits a pixel); the display should be 24-bit TrueColor")
    start = header_size + 12 * ncolors
    pixels = data[start:start + bytes_per_line * height]
    if len(pixels) < bytes_per_line * height:
        raise OpsError("the xwd image is truncated")
    step = bits_per_pixel // 8
    offsets = [_byte_of(mask, step, byte_order) for mask in (red_mask, green_mask, blue_mask)]
    row_bytes = width * step
    rows = pixels if bytes_per_line == row_bytes else b"".join(
        pixels[y * bytes_per_line:y * bytes_per_line + row_bytes] for y in range(height))
    rgb = bytearray(width * height * 3)
    for channel, offset in enumerate(offsets):
        rgb[channel::3] = rows[offset::step]
    return Image(width, height, bytes(rgb))


def _byte_of(mask: int, step: int, byte_order: int) -> int:
    """Which byte of a pixel holds the 8-bit channel `mask` selects (0: LSBFirst)."""
    shift = {0xFF: 0, 0xFF00: 8, 0xFF0000: 16, 0xFF000000: 24}.get(mask)
    if shift is None or shift // 8 >= step:
        raise OpsError(f"unsupported xwd colour mask {mask:#x}; the display should be 24-bit "
                       "TrueColor")
    index = shift // 8
    return index if byte_order == 0 else step - 1 - index


def png(image: Image, level: int = 6) -> bytes:
    """The image as a PNG file: 8-bit RGB, no filter, one zlib stream."""
    stride = image.width * 3
    raw = b"".join(b"\0" + image.rgb[y * stride:(y + 1) * stride] for y in range(image.height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", image.width, image.height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


def parse_children(text: str) -> list[tuple[str, Window]]:
    """(window id, window) of each titled window `xwininfo -root -children` lists."""
    found = []
    for line in text.splitlines():
        match = _CHILD.match(line)
        if match and match["title"] is not None:
            found.append((line.split()[0], Window(match["title"], int(match["x"]),
                                                  int(match["y"]), int(match["w"]),
                                                  int(match["h"]))))
    return found


def is_viewable(text: str) -> bool:
    """Whether `xwininfo -id W` says the window is mapped and visible."""
    return "Map State: IsViewable" in text


def _run(argv: list[str], display: str, what: str,
         unit: str) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run([*argv, "-display", display], capture_output=True,
                              timeout=TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise OpsError(f"{argv[0]} is not installed ({what}); run `invoke install` again, "
                       "which installs it") from None
    except subprocess.TimeoutExpired:
        raise OpsError(f"{argv[0]} got no answer from display {display} in "
                       f"{TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise OpsError(f"{argv[0]} on display {display} failed: {reason[:200]} (is "
                       f"{unit} running?)")
    return done


def windows(display: str, unit: str) -> list[Window]:
    """The titled, mapped top-level windows on `display`, top of the stacking order last;
    `unit` (the display's systemd unit) is named when the display does not answer."""
    tree = _run(["xwininfo", "-root", "-children"], display, "x11-utils", unit)
    shown = []
    for window_id, window in parse_children(tree.stdout.decode(errors="replace")):
        info = _run(["xwininfo", "-id", window_id], display, "x11-utils", unit)
        if is_viewable(info.stdout.decode(errors="replace")):
            shown.append(window)
    return shown


def capture(display: str, unit: str) -> Image:
    """The whole display as an image (`xwd -root`); `unit` as for `windows`."""
    return parse_xwd(_run(["xwd", "-root", "-silent"], display, "x11-apps", unit).stdout)
