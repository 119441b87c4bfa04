"""Bodies and framings a sender may really produce: each one is stored and answered, never a 500.

The vendor reads only our status: 200 means received, 500 starts its retries. A 500 for a
body that will never get better (too deep, not UTF-8, a surrogate PostgreSQL refuses) would
be retried for three days and then lost; only our database failing deserves one
(test_ingestion: `test_a_database_failure_mid_delivery_answers_500_and_writes_nothing`).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from remotes import inbox
from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery
from remotes.tests.test_webhook import body, event
from stellantis import webhook as parser

pytestmark = pytest.mark.django_db(transaction=True)


def restored(text: str) -> bytes:
    """The bytes a stored body stands for: as UTF-8, with the \\xNN the inbox writes for what is not text."""
    parts = re.split(r"\\x([0-9a-f]{2})", text)
    return b"".join(bytes([int(p, 16)]) if i % 2 else p.encode("utf-8") for i, p in enumerate(parts))


def as_json(*events, **extra) -> bytes:
    return json.dumps({**body(*events), **extra}).encode()


GOOD = event("Accepted")
HOSTILE = {
    "nested 100,000 deep": b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "nested deep in an event": as_json({**GOOD, "eventStatus": json.loads("[" * 500 + "]" * 500)}),
    "nested deep in an ignored field": as_json({**GOOD, "extra": json.loads("[" * 300 + "]" * 300)}),
    "lone surrogate in remoteActionId": as_json({**GOOD, "remoteActionId": "\ud800"}, GOOD),
    "lone surrogate in vin": as_json({**GOOD, "vin": "VF3\udfff"}),
    "lone surrogate in failureCause": as_json(event("Failed", "Done", failureCause="\ud83d")),
    "lone surrogate in an ignored field": as_json({**GOOD, "extra": "\ud800"}),
    "lone surrogate in an ignored field of a bad event": as_json({**GOOD, "eventDate": 5, "extra": "\udc00"}),
    "lone surrogate in callbackId and attributes": as_json(GOOD, callbackId="\ud800", attributes=[{"key": "\ud800", "value": "\udc00"}]),
    "lone surrogate as raw bytes": b'{"events": [{"remoteActionId": "\xed\xa0\x80"}]}',
    "escaped NUL in vin": as_json({**GOOD, "vin": "\x00"}),
    "escaped NUL in an ignored field of a bad event": as_json({**GOOD, "eventStatus": "\x00"}),
    "NUL byte": b'{"events": []}\x00',
    "latin-1 byte in a vin": b'{"events": [{"vin": "VF3\xe9"}]}',
    "UTF-16": json.dumps(body(GOOD)).encode("utf-16"),
    "UTF-8 byte order mark": b"\xef\xbb\xbf" + as_json(GOOD),
    "empty": b"",
    "a JSON list": b"[1, 2]",
    "a JSON string": b'"events"',
    "null": b"null",
    "events not a list": b'{"events": {"0": {}}}',
    "events null": b'{"events": null}',
    "attributes not a list": as_json(GOOD, attributes="secret"),
    "an event that is a string": as_json("Accepted", GOOD),
    "an event that is null": as_json(None),
    "eventDate a number": as_json({**GOOD, "eventDate": 1764064800}),
    "eventDate a float overflow": as_json({**GOOD, "eventDate": "X"}).replace(b'"X"', b"1e999"),
    "eventDate NaN": as_json({**GOOD, "eventDate": "X"}).replace(b'"X"', b"NaN"),
    "a bad event holding -Infinity": as_json({**GOOD, "eventStatus": "X"}).replace(b'"X"', b"-Infinity"),
    "eventDate out of range in UTC": as_json({**GOOD, "eventDate": "9999-12-31T23:59:59-01:00"}),
    "eventDate before year 1 in UTC": as_json({**GOOD, "eventDate": "0001-01-01T00:30:00+01:00"}),
    "status a list": as_json({**GOOD, "eventStatus": {"type": "Pending", "status": ["Accepted"]}}),
    "type an object": as_json({**GOOD, "eventStatus": {"type": {"Pending": 1}, "status": "Accepted"}}),
    "remoteActionId a number": as_json({**GOOD, "remoteActionId": 12}),
    "vin an object": as_json({**GOOD, "vin": {"vin": "x"}}),
    "feedbackDetail a list": as_json(event("Success", "Done", feedbackDetail=["CIDBlacklisted"])),
    "a 5,000-digit number": b'{"events": [], "n": ' + b"9" * 5000 + b"}",
    "a 3,000-event batch": as_json(*[event("Accepted", date=f"2026-11-25T{h:02d}:{m:02d}:{s:02d}Z") for h in range(1) for m in range(50) for s in range(60)]),
}


@pytest.mark.parametrize("payload", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_body_is_stored_once_kept_as_sent_and_answered_200(hook, payload):
    r = hook(payload, raw=True)

    assert r.status_code == 200, r.text
    delivery = WebhookDelivery.objects.get()  # exactly one per POST
    assert restored(delivery.body) == payload  # the raw body, or a text that gives it back byte for byte
    assert delivery.outcome != WebhookDelivery.Outcome.FAILED, delivery.error  # read, not fallen over
    assert isinstance(delivery.bad_events, list)


def test_a_3000_event_batch_is_applied_whole(hook):
    payload = HOSTILE["a 3,000-event batch"]
    assert hook(payload, raw=True).status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.event_count) == (WebhookDelivery.Outcome.PROCESSED, 3000)
    assert RemoteEvent.objects.filter(action=hook.action).count() == 3000


def test_a_value_the_database_refuses_is_kept_flagged_not_a_500(hook, monkeypatch):
    """Were the parser to let through what a database cannot store, the delivery is still kept."""
    monkeypatch.setattr(parser, "_MAYBE_UNSTORABLE", re.compile("(?!)"))  # the parser's guard, off
    payload = as_json({**GOOD, "vin": "VF3\ud800"})

    r = hook(payload, raw=True)

    assert r.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.FAILED  # replay once fixed
    assert delivery.body == payload.decode()
    assert RemoteEvent.objects.count() == 0


# --- chunked deliveries ---------------------------------------------------------------------


def chunks(payload: bytes, size: int = 7):
    """A body `requests` sends with Transfer-Encoding: chunked and no Content-Length."""
    for i in range(0, len(payload), size):
        yield payload[i : i + size]


def test_django_live_server_drops_a_chunked_body_and_we_answer_500_rather_than_store_it_empty(hook):
    """wsgiref (runserver, live_server) gives a chunked body to the application as nothing."""
    payload = json.dumps(body(event("Success", "Done"))).encode()
    r = requests.post(
        hook.url, data=chunks(payload), timeout=10,
        headers={settings.WEBHOOK_SECRET_HEADER: hook.callback.secret_header_value, "Connection": "close"},
    )

    assert r.status_code == 500  # not received: the sender retries (gunicorn, below, delivers it)
    assert WebhookDelivery.objects.count() == 0


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{db.get('USER') or ''}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
    return f"postgres://{auth + '@' if auth else ''}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def gunicorn(transactional_db):
    """`gunicorn fleetportal.wsgi` (as in the Procfile) on a free port, on the test database.

    The body limit is 4,000 bytes there, to see a chunked body cut while it is read.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ, "DATABASE_URL": _database_url(), "CONN_MAX_AGE": "0", "WEBHOOK_MAX_BODY_BYTES": "4000",
        "DJANGO_SETTINGS_MODULE": "fleetportal.settings",
    }
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "fleetportal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"gunicorn did not start: {log.read().decode()[-3000:]}")
            time.sleep(0.2)
        yield url + "/webhooks/stellantis/remote/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def action(make_vehicle, make_callback):
    vehicle = make_vehicle()
    return RemoteAction.objects.create(
        vehicle=vehicle, callback=make_callback(vehicle.fleet), remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="cafe01", expires_at="2030-01-01T00:00:00Z",
    )


def test_a_chunked_delivery_through_gunicorn_is_read_whole_and_moves_the_action(gunicorn, action):
    payload = json.dumps(body(event("Accepted"), event("Success", "Done", "2026-11-25T10:00:05Z"))).encode()

    r = requests.post(gunicorn, data=chunks(payload), headers={settings.WEBHOOK_SECRET_HEADER: action.callback.secret_header_value}, timeout=15)

    assert r.request.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.request.headers
    assert r.status_code == 200, r.text
    assert WebhookDelivery.objects.get().body == payload.decode()
    action.refresh_from_db()
    assert action.status == ActionStatus.SUCCESS

    # The same body with a Content-Length, as most senders frame it: read the same way, nothing new.
    again = requests.post(gunicorn, data=payload, headers={settings.WEBHOOK_SECRET_HEADER: action.callback.secret_header_value}, timeout=15)
    assert "Content-Length" in again.request.headers
    assert (again.status_code, again.json()["events"], again.json()["new"]) == (200, 2, 0)
    assert [d.body for d in WebhookDelivery.objects.all()] == [payload.decode()] * 2


def test_a_chunked_delivery_over_the_limit_is_cut_while_read_kept_and_acknowledged(gunicorn, action):
    payload = json.dumps(body(*[event("Accepted", date=f"2026-11-25T10:00:{i:02d}Z") for i in range(60)])).encode()
    assert len(payload) > 4000

    r = requests.post(gunicorn, data=chunks(payload, 1000), headers={settings.WEBHOOK_SECRET_HEADER: action.callback.secret_header_value}, timeout=15)

    assert r.status_code == 200, r.text
    delivery = WebhookDelivery.objects.get()
    assert delivery.body == payload[:4000].decode()
    assert delivery.outcome == WebhookDelivery.Outcome.UNPARSEABLE and "body over 4000 bytes" in delivery.error


def test_a_chunked_delivery_with_only_the_body_attribute_through_gunicorn_is_accepted(gunicorn, action):
    attributes = [{"key": settings.WEBHOOK_SECRET_HEADER, "value": action.callback.secret_header_value}]
    payload = json.dumps(body(event("Success", "Done"), attributes=attributes)).encode()

    r = requests.post(gunicorn, data=chunks(payload), headers={"Content-Type": "application/json"}, timeout=15)

    assert r.status_code == 200, r.text
    action.refresh_from_db()
    assert action.status == ActionStatus.SUCCESS


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path runs on PostgreSQL only")
def test_a_partial_delivery_on_postgresql_is_still_one_statement(hook):
    inbox.authenticate(hook.callback.secret_header_value)  # the secret is cached from here on
    with CaptureQueriesContext(connection) as ctx:
        receipt = inbox.receive_delivery(
            body=json.dumps(body(event("SentToVehicle", date="2026-11-25T10:00:02Z"), {**GOOD, "eventDate": None})).encode(),
            headers={settings.WEBHOOK_SECRET_HEADER: hook.callback.secret_header_value},
        )
    assert receipt.outcome == WebhookDelivery.Outcome.PARTIAL
    assert len(ctx.captured_queries) == 1
    delivery = WebhookDelivery.objects.get(pk=receipt.delivery_id)
    assert (delivery.outcome, delivery.event_count, delivery.bad_events[0]["error"]) == ("partial", 2, "eventDate is missing")
