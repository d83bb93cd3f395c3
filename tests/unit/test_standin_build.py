"""Building the Gateway stand-in: a jar IBC can call, or one line naming the JDK to install."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.sim import standin
from ibkr_ops.tasks.sim import artifacts as artifacts_task


def test_the_jar_holds_the_entry_class_ibc_calls_and_is_reproducible(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = standin.build_jar()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))  # compiled again
    assert standin.build_jar() == first
    with zipfile.ZipFile(BytesIO(first)) as jar:
        names = jar.namelist()
        assert "ibgateway/GWClient.class" in names
        major = int.from_bytes(jar.read("ibgateway/GWClient.class")[6:8], "big")
    assert major == 61  # Java 17 class files: the oldest runtime the installer accepts


def test_without_a_jdk_sim_artifacts_says_what_to_install_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "out"
    with pytest.raises(Exit) as info:
        artifacts_task(Context(), out=str(out))
    assert info.value.code == 1
    message = str(info.value.message)
    assert "javac not found" in message and "openjdk-17-jdk-headless" in message
    assert "\n" not in message
    assert not out.exists()


def test_a_missing_source_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(standin, "SOURCE_DIR", tmp_path)
    with pytest.raises(standin.BuildError, match="Java source is missing"):
        standin.build_jar()
