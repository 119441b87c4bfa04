"""The portal's vehicle list at 50,000 vehicles: queries and database time of the first, a deep and
the last page, for several sorts and filters, through the whole Django stack.

`make bench-list` (docs/benchmarks.md, "Vehicle list"). Its own PostgreSQL database,
`BENCH_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/fleetportal_bench_list; created
if missing, its name must contain `bench`): migrated, then seeded once with set-based SQL
(INSERT … SELECT generate_series) and reused while the counts match (`--reseed` to start again).
Two organisations: "big" (50,000 vehicles in 5 fleets, a status snapshot for 9 in 10 with
energy missing on some, 20,000 actions including stolen and immobilization declarations) and
"other" (1,000 vehicles) that the big one must never see nor pay for.

Each page is requested as the big organisation's admin with Django's test client (sessions,
middleware, the view, the template), warmed once, then measured BENCH_REPEAT times (default 5):
the number of queries, the database time (the sum of the queries' own times, as Django's
debug cursor measures them around each execute) and the whole request's time; medians. The deep
page is the keyset cursor 100 rows before the end (the "Next" link a person would have
followed there); the last page is `cursor=last`. `--write` puts the table into
docs/benchmarks.md between its bench-list markers.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bench_list")
VEHICLES, OTHER, ACTIONS = 50_000, 1_000, 20_000
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench-list:start -->", "<!-- bench-list:end -->"


from bench_db import setup_django  # noqa: E402  (bench/ is the script's own folder, first on sys.path)

setup_django(DB_URL, "bench-list")

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import QueryDict  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Membership, Organisation, Role  # noqa: E402
from callbacks.models import Callback  # noqa: E402
from remotes.models import RemoteAction  # noqa: E402
from stellantis.vocabulary import RemoteType  # noqa: E402
from vehicles import listing  # noqa: E402
from vehicles.models import Fleet, Vehicle  # noqa: E402

# The kinds of action the seed cycles through: (remote type, command, status).
KINDS = [
    ("Horn", '{"horn": {"state": "Activated"}}', "success"),
    ("Doors", '{"door": {"state": "Locked"}}', "success"),
    ("Lights", '{"lights": {"on": true}}', "failed"),
    ("WakeUp", '{"wakeUp": {"action": "WakeUp"}}', "success"),
    ("ElectricBatteryChargingRequest", '{"charging": {"immediate": true}}', "pending"),
    ("Stolen", '{"stolen": {"stolen": true}}', "success"),
    ("Immobilization", '{"immobilization": {"activate": true}}', "success"),
    ("Horn", '{"horn": {"state": "Activated"}}', "error"),
    ("Stolen", '{"stolen": {"stolen": false}}', "success"),
    ("Doors", '{"door": {"state": "Unlocked"}}', "success"),
]


def seed_organisation(slug: str, vehicles: int, actions: int, fleets: int) -> None:
    org = Organisation.objects.create(name=slug.title(), slug=slug)
    kinds = ", ".join(f"({k}, '{t}', '{c}'::jsonb, '{s}')" for k, (t, c, s) in enumerate(KINDS))
    for f in range(fleets):
        fleet = Fleet.objects.create(organisation=org, external_id=f"bench-list-{slug}-{f}", name=f"{slug.title()} fleet {f}")
        callback = Callback.objects.create(fleet=fleet, external_id=f"bench-list-{slug}-{f}", target="http://127.0.0.1/",
                                           remote_types=list(RemoteType.values))
        with connection.cursor() as cur:
            cur.execute(
                """
                INSERT INTO vehicles_vehicle (fleet_id, external_id, vin, brand, motorization, capabilities, label, plate, created_at, updated_at)
                SELECT %(fleet)s, %(prefix)s || i, 'VR3' || upper(rpad(%(prefix)s, 6, 'X')) || lpad(i::text, 8, '0'),
                       (ARRAY['Peugeot', 'Citroen', 'Opel', 'Fiat', 'DS', ''])[1 + i %% 6],
                       (ARRAY['Electric', 'Thermic', 'Hybrid', 'Electric'])[1 + i %% 4],
                       CASE WHEN i %% 5 = 0 THEN '{}'::jsonb
                            WHEN i %% 3 = 0 THEN '{"remote": {"horn": {"supported": true}, "charging": {"supported": false}}}'::jsonb
                            ELSE '{"remote": {"horn": {"supported": true}, "charging": {"supported": true}}}'::jsonb END,
                       CASE WHEN i %% 4 = 0 THEN 'Van ' || i ELSE '' END,
                       CASE WHEN i %% 3 = 0 THEN 'AB-' || lpad((i %% 1000)::text, 3, '0') || '-CD' ELSE '' END,
                       now(), now()
                FROM generate_series(1, %(n)s) AS i
                """,
                {"fleet": fleet.pk, "prefix": f"{slug[:2]}{f}-", "n": vehicles // fleets},
            )
            # 9 in 10 have a status; energy missing on 1 in 7; last contact spread over 30 days.
            cur.execute(
                """
                INSERT INTO vehicles_vehiclestatus (vehicle_id, captured_at, fetched_at, energy_type, energy_level, autonomy_km,
                    charging_status, plugged, doors_locked, locked_states, longitude, latitude, position_at, preconditioning_status,
                    ignition, moving, raw)
                SELECT v.id, now() - (v.id * 7919 %% 2592000) * interval '1 second', now(), 'Electric',
                       CASE WHEN v.id %% 7 = 0 THEN NULL ELSE (v.id * 31 %% 1000) / 10.0 END,
                       CASE WHEN v.id %% 11 = 0 THEN NULL ELSE v.id * 13 %% 450 END,
                       (ARRAY['InProgress', 'Stopped', 'Disconnected', 'Finished'])[1 + v.id %% 4], v.id %% 4 <> 2, v.id %% 5 <> 0,
                       '[]', 2.29, 48.85, now(), 'Disabled', 'Stop', false, '{}'
                FROM vehicles_vehicle v WHERE v.fleet_id = %(fleet)s AND v.id %% 10 <> 0
                """,
                {"fleet": fleet.pk},
            )
            cur.execute(
                f"""
                INSERT INTO remotes_remoteaction (id, vehicle_id, callback_id, remote_type, command, status, pending_status,
                    failure_cause, feedback_detail, error, remote_action_id, source, reason, decision_comment, decision,
                    verification, created_at, expires_at, submit_attempts, submitted_at)
                SELECT md5(%(prefix)s || i)::uuid, v.ids[1 + (i * 7) %% array_length(v.ids, 1)], %(callback)s, k.t, k.c, k.s, '', '', '', '',
                       %(prefix)s || 'ra-' || i, 'api', 'bench', '', '', '',
                       timestamptz '2026-11-01 00:00:00+00' + i * interval '1 second', timestamptz '2026-11-01 00:00:00+00', 1,
                       timestamptz '2026-11-01 00:00:00+00' + i * interval '1 second'
                FROM generate_series(1, %(n)s) AS i
                CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM vehicles_vehicle WHERE fleet_id = %(fleet)s) v
                JOIN (VALUES {kinds}) AS k(k, t, c, s) ON k.k = i %% 10
                """,
                {"prefix": f"{slug}-{f}-", "callback": callback.pk, "fleet": fleet.pk, "n": actions // fleets},
            )


def seeded() -> bool:
    return (Vehicle.objects.filter(fleet__organisation__slug="big").count() == VEHICLES
            and RemoteAction.objects.filter(vehicle__fleet__organisation__slug="big").count() == ACTIONS
            and Vehicle.objects.filter(fleet__organisation__slug="other").count() == OTHER)


def seed(force: bool) -> None:
    if seeded() and not force:
        print("bench-list: reusing the seeded database", file=sys.stderr)
        return
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "TRUNCATE remotes_remoteevent, remotes_actionstep, remotes_remoteaction, callbacks_webhookdelivery, callbacks_callback, "
            "vehicles_vehiclestatus, vehicles_vehicle, vehicles_fleet, accounts_partnertoken, accounts_membership, "
            "accounts_organisation RESTART IDENTITY CASCADE"
        )
        seed_organisation("big", VEHICLES, ACTIONS, fleets=5)
        seed_organisation("other", OTHER, OTHER // 10, fleets=1)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"bench-list: seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)


def client_for(slug: str) -> tuple[Client, User]:
    org = Organisation.objects.get(slug=slug)
    user, _ = User.objects.get_or_create(username=f"bench-list-{slug}")
    Membership.objects.get_or_create(user=user, organisation=org, defaults={"role": Role.ADMIN})
    client = Client()
    client.force_login(user)
    return client, user


def measure(client: Client, url: str) -> tuple[int, int, float, float, float]:
    first = client.get(url)  # warm: session, caches, plans
    assert first.status_code == 200, (url, first.status_code, first.content[:300])
    queries, db_ms, total_ms = [], [], []
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            total_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        queries.append(len(ctx.captured_queries))
        db_ms.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
    rows = response.content.count(b"<tr data-vin=")
    return max(queries), rows, statistics.median(db_ms), min(db_ms), statistics.median(total_ms)


def deep_cursor(user, query: str, before_end: int = 100) -> str:
    """The "Next" link a person paging from the start would have reached `before_end` rows from the end."""
    params = QueryDict(query)
    sort, descending, _ = listing.sort_of(params)
    vehicles = listing.matching(user, params)
    total = vehicles.count()
    row = listing.ordered(vehicles, sort, descending)[max(0, total - before_end)]
    return listing.Cursor(True, row._sort, row.pk).encode(sort, descending)


CASES = [
    ("sort by VIN (default)", ""),
    ("sort by energy, highest first", "sort=-energy"),
    ("sort by last contact, oldest first", "sort=contact"),
    ("sort by range", "sort=range"),
    ("sort by label", "sort=label"),
    ("sort by fleet, descending", "sort=-fleet"),
    ("state asleep, by energy", "state=asleep&sort=energy"),
    ("state stolen or immobilized", "state=stolen&state=immobilized"),
    ("low battery + capability charging", "state=low_battery&capability=charging"),
    ("brand Opel + electric, by last contact", "brand=Opel&motorization=Electric&sort=-contact"),
    ("search 'van 1'", "q=van 1"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reseed", action="store_true", help="empty and seed again even if the counts match")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    seed(args.reseed)
    client, user = client_for("big")
    load = os.getloadavg()[0]
    pg = connection.cursor().connection.info.server_version
    lines = [
        f"PostgreSQL {pg // 10000}.{pg % 100}, {VEHICLES:,} vehicles (+ {OTHER:,} of another "
        f"organisation), {ACTIONS:,} actions; {REPEAT} runs each; page of {listing.PAGE_SIZE}; "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average {load:.1f} on {os.cpu_count()} cores at the start",
        "",
        "| list | matching | page | queries | rows | DB ms median | DB ms best | request ms median |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    counts, worst_last = set(), 0.0
    for label, query in CASES:
        total = listing.matching(user, QueryDict(query)).count()
        base = f"/vehicles/?{query}" if query else "/vehicles/?"
        pages = [("first", base), ("deep (next)", f"{base}&cursor={deep_cursor(user, query)}"), ("last", f"{base}&cursor=last")]
        for name, url in pages:
            q, rows, db_ms, db_best, total_ms = measure(client, url)
            counts.add(q)
            if name == "last":
                worst_last = max(worst_last, db_ms)
            lines.append(f"| {label if name == 'first' else ''} | {total if name == 'first' else ''} | {name} | {q} | {rows} | "
                         f"{db_ms:.0f} | {db_best:.0f} | {total_ms:.0f} |")
            print(lines[-1], flush=True)
    lines += ["", f"Queries per page: {', '.join(map(str, sorted(counts)))}; slowest last page (median): {worst_last:.0f} ms of "
              f"database time; load average {os.getloadavg()[0]:.1f} at the end."]
    print(lines[-1])
    if args.write:
        text = DOC.read_text()
        if START not in text or END not in text:
            sys.exit(f"bench-list: {DOC} has no {START} … {END} markers")
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(head + START + "\n" + "\n".join(lines) + "\n" + END + tail)
        print(f"bench-list: wrote the table into {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
