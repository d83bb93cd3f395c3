"""Installed settings: defaults, the JSON round trip, and one clear error per bad key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.host.config import HostConfig
from ibkr_ops.host.installed import every


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "ops.json"
    path.write_text(json.dumps(data))
    return path


def test_defaults_are_valid_and_safe() -> None:
    config = HostConfig()
    assert (config.api_host, config.api_port, config.trading_mode) == ("127.0.0.1", 4002, "paper")
    assert config.health_client_id == 999
    assert config.gateway_unit == "ibkr-gateway.service"


def test_to_json_round_trips_through_load(tmp_path: Path) -> None:
    config = HostConfig(trading_mode="live", api_port=4001, blackout_windows=("Sun 17:00-19:00",),
                        extra_holidays=("2025-01-09",), memory_ceiling_mb=2048)
    path = tmp_path / "ops.json"
    path.write_text(config.to_json())
    assert HostConfig.load(path) == config
    assert json.loads(config.to_json())["blackout_windows"] == ["Sun 17:00-19:00"]


def test_to_json_is_deterministic() -> None:
    assert HostConfig().to_json() == HostConfig().to_json()
    assert HostConfig().to_json().endswith("}\n")


@pytest.mark.parametrize(("data", "message"), [
    ({"api_prot": 4002}, "unknown key 'api_prot'"),
    ({"api_port": "4002"}, "api_port must be an integer, not str"),
    ({"api_port": True}, "api_port must be an integer, not bool"),
    ({"api_port": 70000}, "api_port is 70000, not a number from 1024 to 65535"),
    ({"health_timeout_s": 0}, "health_timeout_s is 0, not a number above 0"),
    ({"trading_mode": "demo"}, "trading_mode is 'demo', not one of paper, live"),
    ({"restart_mode": "hot"}, "restart_mode is 'hot', not one of auto, warm, cold"),
    ({"blackout_windows": "Sun 17:00-18:00"}, "blackout_windows must be a list of strings"),
    ({"blackout_windows": ["Sunday evening"]}, "has 'Sunday evening', not 'DAYS HH:MM-HH:MM'"),
    ({"blackout_windows": ["Xyz 10:00-11:00"]}, "blackout_windows has 'Xyz 10:00-11:00'"),
    ({"extra_holidays": ["2025-13-01"]}, "extra_holidays has '2025-13-01', not a date"),
    ({"market_timezone": "America/Nowhere"}, "market_timezone is not a known IANA time zone"),
    ({"memory_warn_ratio": 1.5}, "memory_warn_ratio is 1.5, not a number above 0 and at most 1"),
    ({"command_server_port": 4002}, "command_server_port must differ from api_port"),
    ({"api_port": 80}, "api_port is 80, not a number from 1024 to 65535"),
    ({"health_client_id": 0}, "health_client_id is 0, not a number from 1 to 2147483647"),
    ({"health_interval_s": 5}, "health_interval_s is 5, not a number from 10 to 3600"),
    ({"display": "1"}, "display is not a free X display such as ':1'"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_settings_name_the_key(tmp_path: Path, data: object, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(UsageError) as info:
        HostConfig.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_floats_accept_integers(tmp_path: Path) -> None:
    assert HostConfig.load(write(tmp_path, {"health_timeout_s": 3})).health_timeout_s == 3


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ops.json"
    path.write_text('{\n"api_port": 4002,\n}\n')
    with pytest.raises(UsageError, match="line 3: invalid JSON"):
        HostConfig.load(path)


def test_missing_explicit_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"absent\.json: no such file"):
        every(str(tmp_path / "absent.json"), None)[0].load()


def test_constructor_validates_too() -> None:
    with pytest.raises(UsageError, match="health_client_id"):
        HostConfig(health_client_id=-1)
