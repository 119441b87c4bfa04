"""Each person reads times in their own zone, shown with the zone, and can change it."""

import datetime as dt

import pytest
from django.contrib.auth.models import User

from accounts.models import Preference
from remotes.models import ActionStatus, RemoteAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(client):
    user = User.objects.create_superuser("tz-boss", password="pw-boss-12345")
    client.force_login(user)
    return user


@pytest.fixture
def action(make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Doors", command={"door": {"state": "Locked"}}, source="web",
        status=ActionStatus.SUCCESS, expires_at="2030-01-01T00:00:00Z",
    )
    RemoteAction.objects.filter(pk=action.pk).update(created_at=dt.datetime(2026, 1, 15, 13, 5, tzinfo=dt.UTC))
    return action


def test_without_a_choice_times_are_in_the_portals_zone_with_the_zone_shown(client, person, action):
    page = client.get(f"/actions/{action.pk}/").content.decode()
    assert "15 Jan" in page and "14:05:00 CET" in page  # settings.TIME_ZONE is Europe/Paris
    assert 'id="time-zone-link"' in page and 'data-chosen="0"' in page


def test_the_zone_follows_the_setting(client, person, action):
    r = client.post("/org/me/time-zone/", {"time_zone": "America/New_York"})
    assert r.status_code == 302
    assert Preference.objects.get(user=person).time_zone == "America/New_York"
    page = client.get(f"/actions/{action.pk}/").content.decode()
    assert "08:05:00 EST" in page and "CET" not in page
    assert 'data-chosen="1"' in page and ">America/New_York</a>" in page


def test_the_browsers_zone_is_taken_only_the_first_time(client, person):
    r = client.post("/org/me/time-zone/", {"time_zone": "Asia/Tokyo", "auto": "1"})
    assert r.json() == {"saved": True, "time_zone": "Asia/Tokyo"}
    r = client.post("/org/me/time-zone/", {"time_zone": "Europe/London", "auto": "1"})
    assert r.json() == {"saved": False, "time_zone": "Asia/Tokyo"}  # a chosen zone stays
    assert Preference.objects.get(user=person).time_zone == "Asia/Tokyo"


def test_the_zone_is_remembered_at_the_next_login(client, person, action):
    Preference.objects.create(user=person, time_zone="Asia/Tokyo")
    client.logout()
    client.force_login(person)
    page = client.get(f"/actions/{action.pk}/").content.decode()
    assert "22:05:00 JST" in page


def test_an_unknown_zone_is_refused_with_words(client, person):
    r = client.post("/org/me/time-zone/", {"time_zone": "Mars/Olympus"}, follow=True)
    assert "is not a time zone we know" in r.content.decode()
    assert not Preference.objects.filter(user=person).exists()
    page = client.get("/org/me/time-zone/").content.decode()
    assert '<option value="Europe/Paris" selected>' in page
