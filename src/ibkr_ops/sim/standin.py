"""Build the Gateway stand-in's jar from its Java source (``standin/ibgateway/*.java``).

The stand-in is the Swing program IBC's own Java code logs in to (``ibgateway.GWClient``).
It is compiled with the machine's JDK (Debian: ``openjdk-17-jdk-headless``) for Java 17 and
packed into a jar with fixed entry times, so the same sources give the same bytes. Built
jars are cached by the digest of the sources and the compiler's version.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent / "standin"
MAIN_CLASS = "ibgateway.GWClient"
JAVA_RELEASE = 17
JDK_PACKAGE = "openjdk-17-jdk-headless"
_EPOCH = (2025, 1, 1, 0, 0, 0)


class BuildError(Exception):
    """The stand-in cannot be built here; the message says what to install or fix."""


def sources() -> list[Path]:
    found = sorted(SOURCE_DIR.rglob("*.java"))
    if not found:
        raise BuildError(f"the Gateway stand-in's Java source is missing from {SOURCE_DIR}")
    return found


def _javac() -> tuple[str, str]:
    """(path, version) of a javac that compiles for Java 17, or BuildError naming the fix."""
    javac = shutil.which("javac")
    if javac is None:
        raise BuildError(f"javac not found: the Gateway stand-in is Java; install a JDK 17 or "
                         f"newer (apt-get install {JDK_PACKAGE})")
    done = subprocess.run([javac, "-version"], capture_output=True, text=True, check=False,
                          timeout=60)
    version = (done.stdout + done.stderr).strip().removeprefix("javac ").strip()
    major = version.split(".")[0]
    if done.returncode != 0 or not major.isdigit() or int(major) < JAVA_RELEASE:
        raise BuildError(f"{javac} is version {version or 'unknown'}; the Gateway stand-in needs "
                         f"JDK {JAVA_RELEASE} or newer (apt-get install {JDK_PACKAGE})")
    return javac, version


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ibkr-ops" / "standin"


def build_jar() -> bytes:
    """The stand-in's jar (compiled now, or from the cache)."""
    files = sources()
    javac, version = _javac()
    digest = hashlib.sha256(version.encode())
    for path in files:
        digest.update(path.relative_to(SOURCE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    cached = _cache_dir() / f"{digest.hexdigest()[:24]}.jar"
    if cached.is_file():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory(prefix="ibkr-standin-") as tmp:
        out = Path(tmp)
        done = subprocess.run([javac, "--release", str(JAVA_RELEASE), "-encoding", "UTF-8",
                               "-nowarn", "-d", str(out), *map(str, files)],
                              capture_output=True, text=True, check=False, timeout=300)
        if done.returncode != 0:
            first = (done.stderr or done.stdout).strip().splitlines()[:1]
            raise BuildError(f"javac failed on the Gateway stand-in: {first[0] if first else '?'}")
        data = _pack(out)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp_path.write_bytes(data)
    tmp_path.replace(cached)
    return data


def _pack(classes: Path) -> bytes:
    if not (classes / (MAIN_CLASS.replace(".", "/") + ".class")).is_file():
        raise BuildError(f"javac produced no {MAIN_CLASS} class")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        manifest = (f"Manifest-Version: 1.0\nMain-Class: {MAIN_CLASS}\n"
                    "Created-By: ibkr-ops (IB Gateway stand-in)\n")
        archive.writestr(_info("META-INF/MANIFEST.MF"), manifest)
        for path in sorted(classes.rglob("*.class")):
            archive.writestr(_info(path.relative_to(classes).as_posix()), path.read_bytes())
    return buffer.getvalue()


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
