"""`seed_demo --vehicles N`: the demo fleet grown to N simulated vehicles in the portal, fast and idempotent."""

import json
import time

import pytest
from django.core.management import call_command

from simulator.models import SimVehicle
from stellantis.client import FleetClient
from vehicles.models import Fleet, Vehicle

pytestmark = pytest.mark.django_db(transaction=True)


def seed(capsys, *args):
    call_command("seed_demo", "--json", *args)
    return json.loads(capsys.readouterr().out)


def test_seed_demo_grows_the_demo_fleet_to_n_vehicles_once_and_fast(stack, capsys):
    small = seed(capsys)
    started = time.monotonic()
    grown = seed(capsys, "--vehicles", "1000")
    took = time.monotonic() - started
    again = seed(capsys, "--vehicles", "1000")

    assert set(grown) == set(small)  # the same keys
    assert grown["fleet_id"] == small["fleet_id"] and len(grown["vins"]) == 1000
    assert set(small["vins"]) < set(grown["vins"])  # grown, the first ones kept
    assert again == grown  # idempotent: nothing doubled
    fleet = Fleet.objects.get(external_id=grown["fleet_id"])
    assert fleet.vehicles.count() == 1000 == SimVehicle.objects.filter(fleet_id=fleet.external_id).count()
    assert took < 60, took  # no call per vehicle (that took minutes for 10,000)

    # What the portal holds for a grown vehicle is what the vendor's API answers for it.
    vehicle = Vehicle.objects.filter(fleet=fleet).exclude(vin__in=small["vins"]).order_by("vin").first()
    assert vehicle.capabilities == FleetClient.from_settings().vehicle_capabilities(fleet.external_id, vehicle.external_id)
