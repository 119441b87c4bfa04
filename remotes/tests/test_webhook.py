"""Our webhook over HTTP: authenticated, stored raw first, idempotent, 200 for what we received."""

import json

import pytest
import requests
from django.conf import settings

from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hook(live_server, make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="cafe01", expires_at="2030-01-01T00:00:00Z",
    )
    url = live_server.url + "/webhooks/stellantis/remote/"

    def post(body, secret=None, raw=False):
        headers = {"Content-Type": "application/json"}
        if secret is not False:
            headers[settings.WEBHOOK_SECRET_HEADER] = secret or callback.secret_header_value
        return requests.post(url, data=body if raw else json.dumps(body), headers=headers, timeout=10)

    post.action = action
    post.callback = callback
    return post


def body(*events):
    return {"callbackId": "cb0001", "attributes": [], "events": list(events)}


def event(status, kind="Pending", date="2026-11-25T10:00:00Z", **extra):
    return {"remoteActionId": "cafe01", "vin": "VF3TEST0000000001", "eventDate": date, "remoteType": "Horn",
            "eventStatus": {"type": kind, "status": status, **extra}}


def test_a_valid_delivery_is_stored_and_moves_the_action(hook):
    r = hook(body(event("Accepted"), event("Success", "Done", "2026-11-25T10:00:05Z")))

    assert r.status_code == 200
    assert r.json()["events"] == 2
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.PROCESSED
    assert json.loads(delivery.body)["events"][0]["eventStatus"]["status"] == "Accepted"
    assert settings.WEBHOOK_SECRET_HEADER not in delivery.headers  # secrets never stored
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS


def test_a_wrong_secret_gets_401_and_nothing_is_stored(hook):
    r = hook(body(event("Accepted")), secret=f"{hook.callback.webhook_key}.not-the-secret")
    assert r.status_code == 401
    r = hook(body(event("Accepted")), secret=False)
    assert r.status_code == 401
    assert WebhookDelivery.objects.count() == 0
    assert RemoteEvent.objects.count() == 0


def test_the_previous_secret_still_works_during_a_rotation(hook):
    old = hook.callback.secret_header_value
    hook.callback.previous_secret, hook.callback.secret = hook.callback.secret, "a-brand-new-secret"
    hook.callback.save()
    assert hook(body(event("Accepted")), secret=old).status_code == 200


def test_an_unparseable_body_is_stored_flagged_and_acknowledged(hook):
    r = hook(b"{this is not json", raw=True)

    assert r.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.UNPARSEABLE
    assert delivery.body == "{this is not json"
    assert "not JSON" in delivery.error


@pytest.mark.parametrize(
    "payload, why",
    [
        (json.dumps(body({**event("Accepted"), "remoteActionId": "x" * 65})).encode(), "longer than 64"),
        (json.dumps(body({**event("Accepted"), "vin": "VF3\x00"})).encode(), "NUL"),
        (b'{"events": [\x00]}', "not JSON"),
    ],
    ids=["over-long remoteActionId", "NUL in a field", "NUL byte in the body"],
)
def test_a_body_the_database_could_not_hold_is_still_stored_flagged_and_acknowledged(hook, payload, why):
    r = hook(payload, raw=True)

    assert r.status_code == 200  # not 500: the sender would retry it forever
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.UNPARSEABLE
    assert why in delivery.error
    assert RemoteEvent.objects.count() == 0


def test_a_redelivered_batch_adds_nothing(hook):
    b = body(event("Accepted"), event("SentToVehicle", date="2026-11-25T10:00:02Z"))
    answers = [hook(b).json()["new"] for _ in range(3)]
    assert answers == [2, 0, 0]
    assert RemoteEvent.objects.count() == 2
    assert WebhookDelivery.objects.count() == 3  # every delivery is on record


def test_a_body_over_the_limit_gets_413(hook, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    r = hook(body(*[event("Accepted", date=f"2026-11-25T10:00:{i:02d}Z") for i in range(10)]))
    assert r.status_code == 413
