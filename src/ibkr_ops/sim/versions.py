"""Versions the simulated artifacts claim to be, and the API server version each Gateway speaks."""

GATEWAY_VERSION = "10.30.1"
TWS_MAJOR_VRSN = "1030"
IBC_VERSION = "3.24.1"

# The highest API server version a Gateway release speaks: the MAX_CLIENT_VER of IB's TWS API of
# the same release (10.19: MIN_SERVER_VER_BOND_ISSUERID, 10.30: MIN_SERVER_VER_RFQ_FIELDS). Only
# releases below server version 194 are listed: from there the error layout changes and from 201
# message ids become binary (protobuf), which this simulator does not speak.
SERVER_VERSIONS = {"10.19": 176, "10.30": 187}


def server_version(gateway_version: str = GATEWAY_VERSION) -> int:
    """The API server version of a Gateway release ``10.30.1`` (its major.minor decides)."""
    major_minor = ".".join(gateway_version.split(".")[:2])
    try:
        return SERVER_VERSIONS[major_minor]
    except KeyError:
        known = ", ".join(sorted(SERVER_VERSIONS))
        raise ValueError(f"no API server version known for Gateway {gateway_version} "
                         f"(known: {known})") from None
