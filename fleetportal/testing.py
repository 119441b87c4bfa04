"""Helpers for tests that cross real sockets: polling, and a faulty proxy in front of a server."""

from __future__ import annotations

import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from django.utils import timezone

from remotes import services
from remotes.models import RemoteAction
from simulator.pump import run_due


def wait_for(predicate, timeout=30.0, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value {last!r}")


class FaultyProxy:
    """A real HTTP server that forwards to `upstream` and misbehaves on demand.

    `fault` (per method, consumed once each): "lose_answer" forwards the request, then
    answers 502 as if the reply got lost (the vendor did act); "fail_before" answers 503
    without forwarding (the vendor never saw it); "hang" forwards then stalls past the
    client's read time-out; "act_late" answers 502 at once and forwards the request only
    `late_seconds` later (a vendor that acts on a command long after losing its answer).
    """

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.faults: dict[str, list[str]] = {}
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.seen.append((self.command, self.path))
                queue = proxy.faults.get(self.command) or []
                fault = queue.pop(0) if queue else None
                if fault == "fail_before":
                    return self._reply(503, b'{"code": 50300, "message": "maintenance"}')
                # Host passes through, so the links the upstream builds point back at this proxy.
                headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
                if fault == "act_late":
                    later = threading.Timer(
                        proxy.late_seconds, requests.request, args=(self.command, proxy.upstream + self.path), kwargs={"data": body, "headers": headers, "timeout": 10}
                    )
                    later.start()
                    proxy.late.append(later)
                    return self._reply(502, b'{"code": 50200, "message": "bad gateway"}')
                upstream = requests.request(self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=10)
                if fault == "lose_answer":
                    return self._reply(502, b'{"code": 50200, "message": "bad gateway"}')
                if fault == "hang":
                    time.sleep(proxy.hang_seconds)
                # The vendor's own headers pass through (rate limits, Retry-After), not the framing.
                passed = {k: v for k, v in upstream.headers.items() if k.lower().startswith(("x-ratelimit", "retry-after"))}
                return self._reply(upstream.status_code, upstream.content, passed)

            def _reply(self, status, content, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.hang_seconds = 2.0
        self.late_seconds = 1.0
        self.late: list[threading.Timer] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        for timer in self.late:
            timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, fault: str) -> None:
        self.faults.setdefault(method, []).append(fault)

    def count(self, method: str, contains: str = "") -> int:
        return sum(1 for m, p in self.seen if m == method and contains in p)


def drive(action_id, *, horizon_seconds: float = 900, passes: int = 12):
    """Carry one action through submit and the simulator's notifications, without a q2 worker.

    Every crossing is still real HTTP (client → simulator, simulator → our webhook); only
    the scheduling is done here: submit now, then let the simulator's clock run ahead.
    """
    services.submit_remote_action(action_id=action_id)
    action = RemoteAction.objects.get(pk=action_id)
    for _ in range(passes):
        if action.is_final:
            break
        run_due(now=timezone.now() + dt.timedelta(seconds=horizon_seconds))
        action.refresh_from_db()
    return action
