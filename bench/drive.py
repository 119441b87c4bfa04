"""Drive the benchmark loads against the two running gunicorns and print the table.

Started by `bench/run` (which owns the database and the processes); standard library
plus psycopg only, no Django. Each wrk load runs a warm-up, then its measured period in
slices that alternate with its ceiling's; every event of every request is new (see
remote_events.lua). Beside the rates it records
where the CPU went — the gunicorn workers, the PostgreSQL backends serving the bench
database, wrk itself — and checks that every acknowledged event became one new row
(a smaller count would mean the load measured the duplicate path).
"""

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import openloop
import psycopg

HERE = Path(__file__).resolve().parent
WEBHOOK = "/webhooks/stellantis/remote/"
CLK_TCK = os.sysconf("SC_CLK_TCK")
OFFSET_STEP = 1_000_000_000  # event numbers reserved per load: far more than one load can send

TARGETS = {"single": 0.5, "batch": 0.33, "p99_ms": 50.0}


# --- CPU accounting from /proc ------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()  # fields from `state` on; the command may hold spaces


def cpu_seconds(pids: list[int]) -> float:
    """CPU time the processes have run, from the scheduler's nanosecond counter."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # gone meanwhile
    return total / 1e9


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            rest = _stat(int(entry.name))
            if rest and int(rest[1]) == pid:
                found.append(int(entry.name))
    return found


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU used between start() and stop() by the workers of one gunicorn, the PostgreSQL
    backends connected to the bench database, this script's children (wrk) and the machine."""

    def __init__(self, master_pid: int, dsn_conn: psycopg.Connection, dbname: str):
        self.master_pid, self.conn, self.dbname = master_pid, dsn_conn, dbname

    def _backends(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.dbname,)
        ).fetchall()
        return [r[0] for r in rows]

    def _pg_counters(self) -> tuple:
        # Cluster-wide WAL (other databases' writes count too, usually little) and this
        # database's blocks read from outside shared_buffers.
        wal = self.conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone()
        read = self.conn.execute("SELECT blks_read FROM pg_stat_database WHERE datname = %s", (self.dbname,)).fetchone()
        return int(wal[0]), int(wal[1]), int(read[0])

    def start(self) -> None:
        self.p0 = self._pg_counters()
        self.workers, self.backends = children(self.master_pid), self._backends()
        self.w0, self.b0 = cpu_seconds(self.workers), cpu_seconds(self.backends)
        self.c0 = _loadgen_cpu()
        self.m0 = machine_jiffies()

    def stop(self) -> dict:
        m1 = machine_jiffies()
        busy, total = m1[0] - self.m0[0], m1[1] - self.m0[1]
        result = {
            "app_cpu_s": cpu_seconds(self.workers) - self.w0,
            "pg_cpu_s": cpu_seconds(self.backends) - self.b0,
            "loadgen_cpu_s": _loadgen_cpu() - self.c0,
            "machine_busy": busy / total if total else 0.0,
            "wall_s": total / CLK_TCK / (os.cpu_count() or 1),
            "workers": len(self.workers),
            "backends": len(self.backends),
        }
        time.sleep(1.1)  # PostgreSQL flushes backend statistics at most once a second
        p1 = self._pg_counters()
        result.update(wal_bytes=p1[0] - self.p0[0], wal_fpi=p1[1] - self.p0[1], blocks_read=p1[2] - self.p0[2])
        # Whatever else ran meanwhile (other tests on the machine, PostgreSQL's own helpers):
        # a large value means the numbers of this load are polluted.
        others = busy / CLK_TCK - result["app_cpu_s"] - result["pg_cpu_s"] - result["loadgen_cpu_s"]
        result["other_cores"] = max(others, 0.0) / result["wall_s"] if result["wall_s"] else 0.0
        return result


def _loadgen_cpu() -> float:
    """wrk (a child) and this script (the open-loop generator runs in it)."""
    total = 0.0
    for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


# --- loads ------------------------------------------------------------------------------------


@dataclass
class Load:
    key: str
    title: str
    url: str
    events: int  # per request; 0 = GET without a body
    master_pid: int
    table: str | None  # where its events land, to check they were all new
    result: dict = field(default_factory=dict)


class Driver:
    def __init__(self, args):
        self.args = args
        self.offset_index = 1  # 0 is left to bench/queries.py
        self.conn = psycopg.connect(args.dsn, autocommit=True)
        self.dbname = self.conn.info.dbname

    def next_offset(self) -> int:
        offset = self.offset_index * OFFSET_STEP
        self.offset_index += 1
        return offset

    def count(self, table: str | None) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if table else 0  # noqa: S608

    def settled_count(self, table: str | None) -> int:
        """The row count once the server has finished the requests wrk left queued when it stopped
        (gunicorn still serves a request whose client has gone)."""
        last = self.count(table)
        for _ in range(50):  # at most ~10 s
            time.sleep(0.2)
            now = self.count(table)
            if now == last:
                break
            last = now
        return last

    def wrk(self, load: Load, duration: float) -> dict:
        a = self.args
        env = {
            **os.environ,
            "BENCH_SECRET_HEADER": a.header,
            "BENCH_EVENTS": str(load.events),
            "BENCH_ACTIONS": str(a.actions),
            "BENCH_EVENT_OFFSET": str(self.next_offset()),
            "BENCH_THREADS": str(a.threads),
        }
        cmd = ["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s", "-s", str(HERE / "remote_events.lua"), load.url]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=False)
        if done.returncode != 0:
            raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        for line in done.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                return json.loads(line[len("BENCH_JSON ") :])
        raise SystemExit(f"wrk printed no BENCH_JSON line:\n{done.stdout}\n{done.stderr}")

    def warm(self, load: Load) -> None:
        if self.args.warmup:
            print(f"  {load.title}: {self.args.warmup:g} s warm-up", flush=True)
            self.wrk(load, self.args.warmup)

    def measure(self, load: Load, duration: float) -> None:
        """One measured slice of `load`; slices add up in load.result."""
        print(f"  {load.title}: {duration:g} s measured", flush=True)
        meter = CpuMeter(load.master_pid, self.conn, self.dbname)
        rows_before = self.settled_count(load.table)
        meter.start()
        raw = self.wrk(load, duration)
        cpu = meter.stop()
        rows = self.settled_count(load.table) - rows_before
        r = load.result
        for key in ("requests", "non2xx", "connect_errors", "read_errors", "write_errors", "timeouts", "duration_us",
                    "app_cpu_s", "pg_cpu_s", "loadgen_cpu_s", "wall_s", "wal_bytes", "wal_fpi", "blocks_read"):
            r[key] = r.get(key, 0) + (raw | cpu)[key]
        r["busy_s"] = r.get("busy_s", 0.0) + cpu["machine_busy"] * cpu["wall_s"]
        r["other_s"] = r.get("other_s", 0.0) + cpu["other_cores"] * cpu["wall_s"]
        r["slices"] = r.get("slices", 0) + 1
        r["new_rows"] = r.get("new_rows", 0) + rows
        seconds = r["duration_us"] / 1e6
        ok = r["requests"] - r["non2xx"]
        r.update(
            seconds=seconds,
            rps=r["requests"] / seconds,
            eps=ok * load.events / seconds,
            socket_errors=r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"],
            acked_events=ok * load.events,
            machine_busy=r["busy_s"] / r["wall_s"],
            other_cores=r["other_s"] / r["wall_s"],
        )

    def run_latency(self, url: str, master_pid: int) -> dict:
        a = self.args
        print(f"  open loop at {a.rate:g} deliveries/s for {a.latency_duration:g} s …", flush=True)
        meter = CpuMeter(master_pid, self.conn, self.dbname)
        meter.start()
        result = openloop.run(url=url, header=a.header, rate=a.rate, duration=a.latency_duration, actions=a.actions, offset=self.next_offset())
        return {**result, **meter.stop()}


# --- report -----------------------------------------------------------------------------------


def machine() -> dict:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
    }


def fmt(value, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def rows_match(load: Load, connections: int) -> bool:
    """Every acknowledged event is a new row. wrk stops each slice with up to `connections`
    requests in flight: the server still stores those, which wrk never counts — hence the slack."""
    if not load.table:
        return True
    r = load.result
    return r["acked_events"] <= r["new_rows"] <= r["acked_events"] + r["slices"] * connections * load.events


def report(loads: dict[str, Load], latency: dict, info: dict, args) -> tuple[str, dict]:
    a_ours, b_ours = loads["ours_single"].result, loads["ours_batch"].result
    a_ref, b_ref = loads["ref_single"].result, loads["ref_batch"].result
    ratios = {
        "single": a_ours["rps"] / a_ref["rps"] if a_ref["rps"] else 0.0,
        "batch": b_ours["eps"] / b_ref["eps"] if b_ref["eps"] else 0.0,
    }
    ratio_of = {"ours_single": ratios["single"], "ours_batch": ratios["batch"]}
    lines = []
    header = (
        f"{'load':<44} {'req/s':>8} {'events/s':>9} {'ours/ceiling':>12} {'non-2xx':>7} {'sock err':>8}"
        f" {'new rows/acked':>15} {'app CPU ms/req':>14} {'PG CPU ms/req':>13} {'WAL KB/req':>10} {'reads/req':>10} {'wrk CPU':>7} {'busy':>5} {'others':>6}"
    )
    lines += [header, "-" * len(header)]
    for load in loads.values():
        r = load.result
        n = r["requests"] or 1
        rows = f"{r['new_rows']:,}/{r['acked_events']:,}" if load.table else "-"
        ratio = f"{ratio_of[load.key]:.2f}" if load.key in ratio_of else "-"
        lines.append(
            f"{load.title:<44} {fmt(r['rps']):>8} {fmt(r['eps'] if load.events else None):>9} {ratio:>12} {r['non2xx']:>7}"
            f" {r['socket_errors']:>8} {rows:>15} {r['app_cpu_s'] * 1000 / n:>14.2f} {r['pg_cpu_s'] * 1000 / n:>13.2f}"
            f" {r['wal_bytes'] / 1024 / n:>10.1f} {r['blocks_read'] / n:>10.1f}"
            f" {r['loadgen_cpu_s'] / r['seconds']:>6.0%} {r['machine_busy']:>5.0%} {r['other_cores']:>6.2f}"
        )
    lines.append(
        "columns: CPU ms/req = CPU of the 2 gunicorn workers (app) and of the PostgreSQL backends of the bench database (PG) "
        "per request; WAL KB/req = WAL written per request (whole cluster); reads/req = blocks PostgreSQL had to read "
        "from outside shared_buffers per request; wrk CPU = the load generator, share of one core; busy = whole machine; others = cores used by "
        "everything else meanwhile (other jobs on the machine pollute the numbers when this is high)"
    )
    lines.append("")
    lines.append(
        f"acknowledgement latency, open loop at {latency['planned_rate']:g} single-event deliveries/s for {args.latency_duration:g} s "
        f"({latency['sent']} sent): p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms, max {latency['max_ms']:.1f} ms; "
        f"non-200 {latency['non200']} ({latency['answers']}); generator lag max {latency['max_send_lag_ms']:.1f} ms; "
        f"app CPU {latency['app_cpu_s'] * 1000 / max(latency['sent'], 1):.2f} ms/req, machine busy {latency['machine_busy']:.0%}, "
        f"others {latency['other_cores']:.2f} cores"
    )
    lines.append("")
    checks = [
        ("(a) single-event deliveries/s ÷ ceiling", ratios["single"], f"≥ {TARGETS['single']}", ratios["single"] >= TARGETS["single"]),
        ("(b) batched events/s ÷ ceiling", ratios["batch"], f"≥ {TARGETS['batch']}", ratios["batch"] >= TARGETS["batch"]),
        (f"p99 at {latency['planned_rate']:g}/s (ms)", latency["p99_ms"], f"< {TARGETS['p99_ms']:g}", latency["p99_ms"] < TARGETS["p99_ms"] and latency["non200"] == 0),
    ]
    lines.append("targets:")
    for name, value, target, met in checks:
        lines.append(f"  {name:<42} {value:>8.2f}  target {target:<7} {'MET' if met else 'MISSED'}")
    problems = [load.title for load in loads.values() if not rows_match(load, args.connections)]
    if problems:
        lines.append(f"WARNING: acknowledged events not all stored as new rows (duplicate path measured?) in: {', '.join(problems)}")
    failing = [load.title for load in loads.values() if load.result["non2xx"] or load.result["socket_errors"]]
    if failing:
        lines.append(f"WARNING: non-2xx answers or socket errors in: {', '.join(failing)}")
    lines.append("")
    lines.append(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, kernel {info['kernel']}, "
        f"PostgreSQL {info['postgresql']}, Python {info['python']}; load average before the run {' '.join(info['loadavg_before'])}"
    )
    lines.append(
        f"settings: gunicorn 2 sync workers per app, wrk -t{args.threads} -c{args.connections}, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s per load in {args.slices} slices alternating ours and the ceiling, {args.actions:,} seeded actions, "
        f"database {info['database']}"
    )
    data = {
        "ratios": ratios,
        "targets": TARGETS,
        "met": {name: met for name, _, _, met in checks},
        "loads": {k: {"title": v.title, "events_per_request": v.events, **v.result} for k, v in loads.items()},
        "latency": latency,
        "machine": info,
        "settings": {k: v for k, v in vars(args).items() if k not in ("header", "dsn")},
    }
    return "\n".join(lines), data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ours", required=True, help="base URL of the portal's gunicorn")
    parser.add_argument("--ours-pid", type=int, required=True, help="its master pid")
    parser.add_argument("--ref", required=True, help="base URL of the reference gunicorn")
    parser.add_argument("--ref-pid", type=int, required=True)
    parser.add_argument("--header", required=True, help="X-Fleetportal-Secret value")
    parser.add_argument("--dsn", required=True, help="the bench database")
    parser.add_argument("--actions", type=int, default=50000)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--slices", type=int, default=3, help="measured period split in this many alternating slices")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--latency-duration", type=float, default=15)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    driver = Driver(args)
    info = {
        **machine(),
        "postgresql": driver.conn.execute("SHOW server_version").fetchone()[0],
        "database": driver.dbname,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    loads = {
        load.key: load
        for load in [
            Load("ours_single", "(a) our webhook, 1 event/request", args.ours + WEBHOOK, 1, args.ours_pid, "remotes_remoteevent"),
            Load("ours_batch", "(b) our webhook, 100 events/request", args.ours + WEBHOOK, 100, args.ours_pid, "remotes_remoteevent"),
            Load("ref_single", "(c) ceiling: raw INSERT view, 1 event/request", args.ref + "/", 1, args.ref_pid, "bench_ref_event"),
            Load("ref_batch", "(c) ceiling: raw INSERT view, 100 events/req", args.ref + "/", 100, args.ref_pid, "bench_ref_event"),
            Load("bare", "(scale) our gunicorn, GET /healthz", args.ours + "/healthz", 0, args.ours_pid, None),
        ]
    }
    print("loads:", flush=True)
    # Ours and its ceiling run in alternating slices, so that whatever else the machine does
    # meanwhile weighs on both sides of each ratio alike.
    for ours, ceiling in (("ours_single", "ref_single"), ("ours_batch", "ref_batch")):
        driver.warm(loads[ours])
        driver.warm(loads[ceiling])
        for _ in range(args.slices):
            driver.measure(loads[ours], args.duration / args.slices)
            driver.measure(loads[ceiling], args.duration / args.slices)
    driver.warm(loads["bare"])
    driver.measure(loads["bare"], min(args.duration, 5))
    latency = driver.run_latency(args.ours + WEBHOOK, args.ours_pid)
    text, data = report(loads, latency, info, args)
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    main()
