"""Scale-out (issue 14): one bulk, dispatched by one and then by two q2 clusters on the Redis broker,
with one and then two gunicorn processes on one PostgreSQL. `make bench-scaleout`.

What it checks, on this machine, over real sockets:
- no command is sent twice: the simulator stores each remote POST with its label (the portal's
  action id); a label stored twice fails the run;
- the time from the POST of the bulk request to every command handed to the vendor, with one
  cluster and with two (the same vehicles, the same command, the same simulated latency), so the
  ratio says whether a second cluster adds throughput.

The deployment shape it runs is the one docs/operations.md describes ("Scaling out"): K gunicorn
processes sharing one port (SO_REUSEPORT, as K containers behind one load balancer), K
`manage.py qcluster` processes on one Redis broker, one PostgreSQL.

    BENCH_SCALE_DATABASE_URL   postgres://postgres@127.0.0.1:5432/fleetportal_scaleout_bench (dropped and created)
    BENCH_SCALE_REDIS          redis://127.0.0.1:6379/7 (flushed)
    --vehicles 2000 --latency-ms 300 --concurrency 16

Prints a table and saves bench/results/<UTC time>-scaleout.{txt,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
HORN = {"horn": {"state": "Activated"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recreate(dsn: str) -> None:
    import psycopg

    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


class Stack:
    """K gunicorn processes on one port and K q2 clusters, all on the same database and broker."""

    def __init__(self, env: dict, *, processes: int, port: int, logs: Path):
        self.procs: list[subprocess.Popen] = []
        self.files = []
        base = f"http://127.0.0.1:{port}"
        for n in range(processes):
            log = (logs / f"web-{processes}-{n}.log").open("w")
            self.files.append(log)
            self.procs.append(subprocess.Popen(
                [GUNICORN, "fleetportal.wsgi:application", "--reuse-port", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2", "--worker-class", "gthread", "--threads", "8", "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
        for _ in range(150):
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            self.stop()
            sys.exit(f"gunicorn not answering on {base}; see {logs}")
        for n in range(processes):
            log = (logs / f"worker-{processes}-{n}.log").open("w")
            self.files.append(log)
            self.procs.append(subprocess.Popen(
                [PY, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for f in self.files:
            f.close()


def _duplicates(dsn: str) -> tuple[int, int]:
    """(labels stored more than once, remote POSTs stored) in the simulator's tables."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        dup = conn.execute(
            "SELECT count(*) FROM (SELECT remote->>'label' AS label FROM simulator_simremoteaction GROUP BY 1 HAVING count(*) > 1) d"
        ).fetchone()[0]
        total = conn.execute("SELECT count(*) FROM simulator_simremoteaction").fetchone()[0]
    return dup, total


def run_bulk(base: str, token: str, fleet_id: str, *, timeout: float) -> dict:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    started = time.perf_counter()
    r = session.post(f"{base}/api/v1/bulk/", json={"command": HORN, "fleet": fleet_id}, timeout=30)
    answered = time.perf_counter() - started
    if r.status_code != 202:
        sys.exit(f"POST /api/v1/bulk/ answered {r.status_code}: {r.text[:500]}")
    url = r.headers.get("Location") or r.json().get("url")
    url = url if url.startswith("http") else base + url
    deadline = time.monotonic() + timeout
    body = {}
    while time.monotonic() < deadline:
        body = session.get(url, timeout=30).json()
        counts = body.get("counts", {})
        if body.get("total") and counts.get("queued", 0) == 0 and counts.get("submitting", 0) == 0:
            break
        time.sleep(0.25)
    else:
        sys.exit(f"bulk not handed over within {timeout:.0f} s: {body}")
    submitted = time.perf_counter() - started
    return {"answered_s": answered, "all_submitted_s": submitted, "total": body.get("total"), "counts": body.get("counts"),
            "rate": (body.get("total") or 0) / submitted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--lanes", type=int, default=4, help="BULK_LANES: dispatchers per bulk (each cluster runs 2 workers)")
    args = parser.parse_args()

    dsn = os.environ.get("BENCH_SCALE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_scaleout_bench")
    broker = os.environ.get("BENCH_SCALE_REDIS", "redis://127.0.0.1:6379/7")
    _recreate(dsn)
    _flush_redis(broker)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    logs = HERE / "results" / "scaleout-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "Q2_BROKER": broker,
        "DEBUG": "1",  # the demo's settings: the simulator mounted, http on 127.0.0.1
        "SECRET_KEY": "scaleout-bench-not-a-secret-0123456789abcdef",
        "PORT": str(port),
        "PORTAL_PUBLIC_URL": base,
        "SIMULATOR_CREDENTIALS": "bench:bench-only-not-a-secret",
        "STELLANTIS_USER": "bench",
        "STELLANTIS_PASSWORD": "bench-only-not-a-secret",
        "SIMULATOR_LATENCY_MS": str(args.latency_ms),
        "BULK_CONCURRENCY": str(args.concurrency),
        "REMOTE_ACTION_TTL": "3600",
        "Q2_WORKERS": "2",
        "BULK_LANES": str(args.lanes),
        "PROMETHEUS_MULTIPROC_DIR": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

    results = []
    for processes in (1, 2):
        stack = Stack(env, processes=processes, port=port, logs=logs)
        try:
            if processes == 1:
                seeded = subprocess.run(
                    [PY, "manage.py", "seed_demo", "--vehicles", str(args.vehicles), "--json"],
                    cwd=ROOT, env=env, check=True, capture_output=True, text=True,
                )
                seed = json.loads(seeded.stdout)
            before = _duplicates(dsn)[1]
            outcome = run_bulk(base, seed["api_token"], seed["fleet_id"], timeout=args.timeout)
            time.sleep(2)  # anything sent late would show up as a duplicate
            dup, total = _duplicates(dsn)
            outcome.update(processes=processes, posts=total - before, duplicate_labels=dup)
            results.append(outcome)
            print(f"{processes} web + {processes} q2 cluster(s): {outcome['total']} commands, bulk answered in "
                  f"{outcome['answered_s'] * 1000:.0f} ms, all handed over in {outcome['all_submitted_s']:.1f} s "
                  f"({outcome['rate']:.0f}/s), {outcome['posts']} POSTs at the simulator, {dup} label(s) sent twice", flush=True)
        finally:
            stack.stop()
    ratio = results[0]["all_submitted_s"] / results[1]["all_submitted_s"]
    verdict = "PASS" if all(r["duplicate_labels"] == 0 for r in results) and ratio > 1 else "FAIL"
    summary = (f"two clusters vs one: {ratio:.2f}x the throughput; duplicates "
               f"{[r['duplicate_labels'] for r in results]}; latency {args.latency_ms} ms, concurrency {args.concurrency} — {verdict}")
    print(summary)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = HERE / "results"
    (out / f"{stamp}-scaleout.json").write_text(json.dumps({"args": vars(args), "results": results, "ratio": ratio}, indent=2))
    (out / f"{stamp}-scaleout.txt").write_text(summary + "\n")
    if verdict != "PASS":
        sys.exit(1)


if __name__ == "__main__":
    main()
