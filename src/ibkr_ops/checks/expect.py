"""What a host must look like: from its own installed settings, or from the operator's file.

By default the expectations are what the install wrote (ops.json and the non-secret
keys of credentials.env, read on the host by the settings probe), so a check needs nothing
from the operator and the password never leaves the host. With the operator's credentials
file the expectations come from it instead, and item 0 says whether the host still holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ibkr_ops.checks.result import Passed, Skipped, check, require
from ibkr_ops.checks.runner import Runner, run_hostside
from ibkr_ops.errors import OpsError
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.settings import Deployment

SECRET_KEYS = ("IBKR_PASSWORD", "DISCORD_WEBHOOK_URL")


@dataclass(frozen=True)
class Installed:
    """A host's installed settings, secrets left out (only which secret keys are set)."""

    env: dict[str, str]
    ops: dict[str, Any]
    secrets_set: tuple[str, ...]


def read_installed(runner: Runner) -> Installed:
    """Run the settings probe on the host; an OpsError says why it could not."""
    if not runner.run(f"test -r {DEFAULT.credentials}").ok:
        raise OpsError(f"cannot read {DEFAULT.credentials} on the host: connect as root "
                       "or with passwordless sudo; is the stack installed?")
    probe = run_hostside(runner, "settings_probe.py")
    return Installed(dict(probe["env"]), dict(probe["ops"]), tuple(probe["secrets_set"]))


def operator_env(d: Deployment) -> dict[str, str]:
    """The non-secret keys of an operator's deployment, as the host's file spells them."""
    return {key: value for key, value in d.env_items() if key not in SECRET_KEYS}


@dataclass(frozen=True)
class Expect:
    """What the host must look like, from the settings the install used."""

    trading_mode: str
    api_host: str
    api_port: int
    service_user: str
    restart_time: str
    timezone: str
    health_client_id: int
    webhook: bool
    cold_restart_timeout_s: float
    # Whose units and files: the single Gateway's unless an instance is checked.
    layout: Layout = DEFAULT

    @classmethod
    def from_settings(cls, env: dict[str, str], ops: dict[str, Any], webhook: bool) -> Expect:
        """From credentials.env keys (defaults as `settings.Deployment`) and ops.json."""

        def key(name: str, default: object) -> str:
            return env.get(name) or str(default)

        mode = key("IBKR_TRADING_MODE", "paper").lower()
        return cls(
            trading_mode=mode,
            api_host=key("IBKR_API_HOST", Deployment.api_host),
            api_port=int(key("IBKR_API_PORT", 4002 if mode == "paper" else 4001)),
            service_user=key("IBKR_SERVICE_USER", Deployment.service_user),
            restart_time=key("IBKR_RESTART_TIME", Deployment.restart_time),
            timezone=key("IBKR_TIMEZONE", Deployment.timezone),
            health_client_id=int(key("IBKR_HEALTH_CLIENT_ID", Deployment.health_client_id)),
            webhook=webhook,
            cold_restart_timeout_s=float(ops.get("cold_restart_timeout_s", 600.0)),
        )

    @classmethod
    def of(cls, installed: Installed, operator: dict[str, str] | None = None) -> Expect:
        """The host's own settings, or the operator's keys when given."""
        env = operator if operator is not None else installed.env
        return cls.from_settings(env, installed.ops,
                                 webhook="DISCORD_WEBHOOK_URL" in installed.secrets_set)

    def account_matches(self, account: str) -> bool:
        """Paper accounts are DU..., live ones U..."""
        return account.startswith("DU" if self.trading_mode == "paper" else "U")

    @property
    def account_prefix(self) -> str:
        return "DU" if self.trading_mode == "paper" else "U"


@check(0)
def settings_match(installed: Installed, operator: dict[str, str] | None) -> Passed:
    """Every non-secret key of the operator's file has the same value on the host."""
    if operator is None:
        raise Skipped("no credentials file given; expectations come from the host itself")
    differ = sorted(k for k in set(operator) | set(installed.env)
                    if operator.get(k, "") != installed.env.get(k, ""))
    require(not differ, f"the host's settings differ from the file in {differ}; run invoke install")
    return Passed.of(f"{len(operator)} settings as in the file")
