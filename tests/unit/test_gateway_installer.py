"""The Gateway installer reader on simulated installers of several releases and on bad files."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.gateway_installer import (
    GatewayInstaller,
    check_arch,
    check_fits,
    gateway_installer,
    parse_provenance,
)
from ibkr_ops.remote.facts import parse_facts, preflight
from ibkr_ops.remote.install import InstallOptions, install_host
from ibkr_ops.settings import parse_deployment
from ibkr_ops.sim.artifacts import Release, build_installer
from ibkr_ops.tasks.sim import artifacts as artifacts_task

RELEASES = [Release("10.30.1", "stable", "x64"), Release("10.19.2", "latest", "arm"),
            Release("10.30.1", "latest", "arm"), Release("10.19.2", "stable", "x64")]
CREDENTIALS = "IBKR_USERNAME=u\nIBKR_PASSWORD=p\nIBKR_TRADING_MODE=paper\nTWS_MAJOR_VRSN=1030\n"


@pytest.fixture(scope="module")
def installers(tmp_path_factory: pytest.TempPathFactory) -> dict[Release, Path]:
    built = {}
    for release in RELEASES:
        path = tmp_path_factory.mktemp("installers") / release.installer_name
        path.write_bytes(build_installer(release))
        built[release] = path
    return built


def _read(installers: dict[Release, Path], release: Release) -> GatewayInstaller:
    return gateway_installer(installers[release])


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.installer_name + "-" + r.version)
def test_reads_version_channel_arch_and_sha256(installers: dict[Release, Path],
                                               release: Release) -> None:
    found = _read(installers, release)
    assert (found.version, found.channel, found.tws_major_vrsn) == (
        release.version, release.channel, release.tws_major_vrsn)
    assert found.arch == {"x64": "x86_64", "arm": "aarch64"}[release.arch]
    assert found.sha256 == hashlib.sha256(installers[release].read_bytes()).hexdigest()
    assert parse_provenance(found.provenance) == {
        "sha256": found.sha256, "version": release.version, "channel": release.channel,
        "arch": found.arch}


def test_arch_and_channel_come_from_the_content_not_the_name(
        installers: dict[Release, Path], tmp_path: Path) -> None:
    """Renamed without the IBKR name, the arm installer still reads as arm, latest."""
    renamed = tmp_path / "gateway.sh"
    renamed.write_bytes(installers[RELEASES[1]].read_bytes())
    found = gateway_installer(renamed)
    assert (found.arch, found.channel) == ("aarch64", "latest")


def test_a_name_that_contradicts_the_content_is_refused(
        installers: dict[Release, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "ibgateway-latest-standalone-linux-x64.sh"
    renamed.write_bytes(installers[RELEASES[1]].read_bytes())
    with pytest.raises(UsageError, match="named for x86_64 but its Java runtime is aarch64"):
        gateway_installer(renamed)


@pytest.mark.parametrize(("content", "message"), [
    (b"\x7fELF\x02\x01\x01" + bytes(200), "not an install4j shell installer"),
    (b"#!/bin/sh\necho 'a shell script'\n", "not an install4j shell installer"),
    (b"#!/bin/sh\n# INSTALL4J_JAVA_HOME_OVERRIDE=\nexit 0\n", "names no archive"),
    (b"", "not an install4j shell installer"),
])
def test_not_an_installer_is_refused_in_one_line(tmp_path: Path, content: bytes,
                                                  message: str) -> None:
    path = tmp_path / "ibgateway-stable-standalone-linux-x64.sh"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message) as raised:
        gateway_installer(path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)


def _install4j(config: str, tmp_path: Path) -> Path:
    """A minimal install4j-shaped file: preamble, then the archive ``tail -c`` names."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed, \
            tarfile.open(fileobj=packed, mode="w") as archive:
        info = tarfile.TarInfo("i4jparams.conf")
        info.size = len(config.encode())
        archive.addfile(info, io.BytesIO(config.encode()))
    payload = buffer.getvalue()
    path = tmp_path / "tws-latest-standalone-linux-x64.sh"
    path.write_bytes(b"#!/bin/sh\n# INSTALL4J_JAVA_HOME_OVERRIDE=\n"
                     + f'tail -c {len(payload)} "$0" > sfx_archive.tar.gz\nexit 0\n'.encode()
                     + payload)
    return path


def test_another_install4j_product_is_refused(tmp_path: Path) -> None:
    """TWS's installer is built the same way: its launcher is tws, not ibgateway."""
    tws = _install4j('<config><variables><variable name="buildInfo" value="Build 10.45.1h '
                     'Aug 5"/></variables><launchers><launcher id="0" file="tws"/></launchers>'
                     "</config>", tmp_path)
    with pytest.raises(UsageError, match="not IB Gateway's"):
        gateway_installer(tws)


def test_a_config_without_launchers_must_name_the_gateway(tmp_path: Path) -> None:
    build = '<variable name="buildInfo" value="Build 10.45.1h Aug 5"/>'
    named = _install4j(f'<config name="IB Gateway ibgateway">{build}</config>', tmp_path)
    assert gateway_installer(named).version == "10.45.1h"
    other = _install4j(f'<config name="Some Product">{build}</config>', tmp_path)
    with pytest.raises(UsageError, match="not IB Gateway's"):
        gateway_installer(other)


def test_real_build_info_layout_is_read(tmp_path: Path) -> None:
    """IBKR's buildInfo reads "Build 10.45.1h Aug 5, 2025 ..."; no runtime: the name decides."""
    path = _install4j('<config><variables><variable name="buildInfo" value="Build 10.45.1h '
                      'Aug 5, 2025 3:21:47 PM"/></variables><launchers><launcher id="0" '
                      'file="ibgateway" vmParameters="-Dchannel=latest"/></launchers></config>',
                      tmp_path)
    named = path.rename(tmp_path / "ibgateway-latest-standalone-linux-x64.sh")
    found = gateway_installer(named)
    assert (found.version, found.channel, found.arch, found.tws_major_vrsn) == (
        "10.45.1h", "latest", "x86_64", "1045")
    nameless = named.rename(tmp_path / "gateway.sh")
    with pytest.raises(UsageError, match="cannot tell which CPU"):
        gateway_installer(nameless)


@pytest.mark.parametrize("keep", [0.5, 0.9, -64, -1])
def test_truncated_installer_is_refused(installers: dict[Release, Path], tmp_path: Path,
                                        keep: float) -> None:
    data = installers[RELEASES[0]].read_bytes()
    cut = int(len(data) * keep) if keep > 0 else len(data) + int(keep)
    path = tmp_path / RELEASES[0].installer_name
    path.write_bytes(data[:cut])
    with pytest.raises(UsageError, match="truncated"):
        gateway_installer(path)


def test_corrupt_archive_is_refused(installers: dict[Release, Path], tmp_path: Path) -> None:
    data = bytearray(installers[RELEASES[0]].read_bytes())
    data[len(data) - 3000] ^= 0xFF  # same length: only gzip's CRC (or inflate) can tell
    path = tmp_path / RELEASES[0].installer_name
    path.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="truncated or corrupt"):
        gateway_installer(path)


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"(?i)no such file"):
        gateway_installer(tmp_path / "missing.sh")


def test_pin_and_major_version(installers: dict[Release, Path]) -> None:
    found = _read(installers, RELEASES[0])
    check_fits(found, None, "1030")
    check_fits(found, found.sha256.upper(), "1030")
    check_fits(None, "0" * 64, "1045")  # no installer given: nothing to check
    with pytest.raises(OpsError, match=f"has sha256 {found.sha256}, but IBKR_GATEWAY_SHA256 "
                                       f"pins {'0' * 64}"):
        check_fits(found, "0" * 64, "1030")
    with pytest.raises(OpsError, match=re.escape("is Gateway 10.30.1 (TWS_MAJOR_VRSN 1030), but "
                                                 "TWS_MAJOR_VRSN is 1019; set TWS_MAJOR_VRSN=1030")):
        check_fits(found, None, "1019")


@pytest.mark.parametrize(("release", "host", "refused"), [
    (RELEASES[0], "x86_64", None),
    (RELEASES[0], "aarch64", "is IB Gateway for x86_64, but the host is aarch64; give "
                             "ibgateway-stable-standalone-linux-arm.sh"),
    (RELEASES[1], "aarch64", None),
    (RELEASES[1], "arm64", None),
    (RELEASES[1], "x86_64", "is IB Gateway for aarch64, but the host is x86_64; give "
                            "ibgateway-stable-standalone-linux-x64.sh"),
])
def test_arch_on_recorded_facts(installers: dict[Release, Path], release: Release, host: str,
                                refused: str | None) -> None:
    facts = parse_facts(f"ARCH {host}\nSYSTEMD 1")
    found = _read(installers, release)
    if refused is None:
        check_arch(found, facts.arch)
    else:
        with pytest.raises(OpsError, match=refused):
            check_arch(found, facts.arch)


def test_preflight_accepts_arm64_hosts() -> None:
    assert preflight(parse_facts("ARCH aarch64\nSYSTEMD 1\nPRIV root\nMEM_KB 8000000\n"
                                 "DISK_KB 20000000\nPKG python3 1\nPYTHON 3.11")) == []


def test_facts_read_the_recorded_build_and_tolerate_hosts_without_one() -> None:
    line = "sha256=ab12 version=10.45.1h channel=stable arch=aarch64"
    assert parse_facts(f"GATEWAY inst 123\nBUILD {line}").gateway_build == parse_provenance(line)
    assert parse_facts("GATEWAY inst 123").gateway_build == {}


def test_pin_setting_is_checked_and_kept_on_the_host() -> None:
    pin = "A" * 64
    d = parse_deployment(CREDENTIALS + f"IBKR_GATEWAY_SHA256={pin}\n")
    assert d.gateway_sha256 == pin.lower()
    assert ("IBKR_GATEWAY_SHA256", pin.lower()) in d.env_items()
    assert "IBKR_GATEWAY_SHA256" not in dict(parse_deployment(CREDENTIALS).env_items())
    with pytest.raises(UsageError, match=re.escape("IBKR_GATEWAY_SHA256 is not a sha256 (5 characters)")):
        parse_deployment(CREDENTIALS + "IBKR_GATEWAY_SHA256=abcde\n")


def test_install_refuses_a_mismatched_pin_before_contacting_the_host(
        installers: dict[Release, Path]) -> None:
    """The host name does not resolve: reaching it would fail differently."""
    d = parse_deployment(CREDENTIALS + f"IBKR_GATEWAY_SHA256={'0' * 64}\n")
    options = InstallOptions(gateway=_read(installers, RELEASES[0]))
    said: list[str] = []
    report = install_host("no-such-host.invalid", d, options, said.append)
    assert report.error is not None and "IBKR_GATEWAY_SHA256 pins" in report.error
    assert said == [] and report.items == []


@pytest.mark.parametrize(("release", "message"), [
    (("10.45.1h", "stable", "x64"), r"no API server version known for Gateway 10\.45\.1h"),
    (("10.30", "stable", "x64"), "expected X.Y.Z"),
    (("10.30.1", "beta", "x64"), "expected stable or latest"),
    (("10.30.1", "stable", "arm64"), "expected x64 or arm"),
])
def test_simulated_release_is_one_the_simulator_can_be(release: tuple[str, str, str],
                                                       message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Release(*release)


def test_sim_artifacts_task_builds_the_release_asked_for(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    artifacts_task(Context(), out=str(tmp_path), gateway_version="10.19.2", channel="latest",
                   arch="arm")
    assert "Gateway 10.19.2 latest linux-arm (TWS_MAJOR_VRSN=1019)" in capsys.readouterr().out
    found = gateway_installer(tmp_path / "ibgateway-latest-standalone-linux-arm.sh")
    assert (found.version, found.channel, found.arch) == ("10.19.2", "latest", "aarch64")
    with pytest.raises(Exit, match=r"error: no API server version known for Gateway 10\.45\.1h"):
        artifacts_task(Context(), out=str(tmp_path / "other"), gateway_version="10.45.1h")
    assert not (tmp_path / "other").exists()
