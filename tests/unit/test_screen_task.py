"""`invoke screenshot`'s local side: where the PNG goes, what it says, bad input."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.errors import OpsError
from ibkr_ops.host.screen import Window
from ibkr_ops.remote import screen
from ibkr_ops.tasks.screen import default_out, screenshot, window_lines


def test_default_name_is_host_and_time_in_the_current_directory() -> None:
    now = dt.datetime(2026, 12, 2, 16, 31, 5)
    assert default_out("trader@gw1:2222", now) == Path("screenshot-trader_gw1_2222-20261202-163105.png")


def test_windows_are_listed_or_their_absence_explained() -> None:
    assert window_lines((Window("IBKR Gateway", 0, 0, 800, 600),)) == [
        "  'IBKR Gateway' (800x600 at 0,0)"]
    assert "no windows on the display" in window_lines(())[0]


def test_the_hosts_json_line_becomes_a_shot_and_anything_else_an_error() -> None:
    line = json.dumps({"display": ":1", "width": 2, "height": 1, "png": base64.b64encode(
        b"\x89PNG").decode(), "windows": [{"title": "T", "x": 1, "y": 2, "width": 3,
                                           "height": 4}]})
    shot = screen.parse_shot(line)
    assert (shot.width, shot.png, shot.windows) == (2, b"\x89PNG", (Window("T", 1, 2, 3, 4),))
    for bad in ("", "not json", json.dumps({"display": ":1"}), line.replace('"png": "', '"png": "!')):
        with pytest.raises(OpsError, match="run `invoke install` to update the host tools"):
            screen.parse_shot(bad)


@pytest.mark.parametrize("out", ["/nonexistent/gw.png", "/tmp"])
def test_an_unwritable_out_is_refused_before_any_host_is_contacted(out: str) -> None:
    with pytest.raises(Exit) as info:
        screenshot(Context(), host="host-that-is-never-reached.invalid", out=out)
    assert info.value.code == 2 and "--out" in str(info.value.message)


def test_the_png_is_written_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "gw.png"
    screen.write_png(target, b"\x89PNG data")
    assert target.read_bytes() == b"\x89PNG data" and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["gw.png"]
