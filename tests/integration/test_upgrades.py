"""Package upgrades never restart the display or the Gateway behind the user's back.

On a guest installed through the real install path, apt upgrades a library that Xvfb and the
Gateway both map, with needrestart (run by apt's hook, as under unattended-upgrades) in its
automatic mode. Guests have no internet, so the upgrade is the installed package rebuilt on the
guest with a higher version. A second display outside the override is the control: it must be
restarted by the same upgrade, or the test proves nothing.

needrestart sees an nspawn guest as a container, which only turns off its kernel and microcode
hints; it handles services as on a server, so the test sets nothing to make it act.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import migrate_support as ms

from ibkr_ops import sandbox
from ibkr_ops.remote import files
from ibkr_ops.render import ManagedFile
from ibkr_ops.sim import logins

#: Mapped by Xvfb (Mesa's software GLX, loaded at start, reads its settings with it) and by the
#: simulated Gateway (Python's XML parser); an expat security update is an ordinary event.
LIBRARY = "libexpat1"
DISPLAY_UNIT, GATEWAY_UNIT = "xvfb.service", "ibkr-gateway.service"
PROBE_UNIT = "upgrade-probe.service"
PROBE = """\
[Unit]
Description=A second virtual display, outside the needrestart override (upgrade test control)

[Service]
Type=exec
ExecStart=/usr/bin/Xvfb :42 -screen 0 1280x1024x24 -nolisten tcp
"""

#: The installed package's files and control data, Version suffixed "+test1", as a .deb.
#: Maintainer scripts are left out: a library's upgrade needs only its files and triggers.
REBUILD = r"""set -eu
pkg=$1
work=$(mktemp -d /root/upgrade.XXXXXX)
mkdir -p "$work/tree/DEBIAN"
dpkg-query -L "$pkg" | while read -r path; do
  if [ ! -d "$path" ]; then printf '%s\n' "${path#/}"; fi
done | tar -C / --no-recursion -T - -cf - | tar -C "$work/tree" -xf -
dpkg-query -s "$pkg" | awk '/^[^ ]/ { keep = $1 != "Status:" && $1 != "Conffiles:" }
  keep && $1 == "Version:" { $0 = $0 "+test1" } keep' > "$work/tree/DEBIAN/control"
arch=$(dpkg-query -W -f='${Architecture}' "$pkg")
for part in shlibs symbols triggers; do
  for f in "/var/lib/dpkg/info/$pkg:$arch.$part" "/var/lib/dpkg/info/$pkg.$part"; do
    if [ -e "$f" ]; then cp "$f" "$work/tree/DEBIAN/$part"; fi
  done
done
dpkg-deb --root-owner-group --build "$work/tree" "$work/$pkg.deb" >/dev/null
echo "$work/$pkg.deb"
"""

#: What unattended-upgrades' apt run amounts to, in needrestart's most aggressive mode: no
#: terminal, no questions, every outdated service restarted unless the configuration says no.
UPGRADE_ENV = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a"


def main_pids(name: str) -> dict[str, int]:
    units = (DISPLAY_UNIT, GATEWAY_UNIT, PROBE_UNIT)
    out = ms.run(name, "systemctl show -p MainPID --value " + " ".join(units)).split()
    return dict(zip(units, map(int, out), strict=True))


def unit_maps(name: str, unit: str) -> str:
    """The memory maps of every process in ``unit``."""
    return ms.run(name, f"for f in $(grep -l '^0::/system.slice/{unit}$' /proc/[0-9]*/cgroup); "
                        'do cat "${f%/cgroup}/maps"; done 2>/dev/null')


def outdated_services(name: str) -> set[str]:
    """What needrestart's batch mode lists as running outdated code (override or not)."""
    out = ms.run(name, "needrestart -b")
    return {line.split(": ", 1)[1] for line in out.splitlines()
            if line.startswith("NEEDRESTART-SVC: ")}


def login_events(name: str, into: Path) -> list[dict[str, object]]:
    into.mkdir()
    return logins.read(ms.fetch_logins([name], into))


def test_library_upgrade_restarts_neither_display_nor_gateway(
        own_guest: sandbox.Guest, tmp_path: Path) -> None:
    name = own_guest.name
    ms.install(name, ms.deployment())
    libs = {"/" + Path(p).name for p in ms.run(name, f"dpkg-query -L {LIBRARY}").split()
            if ".so." in p}
    mapped = " ".join(f"-e {shlex.quote(lib)}" for lib in sorted(libs))
    with ms.root(name) as host:
        host.run_step(files.put(ManagedFile(f"/etc/systemd/system/{PROBE_UNIT}", PROBE.encode(),
                                            0o644)))
        host.root(f"systemctl daemon-reload && systemctl start {PROBE_UNIT} && for i in "
                  f"$(seq 100); do grep -qF {mapped} /proc/$(systemctl show -p MainPID --value "
                  f"{PROBE_UNIT})/maps && exit 0; sleep 0.1; done; exit 1",
                  what=f"starting the control display and waiting until it maps {LIBRARY}")
    for unit in (DISPLAY_UNIT, GATEWAY_UNIT):
        maps = unit_maps(name, unit)
        assert any(lib in maps for lib in libs), f"{unit} maps none of {sorted(libs)}"
    assert not {DISPLAY_UNIT, GATEWAY_UNIT, PROBE_UNIT} & outdated_services(name)
    before = main_pids(name)
    logins_before = login_events(name, tmp_path / "before")
    assert any(e["event"] == "login" for e in logins_before)

    with ms.root(name) as host:
        deb = Path(host.root(f"sh -c {shlex.quote(REBUILD)} rebuild {LIBRARY}",
                             what=f"rebuilding {LIBRARY} with a higher version").stdout.strip())
        upgrade = host.root(f"cd {shlex.quote(str(deb.parent))} && {UPGRADE_ENV} "
                            f"apt-get install -y ./{shlex.quote(deb.name)} 2>&1", warn=True)
    apt_output = str(upgrade.stdout)
    assert upgrade.ok, apt_output
    version = ms.run(name, f"dpkg-query -W -f='${{Version}}' {LIBRARY}")
    assert version.endswith("+test1"), apt_output

    # The upgrade was real: needrestart restarted the control display...
    after = main_pids(name)
    assert after[PROBE_UNIT] not in (0, before[PROBE_UNIT]), apt_output
    # ...but neither the display nor the Gateway, which still run the old library (deferred).
    assert after[DISPLAY_UNIT] == before[DISPLAY_UNIT], apt_output
    assert after[GATEWAY_UNIT] == before[GATEWAY_UNIT], apt_output
    assert {DISPLAY_UNIT, GATEWAY_UNIT} <= outdated_services(name), apt_output
    assert login_events(name, tmp_path / "after") == logins_before
    health = ms.health(name)
    assert health["healthy"] is True, health
