"""`invoke demo`: sandbox guest, simulated artifacts, install, go-live checks, summary."""

from __future__ import annotations

from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ibkr_ops import demo as demo_lib
from ibkr_ops.settings import load_deployment
from ibkr_ops.tasks.common import user_errors
from ibkr_ops.tasks.hosts import run_install
from ibkr_ops.tasks.report import summarize
from ibkr_ops.tasks.verify import check_host


@task(help={"ibc_zip": "the real IBC Linux zip: IBC's own Java code logs in to the Gateway "
                      "stand-in (without it: the Python-only simulator plays IBC)",
            "wait": "seconds to wait for the Gateway to become healthy (default 180)"})
def demo(c: Context, ibc_zip: str | None = None, wait: float = 180.0) -> None:
    """Try everything on a sandbox guest: install, health, go-live checks (needs root)."""
    with user_errors():
        guest = demo_lib.guest()
        credentials = demo_lib.credentials_file()
        d = load_deployment(credentials)
        options = demo_lib.install_options(Path(ibc_zip) if ibc_zip else None, wait)
        failure = summarize(run_install([guest.name], d, options))
        if failure:
            raise Exit(f"error: {failure}", code=1)
        print("\nGo-live checks (non-destructive):", flush=True)
        if not all(r.ready for r in check_host(guest.name, credentials=credentials)):
            raise Exit(f"error: the go-live checks failed on {guest.name} (see the table)", code=1)
    print(f"""
The demo Gateway (simulated, paper account) runs on sandbox guest {guest.name} ({guest.host}).
Look around:
  ssh -F {guest.ssh_config} {guest.name}             a shell on the guest
  invoke status --host {guest.name}                   units, timers, health
  invoke logs --host {guest.name} --follow            the Gateway's journal
  invoke health-check --host {guest.name} --json      the layered health check
  ssh -F {guest.ssh_config} -L 4002:127.0.0.1:4002 {guest.name}   then connect a bot to 127.0.0.1:4002
Credentials used: {credentials} (demo only). Remove the guest: invoke sandbox.down --name {guest.name}""")
