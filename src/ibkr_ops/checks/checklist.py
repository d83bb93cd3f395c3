"""The go-live checklist in one call: the read-only items that go-live and migrate run before
and after they switch, and the whole list that `invoke verify` runs, both in-process."""

from __future__ import annotations

from ibkr_ops.checks import bot, gateway, notification, security
from ibkr_ops.checks import destructive as state_changing
from ibkr_ops.checks.expect import Expect, read_installed, settings_match
from ibkr_ops.checks.result import Result, Say, Status
from ibkr_ops.checks.runner import Runner

READ_ONLY = (gateway.gateway_starts, gateway.api_port_listens, gateway.health_passes,
             gateway.enabled_for_boot, gateway.timer_scheduled,
             notification.notification_accepted, bot.bot_connects)
# Restart, reboot, kill: in the testinfra suite's order, after every read-only item.
STATE_CHANGING = ((6, "manual_restart"), (8, "reboot_survival"), (9, "crash_recovery"))


def read_only(runner: Runner, say: Say, expect: Expect | None = None) -> list[Result]:
    """Items 1-5, 7, 10 and 11, in checklist order, against `expect` (by default the host's
    installed settings)."""
    expect = expect or Expect.of(read_installed(runner))
    results = []
    for each in READ_ONLY:
        say(f"go-live check {each.__name__.replace('_', ' ')}")
        results.append(each(runner, expect))
    results += [security.secret_file_private(runner, expect, path, owner)
                for path, owner in security.SECRET_FILES]
    results.append(security.password_leaks_nowhere(runner))
    return results


def everything(runner: Runner, say: Say, *, operator: dict[str, str] | None = None,
               destructive: bool = False, reboot_timeout: float = 300.0) -> list[Result]:
    """The whole checklist, as `invoke verify` shows it. With the operator's non-secret
    settings they are the expectations and item 0 says whether the host still holds them;
    items 6, 8 and 9 change the host's state and run only when `destructive`."""
    installed = read_installed(runner)
    expect = Expect.of(installed, operator)
    results = [settings_match(installed, operator), *read_only(runner, say, expect)]
    if not destructive:
        return results + [Result(item, name, Status.SKIPPED,
                                 "changes the host's state; run with --destructive")
                          for item, name in STATE_CHANGING]
    say("go-live check manual restart")
    results.append(state_changing.manual_restart(runner, expect, say))
    say("go-live check reboot survival")
    results.append(state_changing.reboot_survival(runner, expect, say, reboot_timeout))
    say("go-live check crash recovery")
    results.append(state_changing.crash_recovery(runner, expect, say))
    return results
