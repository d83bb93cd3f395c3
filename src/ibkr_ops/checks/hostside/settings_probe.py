"""Runs ON the gateway host: print its installed settings as JSON, secrets left out.

The go-live checks take their expectations from what the install wrote, without ever moving
the password or the webhook token off the host: only the names of the secret keys that are
set come back.
"""

import json
import sys
from pathlib import Path


def main() -> None:
    sys.path.insert(0, sys.argv[1])  # the host tools zip, named by the caller
    from ibkr_ops.host.config import HostConfig  # noqa: PLC0415 - from the zip
    from ibkr_ops.host.envfile import read_env_file  # noqa: PLC0415
    from ibkr_ops.host.schema import SECRET_KEYS  # noqa: PLC0415

    # An instance's settings file follows the zip; the default host's is the tools' default.
    config = HostConfig.load(*sys.argv[2:3])
    # private=False: a wrongly readable file is item 11's finding, not a reason to check nothing.
    env = read_env_file(Path(config.credentials_file), private=False)
    print(json.dumps({
        # As the host tools read it (checked, defaults filled in), not a parse of its own.
        "ops": json.loads(config.to_json()),
        "env": {key: value for key, value in env.items() if key not in SECRET_KEYS},
        "secrets_set": sorted(key for key in SECRET_KEYS if env.get(key)),
    }))


if __name__ == "__main__":
    main()
