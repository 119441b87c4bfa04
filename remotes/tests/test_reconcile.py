"""Reading back actions whose notifications never came, and giving up past the horizon."""

import datetime as dt

import pytest
from django.utils import timezone

from core.models import VendorBudget
from core.ratelimit import DatabasePacer
from remotes import services
from remotes.models import ActionStatus, RemoteAction
from remotes.selectors import timeline
from simulator.models import SimCallback
from simulator.pump import run_due
from stellantis.client import ClientConfig, FleetClient


@pytest.fixture
def silent_action(demo_fleet, operator, settings):
    """A horn Stellantis carried out while the callback was paused: no notification reached us."""
    settings.REMOTE_RECONCILE_AFTER = 0
    vehicle = demo_fleet.vehicles.order_by("vin").first()
    action = services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=operator)
    services.submit_remote_action(action_id=action.pk)
    SimCallback.objects.update(status="Paused")
    run_due(now=timezone.now() + dt.timedelta(hours=1))
    return RemoteAction.objects.get(pk=action.pk)


def test_an_action_with_no_notification_is_read_back_and_finished(silent_action):
    assert silent_action.status == ActionStatus.SUBMITTED

    result = services.reconcile(now=timezone.now() + dt.timedelta(seconds=1))

    assert result["read"] == 1
    silent_action.refresh_from_db()
    assert silent_action.status == ActionStatus.SUCCESS
    assert "Read back from Stellantis" in timeline(silent_action)[-1].detail


def test_a_recent_read_back_is_not_repeated(silent_action, settings):
    settings.REMOTE_RECONCILE_EVERY = 3600
    RemoteAction.objects.filter(pk=silent_action.pk).update(reconciled_at=timezone.now())
    assert services.reconcile()["read"] == 0


def test_past_the_three_day_horizon_an_open_action_ends_as_error(silent_action):
    later = timezone.now() + dt.timedelta(days=3, minutes=1)
    result = services.reconcile(now=later)

    assert result["gave_up"] == 1
    silent_action.refresh_from_db()
    assert silent_action.status == ActionStatus.ERROR
    assert "3-day" in silent_action.error


def test_a_spent_rate_limit_ends_the_pass_and_leaves_the_rest_for_the_next(demo_fleet, operator, settings):
    settings.REMOTE_RECONCILE_AFTER = 0
    vehicles = list(demo_fleet.vehicles.order_by("vin")[:3])
    for vehicle in vehicles:
        action = services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=operator)
        services.submit_remote_action(action_id=action.pk)
    SimCallback.objects.update(status="Paused")  # no notification: all three wait for a read-back
    pacer = DatabasePacer(name="reconcile-test")
    pacer.hold(600, reason="daily limit reached")
    client = FleetClient(ClientConfig.from_settings(), pacer=pacer)

    result = services.reconcile(now=timezone.now() + dt.timedelta(seconds=1), client=client)

    assert (result["read"], result["failed"]) == (0, 1)  # one refusal, then the pass stops
    assert not RemoteAction.objects.filter(reconciled_at__isnull=False).exists()  # all three are read next time
    VendorBudget.objects.filter(name="reconcile-test").delete()
    assert services.reconcile(now=timezone.now() + dt.timedelta(seconds=2), client=FleetClient(ClientConfig.from_settings(), pacer=pacer))["read"] == 3
