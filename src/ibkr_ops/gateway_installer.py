"""Read an IB Gateway offline installer before any host sees it: what it is, and whether it fits.

IBKR builds its Linux installers with install4j: a shell preamble, then a gzip'd tar appended to
the file, whose size the preamble's ``tail -c N`` names (install4j extracts it to
``sfx_archive.tar.gz``). In that archive:

- ``i4jparams.conf``, install4j's configuration: IBKR's ``buildInfo`` variable
  (``Build 10.45.1h ...``) carries the version, the launchers say Gateway (``ibgateway``) or
  TWS (``tws``), and the launcher's ``-Dchannel=`` VM option the release channel;
- ``jre.tar.gz``, the bundled Java runtime: the ELF header of its ``bin/java`` names the CPU.

Reading the whole archive also checks gzip's CRC, so a truncated download is refused here, not
half-way through an install on a host.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ibkr_ops.errors import UsageError

CONFIG_NAME = "i4jparams.conf"
JRE_NAME = "jre.tar.gz"
PROVENANCE_FILE = ".ibkr-ops-provenance"
_HEAD_BYTES = 256 * 1024  # install4j's preamble is about 25 KiB; the payload starts after it
_PAYLOAD_SIZE = re.compile(rb"tail -c (\d+) ")
_BUILD = re.compile(r'name="buildInfo" value="Build (\d+\.\d+(?:\.\d+)?[a-z]?)[ ",]')
_APP_VERSION = re.compile(r'applicationVersion="(\d+\.\d+(?:\.\d+)?[a-z]?)"')
_CHANNEL = re.compile(r"-Dchannel=(stable|latest)\b")
_LAUNCHER = re.compile(r'<launcher\b[^>]*\bfile="(ibgateway|tws)"')
_NAMED_ARCH = re.compile(r"-linux-(x64|arm)\.sh$")
_NAMED_CHANNEL = re.compile(r"^ibgateway-(stable|latest)-")
# ELF e_machine values (System V ABI): what `uname -m` calls the same CPUs.
_ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
_DOWNLOAD = {"x86_64": "ibgateway-stable-standalone-linux-x64.sh",
             "aarch64": "ibgateway-stable-standalone-linux-arm.sh"}


@dataclass(frozen=True)
class GatewayInstaller:
    """An offline Gateway installer, read and checked: where it is and what it installs."""

    path: Path
    sha256: str
    version: str  # IBKR's build, e.g. 10.45.1h
    channel: str  # stable, latest or unknown
    arch: str  # x86_64 or aarch64, as `uname -m` says on a host it runs on

    @property
    def ident(self) -> str:
        """What the Gateway directory's .ibkr-ops-source records (unchanged since before
        provenance was kept, so hosts installed earlier are not re-installed for it)."""
        return f"{self.path.name} {self.sha256[:16]}"

    @property
    def tws_major_vrsn(self) -> str:
        """IBC's major version: 10.45.1h is 1045 (the period after the first part ignored)."""
        major, minor = self.version.split(".")[:2]
        return f"{major}{minor}"

    @property
    def provenance(self) -> str:
        """One ``key=value`` line for .ibkr-ops-provenance beside the installed Gateway."""
        return (f"sha256={self.sha256} version={self.version} channel={self.channel} "
                f"arch={self.arch}")


def parse_provenance(line: str) -> dict[str, str]:
    """A provenance line back into its fields (unknown or malformed words are skipped)."""
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


def gateway_installer(path: Path) -> GatewayInstaller:
    """Read an installer completely; refuse, in one line, anything that is not a whole one."""
    where = f"--gateway-installer {path}"
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            size = handle.tell()
            handle.seek(0)
            head = handle.read(_HEAD_BYTES)
            offset = _payload_offset(head, size, where)
            handle.seek(offset)
            config, java = _read_payload(handle, where)
    except OSError as exc:
        raise UsageError(f"{where}: {exc.strerror}; give the offline installer "
                         f"({_DOWNLOAD['x86_64']})") from None
    if not _is_gateway(config):
        raise UsageError(f"{where}: an install4j installer, but not IB Gateway's (no ibgateway "
                         f"launcher; TWS's installer?); download {_DOWNLOAD['x86_64']}")
    found = _BUILD.search(config) or _APP_VERSION.search(config)
    if found is None:
        raise UsageError(f"{where}: no build version in its {CONFIG_NAME}; is this IBKR's "
                         "offline Gateway installer? Download it again")
    return GatewayInstaller(path=path, sha256=digest, version=found.group(1),
                            channel=_channel(config, path.name), arch=_arch(java, path.name, where))


def _is_gateway(config: str) -> bool:
    """Its launcher is ``ibgateway``; with no launcher found, a config that names ibgateway."""
    launchers = _LAUNCHER.findall(config)
    return "ibgateway" in launchers if launchers else "ibgateway" in config.lower()


def _payload_offset(head: bytes, size: int, where: str) -> int:
    """Where the appended archive starts; a file shorter than the preamble says is truncated."""
    if not head.startswith(b"#!") or b"INSTALL4J" not in head:
        raise UsageError(f"{where}: not an install4j shell installer; download IBKR's offline "
                         f"Linux installer ({_DOWNLOAD['x86_64']}) again")
    declared = _PAYLOAD_SIZE.search(head)
    if declared is None:
        raise UsageError(f"{where}: its install4j preamble names no archive (no `tail -c`); "
                         "download the offline installer again")
    offset = size - int(declared.group(1))
    if offset < declared.end():
        raise UsageError(f"{where}: truncated ({size} bytes, the installer says it has more); "
                         "download it again")
    return offset


def _read_payload(handle: IO[bytes], where: str) -> tuple[str, bytes]:
    """The install4j config's text and the bundled ``bin/java``'s first bytes (or b"")."""
    config: str | None = None
    java = b""
    try:
        with gzip.GzipFile(fileobj=handle, mode="rb") as packed:
            with tarfile.open(fileobj=packed, mode="r|") as archive:
                for member in archive:
                    name = member.name.removeprefix("./")
                    data = archive.extractfile(member) if member.isfile() else None
                    if data is not None and name == CONFIG_NAME:
                        config = data.read().decode("utf-8", "replace")
                    elif data is not None and name == JRE_NAME:
                        java = _java_header(data)
            # To the end: gzip checks its CRC and length there, so a cut file fails here.
            while packed.read(1 << 20):
                pass
    except (gzip.BadGzipFile, tarfile.TarError, zlib.error, EOFError):
        raise UsageError(f"{where}: truncated or corrupt (its archive does not read to the "
                         "end); download it again") from None
    if config is None:
        raise UsageError(f"{where}: no {CONFIG_NAME} in its archive: not an IB Gateway "
                         "installer; download the offline installer again")
    return config, java


def _java_header(data: IO[bytes]) -> bytes:
    """The first bytes of ``bin/java`` in the bundled runtime's own tar.gz."""
    with tarfile.open(fileobj=data, mode="r|gz") as runtime:
        for member in runtime:
            if member.name.removeprefix("./").endswith("bin/java") and member.isfile():
                java = runtime.extractfile(member)
                return java.read(20) if java else b""
    return b""


def _arch(java: bytes, name: str, where: str) -> str:
    """The CPU the bundled runtime is built for; the file name only when none is bundled."""
    named = _NAMED_ARCH.search(name)
    from_name = {"x64": "x86_64", "arm": "aarch64"}[named.group(1)] if named else None
    if len(java) < 20 or not java.startswith(b"\x7fELF"):
        if from_name is None:
            raise UsageError(f"{where}: no bundled Java runtime and no -linux-x64/-linux-arm in "
                             "its name: cannot tell which CPU it is for; use IBKR's file name")
        return from_name
    (machine,) = struct.unpack("<H" if java[5] == 1 else ">H", java[18:20])
    arch = _ELF_MACHINES.get(machine)
    if arch is None:
        raise UsageError(f"{where}: its Java runtime is built for ELF machine {machine}, "
                         "neither x86_64 nor aarch64")
    if from_name is not None and from_name != arch:
        raise UsageError(f"{where}: named for {from_name} but its Java runtime is {arch}; "
                         "a renamed file? Download it again")
    return arch


def _channel(config: str, name: str) -> str:
    found = _CHANNEL.search(config) or _NAMED_CHANNEL.search(name)
    return found.group(1) if found else "unknown"


def check_fits(installer: GatewayInstaller | None, pin: str | None, tws_major_vrsn: str) -> None:
    """Before a host is contacted: the pinned installer (``IBKR_GATEWAY_SHA256``, if set), and
    the build TWS_MAJOR_VRSN names (IBC looks for that directory). ``None``: no installer given."""
    if installer is None:
        return
    if pin is not None and pin.lower() != installer.sha256:
        raise UsageError(f"{installer.path.name} has sha256 {installer.sha256}, but "
                       f"IBKR_GATEWAY_SHA256 pins {pin}; give the pinned installer or update "
                       "the pin")
    if installer.tws_major_vrsn != tws_major_vrsn:
        raise UsageError(f"{installer.path.name} is Gateway {installer.version} "
                       f"(TWS_MAJOR_VRSN {installer.tws_major_vrsn}), but TWS_MAJOR_VRSN is "
                       f"{tws_major_vrsn}; set TWS_MAJOR_VRSN={installer.tws_major_vrsn} or "
                       "give the matching installer")


def check_arch(installer: GatewayInstaller | None, host_arch: str) -> None:
    """On the host's recorded facts: the x64 installer for x86_64, the arm one for aarch64."""
    host = _HOST_ARCH.get(host_arch)
    if installer is not None and host is not None and host != installer.arch:
        raise UsageError(f"{installer.path.name} is IB Gateway for {installer.arch}, but the "
                       f"host is {host}; give {_DOWNLOAD[host]}")


def supported_arch(host_arch: str) -> bool:
    """Whether IBKR builds a Gateway for this CPU (x86_64 or, since 10.45.1h, aarch64)."""
    return host_arch in _HOST_ARCH
