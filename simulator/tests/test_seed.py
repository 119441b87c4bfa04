"""seed_world: plausible, valid and the same every time."""

import re

import pytest

from simulator import services
from simulator.models import SimFleet, SimVehicle

pytestmark = pytest.mark.django_db

WMI = {"VF3": "Peugeot", "VF7": "Citroën", "VR1": "DS", "W0L": "Opel", "W0V": "Vauxhall"}


def test_check_digit_matches_a_known_vin():
    # The textbook example of a valid VIN, check digit X.
    assert services.vin_check_digit("1M8GDM9AXKP042788") == "X"


def test_seeded_vins_are_valid():
    fleet = services.seed_world(fleet_name="Valid", vehicle_count=200, seed=11)

    for vehicle in fleet.vehicles.all():
        vin = vehicle.vin
        assert re.fullmatch(r"[0-9A-HJ-NPR-Z]{17}", vin), vin
        assert vin[8] == services.vin_check_digit(vin), vin
        assert WMI[vin[:3]] == vehicle.brand


def test_seeding_twice_changes_nothing():
    first = services.seed_world(fleet_name="Demo", vehicle_count=40, seed=5)
    vins = sorted(first.vehicles.values_list("vin", flat=True))

    again = services.seed_world(fleet_name="Demo", vehicle_count=40, seed=5)

    assert again.pk == first.pk
    assert SimFleet.objects.count() == 1
    assert SimVehicle.objects.count() == 40
    assert sorted(again.vehicles.values_list("vin", flat=True)) == vins


def test_a_larger_count_adds_vehicles_and_keeps_the_first_ones():
    small = set(services.seed_world(fleet_name="Grow", vehicle_count=10, seed=5).vehicles.values_list("vin", flat=True))

    grown = set(services.seed_world(fleet_name="Grow", vehicle_count=25, seed=5).vehicles.values_list("vin", flat=True))

    assert small < grown
    assert len(grown) == 25


def test_another_seed_or_name_is_another_fleet():
    a = services.seed_world(fleet_name="Demo", vehicle_count=5, seed=1)
    b = services.seed_world(fleet_name="Demo", vehicle_count=5, seed=2)
    c = services.seed_world(fleet_name="Other", vehicle_count=5, seed=1)

    assert len({a.pk, b.pk, c.pk}) == 3
    assert SimVehicle.objects.count() == 15


def test_the_world_is_mixed_and_ready_for_a_demo():
    fleet = services.seed_world(fleet_name="Mixed", vehicle_count=130, seed=42)
    vehicles = list(fleet.vehicles.all())

    assert {v.brand for v in vehicles} == set(WMI.values())
    assert {"Electric", "Hybrid", "Thermic"} <= {v.motorization for v in vehicles}
    assert 0 < sum(v.asleep for v in vehicles) < len(vehicles) / 2
    assert all(v.online and v.doors_locked for v in vehicles)
    assert all(0 <= v.energy_level <= 100 and v.autonomy_km >= 0 for v in vehicles)


def test_seeding_is_deterministic_across_databases():
    vins = sorted(services.seed_world(fleet_name="Same", vehicle_count=8, seed=99).vehicles.values_list("vin", "id"))
    SimFleet.objects.all().delete()

    again = sorted(services.seed_world(fleet_name="Same", vehicle_count=8, seed=99).vehicles.values_list("vin", "id"))

    assert again == vins
