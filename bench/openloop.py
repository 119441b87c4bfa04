"""Open-loop load at a fixed rate: acknowledgement latency of single-event deliveries.

A closed-loop tool (wrk) waits for an answer before sending the next request, so a slow
server slows the load down and hides its own latency. Here request i leaves at
t0 + i/rate whatever the earlier ones are doing, and its latency is measured from that
planned instant (so a generator that falls behind counts against us, not for us).
Each request opens its own connection (gunicorn's sync workers close it anyway).

    .venv/bin/python bench/openloop.py --url http://127.0.0.1:8000/webhooks/stellantis/remote/ \
        --header '<key>.<secret>' --rate 200 --duration 15
"""

import argparse
import asyncio
import json
import math
import time
from urllib.parse import urlsplit

BASE = 1795600800  # 2026-11-25T10:00:00Z; event n is dated BASE + n ms (as in remote_events.lua)
STATUSES = ("Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle")


def remote_events_body(first: int, count: int, actions: int) -> bytes:
    """A RemoteEvents body of events first … first+count-1, numbered as remote_events.lua numbers them."""
    events = []
    for n in range(first, first + count):
        date = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE + n // 1000)) + f".{n % 1000:03d}Z"
        events.append(
            {
                "remoteActionId": f"bench-{n % actions:06d}",
                "vin": "VR3BENCH000000001",
                "eventDate": date,
                "remoteType": "Horn",
                "eventStatus": {"type": "Pending", "status": STATUSES[(n // actions) % len(STATUSES)]},
            }
        )
    return json.dumps({"callbackId": "bench-callback", "attributes": [], "events": events}, separators=(",", ":")).encode()


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def _one(host: str, port: int, request: bytes, timeout: float) -> int:
    async def exchange() -> int:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            await reader.read()  # the body, up to the server's close (Connection: close)
        finally:
            writer.close()
        return int(status_line.split()[1])

    return await asyncio.wait_for(exchange(), timeout)


async def _run(url: str, header: str, rate: float, duration: float, actions: int, offset: int, timeout: float) -> dict:
    parts = urlsplit(url)
    host, port, path = parts.hostname, parts.port or 80, parts.path or "/"
    total = int(rate * duration)
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    lags: list[float] = []
    loop = asyncio.get_running_loop()

    async def send(i: int, planned: float) -> None:
        body = remote_events_body(offset + i, 1, actions)
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"X-Fleetportal-Secret: {header}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        lags.append(loop.time() - planned)
        try:
            status = await _one(host, port, request, timeout)
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            key = type(exc).__name__
        else:
            key = str(status)
            latencies.append(loop.time() - planned)
        statuses[key] = statuses.get(key, 0) + 1

    tasks = []
    t0 = loop.time() + 0.05
    for i in range(total):
        planned = t0 + i / rate
        delay = planned - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, planned)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - t0
    ok = sorted(latencies)
    return {
        "planned_rate": rate,
        "sent": total,
        "elapsed_s": elapsed,
        "answers": statuses,
        "non200": sum(v for k, v in statuses.items() if k != "200"),
        "p50_ms": percentile(ok, 50) * 1000,
        "p99_ms": percentile(ok, 99) * 1000,
        "max_ms": (ok[-1] * 1000) if ok else math.nan,
        "max_send_lag_ms": max(lags) * 1000 if lags else math.nan,
    }


def run(*, url: str, header: str, rate: float = 200, duration: float = 15, actions: int = 50000, offset: int = 0, timeout: float = 5) -> dict:
    return asyncio.run(_run(url, header, rate, duration, actions, offset, timeout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--header", required=True, help="X-Fleetportal-Secret value")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--actions", type=int, default=50000)
    parser.add_argument("--offset", type=int, default=0, help="first event number (keep it unused)")
    args = parser.parse_args()
    result = run(url=args.url, header=args.header, rate=args.rate, duration=args.duration, actions=args.actions, offset=args.offset)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
