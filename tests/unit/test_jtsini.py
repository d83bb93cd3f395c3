"""The Gateway's trusted API clients: jts.ini edited line by line, honoured by the simulator."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from jvm_support import Jvm

from ibkr_ops.host.cli import prepare_main
from ibkr_ops.host.jtsini import set_trusted_ips, with_trusted_ips
from ibkr_ops.render import render
from ibkr_ops.settings import deployment_from_env
from ibkr_ops.sim.config import SimConfig

WRITTEN_BY_GATEWAY = """[IBGateway]
WriteDebug=false
TrustedIPs=127.0.0.1
ApiOnly=true

[Logon]
Locale=en
"""


def test_existing_list_is_replaced_and_other_lines_kept() -> None:
    out = with_trusted_ips(WRITTEN_BY_GATEWAY, ["127.0.0.1", "10.0.0.5"])
    assert out == WRITTEN_BY_GATEWAY.replace("TrustedIPs=127.0.0.1",
                                             "TrustedIPs=127.0.0.1,10.0.0.5")


def test_missing_key_or_section_is_added() -> None:
    no_key = WRITTEN_BY_GATEWAY.replace("TrustedIPs=127.0.0.1\n", "")
    assert "[IBGateway]\nTrustedIPs=127.0.0.1\nWriteDebug" in with_trusted_ips(no_key, ["127.0.0.1"])
    assert with_trusted_ips("", ["127.0.0.1"]) == "[IBGateway]\nTrustedIPs=127.0.0.1\n"
    logon_only = "[Logon]\nLocale=en\n"
    assert with_trusted_ips(logon_only, ["127.0.0.1"]).startswith(logon_only)


def test_file_is_rewritten_only_when_it_differs(tmp_path: Path) -> None:
    path = tmp_path / "Jts" / "jts.ini"
    assert set_trusted_ips(path, ["127.0.0.1"]) is True
    assert set_trusted_ips(path, ["127.0.0.1"]) is False
    assert path.read_text() == "[IBGateway]\nTrustedIPs=127.0.0.1\n"


def test_prepare_command_rejects_a_bad_address(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", "import sys; from ibkr_ops.host.cli import "
                          "prepare_main; sys.exit(prepare_main())", "--settings-dir",
                          str(tmp_path), "--trusted-ips", "127.0.0.1,10.0.0.300"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert run.stderr.strip() == ("ibkr-gateway-prepare: --trusted-ips: '10.0.0.300' is not an "
                                  "IP address")
    assert not (tmp_path / "jts.ini").exists()


def test_simulator_listens_everywhere_only_when_others_are_trusted(tmp_path: Path) -> None:
    path = tmp_path / "jts.ini"
    path.write_text(WRITTEN_BY_GATEWAY)
    cfg = SimConfig()
    cfg.apply_jts_ini(path)
    assert cfg.host == "127.0.0.1" and not cfg.is_trusted("10.0.0.5")
    set_trusted_ips(path, ["127.0.0.1", "10.0.0.5"])
    cfg = SimConfig()
    cfg.apply_jts_ini(path)
    assert cfg.host == "0.0.0.0"
    assert cfg.is_trusted("10.0.0.5") and cfg.is_trusted("127.0.0.1")
    assert not cfg.is_trusted("10.0.0.6")


@pytest.mark.parametrize("trusted", ["127.0.0.1", "10.0.0.5,127.0.0.1", "127.0.0.1,::1,fd00::5"])
def test_ibc_keeps_the_list_the_gateway_unit_writes(jvm: Jvm, tmp_path: Path,
                                                    trusted: str) -> None:
    """IBC's own JtsIniManager, run on the jts.ini that ExecStartPre wrote and the rendered
    config.ini, finds the list and leaves it (it replaces a list it disagrees with)."""
    jvm.require_ibc()
    d = deployment_from_env({"IBKR_USERNAME": "jdoe", "IBKR_PASSWORD": "pw",
                             "IBKR_TRADING_MODE": "paper", "TWS_MAJOR_VRSN": "1030",
                             "IBKR_TRUSTED_IPS": trusted})
    files = {f.path: f.content for f in render(d)}
    unit = files["/etc/systemd/system/ibkr-gateway.service"].decode()
    argument = re.search(r"ExecStartPre=\S+ .*--trusted-ips=(\S+)", unit)
    assert argument is not None
    (tmp_path / "jts.ini").write_text(WRITTEN_BY_GATEWAY)
    (tmp_path / "config.ini").write_bytes(files["/etc/ibkr/config.ini"])
    assert prepare_main(["--settings-dir", str(tmp_path), "--trusted-ips", argument[1]]) == 0
    written = (tmp_path / "jts.ini").read_text()

    log = jvm.run("ibcalpha.ibc.JtsView", str(tmp_path / "config.ini"), str(tmp_path / "jts.ini"))
    line = f"TrustedIPs={','.join(d.trusted_ips)}"
    assert f"Found setting: [IBGateway]/{line}\n" in log, log
    assert "updating value" not in log
    after = (tmp_path / "jts.ini").read_text()
    assert [ln for ln in after.splitlines() if ln.startswith("TrustedIPs")] == [line]
    assert line in written.splitlines()
