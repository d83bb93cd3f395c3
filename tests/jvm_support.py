"""A real JVM for the tests that read back what a Java program reads from our files.

IBC reads config.ini with java.util.Properties and jts.ini with its own JtsIniManager: the
test programs in tests/java/ run that code (IBC's own classes from the IBC zip where given).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

JAVA_SOURCES = Path(__file__).resolve().parent / "java"
NO_JDK = ("no JDK (javac and java): apt-get install openjdk-17-jdk-headless, as .ci/run does "
          "from pyproject.toml")


@dataclass(frozen=True)
class Jvm:
    """Compiled test programs; ``ibc_jar`` is None when IBKR_OPS_IBC_ZIP is not set."""

    classes: Path
    ibc_jar: Path | None

    def classpath(self) -> str:
        return os.pathsep.join([str(self.classes), *([str(self.ibc_jar)] if self.ibc_jar else [])])

    def run(self, main: str, *args: str, properties: dict[str, str] | None = None) -> str:
        options = [f"-D{k}={v}" for k, v in (properties or {}).items()]
        done = subprocess.run(["java", "-Xshare:auto", *options, "-cp", self.classpath(), main,
                               *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def properties(self, *paths: Path) -> list[dict[str, Any]]:
        """What ``Properties.load(InputStream)`` reads from each file."""
        out = self.run("PropsDump", *map(str, paths))
        return [json.loads(line) for line in out.splitlines()]

    def ibc_settings(self, keys: list[str], *paths: Path) -> list[dict[str, str]]:
        """What IBC's ``DefaultSettings.getString`` returns for ``keys`` in each file."""
        out = self.run("IbcView", *map(str, paths), properties={"keys": ",".join(keys)})
        return [json.loads(line[2:]) for line in out.splitlines() if line.startswith("@@")]

    def require_ibc(self) -> Path:
        if self.ibc_jar is None:
            pytest.skip("IBKR_OPS_IBC_ZIP is not set: IBC's own classes are not run here "
                        "(.ci/run sets it)")
        return self.ibc_jar


def build(work: Path) -> Jvm:
    """Compile the programs (IBC's views only with IBC.jar from IBKR_OPS_IBC_ZIP)."""
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip(NO_JDK)
    classes = work / "classes"
    classes.mkdir(parents=True)
    ibc_jar = None
    zip_path = os.environ.get("IBKR_OPS_IBC_ZIP", "")
    if zip_path:
        with zipfile.ZipFile(zip_path) as archive:
            ibc_jar = work / "IBC.jar"
            ibc_jar.write_bytes(archive.read("IBC.jar"))
    sources = [JAVA_SOURCES / "PropsDump.java"]
    if ibc_jar:
        sources += [JAVA_SOURCES / "IbcView.java", JAVA_SOURCES / "ibcalpha/ibc/JtsView.java"]
    jvm = Jvm(classes, ibc_jar)
    subprocess.run(["javac", "-encoding", "UTF-8", "-d", str(classes), "-cp", jvm.classpath(),
                    *map(str, sources)], check=True, capture_output=True, timeout=120)
    return jvm
