"""The client driven into the simulator's rate limits over real HTTP, two clients sharing the
database budget as two worker processes do: nothing is lost, and a spent window is not hammered."""

import os
import threading
import uuid

import pytest
import redis
import requests

from core.ratelimit import DatabasePacer, RedisPacer
from simulator import vendor as sim_vendor
from simulator.models import SimRemoteAction
from simulator.seeding import seed_world
from simulator.testing import a_day_starting_now
from stellantis.client import ClientConfig, FleetClient
from stellantis.errors import RateLimited

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class Counted:
    """A client whose every request that reached the simulator is recorded with its answer."""

    def __init__(self, stack, settings, client_id: str, pacer):
        self.statuses: list[int] = []
        session = requests.Session()
        session.hooks["response"].append(lambda response, *a, **kw: self.statuses.append(response.status_code))
        config = ClientConfig(base_url=f"{stack.url}/{settings.SIMULATOR_PATH}", client_id=client_id, rate_limit_max_wait=3.0, user=settings.STELLANTIS_USER, password=settings.STELLANTIS_PASSWORD)
        self.client = FleetClient(config, session=session, pacer=pacer)


@pytest.fixture
def store():
    """Where the budget is shared: the database unless a test asks for Redis too."""
    return "database"


@pytest.fixture
def two_workers(stack, settings, store):
    """Two clients with their own sessions and pacer objects, sharing one budget (one client_id)."""
    client_id = f"rate-{uuid.uuid4().hex[:8]}"  # the simulator's counters are per client_id
    name = f"budget-{client_id}"
    if store == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            pytest.skip(f"no Redis server at {REDIS_URL}")
        yield [Counted(stack, settings, client_id, RedisPacer(REDIS_URL, name=name)) for _ in range(2)]
        redis.Redis.from_url(REDIS_URL).delete(f"fleetportal:ratelimit:{name}:hold", f"fleetportal:ratelimit:{name}:ended")
    else:
        yield [Counted(stack, settings, client_id, DatabasePacer(name=name)) for _ in range(2)]


def same_budget(worker):
    """Another pacer object on the store the worker's pacer uses (a worker that starts later)."""
    pacer = worker.client.pacer
    return RedisPacer(REDIS_URL, name=pacer.name) if isinstance(pacer, RedisPacer) else DatabasePacer(name=pacer.name)


def run_in_threads(workers, calls_each: int, call):
    outcomes: list = []
    lock = threading.Lock()

    def work(worker):
        for n in range(calls_each):
            try:
                result = ("answered", call(worker.client, n))
            except RateLimited as exc:
                result = ("rate limited", exc.retry_after)
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def test_the_burst_limit_is_waited_out_and_every_call_answered(settings, two_workers):
    settings.SIMULATOR_RATE_LIMIT_PER_SECOND = 5
    fleet = seed_world(fleet_name="Burst", vehicle_count=1, seed=21)

    outcomes = run_in_threads(two_workers, 10, lambda client, n: client.fleet(fleet.id).name)

    assert outcomes == [("answered", "Burst")] * 20
    statuses = [s for w in two_workers for s in w.statuses]
    assert statuses.count(200) == 20
    # The budget is shared: the clients rarely overrun the window (a race between the two at
    # most, once per second), and never keep sending into it.
    assert statuses.count(429) <= 6, statuses


def test_commands_sent_through_a_burst_limit_are_each_accepted_once(settings, two_workers, stack):
    settings.SIMULATOR_RATE_LIMIT_PER_SECOND = 3
    fleet = seed_world(fleet_name="Posts", vehicle_count=1, seed=22)
    car = fleet.vehicles.get()
    callback = sim_vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": f"{stack.url}/hook", "name": "h"}}, "remoteTypes": ["Horn"]},
    )

    def post(client, n):
        return client.send_remote(fleet.id, car.id, callback.id, {"label": f"{threading.get_ident()}-{n}", "horn": {"state": "Activated"}})

    outcomes = run_in_threads(two_workers, 5, post)

    assert [kind for kind, _ in outcomes] == ["answered"] * 10
    labels = list(SimRemoteAction.objects.values_list("remote__label", flat=True))
    assert len(labels) == 10 == len(set(labels))  # a 429 is retried, never doubled


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_spent_day_stops_every_worker_until_the_reset(stack, settings, two_workers):
    a_day_starting_now(settings, limit=12, seconds=3600)
    fleet = seed_world(fleet_name="Daily", vehicle_count=1, seed=23)

    outcomes = run_in_threads(two_workers, 30, lambda client, n: client.fleet(fleet.id).name)

    # Nothing lost: each call answered or refused with a time to retry after.
    answered = [o for o in outcomes if o[0] == "answered"]
    limited = [o for o in outcomes if o[0] == "rate limited"]
    assert len(answered) == 12 and len(answered) + len(limited) == 60
    assert all(3500 < retry_after <= 3600 for _, retry_after in limited)  # the day turned as the test began
    # Once the day is spent, at most one request per worker reaches the simulator (one in
    # flight when the window closed, or the one probe after the 1 s hold): the 48 others are
    # refused here without calling.
    statuses = [s for w in two_workers for s in w.statuses]
    assert statuses.count(200) == 12
    assert 1 <= statuses.count(429) <= 2, statuses

    # A worker starting now sees the same budget and does not call at all.
    late = Counted(stack, settings, two_workers[0].client.config.client_id, same_budget(two_workers[0]))
    with pytest.raises(RateLimited):
        late.client.fleet(fleet.id)
    assert late.statuses == []


def test_a_spent_day_that_ends_soon_is_waited_out(settings, two_workers):
    settings.SIMULATOR_RATE_LIMIT_PER_DAY = 3
    settings.SIMULATOR_RATE_LIMIT_DAY_SECONDS = 2  # a "day" of two seconds: its reset is within the wait limit
    fleet = seed_world(fleet_name="Short day", vehicle_count=1, seed=24)
    worker = two_workers[0]

    names = [worker.client.fleet(fleet.id).name for _ in range(7)]

    assert names == ["Short day"] * 7
    assert worker.statuses.count(200) == 7
    assert worker.statuses.count(429) <= 3, worker.statuses
