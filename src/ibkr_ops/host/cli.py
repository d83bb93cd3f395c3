"""Command lines of the host tools: parse options, call the modules, print, pick the exit code.

Exit codes (contract): 0 success/healthy, 1 unhealthy or failed, 2 bad usage or settings.
Every error is one line on stderr; a traceback in front of a user is a bug.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from ibkr_ops import layout
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host import config as host_config
from ibkr_ops.host import health, installed, journal, schema


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the usage block too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _number(text: str, low: int, high: int) -> bool:
    """ASCII digits within [low, high] (str.isdigit takes other scripts' digits too)."""
    return text.isascii() and text.isdigit() and len(text) <= 10 and low <= int(text) <= high


def _port(text: str) -> int:
    low, high = schema.API_PORT.low, schema.API_PORT.high or 0
    if not _number(text, low, high):
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port ({low}-{high})")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


def _heap_mb(text: str) -> int:
    if not _number(text, 64, 1048576):
        raise argparse.ArgumentTypeError(f"{text!r} is not a heap size in MB (64-1048576)")
    return int(text)


def _client_id(text: str) -> int:
    low, high = schema.HEALTH_CLIENT_ID.low, schema.HEALTH_CLIENT_ID.high or 0
    if not _number(text, low, high):
        raise argparse.ArgumentTypeError(f"{text!r} is not a clientId ({low}-{high})")
    return int(text)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help=f"installed settings (default {host_config.DEFAULT_PATH}, if present)")
    parser.add_argument("--instance", metavar="NAME",
                        help="the Gateway instance to act on (its settings under "
                             f"{layout.CONFIG_ROOT}/NAME/); needed on a host that runs several")


def _load(args: argparse.Namespace) -> host_config.HostConfig:
    """The settings of the one Gateway this command acts on (``installed.one``)."""
    return installed.one(args.config, args.instance).load()


def _guarded(prog: str, body: Callable[[], int]) -> int:
    """Run a command body; an OpsError becomes one line and its exit code."""
    try:
        return body()
    except OpsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def health_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-health-check`: exit 0 healthy, 1 unhealthy, 2 bad usage or settings."""
    parser = _Parser(prog="ibkr-health-check",
                     description="Check the Gateway layer by layer: service, display, process, "
                                 "port, API login, memory.")
    parser.add_argument("--host", help="API host (default from the settings, 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="API port (default from the settings)")
    parser.add_argument("--timeout", type=_seconds, metavar="S",
                        help="seconds the API handshake and login may take")
    parser.add_argument("--client-id", type=_client_id, metavar="N",
                        help="clientId of the probe; pick one your bot never uses")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--notify", action="store_true",
                        help="the health-check timer's run: alert Discord when the status changed "
                             "since the last such run, and heal (restart a hung API, back off a "
                             "crash loop, free memory) within the configured limits")
    parser.add_argument("--history", action="store_true",
                        help="print the restart history, login state and watchdog counters "
                             "instead of checking")
    parser.add_argument("--wait", type=_seconds, metavar="SECONDS",
                        help="re-check until healthy (exit 0) or SECONDS have passed (exit 1), "
                             "saying what is awaited; a bot's ExecStartPre uses this")
    _config_option(parser)
    args = parser.parse_args(argv)
    if args.wait is not None and args.notify:
        parser.error("--wait and --notify do not go together (the timer's run must not block)")

    def body() -> int:
        targets = installed.every(args.config, args.instance)
        if len(targets) > 1:
            for option, given in (("--host", args.host), ("--port", args.port),
                                  ("--notify", args.notify), ("--wait", args.wait)):
                if given not in (None, False):
                    names = ", ".join(t.instance or "" for t in targets)
                    raise UsageError(f"{option} acts on one Gateway and this host runs Gateway "
                                     f"instances {names}; give --instance NAME")
        overrides = {"api_host": args.host, "api_port": args.port,
                     "health_timeout_s": args.timeout, "health_client_id": args.client_id}
        configs = [dataclasses.replace(t.load(), **{
            k: v for k, v in overrides.items() if v is not None}) for t in targets]
        if args.history:
            from ibkr_ops.host import status  # noqa: PLC0415

            print(_blocks([(c.instance, status.text(c)) for c in configs]))
            return 0
        if args.wait is not None:
            return _wait(configs[0], args.wait, as_json=args.json)
        reports = _check_all(configs, notify=args.notify)
        if not journal.stdout_is_journal():
            if args.json:
                print(json.dumps(health.combined(reports)))
            else:
                print(_blocks([(name, _table(report)) for name, report in reports]))
        return 0 if all(report.healthy for _, report in reports) else 1

    return _guarded(parser.prog, body)


def _check(config: host_config.HostConfig, *, notify: bool) -> health.Report:
    """One Gateway's check (and, for the timer's run, its watchdog), with its journal line."""
    report = health.run(config)
    line = report.summary()
    if notify:
        # Imported here: a run without --notify never loads the watchdog or notifier.
        from ibkr_ops.host import watchdog  # noqa: PLC0415

        report, outcome = watchdog.supervise(config, report)
        line = report.summary() + (f" [{outcome}]" if outcome else "")
    priority = {health.OK: journal.INFO, health.WARN: journal.WARNING}.get(
        report.status, journal.ERR)
    fields = {"ibkr_healthy": str(int(report.healthy))}
    if config.instance is not None:
        fields["ibkr_instance"] = config.instance
        line = f"{config.instance}: {line}"
    journal.send("ibkr-health-check", line, priority, **fields)
    return report


def _check_all(configs: Sequence[host_config.HostConfig], *,
               notify: bool) -> list[tuple[str | None, health.Report]]:
    """Each Gateway's check, side by side: one instance's hung API (a probe waits out its
    timeout) does not hold up the report on the others."""
    if len(configs) == 1:
        return [(configs[0].instance, _check(configs[0], notify=notify))]
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - several Gateways only

    with ThreadPoolExecutor(len(configs)) as pool:
        found = list(pool.map(lambda c: _check(c, notify=notify), configs))
    return [(c.instance, report) for c, report in zip(configs, found, strict=True)]


def _blocks(parts: Sequence[tuple[str | None, str]]) -> str:
    """One Gateway's text as it is; several, each under its instance's name."""
    if len(parts) == 1:
        return parts[0][1]
    return "\n\n".join(f"== {name} ==\n{text}" for name, text in parts)


def _wait(config: host_config.HostConfig, timeout_s: float, *, as_json: bool) -> int:
    """`--wait`: block until healthy (0) or the timeout (1); progress goes to stderr."""
    from ibkr_ops.host import restart  # noqa: PLC0415 - only a waiting run needs its printer

    show = restart.printer(sys.stderr)
    shown: list[str] = []

    def progress(text: str) -> None:
        shown.append(text)
        show(text)

    report, waited = health.wait(config, timeout_s, progress)
    if report.healthy:
        line = f"ready after {waited:.0f} s; {report.summary()}"
    else:
        line = f"still not healthy after {waited:.0f} s, gave up: {report.failures()}"
    journal.send("ibkr-health-check", line, journal.INFO if report.healthy else journal.ERR,
                 ibkr_healthy=str(int(report.healthy)))
    if not journal.stdout_is_journal():
        if shown and sys.stderr.isatty():
            sys.stderr.write("\r\033[K")  # the final line replaces the progress line
        if as_json:
            print(json.dumps(report.to_dict()))
        elif report.healthy:
            print(line)
        if not report.healthy:
            print(f"ibkr-health-check: {line}", file=sys.stderr)
    return 0 if report.healthy else 1


def _table(report: health.Report) -> str:
    rows = [f"{c.name:<8} {c.status:<4} {c.ms:7.1f} ms  {c.detail}" for c in report.checks]
    verdict = "healthy" if report.healthy else "UNHEALTHY"
    return "\n".join([*rows, f"{verdict} ({report.elapsed_ms:.0f} ms)"])


def notify_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-notify`: exit 0 when Discord confirmed delivery, 1 when not, 2 bad usage."""
    parser = _Parser(prog="ibkr-notify",
                     description="Post a message to the Discord webhook in DISCORD_WEBHOOK_URL "
                                 "(environment or the credentials file).")
    parser.add_argument("--level", choices=["error", "info", "warning"], default="info",
                        help="embed colour and title (default info)")
    parser.add_argument("message", metavar="MESSAGE", help="the text; - reads standard input")
    _config_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        from ibkr_ops.host import notify  # noqa: PLC0415 - keeps the health check's start lean

        config = _load(args)
        text = sys.stdin.read() if args.message == "-" else args.message
        try:
            delivery = notify.deliver(config, args.level, text)
        except notify.WebhookError as exc:
            journal.send("ibkr-notify", str(exc), journal.ERR)
            raise
        ids = delivery.ids
        # The ids Discord answered with: `verify` finds the message by them (not secrets).
        print(f"delivered ({len(ids)} message{'s' if len(ids) > 1 else ''}; "
              f"id{'s' if len(ids) > 1 else ''} {', '.join(filter(None, ids)) or 'none'})")
        if delivery.dropped:
            line = (f"{delivery.dropped} more part(s) not sent: Discord's rate limit would pass "
                    f"the {config.notify_timeout_s:g} s deadline")
            journal.send("ibkr-notify", line, journal.WARNING)
            print(f"ibkr-notify: {line}", file=sys.stderr)
        return 0

    return _guarded(parser.prog, body)


def prerestart_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-pre-restart-check`: exit 0 when a restart may go ahead, 1 when not, 2 bad usage."""
    parser = _Parser(prog="ibkr-pre-restart-check",
                     description="Refuse a Gateway restart during the regular US session "
                                 "(NYSE days, 09:30-16:00 New York) or a configured blackout; "
                                 "record the Gateway's memory and uptime when allowed.")
    parser.add_argument("--now", metavar="ISO-8601",
                        help="decide for this moment instead of the clock (no offset: market time)")
    parser.add_argument("--force", action="store_true",
                        help="allow the restart anyway; the refusal it overrides is logged")
    parser.add_argument("--reason", default="", help="why --force was needed (logged)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _config_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        from ibkr_ops.host import prerestart  # noqa: PLC0415 - the health check never needs it

        config = _load(args)
        now = (prerestart.parse_now(args.now, config) if args.now
               else dt.datetime.now(dt.UTC))
        decision = prerestart.decide(now, config)
        forced = args.force and not decision.allowed
        allowed = decision.allowed or forced
        if forced:
            line = (f"restart FORCED ({args.reason or 'no reason given'}); "
                    f"it would have been refused: {decision.reason}")
        else:
            line = f"restart {'allowed' if allowed else 'refused'}: {decision.reason}"
        gateway = prerestart.record_gateway(config, now) if allowed else None
        journal.send("ibkr-pre-restart-check", line,
                     journal.INFO if decision.allowed else journal.WARNING,
                     ibkr_restart_allowed=str(int(allowed)))
        if not journal.stdout_is_journal():
            if args.json:
                print(json.dumps({"allowed": allowed, "forced": forced, "reason": decision.reason,
                                  "now": decision.now.isoformat(), "gateway": gateway}))
            else:
                print(line, file=sys.stdout if allowed else sys.stderr)
        return 0 if allowed else 1

    return _guarded(parser.prog, body)


def restart_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-gateway-restart`: exit 0 when the Gateway is healthy again, 1 when not."""
    parser = _Parser(prog="ibkr-gateway-restart",
                     description="Restart the Gateway warm (IBC RESTART, no second factor) or "
                                 "cold (systemctl restart, new login), wait until its API is "
                                 "healthy, then notify with the duration and memory.")
    parser.add_argument("--mode", choices=schema.RESTART_MODE.choices,
                        help="default from the settings (auto: cold on the first restart after "
                             "Sunday 01:00 New York, warm otherwise)")
    parser.add_argument("--force", action="store_true",
                        help="restart even inside the trading session or a blackout window")
    parser.add_argument("--no-notify", action="store_true", help="do not post to Discord")
    parser.add_argument("--cause", choices=["manual", "scheduled"], default="manual",
                        help="recorded in the restart history (the daily timer says scheduled)")
    _config_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        from ibkr_ops.host import history, prerestart, proc, restart, systemd  # noqa: PLC0415

        config = _load(args)
        if args.mode:
            config = dataclasses.replace(config, restart_mode=args.mode)
        now = dt.datetime.now(dt.UTC)
        # The same rule as the service's ExecStartPre, for restarts started by hand.
        decision = prerestart.decide(now, config)
        if not decision.allowed:
            if not args.force:
                raise OpsError(f"restart refused: {decision.reason} (--force overrides)")
            journal.send("ibkr-gateway-restart", f"restart FORCED; it would have been refused: "
                         f"{decision.reason}", journal.WARNING)
        unit = systemd.show_unit(config.gateway_unit)
        mode, why = restart.choose_mode(config, now, unit)
        before = prerestart.read_record(config, now)
        if before is None:
            snap = proc.snapshot(config, unit)
            before = None if snap is None else {"rss_mb": snap.rss_mb, "uptime_s": snap.uptime_s}
        start = f"Gateway restart ({mode}, {history.CAUSE_WORDS[args.cause]}) starting: {why}"
        if before:
            start += f"; {before['rss_mb']:.0f} MB resident"
        print(start, flush=True)
        if not args.no_notify:
            _notify_quietly(config, "info", start)
        outcome, _, log = restart.run_recorded(config, mode, args.cause, before,
                                               restart.printer())
        level, text = outcome.report()
        text = f"{text}\nmode chosen: {why}"
        if log:
            text += "\nlast Gateway log lines:\n" + "\n".join(log)
        print(f"\n{text}" if sys.stdout.isatty() else text)
        line = text.replace("\n", "; ")
        if not args.no_notify:
            line += f" [{_notify_quietly(config, level, text)}]"
        journal.send("ibkr-gateway-restart", line,
                     journal.INFO if outcome.healthy else journal.ERR)
        return 0 if outcome.healthy else 1

    return _guarded(parser.prog, body)


def login_watch_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-login-watch`: follow IBC's log; stop the Gateway on a rejected login."""
    parser = _Parser(prog="ibkr-login-watch",
                     description="Follow the Gateway's journal: stop the Gateway at once when IBKR "
                                 "rejects the login (retries can lock the account), announce "
                                 "second-factor prompts and timeouts, record each login.")
    _config_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        from ibkr_ops.host import loginwatch, notify  # noqa: PLC0415

        config = _load(args)
        loginwatch.run(config, notify.deliver, lambda text: print(text, flush=True))
        return 1

    return _guarded(parser.prog, body)


def prepare_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-gateway-prepare`: the Gateway unit's ExecStartPre (trusted API clients, JVM heap)."""
    parser = _Parser(prog="ibkr-gateway-prepare",
                     description="Set the API's trusted client addresses in the Gateway's "
                                 "jts.ini and its JVM heap in ibgateway.vmoptions before it "
                                 "starts.")
    parser.add_argument("--settings-dir", required=True, metavar="DIR",
                        help="the Gateway's settings directory (IBC's TWS_SETTINGS_PATH)")
    parser.add_argument("--trusted-ips", required=True, metavar="IP[,IP...]",
                        help="addresses allowed to use the API (127.0.0.1 always is)")
    parser.add_argument("--heap-mb", type=_heap_mb, metavar="N",
                        help="the JVM's maximum heap (-Xmx) in MB; needs --vmoptions")
    parser.add_argument("--vmoptions", metavar="PATH",
                        help="the installation's ibgateway.vmoptions; needs --heap-mb")
    args = parser.parse_args(argv)
    if (args.heap_mb is None) != (args.vmoptions is None):
        parser.error("--heap-mb and --vmoptions go together")

    def body() -> int:
        import ipaddress  # noqa: PLC0415 - only this command needs it
        from pathlib import Path  # noqa: PLC0415

        from ibkr_ops.host import jtsini  # noqa: PLC0415

        trusted = []
        for item in args.trusted_ips.split(","):
            try:
                trusted.append(str(ipaddress.ip_address(item.strip())))
            except ValueError:
                raise UsageError(f"--trusted-ips: {item.strip()!r} is not an IP address") from None
        path = Path(args.settings_dir) / "jts.ini"
        changed = jtsini.set_trusted_ips(path, trusted)
        print(f"{path}: TrustedIPs={','.join(trusted)}{'' if changed else ' (unchanged)'}")
        if args.vmoptions is not None:
            from ibkr_ops.host import vmoptions  # noqa: PLC0415

            heap = vmoptions.set_heap(Path(args.vmoptions), args.heap_mb)
            note = {True: "", False: " (unchanged)", None: " not set: the file is missing"}[heap]
            print(f"{args.vmoptions}: -Xmx{args.heap_mb}m{note}")
        return 0

    return _guarded(parser.prog, body)


def _notify_quietly(config: host_config.HostConfig, level: str, text: str) -> str:
    """Deliver, but a Discord problem never changes the caller's result: describe it instead."""
    from ibkr_ops.host import notify  # noqa: PLC0415

    try:
        notify.deliver(config, level, text)
    except OpsError as exc:
        return f"not notified: {exc}"
    return f"notified {level}"


def screenshot_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-screenshot`: a PNG of the Gateway's display and the windows on it."""
    parser = _Parser(prog="ibkr-screenshot",
                     description="Take a PNG of the Gateway's virtual display (xwd, nothing left "
                                 "running) and list the windows on it.")
    parser.add_argument("--display", help="X display (default from the settings, :1)")
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument("--out", metavar="FILE.png", help="write the PNG here (mode 0600)")
    output.add_argument("--json", action="store_true",
                        help="print one JSON object: size, windows and the PNG in base64")
    _config_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        import base64  # noqa: PLC0415 - only this command needs them
        import os  # noqa: PLC0415

        from ibkr_ops.host import screen  # noqa: PLC0415

        config = _load(args)
        display = args.display or config.display
        image = screen.capture(display, config.display_unit)
        shown = screen.windows(display, config.display_unit)
        data = screen.png(image)
        if args.json:
            print(json.dumps({"display": display, "width": image.width, "height": image.height,
                              "windows": [dataclasses.asdict(w) for w in shown],
                              "png": base64.b64encode(data).decode()}))
            return 0
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        print(f"{args.out}: {image.width}x{image.height} PNG of display {display}")
        for window in shown:
            print(f"  {window.describe()}")
        return 0

    return _guarded(parser.prog, body)


def vnc_server_main(argv: Sequence[str] | None = None) -> int:
    """`ibkr-vnc-server`: x11vnc on the Gateway's display, for `invoke vnc` (loopback only)."""
    parser = _Parser(prog="ibkr-vnc-server",
                     description="Serve the Gateway's display over VNC on 127.0.0.1 (the first "
                                 "free port from 5900), with the one-time password read from "
                                 "standard input. `invoke vnc` runs this in a transient unit.")
    parser.add_argument("--interactive", action="store_true",
                        help="let the viewer click and type (default: view only)")
    parser.add_argument("--display", help="X display (default from the settings, :1)")
    _config_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        from ibkr_ops.host import vnc  # noqa: PLC0415

        display = args.display or _load(args).display
        if sys.stdin.isatty():
            raise UsageError("give the one-time password on standard input (invoke vnc does)")
        password = vnc.check_password(sys.stdin.readline())
        vnc.serve(display, password, interactive=args.interactive)

    return _guarded(parser.prog, body)
