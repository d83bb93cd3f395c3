"""`invoke demo`: the whole stack on a sandbox guest with the Gateway stand-in.

With the real IBC zip (`--ibc-zip`), IBC's own Java code logs in to the Java stand-in; without
it, the simulated IBC zip runs the Python-only simulator in IBC's and the Gateway's place.

Everything it creates lives outside the repository and is reused, so running it again brings
up nothing new, installs nothing new and restarts nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from ibkr_ops import sandbox
from ibkr_ops.errors import OpsError
from ibkr_ops.host import envfile
from ibkr_ops.layout import DEFAULT
from ibkr_ops.remote.artifacts import gateway_installer, ibc_from_zip
from ibkr_ops.remote.install import InstallOptions
from ibkr_ops.render import ManagedFile, render_template
from ibkr_ops.sim import artifacts as sim_artifacts
from ibkr_ops.sim import standin

GUEST = "demo"
DISCORD_PORT = 8765
DISCORD_UNIT = "ibkr-discord-sim.service"
# The receiver's code: the simulator's zipapp, a demo file of its own (the host tools zip
# carries the host tools only).
DISCORD_ZIPAPP = "/opt/ibkr-discord-sim/ibkr-gateway-sim.pyz"
DISCORD_URL = f"http://127.0.0.1:{DISCORD_PORT}/api/webhooks/100000000000000001/demo-token"


def _home(kind: str, env: str, default: str) -> Path:
    return Path(os.environ.get(env) or Path.home() / default) / "ibkr-ops" / "demo" / kind


def credentials_file() -> Path:
    """Demo credentials (a random password, paper mode), created once, mode 0600."""
    path = _home("", "XDG_CONFIG_HOME", ".config") / "credentials.env"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = envfile.format_env([
            ("IBKR_USERNAME", "demo_trader"),
            ("IBKR_PASSWORD", f"demo-{secrets.token_urlsafe(12)}"),
            ("IBKR_TRADING_MODE", "paper"),
            ("TWS_MAJOR_VRSN", sim_artifacts.TWS_MAJOR_VRSN),
            ("DISCORD_WEBHOOK_URL", DISCORD_URL),
        ], ["ibkr-ops demo: simulated Gateway on a sandbox guest; not a real account."])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    return path


def _cached(path: Path, data: bytes, mode: int) -> Path:
    """The artifact at a path named by its content (`<dir>/<sha256 prefix>/<name>`), written
    once: its checksum (and the host) stay put, and two checkouts building different
    artifacts at the same moment never replace each other's file."""
    path = path.parent / hashlib.sha256(data).hexdigest()[:16] / path.name
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(mode)
        tmp.replace(path)
    return path


def discord_receiver() -> tuple[ManagedFile, ManagedFile]:
    """The in-guest Discord-compatible receiver the demo's webhook URL points at: its unit
    and the simulator's zipapp it runs from."""
    text = render_template("ibkr-discord-sim.service.j2", port=DISCORD_PORT, zipapp=DISCORD_ZIPAPP)
    return (ManagedFile(DEFAULT.unit_path(DISCORD_UNIT), text.encode(), 0o644),
            ManagedFile(DISCORD_ZIPAPP, sim_artifacts.build_zipapp(), 0o644))


def install_options(ibc_zip: Path | None, wait_s: float) -> InstallOptions:
    """The simulated Gateway installer (the Java stand-in, built here: needs a JDK), the real
    IBC zip if given (else the simulated one), plus the in-guest Discord receiver."""
    cache = _home("", "XDG_CACHE_HOME", ".cache")
    try:
        built = sim_artifacts.build_installer()
    except standin.BuildError as exc:
        raise OpsError(str(exc)) from None
    installer = _cached(cache / sim_artifacts.INSTALLER_NAME, built, 0o755)
    ibc = ibc_zip or _cached(cache / sim_artifacts.IBC_ZIP_NAME, sim_artifacts.build_ibc_zip(),
                             0o644)
    return InstallOptions(ibc=ibc_from_zip(ibc), gateway=gateway_installer(installer),
                          wait_s=wait_s, extra_files=discord_receiver(),
                          extra_units=(DISCORD_UNIT,), ssh_configs=(sandbox.ssh_config_path(),))


def guest() -> sandbox.Guest:
    """Bring the demo guest up (or find it up) and return how to reach it."""
    (found,) = sandbox.up([GUEST])
    return found
