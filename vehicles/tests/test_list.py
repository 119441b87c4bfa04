"""The vehicle list a manager works with (issue 15): filters, keyset pages, CSV export, labels.

Through Django's test client on the real database. Run on both databases:
    .venv/bin/pytest vehicles/tests/test_list.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fp_list .venv/bin/pytest vehicles/tests/test_list.py
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEntry
from remotes.models import ActionStatus, RemoteAction, Source
from remotes.presentation import status_words
from stellantis.vocabulary import RemoteType
from vehicles import listing
from vehicles.models import Vehicle, VehicleStatus

pytestmark = pytest.mark.django_db


def snapshot(vehicle, *, ago=None, **kw):
    now = timezone.now()
    return VehicleStatus.objects.create(
        vehicle=vehicle, fetched_at=now, captured_at=None if ago is None else now - ago, **kw,
    )


def action(vehicle, callback, remote_type, command, status=ActionStatus.SUCCESS, *, at=None):
    a = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type=remote_type, command=command, status=status, source=Source.WEB,
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    if at is not None:
        RemoteAction.objects.filter(pk=a.pk).update(created_at=at)
    return a


@pytest.fixture
def manager(client, make_member):
    user = make_member("mia", Role.APPROVER)
    client.force_login(user)
    return user


def vins_on(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    return [r.vehicle.vin for r in response.context["rows"]]


def test_the_list_shows_energy_range_charging_doors_last_contact_and_states_in_words(client, manager, make_vehicle, make_callback):
    car = make_vehicle(label="Van 12", plate="AB-123-CD")
    snapshot(car, ago=dt.timedelta(hours=3), energy_level=14.6, autonomy_km=42, charging_status="InProgress", doors_locked=False)
    declared = action(car, make_callback(car.fleet), RemoteType.STOLEN, {"stolen": {"stolen": True}})

    page = client.get("/vehicles/").content.decode()

    for words in ("Van 12", "AB-123-CD", "15 %", "42 km", "Charging", "Unlocked", "seen 3 h ago", "Stolen", "Asleep", "Low battery"):
        assert words in page, words
    assert f"Declare stolen · {status_words(declared)}" in page  # the last action, in words
    assert timezone.get_current_timezone_name() in page or "UTC" in page  # the exact time names its zone


def test_a_later_page_costs_the_same_queries_as_the_first(client, manager, make_fleet, make_vehicle, make_callback, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fleet = make_fleet()
    callback = make_callback(fleet)
    for n in range(30):
        v = make_vehicle(fleet=fleet)
        snapshot(v, ago=dt.timedelta(minutes=n), energy_level=n)
        action(v, callback, RemoteType.HORN, {"horn": {"state": "Activated"}})
    monkeypatch.setattr(listing, "PAGE_SIZE", 7)
    client.get("/vehicles/")  # the brand choices are cached from the first visit on
    with CaptureQueriesContext(connection) as first:
        r = client.get("/vehicles/?sort=-energy")
    with CaptureQueriesContext(connection) as later:
        r = client.get("/vehicles/" + r.context["next_url"])
        assert r.status_code == 200
    with CaptureQueriesContext(connection) as last:
        r = client.get("/vehicles/" + r.context["last_url"])
    # The last page reads the vehicles with no energy level first (none here), then those with one:
    # one query more, at most, where a page spans both.
    assert len(first) == len(later) and len(last) <= len(first) + 1
    assert [row.energy for row in r.context["rows"]] == [6, 5, 4, 3, 2, 1, 0]  # the last 7, highest first


# --- keyset pages ------------------------------------------------------------------------------


@pytest.fixture
def varied(make_fleet, make_vehicle):
    """23 vehicles with repeated values and holes in every sortable column."""
    fleets = [make_fleet(name=f"Fleet {c}") for c in "BA"]
    vehicles = []
    for n in range(23):
        v = make_vehicle(fleet=fleets[n % 2], brand=["Peugeot", "Opel", "", "Citroen"][n % 4], label=["", "Van", "Car"][n % 3])
        if n % 5 != 0:  # one in five never reported a status
            snapshot(
                v, ago=None if n % 7 == 0 else dt.timedelta(minutes=n % 4),
                energy_level=None if n % 3 == 0 else float(n % 4 * 10), autonomy_km=None if n % 4 == 0 else n % 3 * 100,
            )
        vehicles.append(v)
    return vehicles


@pytest.mark.parametrize("sort_key", list(listing.SORTS))
@pytest.mark.parametrize("descending", [False, True])
def test_keyset_pages_give_every_vehicle_exactly_once_in_order_both_ways(varied, manager, sort_key, descending):
    sort = listing.SORTS[sort_key]
    vehicles = listing.matching(manager, {})
    expected = [v.pk for v in listing.ordered(vehicles, sort, descending)]
    assert len(expected) == 23

    forward, cursor = [], None
    while True:
        page = listing.keyset_page(vehicles, sort, descending, cursor, size=4)
        forward += [v.pk for v in page.vehicles]
        # A cursor survives its trip through the URL.
        cursor = page.next and listing.Cursor.decode(page.next.encode(sort, descending), sort, descending)
        if cursor is None:
            break
    assert forward == expected

    backward, cursor = [], listing.Cursor(after=False, last=True)
    while cursor is not None:
        page = listing.keyset_page(vehicles, sort, descending, cursor, size=4)
        backward = [v.pk for v in page.vehicles] + backward
        cursor = page.previous and listing.Cursor.decode(page.previous.encode(sort, descending), sort, descending)
    assert backward == expected

    values = [getattr(v, "_sort") for v in listing.ordered(vehicles, sort, descending)]
    present = [x for x in values if x is not None]
    assert values[: len(present)] == present and present == sorted(present, reverse=descending)  # no value: last, both ways


def test_the_pages_of_the_page_walk_the_whole_filtered_list(client, manager, varied, monkeypatch):
    monkeypatch.setattr(listing, "PAGE_SIZE", 5)
    seen, url = [], "/vehicles/?sort=-energy&brand=peugeot"
    while url:
        r = client.get(url)
        seen += vins_on(r)
        url = r.context["next_url"] and "/vehicles/" + r.context["next_url"]
    assert sorted(seen) == sorted(v.vin for v in varied if v.brand == "Peugeot") and len(seen) == len(set(seen))
    last = client.get("/vehicles/?sort=-energy&brand=peugeot&cursor=last")
    assert vins_on(last) == seen[-len(vins_on(last)):]


def test_a_broken_cursor_or_sort_is_named_and_the_first_page_shown(client, manager, varied):
    r = client.get("/vehicles/?cursor=bm9uc2Vuc2U&sort=colour")
    assert r.status_code == 200
    notes = " ".join(r.context["notes"])
    assert "no longer valid" in notes and "Unknown sort “colour”" in notes
    assert len(vins_on(r)) == 23


# --- filters -------------------------------------------------------------------------------------


def test_search_finds_a_vehicle_by_part_of_its_vin_plate_or_label(client, manager, make_vehicle):
    a = make_vehicle(plate="GH-456-JK")
    b = make_vehicle(label="Delivery van, Lyon")
    c = make_vehicle()
    assert vins_on(client.get("/vehicles/?q=456-j")) == [a.vin]
    assert vins_on(client.get("/vehicles/?q=van, lyon")) == [b.vin]
    assert vins_on(client.get(f"/vehicles/?q={c.vin[-6:].lower()}")) == [c.vin]


def test_fleet_brand_and_motorization_filters(client, manager, make_fleet, make_vehicle):
    north, south = make_fleet(name="North"), make_fleet(name="South")
    e = make_vehicle(fleet=north, brand="Peugeot", motorization="Electric")
    t = make_vehicle(fleet=north, brand="Opel", motorization="Thermic")
    s = make_vehicle(fleet=south, brand="Peugeot", motorization="Hybrid")
    assert set(vins_on(client.get(f"/vehicles/?fleet={north.external_id}"))) == {e.vin, t.vin}
    assert set(vins_on(client.get("/vehicles/?brand=PEUGEOT"))) == {e.vin, s.vin}
    assert vins_on(client.get("/vehicles/?motorization=Thermic")) == [t.vin]
    assert vins_on(client.get(f"/vehicles/?fleet={north.external_id}&brand=Peugeot")) == [e.vin]


def test_each_state_filter(client, manager, make_vehicle, make_callback):
    online = make_vehicle()
    snapshot(online, ago=dt.timedelta(seconds=30), energy_level=80, charging_status="InProgress", plugged=True)
    asleep = make_vehicle()
    snapshot(asleep, ago=dt.timedelta(hours=5), energy_level=12, charging_status="Stopped", plugged=True)
    offline = make_vehicle()
    snapshot(offline, ago=dt.timedelta(days=30), energy_level=55)
    never = make_vehicle()
    stolen, immobilized, recovered = make_vehicle(), make_vehicle(), make_vehicle()
    cb = make_callback(stolen.fleet)
    action(stolen, cb, RemoteType.STOLEN, {"stolen": {"stolen": True}})
    action(stolen, cb, RemoteType.STOLEN, {"stolen": {"stolen": False}}, ActionStatus.FAILED)  # failed: still stolen
    action(immobilized, cb, RemoteType.STOLEN, {"stolen": {"immobilization": {"activate": True}}})
    earlier = timezone.now() - dt.timedelta(days=1)
    action(recovered, cb, RemoteType.STOLEN, {"stolen": {"stolen": True}}, at=earlier)
    action(recovered, cb, RemoteType.STOLEN, {"stolen": {"stolen": False}})
    action(recovered, cb, RemoteType.IMMOBILIZATION, {"immobilization": {"activate": True}}, at=earlier)
    action(recovered, cb, RemoteType.IMMOBILIZATION, {"immobilization": {"activate": False}})

    def by(state):
        return set(vins_on(client.get(f"/vehicles/?state={state}")))

    assert by("online") == {online.vin}
    assert by("asleep") == {asleep.vin}
    assert by("offline") == {offline.vin}
    assert by("unknown") == {never.vin, stolen.vin, immobilized.vin, recovered.vin}
    assert by("charging") == {online.vin}
    assert by("plugged") == {online.vin, asleep.vin}
    assert by("low_battery") == {asleep.vin}
    assert by("stolen") == {stolen.vin}
    assert by("immobilized") == {immobilized.vin}
    assert set(vins_on(client.get("/vehicles/?state=stolen&state=offline"))) == {stolen.vin, offline.vin}  # any of them
    page = client.get("/vehicles/?state=immobilized").content.decode()
    assert "Immobilized" in page


def test_capability_filter_agrees_with_what_the_vehicle_can_do(client, manager, make_vehicle):
    electric = make_vehicle(motorization="Electric")
    thermic = make_vehicle(motorization="Thermic")
    no_horn = make_vehicle(capabilities={"remote": {"horn": {"supported": False}}})
    assert set(vins_on(client.get("/vehicles/?capability=charging"))) == {electric.vin, no_horn.vin}
    assert set(vins_on(client.get("/vehicles/?capability=horn"))) == {electric.vin, thermic.vin}
    assert vins_on(client.get("/vehicles/?capability=horn&capability=charging")) == [electric.vin]


def test_bad_filter_values_are_named_and_ignored_not_a_crash(client, manager, make_vehicle):
    car = make_vehicle()
    r = client.get("/vehicles/?state=flying&capability=teleport&motorization=Steam")
    assert vins_on(r) == [car.vin]
    page = r.content.decode()
    for words in ("Unknown state “flying” ignored.", "Unknown capability “teleport” ignored.", "Unknown motorization “Steam” ignored."):
        assert words in page


def test_an_empty_result_says_no_vehicle_matches_with_a_way_back(client, manager, make_vehicle):
    make_vehicle()
    page = client.get("/vehicles/?q=nothing-like-it").content.decode()
    assert "No vehicle matches these filters" in page and 'id="clear-filters"' in page
    assert "Import a fleet" not in page


def test_an_organisation_without_vehicles_is_told_to_import_a_fleet(client, manager):
    page = client.get("/vehicles/").content.decode()
    assert "No vehicles yet. Import a fleet" in page


# --- visibility ------------------------------------------------------------------------------------


def test_another_organisations_vehicles_never_appear_not_even_by_name(client, manager, make_vehicle, make_fleet, make_organisation):
    mine = make_vehicle()
    theirs_fleet = make_fleet(organisation=make_organisation("Other"))
    theirs = make_vehicle(fleet=theirs_fleet, label="Their van", plate="ZZ-999-ZZ")
    assert vins_on(client.get("/vehicles/")) == [mine.vin]
    for query in (f"fleet={theirs_fleet.external_id}", f"q={theirs.vin}", "q=Their van", "q=ZZ-999", "brand=Peugeot"):
        assert theirs.vin not in vins_on(client.get(f"/vehicles/?{query}"))
        assert theirs.vin not in client.get(f"/vehicles/export.csv?{query}").getvalue().decode()
    page = client.get("/vehicles/").content.decode()
    assert theirs_fleet.external_id not in page and theirs.vin not in page  # not even in the fleet filter


def test_a_member_limited_to_a_fleet_sees_only_its_vehicles(client, make_member, make_fleet, make_vehicle):
    north, south = make_fleet(), make_fleet()
    n, s = make_vehicle(fleet=north), make_vehicle(fleet=south)
    client.force_login(make_member("lou", Role.VIEWER, fleets=[north]))
    assert vins_on(client.get("/vehicles/")) == [n.vin]
    assert s.vin not in client.get("/vehicles/export.csv").getvalue().decode()


# --- CSV -------------------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.getvalue().decode())))


def test_the_csv_holds_the_filtered_list_every_row_in_the_lists_order(client, manager, varied, monkeypatch):
    from vehicles import list_views

    monkeypatch.setattr(list_views, "EXPORT_CHUNK", 3)  # several chunks
    monkeypatch.setattr(listing, "PAGE_SIZE", 100)
    url = "?brand=Peugeot&sort=-energy"
    page = client.get(f"/vehicles/{url}")
    lines = read_csv(client.get(f"/vehicles/export.csv{url}"))
    assert lines[0] == list_views.EXPORT_HEADER
    assert [line[0] for line in lines[1:]] == vins_on(page)
    row = {r.vehicle.vin: r for r in page.context["rows"]}
    for line in lines[1:]:
        r = row[line[0]]
        assert line[3] == "Peugeot" and line[5] == r.vehicle.fleet.name
        assert line[6] == ("" if r.energy is None else str(r.energy))
        assert line[11] == r.state_words


def test_the_csv_cannot_run_a_formula_in_a_spreadsheet(client, manager, make_vehicle):
    make_vehicle(label="=HYPERLINK(\"http://evil\")", plate="+1")
    make_vehicle(label="@SUM(A1)", plate="-2")
    lines = read_csv(client.get("/vehicles/export.csv"))
    cells = [c for line in lines[1:] for c in line[1:3]]
    assert sorted(cells) == sorted(["'=HYPERLINK(\"http://evil\")", "'+1", "'@SUM(A1)", "'-2"])


def test_the_csv_export_costs_a_few_queries_per_chunk_not_per_vehicle(client, manager, varied, monkeypatch, django_assert_max_num_queries):
    from vehicles import list_views

    monkeypatch.setattr(list_views, "EXPORT_CHUNK", 10)  # 23 vehicles: 3 chunks
    with django_assert_max_num_queries(3 * 3 + 6):
        lines = read_csv(client.get("/vehicles/export.csv"))
    assert len(lines) == 24


# --- labels ----------------------------------------------------------------------------------------


def test_an_operator_sets_a_label_and_plate_audited_then_finds_the_vehicle_by_them(client, make_member, make_vehicle):
    car = make_vehicle()
    client.force_login(make_member("otto", Role.OPERATOR))
    form = client.get(f"/vehicles/{car.vin}/label/")
    assert form.status_code == 200 and 'name="label"' in form.content.decode()
    r = client.post(f"/vehicles/{car.vin}/label/", {"label": "Van 7", "plate": "ab-123-cd", "next": "/vehicles/?q=van"})
    assert r.status_code == 302 and r["Location"] == "/vehicles/?q=van"
    car.refresh_from_db()
    assert (car.label, car.plate) == ("Van 7", "AB-123-CD")
    entry = AuditEntry.objects.get(action="vehicle.label_changed")
    assert entry.changes == {"label": ["", "Van 7"], "plate": ["", "AB-123-CD"]} and entry.user.username == "otto"
    assert vins_on(client.get("/vehicles/?q=van 7")) == [car.vin]


def test_the_list_links_each_row_to_its_label_form_and_back(client, manager, make_vehicle):
    car = make_vehicle()
    page = client.get("/vehicles/?q=VF3").content.decode()
    assert f'href="/vehicles/{car.vin}/label/?next=/vehicles/%3Fq%3DVF3"' in page
    r = client.post(f"/vehicles/{car.vin}/label/", {"label": "Van 9", "plate": "", "next": "/vehicles/?q=VF3"})
    assert r["Location"] == "/vehicles/?q=VF3" and "Van 9" in client.get(r["Location"]).content.decode()


def test_a_viewer_may_not_set_a_label(client, make_member, make_vehicle):
    car = make_vehicle()
    client.force_login(make_member("vera", Role.VIEWER))
    assert "needs the operator role" in client.get(f"/vehicles/{car.vin}/label/").content.decode()
    assert client.post(f"/vehicles/{car.vin}/label/", {"label": "Mine"}).status_code == 403
    car.refresh_from_db()
    assert car.label == "" and not AuditEntry.objects.filter(action="vehicle.label_changed").exists()


def test_another_organisations_vehicle_label_is_a_404(client, manager, make_vehicle, make_fleet, make_organisation):
    theirs = make_vehicle(fleet=make_fleet(organisation=make_organisation("Other")))
    assert client.get(f"/vehicles/{theirs.vin}/label/").status_code == 404
    assert client.post(f"/vehicles/{theirs.vin}/label/", {"label": "x"}).status_code == 404
    assert Vehicle.objects.get(pk=theirs.pk).label == ""


def test_the_label_form_does_not_send_you_off_site(client, manager, make_vehicle):
    car = make_vehicle()
    r = client.post(f"/vehicles/{car.vin}/label/", {"label": "x", "next": "https://evil.example/"})
    assert r["Location"] == f"/vehicles/{car.vin}/"


# --- bulk selection ----------------------------------------------------------------------------------


def test_the_bulk_controls_are_only_for_people_who_may_command(client, make_member, make_vehicle):
    make_vehicle()
    client.force_login(make_member("vera", Role.VIEWER))
    page = client.get("/vehicles/").content.decode()
    assert 'name="vin"' not in page and "bulk-from-filter" not in page


def test_the_bulk_controls_carry_the_selection_and_the_current_filters(client, manager, make_vehicle):
    from django.urls import NoReverseMatch, reverse

    try:
        bulk_url = reverse("bulk-new")
    except NoReverseMatch:
        pytest.skip("no bulk page yet (bulk-new)")
    a, b = make_vehicle(), make_vehicle(brand="Opel")
    page = client.get("/vehicles/?brand=Peugeot&state=unknown&sort=-energy").content.decode()
    assert f'action="{bulk_url}"' in page and 'name="selection" value="vins"' in page
    assert f'name="vin" value="{a.vin}"' in page and f"Select {a.vin}</label>" in page and b.vin not in page
    # The saved filter, without the sort or the page: the bulk request selects what the list shows.
    assert f'id="bulk-from-filter" href="{bulk_url}?selection=filter&amp;brand=Peugeot&amp;state=unknown">Send a command to all 1 matching' in page
