"""Simulator throughput (issue 14): how many remote POSTs per second the embedded simulator takes.

`make bench-simulator`. Needs PostgreSQL at BENCH_SIM_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/fleetportal_simbench; created if missing, its simulator
tables emptied and reseeded on every run, so its name must contain "bench").

1. migrate, then seed one fleet of N vehicles and one Running callback (`--seed`, in a child
   process with Django set up);
2. count the queries of one POST through the whole Django stack (`--queries`);
3. start gunicorn (`fleetportal.wsgi`, SIMULATOR_ENABLED=1, DEBUG=0, latency 0) and post M
   remote commands with C concurrent clients (a thread pool, one `requests.Session` each),
   in slices that alternate with the same client doing `GET /healthz` on the same gunicorn,
   so that other load on the machine weighs on both sides of the ratio;
4. restart gunicorn with SIMULATOR_LATENCY_MS (300 ms) and post again: with C clients each
   answer takes the latency, so about C / latency requests per second are expected.

No q2 cluster runs: the pump's tasks wait in the queue, as they would behind a busy cluster,
and the POST path is measured alone. Prints a table and saves it with the numbers as
bench/results/<UTC time>-simulator.txt and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cpu as proc_cpu  # bench/cpu.py
import requests
from gunicorn_server import Server  # bench/gunicorn_server.py (bench/ is the script's own folder, first on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = str(ROOT / ".venv" / "bin" / "python")
PATH = "simulator/connectedcar/v3"
CREDENTIALS = ("bench", "bench-only-not-a-secret")
CLIENT_ID = "bench"
FLEET_NAME = "Simulator bench fleet"
TARGET = 300.0  # remote POSTs per second, latency off

# Commands a vehicle may take over and over; each is a RemoteType the callback serves.
BODIES = [
    {"horn": {"state": "Activated"}},
    {"lights": {"on": True}},
    {"wakeUp": {"action": "WakeUp"}},
    {"door": {"state": "Locked"}},
]


# --- in a child process, with Django ------------------------------------------------------------


def _django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")
    import django

    django.setup()


def seed(vehicles: int, target: str) -> None:
    """Empty the simulator's tables and q2's queue, seed the fleet; print what the client needs."""
    _django()
    from django.db import connection

    from simulator import seeding, vendor

    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or "bench" not in name:
        sys.exit(f"refusing to seed {connection.vendor} database {name!r}: its name must contain 'bench'")
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE simulator_simnotification, simulator_simevent, simulator_simremoteaction, simulator_simcallback, "
            "simulator_simvehicle, simulator_simfleet, simulator_ratewindow, simulator_simpumplease, django_q_ormq "
            "RESTART IDENTITY CASCADE"
        )
    fleet = seeding.seed_world(fleet_name=FLEET_NAME, vehicle_count=vehicles, seed=14)
    callback = vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={
            "label": "bench",
            "callback": {"webhook": {"target": target, "name": "bench"}},
            "remoteTypes": ["Horn", "Lights", "WakeUp", "Doors"],
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    ids = list(fleet.vehicles.order_by("vin").values_list("id", flat=True))
    print(json.dumps({"fleet": fleet.id, "callback": callback.id, "vehicles": ids}))


def queries(world: dict) -> None:
    """The SQL of one remote POST through the whole Django stack (test client)."""
    _django()
    import base64

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    auth = "Basic " + base64.b64encode(settings.SIMULATOR_CREDENTIALS.encode()).decode()
    client = Client(HTTP_AUTHORIZATION=auth, SERVER_NAME="127.0.0.1")
    url = f"/{PATH}/fleets/{world['fleet']}/vehicles/{world['vehicles'][-1]}/callbacks/{world['callback']}/remotes"
    client.post(f"{url}?client_id={CLIENT_ID}", BODIES[0], content_type="application/json")  # warm
    with CaptureQueriesContext(connection) as captured:
        response = client.post(f"{url}?client_id={CLIENT_ID}", BODIES[1], content_type="application/json")
    assert response.status_code == 202, response.content
    statements = 0
    for query in captured.captured_queries:
        # The simulator sends several statements in one round trip (simulator.vendor._Booking): one line each.
        parts = _statements(query["sql"])
        statements += len(parts)
        for i, part in enumerate(parts):
            print(f"  {float(query['time']) * 1000 if i == 0 else 0:6.2f} ms  {'+ ' if i else ''}{part[:150]}")
    print(f"  {statements} statements in {len(captured)} round trips")


def _statements(sql: str) -> list[str]:
    """The statements of one query string: split at each ; outside quotes."""
    pieces = re.split(r"('(?:[^']|'')*')", sql)  # string literals at odd positions
    out, current = [], ""
    for n, piece in enumerate(pieces):
        if n % 2:
            current += piece
            continue
        first, *rest = piece.split(";")
        current += first
        for part in rest:
            out.append(current)
            current = part
    return [" ".join(s.split()) for s in [*out, current] if s.strip()]


# --- the client ---------------------------------------------------------------------------------


def load(urls_and_bodies: list[tuple[str, dict | None]], *, concurrency: int) -> dict:
    """Send every request with `concurrency` threads; requests per second and latencies."""
    local = threading.local()

    def one(item):
        url, body = item
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        if body is None:
            response = session.get(url, timeout=30)
        else:
            response = session.post(url, params={"client_id": CLIENT_ID}, json=body, auth=CREDENTIALS, timeout=30)
        return response.status_code, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, urls_and_bodies))
    elapsed = time.perf_counter() - started
    latencies = sorted(r[1] for r in results)
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "requests": len(results),
        "seconds": elapsed,
        "rate": len(results) / elapsed,
        "statuses": statuses,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _requests(base: str, world: dict, count: int, start: int) -> list[tuple[str, dict]]:
    vehicles = world["vehicles"]
    out = []
    for n in range(start, start + count):
        vehicle = vehicles[n % len(vehicles)]
        body = {"label": f"bench-{n:07d}", **BODIES[(n // len(vehicles)) % len(BODIES)]}
        out.append((f"{base}/{PATH}/fleets/{world['fleet']}/vehicles/{vehicle}/callbacks/{world['callback']}/remotes", body))
    return out


def measure(server: Server, world: dict, *, dsn: str, commands: int, concurrency: int, slices: int, start: int,
            baseline: bool):
    """Alternate slices of remote POSTs and of GET /healthz; totals of each side and where the CPU went."""
    sides = {"remote": [], "healthz": []}
    slice_cpu = {"remote": [], "healthz": []}  # app + PostgreSQL CPU ms per request, slice by slice
    # gunicorn, PostgreSQL backends, the client, the whole machine
    cpu = {side: {"app": 0.0, "pg": 0.0, "client": 0.0, "machine": 0.0} for side in sides}
    per_slice = max(1, commands // slices)
    load(_requests(server.base, world, min(concurrency * 4, per_slice), start + 10**6), concurrency=concurrency)  # warm-up
    for i in range(slices):
        runs = [("remote", _requests(server.base, world, per_slice, start + i * per_slice))]
        if baseline:
            runs.append(("healthz", [(f"{server.base}/healthz", None)] * per_slice))
        for side, items in runs:
            before = (proc_cpu.tree(server.process.pid), proc_cpu.postgres(dsn), proc_cpu.own(), proc_cpu.machine_busy())
            sides[side].append(load(items, concurrency=concurrency))
            after = (proc_cpu.tree(server.process.pid), proc_cpu.postgres(dsn), proc_cpu.own(), proc_cpu.machine_busy())
            for key, b, a in zip(("app", "pg", "client", "machine"), before, after, strict=True):
                cpu[side][key] += a - b
            slice_cpu[side].append(round(1000 * ((after[0] - before[0]) + (after[1] - before[1])) / len(items), 2))
    summary = {}
    for side, results in sides.items():
        if not results:
            continue
        total = sum(r["requests"] for r in results)
        seconds = sum(r["seconds"] for r in results)
        statuses: dict[str, int] = {}
        for r in results:
            for status, n in r["statuses"].items():
                statuses[str(status)] = statuses.get(str(status), 0) + n
        summary[side] = {
            "requests": total,
            "rate": total / seconds,
            "slice_rates": [round(r["rate"], 1) for r in results],
            "slice_app_pg_cpu_ms_per_request": slice_cpu[side],
            "statuses": statuses,
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": max(r["p99_ms"] for r in results),
            "server_cpu_ms_per_request": 1000 * cpu[side]["app"] / total,
            "pg_cpu_ms_per_request": 1000 * cpu[side]["pg"] / total,
            "client_cpu_ms_per_request": 1000 * cpu[side]["client"] / total,
            "machine_busy_cores": cpu[side]["machine"] / seconds,
            # Cores the rest of the machine (other people's work) took meanwhile.
            "others_cores": max(0.0, cpu[side]["machine"] - cpu[side]["app"] - cpu[side]["pg"] - cpu[side]["client"])
            / seconds,
        }
        ours = (cpu[side]["app"] + cpu[side]["pg"] + cpu[side]["client"]) / total
        # What the same work would reach with every core to itself: CPU-bound, as it is here.
        summary[side]["projected_rate_idle_machine"] = (os.cpu_count() or 1) / ours if ours else 0.0
    return summary


# --- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=int(os.environ.get("BENCH_SIM_VEHICLES", 500)))
    parser.add_argument("--commands", type=int, default=int(os.environ.get("BENCH_SIM_COMMANDS", 3000)))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_SIM_CONCURRENCY", 16)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_SIM_WORKERS", 4)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_SIM_THREADS", 1)),
                        help="gunicorn threads per worker for the latency-0 run (1: sync workers)")
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=int(os.environ.get("BENCH_SIM_LATENCY_MS", 300)))
    parser.add_argument("--latency-commands", type=int, default=int(os.environ.get("BENCH_SIM_LATENCY_COMMANDS", 800)))
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queries", metavar="WORLD_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.vehicles, "http://127.0.0.1:9/discard")
        return
    if args.queries:
        queries(json.loads(args.queries))
        return

    db_url = os.environ.get("BENCH_SIM_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_simbench")
    parts = urlsplit(db_url)
    db_name = parts.path.lstrip("/")
    if "bench" not in db_name:
        sys.exit(f"bench: the database name must contain 'bench' (it is emptied): {db_name}")
    import psycopg

    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    dsn = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            print(f"bench: creating database {db_name}")
            conn.execute(f'CREATE DATABASE "{db_name}"')

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results = HERE / "results"
    logs = results / f"{stamp}-simulator-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": db_url, "DEBUG": "0", "SECRET_KEY": "bench-only-not-a-secret", "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0", "SIMULATOR_ENABLED": "1", "CONN_MAX_AGE": "600",
        "SIMULATOR_CREDENTIALS": ":".join(CREDENTIALS), "SIMULATOR_LATENCY_MS": "0", "SIMULATOR_LATENCY_JITTER_MS": "0",
        "SIMULATOR_RATE_LIMIT_PER_SECOND": "0", "SIMULATOR_RATE_LIMIT_PER_DAY": "0",
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    me = [PY, str(Path(__file__).resolve())]
    print(f"bench: migrate and seed {db_name} ({args.vehicles} vehicles)")
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    world = json.loads(
        subprocess.run([*me, "--seed", "--vehicles", str(args.vehicles)], cwd=ROOT, env=env, check=True,
                       capture_output=True, text=True).stdout.strip().splitlines()[-1]
    )
    lines = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "simulator"], cwd=ROOT).returncode != 0
    say(f"simulator throughput benchmark, {stamp}, commit {commit}{' (+ uncommitted simulator changes)' if dirty else ''}")
    say(f"{os.cpu_count()} CPU, Python {platform.python_version()}, load average before: {os.getloadavg()[0]:.2f}")
    say()
    say("queries of one remote POST (Django test client against the seeded database):")
    done = subprocess.run([*me, "--queries", json.dumps({**world, "vehicles": world["vehicles"][-2:]})],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench: counting queries failed:\n{done.stderr}")
    for line in done.stdout.rstrip().splitlines():
        say(line)
    say()

    report = {"stamp": stamp, "commit": commit, "args": vars(args)}
    workers = f"{args.workers} {'sync workers' if args.threads <= 1 else f'gthread workers × {args.threads} threads'}"
    server = Server(env, workers=args.workers, threads=args.threads, log=logs / "latency0.log")
    try:
        report["latency_0"] = measure(server, world, dsn=dsn, commands=args.commands, concurrency=args.concurrency,
                                      slices=args.slices, start=0, baseline=True)
    finally:
        server.stop()
    r, h = report["latency_0"]["remote"], report["latency_0"]["healthz"]
    say(f"latency 0: gunicorn {workers}, {args.concurrency} concurrent clients, {args.commands} commands over "
        f"{args.vehicles} vehicles, {args.slices} slices alternating with GET /healthz")
    say(f"{'load':<24} {'req/s':>6} {'slices':>14} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/req: app':>16} {'PG':>5} "
        f"{'client':>6} {'others':>7} {'idle-machine req/s':>19}  statuses")
    for name, side in (("remote POST", r), ("GET /healthz (baseline)", h)):
        say(f"{name:<24} {side['rate']:>6.0f} {' '.join(f'{x:.0f}' for x in side['slice_rates']):>14} "
            f"{side['p50_ms']:>7.1f} {side['p99_ms']:>7.1f} {side['server_cpu_ms_per_request']:>16.2f} "
            f"{side['pg_cpu_ms_per_request']:>5.2f} {side['client_cpu_ms_per_request']:>6.2f} "
            f"{side['others_cores']:>7.2f} {side['projected_rate_idle_machine']:>19.0f}  {side['statuses']}")
    say("(others: cores used by everything else meanwhile; idle-machine req/s: CPU cores ÷ CPU of app + PG + client "
        "per request)")
    say(f"remote POST, app + PG CPU ms/req slice by slice: {' '.join(f'{x:.2f}' for x in r['slice_app_pg_cpu_ms_per_request'])} "
        "(a cost that grows with the rows booked would show here)")
    say(f"remote POST ÷ healthz: {r['rate'] / h['rate']:.2f}; target ≥ {TARGET:.0f}/s: {'met' if r['rate'] >= TARGET else 'NOT met'}")
    say()

    if args.latency_ms > 0:
        # Twice the clients: gunicorn's workers do not share connections evenly, and a worker with
        # all its threads asleep would queue the next request behind a whole latency.
        slots = 2 * args.concurrency
        threads = max(1, -(-slots // args.workers))
        lenv = {**env, "SIMULATOR_LATENCY_MS": str(args.latency_ms)}
        server = Server(lenv, workers=args.workers, threads=threads, log=logs / "latency.log")
        try:
            report["latency"] = measure(server, world, dsn=dsn, commands=args.latency_commands, concurrency=args.concurrency,
                                        slices=1, start=args.commands, baseline=False)
        finally:
            server.stop()
        lat = report["latency"]["remote"]
        expected = args.concurrency / (args.latency_ms / 1000)
        say(f"latency {args.latency_ms} ms: gunicorn {args.workers} gthread workers × {threads} threads, "
            f"{args.concurrency} concurrent clients, {args.latency_commands} commands")
        say(f"remote POST {lat['rate']:.1f}/s (expected ≈ C / latency = {expected:.1f}/s), p50 {lat['p50_ms']:.0f} ms, "
            f"p99 {lat['p99_ms']:.0f} ms, others {lat['others_cores']:.2f} cores, statuses {lat['statuses']}")
    report["text"] = lines
    (results / f"{stamp}-simulator.json").write_text(json.dumps(report, indent=2))
    (results / f"{stamp}-simulator.txt").write_text("\n".join(lines) + "\n")
    print(f"\nbench: saved bench/results/{stamp}-simulator.txt and .json")


if __name__ == "__main__":
    main()
