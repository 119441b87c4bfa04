"""Bulk dispatch against a raw client (issue 14): N horn commands through the portal's bulk request
vs a plain `requests` client posting the same bodies to the same simulator, same concurrency C.

`.venv/bin/python bench/bulk.py [--vehicles N] [--concurrency C] [--latencies 300,0]`. Needs
PostgreSQL at BENCH_BULK_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/fleetportal_bulkbench;
dropped and created again on every run, so its name must contain "bench").

For each simulated latency (300 ms, then 0):
1. gunicorn serves the portal with the simulator mounted (SIMULATOR_LATENCY_MS), 2 gthread workers;
   `seed_demo --vehicles N` grows the demo fleet to N vehicles (first run only);
2. raw client: C threads, one `requests.Session` each, POST one horn per vehicle straight to the
   simulator's remote endpoint; the time until the last answer;
3. portal: `POST /api/v1/bulk/` {"command": horn, "fleet": <fleet_id>} with the demo partner token
   (its answer time is reported: the < 1 s target), then the bulk's background work — the same
   `bulk.services.run` a q2 task calls, slice after slice, in a child process with
   BULK_CONCURRENCY=C — until every command is submitted; the time from the POST to the last
   submission, the dispatcher's CPU and its SQL statements per command.
The two sides take turns (`--rounds 2`, the default: raw, portal, portal, raw), so that what drifts
during a run — a checkpoint, the tables growing, a neighbour — weighs on both; each side's rate is
all its commands over all its legs' time, and the ratio is portal ÷ raw of those.
No q2 cluster runs: q2's pickup delay (poll 0.2 s) is not in the portal's time, and the
simulator's notification pump waits in the queue for both sides alike. Saves
bench/results/<UTC time>-bulk.txt and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cpu  # bench/cpu.py
import requests
from gunicorn_server import (
    Server as _Server,  # bench/gunicorn_server.py (bench/ is the script's own folder, first on sys.path)
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = str(ROOT / ".venv" / "bin" / "python")
PATH = "simulator/connectedcar/v3"
CREDENTIALS = ("bench", "bench-only-not-a-secret")
CLIENT_ID = "fleetportal-demo"
HORN = {"horn": {"state": "Activated"}}
TARGETS = {300: 0.8, 0: 0.7}  # portal ÷ raw client, per latency (ms)


# --- in a child process, with Django ---------------------------------------------------------------


def dispatch() -> None:
    """Set up Django (a warm worker, as a q2 one is), then read a bulk id on stdin and run its
    background work to the end; print seconds, CPU and transactions."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")
    import django

    django.setup()
    from django.db import connection

    import bulk.services

    # Imported, and the long-lived objects set aside from the GC, before the clock starts: as in a
    # worker that has run a bulk before (a q2 worker's first one pays ~30 ms for it, once).
    bulk.services._set_aside_long_lived_objects()

    # Every SQL statement of the dispatcher, its submitting threads included (each thread opens its own connection).
    executed = [0]
    shapes: Counter = Counter()  # BENCH_BULK_SQL=1: which statements, by their first 90 characters
    lock = threading.Lock()
    by_shape = bool(os.environ.get("BENCH_BULK_SQL"))

    def count(execute, sql, params, many, context):
        with lock:
            executed[0] += 1
            if by_shape:
                shapes[" ".join(sql.split())[:90]] += 1
        return execute(sql, params, many, context)

    from django.db.backends.signals import connection_created

    connection_created.connect(lambda sender, connection, **kw: connection.execute_wrappers.append(count), weak=False)
    connection.close()
    print("ready", flush=True)
    bulk_id = sys.stdin.readline().strip()

    from bulk import services
    from bulk.models import OPEN_STATUSES, BulkRequest
    from remotes.models import ActionStatus, RemoteAction

    profiler, thread_profiles = None, []
    if os.environ.get("BENCH_BULK_PROFILE"):  # where the dispatcher spends: its own thread and the submitting ones
        import cProfile

        # CPU time of each thread (not wall time: the threads mostly wait for answers), summed over them.
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        work = services.Submitter._work

        def profiled(self):
            mine = cProfile.Profile(time.thread_time)
            mine.enable()
            try:
                work(self)
            finally:
                mine.disable()
                with lock:
                    thread_profiles.append(mine)

        services.Submitter._work = profiled
    trace = []  # BENCH_BULK_TRACE=1: (what, start, wall s, thread CPU s) of the dispatcher's own steps and GC pauses
    if os.environ.get("BENCH_BULK_TRACE"):
        import gc

        def traced(name, fn):
            def wrapper(*args, **kwargs):
                t0, c0 = time.perf_counter(), time.thread_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    trace.append((name, t0, time.perf_counter() - t0, time.thread_time() - c0))
            return wrapper

        services.expand = traced("expand", services.expand)
        services._create_batch = traced("create", services._create_batch)
        services.remotes.record_submitted = traced("record", services.remotes.record_submitted)
        gc_start = {}

        def on_gc(phase, info):
            if phase == "start":
                gc_start["t"] = time.perf_counter()
            else:
                trace.append((f"gc{info['generation']}", gc_start["t"], time.perf_counter() - gc_start["t"], 0.0))

        gc.callbacks.append(on_gc)

        def ticker():  # how long a thread that only sleeps 1 ms waits for its turn (the GIL)
            last = time.perf_counter()
            while True:
                time.sleep(0.001)
                now_ = time.perf_counter()
                if now_ - last > 0.02:
                    trace.append(("tick", last, now_ - last, 0.0))
                last = now_

        if os.environ["BENCH_BULK_TRACE"] == "2":  # it costs the others a wake-up every millisecond
            threading.Thread(target=ticker, daemon=True).start()
    before_cpu = resource.getrusage(resource.RUSAGE_SELF)
    started, wall_started = time.perf_counter(), time.time()
    while BulkRequest.objects.filter(pk=bulk_id, status__in=OPEN_STATUSES).exists():
        services.run(bulk_id)
    seconds = time.perf_counter() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        with open(os.environ["BENCH_BULK_PROFILE"], "w") as out:
            stats = pstats.Stats(profiler, stream=out)
            for one in thread_profiles:
                stats.add(one)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
            if os.environ.get("BENCH_BULK_CALLERS"):  # who calls these (comma-separated function names)
                for name in os.environ["BENCH_BULK_CALLERS"].split(","):
                    stats.print_callers(name)
    after_cpu = resource.getrusage(resource.RUSAGE_SELF)
    if trace:
        totals: dict = {}
        for name, t0, wall, cpu_s in trace:
            n, w, c, worst = totals.get(name, (0, 0.0, 0.0, 0.0))
            totals[name] = (n + 1, w + wall, c + cpu_s, max(worst, wall))
            if wall > 0.03:
                print(f"trace {name:7s} at {t0 - started:7.3f} s (epoch {t0 - started + wall_started:.3f}): {1000 * wall:6.1f} ms wall, "
                      f"{1000 * cpu_s:6.1f} ms CPU", file=sys.stderr)
        for name, (n, w, c, worst) in totals.items():
            print(f"trace {name:7s} x{n}: {1000 * w:8.1f} ms wall ({1000 * worst:.1f} worst), {1000 * c:8.1f} ms CPU", file=sys.stderr)
    for shape, n in shapes.most_common(25):
        print(f"{n:7d}  {shape}", file=sys.stderr)
    bulk = BulkRequest.objects.get(pk=bulk_id)
    actions = RemoteAction.objects.filter(bulk_item__bulk=bulk)
    print(json.dumps({
        "seconds": seconds,
        "cpu": (after_cpu.ru_utime + after_cpu.ru_stime) - (before_cpu.ru_utime + before_cpu.ru_stime),
        "actions": actions.count(),
        "submitted": actions.exclude(status__in=(ActionStatus.QUEUED, ActionStatus.SUBMITTING)).exclude(submitted_at=None).count(),
        "last_submitted": max(actions.values_list("submitted_at", flat=True), default=None).timestamp() if actions.exists() else None,
        "first_submitted": min(actions.exclude(submitted_at=None).values_list("submitted_at", flat=True), default=None).timestamp()
        if actions.exists() else None,
        "refused": bulk.items.filter(state="refused").count(),
        "statements": executed[0],
    }))


# --- the bench ---------------------------------------------------------------------------------------


def Server(env: dict, *, log: Path, workers: int = 2, threads: int = 24):  # noqa: N802 (bench/simulator.py's, set up for the portal to call itself)
    return _Server(env, workers=workers, threads=threads, log=log, public=True)


def raw_client(base: str, world: dict, *, concurrency: int, tag: str) -> dict:
    local = threading.local()
    url = f"{base}/{PATH}/fleets/{world['fleet_id']}/vehicles/{{vid}}/callbacks/{world['callback']}/remotes"

    def one(n_vid):
        n, vid = n_vid
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        r = session.post(url.format(vid=vid), params={"client_id": CLIENT_ID}, json={"label": f"raw-{tag}-{n:06d}", **HORN},
                         auth=CREDENTIALS, timeout=60)
        return r.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = list(pool.map(one, enumerate(world["vehicle_ids"])))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rate": len(statuses) / seconds, "statuses": {str(s): statuses.count(s) for s in set(statuses)}}


def spent(before: tuple, postgres: float, *, client: float, server, n: int, seconds: float) -> dict:
    """CPU per command (ms) since `before` (machine busy, server tree[, own]): the web server (the
    simulator and the portal's API), PostgreSQL, the client or dispatcher; and the cores the rest
    of the machine used meanwhile (other work sharing the 2 cores: a run with much of it is unfair)."""
    busy = cpu.machine_busy() - before[0]
    server_cpu = cpu.tree(server.process.pid) - before[1]
    ours = server_cpu + postgres + client
    return {
        "server": 1000 * server_cpu / n, "postgres": 1000 * postgres / n, "client": 1000 * client / n,
        "total": 1000 * ours / n, "others_cores": max(0.0, busy - ours) / max(seconds, 1e-9),
    }


def world_of(env: dict) -> dict:
    """The demo fleet's vendor ids, its callback at the simulator and its vehicles' ids."""
    code = (
        "import json; from vehicles.models import Fleet; from callbacks.models import Callback;"
        "f = Fleet.objects.get(name='Demo fleet');"
        "cb = Callback.objects.filter(fleet=f).exclude(external_id='').order_by('created_at').first();"
        "print(json.dumps({'fleet_id': f.external_id, 'callback': cb.external_id,"
        " 'vehicle_ids': list(f.vehicles.order_by('vin').values_list('external_id', flat=True))}))"
    )
    out = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def overall_rate(legs: list) -> float:
    """Every command of a side's legs over their summed time."""
    return sum(leg["commands"] for leg in legs) / sum(leg["seconds"] for leg in legs)


def cpu_per_command(legs: list) -> float:
    return sum(leg["cpu_per_command"]["total"] * leg["commands"] for leg in legs) / sum(leg["commands"] for leg in legs)


def raw_leg(server, world: dict, db_url: str, *, concurrency: int, tag: str) -> dict:
    cpu_before = (cpu.machine_busy(), cpu.tree(server.process.pid), cpu.own())
    pg = cpu.PostgresSampler(db_url)
    leg = raw_client(server.base, world, concurrency=concurrency, tag=tag)
    leg["commands"] = len(world["vehicle_ids"])
    leg["cpu_per_command"] = spent(cpu_before, pg.stop(), client=cpu.own() - cpu_before[2], server=server, n=leg["commands"],
                                   seconds=leg["seconds"])
    return leg


def portal_leg(server, world: dict, db_url: str, session: requests.Session) -> dict:
    """One bulk request of a horn to the whole fleet, its background work in a warm child process."""
    worker = subprocess.Popen([PY, str(Path(__file__).resolve()), "--dispatch"], cwd=ROOT, env=server.env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              stderr=None if os.environ.get("BENCH_BULK_SQL") or os.environ.get("BENCH_BULK_TRACE") else subprocess.DEVNULL)
    while worker.stdout.readline().strip() != "ready":
        if worker.poll() is not None:
            sys.exit("bench: the dispatcher process did not start")
    cpu_before = (cpu.machine_busy(), cpu.tree(server.process.pid))
    pg = cpu.PostgresSampler(db_url)
    started = time.time()
    answer = session.post(f"{server.base}/api/v1/bulk/", json={"command": HORN, "fleet": world["fleet_id"]}, timeout=60)
    answered = time.time() - started
    if answer.status_code != 202:
        worker.kill()
        sys.exit(f"bench: POST /api/v1/bulk/ answered {answer.status_code}: {answer.text[:500]}")
    out, _ = worker.communicate(answer.json()["id"] + "\n", timeout=3600)
    leg = json.loads(out.strip().splitlines()[-1])
    leg["commands"] = leg["submitted"]
    leg["cpu_per_command"] = spent(cpu_before, pg.stop(), client=leg["cpu"], server=server, n=max(leg["submitted"], 1),
                                   seconds=time.time() - started)
    leg["answer_seconds"] = answered
    leg["seconds"] = leg["last_submitted"] - started  # from the POST to the last submission
    leg["seconds_to_first_submitted"] = leg["first_submitted"] - started
    leg["rate"] = leg["submitted"] / leg["seconds"]
    return leg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=int(os.environ.get("BENCH_BULK_VEHICLES", 1000)))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_BULK_CONCURRENCY", 16)))
    parser.add_argument("--latencies", default=os.environ.get("BENCH_BULK_LATENCIES", "300,0"))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_BULK_ROUNDS", 2)),
                        help="legs per side, in turns: 2 is raw, portal, portal, raw")
    parser.add_argument("--dispatch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dispatch:
        dispatch()
        return

    db_url = os.environ.get("BENCH_BULK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bulkbench")
    parts = urlsplit(db_url)
    db_name = parts.path.lstrip("/")
    if "bench" not in db_name:
        sys.exit(f"bench: the database name must contain 'bench' (it is dropped): {db_name}")
    import psycopg

    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results = HERE / "results"
    logs = results / f"{stamp}-bulk-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ, "DATABASE_URL": db_url, "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "SECRET_KEY": "bench-only-not-a-secret", "ALLOWED_HOSTS": "127.0.0.1",
        "SIMULATOR_ENABLED": "1", "CONN_MAX_AGE": "600", "SIMULATOR_CREDENTIALS": ":".join(CREDENTIALS),
        "STELLANTIS_USER": CREDENTIALS[0], "STELLANTIS_PASSWORD": CREDENTIALS[1], "STELLANTIS_CLIENT_ID": CLIENT_ID,
        "SIMULATOR_RATE_LIMIT_PER_SECOND": "0", "SIMULATOR_RATE_LIMIT_PER_DAY": "0", "API_THROTTLE_RATE": "off",
        "BULK_CONCURRENCY": str(args.concurrency), "PYTHONWARNINGS": "ignore",
    }
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    lines, report = [], {"stamp": stamp, "args": vars(args), "runs": {}}

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    say(f"bulk dispatch benchmark, {stamp}, commit {commit}; {os.cpu_count()} CPU, Python {platform.python_version()}, "
        f"load average before: {os.getloadavg()[0]:.2f}")
    say(f"{args.vehicles} horn commands, concurrency C = {args.concurrency}")
    seeded = None
    for latency in [int(x) for x in args.latencies.split(",") if x.strip()]:
        server = Server({**env, "SIMULATOR_LATENCY_MS": str(latency)}, log=logs / f"latency{latency}.log")
        try:
            if seeded is None:
                t = time.perf_counter()
                out = subprocess.run([PY, "manage.py", "seed_demo", "--json", "--vehicles", str(args.vehicles)], cwd=ROOT,
                                     env=server.env, check=True, capture_output=True, text=True)
                seeded = json.loads(out.stdout)
                say(f"seed_demo --vehicles {args.vehicles}: {time.perf_counter() - t:.1f} s")
            world = world_of(server.env)
            session = requests.Session()
            session.headers["Authorization"] = f"Token {seeded['api_token']}"
            # Both sides take turns, raw first and last (ABBA with --rounds 2): what drifts during a
            # run (a checkpoint, the tables growing, a neighbour) weighs on both alike.
            # Warm-up, not counted: the server's workers and both databases' caches, for whichever leg is first.
            raw_client(server.base, {**world, "vehicle_ids": world["vehicle_ids"][:200]}, concurrency=args.concurrency, tag=f"{latency}-warm")
            order = ["raw", "portal", "portal", "raw"] * (args.rounds // 2) + (["raw", "portal"] if args.rounds % 2 else [])
            legs: dict = {"raw": [], "portal": []}
            say()
            say(f"latency {latency} ms:")
            for n, side in enumerate(order):
                if side == "raw":
                    leg = raw_leg(server, world, db_url, concurrency=args.concurrency, tag=f"{latency}-{n}")
                    say(f"  raw client      {len(world['vehicle_ids'])} POSTs in {leg['seconds']:6.1f} s = {leg['rate']:6.1f}/s  {leg['statuses']}")
                else:
                    leg = portal_leg(server, world, db_url, session)
                    sent = leg["submitted"]
                    say(f"  portal bulk     POST /api/v1/bulk/ answered in {leg['answer_seconds'] * 1000:.0f} ms; {sent} submitted "
                        f"({leg['refused']} refused before sending) {leg['seconds']:6.1f} s after it = {leg['rate']:6.1f}/s; "
                        f"the first {leg['seconds_to_first_submitted']:.2f} s after it (checking and expanding the selection)")
                    say(f"  dispatcher      {1000 * leg['cpu'] / max(sent, 1):.2f} ms CPU and {leg['statements'] / max(sent, 1):.1f} SQL "
                        "statements per command (in its process, submitting threads included; the simulator's side is in both runs)")
                numbers = leg["cpu_per_command"]
                say(f"  CPU ms/command  {'raw client' if side == 'raw' else 'portal':10}  web+simulator {numbers['server']:.2f}, "
                    f"PostgreSQL {numbers['postgres']:.2f}, client/dispatcher {numbers['client']:.2f} = {numbers['total']:.2f}; "
                    f"everything else on the machine: {numbers['others_cores']:.2f} cores")
                legs[side].append(leg)

            ratio, cpu_ratio = overall_rate(legs["portal"]) / overall_rate(legs["raw"]), cpu_per_command(legs["raw"]) / cpu_per_command(legs["portal"])
            each = [leg["rate"] for leg in legs["portal"]]
            report["runs"][latency] = {"raw": legs["raw"], "portal": legs["portal"], "ratio": ratio, "cpu_ratio": cpu_ratio,
                                       "order": order}
            say(f"  CPU ratio       {cpu_ratio:.2f} (raw client's CPU per command ÷ the portal's: the rate ratio on a machine "
                "with nothing else to do, both being CPU-bound at latency 0)")
            target = TARGETS.get(latency)
            say(f"  portal ÷ raw    {ratio:.2f} over {len(order)} legs ({' '.join(order)}; leg by leg "
                + ", ".join(f"{p / r:.2f}" for p, r in zip(each, [leg["rate"] for leg in legs["raw"]], strict=False)) + ")"
                + ("" if not target else f" (target ≥ {target}: {'met' if ratio >= target else 'NOT met'})" if args.vehicles >= 10_000
                   else f" (the target, ≥ {target}, is for 10,000 vehicles: with fewer, the start-up — the first chunk checked, "
                        "threads and connections opened — weighs more)"))
        finally:
            server.stop()
    report["text"] = lines
    (results / f"{stamp}-bulk.json").write_text(json.dumps(report, indent=2, default=str))
    (results / f"{stamp}-bulk.txt").write_text("\n".join(lines) + "\n")
    print(f"\nbench: saved bench/results/{stamp}-bulk.txt and .json")


if __name__ == "__main__":
    main()
