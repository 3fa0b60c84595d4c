"""Which requests may come from where: the console moves hardware, so a page on another site (open
in a browser on the device or on a laptop) or a DNS-rebinding name must not reach it.

Checked on every request: the Host is a name of this console (a rebinding page uses its own name)
and an Origin, when sent, equals the Host. On the API and the stream also: ``Sec-Fetch-Site`` is
``same-origin`` (the console's page) or ``none`` (a typed or bookmarked URL). A POST must
also be ``application/json`` (the server checks that): forms and no-cors fetches cannot send it.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
OWN_SITE = ("same-origin", "none")
HOST_HEADER = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::\d{1,5})?")


def allowed_names(bind: str) -> frozenset[str]:
    """The names a browser may use for a console bound to ``bind`` (the port is not checked: an ssh
    tunnel keeps the name and changes the port)."""
    names = {*LOOPBACK_NAMES, bind.lower()}
    if bind not in LOOPBACK_NAMES:
        machine = socket.gethostname().lower()
        short = machine.split(".")[0]
        names |= {machine, short, short + ".local"}
    return frozenset(names)


def host_name(header: str) -> str | None:
    """The lower-case name or address in a Host header, without port or brackets; None if malformed."""
    match = HOST_HEADER.fullmatch(header.strip())
    return (match.group(1) or match.group(2)).lower() if match else None


def refusal(headers, known, api: bool) -> tuple[int, str] | None:
    """(status, one-line reason) when the request may not come from where it comes from, else None.
    ``known(name)`` says whether a Host name is this console's."""
    hosts = headers.get_all("Host") or []
    if len(hosts) != 1:
        return 400, "a request needs exactly one Host header"
    host = hosts[0].strip()
    name = host_name(host)
    if name is None or not known(name):
        return 403, f"Host {host[:80]!r} is not a name of this console: refused (a DNS-rebinding page uses its own)"
    origin = headers.get("Origin")
    if origin is not None:
        try:
            parts = urlsplit(origin.strip())
            same = parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()
        except ValueError:
            same = False
        if not same:
            return 403, f"cross-origin request from {origin[:80]!r} refused"
    site = headers.get("Sec-Fetch-Site")
    if api and site is not None and site.strip().lower() not in OWN_SITE:
        return 403, f"request from another site refused (Sec-Fetch-Site: {site[:40]})"
    return None
