"""The one exception family: tasks turn it into a single line and a non-zero exit.

Standard library only, because host-side modules raise it too.
"""


class OpsError(Exception):
    """An expected failure with a message fit for a user: what is wrong and how to fix it."""

    exit_code = 1


class UsageError(OpsError):
    """Bad input (options, credentials file, settings): nothing was touched."""

    exit_code = 2
