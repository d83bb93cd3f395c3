"""Drop-ins that make a user's bot service start only once the Gateway's API answers.

The deployment guide's rule, "Gateway must be running before bot startup", as systemd
ordering plus a readiness wait: `After=`/`Wants=` alone would start the bot as soon as the
Gateway's process exists, long before IBC has logged in and the API port answers.
Pure: names in, files out; `invoke install --bot-unit` adds them to the install plan.
"""

from __future__ import annotations

import re

from ibkr_ops.errors import UsageError
from ibkr_ops.layout import DEFAULT, UNITS, Layout
from ibkr_ops.render import ManagedFile, render_template

# Room after the wait: the last check's own probes, then the bot's own start.
MARGIN_S = 60
MAX_WAIT_S = 86399
# systemd's unit name rules (unit_name_is_valid): these characters, an optional template
# instance after "@", at most 255 characters in all.
_SERVICE = re.compile(r"[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.service")
_OTHER_TYPES = (".socket", ".timer", ".target", ".path", ".mount", ".automount", ".swap",
                ".slice", ".scope", ".device")


def service_name(text: str) -> str:
    """A `--bot-unit` value as a service name (".service" added if missing), or UsageError."""
    if text.endswith(_OTHER_TYPES):
        raise UsageError(f"--bot-unit {text!r}: not a service; give the .service your bot "
                         "runs in (a drop-in orders a service's start)")
    name = text if text.endswith(".service") else f"{text}.service"
    if len(name) > 255 or not _SERVICE.fullmatch(name):
        raise UsageError(f"--bot-unit {text!r}: not a systemd service name (letters, digits "
                         "and :-_.\\@ only, e.g. my-bot or my-bot.service)")
    if name in UNITS:
        raise UsageError(f"--bot-unit {text!r}: that is one of the Gateway's own units")
    return name


def service_names(texts: list[str]) -> tuple[str, ...]:
    """Every `--bot-unit` value checked, in order, each service once."""
    return tuple(dict.fromkeys(service_name(text) for text in texts))


def check_wait(text: str) -> int:
    """`--bot-wait`: the bot's wait for a healthy Gateway, whole seconds from 1 to a day."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_WAIT_S:
        raise UsageError(f"--bot-wait {text!r}: give whole seconds from 1 to {MAX_WAIT_S}")
    return int(text)


def dropins(services: tuple[str, ...], wait_s: int,
            layout: Layout = DEFAULT) -> list[ManagedFile]:
    """One drop-in per bot service (names already checked by `service_name`), ordering it
    after the Gateway ``layout`` names."""
    return [ManagedFile(layout.dropin_path(name),
                        render_template("bot-unit-dropin.conf.j2", unit=name, wait_s=wait_s,
                                        margin_s=MARGIN_S, layout=layout).encode(), 0o644)
            for name in services]
