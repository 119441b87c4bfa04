"""Where a push may go: an endpoint URL checked at registration and again before every attempt.

The rules are those of `callbacks.rules` for Stellantis' callback targets (public http(s),
no loopback, private or link-local names), made strict because here *we* connect: a name
must resolve, and every address it resolves to must be public, else an endpoint could make
our workers call into our own network (SSRF). Production refuses all of that and plain http;
`PUSH_ALLOW_PRIVATE_TARGETS` (the demo, tests) allows them.

DNS rebinding: a name that resolved to a public address at registration may resolve to
127.0.0.1 a minute later, or between our check and the connection. So each attempt resolves
the name, checks every address, and connects to the address it checked (`pinned_session`),
sending the name as Host and TLS server name, so the certificate is still verified against it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from callbacks.rules import _LOCAL_NAMES  # one list of local names for both kinds of target

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    """The URL may not be called; `str()` says why, in words for the partner."""


def address_refusal(address: str) -> str:
    """Empty for a public unicast address; else what it is."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 is judged as the IPv4 address it reaches.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(str(embedded))
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "a private or reserved address"
    return ""


def _allow_private() -> bool:
    return settings.PUSH_ALLOW_PRIVATE_TARGETS


def check_url(url: str) -> str:
    """Empty when `url` may be registered as an endpoint; else why not (for the `url` field)."""
    try:
        parts = urlsplit(url or "")
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return "must be a valid http(s) URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    if _allow_private():
        return ""
    if parts.scheme != "https":
        return "must be https"
    try:
        resolve(host)
    except TargetRefused as exc:
        return str(exc)
    return ""


def resolve(host: str, port: int = 443) -> str:
    """The address to connect to for `host`, after checking every address it has. Raises TargetRefused."""
    host = host.strip("[]").lower()
    if not _allow_private() and (host == "localhost" or host.endswith(_LOCAL_NAMES)):
        raise TargetRefused("must be a public address, not a local name")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused(f"{host} does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    if not _allow_private():
        for address in addresses:
            why = address_refusal(address)
            if why:
                # One bad address is enough: which one a connection would use is not ours to choose.
                raise TargetRefused(f"must be a public address: {host} resolves to {why}")
    return addresses[0]


@dataclass(frozen=True)
class Pinned:
    url: str  # the URL with the checked address in place of the name
    host_header: str
    server_name: str


def pin(url: str) -> Pinned:
    """Resolve and check `url`'s host now; the URL to call with its address. Raises TargetRefused."""
    why = check_url(url)
    if why:
        raise TargetRefused(why)
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    address = resolve(parts.hostname, parts.port or default_port)
    netloc_host = f"[{address}]" if ":" in address else address
    netloc = f"{netloc_host}:{parts.port}" if parts.port else netloc_host
    host_header = parts.hostname if not parts.port else f"{parts.hostname}:{parts.port}"
    if ":" in (parts.hostname or "") and not host_header.startswith("["):
        host_header = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    return Pinned(urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, parts.hostname)


class _PinnedAdapter(HTTPAdapter):
    """Connects to the checked address; TLS still names (SNI) and verifies the endpoint's host."""

    def __init__(self, server_name: str, **kwargs):
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        # Both dropped by urllib3 for plain http, used for https.
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def pinned_session(pinned: Pinned) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: we connect where we checked
    adapter = _PinnedAdapter(pinned.server_name, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
