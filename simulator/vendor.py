"""The simulated Fleet Owner API's endpoints: lookups, callback subscriptions and remote actions.

Errors the API must answer are `SimError`s carrying their HTTP status and the vendor-style code.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.utils import timezone

from stellantis.dates import parse_instant
from stellantis.remotes import CommandInvalid, parse_remote
from stellantis.vocabulary import (
    ATTRIBUTE_VARIABLES,
    AttributeType,
    CallbackStatus,
    DoneStatus,
    EventType,
    RemoteType,
    RetryPolicy,
)

from . import dispatch, scenario
from .models import SimCallback, SimEvent, SimFleet, SimRemoteAction, SimVehicle, current_month, new_id
from .pump import arm_pump, enqueue_pump, pump_busy_statement

log = logging.getLogger(__name__)


class SimError(Exception):
    """An error the simulated API answers as an xError."""

    status = 400
    code = 40000

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class SimInvalid(SimError):
    status = 400
    code = 40000


class SimNotFound(SimError):
    status = 404
    code = 40400


# --- lookups ------------------------------------------------------------------------------


def get_fleet(*, fleet_id: str) -> SimFleet:
    fleet = SimFleet.objects.filter(pk=fleet_id).first()
    if fleet is None:
        raise SimNotFound(f"No fleet {fleet_id}.")
    return fleet


def get_vehicle(*, fleet_id: str, vehicle_id: str) -> SimVehicle:
    fleet = get_fleet(fleet_id=fleet_id)
    vehicle = SimVehicle.objects.filter(fleet=fleet, pk=vehicle_id).first()
    if vehicle is None:
        raise SimNotFound(f"No vehicle {vehicle_id} in fleet {fleet_id}.")
    return vehicle


def get_callback(*, fleet_id: str, callback_id: str) -> SimCallback:
    fleet = get_fleet(fleet_id=fleet_id)
    callback = SimCallback.objects.filter(fleet=fleet, pk=callback_id).first()
    if callback is None:
        raise SimNotFound(f"No remote callback {callback_id} in fleet {fleet_id}.")
    return callback


def get_action(*, fleet_id: str, vehicle_id: str, callback_id: str, action_id: str) -> SimRemoteAction:
    vehicle = get_vehicle(fleet_id=fleet_id, vehicle_id=vehicle_id)
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    action = SimRemoteAction.objects.filter(vehicle=vehicle, callback=callback, pk=action_id).first()
    if action is None:
        raise SimNotFound(f"No remote action {action_id} for this vehicle and callback.")
    return action


# --- callbacks ----------------------------------------------------------------------------

_SUBSCRIBE_FIELDS = {"label", "retryPolicy", "batchNotify", "callback", "remoteTypes"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def validate_subscribe(body) -> dict:
    """The RemoteCallbackSubscribe body if the vendor would take it; SimInvalid naming each bad field otherwise."""
    if not isinstance(body, dict):
        raise SimInvalid("The body must be a RemoteCallbackSubscribe JSON object.")
    errors: dict[str, str] = {}
    for key in body:
        if key not in _SUBSCRIBE_FIELDS:
            errors[key] = "is not a known field"
    if "label" in body and not isinstance(body["label"], str):
        errors["label"] = "must be a string"

    callback = body.get("callback")
    webhook = callback.get("webhook") if isinstance(callback, dict) else None
    if not isinstance(webhook, dict):
        errors["callback.webhook"] = "is required"
    else:
        target = webhook.get("target")
        parts = urlsplit(target) if isinstance(target, str) else None
        if not target:
            errors["callback.webhook.target"] = "is required"
        elif parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            errors["callback.webhook.target"] = "must be an http(s) URL"
        if not isinstance(webhook.get("name"), str) or not webhook.get("name"):
            errors["callback.webhook.name"] = "is required"
        _validate_attributes(webhook.get("attributes"), errors)

    types = body.get("remoteTypes")
    if not isinstance(types, list) or not types:
        errors["remoteTypes"] = "give at least one remote type"
    else:
        unknown = [t for t in types if t not in RemoteType.values]
        if unknown:
            errors["remoteTypes"] = f"unknown {', '.join(map(str, unknown))}; use {', '.join(RemoteType.values)}"

    retry = body.get("retryPolicy")
    if retry is not None:
        if not isinstance(retry, dict):
            errors["retryPolicy"] = "must be an object"
        else:
            if retry.get("policy") not in RetryPolicy.values:
                errors["retryPolicy.policy"] = f"must be one of {', '.join(RetryPolicy.values)}"
            for key in retry:
                if key not in ("policy", "retryNumber", "retryDelay"):
                    errors[f"retryPolicy.{key}"] = "is not a known field"
            for key in ("retryNumber", "retryDelay"):
                if key in retry and not _is_int(retry[key], minimum=1):
                    errors[f"retryPolicy.{key}"] = "must be a whole number of at least 1"

    batch = body.get("batchNotify")
    if batch is not None:
        if not isinstance(batch, dict):
            errors["batchNotify"] = "must be an object"
        else:
            for key in batch:
                if key not in ("size", "timeWindow"):
                    errors[f"batchNotify.{key}"] = "is not a known field"
            if not _is_int(batch.get("size"), minimum=1):
                errors["batchNotify.size"] = "is required and must be a whole number above 0"
            if "timeWindow" in batch and not _is_int(batch["timeWindow"], minimum=5):
                errors["batchNotify.timeWindow"] = "must be a whole number of seconds, at least 5"
    if errors:
        raise SimInvalid("Invalid RemoteCallbackSubscribe: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    return body


def _validate_attributes(attributes, errors: dict) -> None:
    if attributes is None:
        return
    if not isinstance(attributes, list):
        errors["callback.webhook.attributes"] = "must be a list"
        return
    for i, attribute in enumerate(attributes):
        path = f"callback.webhook.attributes.{i}"
        if not isinstance(attribute, dict):
            errors[path] = "must be an object"
            continue
        if attribute.get("type") not in AttributeType.values:
            errors[f"{path}.type"] = f"must be one of {', '.join(AttributeType.values)}"
        key, value = attribute.get("key"), attribute.get("value")
        if not isinstance(key, str) or not key:
            errors[f"{path}.key"] = "is required"
        elif attribute.get("type") == AttributeType.HEADER and not _HEADER_NAME.match(key):
            errors[f"{path}.key"] = "is not a valid HTTP header name"
        if not isinstance(value, str):
            errors[f"{path}.value"] = "is required and must be a string"
        elif value.startswith("$") and value not in ATTRIBUTE_VARIABLES:
            errors[f"{path}.value"] = f"unknown variable; use {', '.join(ATTRIBUTE_VARIABLES)}"
        elif "\n" in value or "\r" in value:
            errors[f"{path}.value"] = "must be on one line"


def _is_int(value, *, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def create_callback(*, fleet_id: str, subscribe) -> SimCallback:
    """Register a callback for the fleet; it starts Running."""
    fleet = get_fleet(fleet_id=fleet_id)
    return SimCallback.objects.create(fleet=fleet, subscribe=validate_subscribe(subscribe))


def replace_callback(*, fleet_id: str, callback_id: str, subscribe) -> SimCallback:
    """Replace the whole subscription (the vendor does not merge); the status is kept."""
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    callback.subscribe = validate_subscribe(subscribe)
    callback.save(update_fields=["subscribe", "updated_at"])
    return callback


def set_callback_status(*, fleet_id: str, callback_id: str, body) -> SimCallback:
    """Apply a RemoteCallbacksStatusSetter body: pause or resume a callback."""
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in (CallbackStatus.RUNNING, CallbackStatus.PAUSED):
        raise SimInvalid("status: must be Running or Paused")
    change_callback_status(callback=callback, status=status)
    return callback


def change_callback_status(*, callback: SimCallback, status: str) -> None:
    """Set the status; a Running callback gets the notifications queued before a pause sent."""
    with transaction.atomic():
        callback.status = status
        callback.save(update_fields=["status", "updated_at"])
        if status == CallbackStatus.RUNNING:
            transaction.on_commit(enqueue_pump, robust=True)


def delete_callback(*, fleet_id: str, callback_id: str) -> None:
    """Delete a callback, refused while a remote action sent through it has no Done event yet."""
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    with transaction.atomic():
        # The row lock makes a remote posted at the same moment wait, so it cannot slip in
        # between the check and the delete.
        callback = SimCallback.objects.select_for_update().filter(pk=callback.pk).first()
        if callback is None:
            raise SimNotFound(f"No remote callback {callback_id} in fleet {fleet_id}.")
        if callback.remote_actions.exclude(status__in=DoneStatus.values).exists():
            raise SimInvalid("The callback has a pending remote action; delete it once every action is done.")
        callback.delete()


# --- remote actions -------------------------------------------------------------------------


def send_remote(*, fleet_id: str, vehicle_id: str, callback_id: str, body) -> SimRemoteAction:
    """Accept a Remote body, book its scenario as events and wake the pump after commit.

    The hot path of a load test: its statements are written in SQL, and on PostgreSQL in a
    request they travel in two round trips (`_Booking`). The callback is read with a share
    lock, not an exclusive one, so remotes through one callback run side by side; only remotes
    to the same vehicle wait for each other.
    """
    try:
        command, invalid = _parse_remote(body), None
    except SimInvalid as exc:
        # Said after the lookups, in the order the vendor checks: fleet, vehicle, callback, body.
        command, invalid = None, exc
    with _Booking() as booking:
        vehicle, callback, (in_short_time, today, busy) = booking.lock_and_load(
            fleet_id=fleet_id,
            vehicle_id=vehicle_id,
            callback_id=callback_id,
            remote_type=command.remote_type if command else "",
            now=timezone.now(),
        )
        if callback is None or vehicle is None:
            # Say which, in the order the vendor checks: fleet, vehicle, callback.
            get_vehicle(fleet_id=fleet_id, vehicle_id=vehicle_id)
            get_callback(fleet_id=fleet_id, callback_id=callback_id)
            raise SimNotFound(f"No remote callback {callback_id} in fleet {fleet_id}.")
        if invalid is not None:
            raise invalid
        if callback.status != CallbackStatus.RUNNING:
            raise SimInvalid(f"The callback is {callback.status}; only a Running callback takes remote actions.")
        if command.remote_type not in callback.remote_types:
            raise SimInvalid(
                f"The callback does not serve {command.remote_type}; it serves {', '.join(callback.remote_types)}."
            )
        now = timezone.now()  # once the vehicle is ours, as its plan and its events are
        plan = scenario.plan(
            member=command.member,
            body=command.body,
            vehicle=vehicle,
            now=now,
            busy=busy,
            requests_in_short_time=in_short_time,
            requests_today=today,
        )
        action = SimRemoteAction(
            id=new_id(),
            fleet_id=fleet_id,
            vehicle=vehicle,
            callback=callback,
            remote=body,
            remote_type=command.remote_type,
            created_at=now,
            updated_at=now,
        )
        due_at, events = now, []
        for seq, step in enumerate(plan.steps):
            due_at += dispatch.scaled(step.after)
            events.append((seq, step, due_at))
        booking.book(action, events, vehicle, _spend_on_vehicle(vehicle, plan, now))
    return action


def _spend_on_vehicle(vehicle: SimVehicle, plan: scenario.Plan, now: dt.datetime) -> list[str]:
    """What the remote changes on the vehicle, booked now rather than when its events are raised, so
    that the next remote sees it; the names of the fields it changed."""
    changed = []
    if vehicle.next_failure:
        # Spent by this command, whatever it is.
        vehicle.next_failure = ""
        changed.append("next_failure")
    if plan.wakes:
        month = current_month(now)
        vehicle.wake_ups_used = (vehicle.wake_ups_used if vehicle.wake_up_month == month else 0) + 1
        vehicle.wake_up_month = month
        changed += ["wake_ups_used", "wake_up_month"]
    if plan.reached_after is not None:
        awake_until = now + dispatch.scaled(plan.reached_after + scenario.AWAKE_FOR)
        if vehicle.awake_until is None or vehicle.awake_until < awake_until:
            vehicle.awake_until = awake_until
            changed.append("awake_until")
    return changed


def _parse_remote(body):
    """The Command of a Remote body the vendor takes, else SimInvalid naming each bad field."""
    try:
        command = parse_remote(body)
    except CommandInvalid as exc:
        raise SimInvalid(f"Invalid Remote: {exc}") from exc
    if "label" in body and not isinstance(body["label"], str):
        raise SimInvalid("Invalid Remote: label: must be a string")
    unstorable = storable_errors(body, command.member, command.body)
    if unstorable:
        raise SimInvalid("Invalid Remote: " + "; ".join(f"{k}: {v}" for k, v in unstorable.items()))
    return command


class _Booking:
    """The transaction of one remote: its lock and load, then its writes, COMMIT and the pump's check.

    On PostgreSQL outside any transaction (a request: ATOMIC_REQUESTS is off) the statements
    travel in two round trips, "BEGIN; lock; load" and "insert; update; COMMIT; pump check",
    where the ORM's way took six or seven (BEGIN and COMMIT each one of their own): each round
    trip cost CPU in the app and in PostgreSQL (bench/simulator.py, docs/benchmarks.md). That is
    as safe as one statement after the other: PostgreSQL runs the statements of one query string
    in order, each with its own snapshot (READ COMMITTED), so the load starts once the vehicle's
    lock is granted and sees what a concurrent remote to the same vehicle committed; and the
    pump's check runs after COMMIT, as `pump.enqueue_pump` requires. Whatever interrupts the
    booking (a refusal, an error) rolls it back.

    Elsewhere (SQLite, or inside a caller's transaction: tests, the admin) the same statements
    run one by one in `transaction.atomic`, and the pump is enqueued on commit.
    """

    def __enter__(self) -> _Booking:
        self.conn = connections[DEFAULT_DB_ALIAS]  # once: each access to `connection` goes through a thread-local
        self.batched = _batches(self.conn) and self.conn.get_autocommit() and not self.conn.in_atomic_block
        self.pump_busy = True
        if not self.batched:
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.batched:
            if exc_type is None:
                transaction.on_commit(enqueue_pump, robust=True)
            return self.atomic.__exit__(exc_type, exc, tb)
        if exc_type is not None:
            self._rollback()
        elif not self.pump_busy:
            try:
                arm_pump()
            except Exception:  # as on_commit(robust=True): the remote is booked, the safety net runs the pump
                log.exception("simulator: cannot arm the pump after a remote")
        return False

    def _rollback(self) -> None:
        try:
            with self.conn.cursor() as cursor:
                cursor.execute("ROLLBACK")  # a notice only if the transaction never began
        except Exception:
            # The connection is broken or lost: drop it rather than leave a transaction open on it.
            self.conn.close()

    def lock_and_load(
        self, *, fleet_id: str, vehicle_id: str, callback_id: str, remote_type: str, now: dt.datetime
    ) -> tuple[SimVehicle | None, SimCallback | None, tuple[int, int, bool]]:
        """The vehicle and the callback, locked (`_lock`), and the vehicle's load (`_vehicle_load`)."""
        lock_params = [vehicle_id, fleet_id, callback_id, fleet_id]
        if not self.batched:
            vehicle, callback = _lock(fleet_id=fleet_id, vehicle_id=vehicle_id, callback_id=callback_id)
            if vehicle is None:
                return None, None, (0, 0, False)
            return vehicle, callback, _vehicle_load(vehicle=vehicle, remote_type=remote_type, now=now)
        sql = f"BEGIN; {_lock_sql(self.conn.vendor)}; {_load_sql(self.conn.vendor)}"
        with self.conn.cursor() as cursor:
            cursor.execute(sql, lock_params + _load_params(vehicle_id, remote_type, now))
            cursor.nextset()
            row = cursor.fetchone()
            cursor.nextset()
            in_short_time, today, busy = cursor.fetchone()
        if row is None:
            return None, None, (0, 0, False)
        return *_instances(self.conn, row), (in_short_time, today, bool(busy))

    def book(self, action: SimRemoteAction, events, vehicle: SimVehicle, changed: list[str]) -> None:
        """Insert the action and its events, write what it changed on the vehicle; in a batch, COMMIT too."""
        statements = _insert_statements(action, events, self.conn.vendor)
        if changed:
            statements.append(_vehicle_update(vehicle, changed))
        if not self.batched:
            with self.conn.cursor() as cursor:
                for sql, params in statements:
                    cursor.execute(sql, params)
            return
        statements += [("COMMIT", []), pump_busy_statement(timezone.now())]
        with self.conn.cursor() as cursor:
            cursor.execute("; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
            while cursor.nextset():
                pass
            self.pump_busy = cursor.fetchone() is not None


def _batches(conn) -> bool:
    """Whether the connection takes several statements in one execute: PostgreSQL through Django's
    default client-side binding (the simple query protocol), not with server_side_binding."""
    return conn.vendor == "postgresql" and not conn.settings_dict.get("OPTIONS", {}).get("server_side_binding")


# The hot path's reads are written in SQL: building them with the ORM cost more CPU than
# running them (about 5 of the 9 ms a remote took; bench/simulator.py, docs/benchmarks.md).
# The same SQL runs on SQLite, without the row locks it does not have.


def _lock(*, fleet_id: str, vehicle_id: str, callback_id: str) -> tuple[SimVehicle | None, SimCallback | None]:
    """The vehicle and the callback in one statement, locked until commit on PostgreSQL.

    The vehicle is locked for update: two remotes to one vehicle take turns, each planning
    against the other's wake-up, wake-up count and action in progress. The callback only
    with a share lock, which keeps the row as read: a delete, a pause or a replace waits for
    the remotes being booked (so a remote never slips in between `delete_callback`'s check
    and its delete), while remotes through the same callback do not wait for each other.
    SQLite has no row locks; its writers take turns anyway.
    """
    conn = connections[DEFAULT_DB_ALIAS]  # once: each access to `connection` goes through a thread-local
    with conn.cursor() as cursor:
        cursor.execute(_lock_sql(conn.vendor), [vehicle_id, fleet_id, callback_id, fleet_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    return _instances(conn, row)


@functools.cache
def _lock_sql(vendor: str) -> str:
    vehicle_read, callback_read = _reader(SimVehicle, vendor), _reader(SimCallback, vendor)
    columns = f"{vehicle_read.columns('v')}, {callback_read.columns('c')}"  # names from the models
    sql = f"SELECT {columns} FROM simulator_simvehicle v, simulator_simcallback c {_LOCK_WHERE}"  # noqa: S608
    if vendor == "postgresql":
        sql += " FOR UPDATE OF v FOR SHARE OF c"
    return sql


_LOCK_WHERE = "WHERE v.id = %s AND v.fleet_id = %s AND c.id = %s AND c.fleet_id = %s"


def _instances(conn, row) -> tuple[SimVehicle, SimCallback]:
    vehicle_read, callback_read = _reader(SimVehicle, conn.vendor), _reader(SimCallback, conn.vendor)
    width = len(vehicle_read.names)
    return vehicle_read.instance(conn, row[:width]), callback_read.instance(conn, row[width:])


@dataclass(frozen=True)
class _Reader:
    """Reads a model's rows from plain SQL as the ORM would (JSON, aware datetimes), without
    compiling a query each time."""

    model: type
    names: list[str]
    column_names: list[str]
    converters: list

    def columns(self, alias: str) -> str:
        return ", ".join(f"{alias}.{name}" for name in self.column_names)

    def instance(self, conn, row):
        values = list(row)
        for i, column, steps in self.converters:
            for convert in steps:
                values[i] = convert(values[i], column, conn)
        return self.model.from_db(conn.alias, self.names, values)


@functools.cache
def _reader(model, vendor: str) -> _Reader:
    conn = connections[DEFAULT_DB_ALIAS]
    fields = model._meta.concrete_fields
    converters = []
    for i, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        steps = conn.ops.get_db_converters(column) + field.get_db_converters(conn)
        if steps:
            converters.append((i, column, steps))
    return _Reader(model, [f.attname for f in fields], [f.column for f in fields], converters)


# Actions the vendor refused itself (SameActionInProgress, a request limit…) are not in
# progress on the vehicle: their Done event does not count.
_REFUSED_BY_VENDOR = sorted(scenario.VENDOR_CAUSES)
# Its plan must not depend on the tables' statistics, which lag behind a load test (this
# machine's PostgreSQL runs without autovacuum; the bench analyses empty tables): left to
# the planner, the "in progress" test read every Done event not yet raised (BitmapAnd over
# simevent_unraised_due, or the whole of an index of them), which grows with the backlog when
# the pump lags. OFFSET 0 keeps the events' test a subquery per action: from the vehicle's
# actions of this type (its index), each action's own events (theirs). SQLite needs no fence
# (and takes no OFFSET without LIMIT).
_LOAD = """
SELECT c.short, c.day, EXISTS (
    SELECT 1 FROM simulator_simremoteaction a
    WHERE a.vehicle_id = %s AND a.remote_type = %s AND EXISTS (
        SELECT 1 FROM simulator_simevent e
        WHERE e.action_id = a.id AND e.event_type = '{done}' AND e.raised_at IS NULL
          AND e.failure_cause NOT IN ({refused}){fence}
    )
)
FROM (
    SELECT COUNT(*) FILTER (WHERE created_at > %s) AS short, COUNT(*) AS day
    FROM simulator_simremoteaction WHERE vehicle_id = %s AND created_at > %s
) c
"""


@functools.cache
def _load_sql(vendor: str) -> str:
    # The vocabulary's constants written into the text (plain words, checked): fewer values for
    # the driver to quote on every remote.
    constants = [EventType.DONE, *_REFUSED_BY_VENDOR]
    if not all(re.fullmatch(r"[A-Za-z]+", str(c)) for c in constants):
        raise ValueError(f"not plain words, cannot go into the SQL text as they are: {constants}")
    return _LOAD.format(
        done=EventType.DONE,
        refused=", ".join(f"'{cause}'" for cause in _REFUSED_BY_VENDOR),
        fence=" OFFSET 0" if vendor == "postgresql" else "",
    )


def _load_params(vehicle_id: str, remote_type: str, now: dt.datetime) -> list:
    at = connection.ops.adapt_datetimefield_value
    short = at(now - dt.timedelta(seconds=scenario.SHORT_TIME_WINDOW))
    day = at(now - dt.timedelta(seconds=scenario.DAY_WINDOW))
    return [vehicle_id, remote_type, short, vehicle_id, day]


def _vehicle_load(*, vehicle: SimVehicle, remote_type: str, now) -> tuple[int, int, bool]:
    """In one query: remotes posted to the vehicle within the vendor's short window and within
    the day (refused ones too), and whether another action of this type on it still waits
    for its Done event.

    Run after the vehicle's row lock is taken: a statement started before it would not see
    the action a concurrent post just committed. (`_Booking` sends it in the lock's round trip,
    as the next statement: the windows then end when the remote arrived, before the lock, not
    when the lock was granted — later by as long as a concurrent remote to the same vehicle
    held it, a few milliseconds; remotes that fell out of a window meanwhile still count.)
    """
    with connection.cursor() as cursor:
        cursor.execute(_load_sql(connection.vendor), _load_params(vehicle.pk, remote_type, now))
        in_short_time, today, busy = cursor.fetchone()
    return in_short_time, today, bool(busy)


def _action_in_progress(*, vehicle: SimVehicle, remote_type: str) -> bool:
    """Another action of this type on the vehicle still waits for its Done event."""
    return _vehicle_load(vehicle=vehicle, remote_type=remote_type, now=timezone.now())[2]


_INSERT_ACTION = (
    "INSERT INTO simulator_simremoteaction (id, fleet_id, vehicle_id, callback_id, remote, remote_type, status, "
    "failure_cause, feedback_detail, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, '', '', %s, %s)"
)
_INSERT_EVENTS = (
    "INSERT INTO simulator_simevent (action_id, seq, event_type, status, failure_cause, feedback_detail, effects, "
    "due_at, raised_at) VALUES "
)


def _insert_statements(action: SimRemoteAction, events: list[tuple[int, scenario.Step, dt.datetime]],
                       vendor: str) -> list[tuple[str, list]]:
    """The action and its scenario's events: what `objects.create` and `bulk_create` would write,
    without their per-call compiling. One statement on PostgreSQL (a data-modifying CTE; the
    foreign key of the events is checked at commit), two elsewhere."""
    at = connection.ops.adapt_datetimefield_value
    remote = SimRemoteAction._meta.get_field("remote").get_db_prep_save(action.remote, connection)
    effects = SimEvent._meta.get_field("effects")
    created = at(action.created_at)
    rows, params = [], []
    for seq, step, due_at in events:
        rows.append("(%s, %s, %s, %s, %s, %s, %s, %s, NULL)")
        params += [
            action.id, seq, step.event_type, step.status, step.failure_cause, step.feedback_detail,
            effects.get_db_prep_save(step.effects, connection), at(due_at),
        ]
    action_params = [action.id, action.fleet_id, action.vehicle_id, action.callback_id, remote, action.remote_type,
                     action.status, created, created]
    if not rows:
        return [(_INSERT_ACTION, action_params)]
    if vendor == "postgresql":
        return [(f"WITH action AS ({_INSERT_ACTION}) {_INSERT_EVENTS}{', '.join(rows)}", action_params + params)]
    return [(_INSERT_ACTION, action_params), (_INSERT_EVENTS + ", ".join(rows), params)]


def _vehicle_update(vehicle: SimVehicle, changed: list[str]) -> tuple[str, list]:
    """The UPDATE that `SimVehicle.objects.filter(pk=…).update(…)` of those fields would send."""
    fields = [SimVehicle._meta.get_field(name) for name in changed]
    sql = f"UPDATE simulator_simvehicle SET {', '.join(f'{f.column} = %s' for f in fields)} WHERE id = %s"  # noqa: S608
    return sql, [f.get_db_prep_save(getattr(vehicle, f.attname), connection) for f in fields] + [vehicle.pk]


# --- what the simulator can hold ------------------------------------------------------------

# Body values the simulator keeps in typed columns, by Remote member and path inside it. The
# spec bounds them from below only; what a column cannot hold is refused here, with the
# vendor's 400, rather than accepted and left to fail when its event is raised.
STORED_IN = {
    "stolen": {
        ("trackingPeriod", "running"): "tracking_running",
        ("trackingPeriod", "shutdown"): "tracking_shutdown",
    },
    "charging": {("schedule", "nextDelayedTime"): "next_delayed_charge"},
}
# The narrowest range of each integer column over the databases Django supports (SQLite
# would take 64 bits where PostgreSQL takes 32): a value is refused the same way everywhere.
_INTEGER_RANGES = BaseDatabaseOperations.integer_field_ranges


def storable_errors(raw, member: str, body: dict) -> dict[str, str]:
    """Errors keyed by field path for values of a valid Remote the simulator could not store."""
    errors: dict[str, str] = {}
    _no_nul(raw, "", errors)
    for path, column in STORED_IN.get(member, {}).items():
        value = body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        field = SimVehicle._meta.get_field(column)
        where = ".".join((member, *path))
        kind = field.get_internal_type()
        if kind in _INTEGER_RANGES:
            low, high = _INTEGER_RANGES[kind]
            if not low <= value <= high:
                errors[where] = f"must be between {low} and {high}"
        elif kind == "DateTimeField":
            try:
                parse_instant(value).astimezone(dt.UTC)
            except (ValueError, OverflowError):
                errors[where] = "must be a date-time between the years 1 and 9999 in UTC"
    return errors


def _no_nul(value, path: str, errors: dict[str, str]) -> None:
    """PostgreSQL cannot hold U+0000 in text nor jsonb: refuse it wherever it stands."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                errors[where] = "must not contain the character U+0000"
            _no_nul(item, where, errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_nul(item, f"{path}.{i}", errors)
    elif isinstance(value, str) and "\x00" in value:
        errors[path] = "must not contain the character U+0000"
