"""Submitting to Stellantis (the simulator, over HTTP): at most once, never late, never lost."""

import datetime as dt

import pytest
from django.utils import timezone

from core.models import VendorBudget
from core.ratelimit import DatabasePacer
from fleetportal.testing import FaultyProxy, wait_for
from remotes import services
from remotes.models import ActionStatus, RemoteAction, Source
from simulator.models import SimRemoteAction
from simulator.testing import a_day_starting_now
from stellantis.client import ClientConfig, FleetClient
from stellantis.remotes import Command


@pytest.fixture
def action(demo_fleet, operator):
    vehicle = demo_fleet.vehicles.order_by("vin").first()
    return services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=operator, source=Source.API)


@pytest.fixture
def proxy(stack):
    with FaultyProxy(stack.url) as p:
        yield p


def proxied_client(proxy, settings, read_timeout=5.0):
    return FleetClient(ClientConfig(base_url=f"{proxy.url}/{settings.SIMULATOR_PATH}", client_id="t", timeout=(2.0, read_timeout), user=settings.STELLANTIS_USER, password=settings.STELLANTIS_PASSWORD))


def vendor_copies(action):
    return SimRemoteAction.objects.filter(remote__label=str(action.pk)).count()


def test_it_posts_once_and_records_the_remote_action_id(action):
    assert services.submit_remote_action(action_id=action.pk) == "submitted"

    action.refresh_from_db()
    assert action.status == ActionStatus.SUBMITTED
    assert action.remote_action_id == SimRemoteAction.objects.get().id
    assert vendor_copies(action) == 1
    assert [s.status for s in action.steps.all()] == [ActionStatus.QUEUED, ActionStatus.SUBMITTED]


def test_a_redelivered_task_does_not_post_again(action, proxy, settings):
    client = proxied_client(proxy, settings)
    services.submit_remote_action(action_id=action.pk, client=client)
    again = services.submit_remote_action(action_id=action.pk, client=client)

    assert again.startswith("not claimed")
    assert proxy.count("POST") == 1
    assert vendor_copies(action) == 1


def test_a_lost_answer_is_resolved_by_label_without_a_second_post(action, proxy, settings):
    client = proxied_client(proxy, settings)
    proxy.fail("POST", "lose_answer")  # the simulator creates the action, we get a 502

    assert services.submit_remote_action(action_id=action.pk, client=client) == "retry scheduled"
    action.refresh_from_db()
    assert action.status == ActionStatus.QUEUED and "Stellantis failed" in action.error

    assert services.submit_remote_action(action_id=action.pk, client=client) == "found by label"
    action.refresh_from_db()
    assert action.status == ActionStatus.SUBMITTED
    assert proxy.count("POST") == 1
    assert vendor_copies(action) == 1


def test_a_read_timeout_is_treated_as_unknown_and_looked_up(action, proxy, settings):
    client = proxied_client(proxy, settings, read_timeout=0.5)
    proxy.hang_seconds = 1.5
    proxy.fail("POST", "hang")

    assert services.submit_remote_action(action_id=action.pk, client=client) == "retry scheduled"
    assert services.submit_remote_action(action_id=action.pk, client=client) == "found by label"
    assert proxy.count("POST") == 1
    assert vendor_copies(action) == 1


def test_a_5xx_the_vendor_never_acted_on_is_looked_up_through_the_window_then_posted_once_more(action, proxy, settings):
    client = proxied_client(proxy, settings)
    proxy.fail("POST", "fail_before")  # 503: nothing tells us the vendor did not act

    assert services.submit_remote_action(action_id=action.pk, client=client) == "retry scheduled"
    assert services.submit_remote_action(action_id=action.pk, client=client) == "retry scheduled"  # inside the window: look only
    assert proxy.count("POST") == 1 and vendor_copies(action) == 0

    settings.REMOTE_LOOKUP_WINDOW = 0  # the window has passed: a horn is safe to send again
    assert services.submit_remote_action(action_id=action.pk, client=client) == "submitted"
    assert proxy.count("POST") == 2
    assert vendor_copies(action) == 1


def test_a_slow_vendor_never_gets_the_command_twice(action, proxy, settings):
    """The vendor loses our POST's answer and acts on the command a while later."""
    client = proxied_client(proxy, settings)
    settings.REMOTE_LOOKUP_WINDOW = 30
    proxy.late_seconds = 1.5
    proxy.fail("POST", "act_late")

    assert services.submit_remote_action(action_id=action.pk, client=client) == "retry scheduled"
    # The retry comes before the vendor has acted: not listed yet, and not sent again.
    assert services.submit_remote_action(action_id=action.pk, client=client) == "retry scheduled"
    action.refresh_from_db()
    assert action.status == ActionStatus.QUEUED and "looking again before any resend" in action.error
    assert proxy.count("POST") == 1

    wait_for(lambda: vendor_copies(action) == 1, timeout=10, message="the vendor to act late")
    assert services.submit_remote_action(action_id=action.pk, client=client) == "found by label"
    action.refresh_from_db()
    assert action.status == ActionStatus.SUBMITTED
    assert proxy.count("POST") == 1 and vendor_copies(action) == 1


def test_a_dangerous_command_with_no_clear_answer_is_never_resent_by_itself(demo_fleet, operator, proxy, settings):
    vehicle = demo_fleet.vehicles.order_by("vin").first()
    unlock = services.request_remote(vehicle=vehicle, command={"door": {"state": "Unlocked"}}, by=operator, source=Source.API, reason="driver locked out")
    client = proxied_client(proxy, settings)
    settings.REMOTE_LOOKUP_WINDOW = 0
    proxy.fail("POST", "fail_before")

    assert services.submit_remote_action(action_id=unlock.pk, client=client) == "retry scheduled"
    assert services.submit_remote_action(action_id=unlock.pk, client=client) == "outcome unknown"

    unlock.refresh_from_db()
    assert unlock.status == ActionStatus.UNKNOWN and unlock.is_final
    assert "not sent again by itself" in unlock.error and "Check the vehicle" in unlock.error
    assert unlock.steps.last().status == ActionStatus.UNKNOWN
    assert proxy.count("POST") == 1 and vendor_copies(unlock) == 0
    assert services.submit_remote_action(action_id=unlock.pk, client=client).startswith("not claimed")  # nothing more by itself


def test_a_worker_killed_during_the_post_leaves_the_action_to_be_looked_up(action, settings):
    class Killed(BaseException):
        pass

    class DiesAfterPosting(FleetClient):
        def send_remote(self, *args, **kwargs):
            super().send_remote(*args, **kwargs)
            raise Killed  # the process is gone before it could write the answer down

    with pytest.raises(Killed):
        services.submit_remote_action(action_id=action.pk, client=DiesAfterPosting(ClientConfig.from_settings()))
    action.refresh_from_db()
    assert action.status == ActionStatus.SUBMITTING and action.maybe_sent_at is not None
    assert vendor_copies(action) == 1

    RemoteAction.objects.filter(pk=action.pk).update(claimed_at=timezone.now() - dt.timedelta(seconds=settings.REMOTE_SUBMIT_CLAIM_TIMEOUT + 1))
    assert services.submit_remote_action(action_id=action.pk) == "found by label"
    assert vendor_copies(action) == 1


def test_a_worker_that_died_after_posting_is_recovered_by_label(action, settings):
    # First worker claimed, marked the action maybe-sent and posted, then died before writing anything down.
    assert services._claim(action.pk)
    client = FleetClient.from_settings()
    fleet, vehicle, cb = action.vehicle.fleet.external_id, action.vehicle.external_id, action.callback.external_id
    RemoteAction.objects.filter(pk=action.pk).update(maybe_sent_at=timezone.now())
    client.send_remote(fleet, vehicle, cb, Command.from_dict(action.command).as_remote(action.label))
    RemoteAction.objects.filter(pk=action.pk).update(claimed_at=timezone.now() - dt.timedelta(seconds=settings.REMOTE_SUBMIT_CLAIM_TIMEOUT + 1))

    assert services.submit_remote_action(action_id=action.pk) == "found by label"
    action.refresh_from_db()
    assert action.status == ActionStatus.SUBMITTED
    assert vendor_copies(action) == 1


def test_a_live_claim_is_not_taken_over(action):
    assert services._claim(action.pk)
    assert services.submit_remote_action(action_id=action.pk).startswith("not claimed")
    assert vendor_copies(action) == 0


def test_an_action_past_its_time_to_live_is_expired_never_sent(action):
    RemoteAction.objects.filter(pk=action.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert services.submit_remote_action(action_id=action.pk) == "expired"
    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED
    step = action.steps.last()
    assert step.status == ActionStatus.EXPIRED and "time to live ran out" in step.detail
    assert vendor_copies(action) == 0


def test_a_vendor_refusal_is_final_and_says_why(action):
    action.callback.external_id = "0123abcd"  # a callback the vendor never heard of
    action.callback.save()

    assert services.submit_remote_action(action_id=action.pk) == "rejected"
    action.refresh_from_db()
    assert action.status == ActionStatus.REJECTED
    assert action.error and "support ref" in action.error  # the vendor's message and what its support asks for
    assert vendor_copies(action) == 0


def test_it_gives_up_after_the_last_backoff_with_the_reason(action, settings):
    settings.STELLANTIS_API_BASE = "http://127.0.0.1:9/nowhere"  # nothing listens there
    for _ in settings.REMOTE_SUBMIT_BACKOFF:
        assert services.submit_remote_action(action_id=action.pk) == "retry scheduled"
    assert services.submit_remote_action(action_id=action.pk) == "gave up"
    action.refresh_from_db()
    assert action.status == ActionStatus.ERROR
    assert "unreachable" in action.error


# --- rate limits and time to live at the moment of sending -------------------------------------


def paced_client(proxy, settings, pacer, max_wait=3.0):
    config = ClientConfig(base_url=f"{proxy.url}/{settings.SIMULATOR_PATH}", client_id="t", timeout=(2.0, 5.0), rate_limit_max_wait=max_wait, user=settings.STELLANTIS_USER, password=settings.STELLANTIS_PASSWORD)
    return FleetClient(config, pacer=pacer)


def test_a_command_held_by_the_rate_limit_past_its_time_to_live_never_leaves(action, proxy, settings):
    pacer = DatabasePacer(name=f"ttl-{action.pk}")
    pacer.hold(1.5, reason="burst window spent")  # the client waits this out before posting…
    RemoteAction.objects.filter(pk=action.pk).update(expires_at=timezone.now() + dt.timedelta(seconds=0.5))  # …too long

    assert services.submit_remote_action(action_id=action.pk, client=paced_client(proxy, settings, pacer)) == "expired"

    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED and action.maybe_sent_at is None
    assert "time to live ran out" in action.steps.last().detail
    assert proxy.count("POST") == 0 and vendor_copies(action) == 0


def test_a_spent_rate_limit_delays_the_command_without_a_label_look_up(action, proxy, settings):
    a_day_starting_now(settings, limit=1, seconds=600)
    pacer = DatabasePacer(name=f"day-{action.pk}")
    client = paced_client(proxy, settings, pacer)
    client.fleet(action.vehicle.fleet.external_id)  # spends the simulated day: the answer says 0 left

    assert services.submit_remote_action(action_id=action.pk, client=client) == "retry scheduled"
    action.refresh_from_db()
    assert action.status == ActionStatus.QUEUED and action.maybe_sent_at is None
    assert "HTTP 429" in action.error and action.submit_attempts == 0  # a wait, not a failed attempt
    assert proxy.count("POST") == 1  # one 429, then every worker holds off until the reset

    settings.SIMULATOR_RATE_LIMIT_PER_DAY = 0  # the day has turned
    pacer.hold(0, reason="reset")
    VendorBudget.objects.filter(name=pacer.name).delete()
    assert services.submit_remote_action(action_id=action.pk, client=client) == "submitted"
    assert proxy.count("GET", "/remotes") == 0  # a 429 is no doubt: nothing to look up
    assert proxy.count("POST") == 2 and vendor_copies(action) == 1
