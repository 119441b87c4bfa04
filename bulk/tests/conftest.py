"""Bulk tests: simulated fleets imported over HTTP, and the background work driven in the test."""

import time

import pytest


@pytest.fixture
def sim_fleet(stack, organisation):
    """make(name, n): a simulated fleet of n vehicles of Org A, imported through the client, with a
    Running callback for every type (the portal and the simulator over real HTTP)."""
    from callbacks.services import create_callback
    from simulator.seeding import seed_world
    from vehicles.services import import_fleet

    def make(name="Bulk fleet", n=30, seed=11):
        sim = seed_world(fleet_name=name, vehicle_count=n, seed=seed)
        fleet = import_fleet(fleet_id=sim.id, organisation=organisation).fleet
        create_callback(fleet=fleet, label="default")
        return fleet

    return make


@pytest.fixture
def drive(settings):
    """Run a bulk's background work in the test, slice after slice, until nothing is left to send."""
    from bulk import services
    from bulk.models import OPEN_STATUSES, BulkRequest

    def run(bulk, *, rounds=100):
        for _ in range(rounds):
            services.run(bulk.pk, slice_seconds=20)
            bulk = BulkRequest.objects.get(pk=bulk.pk)
            if bulk.status not in OPEN_STATUSES:
                return bulk
        raise AssertionError(f"bulk {bulk.pk} still {bulk.status} after {rounds} slices")

    return run


@pytest.fixture
def outcomes_in():
    """Pump the simulator (events, notifications to our webhook) until the actions have their final word."""
    from remotes.models import FINAL_STATUSES
    from simulator import pump

    def wait(actions_qs, *, timeout=90):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pump.pump(max_seconds=5, follow_up=False)
            if not actions_qs.exclude(status__in=FINAL_STATUSES).exists():
                return
            time.sleep(0.2)
        open_ = list(actions_qs.exclude(status__in=FINAL_STATUSES).values_list("status", flat=True))
        raise AssertionError(f"{len(open_)} action(s) still open: {open_[:10]}")

    return wait
