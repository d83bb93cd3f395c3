"""Facts parsing, preflight refusals and the install plan, all without a host."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from ibkr_ops import packages
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.layout import ENABLED_UNITS, TOOLS_ZIP
from ibkr_ops.remote.artifacts import (
    gateway_installer,
    ibc_from_release,
    ibc_from_zip,
    tools_zip,
)
from ibkr_ops.remote.facts import parse_facts, preflight
from ibkr_ops.remote.plan import make_plan
from ibkr_ops.render import ManagedFile

HEALTHY_HOST = "\n".join([
    "ARCH x86_64", "SYSTEMD 1", "KERNEL 6.1.0-13-amd64", "OS debian 12", "MEM_KB 8000000",
    "DISK_KB 20000000", "UID 0", "PRIV root", "PYTHON 3.11", "USER 1",
    *(f"PKG {p} 1" for p in packages.required_packages("debian", "12")),
    *(f"UNIT {u} enabled active" for u in ENABLED_UNITS),
    "UNIT ibkr-gateway.service enabled active", "MAINPID 4242",
])
CONFIG = ManagedFile("/etc/ibkr/config.ini", b"TradingMode=paper\n", 0o600, "trader", "trader")
UNIT = ManagedFile("/etc/systemd/system/ibkr-gateway.service", b"[Service]\n", 0o644)
OPS = ManagedFile("/etc/ibkr/ops.json", b"{}\n", 0o644)


def with_checksums(*files: ManagedFile) -> str:
    return HEALTHY_HOST + "".join(
        f"\nSUM {f.path} {hashlib.sha256(f.content).hexdigest()}" for f in files)


def test_parse_facts_reads_every_fact() -> None:
    f = parse_facts(with_checksums(CONFIG) + "\nIBC 3.24.1 abc\nGATEWAY inst 123\nnoise line")
    assert (f.arch, f.systemd, f.memory_mb, f.disk_mb, f.uid, f.privilege) == (
        "x86_64", True, 7812, 19531, 0, "root")
    assert f.missing_packages == [] and f.user_exists and f.gateway_pid == 4242
    assert f.checksums[CONFIG.path] == hashlib.sha256(CONFIG.content).hexdigest()
    assert (f.ibc_source, f.gateway_source) == ("3.24.1 abc", "inst 123")
    assert f.units["ibkr-gateway.service"] == ("enabled", "active")
    assert f.trading_mode is None and parse_facts("MODE live").trading_mode == "live"


@pytest.mark.parametrize(("change", "message"), [
    ("ARCH riscv64", "architecture riscv64 is not supported"),
    ("SYSTEMD 0", "systemd is not running as PID 1"),
    ("MEM_KB 1000000", "the Gateway needs at least 2048 MB"),
    ("PRIV none", "neither root nor allowed passwordless sudo"),
    ("DISK_KB 1000", "free at least"),
])
def test_preflight_refuses_hosts_the_stack_cannot_run_on(change: str, message: str) -> None:
    key = change.split(maxsplit=1)[0]
    text = "\n".join(ln for ln in HEALTHY_HOST.splitlines() if not ln.startswith(key + " "))
    with pytest.raises(OpsError, match=message):
        preflight(parse_facts(text + "\n" + change))


def test_wsl_without_systemd_gets_the_wsl_conf_fix() -> None:
    text = HEALTHY_HOST.replace("SYSTEMD 1", "SYSTEMD 0").replace(
        "KERNEL 6.1.0-13-amd64", "KERNEL 5.15.153.1-microsoft-standard-WSL2")
    with pytest.raises(OpsError, match=r"/etc/wsl.conf.*systemd=true.*wsl.exe --shutdown"):
        preflight(parse_facts(text))


def test_small_host_is_accepted_with_a_warning() -> None:
    warnings = preflight(parse_facts(HEALTHY_HOST.replace("MEM_KB 8000000", "MEM_KB 3000000")))
    assert any("below 4096 MB" in w for w in warnings)


def test_unchanged_host_gets_an_empty_plan() -> None:
    plan = make_plan(parse_facts(with_checksums(CONFIG, UNIT, OPS)), [CONFIG, UNIT, OPS],
                     None, None)
    assert not plan.changes_anything
    assert plan.gateway_action is None and not plan.daemon_reload


def test_config_change_restarts_only_the_gateway() -> None:
    facts = parse_facts(with_checksums(UNIT, OPS))
    plan = make_plan(facts, [CONFIG, UNIT, OPS], None, None)
    assert [f.path for f in plan.files] == [CONFIG.path]
    assert plan.gateway_action == "restart" and "config.ini" in plan.gateway_reason
    assert not plan.daemon_reload and not plan.restart_display


def test_tool_or_settings_change_restarts_nothing() -> None:
    plan = make_plan(parse_facts(with_checksums(CONFIG, UNIT)), [CONFIG, UNIT, OPS], None, None)
    assert [f.path for f in plan.files] == [OPS.path]
    assert plan.gateway_action is None


def test_unit_change_reloads_systemd() -> None:
    plan = make_plan(parse_facts(with_checksums(CONFIG, OPS)), [CONFIG, UNIT, OPS], None, None)
    assert plan.daemon_reload and plan.gateway_action == "restart"


def test_stopped_gateway_is_started_and_missing_packages_listed() -> None:
    text = with_checksums(CONFIG, UNIT, OPS).replace(
        "UNIT ibkr-gateway.service enabled active", "UNIT ibkr-gateway.service enabled failed")
    text = text.replace("PKG xvfb 1", "PKG xvfb 0")
    plan = make_plan(parse_facts(text), [CONFIG, UNIT, OPS], None, None)
    assert plan.gateway_action == "start" and plan.packages == ["xvfb"]


def test_same_ibc_zip_is_not_reinstalled(tmp_path: Path) -> None:
    path = tmp_path / "IBCLinux-3.24.1.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("version", "3.24.1\n")
        z.writestr("scripts/ibcstart.sh", "#!/bin/bash\n")
    ibc = ibc_from_zip(path)
    fresh = make_plan(parse_facts(HEALTHY_HOST), [], ibc, None)
    again = make_plan(parse_facts(HEALTHY_HOST + f"\nIBC {ibc.ident}"), [], ibc, None)
    assert fresh.ibc == ibc and again.ibc is None


def test_corrupt_or_foreign_ibc_zip_is_refused_locally(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UsageError, match="not a zip file"):
        ibc_from_zip(broken)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("README", "hello")
    with pytest.raises(UsageError, match="is this IBC's Linux zip"):
        ibc_from_zip(other)
    with pytest.raises(UsageError, match=r"(?i)no such file"):
        ibc_from_zip(tmp_path / "missing.zip")


def test_ibc_version_and_installer_are_checked(tmp_path: Path) -> None:
    assert str(ibc_from_release("3.24.1").url).endswith("/3.24.1/IBCLinux-3.24.1.zip")
    with pytest.raises(UsageError, match=r"expected X\.Y\.Z"):
        ibc_from_release("latest")
    not_sh = tmp_path / "installer.sh"
    not_sh.write_bytes(b"\x7fELF")
    with pytest.raises(UsageError, match="not an install4j shell installer"):
        gateway_installer(not_sh)


def test_tools_zip_is_reproducible_and_complete() -> None:
    data = tools_zip()
    assert data == tools_zip()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "ibkr_ops/host/cli.py" in names and "ibkr_ops/errors.py" in names
    # The host tools only: no simulator (it reaches a guest with the simulated installer).
    assert {n.split("/")[1] for n in names} == {"__init__.py", "errors.py", "layout.py", "host"}


def test_an_extra_unit_restarts_when_its_own_files_change_not_the_tools_zip() -> None:
    """The demo's receiver runs from its own zipapp: that file's change restarts it."""
    unit = ManagedFile("/etc/systemd/system/recv.service", b"[Service]\n", 0o644)
    code = ManagedFile("/opt/recv/recv.pyz", b"PK new", 0o644)
    tools = ManagedFile(TOOLS_ZIP, b"PK tools", 0o644)
    facts = parse_facts(with_checksums(unit, tools) + "\nUNIT recv.service enabled active")
    new_code = make_plan(facts, [unit, code, tools], None, None, ("recv.service",),
                         (unit.path, code.path))
    assert new_code.restart_extra == ["recv.service"]
    facts = parse_facts(with_checksums(unit, code) + "\nUNIT recv.service enabled active")
    new_tools = make_plan(facts, [unit, code, tools], None, None, ("recv.service",),
                          (unit.path, code.path))
    assert new_tools.restart_extra == []
