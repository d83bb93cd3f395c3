"""The go-live checklist in one call: the read-only items that go-live and migrate run before
and after they switch, and the whole list that `invoke verify` runs, both in-process."""

from __future__ import annotations

from ibkr_ops.checks import bot, gateway, notification, security
from ibkr_ops.checks import destructive as state_changing
from ibkr_ops.checks.expect import Expect, read_installed, settings_match
from ibkr_ops.checks.result import Result, Say, Status
from ibkr_ops.checks.runner import Runner
from ibkr_ops.layout import DEFAULT, Layout

READ_ONLY = (gateway.gateway_starts, gateway.api_port_listens, gateway.health_passes,
             gateway.enabled_for_boot, gateway.timer_scheduled,
             notification.notification_accepted, bot.bot_connects)
# Restart, reboot, kill: in the testinfra suite's order, after every read-only item.
STATE_CHANGING = ((6, "manual_restart"), (8, "reboot_survival"), (9, "crash_recovery"))


def read_only(runner: Runner, say: Say, expect: Expect | None = None,
              layout: Layout = DEFAULT) -> list[Result]:
    """Items 1-5, 7, 10 and 11, in checklist order, against `expect` (by default the host's
    installed settings of the layout's Gateway)."""
    expect = expect or Expect.of(read_installed(runner, layout), layout=layout)
    results = []
    for each in READ_ONLY:
        say(f"go-live check {each.__name__.replace('_', ' ')}")
        results.append(each(runner, expect))
    results += [security.secret_file_private(runner, expect, path, owner)
                for path, owner in security.secret_files(expect.layout)]
    results.append(security.password_leaks_nowhere(runner, expect.layout))
    return results


def everything(runner: Runner, say: Say, *, operator: dict[str, str] | None = None,
               destructive: bool = False, reboot_timeout: float = 300.0,
               layout: Layout = DEFAULT, rebooted_with: str | None = None) -> list[Result]:
    """The whole checklist, as `invoke verify` shows it. With the operator's non-secret
    settings they are the expectations and item 0 says whether the host still holds them;
    items 6, 8 and 9 change the host's state and run only when `destructive`. ``layout``
    names the Gateway checked: one instance of a host at a time. The host is rebooted once:
    for the instances after the first, ``rebooted_with`` names the one whose check did it
    (their own read-only items, run after it, show that they came back too)."""
    installed = read_installed(runner, layout)
    expect = Expect.of(installed, operator, layout)
    results = [settings_match(installed, operator), *read_only(runner, say, expect)]
    if not destructive:
        return results + [Result(item, name, Status.SKIPPED,
                                 "changes the host's state; run with --destructive")
                          for item, name in STATE_CHANGING]
    say("go-live check manual restart")
    results.append(state_changing.manual_restart(runner, expect, say))
    if rebooted_with is None:
        say("go-live check reboot survival")
        results.append(state_changing.reboot_survival(runner, expect, say, reboot_timeout))
    else:
        results.append(Result(8, "reboot_survival", Status.SKIPPED,
                              f"the host was rebooted by instance {rebooted_with}'s check"))
    say("go-live check crash recovery")
    results.append(state_changing.crash_recovery(runner, expect, say))
    return results
