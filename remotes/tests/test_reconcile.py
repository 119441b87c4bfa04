"""Reading back actions whose notifications never came, and giving up past the horizon."""

import datetime as dt

import pytest
from django.utils import timezone

from remotes import services
from remotes.models import ActionStatus, RemoteAction
from remotes.selectors import timeline
from simulator.models import SimCallback
from simulator.pump import run_due


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
