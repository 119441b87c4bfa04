"""Where a push may go: production refuses plain http and every non-public address, at
registration and again before each attempt (DNS rebinding)."""

import socket

import pytest

from pushes import targets


@pytest.fixture
def production(settings):
    settings.PUSH_ALLOW_PRIVATE_TARGETS = False


def resolving_to(monkeypatch, *addresses):
    def fake(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(targets.socket, "getaddrinfo", fake)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://192.168.0.10/", "https://172.16.0.1/",
        "https://169.254.169.254/latest/meta-data", "https://[::1]/", "https://[fe80::1]/", "https://[::ffff:127.0.0.1]/",
        "https://[64:ff9b::7f00:1]/", "https://224.0.0.1/", "https://0.0.0.0/", "https://100.64.0.1/",
        "https://localhost/hook", "https://api.localhost/", "https://printer.local/", "https://db.internal/",
    ],
)
def test_production_refuses_loopback_private_link_local_and_local_names(production, url):
    assert "public address" in targets.check_url(url)


def test_production_refuses_plain_http(production):
    assert targets.check_url("http://93.184.216.34/hook") == "must be https"


def test_production_accepts_https_on_a_public_address(production):
    assert targets.check_url("https://93.184.216.34/hook") == ""


def test_a_name_that_resolves_to_a_private_address_is_refused(production, monkeypatch):
    resolving_to(monkeypatch, "93.184.216.34", "10.0.0.5")  # one bad address is enough
    assert targets.check_url("https://partner.example/hook") == "must be a public address: partner.example resolves to a private or reserved address"


def test_a_name_that_does_not_resolve_is_refused(production, monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror("no such name")

    monkeypatch.setattr(targets.socket, "getaddrinfo", fail)
    assert targets.check_url("https://nowhere.example/hook") == "nowhere.example does not resolve"


def test_the_demo_allows_loopback_and_http(settings):
    settings.PUSH_ALLOW_PRIVATE_TARGETS = True
    assert targets.check_url("http://127.0.0.1:8123/hook") == ""


@pytest.mark.parametrize("url", ["ftp://example.com/", "example.com/hook", "https://user:pw@example.com/", "https://example.com:99999/"])
def test_what_is_no_http_url_is_refused_everywhere(settings, url):
    settings.PUSH_ALLOW_PRIVATE_TARGETS = True
    assert targets.check_url(url)


def test_a_name_that_rebinds_to_loopback_after_registration_is_refused_at_delivery(production, monkeypatch):
    resolving_to(monkeypatch, "93.184.216.34")
    assert targets.check_url("https://partner.example/hook") == ""
    resolving_to(monkeypatch, "127.0.0.1")
    with pytest.raises(targets.TargetRefused, match="loopback"):
        targets.pin("https://partner.example/hook")


def test_the_connection_goes_to_the_checked_address_under_the_endpoints_name(production, monkeypatch):
    resolving_to(monkeypatch, "93.184.216.34")
    pinned = targets.pin("https://partner.example:8443/hook?x=1")
    assert pinned.url == "https://93.184.216.34:8443/hook?x=1"
    assert pinned.host_header == "partner.example:8443"
    assert pinned.server_name == "partner.example"  # TLS SNI and certificate check
    adapter = targets.pinned_session(pinned).get_adapter(pinned.url)
    assert adapter.poolmanager.connection_pool_kw["server_hostname"] == "partner.example"
    assert adapter.poolmanager.connection_pool_kw["assert_hostname"] == "partner.example"
