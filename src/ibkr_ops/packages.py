"""The distribution packages a gateway host needs, under the names its release uses.

Ubuntu 24.04 and Debian 13 renamed the libraries whose ABI carries `time_t` (the 64-bit
time_t transition: `libasound2` became `libasound2t64`). apt would accept the old name as a
virtual package, but dpkg-query reports a virtual name as not installed, so the installer
would call apt on every run: each release gets its real names instead. Checked against the
per-release lists of Playwright's `install-deps` (debian12, ubuntu24.04).
"""

from __future__ import annotations

from typing import Final

#: The display, IBC's scripts, downloads and the host tools.
BASE: Final = ("xvfb", "xterm", "unzip", "curl", "netcat-openbsd", "python3", "procps",
               "tzdata")
#: `invoke screenshot` (xwd from x11-apps, xwininfo from x11-utils) and `invoke vnc` (x11vnc,
#: in Ubuntu's universe component).
SCREEN: Final = ("x11-apps", "x11-utils", "x11vnc")
#: What the Gateway's embedded browser (JxBrowser's Chromium, which renders the passkey
#: ceremony) loads, under their Debian 12 names.
BROWSER: Final = (
    "libasound2", "libatk-bridge2.0-0", "libatk1.0-0", "libatspi2.0-0", "libcairo2",
    "libcups2", "libdbus-1-3", "libdrm2", "libgbm1", "libglib2.0-0", "libgtk-3-0", "libnspr4",
    "libnss3", "libpango-1.0-0", "libx11-6", "libx11-xcb1", "libxcb1", "libxcomposite1",
    "libxdamage1", "libxext6", "libxfixes3", "libxkbcommon0", "libxrandr2",
)
#: The ones renamed with a t64 suffix in Ubuntu 24.04 and Debian 13.
RENAMED_T64: Final = frozenset({
    "libasound2", "libatk-bridge2.0-0", "libatk1.0-0", "libatspi2.0-0", "libcups2",
    "libglib2.0-0", "libgtk-3-0",
})
#: The first release of each distribution with the t64 names.
_T64_SINCE: Final = {"ubuntu": 24, "debian": 13}


def uses_t64(os_id: str, version: str) -> bool:
    """Whether this release names the renamed libraries with the t64 suffix."""
    major = version.split(".", maxsplit=1)[0]
    since = _T64_SINCE.get(os_id)
    return since is not None and major.isdigit() and int(major) >= since


def required_packages(os_id: str, version: str) -> tuple[str, ...]:
    """Every package the host needs, named as its release (`/etc/os-release` ID and
    VERSION_ID) names them; an unknown release gets the Debian 12 names."""
    t64 = uses_t64(os_id, version)
    browser = tuple(f"{name}t64" if t64 and name in RENAMED_T64 else name for name in BROWSER)
    return BASE + SCREEN + browser


def every_name() -> tuple[str, ...]:
    """Both spellings of every package: what the facts script asks dpkg about, before the
    host's release is known."""
    return tuple(dict.fromkeys(required_packages("debian", "12")
                               + required_packages("ubuntu", "24.04")))
