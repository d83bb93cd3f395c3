"""Print systemd's exposure score for the rendered units (issue: aim at 3.5 or lower).

Usage: python bench/bench_units.py  (or nox -s bench -- bench_units)
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from ibkr_ops.render import UNITS, render
from ibkr_ops.settings import parse_deployment

REFERENCE = Path(__file__).resolve().parents[1] / "deploy" / "reference" / "paper.env"


def main() -> None:
    deployment = parse_deployment(REFERENCE.read_text(), source=str(REFERENCE))
    with tempfile.TemporaryDirectory() as tmp:
        for f in render(deployment):
            if f.is_unit:
                (Path(tmp) / Path(f.path).name).write_bytes(f.content)
        for unit in UNITS:
            if not unit.endswith(".service"):
                continue
            out = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                  str(Path(tmp) / unit)], capture_output=True, text=True,
                                 check=False).stdout
            match = re.search(r"Overall exposure level for \S+: ([\d.]+ \w+)", out)
            print(f"systemd-analyze security --offline=yes {unit}: "
                  f"{match[1] if match else 'no score'}")


if __name__ == "__main__":
    main()
