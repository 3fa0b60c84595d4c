"""The addresses a laptop can open the console at: ``http://0.0.0.0:8088/`` names no machine.

Bound to every address (``0.0.0.0``, or ``::`` which also takes IPv4 on Linux), the console is
listed under the machine's name, its ``.local`` name (mDNS: what a Pi answers to out of the box)
and the address of each interface that is up, the default route's first. Bound to one address,
that address. Standard library only; Linux gives every interface, elsewhere the default route's.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
import sys

ANY = ("0.0.0.0", "::", "")
MAX_ADDRESSES = 4            # interface addresses listed: a start-up message, not an inventory
SIOCGIFADDR = 0x8915         # Linux ioctl: an interface's IPv4 address
IF_INET6 = "/proc/net/if_inet6"
# IFA_F_TEMPORARY (privacy address, changes by the hour), DADFAILED, DEPRECATED, TENTATIVE
_SKIP_IPV6_FLAGS = 0x01 | 0x08 | 0x20 | 0x40


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def _default_route_address(family: int, probe: str) -> str | None:
    # Connecting a UDP socket sends nothing: it only asks the kernel which source address it would use.
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            return sock.getsockname()[0]
    except OSError:
        return None


def _linux_ipv4() -> list[str]:
    found = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:      # no IPv4 address on this interface
                continue
            found.append(socket.inet_ntoa(raw[20:24]))
    return found


def _linux_ipv6(path: str = IF_INET6) -> list[str]:
    found = []
    with contextlib.suppress(OSError), open(path, encoding="ascii") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 6:
                continue
            try:
                flags = int(fields[4], 16)
                ip = ipaddress.IPv6Address(int(fields[0], 16))
            except ValueError:
                continue
            if not flags & _SKIP_IPV6_FLAGS:
                found.append(str(ip))
    return found


def interface_addresses() -> list[str]:
    """This machine's addresses another machine may reach, the default route's first of each family."""
    found = [_default_route_address(socket.AF_INET, "192.0.2.1")]          # TEST-NET: never contacted
    if sys.platform.startswith("linux"):
        found += _linux_ipv4()
    found.append(_default_route_address(socket.AF_INET6, "2001:db8::1"))   # documentation prefix
    if sys.platform.startswith("linux"):
        found += _linux_ipv6()
    return [a for a in found if a]


def reachable_hosts(bind: str, *, ipv4: bool = True, hostname=socket.gethostname,
                    addresses=interface_addresses) -> list[str]:
    """The host parts (IPv6 in brackets) a console bound to ``bind`` can be opened at; ``ipv4`` False
    for a ``::`` socket that takes IPv6 only (IPV6_V6ONLY)."""
    if bind not in ANY:
        return [f"[{bind}]" if ":" in bind else bind]
    machine = (hostname() or "").lower().rstrip(".")
    short = machine.split(".")[0]
    names = [] if short in ("", "localhost") else [short + ".local", machine]
    ips = [a for a in dict.fromkeys(addresses()) if _usable(a) and ((bind == "::") if ":" in a else ipv4)]
    ips = ips[:MAX_ADDRESSES]
    hosts = list(dict.fromkeys(names + [f"[{a}]" if ":" in a else a for a in ips]))
    # No network at all: this machine is the one place it answers.
    return hosts or ["127.0.0.1" if ipv4 else "[::1]"]


def console_urls(bind: str, port: int, token: str | None, **seams) -> list[str]:
    query = f"?token={token}" if token else ""
    return [f"http://{host}:{port}/{query}" for host in reachable_hosts(bind, **seams)]
