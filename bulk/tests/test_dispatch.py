"""Bulk requests end to end: the portal and the simulator over real HTTP, the background work run
in the test (the q2 cluster is not the point here; the browser test uses it)."""

import time
from collections import Counter

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Role
from bulk import services
from bulk.models import BulkLane, BulkRequest, BulkStatus, ItemState, Selection
from bulk.testing import Holding
from remotes.models import ActionStatus, RemoteAction, Source
from simulator.models import SimRemoteAction, SimVehicle
from stellantis.vocabulary import FailureCause, RemoteType

CHARGE = {"charging": {"immediate": True}}
HORN = {"horn": {"state": "Activated"}}

pytestmark = pytest.mark.django_db(transaction=True)


def labels_at_simulator(fleet) -> Counter:
    """How many remotes the simulator stored per label (our action id), for this fleet."""
    return Counter(r.label for r in SimRemoteAction.objects.filter(fleet_id=fleet.external_id))


def mark_stolen(vehicle, callback):
    """The vehicle's latest successful Stolen command declared it stolen (what the portal knows)."""
    return RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type=RemoteType.STOLEN, command={"stolen": {"stolen": True}},
        status=ActionStatus.SUCCESS, source=Source.SYSTEM, expires_at=timezone.now(), finished_at=timezone.now(),
    )


def mark_wake_ups_spent(vehicle, callback):
    return RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type=RemoteType.HORN, command=HORN, status=ActionStatus.FAILED,
        failure_cause=FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH, source=Source.SYSTEM, expires_at=timezone.now(),
    )


def new_bulk(user, fleet, command, **kw):
    draft = services.draft(by=user, command=command, selection=Selection.FLEET, fleet=fleet, **kw)
    return draft, services.create_bulk(by=user, draft=draft, source=Source.WEB)


def test_a_500_vehicle_bulk_reaches_every_vehicle_exactly_once_and_the_refused_ones_never(
    sim_fleet, operator, drive, settings
):
    settings.BULK_DISPATCH_CHUNK = 120  # several dispatch chunks
    settings.BULK_CHUNK = 200  # several expansion chunks
    fleet = sim_fleet("Five hundred", 500, seed=5)
    callback = fleet.callbacks.get()
    electric = list(fleet.vehicles.filter(motorization="Electric").order_by("vin")[:6])
    for v in electric[:3]:
        mark_stolen(v, callback)
    for v in electric[3:5]:
        mark_wake_ups_spent(v, callback)

    started = time.monotonic()
    draft, bulk = new_bulk(operator, fleet, CHARGE)
    assert time.monotonic() - started < 1.0  # one short request, whatever the size
    assert bulk.total == 500 and bulk.status == BulkStatus.EXPANDING and not bulk.items.exists()

    bulk = drive(bulk)

    assert bulk.status in (BulkStatus.SENT, BulkStatus.FINISHED)
    items = bulk.items.select_related("vehicle", "action")
    refused = [i for i in items if i.state == ItemState.REFUSED]
    sent = [i for i in items if i.state == ItemState.DISPATCHED]
    assert len(refused) + len(sent) == 500
    causes = Counter(i.cause for i in refused)
    assert causes["stolen"] == 3 and causes["no_wake_ups"] == 2
    assert causes["not_capable"] >= 100  # the thermal cars cannot charge
    assert all(i.reason for i in refused)

    labels = labels_at_simulator(fleet)
    assert set(labels) == {str(i.action_id) for i in sent}  # every sent vehicle got it…
    assert set(labels.values()) == {1}  # …exactly once
    refused_ids = {i.vehicle.external_id for i in refused}
    assert not SimRemoteAction.objects.filter(vehicle_id__in=refused_ids).exists()  # the refused ones nothing
    assert all(i.action.status != ActionStatus.QUEUED and i.action.remote_action_id for i in sent)

    numbers = services.counts(bulk)
    assert numbers["refused"] == len(refused) and numbers["queued"] == 0
    assert sum(numbers[k] for k in services.COUNT_KEYS if k != "already_done") == 500


def test_the_dry_run_forecasts_exactly_what_the_real_run_then_refuses(sim_fleet, make_member, drive, settings):
    fleet = sim_fleet("Dry run", 40, seed=9)
    callback = fleet.callbacks.get()
    able = [v for v in fleet.vehicles.order_by("vin") if v.motorization == "Electric" and "remote" in v.capabilities]
    mark_stolen(able[0], callback)
    mark_wake_ups_spent(able[1], callback)
    operator = make_member("olga", Role.OPERATOR)
    # The vendor's daily budget leaves room for 12 more commands today.
    settings.BULK_VENDOR_DAY_LIMIT = RemoteAction.objects.count() + 12

    draft = services.draft(by=operator, command=CHARGE, selection=Selection.FLEET, fleet=fleet)
    forecast = services.forecast(command=draft.command, by=operator, vehicles=draft.vehicles, organisation=draft.organisation)
    assert forecast.total == 40 and forecast.to_send == 12
    assert {"stolen", "no_wake_ups", "not_capable", "rate_limit"} <= set(forecast.refused)
    assert not BulkRequest.objects.exists() and not RemoteAction.objects.filter(remote_type=RemoteType.CHARGING).exists()

    bulk = drive(services.create_bulk(by=operator, draft=draft))

    refused = Counter(bulk.items.filter(state=ItemState.REFUSED).values_list("cause", flat=True))
    assert dict(refused) == forecast.refused
    assert bulk.items.filter(state=ItemState.DISPATCHED).count() == forecast.to_send
    assert forecast.seconds > 0 and forecast.duration_words


def test_cancel_stops_what_was_not_sent(sim_fleet, operator, settings, monkeypatch):
    settings.BULK_DISPATCH_CHUNK = 10
    fleet = sim_fleet("Cancel", 40, seed=13)
    _, bulk = new_bulk(operator, fleet, HORN)
    assert services.expand(bulk, deadline=time.monotonic() + 30)
    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.DISPATCHING
    # First chunk: created and sent. Second: created, not yet claimed by a submitting thread.
    services.dispatch(bulk, deadline=time.monotonic() + 30, chunks=1)
    monkeypatch.setattr(services, "Submitter", Holding)
    services.dispatch(bulk, deadline=time.monotonic() + 30, chunks=1)
    sent_before = labels_at_simulator(fleet)
    assert len(sent_before) == 10
    assert RemoteAction.objects.filter(bulk_item__bulk=bulk, status=ActionStatus.QUEUED).count() == 10

    waiting = bulk.items.filter(state=ItemState.WAITING).count()
    assert waiting >= 15  # 40 vehicles, a few refused, 20 dispatched

    done = services.cancel(bulk, by=operator)
    monkeypatch.undo()

    assert done == {"items": waiting, "actions": 10}
    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.CANCELLED
    assert services.run(bulk.pk) == "not claimed"  # a cancelled bulk does nothing more
    from remotes.services import submit_remote_action

    for action in RemoteAction.objects.filter(bulk_item__bulk=bulk, status=ActionStatus.CANCELLED):
        assert submit_remote_action(action_id=action.pk).startswith("not claimed")  # a late submit task is a no-op
    assert labels_at_simulator(fleet) == sent_before  # nothing more reached the vendor
    numbers = services.counts(bulk)
    assert numbers["cancelled"] == waiting + 10 and numbers["queued"] == 0


def test_cancel_ends_the_actions_created_for_sending_that_no_thread_has_posted_yet(sim_fleet, operator):
    fleet = sim_fleet("Cancel in flight", 8, seed=19)
    _, bulk = new_bulk(operator, fleet, HORN)
    assert services.expand(bulk, deadline=time.monotonic() + 30)
    claimed, actions = services._create_batch(bulk, 20, command=services.Command.from_dict(HORN), by=operator)
    assert claimed == bulk.items.count() and actions
    assert all(a.status == ActionStatus.SUBMITTING for a in actions)  # created claimed, handed to the threads next
    services.cancel(bulk, by=operator)  # the person cancels before any thread took one

    submitter = services.Submitter(services._client(1), 1, still_wanted=lambda: BulkRequest.objects.filter(
        pk=bulk.pk, status=BulkStatus.DISPATCHING).exists())
    submitter.put(actions)
    outcomes = submitter.close()

    assert outcomes == {"cancelled": len(actions)}
    assert labels_at_simulator(fleet) == Counter()  # none reached the vendor
    for action in RemoteAction.objects.filter(pk__in=[a.pk for a in actions]):
        assert action.status == ActionStatus.CANCELLED and action.maybe_sent_at is None
        assert [s.status for s in action.steps.all()] == [ActionStatus.QUEUED, ActionStatus.CANCELLED]
    assert services.counts(bulk)["cancelled"] == bulk.items.count()


def test_the_first_commands_leave_before_the_whole_selection_is_checked(sim_fleet, operator, settings):
    settings.BULK_CHUNK = 10
    fleet = sim_fleet("Early start", 30, seed=23)
    _, bulk = new_bulk(operator, fleet, HORN)

    # Two rounds of the dispatcher: one chunk of the selection checked, its commands sent.
    services.dispatch(bulk, deadline=time.monotonic() + 30, chunks=2)

    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.EXPANDING and bulk.items.count() == 10  # 20 vehicles not even looked at yet
    sent = labels_at_simulator(fleet)
    assert sent and set(sent.values()) == {1}
    assert set(sent) == {str(pk) for pk in bulk.items.exclude(action=None).values_list("action_id", flat=True)}


def test_a_lane_sends_what_is_checked_while_the_bulk_is_still_being_checked_and_checks_nothing_itself(sim_fleet, operator, settings):
    settings.BULK_CHUNK = 10
    fleet = sim_fleet("Lane early", 30, seed=29)
    _, bulk = new_bulk(operator, fleet, HORN)
    assert not services.expand(bulk, deadline=time.monotonic() + 30, chunks=1)  # the bulk's own run checked one chunk
    BulkLane.objects.create(bulk=bulk, number=1)  # as open_lanes makes it

    assert services.run_lane(bulk.pk, 1, slice_seconds=1.0) == "re-armed"  # its slice ran out waiting for more

    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.EXPANDING and bulk.items.count() == 10  # the lane checked no vehicle itself
    dispatched = {str(pk) for pk in bulk.items.exclude(action=None).values_list("action_id", flat=True)}
    assert dispatched and labels_at_simulator(fleet) == Counter(dict.fromkeys(dispatched, 1))


def test_retry_failed_sends_again_only_to_the_vehicles_that_failed(sim_fleet, operator, drive, outcomes_in):
    fleet = sim_fleet("Retry", 12, seed=17)
    failing = list(fleet.vehicles.order_by("vin")[3:6])
    SimVehicle.objects.filter(vin__in=[v.vin for v in failing]).update(next_failure=FailureCause.VEHICLE_CONNECTION_TIMEOUT)
    _, bulk = new_bulk(operator, fleet, HORN)
    bulk = drive(bulk)
    outcomes_in(RemoteAction.objects.filter(bulk_item__bulk=bulk))
    assert services.settle(bulk.pk)
    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.FINISHED
    numbers = services.counts(bulk)
    assert numbers["failed"] == 3 and numbers["success"] == 9

    retry = drive(services.retry_failed(bulk, by=operator))

    assert retry.retry_of_id == bulk.pk and retry.selection == Selection.VINS
    assert sorted(retry.items.values_list("vehicle__vin", flat=True)) == sorted(v.vin for v in failing)
    per_vehicle = Counter(SimRemoteAction.objects.filter(fleet_id=fleet.external_id).values_list("vehicle__vin", flat=True))
    assert {vin for vin, n in per_vehicle.items() if n == 2} == {v.vin for v in failing}
    assert sum(per_vehicle.values()) == 12 + 3


def test_a_finished_bulk_tells_its_requester_by_mail_once(sim_fleet, make_member, drive, outcomes_in):
    fleet = sim_fleet("Mail", 4, seed=19)
    person = make_member("mia", Role.OPERATOR, email="mia@example.com")
    _, bulk = new_bulk(person, fleet, HORN)
    bulk = drive(bulk)
    outcomes_in(RemoteAction.objects.filter(bulk_item__bulk=bulk))
    assert services.settle(bulk.pk)

    assert services.notify_finished(bulk.pk) == 1
    assert services.notify_finished(bulk.pk) == 0  # once
    assert mail.outbox[-1].to == ["mia@example.com"]
    assert f"/bulk/{bulk.pk}/" in mail.outbox[-1].body and "Success: 4" in mail.outbox[-1].body
    assert list(services.unseen_notices(person)) == [BulkRequest.objects.get(pk=bulk.pk)]


def test_a_bulk_under_four_eyes_waits_for_approval_and_tells_each_approver_once(sim_fleet, operator, make_member, drive, organisation):
    organisation.approval_required_for = ["immobilization"]
    organisation.save()
    fleet = sim_fleet("Four eyes", 5, seed=37)
    make_member("ann", Role.APPROVER, email="ann@example.com")
    operator.email = "op@example.com"
    operator.save()
    command = {"immobilization": {"activate": True}}

    _, bulk = new_bulk(operator, fleet, command, reason="rentals overdue")
    bulk = drive(bulk)

    numbers = services.counts(bulk)
    assert numbers["awaiting_approval"] == 5 and numbers["queued"] == 0 and numbers["submitted"] == 0
    assert not SimRemoteAction.objects.filter(fleet_id=fleet.external_id).exists()  # nothing sent before approval
    assert bulk.approvers_notified_at is not None
    mail.outbox.clear()
    assert services.notify_approvers(bulk.pk) == 1  # one e-mail for the five commands, to the other approver
    assert mail.outbox[0].to == ["ann@example.com"] and "5 vehicle(s)" in mail.outbox[0].subject


def test_two_dispatchers_of_one_bulk_share_it_and_send_each_command_once(sim_fleet, operator, settings):
    """A bulk's own run and one of its lanes (what a second q2 worker or cluster runs) dispatch at
    the same time, in two threads with their own database connections: each vehicle gets its
    command exactly once, and both dispatchers did part of the work."""
    import threading

    from django.db import connection

    from bulk.models import BulkLane

    settings.BULK_LANES = 2
    settings.BULK_CREATE_BATCH = 5
    settings.BULK_DISPATCH_CHUNK = 20
    fleet = sim_fleet("Two lanes", 120, seed=21)
    _, bulk = new_bulk(operator, fleet, HORN)
    while BulkRequest.objects.get(pk=bulk.pk).status == BulkStatus.EXPANDING:  # expansion opens the lane
        services.expand(BulkRequest.objects.get(pk=bulk.pk), deadline=time.monotonic() + 20)
    services.open_lanes(bulk.pk)
    assert list(BulkLane.objects.filter(bulk=bulk).values_list("number", flat=True)) == [1]

    claimed_by: dict[str, set] = {}
    real_create = services._create_batch

    def spying_create(bulk_, limit, **kw):
        claimed, queued = real_create(bulk_, limit, **kw)
        claimed_by.setdefault(threading.current_thread().name, set()).update(queued)
        return claimed, queued

    services._create_batch = spying_create
    errors = []

    def work(fn):
        try:
            for _ in range(20):
                if fn() in ("done", "nothing to dispatch"):
                    break
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    try:
        main = threading.Thread(target=work, args=(lambda: services.run(bulk.pk, slice_seconds=20),), name="main")
        lane = threading.Thread(target=work, args=(lambda: services.run_lane(bulk.pk, 1, slice_seconds=20),), name="lane")
        main.start(), lane.start()
        main.join(120), lane.join(120)
    finally:
        services._create_batch = real_create
    assert not errors

    bulk = BulkRequest.objects.get(pk=bulk.pk)
    sent = list(bulk.items.filter(state=ItemState.DISPATCHED).values_list("action_id", flat=True))
    labels = labels_at_simulator(fleet)
    assert set(labels) == {str(a) for a in sent} and set(labels.values()) == {1}  # each exactly once
    assert not claimed_by.get("main", set()) & claimed_by.get("lane", set())
    if connection.vendor == "postgresql":  # SKIP LOCKED: both take their share (SQLite has one writer at a time)
        assert claimed_by.get("main") and claimed_by.get("lane")
