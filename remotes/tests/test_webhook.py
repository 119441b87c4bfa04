"""Our webhook over HTTP: authenticated, stored raw first, idempotent, 200 for what we received."""

import datetime as dt
import json

import pytest
import requests
from django.conf import settings
from django.urls import reverse

from remotes import inbox
from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery
from simulator.dispatch import Notice, build_delivery
from stellantis import spec

pytestmark = pytest.mark.django_db(transaction=True)


def body(*events, attributes=()):
    return {"callbackId": "cb0001", "attributes": list(attributes), "events": list(events)}


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
    ],
    ids=["over-long remoteActionId", "NUL in a field"],
)
def test_an_event_the_database_could_not_hold_is_refused_and_kept_on_the_delivery(hook, payload, why):
    r = hook(payload, raw=True)

    assert r.status_code == 200  # not 500: the sender would retry it forever
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.PARTIAL
    [bad] = delivery.bad_events
    assert bad["index"] == 0 and why in bad["error"]
    assert why in delivery.error
    assert RemoteEvent.objects.count() == 0


def test_a_nul_byte_in_the_body_is_stored_flagged_and_acknowledged(hook):
    r = hook(b'{"events": [\x00]}', raw=True)

    assert r.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.UNPARSEABLE
    assert "not JSON" in delivery.error
    assert delivery.body == '{"events": [\\x00]}'  # written out: PostgreSQL text holds no NUL


def test_a_redelivered_batch_adds_nothing(hook):
    b = body(event("Accepted"), event("SentToVehicle", date="2026-11-25T10:00:02Z"))
    answers = [hook(b).json()["new"] for _ in range(3)]
    assert answers == [2, 0, 0]
    assert RemoteEvent.objects.count() == 2
    assert WebhookDelivery.objects.count() == 3  # every delivery is on record


def test_a_body_over_the_limit_is_kept_cut_flagged_and_acknowledged(hook, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 300
    payload = json.dumps(body(*[event("Accepted", date=f"2026-11-25T10:00:{i:02d}Z") for i in range(10)])).encode()

    r = hook(payload, raw=True)

    assert r.status_code == 200  # received: a retry would be just as big (and 413 is not a status the vendor expects)
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.UNPARSEABLE
    assert delivery.body == payload[:300].decode()
    assert "body over 300 bytes" in delivery.error
    assert RemoteEvent.objects.count() == 0  # a cut body is not applied; reconciliation reads the action back


# --- where the secret may arrive ------------------------------------------------------------


@pytest.mark.parametrize("header", [f"x-{settings.WEBHOOK_SECRET_HEADER}", settings.WEBHOOK_SECRET_HEADER.lower(), "X-X-FLEETPORTAL-SECRET"])
def test_the_secret_header_renamed_with_an_x_prefix_or_another_case_is_accepted(hook, header):
    r = hook(body(event("Success", "Done")), header=header)

    assert r.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.callback_id == hook.callback.pk
    assert not any("secret" in name.lower() for name in delivery.headers)  # never stored, under any name
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS


def test_the_secret_as_a_body_attribute_alone_is_accepted_and_not_stored(hook):
    secret = hook.callback.secret_header_value
    attributes = [{"key": "X-Vehicle", "value": "VF3TEST0000000001"}, {"key": settings.WEBHOOK_SECRET_HEADER, "value": secret}]

    r = hook(body(event("Success", "Done"), attributes=attributes), secret=False)

    assert r.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.callback_id == hook.callback.pk
    assert secret not in delivery.body  # kept out of the store, as the header is
    assert json.loads(delivery.body)["attributes"][1] == {"key": settings.WEBHOOK_SECRET_HEADER, "value": "(secret removed)"}
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS


def test_a_wrong_header_does_not_hide_a_right_body_attribute(hook):
    attributes = [{"key": settings.WEBHOOK_SECRET_HEADER, "value": hook.callback.secret_header_value}]
    r = hook(body(event("Accepted"), attributes=attributes), secret=f"{hook.callback.webhook_key}.stale")
    assert r.status_code == 200


def test_neither_a_header_nor_a_body_attribute_with_the_secret_gets_401_and_nothing_is_stored(hook):
    wrong = [{"key": settings.WEBHOOK_SECRET_HEADER, "value": f"{hook.callback.webhook_key}.not-the-secret"}]
    assert hook(body(event("Accepted"), attributes=wrong), secret=False).status_code == 401
    assert hook(body(event("Accepted"), attributes=[{"key": "X-Other", "value": "x"}]), secret=False).status_code == 401
    assert hook(b"{not json", raw=True, secret=False).status_code == 401
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize(
    "secret, attributes",
    [("\u00e9\u00e9.secret", []), ("abc.\u00e9t\u00e9", []), (False, [{"key": settings.WEBHOOK_SECRET_HEADER, "value": "\ud800.\ud800"}]),
     (False, [{"key": settings.WEBHOOK_SECRET_HEADER, "value": "a\x00b.c"}]), (False, [{"key": settings.WEBHOOK_SECRET_HEADER, "value": 12}])],
    ids=["non-ASCII key", "non-ASCII secret", "lone surrogates", "NUL in the key", "not a string"],
)
def test_a_hostile_secret_gets_401_not_500(hook, secret, attributes):
    payload = json.dumps(body(event("Accepted"), attributes=attributes)).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not False:
        headers[settings.WEBHOOK_SECRET_HEADER] = secret.encode("latin-1")  # as a client may send it
    r = requests.post(hook.url, data=payload, headers=headers, timeout=10)
    assert r.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_an_over_size_delivery_with_the_secret_only_in_the_body_is_still_kept(hook, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 400
    attributes = [{"key": settings.WEBHOOK_SECRET_HEADER, "value": hook.callback.secret_header_value}]
    payload = body(*[event("Accepted", date=f"2026-11-25T10:00:{i:02d}Z") for i in range(10)], attributes=attributes)

    r = hook(payload, secret=False)

    assert r.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.UNPARSEABLE and "body over 400 bytes" in delivery.error
    assert hook.callback.secret not in delivery.body


# --- one bad event no longer sinks its batch --------------------------------------------------


@pytest.fixture
def second_action(hook):
    return RemoteAction.objects.create(
        vehicle=hook.action.vehicle, callback=hook.callback, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="cafe02", expires_at="2030-01-01T00:00:00Z",
    )


def test_a_bad_event_is_refused_alone_the_good_ones_move_their_actions_and_the_admin_shows_why(hook, second_action, admin_client):
    bad = {**event("Exploded", "Done"), "remoteActionId": "cafe02"}
    r = hook(body(event("Success", "Done"), bad, {**event("Accepted"), "remoteActionId": "cafe02", "eventDate": "2026-11-25T10:00:09Z"}))

    assert r.status_code == 200
    assert r.json()["refused"] == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.PARTIAL
    assert delivery.event_count == 3
    assert delivery.bad_events == [{"index": 1, "error": "eventStatus.status 'Exploded' is not a Done status", "event": bad}]
    hook.action.refresh_from_db()
    second_action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS
    assert (second_action.status, second_action.pending_status) == (ActionStatus.PENDING, "Accepted")
    assert RemoteEvent.objects.filter(delivery=delivery).count() == 2

    page = admin_client.get(reverse("admin:remotes_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Refused events" in html
    assert "events[1]" in html and "eventStatus.status &#x27;Exploded&#x27; is not a Done status" in html
    assert "&quot;status&quot;: &quot;Exploded&quot;" in html  # the event as sent, indented
    listing = admin_client.get(reverse("admin:remotes_webhookdelivery_changelist") + "?outcome__exact=partial")
    assert f">{delivery.pk}<" in listing.content.decode()


@pytest.mark.parametrize(
    "why, change",
    [
        ("is not a Pending status", {"eventStatus": {"type": "Pending", "status": "Daydreaming"}}),
        ("eventDate is missing", {"eventDate": None}),
        ("eventDate must be a date-time string", {"eventDate": 1764064800}),
        ("is neither Pending nor Done", {"eventStatus": {"type": "Cancelled", "status": "Success"}}),
        ("'Failed' with status 'Success' contradicts itself", {"eventStatus": {"type": "Failed", "status": "Success"}}),
    ],
    ids=["unknown status", "missing eventDate", "eventDate a number", "unknown type", "Failed that says Success"],
)
def test_each_kind_of_bad_event_is_refused_alone(hook, why, change):
    r = hook(body({**event("Accepted"), **change}, event("SentToVehicle", date="2026-11-25T10:00:03Z")))

    assert r.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.PARTIAL
    assert [b["index"] for b in delivery.bad_events] == [0] and why in delivery.bad_events[0]["error"]
    hook.action.refresh_from_db()
    assert hook.action.pending_status == "SentToVehicle"


@pytest.mark.parametrize(
    "status",
    [{"type": "Failed", "status": "Failed", "failureCause": "VehicleConnectionTimeout"},
     {"type": "Failed", "failureCause": "VehicleConnectionTimeout"},
     {"type": "Failed", "status": "VehicleConnectionTimeout"}],
    ids=["status Failed", "no status", "the cause as status"],
)
def test_a_type_failed_event_as_the_docs_prose_has_it_ends_the_action_failed(hook, status):
    r = hook(body(event("Accepted"), {**event("Accepted", date="2026-11-25T10:00:07Z"), "eventStatus": status}))

    assert r.status_code == 200
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.PROCESSED
    hook.action.refresh_from_db()
    assert (hook.action.status, hook.action.failure_cause) == (ActionStatus.FAILED, "VehicleConnectionTimeout")
    assert RemoteEvent.objects.get(event_type="Done").status == "Failed"  # stored as the Done · Failed it means


def test_replaying_a_partial_delivery_keeps_its_refused_events(hook):
    hook(body(event("Accepted"), {**event("Accepted"), "eventDate": "yesterday"}))
    delivery = WebhookDelivery.objects.get()

    receipt = inbox.replay_delivery(delivery=delivery)

    assert (receipt.outcome, receipt.events, receipt.new_events, receipt.refused) == (WebhookDelivery.Outcome.PARTIAL, 2, 0, 1)
    delivery.refresh_from_db()
    assert delivery.outcome == WebhookDelivery.Outcome.PARTIAL and delivery.bad_events[0]["index"] == 1


def test_the_simulator_sends_our_subscription_s_body_attribute_and_it_alone_authenticates(hook, reference_dir):
    """The subscription carries the secret as a Header and a Body attribute (valid for the vendor); the
    simulator puts the Body one into RemoteEvents.attributes; with the header stripped on the way, it is enough."""
    subscribe = hook.callback.subscription().to_wire()
    assert spec.schema_errors(spec.API_FILE, "RemoteCallbackSubscribe", subscribe) == []
    subscribe["callback"]["webhook"]["target"] = hook.url
    notice = Notice(
        remote_action_id="cafe01", vin="VF3TEST0000000001", event_date=dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC), remote_type="Horn",
        event_type="Done", status="Success",
    )
    delivery = build_delivery(callback_id=hook.callback.external_id, fleet_id="fleet1", subscribe=subscribe, notices=[notice])
    assert spec.schema_errors(spec.WEBHOOK_FILE, "RemoteEvents", delivery.body) == []
    assert delivery.body["attributes"] == [{"key": settings.WEBHOOK_SECRET_HEADER, "value": hook.callback.secret_header_value}]

    stripped = {k: v for k, v in delivery.headers.items() if k != settings.WEBHOOK_SECRET_HEADER}
    r = requests.post(delivery.url, params=delivery.params, headers=stripped, data=json.dumps(delivery.body), timeout=10)

    assert r.status_code == 200
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS
