"""`make run` stops: a TERM to its process group leaves nothing behind, Ctrl-C returns quickly.

Each test starts bin/run (what `make run` runs once .venv exists) in its own session, on a
free port and a SQLite file in tmp_path, waits for the portal and the printed banner, signals
the whole process group and then looks for every process that came from it: the Procfile
processes run in sessions of their own (honcho starts them so), so they are found by a marker
in their environment, which every descendant inherits, and by the port and tmp path on their
command lines.
"""

import base64
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc"),
]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120  # migrating and seeding 50 vehicles on a slow machine
MARKER = "FLEETPORTAL_RUN_TEST"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _survivors(pgid: int, marker: str, needles: tuple[str, ...]) -> list[str]:
    """Live (non-zombie) processes of the group, or carrying the marker or a needle."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = _read(f"/proc/{entry}/stat").decode()
            state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
            if state == "Z":
                continue
            cmdline = _read(f"/proc/{entry}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()
            environ = _read(f"/proc/{entry}/environ")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if int(pgrp) == pgid or marker.encode() in environ or any(n in cmdline for n in needles):
            found.append(f"{entry} (pgid {pgrp}): {cmdline[:120]}")
    return found


class Run:
    """bin/run in its own session, its output collected by a thread."""

    def __init__(self, tmp_path: Path):
        self.port = _free_port()
        self.tmp_path = tmp_path
        self.marker = uuid.uuid4().hex
        self.log = tmp_path / "run.log"
        # bin/run's own defaults, whatever the calling shell has set.
        env = {k: v for k, v in os.environ.items() if k not in {"HOST", "PORTAL_PUBLIC_URL", "STELLANTIS_API_BASE", "Q2_BROKER"}}
        env.update(
            {
                "PORT": str(self.port),
                # CI sets a PostgreSQL DATABASE_URL; this run must not touch it, nor db.sqlite3.
                "DATABASE_URL": f"sqlite:///{tmp_path}/run.sqlite3",
                "RUN_LOG": str(self.log),
                MARKER: self.marker,
            }
        )
        self.output: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            ["bash", str(ROOT / "bin" / "run")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.pgid = self.proc.pid
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stdout:
            self.output.append(line)
            if "fleetportal is running" in line:
                self.ready.set()

    def describe(self) -> str:
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no run.log)"
        return f"--- bin/run output ---\n{''.join(self.output)[-3000:]}\n--- {self.log.name} ---\n{log}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_until_running(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"bin/run exited ({self.proc.returncode}) before it was running\n{self.describe()}")
            if self.ready.is_set() and self.healthy():
                return
            time.sleep(0.5)
        pytest.fail(f"bin/run not running after {READY_TIMEOUT} s\n{self.describe()}")

    def survivors(self) -> list[str]:
        needles = (f":{self.port}", f"--port {self.port}", str(self.tmp_path))
        return _survivors(self.pgid, self.marker, needles)

    def signal_and_wait(self, signum: int, limit: float) -> tuple[float, list[str]]:
        """Signal the whole group; return when nothing is left, or at `limit` with what is."""
        start = time.monotonic()
        os.killpg(self.pgid, signum)
        left = []
        while time.monotonic() - start < limit:
            if self.proc.poll() is not None:  # reap the leader, or it stays a zombie
                left = self.survivors()
                if not left:
                    return time.monotonic() - start, []
            time.sleep(0.1)
        return time.monotonic() - start, left or self.survivors()

    def kill_everything(self):
        for _ in range(3):
            for line in self.survivors():
                try:
                    os.kill(int(line.split(" ", 1)[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.2)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def run(tmp_path):
    r = Run(tmp_path)
    try:
        yield r
    finally:
        r.kill_everything()


def test_term_to_the_process_group_leaves_nothing_behind(run):
    run.wait_until_running()
    assert len(run.survivors()) >= 4, run.survivors()  # honcho, gunicorn and q2 were found

    elapsed, left = run.signal_and_wait(signal.SIGTERM, limit=10)

    assert not left, f"still running {elapsed:.1f} s after TERM: {left}\n{run.describe()}"
    assert not run.healthy()


def test_the_banner_gives_the_simulators_credentials_and_the_simulator_demands_them(run):
    run.wait_until_running()
    banner = "".join(run.output)
    match = re.search(r"HTTP Basic (\S+) / (\S+)", banner)
    assert match, banner
    user, password = match.groups()
    if not os.environ.get("SIMULATOR_CREDENTIALS"):  # generated, and kept for the next run
        assert (ROOT / ".simulator-credentials").read_text().strip() == f"{user}:{password}"
    url = f"http://127.0.0.1:{run.port}/simulator/connectedcar/v3/fleets?client_id=x"

    def status(auth: str | None) -> int:
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    assert status(None) == 401
    assert status(f"{user}:{password}x") == 401
    assert status(f"{user}:{password}") == 200


def test_ctrl_c_returns_within_5_seconds(run):
    run.wait_until_running()

    # Ctrl-C: the terminal sends SIGINT to the foreground process group, which is bin/run's.
    elapsed, left = run.signal_and_wait(signal.SIGINT, limit=5)

    assert not left, f"still running {elapsed:.1f} s after SIGINT: {left}\n{run.describe()}"
