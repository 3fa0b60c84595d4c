"""The start-up line lists addresses a laptop can open, not ``http://0.0.0.0:8088/``."""

import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

import pytest

from edge.config import load_config
from edge.web import addresses
from edge.web.addresses import console_urls, interface_addresses, reachable_hosts
from edge.web.server import ConsoleServer

LAN = ["192.168.1.20", "127.0.0.1", "169.254.3.4", "10.0.0.5", "192.168.1.20", "fe80::1", "2001:db8:5::7",
       "::1", "fd00::2"]


def test_bound_to_every_ipv4_address_lists_the_names_and_the_lan_addresses():
    urls = console_urls("0.0.0.0", 8088, "tok", hostname=lambda: "Pi", addresses=lambda: LAN)
    assert urls == ["http://pi.local:8088/?token=tok", "http://pi:8088/?token=tok",
                    "http://192.168.1.20:8088/?token=tok", "http://10.0.0.5:8088/?token=tok"]


def test_bound_to_every_ipv6_address_also_lists_the_ipv6_ones_in_brackets():
    hosts = reachable_hosts("::", hostname=lambda: "cam.example.org", addresses=lambda: LAN)
    assert hosts == ["cam.local", "cam.example.org", "192.168.1.20", "10.0.0.5", "[2001:db8:5::7]", "[fd00::2]"]


def test_an_ipv6_only_socket_lists_no_ipv4_address():
    hosts = reachable_hosts("::", ipv4=False, hostname=lambda: "cam", addresses=lambda: LAN)
    assert hosts == ["cam.local", "cam", "[2001:db8:5::7]", "[fd00::2]"]


def test_a_machine_without_a_name_or_a_network_still_gets_an_address_that_answers():
    assert reachable_hosts("0.0.0.0", hostname=lambda: "localhost", addresses=lambda: ["192.168.1.20"]) == \
        ["192.168.1.20"]
    assert reachable_hosts("0.0.0.0", hostname=lambda: "", addresses=lambda: ["127.0.0.1"]) == ["127.0.0.1"]
    assert reachable_hosts("::", ipv4=False, hostname=lambda: "", addresses=lambda: []) == ["[::1]"]


def test_many_interfaces_are_a_few_lines():
    many = [f"10.0.{i}.1" for i in range(20)]
    assert len(reachable_hosts("0.0.0.0", hostname=lambda: "pi", addresses=lambda: many)) == \
        2 + addresses.MAX_ADDRESSES


@pytest.mark.parametrize("bind, host", [("192.168.1.20", "192.168.1.20"), ("127.0.0.1", "127.0.0.1"),
                                        ("2001:db8::9", "[2001:db8::9]")])
def test_bound_to_one_address_that_one_is_listed(bind, host):
    assert reachable_hosts(bind, hostname=lambda: "pi", addresses=lambda: LAN) == [host]
    assert console_urls(bind, 80, None, hostname=lambda: "pi", addresses=lambda: LAN) == [f"http://{host}:80/"]


def test_ipv6_addresses_are_read_from_the_kernel_table(tmp_path):
    table = tmp_path / "if_inet6"
    table.write_text(
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fd000000000000000000000000000002 02 40 00 80     eth0\n"
        "20010db8000000000000000000000abc 02 40 00 01     eth0\n"       # temporary (privacy) address
        "20010db8000000000000000000000def 02 40 00 40     eth0\n"       # tentative: not usable yet
        "fe8000000000000000fc00fffe000001 02 40 20 80     eth0\n"
        "not a line\n")
    assert addresses._linux_ipv6(str(table)) == ["::1", "fd00::2", "fe80::fc:ff:fe00:1"]
    assert addresses._linux_ipv6(str(tmp_path / "absent")) == []


def test_this_machines_addresses_are_real_addresses():
    for address in interface_addresses():
        ipaddress.ip_address(address)          # raises on anything else


class _Loop:
    camera_model, dry_run, state = None, False, "IDLE"


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_every_address_printed_at_start_answers_with_the_printed_token(tmp_path, bind):
    try:
        server = ConsoleServer(_Loop(), None, load_config({}), bind=bind, port=0, state_dir=str(tmp_path)).start()
    except OSError as exc:
        pytest.skip(f"cannot listen on {bind} here ({exc.strerror})")
    try:
        port, token = server.httpd.server_address[1], server.token
        assert "0.0.0.0" not in server.url and "[::]" not in server.url
        lines = server.url.split("\n")
        assert len(lines) == len(server.urls) and all(u in server.url for u in server.urls)
        for url in server.urls:
            parts = urlsplit(url)
            assert parts.port == port and parts.query == f"token={token}" and parts.path == "/"
            try:
                ip = ipaddress.ip_address(parts.hostname)
            except ValueError:     # a name: it may not resolve here, but the console must accept it as Host
                target = f"http://127.0.0.1:{port}/api/calibration?{parts.query}"
                headers = {"Host": parts.netloc}
            else:
                assert not ip.is_unspecified and (not ip.is_loopback or server.urls == [url])
                target, headers = url.replace("/?", "/api/calibration?"), {}
            req = urllib.request.Request(target, headers=headers)
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200, url
    finally:
        server.close()


def test_the_machine_name_is_among_them_when_it_has_one(tmp_path):
    name = socket.gethostname().lower().split(".")[0]
    if name in ("", "localhost"):
        pytest.skip("this machine has no name of its own")
    server = ConsoleServer(_Loop(), None, load_config({}), bind="0.0.0.0", port=0, state_dir=str(tmp_path))
    try:
        hosts = [urlsplit(u).hostname for u in server.urls]
        assert hosts[:1] == [name + ".local"] and name in hosts
    finally:
        server.httpd.server_close()
