"""What every task shares: turning the library's errors into one line and an exit status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke.exceptions import Exit

from ibkr_ops import sandbox
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host import schema
from ibkr_ops.host.envfile import read_env_file
from ibkr_ops.instances import Instance, host_instances
from ibkr_ops.remote.primitives import Host
from ibkr_ops.remote.switch import open_root
from ibkr_ops.settings import Deployment, deployment_from_env

_CREDENTIALS_REQUIRED = ("--credentials FILE is required (start from "
                         "deploy/ibkr/credentials.env.template)")
CREDENTIALS_HELP = ("credentials.env to read (mode 0600); repeat it for several Gateways on one "
                    "host, one file each, named by IBKR_INSTANCE")
# Task option name → credentials.env key and help, for options that override the file.
SETTING_OPTIONS = {name: setting.key for name, setting in schema.OPTIONS.items()}
SETTING_HELP = {name: setting.option_help for name, setting in schema.OPTIONS.items()}


def ssh_configs() -> tuple[str, ...]:
    """The ssh_config files that name hosts beyond ~/.ssh/config: the sandbox's, so
    `--host=NAME` reaches a sandbox guest (production code never looks for it itself)."""
    return (sandbox.ssh_config_path(),)


@contextmanager
def connected(spec: str, trust_new_host: bool = False) -> Iterator[Host]:
    """The one connection a task holds to a host, able to act as root; closed at the end."""
    host = open_root(spec, trust_new_host=trust_new_host, ssh_configs=ssh_configs())
    try:
        yield host
    finally:
        host.conn.close()


@contextmanager
def user_errors() -> Iterator[None]:
    """Show an OpsError as one line and its exit status, never a traceback."""
    try:
        yield
    except OpsError as exc:
        raise Exit(f"error: {exc}", code=exc.exit_code) from None


def deployment(credentials: str, options: dict[str, str | None]) -> tuple[Deployment, bool]:
    """Read the credentials file and apply the setting options that were given; and whether
    the restart time was given (in the file or as an option), which a host's other Gateways
    then leave as it is."""
    overrides = {SETTING_OPTIONS[name]: value for name, value in options.items()
                 if value is not None}
    values = read_env_file(Path(credentials))
    given = {**values, **overrides}.get(schema.RESTART_TIME.key, "").strip() != ""
    return deployment_from_env(values, overrides, source=credentials), given


def instances(credentials: list[str] | None, options: dict[str, str | None]) -> list[Instance]:
    """The Gateways one host gets, one per --credentials file, each with the setting options
    applied; a clash between two of them is refused before any host is contacted."""
    if not credentials:
        raise UsageError(_CREDENTIALS_REQUIRED)
    loaded = [(given, *deployment(given, options)) for given in credentials]
    # After loading, so that a path that is no file has its own message; by inode, so that
    # any two spellings of one file are caught.
    seen: dict[tuple[int, int], str] = {}
    for given in credentials:
        where = Path(given).stat()
        inode = (where.st_dev, where.st_ino)
        if inode in seen:
            raise UsageError(f"--credentials {seen[inode]} and {given} are the same file; give "
                             "each Gateway's file once")
        seen[inode] = given
    return host_instances([(given, d) for given, d, _ in loaded],
                          restart_set={given for given, _, set_ in loaded if set_})


def single_gateway(found: list[Instance], doing: str) -> Deployment:
    """The deployment of a single-Gateway host; named instances are refused (``doing`` them,
    e.g. "installing") until the host side for them exists."""
    if len(found) == 1 and found[0].name is None:
        return found[0].deployment
    named = ", ".join(f"{i.name} ({i.source})" for i in found)
    checked = ", checked against each other" if len(found) > 1 else ""
    raise UsageError(f"{doing} Gateway instances is not built yet ({named}{checked}): for now "
                     "give one credentials file without IBKR_INSTANCE; `invoke render --out DIR` "
                     "shows each instance's files")
