"""A vendor in a requests adapter: answers what a test says, records what was asked. No sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

from stellantis.client import ClientConfig, FleetClient
from stellantis.pacing import LocalPacer

Answer = tuple[int, object, dict]  # status, JSON body (None: empty), headers


class FakeVendor(BaseAdapter):
    def __init__(self, answer: Callable[[requests.PreparedRequest], Answer]):
        super().__init__()
        self.answer = answer
        self.seen: list[str] = []

    def send(self, request, **kwargs):
        self.seen.append(request.url)
        status, body, headers = self.answer(request)
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}.get(status, "")
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers.update({"Content-Type": "application/json", **(headers or {})})
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass

    def query(self, index: int) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.seen[index]).query)


class FakeClock:
    """Time that passes only when the client sleeps (and records each sleep)."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def fake_client(answer, *, base_url="https://api.example/connectedcar/v3", pacer=None, **config) -> tuple[FleetClient, FakeVendor]:
    """A client of the fake vendor; its own pacer (unless given) and its sleeps run on `client.clock`."""
    vendor = FakeVendor(answer)
    session = requests.Session()
    session.mount("https://", vendor)
    session.mount("http://", vendor)
    clock = FakeClock()
    pacer = pacer if pacer is not None else LocalPacer(clock=clock)
    client = FleetClient(ClientConfig(base_url=base_url, client_id="cid", **config), session=session, pacer=pacer)
    client._sleep = clock.sleep
    client.clock = clock
    return client, vendor


def page(items: list[dict], next_href: str | None = None, key: str = "vehicles") -> dict:
    links = {"self": {"href": "ignored"}}
    if next_href is not None:
        links["next"] = {"href": next_href}
    return {"_links": links, "total": 0, "totalPage": 1, "currentPage": 1, "_embedded": {key: items}}


def vehicle(n: int) -> dict:
    return {"id": f"v{n}", "vin": f"VIN{n:014d}"}
