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
from ibkr_ops.host import schema
from ibkr_ops.host.schema import SECRET_KEYS
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import gateways
from ibkr_ops.settings import Deployment


@dataclass(frozen=True)
class Installed:
    """A host's installed settings, secrets left out (only which secret keys are set)."""

    env: dict[str, str]
    ops: dict[str, Any]
    secrets_set: tuple[str, ...]


def read_installed(runner: Runner, layout: Layout = DEFAULT) -> Installed:
    """Run the settings probe on the host for one Gateway (the layout's); an OpsError says
    why it could not."""
    if not runner.run(f"test -r {layout.credentials}").ok:
        raise OpsError(f"cannot read {layout.credentials} on the host: connect as root "
                       "or with passwordless sudo; is the stack installed?")
    probe = run_hostside(runner, "settings_probe.py", layout=layout)
    return Installed(dict(probe["env"]), dict(probe["ops"]), tuple(probe["secrets_set"]))


def installed_layouts(runner: Runner) -> list[Layout]:
    """Every Gateway the host has, by the settings file each keeps (``remote.gateways``)."""
    return gateways.parse_listing(runner.run(gateways.LIST_COMMAND).stdout)


def layouts_to_check(runner: Runner, instance: str | None) -> list[Layout]:
    """The Gateways to check: the one named (which the host must have), else every one the
    host has; an OpsError when there is none."""
    found = installed_layouts(runner)
    if instance is not None:
        wanted = Layout(instance)
        if wanted not in found:
            raise OpsError(f"{runner.name} has no Gateway instance {instance!r} (it has: "
                           f"{gateways.names(found)}); see `invoke status --host {runner.name}`")
        return [wanted]
    if not found:
        raise OpsError(f"cannot find {DEFAULT.ops_json} or an instance's on {runner.name}: "
                       "is the stack installed (`invoke install`)?")
    return found


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
    def from_settings(cls, env: dict[str, str], ops: dict[str, Any], webhook: bool,
                      layout: Layout = DEFAULT) -> Expect:
        """From credentials.env keys, read by the schema's rows as `settings.Deployment` reads
        them (their defaults when unset), and ops.json."""

        def value(setting: schema.Setting[Any]) -> Any:
            raw = env.get(setting.key, "").strip()
            try:
                return setting.parse(raw) if raw else setting.default
            except schema.Invalid as exc:
                raise OpsError(f"the host's credentials.env: {setting.key} {exc}; "
                               "run invoke install") from None

        mode = value(schema.TRADING_MODE)
        return cls(
            trading_mode=mode,
            api_host=value(schema.API_HOST),
            api_port=value(schema.API_PORT) if env.get(schema.API_PORT.key)
            else schema.API_PORTS[mode],
            service_user=value(schema.SERVICE_USER),
            restart_time=value(schema.RESTART_TIME),
            timezone=value(schema.TIMEZONE),
            health_client_id=value(schema.HEALTH_CLIENT_ID),
            webhook=webhook,
            cold_restart_timeout_s=float(ops.get("cold_restart_timeout_s",
                                                 schema.BY_NAME["cold_restart_timeout_s"].default)),
            layout=layout,
        )

    @classmethod
    def of(cls, installed: Installed, operator: dict[str, str] | None = None,
           layout: Layout = DEFAULT) -> Expect:
        """The host's own settings, or the operator's keys when given, for the layout's
        Gateway."""
        env = operator if operator is not None else installed.env
        return cls.from_settings(env, installed.ops,
                                 webhook=schema.DISCORD_WEBHOOK_URL.key in installed.secrets_set,
                                 layout=layout)

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
