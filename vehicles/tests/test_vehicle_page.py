"""The vehicle page and the command forms in people's words: titles, zones, what the vehicle's
state allows, reachability before sending, dates in the past refused, nothing typed lost."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from remotes.models import ActionStatus, RemoteAction, Source
from vehicles.models import VehicleStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def vehicle(make_vehicle, make_callback):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    return vehicle


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


def _done(vehicle, command, status=ActionStatus.SUCCESS, **kw):
    from stellantis.remotes import parse_remote

    parsed = parse_remote(command)
    return RemoteAction.objects.create(
        vehicle=vehicle, callback=vehicle.fleet.callbacks.first(), remote_type=parsed.remote_type, command=parsed.as_dict(),
        source=Source.WEB, status=status, expires_at=timezone.now() + dt.timedelta(hours=1), **kw,
    )


def test_history_reads_as_titles_not_vendor_names(signed_in, vehicle):
    _done(vehicle, {"charging": {"schedule": {"nextDelayedTime": "2030-01-15T21:00:00Z"}}}, status=ActionStatus.FAILED, failure_cause="VehicleInUse")
    _done(vehicle, {"lights": {"on": False}})
    _done(vehicle, {"door": {"state": "Locked"}}, verification="verified")
    html = signed_in.get(f"/vehicles/{vehicle.vin}/").content.decode()
    assert "Start charging at 22:00 on 15 Jan 2030 (Europe/Paris)" in html
    assert "Turn lights off" in html and "Lock doors" in html and "✓ verified" in html
    assert "Failed</span> — Vehicle in use" in html
    assert "ElectricBatteryChargingRequest" not in html and "Lights: False" not in html and "Doors: Locked" not in html


def test_a_stolen_vehicle_says_so_and_disables_what_would_fail_with_the_reason(signed_in, vehicle):
    _done(vehicle, {"stolen": {"stolen": True}}, reason="theft")
    html = signed_in.get(f"/vehicles/{vehicle.vin}/").content.decode()
    assert 'id="stolen-badge"' in html and "Reported stolen" in html
    assert '<button type="submit" class="primary" data-remote="horn" disabled aria-describedby="why-horn">' in html
    assert "Sound horn: The vehicle is reported stolen: Stellantis takes only stolen-vehicle and immobilization commands" in html
    assert '<span class="disabled" data-feature="navigation" aria-disabled="true">' in html
    assert f'href="/vehicles/{vehicle.vin}/remote/stolen/"' in html  # what still works stays offered
    assert f'href="/vehicles/{vehicle.vin}/remote/immobilization/"' in html

    form = signed_in.get(f"/vehicles/{vehicle.vin}/remote/horn/").content.decode()
    assert 'id="not-available"' in form and "reported stolen" in form
    r = signed_in.post(f"/vehicles/{vehicle.vin}/remote/horn/")
    assert r.status_code == 200 and RemoteAction.objects.filter(remote_type="Horn").count() == 0

    _done(vehicle, {"stolen": {"stolen": False}}, reason="found")
    html = signed_in.get(f"/vehicles/{vehicle.vin}/").content.decode()
    assert 'id="stolen-badge"' not in html and 'data-remote="horn" disabled' not in html


def test_the_vehicles_own_status_says_stolen_too(signed_in, vehicle):
    VehicleStatus.objects.create(vehicle=vehicle, captured_at=timezone.now(), fetched_at=timezone.now(), raw={"stolen": {"state": True}})
    html = signed_in.get(f"/vehicles/{vehicle.vin}/").content.decode()
    assert 'id="stolen-badge"' in html and 'data-remote="horn" disabled' in html


def test_an_immobilized_vehicle_shows_it(signed_in, vehicle):
    _done(vehicle, {"immobilization": {"activate": True}}, reason="unpaid")
    html = signed_in.get(f"/vehicles/{vehicle.vin}/").content.decode()
    assert 'id="immobilized-badge"' in html and "The engine will not start" in html


def test_reachability_is_said_before_the_buttons_and_on_the_form(signed_in, vehicle):
    VehicleStatus.objects.create(vehicle=vehicle, captured_at=timezone.now() - dt.timedelta(days=3, hours=1), fetched_at=timezone.now())
    html = signed_in.get(f"/vehicles/{vehicle.vin}/").content.decode()
    sentence = "Asleep for 3 days: waking it may take 2 minutes or fail; 20 of 20 wake-ups left this month"
    assert sentence in html and html.index('id="reachability"') < html.index('id="quick"')
    assert sentence in signed_in.get(f"/vehicles/{vehicle.vin}/remote/door/").content.decode()


def test_a_delayed_charge_in_the_past_is_refused_naming_the_field_and_keeping_the_input(signed_in, vehicle):
    r = signed_in.post(f"/vehicles/{vehicle.vin}/remote/charging/", {"mode": "delayed", "at": "2020-01-01T10:00", "reason": "night tariff"})
    html = r.content.decode()
    assert r.status_code == 200 and RemoteAction.objects.count() == 0
    field = html[html.index('id="field-at"'):]
    field = field[: field.index("</div>")]
    assert "is in the past" in field and "Start at" in field
    assert 'value="2020-01-01T10:00"' in field  # what was typed is still there
    assert 'value="night tariff"' in html and '<option value="delayed" selected>' in html


def test_a_future_delayed_charge_is_accepted(signed_in, vehicle):
    at = (timezone.localtime() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    r = signed_in.post(f"/vehicles/{vehicle.vin}/remote/charging/", {"mode": "delayed", "at": at})
    assert r.status_code == 302
    assert "nextDelayedTime" in RemoteAction.objects.get().command["charging"]["schedule"]


def test_the_form_keeps_everything_typed_after_an_error(signed_in, vehicle):
    data = {
        "p1_action": "Set", "p1_start": "07:30", "p1_days": ["Mon", "Wed"], "p1_recurrence": "Daily", "p1_enabled": "on",
        "p2_action": "Set", "p2_days": ["Fri"],  # no start time: refused
        "reason": "cold mornings",
    }
    html = signed_in.post(f"/vehicles/{vehicle.vin}/remote/preconditioning/", data).content.decode()
    assert RemoteAction.objects.count() == 0 and "is required" in html
    assert 'value="07:30' in html and 'value="cold mornings"' in html
    assert 'name="p1_days" value="Mon" id="id_p1_days_0" checked' in html and 'name="p1_days" value="Wed" id="id_p1_days_2" checked' in html
    assert 'name="p2_days" value="Fri" id="id_p2_days_4" checked' in html
    # Every program control sits with its label.
    assert '<label for="id_p1_enabled" class="check"><input type="checkbox" name="p1_enabled"' in html

    html = signed_in.post(f"/vehicles/{vehicle.vin}/remote/navigation/", {"positions": "48.85, 2.35\nsomewhere", "reason": "delivery"}).content.decode()
    assert "Line 2" in html and "48.85, 2.35\nsomewhere</textarea>" in html and 'value="delivery"' in html


def test_the_api_refuses_a_past_date_with_a_400_naming_the_field(vehicle, operator, make_token):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_token(operator)}")
    r = api.post(f"/api/v1/vehicles/{vehicle.vin}/remotes/", {"charging": {"schedule": {"nextDelayedTime": "2020-01-01T10:00:00Z"}}}, format="json")
    assert r.status_code == 400
    assert r.json()["errors"]["charging.schedule.nextDelayedTime"].startswith("is in the past")
    assert RemoteAction.objects.count() == 0


def test_the_vehicle_page_costs_the_same_queries_whatever_its_history(signed_in, vehicle):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost():
        with CaptureQueriesContext(connection) as ctx:
            assert signed_in.get(f"/vehicles/{vehicle.vin}/").status_code == 200
        return len(ctx.captured_queries)

    _done(vehicle, {"door": {"state": "Locked"}})
    before = cost()
    for _ in range(20):
        _done(vehicle, {"stolen": {"stolen": True}}, reason="theft")
        _done(vehicle, {"charging": {"immediate": True}}, status=ActionStatus.FAILED, failure_cause="VehicleInUse")
    assert cost() == before


def test_the_vehicle_page_shows_its_label_and_leads_to_the_label_form_for_who_may_set_it(signed_in, client, vehicle, make_member):
    from accounts.models import Role

    vehicle.label, vehicle.plate = "Van 12 (Lyon)", "AB-123-CD"
    vehicle.save()
    html = signed_in.get(f"/vehicles/{vehicle.vin}/").content.decode()
    assert "Van 12 (Lyon) · AB-123-CD" in html and f'href="/vehicles/{vehicle.vin}/label/" id="edit-label"' in html

    client.force_login(make_member("vera", Role.VIEWER))
    html = client.get(f"/vehicles/{vehicle.vin}/").content.decode()
    assert "Van 12 (Lyon)" in html and 'id="edit-label"' not in html
