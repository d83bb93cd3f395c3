"""Deployment → the complete, deterministic set of files a gateway host receives.

Pure: no host, no disk writes except ``write_tree`` (used by ``invoke render``). The installer
compares these bytes with checksums read from the host, so the same inputs must always give
the same bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ibkr_ops import javaprops, resources, schedule
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host import envfile, schema
from ibkr_ops.host.config import HostConfig
from ibkr_ops.layout import DEFAULT, UNIT_DIR, UNITS, Layout
from ibkr_ops.settings import Deployment


@dataclass(frozen=True)
class ManagedFile:
    """One file on the host: where, what, and who may read it."""

    path: str
    content: bytes
    mode: int
    owner: str = "root"
    group: str = "root"
    secret: bool = False

    @property
    def is_unit(self) -> bool:
        return self.path.startswith(UNIT_DIR + "/")


def perl_literal(text: str) -> str:
    """``text`` as a literal inside a Perl regular expression (needrestart's configuration):
    every character but letters, digits, '-' and '_' backslashed, '@' included, which Perl
    would otherwise read as an array inside ``qr()``."""
    return re.sub(r"([^A-Za-z0-9_-])", r"\\\1", text)


def _environment(finalize: Callable[[object], str] | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=resources.template_loader(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - INI and unit files, not HTML
        finalize=finalize,
    )
    env.filters["perl_literal"] = perl_literal
    return env


def render_template(name: str, *, finalize: Callable[[object], str] | None = None,
                    **context: object) -> str:
    """Render one template; a missing variable is an OpsError naming the template and variable.

    ``finalize`` escapes every ``{{ }}`` value for the program that reads the file, so a key
    added to a template later is escaped too.
    """
    try:
        return _environment(finalize).get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise OpsError(f"template {name}: {exc.message}") from None
    except jinja2.TemplateNotFound:
        raise OpsError(f"template {name} is missing from {resources.templates()}") from None


def restart_calendar(d: Deployment) -> str:
    """The timer's OnCalendar= value, in the deployment's time zone so DST needs no care."""
    return f"{schedule.timer_days()} {d.restart_time} {d.timezone}"


def _twelve_hour(hour: int, minute: int) -> str:
    suffix = "AM" if hour < 12 else "PM"
    return f"{(hour % 12) or 12:02d}:{minute:02d} {suffix}"


def auto_restart_time(d: Deployment) -> str:
    """IBC's AutoRestartTime: the minute after the timer, where an IBC RESTART leaves it."""
    return _twelve_hour(*schedule.auto_restart_minute(*d.restart_hour_minute))


def env_file_text(d: Deployment) -> str:
    """credentials.env as the host keeps it: every setting, so `migrate` can read it back."""
    return envfile.format_env(d.env_items(), [
        "ibkr-ops deployment settings and credentials. Mode 0600, root only.",
        "Rewritten by `invoke install`; edit the operator's copy, not this one."])


def host_config(d: Deployment, layout: Layout = DEFAULT) -> HostConfig:
    """The host tools' view of a deployment (its ops.json): no secrets in it. Every host
    setting the deployment has (or derives) is copied by its one name; of the host-only ones,
    the instance and the names of its units and files come from the layout, so the tools act
    on this Gateway's, and the rest keep their defaults."""
    values: dict[str, Any] = {s.name: getattr(d, s.name) for s in schema.HOST
                              if s.key or s.derived}
    # The layout's name, not the file's IBKR_INSTANCE: beside other Gateways a file without
    # one is named by its trading mode.
    values.update(
        instance=layout.instance, gateway_unit=layout.gateway_unit,
        display_unit=layout.display_unit, state_dir=layout.state_dir, log_dir=layout.log_dir,
        credentials_file=layout.credentials)
    if layout.instance is not None:
        # Outside its state, in the one folder node_exporter reads; the default layout's is
        # the empty setting's <state_dir>/metrics/ibkr_gateway.prom, as it always was.
        values["metrics_file"] = layout.metrics_file
    return HostConfig(**values)


def render(d: Deployment, layout: Layout = DEFAULT) -> list[ManagedFile]:
    """Every managed file for a deployment, sorted by path; ``layout`` names its paths and
    units, so the templates hold none of them."""
    context: dict[str, Any] = {
        "d": d,
        "layout": layout,
        "tws_dir": layout.tws_dir(d.home),
        "settings_dir": layout.settings_dir(d.home),
        "restart_calendar": restart_calendar(d),
        "auto_restart_time": auto_restart_time(d),
    }
    files = [
        # IBC reads it with java.util.Properties: every value escaped, the file pure ASCII.
        ManagedFile(layout.config_ini,
                    render_template("config.ini.j2", finalize=javaprops.escape,
                                    **context).encode("ascii"),
                    0o600, d.service_user, d.service_user, secret=True),
        ManagedFile(layout.credentials, env_file_text(d).encode(), 0o600, secret=True),
        ManagedFile(layout.ops_json, host_config(d, layout).to_json().encode(), 0o644),
        ManagedFile(layout.needrestart_conf,
                    render_template("needrestart.conf.j2", **context).encode(), 0o644),
    ]
    # Each unit from the template of its single-instance name, whatever this layout calls it.
    files += [ManagedFile(layout.unit_path(layout.unit(unit)),
                          render_template(f"{unit}.j2", **context).encode(), 0o644)
              for unit in UNITS]
    return sorted(files, key=lambda f: f.path)


def write_tree(files: Iterable[ManagedFile], out: Path) -> list[Path]:
    """Write files under ``out`` (host paths made relative), all or nothing; a directory
    that cannot be made or written is one UsageError naming it."""
    if "\0" in str(out):
        raise UsageError("--out has a NUL character; give a directory path")
    try:
        return _write_tree(files, out)
    except OSError as exc:
        where = exc.filename or out
        raise UsageError(f"cannot write {where}: {exc.strerror or type(exc).__name__}; "
                         "give --out a new or empty directory you can write") from None


def _write_tree(files: Iterable[ManagedFile], out: Path) -> list[Path]:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory; give a new or empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    written: list[Path] = []
    try:
        for f in files:
            target = staging / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, f.mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(f.content)
            os.chmod(target, f.mode)
            written.append(out / f.path.lstrip("/"))
        if out.exists():
            if any(out.iterdir()):
                raise UsageError(f"{out} exists and is not empty; give a new or empty directory")
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written

