"""The Gateways of one host, one per credentials file: their names, and what they may not share.

Everything here is decided on the operator's machine, before any host is contacted, so a
clash is one line naming both files and nothing is half-installed. The one check that needs
the host (its memory) is a pure function of the facts the install has already gathered.

What instances share follows from the layout: one service user, whose home holds the one
Gateway installation (``Layout.tws_dir``) and whose build ``TWS_MAJOR_VRSN`` and
``IBKR_GATEWAY_SHA256`` name; one IBC (``layout.IBC_DIR``, chosen by the install's options,
not by the files) and one set of host tools. What each has of its own (ports, display,
Gateway settings directory, login) must not be claimed twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ibkr_ops import schedule
from ibkr_ops.errors import UsageError
from ibkr_ops.host import schema
from ibkr_ops.layout import Layout
from ibkr_ops.remote.facts import Facts, Installed
from ibkr_ops.settings import Deployment

# Memory a host needs beyond its Gateways' MemoryMax=, so that a Gateway growing to its own
# limit is stopped by it (its own restart) before the host runs out and the kernel's OOM killer
# picks a victim, most likely the other Gateway, the biggest process there. The system: the
# kernel's own allocations, systemd, journald, sshd and apt's daily runs. Each Gateway: what
# runs outside its cgroup, its Xvfb (about 70 MB resident with its 1280x1024x24 screen), its
# login watch and its health check runs (Python, tens of MB each).
SYSTEM_HEADROOM_MB = 384
INSTANCE_OVERHEAD_MB = 128

# What every instance of a host shares, and why they must agree on it.
_SHARED: tuple[tuple[schema.Setting[Any], str], ...] = (
    (schema.SERVICE_USER, "the Gateways of a host run as one user, whose home holds the "
                          "Gateway installation"),
    (schema.TWS_MAJOR_VRSN, "the Gateways of a host run one Gateway installation"),
    (schema.GATEWAY_SHA256, "the Gateways of a host run one Gateway installation"),
)

# How far apart two Gateways' daily restarts must be so that two logins never run at once:
# the restart runner's own bound on one restart, a warm one that may fall back to a cold one
# (a full login), each with its timeout. A restart that ends sooner leaves the gap idle; one
# that takes longer has failed and is the runner's to report. 300 + 600 s today: 15 minutes.
RESTART_GAP_MIN = math.ceil((schema.BY_NAME["warm_restart_timeout_s"].default
                             + schema.BY_NAME["cold_restart_timeout_s"].default) / 60)
# Days on each side of daylight saving time: two zones' clocks are compared on both.
_SAMPLE_DAYS = (dt.date(2027, 1, 11), dt.date(2027, 7, 12))  # Mondays
_DAY_MIN = 24 * 60


@dataclass(frozen=True)
class Instance:
    """One Gateway of a host: the credentials file it comes from (as the operator named it),
    its deployment and its name (None: the single-Gateway layout)."""

    source: str
    deployment: Deployment
    name: str | None
    # IBKR_RESTART_TIME was given (in the file or as an option): kept as given. Otherwise the
    # default is staggered against the host's other Gateways (``stagger``).
    restart_set: bool = False

    @property
    def layout(self) -> Layout:
        return Layout(self.name)

    @property
    def settings_dir(self) -> str:
        return self.layout.settings_dir(self.deployment.home)


def instance_name(d: Deployment, *, alone: bool) -> str | None:
    """IBKR_INSTANCE if set; else the trading mode beside other Gateways, and no name for a
    Gateway alone, which keeps a single-Gateway host exactly as it was."""
    if d.instance is not None:
        return d.instance
    return None if alone else d.trading_mode


def host_instances(files: Sequence[tuple[str, Deployment]],
                   restart_set: Collection[str] = ()) -> list[Instance]:
    """The instances of one host from its (file, deployment) pairs, in the order given, their
    default restart times staggered (``restart_set``: the files that give one); the first
    clash between two of them is one UsageError naming both files."""
    found = [Instance(source, d, instance_name(d, alone=len(files) == 1), source in restart_set)
             for source, d in files]
    for a, b in itertools.combinations(found, 2):
        why = _clash(a, b)
        if why:
            raise UsageError(f"{a.source} and {b.source}: {why}")
    return stagger(found)


def _clash(a: Instance, b: Instance) -> str | None:
    return (_same_name(a, b) or _disagree(a.deployment, b.deployment)
            or _claimed_twice(_claims(a), _claims(b)) or _restarts_too_close(a, b))


def _same_name(a: Instance, b: Instance) -> str | None:
    if a.name != b.name:
        return None
    unnamed = " (named by its trading mode: neither sets IBKR_INSTANCE)" \
        if a.deployment.instance is None and b.deployment.instance is None else ""
    return (f"both are Gateway instance {a.name!r}{unnamed}; set another "
            f"{schema.INSTANCE.key} in one of them")


def _disagree(a: Deployment, b: Deployment) -> str | None:
    for setting, why in _SHARED:
        mine, theirs = getattr(a, setting.name), getattr(b, setting.name)
        if mine != theirs:
            return (f"{setting.key} differs ({_shown(mine)} and {_shown(theirs)}), but {why}; "
                    "set the same in both")
    return None


def _shown(value: str | None) -> str:
    # A sha256 is shortened to what tells two apart; no shared setting is a secret.
    return "none" if value is None else repr(value if len(value) < 20 else value[:12] + "...")


@dataclass(frozen=True)
class _Claims:
    """What one Gateway holds on its host that no other may: a file's or an installed one's
    (None, and no port: not known, nothing compared)."""

    ports: tuple[tuple[int, str], ...]  # (port, the key that sets it)
    display: str | None
    settings_dir: str
    username: str | None


def _claims(i: Instance) -> _Claims:
    d = i.deployment
    return _Claims(((d.api_port, schema.API_PORT.key),
                    (d.command_server_port, schema.COMMAND_SERVER_PORT.key)),
                   d.display, i.settings_dir, d.username)


def _installed_claims(name: str, found: Installed, home: str) -> _Claims:
    ports = ((found.api_port, schema.API_PORT.key),
             (found.command_server_port, schema.COMMAND_SERVER_PORT.key))
    return _Claims(tuple((port, key) for port, key in ports if port is not None),
                   found.display, Layout(name).settings_dir(home), found.username)


def _claimed_twice(a: _Claims, b: _Claims) -> str | None:
    return _same_port(a, b) or _same_resource(a, b)


def _same_port(a: _Claims, b: _Claims) -> str | None:
    for (port, key), (other, other_key) in itertools.product(a.ports, b.ports):
        if port == other:
            keys = key if key == other_key else f"{key} in the first, {other_key} in the second"
            return f"both use port {port} ({keys}); give one of them another port"
    return None


def _same_resource(a: _Claims, b: _Claims) -> str | None:
    if a.display is not None and a.display == b.display:
        return (f"both use X display {a.display} ({schema.DISPLAY.key}); give one of them "
                "another, e.g. :2")
    # Follows from the names and the one service user today; checked on its own so that a
    # layout that lets the directory be chosen stays guarded.
    if a.settings_dir == b.settings_dir:
        return f"both keep their Gateway settings in {a.settings_dir}; give them other names"
    # Compared without regard to case: refusing a pair IBKR would tell apart costs less than
    # letting one login log the other out.
    if a.username is not None and b.username is not None \
            and a.username.casefold() == b.username.casefold():
        return (f"both log in as the same {schema.USERNAME.key}: the second login would log "
                "the first out; give each instance its own login (a paper account has its own)")
    return None


# --- the host's Gateways this install leaves alone ------------------------------------------

def left_alone(instances: Sequence[Instance], facts: Facts) -> dict[str, Installed]:
    """The host's named Gateway instances that none of the files given is. (Its single-Gateway
    layout never is: a file without a name is that Gateway, and named files either move it
    into one of them or are refused, ``remote.install.migration_target``.)"""
    given = {i.name for i in instances}
    return {name: found for name, found in facts.installed.items()
            if name is not None and name not in given}


def check_installed(instances: Sequence[Instance], facts: Facts) -> None:
    """Refuse a file that claims what one of the host's instances this install leaves alone
    holds (a port, the display, the login): one UsageError naming both, the same clashes as
    between two files, on the facts the install gathered."""
    for name, found in left_alone(instances, facts).items():
        for i in instances:
            why = _claimed_twice(_claims(i), _installed_claims(name, found, i.deployment.home))
            if why:
                raise UsageError(f"{i.source or 'the settings given'} and the host's Gateway "
                                 f"instance {name!r} (installed, left as it is): {why}")


# --- the daily restarts, staggered ------------------------------------------------------------

RestartTime = tuple[str, str]  # (HH:MM, IANA zone), as a restart timer's OnCalendar= has them


def minutes_apart(a: RestartTime, b: RestartTime) -> int:
    """How close two daily restarts come, either way round the clock, on a winter and a
    summer day (two zones may shift against each other at daylight saving time)."""
    def utc_minute(t: RestartTime, day: dt.date) -> int:
        hour, minute = (int(x) for x in t[0].split(":"))
        local = dt.datetime.combine(day, dt.time(hour, minute), ZoneInfo(t[1]))
        moment = local.astimezone(dt.UTC)
        return moment.hour * 60 + moment.minute

    gaps = [abs(utc_minute(a, day) - utc_minute(b, day)) for day in _SAMPLE_DAYS]
    return min(min(g, _DAY_MIN - g) for g in gaps)


def _restart(d: Deployment) -> RestartTime:
    return d.restart_time, d.timezone


def _restarts_too_close(a: Instance, b: Instance) -> str | None:
    if not (a.restart_set and b.restart_set):
        return None
    gap = minutes_apart(_restart(a.deployment), _restart(b.deployment))
    if gap >= RESTART_GAP_MIN:
        return None
    return (f"their daily restarts ({_shown_restart(a.deployment)} and "
            f"{_shown_restart(b.deployment)}) are {gap} min apart, and one restart may take "
            f"{RESTART_GAP_MIN} min (warm, then a cold login): two logins would run at once; "
            f"set {schema.RESTART_TIME.key} at least {RESTART_GAP_MIN} min apart, or leave it "
            "out of one of them for a staggered default")


def _shown_restart(d: Deployment) -> str:
    return f"{d.restart_time} {d.timezone}"


def _slots(d: Deployment) -> Iterator[str]:
    """The default restart time and each step of ``RESTART_GAP_MIN`` after it, round the
    clock, where the restart rules allow a restart (checked only as far as asked)."""
    hour, minute = (int(x) for x in schema.RESTART_TIME.default.split(":"))
    for step in range(_DAY_MIN // RESTART_GAP_MIN):
        total = (hour * 60 + minute + step * RESTART_GAP_MIN) % _DAY_MIN
        if not schedule.refusal(total // 60, total % 60, d.timezone, d.blackout_windows):
            yield f"{total // 60:02d}:{total % 60:02d}"


def _is_slot(time: str, d: Deployment) -> bool:
    hour, minute = (int(x) for x in time.split(":"))
    base_hour, base_minute = (int(x) for x in schema.RESTART_TIME.default.split(":"))
    offset = (hour * 60 + minute) - (base_hour * 60 + base_minute)
    return offset % RESTART_GAP_MIN == 0 and not schedule.refusal(hour, minute, d.timezone,
                                                                  d.blackout_windows)


def stagger(instances: Sequence[Instance], others: Mapping[str, RestartTime] | None = None,
            installed: Mapping[str | None, RestartTime] | None = None) -> list[Instance]:
    """The instances with every default restart time replaced by a free one: the default, or
    the first time after it, in steps of ``RESTART_GAP_MIN``, that the restart rules allow
    and that is that far from every other Gateway's restart: those the files set, those of
    the host's Gateways this install leaves alone (``others``, by instance) and those given
    out before. An instance keeps the time the host has for it (``installed``) while that is
    still one of the default's free steps, so installing some of a host's instances, or all
    of them in another order, moves no restart. A set time too close to one of ``others``
    is one UsageError."""
    others, installed = others or {}, installed or {}
    taken: list[RestartTime] = [*others.values()]
    for i in instances:
        if not i.restart_set:
            continue
        for name, other in others.items():
            if minutes_apart(_restart(i.deployment), other) < RESTART_GAP_MIN:
                raise UsageError(
                    f"{i.source}: its daily restart ({_shown_restart(i.deployment)}) is less "
                    f"than {RESTART_GAP_MIN} min from that of the host's Gateway instance "
                    f"{name!r} ({other[0]} {other[1]}); move {schema.RESTART_TIME.key}, or "
                    "install both files together")
        taken.append(_restart(i.deployment))

    def free(time: str, i: Instance) -> bool:
        return all(minutes_apart((time, i.deployment.timezone), t) >= RESTART_GAP_MIN
                   for t in taken)

    chosen: dict[int, str] = {}
    for n, i in enumerate(instances):  # first, the times the host already has
        have = installed.get(i.name)
        if (not i.restart_set and have and have[1] == i.deployment.timezone
                and _is_slot(have[0], i.deployment) and free(have[0], i)):
            chosen[n] = have[0]
            taken.append(have)
    for n, i in enumerate(instances):
        if i.restart_set or n in chosen:
            continue
        time = next((s for s in _slots(i.deployment) if free(s, i)), None)
        if time is None:
            raise UsageError(f"{i.source}: no daily restart time is left for it "
                             f"{RESTART_GAP_MIN} min from every other Gateway's and within the "
                             f"restart rules; set {schema.RESTART_TIME.key} yourself")
        chosen[n] = time
        taken.append((time, i.deployment.timezone))
    return [dataclasses.replace(i, deployment=dataclasses.replace(i.deployment,
                                                                  restart_time=chosen[n]))
            if n in chosen and chosen[n] != i.deployment.restart_time else i
            for n, i in enumerate(instances)]


def memory_needed_mb(limits: Sequence[int]) -> int:
    """What a host must have for Gateways of these MemoryMax=: theirs and the headroom."""
    return sum(limits) + SYSTEM_HEADROOM_MB + INSTANCE_OVERHEAD_MB * len(limits)


def check_memory(instances: Sequence[Instance], facts: Facts) -> None:
    """Refuse more Gateways than the host's memory holds (UsageError), on the facts the install
    gathered: the files' and those of the host's instances this install leaves alone, which go
    on running beside them. One Gateway alone is preflight's business: there a host running out
    of memory stops the same Gateway its own limit would, so its MemoryMax= may be all the host
    has."""
    # An installed Gateway whose file does not say runs with the default MemoryMax= its unit
    # was rendered with.
    others = {name: found.memory_max_mb or schema.MEMORY_MAX_MB.default
              for name, found in left_alone(instances, facts).items()}
    limits = [i.deployment.memory_max_mb for i in instances] + list(others.values())
    if len(limits) < 2:
        return
    needed = memory_needed_mb(limits)
    if needed > facts.memory_mb:
        sources = ", ".join(i.source for i in instances[:-1]) + \
            (" and " if len(instances) > 1 else "") + instances[-1].source
        beside = (f", beside the host's Gateway instance{'s' if len(others) > 1 else ''} "
                  f"{', '.join(repr(n) for n in others)} (installed, left as "
                  f"{'they are' if len(others) > 1 else 'it is'})") if others else ""
        raise UsageError(
            f"{sources}{beside}: {len(limits)} Gateways need {needed} MB "
            f"({' + '.join(map(str, limits))} MB of {schema.MEMORY_MAX_MB.key}, "
            f"{SYSTEM_HEADROOM_MB} MB for the system and {INSTANCE_OVERHEAD_MB} MB beside each "
            f"Gateway), but the host has {facts.memory_mb} MB; lower "
            f"{schema.MEMORY_MAX_MB.key} or use a larger host")
