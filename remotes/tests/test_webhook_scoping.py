"""A callback's secret vouches for its own actions only, and for nothing once the callback is deleted.

Over real HTTP (the live server), on SQLite (the ORM path) and on PostgreSQL (the one
statement of `pg_ingest`): the same expectations hold on both.
"""

import datetime as dt

import pytest
from django.utils import timezone

from callbacks import services as callback_services
from callbacks.models import Callback
from remotes import events, inbox
from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

FOREIGN = "action sent through another callback"


def body(*evs):
    return {"callbackId": "cb", "attributes": [], "events": list(evs)}


def event(status="Success", kind="Done", rid="cafe01", date="2026-11-25T10:00:05Z"):
    return {"remoteActionId": rid, "vin": "VF3TEST0000000001", "eventDate": date, "remoteType": "Horn",
            "eventStatus": {"type": kind, "status": status}}


@pytest.fixture
def other(make_vehicle, make_callback):
    """Fleet B's callback (the hook's action belongs to fleet A's)."""
    return make_callback(make_vehicle().fleet)


def test_another_fleets_callback_secret_does_not_move_the_action(hook, other):
    r = hook(body(event()), secret=other.secret_header_value)

    assert r.status_code == 200  # received and stored: the sender is a real callback of ours
    assert r.json()["refused"] == 1
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUBMITTED
    assert not RemoteEvent.objects.exists()  # nothing on the action's timeline
    delivery = WebhookDelivery.objects.get()
    assert delivery.callback_id == other.pk
    assert delivery.outcome == WebhookDelivery.Outcome.PARTIAL
    assert [(b["index"], b["error"]) for b in delivery.bad_events] == [(0, FOREIGN)]
    assert delivery.bad_events[0]["event"]["remote_action_id"] == "cafe01"
    assert "events[0]: action sent through another callback" in delivery.error

    # The very same delivery with the action's own callback's secret applies.
    r = hook(body(event()))
    assert r.status_code == 200 and r.json()["refused"] == 0
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS


def test_the_other_events_of_the_delivery_still_apply(hook, other, make_vehicle):
    theirs = RemoteAction.objects.create(
        vehicle=make_vehicle(fleet=other.fleet), callback=other, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="b0b001", expires_at="2030-01-01T00:00:00Z",
    )
    bad = {"remoteActionId": "b0b001", "eventStatus": {"type": "Sideways"}}  # refused by the parser
    r = hook(body(event(rid="b0b001", kind="Pending", status="Accepted"), bad, event(), event(rid="b0b001")), secret=other.secret_header_value)

    assert r.status_code == 200 and r.json()["refused"] == 2
    theirs.refresh_from_db()
    assert theirs.status == ActionStatus.SUCCESS
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUBMITTED
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.PARTIAL
    assert [b["index"] for b in delivery.bad_events] == [1, 2]
    assert delivery.bad_events[1]["error"] == FOREIGN
    assert delivery.error.startswith("2 of 4 events refused; the first, events[1]:")


def test_a_replay_refuses_events_of_another_callbacks_action(hook, other):
    hook(body(event()), secret=other.secret_header_value)
    delivery = WebhookDelivery.objects.get()

    receipt = inbox.replay_delivery(delivery=delivery)

    assert receipt.refused == 1 and receipt.outcome == WebhookDelivery.Outcome.PARTIAL
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUBMITTED
    delivery.refresh_from_db()
    assert [b["error"] for b in delivery.bad_events] == [FOREIGN]


def test_an_early_event_from_another_callback_is_not_adopted(hook, other):
    RemoteAction.objects.filter(pk=hook.action.pk).update(remote_action_id=None)
    r = hook(body(event(rid="early01", kind="Pending", status="Accepted", date="2026-11-25T10:00:01Z")), secret=other.secret_header_value)
    assert r.status_code == 200 and r.json()["new"] == 1  # kept: no action has that id yet
    ours = hook(body(event(rid="early01", kind="Pending", status="SentToVehicle", date="2026-11-25T10:00:02Z")))
    assert ours.status_code == 200

    # The action's submit learns its id and adopts what arrived early (remotes.services does this).
    RemoteAction.objects.filter(pk=hook.action.pk).update(remote_action_id="early01")
    adopted = events.adopt_orphan_events(remote_action_ids=["early01"])

    assert adopted == 1  # its own callback's event only
    assert RemoteEvent.objects.get(action__isnull=True).status == "Accepted"
    hook.action.refresh_from_db()
    assert hook.action.pending_status == "SentToVehicle"

    # A later delivery of the action's own callback does not pick the stranger's event up either.
    assert hook(body(event(rid="early01", date="2026-11-25T10:00:09Z"))).status_code == 200
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS
    assert RemoteEvent.objects.filter(action__isnull=True).count() == 1


def test_an_early_event_with_no_delivery_stays_adoptable(hook):
    """What reconciliation stores (no delivery) is ours, not a sender's: adopted as before."""
    RemoteAction.objects.filter(pk=hook.action.pk).update(remote_action_id=None)
    RemoteEvent.objects.create(
        remote_action_id="early02", event_type="Pending", status="Accepted", event_date=dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC)
    )
    RemoteAction.objects.filter(pk=hook.action.pk).update(remote_action_id="early02")

    assert events.adopt_orphan_events(remote_action_ids=["early02"]) == 1
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.PENDING


def _delete_as_delete_callback_does(callback):
    callback.deleted_at = timezone.now()
    callback.save(update_fields=["deleted_at", "updated_at"])


def _assert_refused_and_nothing_moved(hook, r, stored_before=0):
    assert r.status_code == 401
    assert WebhookDelivery.objects.count() == stored_before
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUBMITTED
    assert not RemoteEvent.objects.filter(action=hook.action).exists()


def test_a_deleted_callbacks_secret_is_refused_at_once_though_cached_here(hook):
    assert hook(body(event("Accepted", "Pending", date="2026-11-25T10:00:00Z"))).status_code == 200  # cached now
    RemoteEvent.objects.all().delete()
    RemoteAction.objects.filter(pk=hook.action.pk).update(status=ActionStatus.SUBMITTED, pending_status="", pending_at=None)

    _delete_as_delete_callback_does(hook.callback)
    _assert_refused_and_nothing_moved(hook, hook(body(event())), stored_before=1)


def test_a_deleted_callbacks_secret_is_refused_by_a_process_whose_cache_is_stale(hook):
    assert inbox.authenticate(hook.callback.secret_header_value) == hook.callback.pk
    before = dict(inbox._SECRETS)

    _delete_as_delete_callback_does(hook.callback)
    # Another process: it cached the entry before the deletion and saw no signal.
    inbox._SECRETS.clear()
    inbox._SECRETS.update(before)
    _assert_refused_and_nothing_moved(hook, hook(body(event())))
    # It learnt from the refusal: the next one is refused without the statement.
    assert hook.callback.webhook_key not in inbox._SECRETS
    _assert_refused_and_nothing_moved(hook, hook(body(event())))


def test_a_callback_marked_gone_by_the_status_refresh_is_refused_at_once(hook):
    """refresh_callback_statuses marks it with an UPDATE (no post_save): even this process's cache is stale."""
    assert inbox.authenticate(hook.callback.secret_header_value) == hook.callback.pk
    Callback.objects.filter(pk=hook.callback.pk).update(deleted_at=timezone.now())

    _assert_refused_and_nothing_moved(hook, hook(body(event())))
    _assert_refused_and_nothing_moved(hook, hook(body()))  # no events (the ORM path on PostgreSQL too)


def test_delete_callback_ends_the_secret_and_the_rotation_window(hook):
    class Vendor:  # Stellantis accepts the deletion
        def delete_callback(self, fleet_id, callback_id):
            return None

    # An action in error may still be corrected by a late Done: what a stolen secret would do.
    RemoteAction.objects.filter(pk=hook.action.pk).update(status=ActionStatus.ERROR)
    old = hook.callback.secret_header_value
    hook.callback.previous_secret, hook.callback.secret = hook.callback.secret, "a-brand-new-secret-000000000000"
    hook.callback.previous_secret_until = timezone.now() + dt.timedelta(days=3)
    hook.callback.save()
    assert inbox.authenticate(old) == hook.callback.pk  # cached, rotation in flight

    callback_services.delete_callback(callback=Callback.objects.get(pk=hook.callback.pk), client=Vendor())

    for secret in (old, Callback.objects.get(pk=hook.callback.pk).secret_header_value):
        r = hook(body(event()), secret=secret)
        assert r.status_code == 401
    assert WebhookDelivery.objects.count() == 0
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.ERROR


def test_a_paused_callbacks_secret_keeps_working(hook):
    Callback.objects.filter(pk=hook.callback.pk).update(status="Paused")
    inbox._SECRETS.clear()

    assert hook(body(event())).status_code == 200
    hook.action.refresh_from_db()
    assert hook.action.status == ActionStatus.SUCCESS
