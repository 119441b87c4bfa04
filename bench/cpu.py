"""Where the CPU goes during a benchmark, from /proc: the machine, a process tree, PostgreSQL's backends.

A benchmark on a shared 2-core machine reads how much CPU each side spent per request as well
as its rate: the rate moves with whatever else runs, the CPU per request much less.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path


def machine_busy() -> float:
    """Seconds of CPU the whole machine spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _scheduled(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError):
        return 0.0


def _process(pid: int) -> float:
    """User + system CPU of a process, all its threads (/proc/<pid>/schedstat is one thread's)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> float:
    """CPU seconds of a process and its children (a gunicorn master and its workers)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                pids.append(int(entry.name))
    return sum(_process(p) for p in pids)


def own() -> float:
    """CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def postgres(dsn: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to `dsn`'s database (but this reading's own)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )]
    return sum(_scheduled(p) for p in pids)


class PostgresSampler:
    """CPU of a database's PostgreSQL backends over a stretch of time, connections that close
    meanwhile included: their CPU is read every `every` seconds while they live."""

    def __init__(self, dsn: str, every: float = 0.2):
        import threading

        self.dsn, self.every = dsn, every
        self.seen: dict[int, float] = {}
        self.start: dict[int, float] = {}
        self._stop = threading.Event()
        self._read(into=self.start)
        self.seen.update(self.start)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self, into: dict) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            pids = [row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )]
        for pid in pids:
            value = _scheduled(pid)
            if value:
                into[pid] = value

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._read(into=self.seen)

    def stop(self) -> float:
        """CPU seconds spent since the start."""
        self._stop.set()
        self._thread.join()
        self._read(into=self.seen)
        return sum(value - self.start.get(pid, 0.0) for pid, value in self.seen.items())
