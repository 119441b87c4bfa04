"""Count and time the SQL one webhook delivery runs, through the whole Django stack.

Run by `bench/run` against the seeded bench database (DATABASE_URL set): posts one
single-event delivery and one 100-event delivery with Django's test client (middleware,
DRF view, service) and prints each query with its duration, then the totals.
Optional: `--profile N` also profiles N single-event deliveries with cProfile.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from openloop import remote_events_body  # noqa: E402  (bench/ is on sys.path when run as a script)

URL = "/webhooks/stellantis/remote/"
ACTIONS = int(os.environ.get("BENCH_ACTIONS", "50000"))


def body(first: int, count: int) -> bytes:
    return remote_events_body(first, count, ACTIONS)


def post(client: Client, payload: bytes, header: str):
    return client.post(URL, payload, content_type="application/json", headers={"X-Fleetportal-Secret": header})


class Timer:
    """execute_wrapper that times each statement to the microsecond (the debug cursor rounds to ms)."""

    def __init__(self):
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - started, sql))


def show(client: Client, header: str, label: str, payload: bytes, repeat_payload: bytes) -> None:
    post(client, repeat_payload, header)  # warm: the first request imports and connects
    timer = Timer()
    with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(timer):
        started = time.perf_counter()
        response = post(client, payload, header)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content
    in_db = sum(t for t, _ in timer.queries)
    print(f"\n{label}: HTTP {response.status_code} {response.content.decode()}")
    print(
        f"  {len(ctx.captured_queries)} statements (BEGIN/COMMIT included), {elapsed * 1000:.2f} ms in-process, "
        f"{in_db * 1000:.2f} ms of it waiting on the database"
    )
    for t, sql in timer.queries:
        sql = " ".join(sql.split())
        print(f"  {t * 1000:7.2f} ms  {sql[:140]}{'…' if len(sql) > 140 else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--header", required=True, help="X-Fleetportal-Secret value")
    parser.add_argument("--offset", type=int, default=0, help="first event number (bench/run keeps the loads above it)")
    parser.add_argument("--profile", type=int, default=0, help="also cProfile this many single-event deliveries")
    args = parser.parse_args()
    client = Client(HTTP_HOST="127.0.0.1")  # bench/run allows only that host
    show(client, args.header, "single-event delivery", body(args.offset, 1), body(args.offset + 1, 1))
    show(client, args.header, "100-event delivery", body(args.offset + 1000, 100), body(args.offset + 2000, 100))
    if args.profile:
        payloads = [body(args.offset + 10_000 + i, 1) for i in range(args.profile)]
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for p in payloads:
            post(client, p, args.header)
        profiler.disable()
        elapsed = time.perf_counter() - started
        print(f"\n{args.profile} single-event deliveries in-process: {elapsed / args.profile * 1000:.2f} ms each")
        pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(40)


if __name__ == "__main__":
    main()
