"""A real VNC viewer (vncdotool) for the tests: capture a frame, optionally click somewhere.

Run as its own process (vncdotool's Twisted reactor cannot be restarted inside one test
process): `python vnc_client.py 127.0.0.1:PORT OUT.png [X Y]`, the password on stdin.
Prints one JSON line: the captured frame's size.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

# vncdotool 1.4's DES call is deprecated by cryptography; not this test's concern.
warnings.simplefilter("ignore")

from vncdotool import api  # noqa: E402


def main() -> int:
    address, out, *click = sys.argv[1:]
    host, port = address.rsplit(":", 1)
    password = sys.stdin.readline().strip()
    client = api.connect(f"{host}::{port}", password=password, timeout=20)
    try:
        client.captureScreen(out)
        if click:
            x, y = (int(v) for v in click)
            client.mouseMove(x, y)
            client.mousePress(1)
            time.sleep(0.5)
        width, height = client.screen.size
    finally:
        client.disconnect()
        api.shutdown()
    print(json.dumps({"width": width, "height": height}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
