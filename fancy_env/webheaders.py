"""Response headers every page and API answer of the service carries (no I/O).

The service sits behind the hub's proxy, on the hub's origin, so `'self'` lets the hub frame
it and keeps every other origin out: a page elsewhere cannot frame "Launch" or "Create link"
and trick a logged-in user into pressing it (clickjacking). JupyterHub sends the same
`frame-ancestors 'self'` for its own pages.
"""

from __future__ import annotations

from typing import Protocol

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class _SetsHeaders(Protocol):
    def set_header(self, name: str, value: str) -> None: ...


def set_security_headers(handler: _SetsHeaders) -> None:
    for name, value in SECURITY_HEADERS.items():
        handler.set_header(name, value)
