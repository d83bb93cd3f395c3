"""What of the product a host holds, found by the layout's own names: the survey `uninstall` plans from.

Nothing here is remembered from an install: a host may have been installed by an older
release, by hand-written instances, or half uninstalled. So the survey lists the directories
the layout puts things in (the unit directory with its ``.wants`` and ``.d`` directories, the
settings, state, log and needrestart directories) and keeps what carries one of the layout's
names, for the single Gateway or for any instance (``ibkr-gateway@paper.service``,
``/etc/ibkr/paper``). Names are matched by building them with ``Layout`` itself, never by
spelling them again. The command runs in one round trip; parsing it is pure.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ibkr_ops.errors import UsageError
from ibkr_ops.host.config import HostConfig
from ibkr_ops.layout import CONFIG_ROOT, DEFAULT, STATE_ROOT, UNIT_DIR, UNITS, Layout
from ibkr_ops.remote import added

# An instance name that occurs nowhere else in a name, to learn where a layout puts the
# instance part of a name (`ibkr-gateway@` + name + `.service`).
_PROBE = "zq"
# What a unit directory's entries are: enablement links live in these, drop-ins in "*.d".
_LINK_DIRS = (".wants", ".requires", ".upholds")

_SCRIPT = r"""
for d in $DIRS; do
  [ -d "$d" ] && find "$d" -mindepth 1 -maxdepth 2 -printf 'ENTRY %y %p\n'
done
for f in $CONFIGS; do
  [ -f "$f" ] && printf 'CONFIG %s %s\n' "$f" "$(base64 -w0 "$f")"
done
[ -f "$RECORD" ] && printf 'RECORD %s\n' "$(base64 -w0 "$RECORD")"
true
"""


def roots() -> tuple[str, ...]:
    """The directories whose entries carry the product's names."""
    return (UNIT_DIR, CONFIG_ROOT, STATE_ROOT, DEFAULT.log_dir,
            posixpath.dirname(DEFAULT.needrestart_conf))


def survey_command() -> str:
    """The one shell command (run as root) that prints every entry the plan may need."""
    configs = (DEFAULT.ops_json, Layout(_PROBE).ops_json.replace(f"/{_PROBE}/", "/*/"))
    env = {"DIRS": " ".join(roots()), "CONFIGS": " ".join(configs),
           "RECORD": Layout.added_record()}
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assigns} sh -c {shlex.quote(_SCRIPT)}"


def instance_in(text: str, form: Callable[[Layout], str]) -> str | None:
    """The instance whose layout gives ``text`` as ``form`` (a name or path), "" for the
    default layout's, None when neither: ``instance_in("xvfb@paper.service", ...)`` is paper."""
    if text == form(DEFAULT):
        return ""
    prefix, _, suffix = form(Layout(_PROBE)).partition(_PROBE)
    if not (text.startswith(prefix) and text.endswith(suffix)):
        return None
    name = text[len(prefix):len(text) - len(suffix)]
    try:
        return name if form(Layout(name)) == text else None
    except ValueError:
        return None


def unit_form(unit: str) -> Callable[[Layout], str]:
    """How a layout names one of ``UNITS``, as a ``form`` for ``instance_in``."""
    return lambda layout: layout.unit(unit)


def template(unit: str) -> str:
    """The systemd template an instance of one of ``UNITS`` may come from
    (``ibkr-gateway@.service``)."""
    return Layout(_PROBE).unit(unit).replace(_PROBE, "")


def is_ours(name: str, extra_units: Iterable[str] = ()) -> bool:
    """Whether a unit name is the product's: a unit, an instance's, a template, an extra."""
    return name in extra_units or any(
        name == template(unit) or instance_in(name, unit_form(unit))
        is not None for unit in UNITS)


@dataclass
class Footprint:
    """The product's entries on one host, by kind; paths are absolute."""

    unit_files: list[str] = field(default_factory=list)  # unit names in UNIT_DIR
    links: list[str] = field(default_factory=list)  # enablement symlinks (paths)
    dropins: list[str] = field(default_factory=list)  # bot services' drop-ins (paths)
    entries: dict[str, list[str]] = field(default_factory=dict)  # root -> its direct entries
    configs: dict[str, HostConfig | None] = field(default_factory=dict)  # ops.json -> read
    added: added.Added = field(default_factory=added.Added)

    def instances(self) -> list[str]:
        """Every named instance any entry belongs to, sorted."""
        found: set[str | None] = set()
        for unit in self.unit_files:
            found |= {instance_in(unit, unit_form(u)) for u in UNITS}
        for path in self.dropins:
            found.add(instance_in(posixpath.basename(path), lambda layout: layout.dropin_name))
        forms: tuple[Callable[[Layout], str], ...] = (
            lambda layout: layout.config_dir, lambda layout: layout.state_dir,
            lambda layout: layout.log_dir, lambda layout: layout.needrestart_conf)
        for entry in (p for paths in self.entries.values() for p in paths):
            found |= {instance_in(entry, form) for form in forms}
        return sorted(name for name in found if name)

    def needrestart_confs(self) -> list[str]:
        """The needrestart overrides of the default layout and of every instance."""
        conf_dir = posixpath.dirname(DEFAULT.needrestart_conf)
        return [p for p in self.entries.get(conf_dir, [])
                if instance_in(p, lambda layout: layout.needrestart_conf) is not None]


def _decode(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def _config(text: str, source: str) -> HostConfig | None:
    """An ops.json as the host tools read it; None when it does not read (then nothing is
    known of it: not its mode, not its user)."""
    try:
        return HostConfig.from_dict(json.loads(text), source)
    except (UsageError, ValueError, RecursionError):
        return None


def parse_survey(text: str, extra_units: Iterable[str] = ()) -> Footprint:
    """The survey's output as a Footprint; lines of other kinds are skipped."""
    extras = tuple(extra_units)
    found = Footprint()
    listed = roots()
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "ENTRY":
            ftype, _, path = rest.partition(" ")
            parent = posixpath.dirname(path)
            name = posixpath.basename(path)
            if parent == UNIT_DIR and ftype in ("f", "l") and is_ours(name, extras):
                found.unit_files.append(name)
            elif posixpath.dirname(parent) == UNIT_DIR and parent != UNIT_DIR:
                if parent.endswith(_LINK_DIRS) and ftype == "l" and is_ours(name, extras):
                    found.links.append(path)
                elif parent.endswith(".d") and ftype == "f" and instance_in(
                        name, lambda layout: layout.dropin_name) is not None:
                    found.dropins.append(path)
            elif parent in listed and parent != UNIT_DIR:
                found.entries.setdefault(parent, []).append(path)
        elif kind == "CONFIG":
            path, _, data = rest.partition(" ")
            found.configs[path] = _config(_decode(data), path)
        elif kind == "RECORD":
            found.added = added.parse(_decode(rest))
    for values in (found.unit_files, found.links, found.dropins, *found.entries.values()):
        values.sort()
    return found
