"""Commands, statuses and times read as people say them (stellantis.remotes.describe, remotes.presentation)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from remotes.models import ActionStatus, RemoteAction
from remotes.presentation import action_title, ago, status_words, when
from stellantis.remotes import describe, parse_remote
from stellantis.vocabulary import MEMBER_TO_TYPE

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

CASES = [
    ({"door": {"state": "Locked"}}, "Lock doors"),
    ({"door": {"state": "Unlocked"}}, "Unlock doors"),
    ({"door": {"state": "Unlocked", "forced": True}}, "Unlock doors (forced)"),
    ({"horn": {"state": "Activated"}}, "Sound horn"),
    ({"horn": {"state": "Unactivated"}}, "Stop horn"),
    ({"lights": {"on": True}}, "Flash lights"),
    ({"lights": {"on": False}}, "Turn lights off"),
    ({"wakeUp": {"action": "WakeUp"}}, "Refresh state"),
    ({"immobilization": {"activate": True}}, "Immobilize"),
    ({"immobilization": {"activate": False}}, "Lift immobilization"),
    ({"stolen": {"stolen": True}}, "Declare stolen"),
    ({"stolen": {"stolen": False}}, "Declare recovered"),
    ({"stolen": {"immobilization": {"activate": True}}}, "Immobilize (stolen vehicle)"),
    ({"stolen": {"immobilization": {"activate": False}}}, "Lift immobilization (stolen vehicle)"),
    ({"stolen": {"trackingPeriod": {"running": 5, "shutdown": 60}}}, "Track the stolen vehicle (every 5 s when driven, every 60 s when parked)"),
    ({"navigation": {"positions": [{"type": "Point", "coordinates": [2.3522, 48.8566]}]}}, "Navigate to 48.8566, 2.3522"),
    (
        {"navigation": {"positions": [{"type": "Point", "coordinates": [4.8357, 45.764]}, {"type": "Point", "coordinates": [2.3522, 48.8566]}]}},
        "Navigate to 48.8566, 2.3522 via 1 point",
    ),
    ({"preconditioning": {"airConditioning": {"immediate": True}}}, "Start preconditioning"),
    ({"preconditioning": {"airConditioning": {"immediate": False}}}, "Stop preconditioning"),
    (
        {"preconditioning": {"airConditioning": {"programs": [
            {"slot": 1, "enabled": True, "recurrence": "Daily", "start": "PT7H30M", "occurence": {"day": ["Mon"]}}]}}},
        "Preconditioning programs (slot 1) at 07:30",
    ),
    ({"preconditioning": {"airConditioning": {"programs": [{"slot": 2, "actionsType": "Delete"}]}}}, "Delete preconditioning programs (slot 2)"),
    ({"charging": {"immediate": True}}, "Start charging now"),
    ({"charging": {"immediate": False}}, "Stop charging"),
    ({"charging": {"schedule": {"nextDelayedTime": "2026-11-27T21:00:00Z"}}}, "Start charging at 22:00 (Europe/Paris)"),
    ({"charging": {"schedule": {"nextDelayedTime": "2026-11-29T05:30:00Z"}}}, "Start charging at 06:30 on 29 Nov (Europe/Paris)"),
    ({"charging": {"schedule": {"programs": [{"slot": 1, "enabled": True, "start": "PT22H"}]}}}, "Set charging programs (slot 1)"),
    ({"charging": {"preferences": {"level": "Level3", "type": "Full"}}}, "Set charging preferences (level 3, full)"),
]


@pytest.mark.parametrize(("command", "title"), CASES, ids=[c[1] for c in CASES])
def test_every_command_reads_as_people_say_it(command, title):
    parsed = parse_remote(command)  # the real shapes: what the validation layer keeps
    assert describe(parsed.remote_type, parsed.as_dict(), PARIS, now=NOW) == title


def test_every_member_is_described():
    described = {next(iter(c)) for c, _ in CASES}
    assert described == set(MEMBER_TO_TYPE)


def test_the_charging_time_follows_the_readers_zone():
    command = {"charging": {"schedule": {"nextDelayedTime": "2026-11-27T21:00:00Z"}}}
    assert describe("ElectricBatteryChargingRequest", command, "America/New_York", now=NOW) == "Start charging at 16:00 (America/New_York)"
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert describe("ElectricBatteryChargingRequest", command, now=NOW) == "Start charging at 06:00 on 28 Nov (Asia/Tokyo)"


def test_an_unknown_shape_reads_as_its_type():
    assert describe("Horn", {}) == "Horn"
    assert describe("Doors", {"door": "nonsense"}) == "Unlock doors"


def _action(**kw):
    return RemoteAction(remote_type="Doors", command={"door": {"state": "Locked"}}, **kw)


def test_statuses_are_words_with_their_cause():
    assert status_words(ActionStatus.SUCCESS) == "Success"
    assert status_words("submitted") == "Sent to Stellantis"
    assert status_words(_action(status=ActionStatus.SUCCESS, verification="not_confirmed")) == "Success · not confirmed"
    failed = _action(status=ActionStatus.FAILED, failure_cause="NotPossibleDueToVehicleBatteryLevel")
    assert status_words(failed) == "Failed: Vehicle battery level too low"
    pending = _action(status=ActionStatus.PENDING, pending_status="WakingUpVehicle")
    assert status_words(pending) == "In progress: Waking up the vehicle"
    assert action_title(failed) == "Lock doors"


def test_times_show_the_zone_and_how_long_ago():
    at = dt.datetime(2026, 1, 27, 13, 5, tzinfo=dt.UTC)
    with timezone.override(PARIS):
        assert when(at).endswith("14:05 CET")
    with timezone.override(ZoneInfo("America/New_York")):
        assert when(at).endswith("08:05 EST")
    now = timezone.now()
    assert ago(now - dt.timedelta(hours=3), now) == "3 h ago"
    assert ago(now - dt.timedelta(seconds=5), now) == "just now"
    assert ago(now + dt.timedelta(minutes=5), now) == "in 5 min"
    assert ago(None) == "never"


def test_the_filters_render_in_templates():
    action = _action(status=ActionStatus.FAILED, failure_cause="DoorsOpen")
    action.created_at = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    with timezone.override(PARIS):
        html = Template("{% load remote_words %}{{ a|action_title }} | {{ a|status_words }} | {{ a.created_at|when }}").render(Context({"a": action}))
    assert html.startswith("Lock doors | Failed: Doors open | 1 Jul")
    assert html.endswith("12:00 CEST")
