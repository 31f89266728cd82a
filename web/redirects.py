"""Where a `next` value may send the browser: only to a path on this site. The one guard for every return
address a request brings (sign-in, the language switch, claim/release, marking notifications read).

A browser reading a Location header first drops leading and trailing spaces and control characters and every
tab, CR and LF anywhere, and reads a backslash as a slash. So `/\\t/evil.example/` becomes
`//evil.example/`, another site, and `/\\evil.example` too. The value is normalised the same way first, then
accepted only when it is a path: it starts with one `/`, has no scheme and no host. What is returned is the
normalised value, so the Location header holds exactly what was checked (and never a CR or LF).
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_NEXT_LENGTH = 2048
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_REMOVED = str.maketrans("", "", "\t\n\r")


def normalise_like_a_browser(target: str) -> str:
    return target.strip(_C0_AND_SPACE).translate(_REMOVED).replace("\\", "/")


def safe_next(target: str | None, default: str) -> str:
    """`target` if it leads to a path on this site, else `default`."""
    if not isinstance(target, str) or not target or len(target) > MAX_NEXT_LENGTH:
        return default
    path = normalise_like_a_browser(target)
    if not path.startswith("/") or path.startswith("//"):
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return default  # other control characters have no business in a return address
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return default
    return path
