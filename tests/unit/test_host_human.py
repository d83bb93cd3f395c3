"""The alert for a prompt only a person can answer: what is on screen, and the command."""

from __future__ import annotations

import dataclasses

import pytest

from ibkr_ops.errors import OpsError
from ibkr_ops.host import human
from ibkr_ops.host.config import HostConfig
from ibkr_ops.host.screen import Window

CONFIG = dataclasses.replace(HostConfig(), hostname="gw1")
DIALOG = Window("Second Factor Authentication", 340, 280, 600, 420)
LOGIN = Window("IBKR Gateway", 0, 0, 800, 600)


@pytest.mark.parametrize("kind", [human.PASSKEY, human.DEVICE_CHOICE, human.UNKNOWN_DIALOG])
def test_a_prompt_says_what_is_on_screen_and_how_to_answer_it(kind: str) -> None:
    level, text = human.alert(kind, CONFIG, "detected dialog entitled: X",
                              lister=lambda display: [DIALOG, LOGIN])
    assert level == "warning"
    assert "On screen: 'Second Factor Authentication' (600x420 at 340,280), 'IBKR Gateway'" in text
    assert text.endswith("From your computer: `invoke vnc --host gw1 --interactive`")
    assert "(IBC: detected dialog entitled: X)" in text


def test_an_unsupported_passkey_is_an_error_with_the_fix_not_a_screen_visit() -> None:
    level, text = human.alert(human.PASSKEY_UNSUPPORTED, CONFIG, lister=lambda display: [LOGIN])
    assert level == "error" and "--gateway-installer" in text and "invoke vnc" not in text


def test_an_unreadable_or_empty_display_is_said_plainly() -> None:
    def broken(display: str) -> list[Window]:
        raise OpsError("xwininfo on display :1 failed: unable to open display")

    assert "the display could not be read (xwininfo" in human.on_screen(CONFIG, broken)
    assert human.on_screen(CONFIG, lambda display: []) == "no window on the display"
    assert human.vnc_command(HostConfig()).startswith("invoke vnc --host ")
