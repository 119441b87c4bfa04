"""Partner API lists at scale: queries and time of `GET /api/v1/vehicles/` over 10,000 vehicles and
`GET /api/v1/remotes/` over 100,000 actions with 1,000,000 events, against a 10-row baseline.

`make bench-api` (docs/benchmarks.md, "Partner API lists"). Its own PostgreSQL database,
`BENCH_API_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/fleetportal_bench_api;
created if missing, its name must contain `bench`): migrated, then seeded once with set-based
SQL and reused while the counts match (`--reseed` to start again). Two organisations in the
same database and the same run: "big" (10,000 vehicles, 100,000 actions, 10 events each, a
status snapshot per vehicle) and "small" (10 vehicles, 10 actions, 10 events each). Each
request goes through the whole Django stack (Django's test client: middleware, token
authentication, DRF, filters, cursor pagination), warmed once, then counted (queries) and
timed (median of BENCH_API_REPEAT, default 7). The deep pages are cursors at row 5,000
(vehicles) and 50,000 (actions), built the way DRF builds them.
"""

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bench_api")
VEHICLES, ACTIONS, EVENTS_PER_ACTION, SMALL = 10_000, 100_000, 10, 10
REPEAT = int(os.environ.get("BENCH_API_REPEAT", "7"))


from bench_db import setup_django  # noqa: E402  (bench/ is the script's own folder, first on sys.path)

setup_django(DB_URL, "bench-api")

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Membership, Organisation, PartnerToken, Role, Scope  # noqa: E402
from callbacks.models import Callback  # noqa: E402
from remotes.models import RemoteAction  # noqa: E402
from stellantis.vocabulary import RemoteType  # noqa: E402
from vehicles.models import Fleet, Vehicle  # noqa: E402

# The ten kinds of action the seed cycles through: (remote type, command, status).
KINDS = [
    ("Horn", '{"horn": {"state": "Activated"}}', "success"),
    ("Doors", '{"door": {"state": "Locked"}}', "success"),
    ("Lights", '{"lights": {"on": true}}', "failed"),
    ("WakeUp", '{"wakeUp": {"action": "WakeUp"}}', "success"),
    ("ElectricBatteryChargingRequest", '{"charging": {"immediate": true}}', "pending"),
    ("ThermalPreconditioning", '{"preconditioning": {"airConditioning": {"immediate": true}}}', "success"),
    ("Navigation", '{"navigation": {"positions": [{"type": "Point", "coordinates": [2.29, 48.85]}]}}', "already_done"),
    ("Stolen", '{"stolen": {"stolen": true}}', "success"),
    ("Immobilization", '{"immobilization": {"activate": true}}', "expired"),
    ("Horn", '{"horn": {"state": "Activated"}}', "error"),
]


def seed_organisation(slug: str, vehicles: int, actions: int) -> None:
    org = Organisation.objects.create(name=slug.title(), slug=slug)
    fleet = Fleet.objects.create(organisation=org, external_id=f"bench-api-{slug}", name=f"{slug} fleet")
    callback = Callback.objects.create(fleet=fleet, external_id=f"bench-api-{slug}", target="http://127.0.0.1/", remote_types=list(RemoteType.values))
    kinds = ", ".join(f"({k}, '{t}', '{c}'::jsonb, '{s}')" for k, (t, c, s) in enumerate(KINDS))
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO vehicles_vehicle (fleet_id, external_id, vin, brand, motorization, capabilities, created_at, updated_at)
            SELECT %(fleet)s, %(slug)s || '-' || i, 'VF3' || upper(rpad(%(slug)s, 5, 'X')) || lpad(i::text, 9, '0'),
                   (ARRAY['Peugeot', 'Citroen', 'Opel', 'Fiat'])[1 + i %% 4], (ARRAY['Electric', 'Thermic', 'Hybrid'])[1 + i %% 3],
                   CASE WHEN i %% 5 = 0 THEN '{}'::jsonb ELSE '{"remote": {"horn": {"supported": true}, "charging": {"supported": true}}}'::jsonb END,
                   now(), now()
            FROM generate_series(1, %(n)s) AS i
            """,
            {"fleet": fleet.pk, "slug": slug, "n": vehicles},
        )
        cur.execute(
            """
            INSERT INTO vehicles_vehiclestatus (vehicle_id, captured_at, fetched_at, energy_type, energy_level, autonomy_km,
                charging_status, plugged, doors_locked, locked_states, longitude, latitude, position_at, preconditioning_status,
                ignition, moving, raw)
            SELECT v.id, now(), now(), 'Electric', 50, 200, CASE WHEN v.id %% 2 = 0 THEN 'InProgress' ELSE 'Disconnected' END,
                   v.id %% 2 = 0, true, '[]', 2.29, 48.85, now(), 'Disabled', 'Stop', false, '{}'
            FROM vehicles_vehicle v WHERE v.fleet_id = %(fleet)s
            """,
            {"fleet": fleet.pk},
        )
        cur.execute(
            f"""
            INSERT INTO remotes_remoteaction (id, vehicle_id, callback_id, remote_type, command, status, pending_status,
                failure_cause, feedback_detail, error, remote_action_id, source, reason, decision_comment, decision,
                created_at, expires_at, submit_attempts, submitted_at)
            SELECT md5(%(slug)s || i)::uuid, v.ids[1 + i %% array_length(v.ids, 1)], %(callback)s, k.t, k.c, k.s, '', '', '', '',
                   %(slug)s || '-ra-' || i, 'api', 'bench', '', '',
                   timestamptz '2026-11-01 00:00:00+00' + i * interval '1 second', timestamptz '2026-11-01 00:00:00+00', 1,
                   timestamptz '2026-11-01 00:00:00+00' + i * interval '1 second'
            FROM generate_series(1, %(n)s) AS i
            CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM vehicles_vehicle WHERE fleet_id = %(fleet)s) v
            JOIN (VALUES {kinds}) AS k(k, t, c, s) ON k.k = i %% 10
            """,
            {"slug": slug, "callback": callback.pk, "fleet": fleet.pk, "n": actions},
        )
        cur.execute(
            """
            INSERT INTO remotes_remoteevent (action_id, remote_action_id, vin, remote_type, event_type, status,
                failure_cause, feedback_detail, event_date, received_at, delivery_id)
            SELECT a.id, a.remote_action_id, '', a.remote_type, 'Pending', 'Accepted', '', '', a.created_at + e * interval '1 ms', now(), NULL
            FROM remotes_remoteaction a CROSS JOIN generate_series(1, %(per)s) AS e
            WHERE a.callback_id = %(callback)s
            """,
            {"callback": callback.pk, "per": EVENTS_PER_ACTION},
        )


def seeded() -> bool:
    big = Fleet.objects.filter(external_id="bench-api-big").first()
    return bool(big) and Vehicle.objects.filter(fleet=big).count() == VEHICLES and RemoteAction.objects.filter(vehicle__fleet=big).count() == ACTIONS


def seed(force: bool) -> None:
    if seeded() and not force:
        print("bench-api: reusing the seeded database", file=sys.stderr)
        return
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "TRUNCATE remotes_remoteevent, remotes_actionstep, remotes_remoteaction, callbacks_webhookdelivery, callbacks_callback, "
            "vehicles_vehiclestatus, vehicles_vehicle, vehicles_fleet, accounts_partnertoken, accounts_membership, "
            "accounts_organisation RESTART IDENTITY CASCADE"
        )
        seed_organisation("big", VEHICLES, ACTIONS)
        seed_organisation("small", SMALL, SMALL)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"bench-api: seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)


def client_for(slug: str) -> Client:
    org = Organisation.objects.get(slug=slug)
    user, _ = User.objects.get_or_create(username=f"bench-api-{slug}")
    Membership.objects.get_or_create(user=user, organisation=org, defaults={"role": Role.ADMIN})
    _, key = PartnerToken.issue(organisation=org, user=user, name="bench", scopes=Scope.values)
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def cursor(value) -> str:
    """A cursor as DRF's CursorPagination encodes it: the position of the row to continue after."""
    return base64.b64encode(urlencode({"p": str(value)}).encode()).decode()


def measure(client: Client, url: str) -> tuple[int, int, float]:
    first = client.get(url)  # warm: the token's last_used_at, connections, caches
    assert first.status_code == 200, (url, first.status_code, first.content[:300])
    times, queries = [], None
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
        queries = len(ctx.captured_queries)
    return queries, len(response.json()["results"]), statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reseed", action="store_true", help="empty and seed again even if the counts match")
    args = parser.parse_args()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"partner": None}}
    call_command("migrate", verbosity=0)
    seed(args.reseed)
    big, small = client_for("big"), client_for("small")

    def deep(model_qs, order, offset):
        return cursor(model_qs.order_by(order).values_list(order.lstrip("-"), flat=True)[offset])

    big_vehicles = Vehicle.objects.filter(fleet__external_id="bench-api-big")
    big_actions = RemoteAction.objects.filter(vehicle__fleet__external_id="bench-api-big")
    some_vin = big_vehicles.order_by("vin").values_list("vin", flat=True)[4321]
    small_vin = Vehicle.objects.filter(fleet__external_id="bench-api-small").values_list("vin", flat=True).first()
    cases = [
        ("vehicles, first page", "/api/v1/vehicles/", "/api/v1/vehicles/"),
        ("vehicles, page at row 5,000", f"/api/v1/vehicles/?cursor={deep(big_vehicles, 'vin', 5000)}", "/api/v1/vehicles/"),
        ("vehicles ?capability=charging&plugged=true&stolen=false", "/api/v1/vehicles/?capability=charging&plugged=true&stolen=false",
         "/api/v1/vehicles/?capability=charging&plugged=true&stolen=false"),
        ("vehicles ?search=", "/api/v1/vehicles/?search=00000432", "/api/v1/vehicles/?search=00000001"),
        ("actions, first page", "/api/v1/remotes/", "/api/v1/remotes/"),
        ("actions, page at row 50,000", f"/api/v1/remotes/?cursor={deep(big_actions, '-created_at', 50000)}", "/api/v1/remotes/"),
        ("actions ?status=failed", "/api/v1/remotes/?status=failed", "/api/v1/remotes/?status=failed"),
        ("actions ?vin=", f"/api/v1/remotes/?vin={some_vin}", f"/api/v1/remotes/?vin={small_vin}"),
        ("actions ?remote_type=Horn&created_after=", "/api/v1/remotes/?remote_type=Horn&created_after=2026-11-01T12:00:00Z",
         "/api/v1/remotes/?remote_type=Horn&created_after=2026-10-01T00:00:00Z"),
        ("a vehicle's actions", f"/api/v1/vehicles/{some_vin}/remotes/", f"/api/v1/vehicles/{small_vin}/remotes/"),
    ]
    print(f"partner API lists, PostgreSQL {connection.cursor().connection.info.server_version}, {VEHICLES:,} vehicles, "
          f"{ACTIONS:,} actions, {ACTIONS * EVENTS_PER_ACTION:,} events vs {SMALL} / {SMALL} / {SMALL * EVENTS_PER_ACTION}; "
          f"median of {REPEAT}")
    print(f"{'request':<58} {'queries big/small':>17} {'rows':>9} {'ms big':>8} {'ms small':>9} {'ratio':>6}")
    same = True
    for label, big_url, small_url in cases:
        q_big, rows_big, ms_big = measure(big, big_url)
        q_small, rows_small, ms_small = measure(small, small_url)
        same &= q_big == q_small
        print(f"{label:<58} {q_big:>8}/{q_small:<8} {rows_big:>4}/{rows_small:<4} {ms_big:>8.1f} {ms_small:>9.1f} {ms_big / ms_small:>6.2f}")
    print("query counts equal for every request" if same else "QUERY COUNTS DIFFER")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
