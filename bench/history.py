"""History lists at scale: the admin's remote-event, remote-action, webhook-delivery and audit
changelists over 1,000,000 events, 270,000 actions, 1,000,000 deliveries and 300,000 audit
entries: queries and time of the first page, a status filter and a sort by date.

`make bench-history` (docs/benchmarks.md, "History lists"). Its own PostgreSQL database,
`BENCH_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/fleetportal_bench_history;
created if missing, its name must contain `bench`): migrated, then seeded once with set-based
SQL (INSERT … SELECT generate_series) and reused while the counts match (`--reseed` to start
again). Two organisations: "big" owns every row above, "small" a fleet of 10 vehicles with 10
actions (a member of a small organisation looking through a big shared table). Each page goes
through the whole Django stack (test client, middleware, admin), warmed once, then counted
(queries) and timed (median of BENCH_HISTORY_REPEAT, default 5), as a superuser and as the
big organisation's admin (scoped by ScopedAdmin). `--explain` prints the plan of each page's
main query.
"""

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bench_history")
VEHICLES, ACTIONS, EVENTS, DELIVERIES, AUDIT = 10_000, 270_000, 1_000_000, 1_000_000, 300_000
REPEAT = int(os.environ.get("BENCH_HISTORY_REPEAT", "5"))


from bench_db import setup_django  # noqa: E402  (bench/ is the script's own folder, first on sys.path)

setup_django(DB_URL, "bench-history")

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Membership, Organisation, Role  # noqa: E402
from callbacks.models import Callback  # noqa: E402
from remotes.models import RemoteEvent  # noqa: E402
from stellantis.vocabulary import RemoteType  # noqa: E402
from vehicles.models import Fleet  # noqa: E402

T0 = "timestamptz '2026-08-01 00:00:00+00'"
# A neutral value per type, for NOT NULL columns without a database default that other work
# adds to these tables after this script was written (Django keeps defaults in Python).
NEUTRAL = {"text": "''", "character varying": "''", "boolean": "false", "integer": "0", "bigint": "0", "smallint": "0",
           "jsonb": "'{}'::jsonb", "timestamp with time zone": "now()", "double precision": "0", "numeric": "0"}


def complete(cur, sql: str) -> str:
    """`sql` (one INSERT INTO table (columns) SELECT …) with the table's other required columns added."""
    head, _, rest = sql.partition("(")
    table = head.split()[-1]
    columns, _, tail = rest.partition(")")
    given = {c.strip() for c in columns.split(",")}
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'NO' "
        "AND column_default IS NULL ORDER BY ordinal_position", [table],
    )
    extra = [(name, NEUTRAL[kind]) for name, kind in cur.fetchall() if name not in given and name != "id"]
    if not extra:
        return sql
    select_at = tail.index("SELECT") + len("SELECT")
    tail = tail[:select_at] + " " + ", ".join(v for _, v in extra) + "," + tail[select_at:]
    return f"{head}({', '.join(n for n, _ in extra)}, {columns}){tail}"


class Completing:
    def __init__(self, cur):
        self.cur = cur

    def execute(self, sql, params):
        self.cur.execute(complete(self.cur, sql.strip()), params)


def seed_organisation(slug: str, vehicles: int, actions: int, events: int, deliveries: int, audit: int) -> None:
    org = Organisation.objects.create(name=slug.title(), slug=slug)
    fleet = Fleet.objects.create(organisation=org, external_id=f"bench-history-{slug}", name=f"{slug} fleet")
    callback = Callback.objects.create(fleet=fleet, external_id=f"bench-history-{slug}", target="http://127.0.0.1/", remote_types=list(RemoteType.values))
    p = {"fleet": fleet.pk, "slug": slug, "callback": callback.pk, "org": org.pk,
         "vehicles": vehicles, "actions": actions, "events": events, "deliveries": deliveries, "audit": audit}
    with connection.cursor() as raw:
        cur = Completing(raw)
        cur.execute(
            """
            INSERT INTO vehicles_vehicle (fleet_id, external_id, vin, brand, motorization, capabilities, created_at, updated_at)
            SELECT %(fleet)s, %(slug)s || '-' || i, 'VF3' || upper(rpad(%(slug)s, 5, 'X')) || lpad(i::text, 9, '0'),
                   'Peugeot', 'Electric', '{}'::jsonb, now(), now()
            FROM generate_series(1, %(vehicles)s) AS i
            """, p,
        )
        # Actions over 90 days: 1 in 20 failed (with a cause), 1 in 100 still open, the rest done.
        cur.execute(
            f"""
            INSERT INTO remotes_remoteaction (id, vehicle_id, callback_id, remote_type, command, status, pending_status,
                failure_cause, feedback_detail, error, remote_action_id, source, reason, decision_comment, decision,
                created_at, expires_at, submit_attempts, submitted_at)
            SELECT md5(%(slug)s || i)::uuid, v.ids[1 + i %% array_length(v.ids, 1)], %(callback)s,
                   (ARRAY['Horn', 'Doors', 'Lights', 'ElectricBatteryChargingRequest'])[1 + i %% 4], '{{"horn": {{"state": "Activated"}}}}'::jsonb,
                   CASE WHEN i %% 20 = 0 THEN 'failed' WHEN i %% 100 = 1 THEN 'pending' ELSE 'success' END, '',
                   CASE WHEN i %% 20 = 0 THEN (ARRAY['VehicleConnectionTimeout', 'VehicleError', 'DoorsOpen', 'TooManyWakeUpsOverMonth'])[1 + (i / 20) %% 4] ELSE '' END,
                   '', '', %(slug)s || '-ra-' || i, 'api', '', '', '',
                   {T0} + i * (interval '90 days' / %(actions)s), {T0} + interval '1 year', 1,
                   {T0} + i * (interval '90 days' / %(actions)s)
            FROM generate_series(1, %(actions)s) AS i
            CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM vehicles_vehicle WHERE fleet_id = %(fleet)s) v
            """, p,
        )
        # Raw deliveries, one per event: 1 in 500 flagged (partial, unparseable, failed).
        cur.execute(
            f"""
            INSERT INTO callbacks_webhookdelivery (callback_id, received_at, remote_addr, headers, query, body, outcome, error,
                event_count, bad_events)
            SELECT %(callback)s, {T0} + i * (interval '90 days' / %(deliveries)s), '127.0.0.1', '{{}}'::jsonb, '',
                   '{{"events": [{{"remoteActionId": "' || %(slug)s || '-ra-' || i || '"}}]}}',
                   CASE WHEN i %% 500 = 0 THEN (ARRAY['partial', 'unparseable', 'failed'])[1 + (i / 500) %% 3] ELSE 'processed' END,
                   '', 1, '[]'::jsonb
            FROM generate_series(1, %(deliveries)s) AS i
            """, p,
        )
        # Events: each action's Accepted, SentToVehicle, then Success or Failed, until the count is reached.
        cur.execute(
            """
            INSERT INTO remotes_remoteevent (action_id, remote_action_id, vin, remote_type, event_type, status,
                failure_cause, feedback_detail, event_date, received_at, delivery_id)
            SELECT a.id, a.remote_action_id, '', a.remote_type,
                   CASE WHEN s.n <= 2 THEN 'Pending' ELSE 'Done' END,
                   CASE WHEN s.n = 1 THEN 'Accepted' WHEN s.n = 2 THEN 'SentToVehicle' WHEN a.status = 'failed' THEN 'Failed' ELSE 'Success' END,
                   CASE WHEN s.n = 3 THEN a.failure_cause ELSE '' END, '',
                   a.created_at + s.n * interval '2 s', a.created_at + s.n * interval '2 s', NULL
            FROM remotes_remoteaction a CROSS JOIN generate_series(1, 4) AS s(n)
            WHERE a.callback_id = %(callback)s AND s.n <= 3
            ORDER BY a.created_at, s.n
            LIMIT %(events)s
            """, p,
        )
        cur.execute(
            """
            INSERT INTO remotes_remoteevent (action_id, remote_action_id, vin, remote_type, event_type, status,
                failure_cause, feedback_detail, event_date, received_at, delivery_id)
            SELECT a.id, a.remote_action_id, '', a.remote_type, 'Pending', 'CheckingVehicle', '', '',
                   a.created_at + interval '3 s', a.created_at + interval '3 s', NULL
            FROM remotes_remoteaction a WHERE a.callback_id = %(callback)s
            ORDER BY a.created_at
            LIMIT greatest(0, %(events)s - (SELECT count(*) FROM remotes_remoteevent e JOIN remotes_remoteaction x ON x.id = e.action_id
                                          WHERE x.callback_id = %(callback)s))
            """, p,
        )
        cur.execute(
            f"""
            INSERT INTO audit_auditentry (at, actor, organisation_id, source, ip_address, user_agent, action, object_type, object_id,
                object_repr, changes, reason)
            SELECT {T0} + i * (interval '90 days' / %(audit)s), 'bench', %(org)s, 'api', '127.0.0.1', 'bench',
                   CASE WHEN i %% 1000 = 0 THEN 'callback.changed' WHEN i %% 50 = 0 THEN 'login' ELSE 'remote.requested' END,
                   'remoteaction', i::text, 'Horn', '{{}}'::jsonb, ''
            FROM generate_series(1, %(audit)s) AS i
            """, p,
        )


def seeded() -> bool:
    big = Fleet.objects.filter(external_id="bench-history-big").first()
    return bool(big) and RemoteEvent.objects.filter(action__vehicle__fleet=big).count() == EVENTS


def seed(force: bool) -> None:
    if seeded() and not force:
        print("bench-history: reusing the seeded database", file=sys.stderr)
        return
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "TRUNCATE remotes_remoteevent, remotes_actionstep, remotes_remoteaction, callbacks_webhookdelivery, callbacks_callback, "
            "vehicles_vehiclestatus, vehicles_vehicle, vehicles_fleet, accounts_partnertoken, accounts_membership, "
            "accounts_organisation, audit_auditentry RESTART IDENTITY CASCADE"
        )
        seed_organisation("big", VEHICLES, ACTIONS, EVENTS, DELIVERIES, AUDIT)
        seed_organisation("small", 10, 10, 30, 10, 10)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"bench-history: seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)


def client_for(username: str, *, superuser: bool = False, organisation: str | None = None) -> Client:
    user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": True, "is_superuser": superuser})
    if organisation:
        Membership.objects.get_or_create(user=user, organisation=Organisation.objects.get(slug=organisation), defaults={"role": Role.ADMIN})
    client = Client()
    client.force_login(user)
    return client


class Explain:
    """execute_wrapper that keeps the slowest SELECT of a page (its main query) to EXPLAIN it afterwards."""

    def __init__(self):
        self.slowest = (0.0, "", None)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            if sql.lstrip().upper().startswith("SELECT") and took > self.slowest[0]:
                self.slowest = (took, sql, params)


def measure(client: Client, url: str, explain: bool) -> tuple[int, float, str]:
    first = client.get(url)  # warm: imports, connections, the session
    assert first.status_code == 200, (url, first.status_code, first.content[:300])
    times, queries = [], None
    slowest = Explain()
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(slowest):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
        queries = len(ctx.captured_queries)
    counts = sum(1 for q in ctx.captured_queries if "COUNT(" in q["sql"].upper())
    plan = ""
    if explain and slowest.slowest[1]:
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF, SUMMARY ON) " + slowest.slowest[1], slowest.slowest[2])
            plan = "\n".join("      " + row[0] for row in cur.fetchall())
    return queries, statistics.median(times) * 1000, (f"{counts} count" if counts else "") + ("\n" + plan if plan else "")


CASES = [
    ("events, first page", "/admin/remotes/remoteevent/"),
    ("events ?status=Failed", "/admin/remotes/remoteevent/?status=Failed"),
    ("events oldest first (date column)", "/admin/remotes/remoteevent/?o=0"),
    ("events, page 40", "/admin/remotes/remoteevent/?p=40"),
    ("actions, first page", "/admin/remotes/remoteaction/"),
    ("actions ?status=failed", "/admin/remotes/remoteaction/?status__exact=failed"),
    ("actions ?failure_cause=DoorsOpen", "/admin/remotes/remoteaction/?failure_cause=DoorsOpen"),
    ("actions oldest first (date column)", "/admin/remotes/remoteaction/?o=0"),
    ("deliveries, first page", "/admin/remotes/webhookdelivery/"),
    ("deliveries ?outcome=failed", "/admin/remotes/webhookdelivery/?outcome__exact=failed"),
    ("deliveries oldest first (date column)", "/admin/remotes/webhookdelivery/?o=2"),
    ("audit, first page", "/admin/audit/auditentry/"),
    ("audit ?action=callback.changed", "/admin/audit/auditentry/?action=callback.changed"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reseed", action="store_true", help="empty and seed again even if the counts match")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest SELECT")
    parser.add_argument("--only", default="", help="only the cases whose label contains this")
    args = parser.parse_args()
    logging.getLogger("fleetportal.request").setLevel(logging.WARNING)  # one line per page would drown the table
    logging.getLogger("axes").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    seed(args.reseed)
    clients = [
        ("superuser", client_for("bench-history-root", superuser=True)),
        ("big's admin", client_for("bench-history-big", organisation="big")),
        ("small's admin", client_for("bench-history-small", organisation="small")),
    ]
    print(f"admin history lists, PostgreSQL {connection.cursor().connection.info.server_version}, {EVENTS:,} events, "
          f"{ACTIONS:,} actions, {DELIVERIES:,} deliveries, {AUDIT:,} audit entries; median of {REPEAT}")
    print(f"{'page':<42} {'as':<14} {'queries':>7} {'ms':>9}")
    for label, url in CASES:
        if args.only not in label:
            continue
        for who, client in clients:
            queries, ms, note = measure(client, url, args.explain)
            print(f"{label:<42} {who:<14} {queries:>7} {ms:>9.1f}  {note}", flush=True)


if __name__ == "__main__":
    main()
