"""Build the simulated IB Gateway installer and the simulated IBC distribution.

- ``ibgateway-{stable|latest}-standalone-linux-{x64|arm}.sh`` (IB's download names): a shell
  installer taking install4j's unattended flags ``-q -dir DIR``, built as install4j builds
  IBKR's: a preamble, then a gzip'd tar (its size in the preamble's ``tail -c``) holding
  ``i4jparams.conf`` (the ``buildInfo`` version, the ``ibgateway`` launcher and its
  ``-Dchannel``), ``jre.tar.gz`` (a bundled-runtime stand-in: only its ``bin/java``'s ELF header,
  naming the CPU; the installed Gateway runs on the machine's Java) and the Gateway's files, so
  ``ibkr_ops.gateway_installer`` reads it as it reads IBKR's. It lays out the Gateway of any
  release the simulator has an API server version for (default 10.30.1, ``TWS_MAJOR_VRSN``
  1030) as the offline installer does: ``jars/jts4launch-1030.jar`` (the Java Swing stand-in
  whose ``ibgateway.GWClient.main`` IBC calls, built by ``standin``), ``ibgateway.vmoptions``
  (``-Xmx768m``), ``.install4j/`` (``i4jruntime.jar``, and ``inst_jre.cfg`` naming the Java
  runtime the real ``ibcstart.sh`` starts: the machine's own Java 17+ with AWT, found at
  install time; none found, too old or headless: one line and nothing written) and the
  ``ibgateway`` launcher. ``jars/ibkr-gateway-sim.pyz`` is a zipapp of ``ibkr_ops.sim``
  (stdlib only): the stand-in's API engine, and the whole simulated Gateway for the simulated
  IBC zip. Simulator knobs go in ``DIR/sim.properties``, which names the release
  (``gateway_version``): the API server version follows it.
- ``IBCLinux-3.24.1-sim.zip``: laid out like IBC's Linux zip (``gatewaystart.sh``,
  ``scripts/ibcstart.sh``, ``scripts/displaybannerandlaunch.sh``, ``commandsend.sh``, …) with
  scripts written for this project that take the same arguments and variables and run the
  Python-only simulator (IBC's role included) instead of a JVM. No part of IBC is included.
  As in IBC's zip, the scripts carry no execute bit.
- ``manifest.json``: names and versions of the above.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import struct
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import ibcscripts, standin
from .versions import GATEWAY_VERSION, IBC_VERSION, TWS_MAJOR_VRSN, server_version

__all__ = ["GATEWAY_VERSION", "IBC_VERSION", "TWS_MAJOR_VRSN", "Release", "build_ibc_zip",
           "build_installer", "build_zipapp", "write_all"]
IBC_ZIP_NAME = f"IBCLinux-{IBC_VERSION}-sim.zip"
SIM_ZIPAPP = "ibkr-gateway-sim.pyz"
CHANNELS = ("stable", "latest")
ARCHES = {"x64": 62, "arm": 183}  # IBKR's name for the CPU -> its ELF e_machine
_EPOCH = (2025, 1, 1, 0, 0, 0)  # fixed zip timestamps: the artifacts are reproducible

ZIPAPP_MAIN = """\
import sys

from ibkr_ops.sim.cli import main

sys.exit(main())
"""


@dataclass(frozen=True)
class Release:
    """Which Gateway a simulated installer claims to be, as IBKR's installers name theirs."""

    version: str = GATEWAY_VERSION
    channel: str = "stable"
    arch: str = "x64"
    # Simulator knobs baked into the build's sim.properties (e.g. a build that never logs in:
    # ("login_delay", "86400")), so a test can install a faulty build like any other.
    knobs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d+\.\d+\.\d+[a-z]?", self.version):
            raise ValueError(f"Gateway version {self.version!r}: expected X.Y.Z, e.g. 10.30.1")
        server_version(self.version)  # ValueError: the simulator speaks no API for it
        if self.channel not in CHANNELS:
            raise ValueError(f"channel {self.channel!r}: expected stable or latest")
        if self.arch not in ARCHES:
            raise ValueError(f"architecture {self.arch!r}: expected x64 or arm")
        for key, value in self.knobs:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or "\n" in value:
                raise ValueError(f"simulator knob {key}={value!r}: expected a lower-case name "
                                 "and a one-line value, e.g. login_delay=86400")

    @property
    def tws_major_vrsn(self) -> str:
        major, minor = self.version.split(".")[:2]
        return f"{major}{minor}"

    @property
    def installer_name(self) -> str:
        return f"ibgateway-{self.channel}-standalone-linux-{self.arch}.sh"


INSTALLER_NAME = Release().installer_name


def _package_sources() -> dict[str, bytes]:
    """``ibkr_ops/sim/*.py`` plus a stub ``ibkr_ops/__init__.py`` (the real one may grow)."""
    sim_dir = Path(__file__).resolve().parent
    files = {"ibkr_ops/__init__.py": b'"""ibkr-ops (simulator only)."""\n'}
    for path in sorted(sim_dir.glob("*.py")):
        files[f"ibkr_ops/sim/{path.name}"] = path.read_bytes()
    files["__main__.py"] = ZIPAPP_MAIN.encode()
    return files


def build_zipapp() -> bytes:
    """A zipapp of the simulator, runnable as ``python3 FILE`` (and a valid jar file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_info("META-INF/MANIFEST.MF"), "Manifest-Version: 1.0\n")
        for name, data in _package_sources().items():
            archive.writestr(_info(name), data)
    return b"#!/usr/bin/env python3\n" + buffer.getvalue()


def _info(name: str, mode: int = 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _small_jar(note: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_info("META-INF/MANIFEST.MF"), f"Manifest-Version: 1.0\nX-Note: {note}\n")
    return buffer.getvalue()


LAUNCHER_SCRIPT = """\
#!/bin/bash
# IB's own launcher in the simulated installation: the simulated Gateway runs under IBC.
echo "ibgateway (simulated): start the Gateway through IBC (gatewaystart.sh / ibcstart.sh)" >&2
exit 1
"""

VMOPTIONS = """\
# IB Gateway JVM options (simulated installation; the heap is what the real installer sets)
-Xmx768m
-XX:+UseG1GC
-XX:MaxGCPauseMillis=200
-XX:ParallelGCThreads=20
-XX:ConcGCThreads=5
-XX:InitiatingHeapOccupancyPercent=70
-Dinstaller.uuid=00000000-0000-0000-0000-000000000000
-DvmOptionsPath=ibgateway.vmoptions
-Dsun.awt.nopixfmt=true
-Dsun.java2d.noddraw=true
-Dswing.boldMetal=false
-Dsun.locale.formatasdefault=true
"""

SIM_PROPERTIES = """\
# Defaults of the simulated Gateway (ibkr-ops); IBKR_GATEWAY_SIM_* variables override them.
# login_delay=0            seconds from the login dialog to the login
# second_factor=auto       auto | manual (control command APPROVE) | passkey (the dialog's
#                          Approve button, or APPROVE) | off
# second_factor_delay=1    seconds until an automatic approval
# second_factor_timeout=180  seconds until an unapproved prompt expires (stand-in)
# restart_delay=           seconds from a RESTART command to the restart (empty: next minute;
#                          under the real IBC: from IBC setting the auto-restart to the next minute)
# control_port=0           control commands (STATUS, APPROVE, FAULT …) on 127.0.0.1:PORT
# faults=                  e.g. leak=50,slow-handshake=2
# logins=                  login record file (default <settings>/ibkr-gateway-sim-logins.jsonl)
"""


def _installer_head(release: Release, payload_size: int) -> str:
    """The preamble: install4j's flags, the Java check, then ``tail -c`` of the archive."""
    v, major = release.version, release.tws_major_vrsn
    return f"""\
#!/bin/bash
# Simulated IB Gateway {v} ({release.channel}, linux-{release.arch}) offline installer for
# Linux (ibkr-ops test artifact), laid out as install4j lays out IBKR's installers.
# Takes install4j's unattended flags: -q (required) and -dir DIR (default
# ~/Jts/ibgateway/{major}); -varfile, -overwrite, -console and -Dname=value are accepted
# and ignored. IBKR_GATEWAY_SIM_* variables set at install time become the defaults in
# DIR/sim.properties. Needs bash, tail, tar, gzip, a Java 17+ runtime with AWT (Debian:
# openjdk-17-jre; JAVA_HOME, java on PATH or /usr/lib/jvm, IBKR_GATEWAY_SIM_JVM_ROOT moves
# the last; INSTALL4J_JAVA_HOME_OVERRIDE, install4j's own override, comes first) and python3.
# Uncomment the following line to override the JVM search sequence
# INSTALL4J_JAVA_HOME_OVERRIDE=
set -euo pipefail
quiet=
dir="$HOME/Jts/ibgateway/{major}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        -q) quiet=1 ;;
        -dir) [[ $# -ge 2 ]] || {{ echo "installer: -dir needs a directory" >&2; exit 1; }}
              dir=$2; shift ;;
        -varfile) shift ;;
        -overwrite|-console|-c|-splash|-D*) ;;
        -h|--help|-help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "installer: unknown option $1" >&2; exit 1 ;;
    esac
    shift
done
if [[ -z $quiet ]]; then
    echo "installer: this simulated installer runs unattended only: give -q -dir DIR" >&2
    exit 1
fi
# The Gateway is a Swing program: it needs a Java 17+ runtime with its X11 toolkit.
java_spec() {{
    "$1/bin/java" -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java.specification.version = //p' | head -n 1
}}
jre= refused= on_path=
if command -v java >/dev/null; then on_path=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")"); fi
jvm_root=${{IBKR_GATEWAY_SIM_JVM_ROOT:-/usr/lib/jvm}}
for home in ${{INSTALL4J_JAVA_HOME_OVERRIDE:-}} ${{JAVA_HOME:-}} $on_path "$jvm_root"/*; do
    [[ -x $home/bin/java ]] || continue
    spec=$(java_spec "$home")
    if [[ ! ${{spec%%.*}} =~ ^[0-9]+$ || ${{spec%%.*}} -lt 17 ]]; then
        refused="Java runtime $home is version ${{spec:-unknown}}; the Gateway needs 17 or newer"
    elif [[ ! -e $home/lib/libawt_xawt.so ]]; then
        refused="Java runtime $home is headless (no X11 toolkit); the Gateway needs a full runtime"
    else
        jre=$home; break
    fi
done
if [[ -z $jre ]]; then
    echo "installer: ${{refused:-no Java runtime found}}: install one (Debian/Ubuntu:" \
        "apt-get install openjdk-17-jre) or set JAVA_HOME" >&2
    exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
tail -c {payload_size} "$0" | tar -xz -C "$dir" --strip-components=1 gateway
echo "$jre" > "$dir/.install4j/inst_jre.cfg"
props="$dir/sim.properties"
if [[ ! -e $props ]]; then
    cp "$dir/.install4j/sim.properties.template" "$props"
    for name in ${{!IBKR_GATEWAY_SIM_@}}; do
        key=${{name#IBKR_GATEWAY_SIM_}}
        printf '%s=%s\\n' "${{key,,}}" "${{!name}}" >> "$props"
    done
fi
echo "IB Gateway {v} (simulated) installed in $dir"
exit 0
"""


I4JPARAMS = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Simulated install4j configuration of IB Gateway {version} (ibkr-ops test artifact) -->
<config>
  <general applicationName="IB Gateway" applicationVersion="{version}" \
mediaName="{media}"/>
  <variables>
    <variable name="buildInfo" value="Build {version}, simulated"/>
    <variable name="majorVersion" value="{major}"/>
  </variables>
  <launchers>
    <launcher id="0" file="ibgateway" vmParameters="-Dchannel={channel} \
-Dinstall4jType=standalone"/>
  </launchers>
</config>
"""


def _i4jparams(release: Release) -> bytes:
    return I4JPARAMS.format(version=release.version, major=release.tws_major_vrsn,
                            channel=release.channel,
                            media=release.installer_name.removesuffix(".sh")).encode()


def _elf_header(machine: int) -> bytes:
    """An ELF64 little-endian executable's 64-byte header and nothing else: not runnable."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHI", 2, machine, 1) + bytes(64 - 24)


def _tree(release: Release) -> dict[str, tuple[bytes, int]]:
    """Files of the installed Gateway (relative path -> content, mode)."""
    major = release.tws_major_vrsn
    props = SIM_PROPERTIES + f"gateway_version={release.version}\n" + "".join(
        f"{key}={value}\n" for key, value in release.knobs)
    return {
        f"jars/jts4launch-{major}.jar": (standin.build_jar(), 0o644),
        f"jars/{SIM_ZIPAPP}": (build_zipapp(), 0o644),
        f"jars/twslaunch-{major}.jar": (_small_jar("simulated twslaunch"), 0o644),
        "jars/locales.jar": (_small_jar("simulated locales"), 0o644),
        "ibgateway.vmoptions": (VMOPTIONS.encode(), 0o644),
        "ibgateway": (LAUNCHER_SCRIPT.encode(), 0o755),
        ".install4j/i4jruntime.jar": (_small_jar("simulated install4j runtime"), 0o644),
        ".install4j/i4jparams.conf": (_i4jparams(release), 0o644),
        ".install4j/sim.properties.template": (props.encode(), 0o644),
    }


def _tar_gz(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    # gzip's header carries a timestamp: pin it, or the installer changes on every build.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as packed, \
            tarfile.open(fileobj=packed, mode="w") as archive:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.mktime((*_EPOCH, 0, 0, -1)))
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_installer(release: Release | None = None) -> bytes:
    """The installer of ``release`` (default: Gateway 10.30.1, stable, x64); reproducible."""
    release = release or Release()
    runtime = _tar_gz({"bin/java": (_elf_header(ARCHES[release.arch]), 0o644)})
    payload = _tar_gz({
        "i4jparams.conf": (_i4jparams(release), 0o644),
        "jre.tar.gz": (runtime, 0o644),
        **{f"gateway/{name}": entry for name, entry in _tree(release).items()},
    })
    return _installer_head(release, len(payload)).encode() + payload


def build_ibc_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(ibcscripts.FILES.items()):
            archive.writestr(_info(name), text)
        archive.writestr(_info("IBC.jar"), _small_jar("simulated IBC: the simulated Gateway "
                                                      "contains IBC's role"))
    return buffer.getvalue()


def write_all(out: Path, release: Release | None = None) -> dict[str, str]:
    """Write the installer, the simulated IBC zip and manifest.json into ``out``."""
    release = release or Release()
    payload = build_installer(release)  # first: a stand-in that cannot be built leaves nothing
    out.mkdir(parents=True, exist_ok=True)
    installer = out / release.installer_name
    installer.write_bytes(payload)
    installer.chmod(0o755)
    ibc_zip = out / IBC_ZIP_NAME
    ibc_zip.write_bytes(build_ibc_zip())
    manifest = {
        "gateway_version": release.version,
        "tws_major_vrsn": release.tws_major_vrsn,
        "channel": release.channel,
        "arch": release.arch,
        "installer": installer.name,
        "installer_args": ["-q", "-dir", f"~/Jts/ibgateway/{release.tws_major_vrsn}"],
        "ibc_version": IBC_VERSION,
        "ibc_zip": ibc_zip.name,
        "simulated": True,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {"installer": str(installer), "ibc_zip": str(ibc_zip),
            "manifest": str(out / "manifest.json")}
