"""seed_world: plausible, valid, the same every time, and troubled enough for a demo."""

import re

import pytest
from django.utils import timezone

from simulator import scenario, seeding
from simulator.models import DEEP_SLEEP_AFTER, SimFleet, SimVehicle
from stellantis.vocabulary import ELECTRIFIED

pytestmark = pytest.mark.django_db

WMI = {"VF3": "Peugeot", "VF7": "Citroën", "VR1": "DS", "W0L": "Opel", "W0V": "Vauxhall"}


def test_check_digit_matches_a_known_vin():
    # The textbook example of a valid VIN, check digit X.
    assert seeding.vin_check_digit("1M8GDM9AXKP042788") == "X"


def test_seeded_vins_are_valid():
    fleet = seeding.seed_world(fleet_name="Valid", vehicle_count=200, seed=11)

    for vehicle in fleet.vehicles.all():
        vin = vehicle.vin
        assert re.fullmatch(r"[0-9A-HJ-NPR-Z]{17}", vin), vin
        assert vin[8] == seeding.vin_check_digit(vin), vin
        assert WMI[vin[:3]] == vehicle.brand


def test_seeding_twice_changes_nothing():
    first = seeding.seed_world(fleet_name="Demo", vehicle_count=40, seed=5)
    vins = sorted(first.vehicles.values_list("vin", flat=True))

    again = seeding.seed_world(fleet_name="Demo", vehicle_count=40, seed=5)

    assert again.pk == first.pk
    assert SimFleet.objects.count() == 1
    assert SimVehicle.objects.count() == 40
    assert sorted(again.vehicles.values_list("vin", flat=True)) == vins


def test_a_larger_count_adds_vehicles_and_keeps_the_first_ones():
    small = set(seeding.seed_world(fleet_name="Grow", vehicle_count=10, seed=5).vehicles.values_list("vin", flat=True))

    grown = set(seeding.seed_world(fleet_name="Grow", vehicle_count=25, seed=5).vehicles.values_list("vin", flat=True))

    assert small < grown
    assert len(grown) == 25


def test_another_seed_or_name_is_another_fleet():
    a = seeding.seed_world(fleet_name="Demo", vehicle_count=5, seed=1)
    b = seeding.seed_world(fleet_name="Demo", vehicle_count=5, seed=2)
    c = seeding.seed_world(fleet_name="Other", vehicle_count=5, seed=1)

    assert len({a.pk, b.pk, c.pk}) == 3
    assert SimVehicle.objects.count() == 15


def test_the_world_is_mixed_and_ready_for_a_demo():
    fleet = seeding.seed_world(fleet_name="Mixed", vehicle_count=130, seed=42)
    vehicles = list(fleet.vehicles.all())

    assert {v.brand for v in vehicles} == set(WMI.values())
    assert {"Electric", "Hybrid", "Thermic"} <= {v.motorization for v in vehicles}
    assert 0 < sum(v.asleep for v in vehicles) < len(vehicles) / 2
    assert sum(not v.online for v in vehicles) == 2
    assert all(v.doors_locked or v.door_open for v in vehicles)
    assert all(0 <= v.energy_level <= 100 and v.autonomy_km >= 0 for v in vehicles)


def test_seeding_is_deterministic_across_databases():
    vins = sorted(seeding.seed_world(fleet_name="Same", vehicle_count=8, seed=99).vehicles.values_list("vin", "id"))
    SimFleet.objects.all().delete()

    again = sorted(seeding.seed_world(fleet_name="Same", vehicle_count=8, seed=99).vehicles.values_list("vin", "id"))

    assert again == vins


def traits(vehicle, now) -> set[str]:
    found = {
        "offline": not vehicle.online,
        "deep_sleep": vehicle.is_deep_asleep(now),
        "no_subscription": not vehicle.remote_subscribed,
        "door_open": vehicle.door_open,
        "in_use": vehicle.in_use,
        "low_battery": vehicle.energy_level < scenario.LOW_BATTERY_LEVEL,
        "wake_ups_spent": vehicle.wake_ups_left(now) == 0,
        "stolen": vehicle.stolen,
    }
    return {name for name, present in found.items() if present}


def assert_fit(vehicle, now):
    """Every command can succeed: the portal's tests and a demo's first click use it."""
    assert traits(vehicle, now) == set(), vehicle.vin
    assert vehicle.motorization in ELECTRIFIED
    assert vehicle.plugged and not vehicle.charging
    assert vehicle.doors_locked
    assert vehicle.energy_level >= scenario.LOW_BATTERY_LEVEL


# The demo fleet as `seed_demo` builds it (SIMULATOR_SEED 42, 50 vehicles): who fails, and how.
DEMO_TRAITS = {
    "VF3533YX1SC132370": {"offline"},
    "W0LYGNV44LV888717": {"offline"},
    "VR1GW8XC7SW763765": {"deep_sleep"},
    "VF3E2S1L8PU016198": {"no_subscription"},
    "VF3HSMGT5PC416337": {"door_open"},
    "VF3M661Z3P6390573": {"in_use"},
    "VF7J777V4NE201084": {"low_battery"},
    "VR1YN0XF4N6278684": {"wake_ups_spent"},
}


def test_the_demo_fleet_has_one_vehicle_for_each_common_failure():
    fleet = seeding.seed_world(fleet_name="Demo fleet", vehicle_count=50, seed=42)
    now = timezone.now()
    vehicles = list(fleet.vehicles.order_by("vin"))

    troubled = {v.vin: traits(v, now) for v in vehicles if traits(v, now)}

    assert troubled == DEMO_TRAITS
    assert_fit(vehicles[0], now)
    assert_fit(vehicles[1], now)
    low = next(v for v in vehicles if v.vin == "VF7J777V4NE201084")
    assert low.motorization == "Electric" and not low.charging
    deep = next(v for v in vehicles if v.vin == "VR1GW8XC7SW763765")
    assert deep.asleep and now - deep.last_driven_at > DEEP_SLEEP_AFTER
    assert 3 <= sum(v.is_asleep(now) for v in vehicles) <= 20


def test_the_test_fleet_is_all_healthy_and_its_first_two_can_charge():
    fleet = seeding.seed_world(fleet_name="Test fleet", vehicle_count=6, seed=7)
    now = timezone.now()
    vehicles = list(fleet.vehicles.order_by("vin"))

    assert [v.vin for v in vehicles] == [
        "VF3BJZVW1RE994736",
        "VF3MK22CXN3312272",
        "VF7TBBGN2M5226154",
        "VF7ZMLNV4MA331931",
        "W0LG2NB72P7264109",
        "W0VTB9V16NR839656",
    ]
    assert all(traits(v, now) == set() for v in vehicles)
    assert all(v.doors_locked and v.online and v.remote_subscribed for v in vehicles)
    assert_fit(vehicles[0], now)
    assert_fit(vehicles[1], now)


def test_small_fleets_get_no_troubled_vehicles():
    fleet = seeding.seed_world(fleet_name="Small", vehicle_count=seeding.TRAITS_FROM - 1, seed=3)
    now = timezone.now()

    assert all(traits(v, now) == set() for v in fleet.vehicles.all())


def test_traits_are_the_same_on_every_seeding():
    def snapshot():
        fleet = seeding.seed_world(fleet_name="Again", vehicle_count=60, seed=8)
        now = timezone.now()
        return {v.vin: (v.motorization, v.asleep, sorted(traits(v, now))) for v in fleet.vehicles.all()}

    first = snapshot()
    SimFleet.objects.all().delete()

    assert snapshot() == first
