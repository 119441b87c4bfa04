"""Time the console's pages at fleet scale: `manage.py bench_console` (docs/benchmarks.md, "Console").

Fills THE CURRENT DATABASE (use a throw-away one: DATABASE_URL=postgres://…/fp_console_bench) with
an organisation of N vehicles with status snapshots, M actions over 30 days, D deliveries of two
events each, plus a second organisation, then times each console page (best of three) with its
query count and database time. Rows are copied in SQL from one template row (generate_series), so
a million actions take about a minute; a second run reuses them. PostgreSQL only.
"""

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, setup_test_environment
from django.utils import timezone

PAGES = ["/", "/actions/", "/actions/?status=failed&since=24h", "/actions/?cause=DoorsOpen", "/map/positions.json", "/callbacks/"]


def _columns(table):
    with connection.cursor() as cursor:
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", [table])
        return [r[0] for r in cursor.fetchall()]


def _clone(table, template_pk, n, overrides):
    """INSERT n copies of one row, some columns computed from g = 1..n."""
    names = [c for c in _columns(table) if c != "id" or "id" in overrides]
    select = ", ".join(overrides.get(c, f"t.{c}") for c in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {select} "  # noqa: S608 — our own table and column names
            f"FROM (SELECT * FROM {table} WHERE id = '{template_pk}') t, generate_series(1, {int(n)}) g"  # our own row's id
        )


class Command(BaseCommand):
    help = "Fill a throw-away PostgreSQL database at fleet scale and time the console's pages."

    def add_arguments(self, parser):
        parser.add_argument("--vehicles", type=int, default=50_000)
        parser.add_argument("--actions", type=int, default=1_000_000)
        parser.add_argument("--deliveries", type=int, default=500_000)

    def handle(self, *args, vehicles, actions, deliveries, **options):
        if connection.vendor != "postgresql":
            raise CommandError("PostgreSQL only (generate_series); point DATABASE_URL at a throw-away database.")
        from vehicles.models import Vehicle

        if not Vehicle.objects.filter(vin__startswith="VF3BENCH").exists():
            self._seed(vehicles, actions, deliveries)
        setup_test_environment()
        self._measure()

    def _seed(self, n_vehicles, n_actions, n_deliveries):
        from django.contrib.auth.models import User

        from accounts.models import Membership, Organisation, Role
        from callbacks.models import Callback
        from remotes.models import RemoteAction, RemoteEvent, WebhookDelivery
        from vehicles.models import Fleet, Vehicle, VehicleStatus

        org = Organisation.objects.create(name="Bench", slug="bench")
        other = Organisation.objects.create(name="Bench other", slug="bench-other")
        user = User.objects.create_user("bench", password="bench-pw-1")
        Membership.objects.create(user=user, organisation=org, role=Role.VIEWER)
        fleets = [Fleet.objects.create(external_id=f"bench{i}", name=f"Bench {i}", organisation=org if i < 4 else other) for i in range(5)]
        callbacks = [
            Callback.objects.create(fleet=f, external_id=f"benchcb{i}", target="http://127.0.0.1:9/", remote_types=["Horn"], label=f"bench {i}")
            for i, f in enumerate(fleets)
        ]
        now = timezone.now()
        started = time.time()
        Vehicle.objects.bulk_create(
            (Vehicle(fleet=fleets[i % 5], external_id=f"bench{i}", vin=f"VF3BENCH{i:09d}", brand="Peugeot", motorization="Electric") for i in range(n_vehicles)),
            batch_size=5000,
        )
        ids = list(Vehicle.objects.filter(vin__startswith="VF3BENCH").order_by("pk").values_list("pk", flat=True))
        VehicleStatus.objects.bulk_create(
            (
                VehicleStatus(
                    vehicle_id=pk, fetched_at=now, captured_at=now - dt.timedelta(minutes=(i * 37) % 40000), energy_level=(i * 7) % 100,
                    charging_status="InProgress" if i % 9 == 0 else "Stopped", plugged=i % 3 == 0,
                    latitude=42 + (i % 700) / 100, longitude=-1 + (i // 700) / 10,
                )
                for i, pk in enumerate(ids)
            ),
            batch_size=5000,
        )
        self.stdout.write(f"{n_vehicles} vehicles and snapshots: {time.time() - started:.0f} s")
        template = RemoteAction.objects.create(
            vehicle_id=ids[0], callback=callbacks[0], remote_type="Horn", command={"horn": {"state": "Activated"}}, status="success", source="web", expires_at=now,
        )
        span = len(ids)
        started = time.time()
        # Finished actions over 30 days (a third failed or refused), a few still open in the last hour.
        _clone("remotes_remoteaction", str(template.pk), n_actions, {
            "id": "gen_random_uuid()",
            "vehicle_id": f"{ids[0]} + (g::bigint * 7919) % {span}",
            "callback_id": f"{callbacks[0].pk} + ((g::bigint * 7919) % {span}) % 5",
            "status": "CASE WHEN g < 400 AND g % 4 = 0 THEN 'pending' WHEN g < 400 AND g % 4 = 1 THEN 'submitted' "
                      "ELSE (ARRAY['success','success','success','success','failed','failed','rejected','error','already_done'])[1 + g % 9] END",
            "failure_cause": "CASE WHEN g % 9 IN (4, 5) THEN (ARRAY['DoorsOpen','VehicleInUse','VehicleConnectionTimeout','TooManyWakeUpsOverMonth'])[1 + g % 4] ELSE '' END",
            "created_at": f"now() - (g * interval '30 days' / {n_actions})",
            "submitted_at": f"now() - (g * interval '30 days' / {n_actions})",
        })
        self.stdout.write(f"{n_actions} actions: {time.time() - started:.0f} s")
        delivery = WebhookDelivery.objects.create(callback=callbacks[0], body="{}")
        started = time.time()
        _clone("callbacks_webhookdelivery", delivery.pk, n_deliveries, {
            "callback_id": f"{callbacks[0].pk} + g % 5",
            "received_at": f"now() - (g * interval '30 days' / {n_deliveries})",
            "outcome": "CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'processed' END",
        })
        RemoteEvent.objects.create(remote_action_id="bench-template", event_type="Pending", status="Accepted", event_date=now, delivery=delivery)
        events = RemoteEvent._meta.db_table
        with connection.cursor() as cursor:
            for k in (0, 1):
                cursor.execute(
                    f"INSERT INTO {events} (action_id, remote_action_id, vin, remote_type, event_type, status, failure_cause, "  # noqa: S608
                    "feedback_detail, event_date, received_at, delivery_id) "
                    f"SELECT NULL, 'bench' || d.id || '-{k}', '', '', 'Pending', 'Accepted', '', '', "
                    "d.received_at - ((d.id % 20) * interval '1 second'), d.received_at, d.id FROM callbacks_webhookdelivery d"
                )
            cursor.execute("ANALYZE")
        self.stdout.write(f"{n_deliveries} deliveries, {2 * n_deliveries} events: {time.time() - started:.0f} s")

    def _measure(self):
        from django.contrib.auth.models import User

        client = Client()
        client.force_login(User.objects.get(username="bench"))
        self.stdout.write(f"{'page':45s} queries  db ms  wall ms (best of 3)")
        for url in PAGES:
            client.get(url, secure=True)
            best = None
            for _ in range(3):
                with CaptureQueriesContext(connection) as ctx:
                    started = time.perf_counter()
                    response = client.get(url, secure=True)
                    wall = (time.perf_counter() - started) * 1000
                db = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
                if response.status_code != 200:
                    raise CommandError(f"{url} answered {response.status_code}")
                if best is None or wall < best[2]:
                    best = (len(ctx.captured_queries), db, wall)
            self.stdout.write(f"{url:45s} {best[0]:7d} {best[1]:6.0f} {best[2]:8.0f}")
