"""The ceiling: a bare WSGI app that does nothing but one INSERT … ON CONFLICT DO NOTHING per event.

Served by gunicorn beside the portal (`gunicorn --pythonpath bench reference:application`), on
the same database, so `bench/run` can compare our webhook with what a Python process
reaches here when it skips Django, DRF and every other query. One psycopg 3 connection per
worker, opened on the first request (after gunicorn forks). A 100-event body runs its 100
inserts — one statement per event, no multi-row VALUES — in one transaction.
"""

import json
import os

import psycopg

DSN = os.environ.get("BENCH_REFERENCE_DSN", "postgresql://postgres@127.0.0.1:5432/fleetportal_bench")

# Same unique key as remotes.RemoteEvent (remote_event_unique); `bench/run` creates the table.
INSERT = (
    "INSERT INTO bench_ref_event (remote_action_id, vin, remote_type, event_type, status, event_date) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)

_conn = None


def _connection() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(DSN, autocommit=True)  # transaction() below is the only BEGIN…COMMIT
    return _conn


def _answer(start_response, status: str, payload: dict):
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    if environ.get("REQUEST_METHOD") != "POST":
        return _answer(start_response, "405 Method Not Allowed", {"detail": "POST only"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        data = json.loads(environ["wsgi.input"].read(length))
        events = data["events"]
    except (ValueError, KeyError, TypeError):
        return _answer(start_response, "400 Bad Request", {"detail": "not RemoteEvents"})
    conn = _connection()
    try:
        with conn.transaction(), conn.cursor() as cur:
            for e in events:
                status = e["eventStatus"]
                cur.execute(
                    INSERT,
                    (e["remoteActionId"], e.get("vin", ""), e.get("remoteType", ""), status["type"], status["status"], e["eventDate"]),
                )
    except psycopg.Error:
        # Start the next request on a fresh connection rather than a broken one.
        conn.close()
        return _answer(start_response, "500 Internal Server Error", {"detail": "not stored"})
    return _answer(start_response, "200 OK", {"events": len(events)})
