"""Fixtures for the simulator: a live API over real HTTP and a real webhook receiver."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings

from simulator import pump, seeding
from simulator.models import SimVehicle
from stellantis.client import ClientConfig, FleetClient


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict

    @property
    def statuses(self) -> list[str]:
        return [e["eventStatus"]["status"] for e in self.body.get("events", [])]


@dataclass
class Receiver:
    """A webhook on 127.0.0.1 that records every POST; `respond(received)` picks the HTTP status."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    respond: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict]:
        with self.lock:
            return [e for r in self.received for e in r.body.get("events", [])]

    def statuses(self) -> list[str]:
        return [e["eventStatus"]["status"] for e in self.events()]

    def count(self, status: str) -> int:
        with self.lock:
            return sum(1 for r in self.received if status in r.statuses)


@pytest.fixture
def receiver():
    hook = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            parts = urlsplit(self.path)
            received = Received(
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k: v for k, v in self.headers.items()},
                body=json.loads(raw or b"{}"),
            )
            with hook.lock:
                hook.received.append(received)
            status = hook.respond(received) if hook.respond else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fast_simulator(settings):
    """Vehicles 1000 times faster than life."""
    settings.SIMULATOR_SPEED = 1000.0
    settings.SIMULATOR_WEBHOOK_TIMEOUT = 2.0
    return settings


class Api:
    """Calls the simulator over real HTTP, one connection per call.

    The client closes each connection: a live-server thread parked on an idle keep-alive
    connection keeps its database connection open, and PostgreSQL then refuses to drop
    the test database.
    """

    def __init__(self, base: str):
        self.base = base
        self.sessions: list[requests.Session] = []

    def client(self) -> FleetClient:
        """The portal's own Stellantis client, pointed at the simulator."""
        session = requests.Session()
        self.sessions.append(session)
        user, _, password = settings.SIMULATOR_CREDENTIALS.partition(":")
        return FleetClient(ClientConfig(base_url=self.base, client_id="portal", user=user, password=password), session=session)

    def close(self) -> None:
        for session in self.sessions:
            session.close()

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def call(self, method: str, path: str, *, client_id: str | None = "test-client", params=None, **kwargs):
        query = dict(params or {})
        if client_id is not None:
            query["client_id"] = client_id
        # The simulator's credentials unless the test gives others (auth=() for none).
        kwargs.setdefault("auth", tuple(settings.SIMULATOR_CREDENTIALS.partition(":")[::2]))
        with requests.Session() as session:
            return session.request(method, self.url(path), params=query, timeout=10, **kwargs)

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, json=body, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.call("PUT", path, json=body, **kwargs)

    def delete(self, path, **kwargs):
        return self.call("DELETE", path, **kwargs)

    def create_callback(self, fleet_id: str, target: str, **extra) -> str:
        body = {
            "label": "tests",
            "callback": {"webhook": {"target": target, "name": "test-hook", "attributes": extra.pop("attributes", [])}},
            "remoteTypes": extra.pop("remoteTypes", ["Horn", "Doors", "WakeUp", "Navigation", "Lights"]),
            **extra,
        }
        response = self.post(f"fleets/{fleet_id}/remote/callbacks", body)
        assert response.status_code == 200, response.text
        return response.json()["callbackId"]

    def send(self, vehicle: SimVehicle, callback_id: str, remote: dict) -> requests.Response:
        return self.post(f"fleets/{vehicle.fleet_id}/vehicles/{vehicle.id}/callbacks/{callback_id}/remotes", remote)


@pytest.fixture
def api(live_server):
    api = Api(f"{live_server.url}/{settings.SIMULATOR_PATH}")
    yield api
    api.close()


@pytest.fixture
def fleet():
    return seeding.seed_world(fleet_name="Test fleet", vehicle_count=6, seed=7)


def _vehicle(fleet, index: int, **state) -> SimVehicle:
    vehicle = fleet.vehicles.order_by("vin")[index]
    SimVehicle.objects.filter(pk=vehicle.pk).update(**state)
    vehicle.refresh_from_db()
    return vehicle


@pytest.fixture
def awake_vehicle(fleet):
    return _vehicle(fleet, 0, asleep=False, awake_until=None, online=True, doors_locked=True)


@pytest.fixture
def asleep_vehicle(fleet):
    return _vehicle(fleet, 1, asleep=True, awake_until=None, online=True, doors_locked=True)


@pytest.fixture
def offline_vehicle(fleet):
    return _vehicle(fleet, 2, asleep=False, awake_until=None, online=False, doors_locked=True)


@pytest.fixture
def pump_all():
    """Run the pump until nothing is left (vehicles are 1000× faster, so well under a second)."""

    def run() -> pump.PassResult:
        result = pump.pump(max_seconds=10)
        assert not result.skipped
        return result

    return run
