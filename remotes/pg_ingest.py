"""A webhook delivery on PostgreSQL: stored and applied by one statement.

TWIN: remotes.events._derive (and _recompute) state the same rules in Python; change one,
change the other; remotes/tests/test_pg_ingest.py fails when they disagree (it runs on
PostgreSQL only: on SQLite it is skipped with a "NOT CHECKED" reason).

The webhook is the portal's hottest path. Through the ORM a delivery took seven round
trips (BEGIN, insert the delivery, lock the actions, insert the events, read them back,
update the actions, COMMIT) and most of its CPU went into building them. Here one
data-modifying CTE does all of it: PostgreSQL runs a statement atomically, so the raw
delivery, its events and the actions they move commit together or not at all, with no
BEGIN/COMMIT of our own when nobody has opened a transaction around us.

Who may move what (TWIN: `events.apply_events`): the delivery's callback must be live
(`deleted_at` null) as this very statement reads it, else nothing at all is
written and no delivery id comes back (the inbox answers 401); and an event whose action was
sent through another callback is not stored and moves nothing: it joins the delivery's
`bad_events` ("action sent through another callback") and the delivery is `partial`.

The rules are those of `events._derive`, applied incrementally to the events this
statement inserted (a duplicate inserts nothing, so it moves nothing), where `_derive`
re-reads all of an action's events:
- a final action never moves, except `error` (we stopped waiting; a late Done is the truth);
- the latest Pending eventDate wins (ties: the newer row);
- the earliest Done of the delivery finishes the action.
`test_pg_ingest` checks that both give the same action for any order of any events.

A delivery of one event (the vendor's usual) runs `STATEMENT_ONE`: the same text with what only
several events need taken out (`_one_event`).

Locks: the actions are locked in id order first (`act`), so two deliveries moving the same
actions queue instead of deadlocking; events are inserted in key order, so two deliveries
of one batch queue on the unique key (the second inserts nothing) instead of deadlocking.
Concurrent updates of one action re-read it (READ COMMITTED re-evaluates the SET on the
newest row), so the rules above hold across deliveries too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

from callbacks.models import Callback
from stellantis.vocabulary import DoneStatus, EventType, RemoteType
from stellantis.webhook import ParsedEvent

from .events import FOREIGN_ACTION, numbered
from .models import CORRECTABLE_FINAL_STATUSES, FINAL_STATUSES, ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery

_DELIVERIES, _EVENTS, _ACTIONS, _CALLBACKS = (m._meta.db_table for m in (WebhookDelivery, RemoteEvent, RemoteAction, Callback))


def _literal(value) -> str:
    """A vocabulary value as an SQL literal (they are ours, never a sender's)."""
    value = str(value)
    assert "'" not in value
    return f"'{value}'"


def _sql_list(values) -> str:
    return ", ".join(_literal(str(v)) for v in values)


_NEVER_MOVES = [s for s in FINAL_STATUSES if s not in CORRECTABLE_FINAL_STATUSES]

# Each action's latest Pending (ties: the newer row) and earliest Done (ties: the older row) among
# the events the statement inserted (a duplicate inserts nothing, so it moves nothing).
_MOVES_MANY = f"""), pending AS (
    SELECT DISTINCT ON (action_id) action_id, status, event_date FROM ins
    WHERE action_id IS NOT NULL AND event_type = {_literal(EventType.PENDING)}
    ORDER BY action_id, event_date DESC, id DESC
), done AS (
    SELECT DISTINCT ON (action_id) action_id, status, event_date, failure_cause, feedback_detail FROM ins
    WHERE action_id IS NOT NULL AND event_type = {_literal(EventType.DONE)}
    ORDER BY action_id, event_date, id
), moves AS (
    SELECT coalesce(p.action_id, f.action_id) AS id,
           p.status AS p_status, p.event_date AS p_at,
           f.status AS d_status, f.event_date AS d_at, f.failure_cause AS d_cause, f.feedback_detail AS d_detail,
           p.event_date IS NOT NULL AS has_p, f.event_date IS NOT NULL AS has_d
    FROM pending p FULL JOIN done f ON f.action_id = p.action_id
"""  # noqa: S608
_MOVES_ONE = f"""), moves AS (
    SELECT action_id AS id,
           CASE WHEN event_type = {_literal(EventType.PENDING)} THEN status END AS p_status,
           CASE WHEN event_type = {_literal(EventType.PENDING)} THEN event_date END AS p_at,
           CASE WHEN event_type = {_literal(EventType.DONE)} THEN status END AS d_status,
           CASE WHEN event_type = {_literal(EventType.DONE)} THEN event_date END AS d_at,
           CASE WHEN event_type = {_literal(EventType.DONE)} THEN failure_cause END AS d_cause,
           CASE WHEN event_type = {_literal(EventType.DONE)} THEN feedback_detail END AS d_detail,
           event_type = {_literal(EventType.PENDING)} AS has_p,
           event_type = {_literal(EventType.DONE)} AS has_d
    FROM ins
    WHERE action_id IS NOT NULL AND event_type IN ({_sql_list([EventType.PENDING, EventType.DONE])})
"""  # noqa: S608

# TWIN: remotes.events._derive (and _recompute) state the same rules in Python; change one,
# change the other; remotes/tests/test_pg_ingest.py fails when they disagree.
# Table names and vocabulary are ours; every value a sender controls is a parameter.
STATEMENT = f"""
WITH live AS MATERIALIZED (
    -- The delivery's callback, while it is not deleted. Read in this statement's snapshot:
    -- a deletion committed before it is seen by every process at once; one committing while
    -- this statement runs orders after it (the delivery arrived first). No FOR SHARE: every
    -- delivery of a callback would lock its one row, and concurrent share locks on a row cost
    -- a MultiXact each (measured: single-event throughput fell from 0.55 to 0.33 of the
    -- ceiling, app CPU 1.3 → 2.2 ms). Empty: nothing is written.
    SELECT id FROM {_CALLBACKS} WHERE id = %(callback_id)s AND deleted_at IS NULL
), ev AS (
    -- One JSON parameter, not eight arrays: psycopg dumps a string far faster than lists.
    SELECT e->>0 AS rid, e->>1 AS vin, e->>2 AS rtype, e->>3 AS etype, e->>4 AS status,
           e->>5 AS cause, e->>6 AS detail, (e->>7)::timestamptz AS edate, e->>7 AS edate_text, (e->>8)::int AS idx
    FROM jsonb_array_elements(%(events)s::jsonb) AS e
), act AS MATERIALIZED (
    SELECT id, remote_action_id, callback_id FROM {_ACTIONS}
    WHERE remote_action_id = ANY(ARRAY(SELECT rid FROM ev)) AND EXISTS (SELECT FROM live) ORDER BY id FOR UPDATE
), refused AS (
    -- TWIN of events.refusal: the same entry, key for key.
    SELECT ev.idx, jsonb_build_object(
        'index', ev.idx, 'error', {_literal(FOREIGN_ACTION)}, 'event', jsonb_build_object(
            'remote_action_id', ev.rid, 'vin', ev.vin, 'remote_type', ev.rtype, 'event_type', ev.etype, 'status', ev.status,
            'event_date', ev.edate_text)) AS entry
    FROM ev JOIN act ON act.remote_action_id = ev.rid
    WHERE act.callback_id <> %(callback_id)s
), bad AS (
    -- Read only when something was refused here (the CASEs below): the parser's refusals and ours, by index.
    SELECT jsonb_agg(b ORDER BY (b->>'index')::int) AS list
    FROM (SELECT jsonb_array_elements(%(bad_events)s::jsonb) UNION ALL SELECT entry FROM refused) AS u(b)
), d AS (
    -- outcome and error as inbox._with_refusals words them (TWIN).
    INSERT INTO {_DELIVERIES}
        (callback_id, received_at, remote_addr, headers, query, body, outcome, error, event_count, bad_events)
    SELECT %(callback_id)s, %(now)s, %(remote_addr)s, %(headers)s::jsonb, %(query)s, %(body)s,
           CASE WHEN EXISTS (SELECT FROM refused) THEN {_literal(WebhookDelivery.Outcome.PARTIAL)} ELSE %(outcome)s END,
           CASE WHEN EXISTS (SELECT FROM refused) THEN (
               SELECT format('%%s of %%s events refused; the first, events[%%s]: %%s',
                             jsonb_array_length(list), %(count)s, list->0->>'index', list->0->>'error') FROM bad)
               ELSE %(error)s END,
           %(count)s,
           CASE WHEN EXISTS (SELECT FROM refused) THEN (SELECT list FROM bad) ELSE %(bad_events)s::jsonb END
    FROM live
    RETURNING id
), ins AS (
    INSERT INTO {_EVENTS}
        (action_id, remote_action_id, vin, remote_type, event_type, status, failure_cause, feedback_detail,
         event_date, received_at, delivery_id)
    SELECT act.id, ev.rid, ev.vin, ev.rtype, ev.etype, ev.status, ev.cause, ev.detail, ev.edate, %(now)s, d.id
    FROM ev CROSS JOIN d LEFT JOIN act ON act.remote_action_id = ev.rid
    WHERE act.id IS NULL OR act.callback_id = %(callback_id)s
    ORDER BY ev.rid, ev.etype, ev.status, ev.edate
    ON CONFLICT ON CONSTRAINT remote_event_unique DO NOTHING
    RETURNING id, action_id, event_type, status, event_date, failure_cause, feedback_detail
{_MOVES_MANY}), upd AS (
    UPDATE {_ACTIONS} AS a SET
        pending_status = CASE WHEN m.has_p AND (a.pending_at IS NULL OR m.p_at >= a.pending_at) THEN m.p_status ELSE a.pending_status END,
        pending_at = CASE WHEN m.has_p AND (a.pending_at IS NULL OR m.p_at >= a.pending_at) THEN m.p_at ELSE a.pending_at END,
        status = CASE
            WHEN m.has_d THEN CASE m.d_status
                WHEN {_literal(DoneStatus.SUCCESS)} THEN {_literal(ActionStatus.SUCCESS)}
                WHEN {_literal(DoneStatus.ALREADY_DONE)} THEN {_literal(ActionStatus.ALREADY_DONE)}
                ELSE {_literal(ActionStatus.FAILED)} END
            WHEN a.status IN ({_sql_list([ActionStatus.SUBMITTED, ActionStatus.PENDING])}) THEN {_literal(ActionStatus.PENDING)}
            ELSE a.status END,
        failure_cause = CASE WHEN m.has_d THEN m.d_cause ELSE a.failure_cause END,
        feedback_detail = CASE WHEN m.has_d THEN m.d_detail ELSE a.feedback_detail END,
        finished_at = CASE WHEN m.has_d THEN m.d_at ELSE a.finished_at END,
        error = CASE WHEN m.has_d THEN '' ELSE a.error END
    FROM moves m
    WHERE a.id = m.id AND a.status NOT IN ({_sql_list(_NEVER_MOVES)})
    RETURNING a.id, a.status, a.remote_type, a.vehicle_id
)
SELECT (SELECT id FROM d),
       (SELECT count(*) FROM ins),
       ARRAY(SELECT DISTINCT ev.rid FROM ev LEFT JOIN act ON act.remote_action_id = ev.rid WHERE act.id IS NULL),
       ARRAY(SELECT vehicle_id FROM upd WHERE status = {_literal(ActionStatus.SUCCESS)} AND remote_type = {_literal(RemoteType.WAKE_UP)}),
       (SELECT jsonb_agg(entry ORDER BY idx) FROM refused)
"""  # noqa: S608


# A delivery of one event, the vendor's usual, runs the same statement with what only several
# events need taken out (`_one_event`): no set-returning function over the events (planned
# for 100 rows: hash tables), no sorts for lock and key order (one action, one key), no
# DISTINCT ON to pick each action's latest Pending and earliest Done (the one event is
# either). PostgreSQL set up and ran every node of the general plan on every delivery
# (about a fifth of its CPU for one event). Every other CTE is the text above, unchanged;
# test_pg_ingest's deliveries of one event go through this one, so both stay TWINs of
# events._derive.
_ONE_EVENT = (
    (  # the one event, without jsonb_array_elements
        "    FROM jsonb_array_elements(%(events)s::jsonb) AS e\n",
        "    FROM (SELECT %(events)s::jsonb->0) AS x(e)\n",
    ),
    (  # at most one action: no lock order to keep
        "    WHERE remote_action_id = ANY(ARRAY(SELECT rid FROM ev)) AND EXISTS (SELECT FROM live) ORDER BY id FOR UPDATE\n",
        "    WHERE remote_action_id = (SELECT rid FROM ev) AND EXISTS (SELECT FROM live) FOR UPDATE\n",
    ),
    (  # one key: no key order to keep
        "    ORDER BY ev.rid, ev.etype, ev.status, ev.edate\n",
        "",
    ),
    (  # the one event is the latest Pending or the earliest Done of its action
        _MOVES_MANY,
        _MOVES_ONE,
    ),
    (
        "ARRAY(SELECT DISTINCT ev.rid FROM ev LEFT JOIN act",
        "ARRAY(SELECT ev.rid FROM ev LEFT JOIN act",
    ),
)


def _one_event(sql: str) -> str:
    for old, new in _ONE_EVENT:
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


def _compact(sql: str) -> str:
    """The statement as sent: comments and indentation off, one line (less to send and to hash for
    the prepared-statement cache). The commented text above stays the one to read and change."""
    lines = (line.split("--", 1)[0].strip() for line in sql.splitlines())
    one_line = " ".join(line for line in lines if line)
    # Outside string literals only (even pieces of the split), no space around punctuation.
    pieces = re.split(r"('(?:[^']|'')*')", one_line)
    return "".join(re.sub(r"\s*([(),=<>+|])\s*", r"\1", piece) if n % 2 == 0 else piece for n, piece in enumerate(pieces))


def _positional(sql: str) -> tuple[str, list[str]]:
    """`%(name)s` placeholders as PostgreSQL's own `$n`, and the names in that order: the statement
    then goes to the server as it is (psycopg's RawCursor), with no conversion on each delivery."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    # %% was psycopg's escape for a literal % (format()'s %s); sent as it is, it is one % again.
    return re.sub(r"%\((\w+)\)s", number, sql).replace("%%", "%"), names


STATEMENT_ONE, _PARAMETERS_ONE = _positional(_compact(_one_event(STATEMENT)))
STATEMENT, _PARAMETERS = _positional(_compact(STATEMENT))


# (psycopg connection, its RawCursor): the one cursor the webhook runs its statement on, kept
# for the life of the connection. A new cursor each delivery built psycopg's adapters
# (Transformer) anew; a kept one re-uses them while the statement is the same object.
_CURSOR: tuple = (None, None)


def _run(sql: str, params: list) -> tuple:
    """Run `sql` on a server-side-binding psycopg cursor of Django's connection; its one row.

    Django binds parameters on the client, so PostgreSQL would parse and plan this large
    statement on every delivery; psycopg prepares a statement it has run a few times on a
    connection, when the values travel apart from the text. Errors are Django's, as from
    any cursor of its own; when something watches the queries (DEBUG, a test counting them,
    an execute_wrapper such as bench/queries.py's timer) the statement goes through Django's
    cursor wrapper so it is logged and counted like any other, else straight to psycopg
    (the wrapper's layers were a few percent of a delivery's CPU).
    """
    global _CURSOR
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    pg = db.connection
    owner, raw = _CURSOR
    if owner is not pg or raw.closed:
        # Django leaves preparing off (its own cursors bind on the client and never prepare);
        # turning it on for the connection only affects server-side-binding cursors like this one.
        if pg.prepare_threshold is None:
            pg.prepare_threshold = 5
            pg.execute("SET plan_cache_mode = force_generic_plan")
        # RawCursor: the statement already has PostgreSQL's $n placeholders (`_positional`). psycopg's
        # Cursor turns %(name)s into them on every execute, and caches that only for texts under 4 KB;
        # this one is longer, so each delivery paid the conversion again (~0.15 ms of CPU, about a
        # sixth of the webhook's in-process time).
        raw = psycopg.RawCursor(pg)
        _CURSOR = (pg, raw)
    if db.queries_logged or db.execute_wrappers:
        cursor = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
        cursor.execute(sql, params)
        return cursor.fetchone()
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        raw.execute(sql, params)
        return raw.fetchone()


@dataclass
class Ingested:
    delivery_id: int
    new_events: int
    orphan_action_ids: list[str]
    refreshed_vehicle_ids: list[int]
    refused: list[dict]  # events refused here (another callback's action), as in bad_events


def store_and_apply(*, delivery: dict, events: list[ParsedEvent], positions: list[int] | None = None) -> Ingested | None:
    """Insert the delivery row (`delivery`: its column values) and apply `events`, in one statement.

    `delivery` may say its `outcome` (default processed: `partial` when some of its events
    were refused), `error`, `bad_events` (the refused ones) and `event_count` (default: the
    events given). `positions`: each event's index in the body (default 0, 1, …), for the
    events refused here. None, and nothing written, when `delivery["callback_id"]` is not
    a live callback (deleted, or deleted by another process a moment ago).
    """
    rows = [
        (e.remote_action_id, e.vin, e.remote_type, e.event_type, e.status, e.failure_cause, e.feedback_detail, e.event_date.isoformat(), i)
        for i, e in numbered(events, positions)
    ]
    params = {
        **delivery,
        "headers": json.dumps(delivery["headers"]),
        "count": delivery.get("event_count", len(events)),
        "events": json.dumps(rows),
        "outcome": str(delivery.get("outcome", WebhookDelivery.Outcome.PROCESSED)),
        "error": delivery.get("error", ""),
        "bad_events": json.dumps(bad) if (bad := delivery.get("bad_events")) else "[]",
    }
    sql, names = (STATEMENT_ONE, _PARAMETERS_ONE) if len(rows) == 1 else (STATEMENT, _PARAMETERS)
    delivery_id, new_events, orphans, refreshed, refused = _run(sql, [params[name] for name in names])
    if delivery_id is None:
        return None
    # jsonb comes back as text on Django's connections (JSONField decodes it itself); NULL: none refused.
    return Ingested(delivery_id, new_events, list(orphans), list(refreshed), json.loads(refused) if refused else [])
