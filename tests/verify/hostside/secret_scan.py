"""Runs ON the gateway host as root: where does the IBKR password show up? Prints JSON.

The password is read here from credentials.env, so it never travels in a command line,
an environment variable or the SSH session; only the places it was found come back.
Searched: every process's arguments and environment, the whole journal (all fields, so a
leaked command line in _CMDLINE counts too) and every file under /var/log/ibkr.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, "/usr/local/lib/ibkr-ops/ibkr_ops.zip")

from ibkr_ops.host.envfile import read_env_file

password = read_env_file(Path("/etc/ibkr/credentials.env"), private=False).get("IBKR_PASSWORD", "")
needles = [password.encode()] if password else []
# The journal's JSON escapes some characters; look for that spelling as well.
escaped = json.dumps(password)[1:-1].encode()
if password and escaped not in needles:
    needles.append(escaped)


def found(data: bytes) -> bool:
    return any(needle in data for needle in needles)


found_in: dict[str, list[str]] = {"cmdline": [], "environ": [], "journal": [], "logs": []}
scanned = {"processes": 0, "journal_entries": 0, "log_files": 0}
me = os.getpid()
for proc in Path("/proc").iterdir():
    if not proc.name.isdigit() or int(proc.name) == me:
        continue
    scanned["processes"] += 1
    for part in ("cmdline", "environ"):
        try:
            data = (proc / part).read_bytes()
        except OSError:  # gone, or a kernel thread
            continue
        if found(data):
            comm = (proc / "comm").read_text(errors="replace").strip() if (proc / "comm").exists() else "?"
            found_in[part].append(f"pid {proc.name} ({comm})")

journal = subprocess.Popen(["journalctl", "--no-pager", "-o", "json", "--all"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
assert journal.stdout is not None
for line in journal.stdout:
    scanned["journal_entries"] += 1
    if found(line):
        try:
            entry = json.loads(line)
            where = f"{entry.get('SYSLOG_IDENTIFIER', entry.get('_COMM', '?'))} at " \
                    f"{entry.get('__REALTIME_TIMESTAMP', '?')}"
        except ValueError:
            where = f"entry {scanned['journal_entries']}"
        found_in["journal"].append(where)
journal.wait()

for path in sorted(Path("/var/log/ibkr").rglob("*")):
    if path.is_file() and not path.is_symlink():
        scanned["log_files"] += 1
        try:
            if found(path.read_bytes()):
                found_in["logs"].append(str(path))
        except OSError as exc:
            found_in["logs"].append(f"{path} (unreadable: {exc.strerror})")

print(json.dumps({"password_set": bool(password), "found": found_in, "scanned": scanned,
                  "journal_status": journal.returncode}))
