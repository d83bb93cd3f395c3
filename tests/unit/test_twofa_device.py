"""IBKR_TWOFA_DEVICE: validated, kept on the host, and read by IBC as `SecondFactorDevice`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.render import env_file_text, render
from ibkr_ops.settings import parse_deployment

BASE = ("IBKR_USERNAME=alice\nIBKR_PASSWORD=Pa55-word!secret\nIBKR_TRADING_MODE=live\n"
        "TWS_MAJOR_VRSN=1030\n")
# How IBC reads config.ini: java.util.Properties from a byte stream (ISO-8859-1), then
# Settings.getString trims the value (javap of ibcalpha.ibc.DefaultSettings, IBC 3.24.1).
READER = """
import java.io.FileInputStream;
import java.util.Properties;
public class Read {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) { p.load(in); }
        System.out.print("[" + p.getProperty("SecondFactorDevice", "").trim() + "]");
    }
}
"""


def config_ini(text: str) -> bytes:
    d = parse_deployment(text)
    return next(f.content for f in render(d) if f.path == "/etc/ibkr/config.ini")


@pytest.mark.parametrize(("line", "device"), [
    ("", ""), ("IBKR_TWOFA_DEVICE=\n", ""), ('IBKR_TWOFA_DEVICE="IB Key"\n', "IB Key"),
    ("IBKR_TWOFA_DEVICE=Mobile Authenticator app\n", "Mobile Authenticator app"),
    ("IBKR_TWOFA_DEVICE=Digital Security Card+\n", "Digital Security Card+"),
])
def test_device_is_rendered_into_second_factor_device(line: str, device: str) -> None:
    lines = config_ini(BASE + line).decode("latin-1").splitlines()
    assert f"SecondFactorDevice={device}" in lines
    d = parse_deployment(BASE + line)
    assert parse_deployment(env_file_text(d)) == d  # the host's copy reads back the same


@pytest.mark.parametrize(("value", "why"), [
    ("IB\\\\Key", "cannot hold"), ("x" * 65, "at most 64"), ("名前", "cannot hold"),
])
def test_unusable_device_names_are_refused(value: str, why: str) -> None:
    with pytest.raises(UsageError, match=f"IBKR_TWOFA_DEVICE .*{why}"):
        parse_deployment(BASE + f'IBKR_TWOFA_DEVICE="{value}"\n')


def test_ibc_reads_the_device_name_as_written(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("no java on this machine: the round trip through java.util.Properties "
                    "needs a JRE (apt-get install default-jre-headless)")
    names = ["IB Key", "Mobile Authenticator app", "Digital Security Card+", "Card #2 = a:b"]
    (tmp_path / "Read.java").write_text(READER)
    for name in names:
        ini = tmp_path / "config.ini"
        ini.write_bytes(config_ini(BASE + f'IBKR_TWOFA_DEVICE="{name}"\n'))
        done = subprocess.run(["java", str(tmp_path / "Read.java"), str(ini)],
                              capture_output=True, text=True, timeout=60, check=True)
        assert done.stdout == f"[{name}]"
