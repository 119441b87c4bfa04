"""gunicorn serving the portal with the simulator mounted, for the benchmarks that drive it over HTTP
(bench/simulator.py, bench/bulk.py)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PATH = "simulator/connectedcar/v3"


class Server:
    """gunicorn serving the portal with the simulator mounted, on a free port of 127.0.0.1.

    `public=True` points the portal at itself (PORTAL_PUBLIC_URL, STELLANTIS_API_BASE on that port),
    as `make run` does: for benchmarks in which the portal sends commands and gets notifications."""

    def __init__(self, env: dict, *, workers: int, threads: int, log: Path, public: bool = False):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "PORTAL_PUBLIC_URL": self.base, "STELLANTIS_API_BASE": f"{self.base}/{PATH}"} if public else env
        options = ["--workers", str(workers), "--log-level", "warning", "--graceful-timeout", "5"]
        options += ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else ["--worker-class", "sync"]
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [GUNICORN, "fleetportal.wsgi:application", *options, "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        for _ in range(150):
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {log}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"gunicorn not answering /healthz after 30 s; see {log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # gunicorn: the quick shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
