"""Submitting by the batch (a bulk request's path, over HTTP to the simulator): the single path's
rules with shared statements — created claimed and marked maybe-sent before any POST, never sent
twice, never late, a lost claim never overwritten."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from remotes import services
from remotes.models import ActionStatus, RemoteAction, Source
from simulator.models import SimRemoteAction
from stellantis.client import FleetClient
from stellantis.remotes import Command


@pytest.fixture
def batch(demo_fleet, operator):
    """Five horn commands created as a bulk request's dispatcher creates them: one transaction, claimed for sending."""
    targets = [(v, demo_fleet.callbacks.get()) for v in demo_fleet.vehicles.select_related("fleet__organisation").order_by("vin")[:5]]
    return services.create_remote_actions(
        targets=targets, command=Command.from_dict({"horn": {"state": "Activated"}}), by=operator, source=Source.API,
        enqueue=False, claimed=True,
    )


def copies(action) -> int:
    return SimRemoteAction.objects.filter(remote__label=str(action.pk)).count()


def updates_of_actions(queries) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"].startswith(f'UPDATE "{RemoteAction._meta.db_table}"'))


def test_a_batch_is_created_claimed_and_marked_maybe_sent_before_any_post(batch, settings):
    for row in RemoteAction.objects.filter(pk__in=[a.pk for a in batch]):
        assert row.status == ActionStatus.SUBMITTING and row.maybe_sent_at is not None and row.submit_attempts == 1
        assert [s.status for s in row.steps.all()] == [ActionStatus.QUEUED]  # people and partners see it queued
    assert sum(copies(a) for a in batch) == 0

    # The dispatcher dies here. Its claims are live: nobody takes them over…
    assert services.submit_remote_action(action_id=batch[0].pk).startswith("not claimed")
    # …until they go stale; then the action is looked up by its label, not posted blind.
    RemoteAction.objects.filter(pk=batch[0].pk).update(claimed_at=timezone.now() - dt.timedelta(seconds=settings.REMOTE_SUBMIT_CLAIM_TIMEOUT + 1))
    assert services.submit_remote_action(action_id=batch[0].pk) == "retry scheduled"
    assert copies(batch[0]) == 0


def test_the_accepted_ones_are_written_together_with_their_ids_and_steps(batch):
    client = FleetClient.from_settings()
    claimed = batch
    accepted = []
    for action in claimed:
        outcome, remote_action_id = services.send_claimed(action, client)
        assert outcome == "submitted"
        accepted.append((action, remote_action_id))

    with CaptureQueriesContext(connection) as queries:
        assert services.record_submitted(accepted) == 5
    assert updates_of_actions(queries) == 1

    for action, remote_action_id in accepted:
        action.refresh_from_db()
        assert action.status == ActionStatus.SUBMITTED and action.maybe_sent_at is None
        assert action.remote_action_id == remote_action_id == SimRemoteAction.objects.get(remote__label=str(action.pk)).id
        assert [s.status for s in action.steps.all()] == [ActionStatus.QUEUED, ActionStatus.SUBMITTED]


def test_one_past_its_time_to_live_when_its_turn_comes_never_leaves(batch):
    claimed = batch
    late = claimed[0]
    late.expires_at = timezone.now() - dt.timedelta(seconds=1)  # it waited in the hand-over queue too long
    RemoteAction.objects.filter(pk=late.pk).update(expires_at=late.expires_at)

    assert services.send_claimed(late, FleetClient.from_settings()) == ("expired", None)

    late.refresh_from_db()
    assert late.status == ActionStatus.EXPIRED and late.maybe_sent_at is None
    assert "time to live ran out" in late.steps.last().detail
    assert copies(late) == 0


def test_a_claim_that_waited_too_long_for_its_turn_is_claimed_again_and_sent_once(batch, settings):
    claimed = batch
    slow = claimed[0]
    slow.claimed_at = timezone.now() - dt.timedelta(seconds=settings.REMOTE_SUBMIT_CLAIM_TIMEOUT / 3 + 1)
    RemoteAction.objects.filter(pk=slow.pk).update(claimed_at=slow.claimed_at)

    assert services.send_claimed(slow, FleetClient.from_settings()) == ("submitted", None)  # the single path wrote it

    slow.refresh_from_db()
    assert slow.status == ActionStatus.SUBMITTED and slow.submit_attempts == 1
    assert copies(slow) == 1


def test_a_claim_lost_before_the_write_is_not_overwritten(batch, settings):
    client = FleetClient.from_settings()
    claimed = batch[:3]
    accepted = [(a, services.send_claimed(a, client)[1]) for a in claimed]
    # The write came too late for one: the sweep's task took it over and found it by label meanwhile.
    taken = claimed[1]
    RemoteAction.objects.filter(pk=taken.pk).update(claimed_at=timezone.now() - dt.timedelta(seconds=settings.REMOTE_SUBMIT_CLAIM_TIMEOUT + 1))
    assert services.submit_remote_action(action_id=taken.pk) == "found by label"

    assert services.record_submitted(accepted) == 2

    taken.refresh_from_db()
    assert [s.status for s in taken.steps.all()] == [ActionStatus.QUEUED, ActionStatus.SUBMITTED]  # one step, not two
    assert "Found at Stellantis by its label" in taken.steps.last().detail
    assert all(copies(a) == 1 for a in claimed)
