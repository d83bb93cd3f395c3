"""The JVM heap: IBKR_JAVA_HEAP_MB validated, written into ibgateway.vmoptions, seen by "java"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.host.vmoptions import set_heap, with_heap
from ibkr_ops.settings import parse_deployment
from ibkr_ops.sim import artifacts
from ibkr_ops.sim.javacli import heap_size_mb

INSTALLED = artifacts.VMOPTIONS
BASE = "IBKR_USERNAME=u\nIBKR_PASSWORD=p\nIBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN=1030\n"


def prepare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys; from ibkr_ops.host.cli import "
                           "prepare_main; sys.exit(prepare_main())", *args],
                          capture_output=True, text=True, check=False)


def test_only_the_heap_line_changes() -> None:
    out = with_heap(INSTALLED, 1024)
    assert out == INSTALLED.replace("-Xmx768m\n", "-Xmx1024m\n")
    assert with_heap(out, 1024) == out


def test_missing_heap_line_is_appended_and_line_endings_kept() -> None:
    assert with_heap("-XX:+UseG1GC", 900) == "-XX:+UseG1GC\n-Xmx900m\n"
    assert with_heap("", 900) == "-Xmx900m\n"
    assert with_heap("# c\r\n-Xmx2g\r\n-Dx=1\r\n", 700) == "# c\r\n-Xmx700m\r\n-Dx=1\r\n"


def test_file_rewritten_in_place_keeping_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "ibgateway.vmoptions"
    path.write_text(INSTALLED)
    path.chmod(0o644)
    assert set_heap(path, 1536) is True
    assert set_heap(path, 1536) is False
    assert path.read_text() == INSTALLED.replace("-Xmx768m", "-Xmx1536m")
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    assert set_heap(tmp_path / "absent.vmoptions", 1024) is None


def test_prepare_command_sets_trusted_ips_and_heap(tmp_path: Path) -> None:
    vmoptions = tmp_path / "ibgateway.vmoptions"
    vmoptions.write_text(INSTALLED)
    done = prepare("--settings-dir", str(tmp_path), "--trusted-ips", "127.0.0.1",
                   "--heap-mb", "1024", "--vmoptions", str(vmoptions))
    assert done.returncode == 0, done.stderr
    assert f"{vmoptions}: -Xmx1024m" in done.stdout
    assert "-Xmx1024m\n" in vmoptions.read_text()


@pytest.mark.parametrize(("args", "error"), [
    (["--heap-mb", "1024"], "--heap-mb and --vmoptions go together"),
    (["--heap-mb", "1g", "--vmoptions", "x"], "argument --heap-mb: '1g' is not a heap size"),
])
def test_prepare_command_usage_errors(tmp_path: Path, args: list[str], error: str) -> None:
    done = prepare("--settings-dir", str(tmp_path), "--trusted-ips", "127.0.0.1", *args)
    assert done.returncode == 2
    assert error in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_setting_default_and_bounds() -> None:
    assert parse_deployment(BASE).java_heap_mb == 1024
    d = parse_deployment(BASE + "IBKR_JAVA_HEAP_MB=1792\n")
    assert d.java_heap_mb == 1792 and ("IBKR_JAVA_HEAP_MB", "1792") in d.env_items()
    with pytest.raises(UsageError, match=r"^credentials: IBKR_JAVA_HEAP_MB is '500', not a "
                                         r"number from 512 to 65536; set it to megabytes"):
        parse_deployment(BASE + "IBKR_JAVA_HEAP_MB=500\n")


def test_heap_must_leave_room_below_the_memory_ceiling() -> None:
    with pytest.raises(UsageError) as info:
        parse_deployment(BASE + "IBKR_JAVA_HEAP_MB=1800\n")
    message = str(info.value)
    assert message.startswith("credentials: IBKR_JAVA_HEAP_MB is 1800, which leaves less than "
                              "256 MB of IBKR_MEMORY_MAX_MB (2048)")
    assert "\n" not in message
    assert parse_deployment(BASE + "IBKR_MEMORY_MAX_MB=4096\nIBKR_JAVA_HEAP_MB=3840\n")
    with pytest.raises(UsageError, match="IBKR_JAVA_HEAP_MB is 1024"):
        parse_deployment(BASE + "IBKR_MEMORY_MAX_MB=1024\n")


@pytest.mark.parametrize(("size", "mb"), [("768m", 768), ("2g", 2048), ("1048576k", 1024),
                                          ("1073741824", 1024), ("12q", None), ("0m", None),
                                          ("", None)])
def test_simulated_java_reads_xmx_like_the_jvm(size: str, mb: int | None) -> None:
    assert heap_size_mb(size) == mb


def test_simulated_java_refuses_a_bad_heap_like_the_jvm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_GATEWAY_SIM")}
    done = subprocess.run([sys.executable, "-m", "ibkr_ops.sim", "--as-java", "-Xmx12q",
                           "ibcalpha.ibc.IbcGateway", "config.ini"], capture_output=True,
                          text=True, check=False, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("Invalid maximum heap size: -Xmx12q\n"
                                  "Error: Could not create the Java Virtual Machine.")
