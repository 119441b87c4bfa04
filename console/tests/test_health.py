"""Callback health figures (remotes.health) against known deliveries, and on the callbacks page."""

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callbacks.models import Callback
from remotes import health
from remotes.models import ActionStatus, WebhookDelivery

MIN = dt.timedelta(minutes=1)
H = dt.timedelta(hours=1)


def test_it_gives_the_median_lag_between_event_date_and_receipt(make_fleet, make_callback, delivery):
    cb = make_callback(make_fleet())
    delivery(cb, ago=2 * H, lags=(1.0, 3.0))
    delivery(cb, ago=1 * H, lags=(2.0, 10.0, 60.0))
    delivery(cb, ago=30 * H, lags=(500.0,))  # outside the 24 h window

    h = health.for_callbacks(Callback.objects.all())[cb.pk]

    assert h.median_lag == dt.timedelta(seconds=3)
    assert h.lag_events == 5


def test_it_counts_deliveries_and_failures_per_hour(make_fleet, make_callback, delivery):
    cb, other = make_callback(make_fleet()), make_callback(make_fleet())
    now = timezone.now()
    this_hour = (now - now.replace(minute=0, second=0, microsecond=0)) / 2  # well inside the current hour
    for _ in range(3):
        delivery(cb, ago=this_hour)
    delivery(cb, ago=this_hour, outcome=WebhookDelivery.Outcome.FAILED)
    delivery(cb, ago=3 * H, outcome=WebhookDelivery.Outcome.PARTIAL)
    delivery(cb, ago=25 * H)  # outside the window
    delivery(other, ago=this_hour)

    h = health.for_callbacks(Callback.objects.all(), now=now)[cb.pk]

    assert (h.deliveries, h.failures) == (5, 2)
    busy = [(slot.deliveries, slot.failures) for slot in h.hours if slot.deliveries]
    assert sorted(busy) == [(1, 1), (4, 1)]
    assert h.hours[-1].start <= now < h.hours[-1].start + H  # the current hour is the last
    assert h.last_delivery_at is not None and now - h.last_delivery_at <= H


def test_a_callback_quiet_while_commands_wait_is_flagged(make_fleet, make_vehicle, make_callback, action, delivery):
    fleet = make_fleet()
    vehicle = make_vehicle(fleet=fleet)
    quiet, talking, idle = make_callback(fleet), make_callback(fleet), make_callback(fleet)
    delivery(quiet, ago=2 * H)
    action(vehicle, quiet, status=ActionStatus.SUBMITTED, submitted_at=timezone.now() - 30 * MIN)
    action(vehicle, quiet, status=ActionStatus.PENDING, submitted_at=timezone.now() - 2 * MIN)  # too recent to say
    delivery(talking, ago=1 * MIN)
    action(vehicle, talking, status=ActionStatus.PENDING, submitted_at=timezone.now() - 30 * MIN)
    delivery(idle, ago=5 * H)  # silent, but nothing waits: fine

    figures = health.for_callbacks(Callback.objects.all())

    assert (figures[quiet.pk].quiet, figures[quiet.pk].waiting, figures[quiet.pk].never_done) == (True, 2, 1)
    assert "Quiet while commands are pending: 1 command sent more than 10 minutes ago" in figures[quiet.pk].warning
    assert figures[talking.pk].quiet is False and figures[talking.pk].never_done == 1
    assert figures[idle.pk].quiet is False and figures[idle.pk].warning == ""


def test_the_callbacks_page_shows_each_callbacks_health_in_constant_queries(
    client, make_member, make_fleet, make_vehicle, make_callback, action, delivery
):
    from accounts.models import Role

    fleet = make_fleet()
    vehicle = make_vehicle(fleet=fleet)
    cb = make_callback(fleet, label="main hook")
    delivery(cb, ago=2 * H, lags=(4.0,))
    action(vehicle, cb, status=ActionStatus.SUBMITTED, submitted_at=timezone.now() - 30 * MIN)
    client.force_login(make_member("ada", Role.ADMIN))

    html = client.get("/callbacks/").content.decode()
    assert 'id="quiet-callbacks"' in html and "main hook" in html
    assert '<span class="cb-lag">4.0 s</span>' in html
    assert '<span class="cb-never-done">1</span>' in html

    with CaptureQueriesContext(connection) as few:
        client.get("/callbacks/")
    for _ in range(5):
        more = make_callback(fleet)
        delivery(more, ago=H, lags=(1.0, 2.0))
        action(vehicle, more, status=ActionStatus.PENDING, submitted_at=timezone.now() - H)
    with CaptureQueriesContext(connection) as many:
        client.get("/callbacks/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_another_organisations_callbacks_are_not_on_the_page(client, make_member, other_org, delivery):
    from accounts.models import Role

    delivery(other_org["callback"], ago=H, lags=(1.0,))
    client.force_login(make_member("ada", Role.ADMIN))
    html = client.get("/callbacks/").content.decode()
    assert other_org["callback"].label not in html
    assert "cb-health" not in html
