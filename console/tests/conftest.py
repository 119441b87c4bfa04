"""A known world for the console's tests: Org A's fleet in every state, and Org B's, which must never count."""

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from accounts.models import Role
from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery
from vehicles.models import VehicleStatus

_seq = itertools.count(1)


@pytest.fixture
def snapshot():
    def make(vehicle, *, ago=None, **fields):
        now = timezone.now()
        return VehicleStatus.objects.create(
            vehicle=vehicle, fetched_at=now, captured_at=None if ago is None else now - ago, **fields
        )

    return make


@pytest.fixture
def action():
    """An action of `vehicle` through `callback`, created `ago` before now."""

    def make(vehicle, callback, *, status=ActionStatus.SUCCESS, remote_type="Horn", command=None, ago=dt.timedelta(0), **fields):
        command = command or {"horn": {"state": "Activated"}}
        made = RemoteAction.objects.create(
            vehicle=vehicle, callback=callback, remote_type=remote_type, command=command, status=status, source="web",
            expires_at=timezone.now() + dt.timedelta(hours=1), **fields,
        )
        RemoteAction.objects.filter(pk=made.pk).update(created_at=timezone.now() - ago)
        made.refresh_from_db()
        return made

    return make


@pytest.fixture
def delivery():
    """A delivery to `callback` received `ago` before now, with events whose eventDate lag it by `lags` seconds."""

    def make(callback, *, ago=dt.timedelta(0), lags=(), outcome=WebhookDelivery.Outcome.PROCESSED, action=None):
        received = timezone.now() - ago
        d = WebhookDelivery.objects.create(callback=callback, body="{}", outcome=outcome, event_count=len(lags))
        WebhookDelivery.objects.filter(pk=d.pk).update(received_at=received)
        for lag in lags:
            RemoteEvent.objects.create(
                action=action, remote_action_id=f"rid{next(_seq)}", event_type="Pending", status="Accepted",
                event_date=received - dt.timedelta(seconds=lag), delivery=d,
            )
        return d

    return make


@pytest.fixture
def viewer(make_member):
    return make_member("vic", Role.VIEWER)


@pytest.fixture
def other_org(make_organisation, make_vehicle, make_callback, snapshot, action):
    """Org B: a vehicle online, charging, low, stolen, with failures today. None of it is Org A's."""
    from vehicles.models import Fleet

    org = make_organisation("Org B")
    fleet = Fleet.objects.create(external_id="fleet-b", name="Fleet B", organisation=org)
    vehicle = make_vehicle(fleet=fleet)
    callback = make_callback(fleet)
    snapshot(vehicle, ago=dt.timedelta(seconds=30), charging_status="InProgress", energy_level=5, plugged=True, latitude=50.0, longitude=3.0)
    action(vehicle, callback, remote_type="Stolen", command={"stolen": {"stolen": True}})
    action(vehicle, callback, remote_type="Immobilization", command={"immobilization": {"activate": True}})
    for _ in range(3):
        action(vehicle, callback, status=ActionStatus.FAILED, failure_cause="DoorsOpen")
    action(vehicle, callback, status=ActionStatus.AWAITING_APPROVAL)
    action(vehicle, callback, status=ActionStatus.SUBMITTED, submitted_at=timezone.now() - dt.timedelta(hours=1))
    return {"org": org, "fleet": fleet, "vehicle": vehicle, "callback": callback}
