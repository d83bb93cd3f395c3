"""The lines an alert adds when a person may have to answer the Gateway: what is on screen,
and the command that shows it."""

from __future__ import annotations

import dataclasses

from ibkr_ops.errors import OpsError
from ibkr_ops.host import human
from ibkr_ops.host.config import HostConfig
from ibkr_ops.host.screen import Window

CONFIG = dataclasses.replace(HostConfig(), hostname="gw1")
DIALOG = Window("Second Factor Authentication", 340, 280, 600, 420)
LOGIN = Window("IBKR Gateway", 0, 0, 800, 600)


def test_the_hint_names_the_windows_and_the_exact_command() -> None:
    hint = human.screen_hint(CONFIG, lister=lambda display, unit: [DIALOG, LOGIN])
    assert hint.startswith("On screen: 'Second Factor Authentication' (600x420 at 340,280), "
                           "'IBKR Gateway' (800x600 at 0,0).\n")
    assert hint.endswith("answer it from your computer: `invoke vnc --host gw1 --interactive`")


def test_an_unreadable_or_empty_display_is_said_plainly() -> None:
    def broken(display: str, unit: str) -> list[Window]:
        raise OpsError("xwininfo on display :1 failed: unable to open display")

    assert "the display could not be read (xwininfo" in human.on_screen(CONFIG, broken)
    assert human.on_screen(CONFIG, lambda display, unit: []) == "no window on the display"
    assert human.vnc_command(HostConfig()).startswith("invoke vnc --host ")


def test_the_vnc_command_names_the_instance_on_a_host_of_several() -> None:
    paper = dataclasses.replace(CONFIG, instance="paper")
    assert human.vnc_command(paper) == "invoke vnc --host gw1 --instance paper --interactive"
    seen: list[tuple[str, str]] = []
    human.on_screen(dataclasses.replace(paper, display=":2", display_unit="xvfb@paper.service"),
                    lambda display, unit: seen.append((display, unit)) or [])
    assert seen == [(":2", "xvfb@paper.service")]  # the instance's own display and its unit
