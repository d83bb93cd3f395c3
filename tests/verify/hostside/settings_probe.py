"""Runs ON the gateway host: print its installed settings as JSON, secrets left out.

The verify suite takes its expectations from what the install wrote, without ever moving
the password or the webhook token off the host: only the names of the secret keys that
are set come back.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, "/usr/local/lib/ibkr-ops/ibkr_ops.zip")

from ibkr_ops.host.envfile import read_env_file

SECRET_KEYS = ("IBKR_PASSWORD", "DISCORD_WEBHOOK_URL")

# private=False: a wrongly readable file is item 11's finding, not a reason to check nothing.
env = read_env_file(Path("/etc/ibkr/credentials.env"), private=False)
print(json.dumps({
    "ops": json.loads(Path("/etc/ibkr/ops.json").read_text()),
    "env": {key: value for key, value in env.items() if key not in SECRET_KEYS},
    "secrets_set": sorted(key for key in SECRET_KEYS if env.get(key)),
}))
