"""Settings, faults, accounts and time rules of the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from ibkr_ops.sim import commandserver, config, javacli, lines, login
from ibkr_ops.sim.config import ConfigError, SimConfig


def test_ini_settings_are_honoured(tmp_path: Path) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text("# comment\n! also a comment\nIbLoginId=jdoe\nIbPassword=secret\n"
                   "TradingMode=live\nOverrideTwsApiPort=4101\nReadOnlyApi=yes\n"
                   "CommandServerPort=7462\nControlFrom=10.0.0.5, ops-host\nBindAddress=127.0.0.1\n"
                   "AutoRestartTime=11:45 PM\nSecondFactorAuthenticationTimeout=90\n")
    cfg = SimConfig()
    cfg.apply_ini(ini)
    cfg.finish()
    assert (cfg.login_id, cfg.password, cfg.trading_mode) == ("jdoe", "secret", "live")
    assert cfg.api_port == 4101 and cfg.read_only_api and cfg.command_server_port == 7462
    assert cfg.control_from == ["10.0.0.5", "ops-host"] and cfg.bind_address == "127.0.0.1"
    assert cfg.second_factor_timeout == 90
    assert cfg.accounts[0].startswith("U") and not cfg.accounts[0].startswith("DU")


def test_default_ports_follow_the_trading_mode() -> None:
    assert SimConfig(trading_mode="paper").api_port == 4002
    assert SimConfig(trading_mode="live").api_port == 4001


def test_paper_accounts_are_du_and_stable() -> None:
    first = config.account_ids("jdoe", "paper")
    assert first == config.account_ids("jdoe", "paper") and first[0].startswith("DU")
    assert config.account_ids("jdoe", "live")[0].startswith("U")


@pytest.mark.parametrize(("content", "code"), [
    ("IbPassword=C:\\users\\x\n", 1),  # Properties.load throws; IBC does not catch it
    ("TradingMode=demo\n", config.EXIT_INVALID_TRADING_MODE),
    ("CommandServerPort=x\n", config.EXIT_INVALID_SETTING),
])
def test_malformed_ini(tmp_path: Path, content: str, code: int) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text(content)
    with pytest.raises(ConfigError) as caught:
        SimConfig().apply_ini(ini)
    assert caught.value.exit_code == code


def test_missing_ini_uses_ibc_exit_code(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        SimConfig().apply_ini(tmp_path / "missing.ini")
    assert caught.value.exit_code == 1103 % 256


def test_command_port_must_differ_from_api_port(tmp_path: Path) -> None:
    cfg = SimConfig(port=4002, command_server_port=4002)
    with pytest.raises(ConfigError):
        cfg.finish()


@pytest.mark.parametrize(("spec", "expected"), [
    ("hang", ("hang", None)), ("slow-handshake=2.5", ("slow-handshake", 2.5)),
    ("leak=50", ("leak", 50.0)), ("Existing-Session", ("existing-session", None)),
])
def test_parse_fault(spec: str, expected: tuple[str, float | None]) -> None:
    assert config.parse_fault(spec) == expected


@pytest.mark.parametrize("spec", ["nope", "leak", "hang=1", "crash-after=x", "leak=-1"])
def test_bad_fault(spec: str) -> None:
    with pytest.raises(ConfigError):
        config.parse_fault(spec)


def test_env_knobs() -> None:
    cfg = SimConfig()
    cfg.apply_env({"IBKR_GATEWAY_SIM_LOGIN_DELAY": "2", "IBKR_GATEWAY_SIM_FAULTS": "hang,leak=5",
                   "IBKR_GATEWAY_SIM_SECOND_FACTOR": "manual", "OTHER": "x"})
    assert cfg.login_delay == 2 and cfg.faults == {"hang": None, "leak": 5.0}
    assert cfg.second_factor == "manual"


@pytest.mark.parametrize(("text", "expected"), [
    ("11:45 PM", dt.time(23, 45)), ("12:00 AM", dt.time(0, 0)), ("04:30 pm", dt.time(16, 30)),
    ('"11:45 PM"', None), ("23:45", None), ("13:00 PM", None),
])
def test_auto_restart_time(text: str, expected: dt.time | None) -> None:
    assert config.parse_restart_time(text) == expected


def test_next_occurrence_and_restart_minute() -> None:
    now = dt.datetime(2026, 3, 6, 16, 29, 30)
    assert login.next_occurrence(now, dt.time(16, 30)) == dt.datetime(2026, 3, 6, 16, 30)
    assert login.next_occurrence(now, dt.time(9, 0)) == dt.datetime(2026, 3, 7, 9, 0)
    assert commandserver.restart_minute(dt.datetime(2026, 3, 6, 23, 59, 10)) == dt.datetime(2026, 3, 7, 0, 0)


def test_java_arguments_as_ibcstart_passes_them(tmp_path: Path) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text("IbLoginId=jdoe\nIbPassword=pw\nTradingMode=live\n")
    cfg = javacli.ibc_config({"jtsConfigDir": str(tmp_path / "s"), "restart": "abc",
                              "ibcsessionid": "XY"}, [str(ini), "paper"], None)
    assert cfg.trading_mode == "paper" and cfg.restart_dir == "abc" and cfg.session_id == "XY"
    assert cfg.settings_dir == tmp_path / "s" and cfg.restart_mode == "exit"
    cfg = javacli.ibc_config({}, [str(ini), "other", "pw2", "live"], None)
    assert (cfg.login_id, cfg.password) == ("other", "pw2")


def test_installation_defaults_come_before_config_ini(tmp_path: Path) -> None:
    """The simulated installer's sim.properties sets the simulator's knobs, and only those."""
    (tmp_path / "sim.properties").write_text("# a comment\n\nsecond_factor=manual\n"
                                             "faults=leak=50, slow-handshake=2\n"
                                             "accounts=DU1, DU2\nOverrideTwsApiPort=1\n")
    ini = tmp_path / "config.ini"
    ini.write_text("IbLoginId=jdoe\nIbPassword=pw\nTradingMode=paper\n")
    cfg = javacli.ibc_config({"jtsConfigDir": str(tmp_path / "s")}, [str(ini)], tmp_path)
    assert (cfg.second_factor, cfg.accounts) == ("manual", ["DU1", "DU2"])
    assert cfg.faults == {"leak": 50.0, "slow-handshake": 2.0}
    assert cfg.api_port == 4002  # an IBC key in sim.properties is not a simulator knob


def test_java_show_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert javacli.java_main(["--java-home", "/j", "-XshowSettings:properties"]) == 1
    err = capsys.readouterr().err
    assert "    java.runtime.version = 17.0.10+7" in err and "java.home = /j" in err


def test_java_unknown_main_class(capsys: pytest.CaptureFixture[str]) -> None:
    assert javacli.java_main(["-cp", "x.jar", "com.example.Main"]) == 1
    assert "Could not find or load main class" in capsys.readouterr().err


def test_command_lines_split_like_java_readline() -> None:
    async def go() -> list[str]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"A\r\nB\rC\n\nD")
        reader.feed_eof()
        return [line async for line in lines.read_lines(reader)]
    assert asyncio.run(go()) == ["A", "B", "C", "", "D"]


@pytest.mark.parametrize(("peer", "control_from", "allowed"), [
    ("127.0.0.1", [], True), ("::1", [], True), ("::ffff:127.0.0.1", [], True),
    ("10.1.2.3", [], False), ("10.1.2.3", ["10.1.2.3"], True), ("10.9.9.9", ["10.1.2.3"], False),
    ("192.168.1.5", [], True),  # the listening address itself
])
def test_command_server_access_rules(peer: str, control_from: list[str], allowed: bool) -> None:
    assert commandserver.permitted(peer, "192.168.1.5", control_from) is allowed
