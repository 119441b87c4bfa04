"""Reset the benchmark database and seed what the webhook needs.

Run by `bench/run` after `migrate`, with DATABASE_URL pointing at the bench database:
one fleet, one vehicle, one Running callback with a known secret, and BENCH_ACTIONS
pending RemoteActions whose remoteActionIds are `bench-000000`, `bench-000001`, … so every
benchmark event attaches to an action (the normal path, not the early-arrival one). The
load scripts spread events over all of them, a few events per action, as in real traffic.

Each action starts with BENCH_HISTORY earlier Pending events (dated the day before the
benchmark's events), and `bench_ref_event` — the table of the reference view
(bench/reference.py), recreated here — gets the same rows: both unique indexes start at
the same size, and the planner sees a table with a few events per remoteActionId rather
than an empty one (this machine's PostgreSQL runs without autovacuum, so the statistics
taken here are the ones the whole run plans with).
Prints the secret header value on its last line.
"""

import datetime as dt
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from callbacks.models import Callback  # noqa: E402
from remotes.models import ActionStatus, RemoteAction, Source  # noqa: E402
from stellantis.vocabulary import RemoteType  # noqa: E402
from vehicles.models import Fleet, Vehicle  # noqa: E402

WEBHOOK_KEY = "benchbenchbench0"  # 16 characters, like callbacks.models.new_webhook_key()
SECRET = "bench-secret-not-for-production-use-0000000"
ACTIONS = int(os.environ.get("BENCH_ACTIONS", "50000"))
HISTORY = int(os.environ.get("BENCH_HISTORY", "2"))
HISTORY_STATUSES = ["Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle"]

# Every table the seed or the webhook writes; emptied so each run starts from the same state.
TABLES = [
    "remotes_remoteevent",
    "remotes_actionstep",
    "remotes_remoteaction",
    "callbacks_webhookdelivery",
    "callbacks_callback",
    "vehicles_vehicle",
    "vehicles_fleet",
]

REFERENCE_TABLE = """
DROP TABLE IF EXISTS bench_ref_event;
CREATE TABLE bench_ref_event (
    id bigserial PRIMARY KEY,
    remote_action_id varchar(64) NOT NULL,
    vin varchar(17) NOT NULL,
    remote_type varchar(40) NOT NULL,
    event_type varchar(8) NOT NULL,
    status varchar(40) NOT NULL,
    event_date timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bench_ref_event_unique UNIQUE (remote_action_id, event_type, status, event_date)
);
"""


def main() -> None:
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or "bench" not in name:
        # This script empties tables: never let it near a database that is not a bench one.
        sys.exit(f"refusing to seed {connection.vendor} database {name!r}: its name must contain 'bench'")
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        cur.execute(REFERENCE_TABLE)
        fleet = Fleet.objects.create(external_id="bench-fleet", name="Bench fleet")
        vehicle = Vehicle.objects.create(fleet=fleet, external_id="bench-vehicle", vin="VR3BENCH000000001", brand="Peugeot")
        callback = Callback.objects.create(
            fleet=fleet,
            external_id="bench-callback",
            label="Bench callback",
            target="http://127.0.0.1/webhooks/stellantis/remote/",
            remote_types=list(RemoteType.values),
            webhook_key=WEBHOOK_KEY,
            secret=SECRET,
        )
        RemoteAction.objects.bulk_create(
            (
                RemoteAction(
                    vehicle=vehicle,
                    callback=callback,
                    remote_type=RemoteType.HORN,
                    command={"horn": {"state": "Activated"}},
                    status=ActionStatus.SUBMITTED,
                    remote_action_id=f"bench-{i:06d}",
                    source=Source.SYSTEM,
                    expires_at=now + dt.timedelta(days=365),
                    submitted_at=now,
                    submit_attempts=1,
                )
                for i in range(ACTIONS)
            ),
            batch_size=2000,
        )
        statuses = HISTORY_STATUSES[: max(0, min(HISTORY, len(HISTORY_STATUSES)))]
        if statuses:
            RemoteAction.objects.update(status=ActionStatus.PENDING, pending_status=statuses[-1])
            history = ", ".join(f"({k}, '{status}')" for k, status in enumerate(statuses))
            # Set-based: a few SQL statements instead of 100,000 model instances.
            cur.execute(
                f"""
                INSERT INTO remotes_remoteevent (action_id, remote_action_id, vin, remote_type, event_type, status,
                                                 failure_cause, feedback_detail, event_date, received_at, delivery_id)
                SELECT a.id, a.remote_action_id, 'VR3BENCH000000001', 'Horn', 'Pending', h.status, '', '',
                       timestamptz '2026-11-24 10:00:00+00' + h.k * interval '1 minute', now(), NULL
                FROM remotes_remoteaction a CROSS JOIN (VALUES {history}) AS h(k, status)
                """
            )
            cur.execute(
                """
                INSERT INTO bench_ref_event (remote_action_id, vin, remote_type, event_type, status, event_date)
                SELECT remote_action_id, vin, remote_type, event_type, status, event_date FROM remotes_remoteevent
                """
            )
            cur.execute(
                """
                UPDATE remotes_remoteaction a SET pending_at = e.last
                FROM (SELECT action_id, max(event_date) AS last FROM remotes_remoteevent GROUP BY action_id) e
                WHERE a.id = e.action_id
                """
            )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"seeded {ACTIONS} actions with {len(statuses)} earlier events each in {name}", file=sys.stderr)
    print(callback.secret_header_value)


if __name__ == "__main__":
    main()
