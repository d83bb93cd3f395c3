"""`invoke uninstall` on a guest of its own: the host afterwards is file for file the fresh one.

One guest walks the whole life in order (each stage a module fixture built on the one
before, so any test alone still gets its stage): fresh → installed (the real install path,
a bot drop-in, and a live instance's files beside the single paper Gateway) → dry run →
`--keep-settings` → installed again → plain uninstall → `--purge`. Two Gateway logins in all.

The fresh host lacks one package the install needs (netcat-openbsd, repacked into a local
apt source: guests reach no mirror), so the install really adds a package and the purge
really removes it.

What the file lists leave out, and why:
- other filesystems (``-xdev``): /proc, /sys, /dev, /run and /tmp are the kernel's and the
  boot's, rebuilt by every reboot;
- /var/log/journal: journald's history of everything that ran, which stays on purpose (an
  operator may need it after an uninstall; the product's own logs, /var/log/ibkr, are listed);
- /var/cache: caches any program may rebuild or drop at any time (FHS); man-db's trigger tags
  its caches after any package change;
- /etc/passwd- and its siblings: the backups shadow-utils writes on every account change;
  the account files themselves are compared by content.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterator

import migrate_support as ms
import pytest
from invoke.context import Context
from invoke.exceptions import Exit
from sim_support import real_ibc_zip
from test_upgrades import REBUILD

from ibkr_ops import demo, sandbox
from ibkr_ops.layout import DEFAULT, UNIT_DIR, UNITS, Layout
from ibkr_ops.remote import files, systemctl
from ibkr_ops.remote.install import HostReport, install_host
from ibkr_ops.render import render
from ibkr_ops.sandbox.paths import Layout as SandboxLayout
from ibkr_ops.settings import Deployment
from ibkr_ops.tasks.uninstall import uninstall as uninstall_task

GUEST = "own-uninstall"
PACKAGE = "netcat-openbsd"
REPO = "/srv/uninstall-test-repo"
SOURCE = "/etc/apt/sources.list.d/uninstall-test.list"
BOT = "uninstall-bot.service"
LIVE = Layout("live")
HOME = DEFAULT.home("trader")
ACCOUNT_FILES = ("passwd", "group", "shadow", "gshadow", "subuid", "subgid")
ACCOUNTS = " ".join(f"/etc/{name}" for name in ACCOUNT_FILES)
LISTING = ("find / -xdev \\( -path /var/log/journal -o -path /var/cache \\) -prune -o -print "
           f"| grep -vxE '/etc/({'|'.join(ACCOUNT_FILES)})-' | sort")
#: A local apt source holding the package the fresh host lacks (its own build, version
#: +test1, so apt takes it over the mirror's, which no guest reaches).
LOCAL_SOURCE = f"""set -e
deb=$(sh -c {shlex.quote(REBUILD)} rebuild {PACKAGE})
dpkg --purge {PACKAGE} >/dev/null
mkdir -p {REPO} && mv "$deb" {REPO}/{PACKAGE}.deb && rm -rf "$(dirname "$deb")"
cd {REPO}
{{ dpkg-deb -f {PACKAGE}.deb; echo "Filename: ./{PACKAGE}.deb"
  echo "Size: $(stat -c %s {PACKAGE}.deb)"
  echo "SHA256: $(sha256sum {PACKAGE}.deb | cut -d' ' -f1)"; echo; }} > Packages
echo 'deb [trusted=yes] file:{REPO} ./' > {SOURCE}
apt-get update -q -o Dir::Etc::SourceList={SOURCE} -o Dir::Etc::SourceParts=- \
  -o APT::Get::List-Cleanup=0 >/dev/null
"""
BOT_UNIT = "[Unit]\nDescription=the user's own bot (uninstall test)\n\n[Service]\nExecStart=/bin/true\n"


def run(command: str) -> str:
    return ms.run(GUEST, command)


def listing() -> list[str]:
    return run(LISTING).splitlines()


def ours_known() -> str:
    """Every unit of the product systemd knows, loaded or as a file ('' when none)."""
    patterns = " ".join(shlex.quote(f"{u.split('.')[0]}*") for u in (*UNITS, demo.DISCORD_UNIT))
    return run(f"systemctl list-units --all --plain --no-legend {patterns}; "
               f"systemctl list-unit-files --no-legend {patterns} | grep -v '^$'").strip()


def install(d: Deployment) -> HostReport:
    options = dataclasses.replace(ms.options(), bot_units=(BOT,))
    report = install_host(GUEST, d, options, ms.say)
    assert report.error is None, report.error
    return report


def uninstall(capsys: pytest.CaptureFixture[str] | None = None, **options: bool) -> str:
    """The task as a user runs it (the live instance confirmed, unless told otherwise)."""
    uninstall_task(Context(), host=GUEST, **{"yes_live": True, **options})
    return capsys.readouterr().out if capsys else ""


@dataclasses.dataclass
class Stage:
    """What a stage left, for the next one and its tests."""

    fresh: list[str]
    accounts: str
    deployment: Deployment
    listing: list[str] = dataclasses.field(default_factory=list)
    kept: dict[str, str] = dataclasses.field(default_factory=dict)
    report: HostReport | None = None


@pytest.fixture(scope="module")
def fresh(sandbox_layout: SandboxLayout) -> Iterator[Stage]:
    """A guest of its own with a local apt source for the package it lacks and a user's bot
    unit, listed before anything of the product is there."""
    real_ibc_zip()
    sandbox.up([GUEST])
    try:
        run(LOCAL_SOURCE + f"printf %s {shlex.quote(BOT_UNIT)} > {UNIT_DIR}/{BOT}")
        assert run(f"dpkg-query -W -f='${{Status}}' {PACKAGE} 2>&1").strip() != (
            "install ok installed")
        yield Stage(fresh=listing(), accounts=run(f"cat {ACCOUNTS}"),
                    deployment=ms.deployment())
    finally:
        sandbox.down(GUEST)


@pytest.fixture(scope="module")
def installed(fresh: Stage) -> Stage:
    """Installed through the real path, plus a live instance's files (rendered for
    ``Layout("live")``, enabled, not started) beside the single paper Gateway."""
    report = install(fresh.deployment)
    assert (f"packages ({PACKAGE})", "changed") in report.items
    live = render(ms.deployment("live", username="un_live"), LIVE)
    with ms.root(GUEST) as host:
        for f in live:
            host.run_step(files.put(f))
        host.root(f"{files.make_dirs(LIVE.user_dirs(HOME), 0o750, 'trader')} && "
                  f"{systemctl.daemon_reload()} && {systemctl.enable(LIVE.enabled_units)}")
    fresh.listing = listing()
    return fresh


def test_dry_run_lists_what_goes_and_changes_nothing(installed: Stage,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pid = run(f"systemctl show -p MainPID --value {DEFAULT.gateway_unit}")
    out = uninstall(capsys, dry_run=True, purge=True)
    assert listing() == installed.listing
    assert run(f"systemctl show -p MainPID --value {DEFAULT.gateway_unit}") == pid
    for expected in (f"would stop and disable {DEFAULT.gateway_unit} (active)",
                     f"would stop and disable {LIVE.gateway_unit} (inactive)",
                     f"would remove {DEFAULT.ibc_dir}", f"would remove {DEFAULT.config_dir}",
                     f"would remove {LIVE.settings_dir(HOME)}",
                     f"would remove {DEFAULT.dropin_path(BOT)}",
                     f"would remove {demo.DISCORD_ZIPAPP.rsplit('/', 1)[0]}",
                     "would remove trader and its home", f"would purge {PACKAGE}",
                     "LIVE: instance live trades live",
                     "dry run: nothing changed"):
        assert expected in out, out
    assert f"{UNIT_DIR}/{BOT}\n" not in out
    for secret in (installed.deployment.password.reveal(), "api/webhooks"):
        assert secret not in out


def settings() -> dict[str, str]:
    """Each file under the settings directories and the Gateway's, with its sha256; but the
    stand-in's record of its logins, which the stopping Gateway appends its logout to."""
    out = run(f"find {DEFAULT.config_dir} {DEFAULT.settings_dir(HOME)} {LIVE.settings_dir(HOME)} "
              "-type f -print0 | xargs -0 sha256sum")
    sums = (line.split("  ", 1) for line in out.splitlines())
    return {path: digest for digest, path in sums if path != ms.LOGINS}


def test_a_live_gateway_stays_unless_confirmed(installed: Stage) -> None:
    with pytest.raises(Exit) as info:
        uninstall(yes_live=False)
    assert info.value.code == 2
    assert "runs a LIVE Gateway (instance live)" in str(info.value.message)
    assert "give --yes-live" in str(info.value.message)
    assert listing() == installed.listing


@pytest.fixture(scope="module")
def kept(installed: Stage) -> Stage:
    installed.kept = settings()
    uninstall(keep_settings=True)
    return installed


def test_keep_settings_keeps_the_settings_and_nothing_else(kept: Stage) -> None:
    now = settings()
    builds, links = Layout.builds_dir(HOME), Layout.gateway_builds(HOME)
    assert now == {p: s for p, s in kept.kept.items()
                   if not p.startswith((f"{builds}/", f"{links}/"))}
    assert {DEFAULT.credentials, DEFAULT.config_ini, f"{DEFAULT.settings_dir(HOME)}/jts.ini",
            LIVE.credentials} <= set(now)
    assert ours_known() == ""
    gone = [p for p in (builds, links, DEFAULT.ibc_dir, DEFAULT.log_dir, DEFAULT.tools_zip,
                        DEFAULT.dropin_path(BOT), DEFAULT.unit_path(LIVE.gateway_unit))
            if p in listing()]
    assert gone == []
    assert f"{UNIT_DIR}/{BOT}" in listing()  # the user's own unit is theirs


@pytest.fixture(scope="module")
def reinstalled(kept: Stage) -> Stage:
    kept.report = install(kept.deployment)
    return kept


def test_an_install_after_keep_settings_picks_up_the_kept_settings(reinstalled: Stage) -> None:
    assert reinstalled.report is not None
    items = dict(reinstalled.report.items)
    assert reinstalled.report.health.startswith("healthy")
    assert items[DEFAULT.config_ini] == items[DEFAULT.credentials] == "unchanged"
    assert items["service user"] == "unchanged" and items["IBC"] == "changed"
    jts = f"{DEFAULT.settings_dir(HOME)}/jts.ini"
    assert settings()[jts] == reinstalled.kept[jts]


@pytest.fixture(scope="module")
def uninstalled(reinstalled: Stage) -> Stage:
    uninstall()
    return reinstalled


def test_uninstall_leaves_only_the_user_and_package_it_added_and_their_record(
        uninstalled: Stage) -> None:
    # The package's files as dpkg lists them and as /bin -> /usr/bin resolves them, and
    # dpkg's own record of it.
    package = set(run(f"dpkg-query -L {PACKAGE}; dpkg-query -L {PACKAGE} | xargs -d '\\n' "
                      f"readlink -f; ls -d /var/lib/dpkg/info/{PACKAGE}.*").splitlines())
    extra = sorted(set(listing()) - set(uninstalled.fresh) - package)
    record = Layout.added_record()
    assert [p for p in extra if not p.startswith(f"{HOME}/") and p != HOME] == [
        DEFAULT.state_dir, record]
    assert not any(p.startswith(f"{HOME}/Jts") for p in extra)
    assert run(f"cat {record}").splitlines() == [f"package {PACKAGE}", "user trader"]
    assert run("id -u trader").strip().isdigit()
    assert ours_known() == ""


@pytest.fixture(scope="module")
def purged(uninstalled: Stage) -> Stage:
    uninstall(purge=True)
    return uninstalled


def test_purge_leaves_the_host_as_the_install_found_it(purged: Stage) -> None:
    assert listing() == purged.fresh
    assert run(f"cat {ACCOUNTS}") == purged.accounts
    assert ours_known() == ""
    assert run(f"dpkg-query -W -f='${{Status}}' {PACKAGE} 2>&1").strip() != "install ok installed"


def test_a_host_without_the_product_says_so(purged: Stage,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert "nothing of ibkr-ops is on this host" in uninstall(capsys, purge=True)
    assert listing() == purged.fresh

