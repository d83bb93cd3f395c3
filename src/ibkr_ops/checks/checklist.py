"""The read-only go-live checklist in one call: what go-live and migrate run before and after
they switch, in-process, with the host's own installed settings as the expectations."""

from __future__ import annotations

from ibkr_ops.checks import bot, gateway, notification, security
from ibkr_ops.checks.expect import Expect, read_installed
from ibkr_ops.checks.result import Result, Say
from ibkr_ops.checks.runner import Runner

READ_ONLY = (gateway.gateway_starts, gateway.api_port_listens, gateway.health_passes,
             gateway.enabled_for_boot, gateway.timer_scheduled,
             notification.notification_accepted, bot.bot_connects)


def read_only(runner: Runner, say: Say) -> list[Result]:
    """Items 1-5, 7, 10 and 11 against the host's installed settings, in checklist order."""
    expect = Expect.of(read_installed(runner))
    results = []
    for each in READ_ONLY:
        say(f"go-live check {each.__name__.replace('_', ' ')}")
        results.append(each(runner, expect))
    results += [security.secret_file_private(runner, expect, path, owner)
                for path, owner in security.SECRET_FILES]
    results.append(security.password_leaks_nowhere(runner))
    return results
