"""Runs ON the gateway host as root: where does the IBKR password show up? Prints JSON.

The password is read here from credentials.env, so it never travels in a command line,
an environment variable or the SSH session; only the places it was found come back.
Searched: every process's arguments and environment, the whole journal (all fields, so a
leaked command line in _CMDLINE counts too) and every file under the log directory.
"""

import json
import os
import subprocess
import sys
from pathlib import Path


def needles(password: str) -> list[bytes]:
    """The password as bytes, and as the journal's JSON spells it when it escapes characters."""
    if not password:
        return []
    found = [password.encode()]
    escaped = json.dumps(password)[1:-1].encode()
    return found if escaped in found else [*found, escaped]


def scan_processes(wanted: list[bytes], found_in: dict[str, list[str]]) -> int:
    """Every process's arguments and environment but this one's; the number scanned."""
    scanned = 0
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        scanned += 1
        for part in ("cmdline", "environ"):
            try:
                data = (proc / part).read_bytes()
            except OSError:  # gone, or a kernel thread
                continue
            if any(needle in data for needle in wanted):
                comm = proc / "comm"
                name = comm.read_text(errors="replace").strip() if comm.exists() else "?"
                found_in[part].append(f"pid {proc.name} ({name})")
    return scanned


def scan_journal(wanted: list[bytes], found_in: dict[str, list[str]]) -> tuple[int, int]:
    """Every journal entry, all fields; (entries scanned, journalctl's exit status)."""
    journal = subprocess.Popen(["journalctl", "--no-pager", "-o", "json", "--all"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert journal.stdout is not None  # noqa: S101 - stdout=PIPE
    entries = 0
    for line in journal.stdout:
        entries += 1
        if any(needle in line for needle in wanted):
            try:
                entry = json.loads(line)
                where = (f"{entry.get('SYSLOG_IDENTIFIER', entry.get('_COMM', '?'))} at "
                         f"{entry.get('__REALTIME_TIMESTAMP', '?')}")
            except ValueError:
                where = f"entry {entries}"
            found_in["journal"].append(where)
    return entries, journal.wait()


def scan_logs(log_dir: str, wanted: list[bytes], found_in: dict[str, list[str]]) -> int:
    """Every regular file under the log directory; the number scanned."""
    scanned = 0
    for path in sorted(Path(log_dir).rglob("*")):
        if path.is_file() and not path.is_symlink():
            scanned += 1
            try:
                if any(needle in path.read_bytes() for needle in wanted):
                    found_in["logs"].append(str(path))
            except OSError as exc:
                found_in["logs"].append(f"{path} (unreadable: {exc.strerror})")
    return scanned


def main() -> None:
    sys.path.insert(0, sys.argv[1])  # the host tools zip, named by the caller
    from ibkr_ops.host.config import HostConfig  # noqa: PLC0415 - from the zip
    from ibkr_ops.host.envfile import read_env_file  # noqa: PLC0415

    # An instance's settings file follows the zip; the default host's paths are the defaults.
    config = HostConfig.load(sys.argv[2]) if len(sys.argv) > 2 else HostConfig()
    env = read_env_file(Path(config.credentials_file), private=False)
    password = env.get("IBKR_PASSWORD", "")
    wanted = needles(password)
    found_in: dict[str, list[str]] = {"cmdline": [], "environ": [], "journal": [], "logs": []}
    processes = scan_processes(wanted, found_in)
    entries, status = scan_journal(wanted, found_in)
    log_files = scan_logs(config.log_dir, wanted, found_in)
    print(json.dumps({"password_set": bool(password), "found": found_in,
                      "scanned": {"processes": processes, "journal_entries": entries,
                                  "log_files": log_files},
                      "journal_status": status}))


if __name__ == "__main__":
    main()
