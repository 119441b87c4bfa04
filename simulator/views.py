"""The simulated Fleet Owner API: parse, call a service, render. Paths as in api-b2b.yaml."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import math
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from stellantis.vocabulary import RemoteType

from . import vendor, wire
from .models import SimFleet, SimRemoteAction, SimVehicle

HAL = "application/hal+json"


class _Unauthorized(vendor.SimError):
    status = 401
    code = 40100


class _MethodNotAllowed(vendor.SimError):
    status = 405
    code = 40500


class _TooManyRequests(vendor.SimError):
    status = 429
    code = 42900

    def __init__(self, message: str, *, headers: dict[str, str]):
        super().__init__(message)
        self.headers = headers


def error_response(exc: vendor.SimError) -> JsonResponse:
    response = JsonResponse(wire.error_body(code=exc.code, message=str(exc)), status=exc.status)
    if exc.status == 401 and settings.SIMULATOR_CREDENTIALS:
        response["WWW-Authenticate"] = 'Basic realm="stellantis-simulator"'
    return response


def _authenticate(request) -> None:
    # The vendor wants client_id on every call; any value is good enough for a simulator.
    if not request.GET.get("client_id"):
        raise _Unauthorized("client_id query parameter is missing.")
    if not _basic_auth_ok(request.META.get("HTTP_AUTHORIZATION", ""), settings.SIMULATOR_CREDENTIALS):
        raise _Unauthorized("HTTP Basic credentials are missing or wrong.")


@functools.lru_cache(maxsize=64)
def _basic_auth_ok(header: str, expected: str) -> bool:
    """Whether an Authorization header carries `expected` ("user:password") as HTTP Basic.

    Basic auth always: settings derive credentials when none are configured. An empty setting
    (only a test can make one) matches nothing rather than opening the door. Remembered per
    header and setting: a client sends the same header on every call (a load test, thousands).
    """
    scheme, _, encoded = header.partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode() if scheme.lower() == "basic" else ""
    except (binascii.Error, UnicodeDecodeError):
        given = ""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


# --- rate limits ---------------------------------------------------------------------------------
#
# Two fixed windows per client_id, as the vendor reports them: "1" the day, "2" the one-second
# burst. Counted in the table `simulator_ratewindow` (migration 0004) by one upsert per window
# and call, so every worker process shares the counts; a call over a limit is not counted.


@dataclass(frozen=True)
class _Window:
    suffix: str  # the vendor's header suffix: -1 the day, -2 the burst
    limit: int
    seconds: int
    starts_at: int = 0  # seconds past the epoch's window boundaries where this window turns

    def bucket(self, now: float) -> int:
        return int((now - self.starts_at) // self.seconds)

    def reset_in(self, now: float) -> int:
        """Whole seconds until the window turns (at least 1, as the vendor's Retry-After)."""
        return max(1, math.ceil((self.bucket(now) + 1) * self.seconds + self.starts_at - now))


def _windows() -> list[_Window]:
    windows = [
        _Window("2", settings.SIMULATOR_RATE_LIMIT_PER_SECOND, 1),
        _Window(
            "1",
            settings.SIMULATOR_RATE_LIMIT_PER_DAY,
            settings.SIMULATOR_RATE_LIMIT_DAY_SECONDS,
            settings.SIMULATOR_RATE_LIMIT_DAY_STARTS_AT % settings.SIMULATOR_RATE_LIMIT_DAY_SECONDS,
        ),
    ]
    return [w for w in windows if w.limit > 0]


_SPEND = (
    "INSERT INTO simulator_ratewindow (name, bucket, used) VALUES (%s, %s, 1) "
    "ON CONFLICT (name) DO UPDATE SET "
    "used = CASE WHEN simulator_ratewindow.bucket = excluded.bucket THEN simulator_ratewindow.used + 1 ELSE 1 END, "
    "bucket = excluded.bucket "
    "WHERE simulator_ratewindow.bucket <> excluded.bucket OR simulator_ratewindow.used < %s "
    "RETURNING used"
)


def _spend(client_id: str, window: _Window, now: float) -> int | None:
    """Count one call in the window; answers the calls used so far, or None when it is spent."""
    with connection.cursor() as cursor:
        cursor.execute(_SPEND, [f"{client_id}:{window.suffix}", window.bucket(now), window.limit])
        row = cursor.fetchone()
    return row[0] if row else None


def _used(client_id: str, window: _Window, now: float) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT bucket, used FROM simulator_ratewindow WHERE name = %s", [f"{client_id}:{window.suffix}"])
        row = cursor.fetchone()
    return row[1] if row and row[0] == window.bucket(now) else 0


def _rate_limit(request) -> dict[str, str]:
    """Spend one call of each configured window; the X-RateLimit headers for the answer.

    Raises `_TooManyRequests` (with its headers) when a window is spent."""
    client_id = request.GET.get("client_id", "")
    now = time.time()
    headers: dict[str, str] = {}
    windows = _windows()
    for i, window in enumerate(windows):
        used = _spend(client_id, window, now)
        headers[f"X-RateLimit-Limit-{window.suffix}"] = str(window.limit)
        if used is None:
            headers[f"X-RateLimit-Remaining-{window.suffix}"] = "0"
            for other in windows[i + 1 :]:  # not spent by this call: report where they stand
                headers[f"X-RateLimit-Limit-{other.suffix}"] = str(other.limit)
                headers[f"X-RateLimit-Remaining-{other.suffix}"] = str(max(0, other.limit - _used(client_id, other, now)))
            reset = str(window.reset_in(now))
            headers.update({"Retry-After": reset, "X-RateLimit-Reset": reset})
            name = "per second" if window.suffix == "2" else f"per {window.seconds} s" if window.seconds != 86400 else "per day"
            raise _TooManyRequests(f"Rate limit exceeded: {window.limit} calls {name}. Retry after {reset} s.", headers=headers)
        headers[f"X-RateLimit-Remaining-{window.suffix}"] = str(max(0, window.limit - used))
    return headers


def _latency() -> float:
    """Seconds one answer should take: SIMULATOR_LATENCY_MS ± a uniform SIMULATOR_LATENCY_JITTER_MS."""
    base, jitter = settings.SIMULATOR_LATENCY_MS, settings.SIMULATOR_LATENCY_JITTER_MS
    if not base and not jitter:
        return 0.0
    return max(0.0, base + random.uniform(-jitter, jitter)) / 1000  # noqa: S311 - pacing, not secrets


def endpoint(*methods: str):
    """A simulated API view: checks client_id and credentials, answers SimErrors as xError JSON.

    With SIMULATOR_LATENCY_MS, each answer takes that long, like a network round trip: half
    before the work, half after it. The sleeps hold no transaction (the simulator's views run
    outside ATOMIC_REQUESTS and `vendor` commits before returning) and no lock, so slow
    answers cost a worker thread but never the database.
    """

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, **kwargs):
            delay = _latency()
            if delay:
                time.sleep(delay / 2)
            response = _answer(view, methods, request, kwargs)
            if delay:
                time.sleep(delay / 2)
            return response

        return wrapper

    return decorate


def _answer(view, methods: tuple[str, ...], request, kwargs) -> HttpResponse:
    limits: dict[str, str] = {}
    try:
        _authenticate(request)
        limits = _rate_limit(request)
        if request.method not in methods:
            raise _MethodNotAllowed(f"{request.method} is not allowed here; use {', '.join(methods)}.")
        result = view(request, wire.Links(request), **kwargs)
    except _TooManyRequests as exc:
        response, limits = error_response(exc), exc.headers
    except vendor.SimError as exc:
        response = error_response(exc)
    else:
        if result is None:
            response = HttpResponse(status=204)
        else:
            status, body = result
            response = JsonResponse(body, status=status, content_type=HAL, json_dumps_params={"ensure_ascii": False})
    for name, value in limits.items():  # on every answer, as the vendor does
        response[name] = value
    return response


def _json(request):
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise vendor.SimInvalid(f"The body is not JSON: {exc}") from exc


@endpoint("GET")
def fleets(request, links):
    return 200, wire.collection(
        request, SimFleet.objects.all(), key="fleets", render=lambda f: wire.fleet_body(links, f)
    )


@endpoint("GET")
def fleet(request, links, fleet_id):
    return 200, wire.fleet_body(links, vendor.get_fleet(fleet_id=fleet_id))


@endpoint("GET")
def vehicles(request, links, fleet_id):
    fleet = vendor.get_fleet(fleet_id=fleet_id)
    items = SimVehicle.objects.filter(fleet=fleet).order_by("vin")
    if request.GET.get("vinPrefix"):
        items = items.filter(vin__startswith=request.GET["vinPrefix"].upper())
    return 200, wire.collection(request, items, key="vehicles", render=lambda v: wire.vehicle_body(links, v))


@endpoint("GET")
def vehicle(request, links, fleet_id, vehicle_id):
    extensions = wire.parse_extensions(request)
    found = vendor.get_vehicle(fleet_id=fleet_id, vehicle_id=vehicle_id)
    return 200, wire.vehicle_body(links, found, extensions=extensions)


@endpoint("GET")
def vehicle_status(request, links, fleet_id, vehicle_id):
    return 200, wire.status_body(links, vendor.get_vehicle(fleet_id=fleet_id, vehicle_id=vehicle_id))


@endpoint("GET", "POST")
def callbacks(request, links, fleet_id):
    if request.method == "POST":
        callback = vendor.create_callback(fleet_id=fleet_id, subscribe=_json(request))
        return 200, wire.callback_ref(links, callback)
    fleet = vendor.get_fleet(fleet_id=fleet_id)
    items = list(fleet.callbacks.order_by("created_at", "id"))
    # `types` (RemoteTypes, repeatable; commas accepted too): callbacks serving any of them.
    types = [t.strip() for raw in request.GET.getlist("types") for t in raw.split(",") if t.strip()]
    unknown = [t for t in types if t not in RemoteType.values]
    if unknown:
        raise vendor.SimInvalid(f"types: unknown {', '.join(unknown)}; use {', '.join(RemoteType.values)}.")
    if types:
        items = [c for c in items if set(types) & set(c.remote_types)]
    return 200, wire.collection(request, items, key="callbacks", render=lambda c: wire.callback_body(links, c))


@endpoint("GET", "PUT", "DELETE")
def callback(request, links, fleet_id, callback_id):
    if request.method == "PUT":
        updated = vendor.replace_callback(fleet_id=fleet_id, callback_id=callback_id, subscribe=_json(request))
        return 202, wire.callback_ref(links, updated)
    if request.method == "DELETE":
        vendor.delete_callback(fleet_id=fleet_id, callback_id=callback_id)
        return None
    return 200, wire.callback_body(links, vendor.get_callback(fleet_id=fleet_id, callback_id=callback_id))


@endpoint("PUT")
def callback_status(request, links, fleet_id, callback_id):
    updated = vendor.set_callback_status(fleet_id=fleet_id, callback_id=callback_id, body=_json(request))
    return 202, wire.callback_ref(links, updated)


@endpoint("GET", "POST")
def remotes(request, links, fleet_id, vehicle_id, callback_id):
    if request.method == "POST":
        action = vendor.send_remote(
            fleet_id=fleet_id, vehicle_id=vehicle_id, callback_id=callback_id, body=_json(request)
        )
        return 202, wire.post_response(links, action)
    found = vendor.get_vehicle(fleet_id=fleet_id, vehicle_id=vehicle_id)
    cb = vendor.get_callback(fleet_id=fleet_id, callback_id=callback_id)
    items = SimRemoteAction.objects.filter(vehicle=found, callback=cb).order_by("created_at", "id")
    return 200, wire.collection(request, items, key="remoteActions", render=lambda a: wire.action_body(links, a))


@endpoint("GET")
def remote(request, links, fleet_id, vehicle_id, callback_id, action_id):
    action = vendor.get_action(fleet_id=fleet_id, vehicle_id=vehicle_id, callback_id=callback_id, action_id=action_id)
    return 200, wire.action_body(links, action)


@endpoint("GET", "POST", "PUT", "DELETE", "PATCH")
def not_found(request, links, rest=""):
    raise vendor.SimNotFound(f"No such resource in the simulated API: /{rest}")
