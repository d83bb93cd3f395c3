"""What the installer uploads besides rendered files: host tools, IBC, the Gateway installer
(read and checked by ``ibkr_ops.gateway_installer``).

The host tools travel as one zip (the stdlib-only ``ibkr_ops.host`` package and the host
layout it reads its paths from, nothing else: a production host gets no simulator) so a host
switches tool versions in one rename, never a mix of old and new modules. The zip is
byte-for-byte reproducible: same sources, same checksum, no re-upload.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ibkr_ops import resources
from ibkr_ops.errors import UsageError
from ibkr_ops.gateway_installer import GatewayInstaller, gateway_installer
from ibkr_ops.layout import DEFAULT
from ibkr_ops.render import ManagedFile

__all__ = ["GatewayInstaller", "IbcSource", "gateway_installer", "host_tools",
           "ibc_from_release", "ibc_from_zip", "tools_zip"]
PACKAGE = Path(__file__).resolve().parents[1]
_SHIPPED = ("__init__.py", "errors.py", "layout.py", "host")
_EPOCH = (1980, 1, 1, 0, 0, 0)
IBC_RELEASE_URL = "https://github.com/IbcAlpha/IBC/releases/download/{v}/IBCLinux-{v}.zip"


def tools_zip() -> bytes:
    """The host-side package as a reproducible zip (sorted entries, fixed times and modes)."""
    sources: list[Path] = []
    for name in _SHIPPED:
        path = PACKAGE / name
        sources += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sources:
            info = zipfile.ZipInfo(str(Path("ibkr_ops") / source.relative_to(PACKAGE)), _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return buffer.getvalue()


def host_tools() -> list[ManagedFile]:
    """The tools zip and the shims (one per tool) that run from it."""
    files = [ManagedFile(DEFAULT.tools_zip, tools_zip(), 0o644)]
    files += [ManagedFile(DEFAULT.tool(shim.name), shim.read_bytes(), 0o755)
              for shim in sorted(resources.scripts().iterdir(), key=lambda s: s.name)
              if shim.is_file()]
    return files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class IbcSource:
    """IBC from a zip on the operator's machine, or a release the host downloads itself."""

    version: str
    data: bytes | None = None
    url: str | None = None

    @property
    def ident(self) -> str:
        """What IBC's source marker records, to tell whether a re-install is due."""
        digest = _sha256(self.data)[:16] if self.data is not None else "release"
        return f"{self.version} {digest}"


def ibc_from_zip(path: Path) -> IbcSource:
    """Read and check an IBC Linux zip locally, before any host is touched."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--ibc-zip {path}: {exc.strerror}; give the IBCLinux-X.Y.Z.zip you "
                         "downloaded") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()
            names = set(archive.namelist())
            version = archive.read("version").decode().strip() if "version" in names else ""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError):
        raise UsageError(f"--ibc-zip {path}: not a zip file (corrupt or truncated download); "
                         "download it again") from None
    if bad is not None:
        raise UsageError(f"--ibc-zip {path}: {bad} is corrupt; download the zip again")
    if "scripts/ibcstart.sh" not in names or not version:
        raise UsageError(f"--ibc-zip {path}: no scripts/ibcstart.sh or version file; is this "
                         "IBC's Linux zip (IBCLinux-X.Y.Z.zip)?")
    return IbcSource(version=version, data=data)


def ibc_from_release(version: str) -> IbcSource:
    """A release for the host to download itself (it needs access to github.com)."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise UsageError(f"--ibc-version {version!r}: expected X.Y.Z, e.g. 3.24.1")
    return IbcSource(version=version, url=IBC_RELEASE_URL.format(v=version))
