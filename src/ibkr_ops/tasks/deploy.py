"""Tasks that turn a deployment's inputs into files: `render`."""

from __future__ import annotations

from pathlib import Path

from invoke.context import Context
from invoke.tasks import task

from ibkr_ops.errors import UsageError
from ibkr_ops.remote.install import instance_files
from ibkr_ops.render import write_tree
from ibkr_ops.tasks.common import CREDENTIALS_HELP, SETTING_HELP, instances, user_errors


@task(iterable=["credentials"], help={
    "credentials": CREDENTIALS_HELP,
    "out": "directory to create with the host's files (must not exist or be empty)",
    "config_only": "leave out the host tools (scripts and their zip): configuration only",
    **SETTING_HELP})
def render(c: Context, credentials: list[str] | None = None, out: str | None = None,
           mode: str | None = None, api_port: str | None = None, api_host: str | None = None,
           read_only_api: str | None = None, trusted_ips: str | None = None,
           service_user: str | None = None, restart_time: str | None = None,
           timezone: str | None = None, restart_mode: str | None = None,
           memory_max_mb: str | None = None, config_only: bool = False) -> None:
    """Write every file a host would receive into a directory, for review.

    With several --credentials, each Gateway's files are in its own instance's paths.
    """
    with user_errors():
        if not out:
            raise UsageError("--out DIR is required: where to write the files")
        found = instances(credentials, {
            "mode": mode, "api_port": api_port, "api_host": api_host,
            "read_only_api": read_only_api, "trusted_ips": trusted_ips,
            "service_user": service_user, "restart_time": restart_time,
            "timezone": timezone, "restart_mode": restart_mode, "memory_max_mb": memory_max_mb})
        written = write_tree(instance_files(found, tools=not config_only), Path(out))
    for path in written:
        print(f"{path.stat().st_mode & 0o777:04o}  {path}")
