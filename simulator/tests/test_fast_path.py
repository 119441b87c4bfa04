"""The remote POST skips the portal's middleware (simulator.middleware.SimulatorFastPath) and loses nothing it needs."""

import base64
import logging

import pytest
from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import Client

from simulator import vendor
from simulator.models import SimRemoteAction

pytestmark = [pytest.mark.django_db, pytest.mark.urls("simulator.tests.urls")]
BASE = f"/{settings.SIMULATOR_PATH}"
WITHOUT_FAST_PATH = [m for m in settings.MIDDLEWARE if m != "simulator.middleware.SimulatorFastPath"]


def _auth(credentials: str | None = None) -> str:
    return "Basic " + base64.b64encode((credentials or settings.SIMULATOR_CREDENTIALS).encode()).decode()


@pytest.fixture
def callback_id(fleet):
    subscribe = {"callback": {"webhook": {"target": "http://127.0.0.1:9/hook", "name": "t"}}, "remoteTypes": ["Horn"]}
    return vendor.create_callback(fleet_id=fleet.id, subscribe=subscribe).id


@pytest.fixture
def remotes_url(awake_vehicle, callback_id):
    return f"{BASE}/fleets/{awake_vehicle.fleet_id}/vehicles/{awake_vehicle.id}/callbacks/{callback_id}/remotes"


@pytest.fixture
def chain(monkeypatch):
    """The paths of the requests that went down the whole chain (SessionMiddleware comes after the fast path)."""
    seen = []
    real = SessionMiddleware.process_request

    def process_request(self, request):
        seen.append((request.method, request.path))
        return real(self, request)

    monkeypatch.setattr(SessionMiddleware, "process_request", process_request)
    return seen


def post(client, url, body, *, auth=None, client_id="portal", **extra):
    return client.post(f"{url}?client_id={client_id}" if client_id else url, body, content_type="application/json",
                       HTTP_AUTHORIZATION=auth or _auth(), **extra)


def test_the_fast_path_is_mounted_with_the_simulator():
    assert settings.SIMULATOR_ENABLED
    position = settings.MIDDLEWARE.index("simulator.middleware.SimulatorFastPath")
    assert settings.MIDDLEWARE[position - 1] == "remotes.middleware.WebhookFastPath"


def test_a_remote_is_accepted_without_the_pages_middleware(client, remotes_url, chain):
    r = post(client, remotes_url, {"label": "fast", "horn": {"state": "Activated"}})

    assert r.status_code == 202, r.content
    assert r["Content-Type"] == "application/hal+json"
    action = SimRemoteAction.objects.get()
    assert r.json()["remoteActionId"] == action.id
    assert r.json()["_links"]["remote"]["href"] == f"http://testserver{remotes_url}/{action.id}"
    assert chain == []
    assert "Set-Cookie" not in r.headers and "Vary" not in r.headers


def test_the_answer_carries_the_same_security_headers_as_through_the_whole_chain(client, remotes_url, settings):
    fast = post(client, remotes_url, {"horn": {"state": "Activated"}})
    settings.MIDDLEWARE = WITHOUT_FAST_PATH
    whole = post(Client(), remotes_url, {"horn": {"state": "Activated"}})

    assert fast.status_code == whole.status_code == 202
    for name in ("X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy", "X-Frame-Options"):
        assert fast[name] == whole[name], name
    # The same policy (django-csp does not keep its directives' order from one process to the next).
    assert sorted(fast["Content-Security-Policy"].split("; ")) == sorted(whole["Content-Security-Policy"].split("; "))
    assert fast["Content-Length"] == str(len(fast.content))
    assert set(fast.headers) == set(whole.headers) - {"Vary"}  # no cookie read: no Vary: Cookie


@pytest.mark.parametrize(
    "auth, client_id, message",
    [
        (_auth("simulator:wrong"), "portal", "HTTP Basic credentials are missing or wrong."),
        ("Bearer abc", "portal", "HTTP Basic credentials are missing or wrong."),
        (None, None, "client_id query parameter is missing."),
    ],
)
def test_the_view_still_refuses_bad_credentials_with_the_same_answer(client, remotes_url, settings, auth, client_id,
                                                                     message):
    def refused(c):
        response = post(c, remotes_url, {"horn": {"state": "Activated"}}, auth=auth, client_id=client_id)
        body = response.json()
        return response.status_code, response.get("WWW-Authenticate"), body["code"], body["message"], sorted(body)

    fast = refused(client)
    settings.MIDDLEWARE = WITHOUT_FAST_PATH
    assert fast == refused(Client()) == (401, 'Basic realm="stellantis-simulator"', 40100, message,
                                         ["code", "message", "timestamp", "uuid"])
    assert not SimRemoteAction.objects.exists()


def test_a_host_not_allowed_is_refused_before_anything_is_stored(client, remotes_url, settings):
    settings.ALLOWED_HOSTS = ["portal.example"]

    r = post(client, remotes_url, {"horn": {"state": "Activated"}}, HTTP_HOST="evil.example")

    assert r.status_code == 400
    assert not SimRemoteAction.objects.exists()


def test_other_methods_and_paths_go_through_the_whole_chain(client, remotes_url, fleet, chain):
    assert client.get(f"{remotes_url}?client_id=portal", HTTP_AUTHORIZATION=_auth()).status_code == 200
    callbacks = f"{BASE}/fleets/{fleet.id}/remote/callbacks"
    assert post(client, callbacks, {"nonsense": 1}).status_code == 400
    assert post(client, f"{remotes_url}/abc", {"horn": {"state": "Activated"}}).status_code == 405  # one remote: GET
    assert post(client, f"{remotes_url}/", {"horn": {"state": "Activated"}}).status_code == 404

    assert chain == [
        ("GET", remotes_url), ("POST", callbacks), ("POST", f"{remotes_url}/abc"), ("POST", f"{remotes_url}/"),
    ]


def test_errors_of_the_fast_path_answer_as_before(client, remotes_url, fleet, awake_vehicle, callback_id, chain):
    unknown_vehicle = remotes_url.replace(awake_vehicle.id, "nope")
    r = post(client, unknown_vehicle, {"horn": {"state": "Activated"}})
    assert (r.status_code, r.json()["code"]) == (404, 40400)
    assert r.json()["message"] == f"No vehicle nope in fleet {fleet.id}."

    r = post(client, remotes_url, {"lights": {"on": True}})
    assert (r.status_code, r.json()["code"]) == (400, 40000)
    assert "does not serve Lights" in r.json()["message"]
    assert r["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in r
    assert chain == []


def test_a_remote_writes_no_request_line_unless_refused_or_slow(client, remotes_url, caplog, monkeypatch):
    from fleetportal import logs

    def lines():
        return [(rec.status, rec.view) for rec in caplog.records if rec.name == "fleetportal.request"]

    with caplog.at_level(logging.INFO, logger="fleetportal.request"):
        assert post(client, remotes_url, {"horn": {"state": "Activated"}}).status_code == 202
        assert lines() == []
        assert post(client, remotes_url, {"horn": {"state": "Loud"}}).status_code == 400
        assert lines() == [(400, "remotes")]
        monkeypatch.setattr(logs, "QUIET_UNLESS_SLOWER_MS", 0.0)
        assert post(client, remotes_url, {"horn": {"state": "Activated"}}).status_code == 202
    assert lines() == [(400, "remotes"), (202, "remotes")]


@pytest.mark.urls("fleetportal.urls")
def test_the_project_urls_take_the_fast_path_too(client, remotes_url, chain):
    r = post(client, remotes_url, {"horn": {"state": "Activated"}})

    assert r.status_code == 202
    assert chain == []
