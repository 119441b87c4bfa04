"""The simulated Fleet Owner API: parse, call a service, render. Paths as in api-b2b.yaml."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import vendor, wire
from .models import SimFleet, SimRemoteAction, SimVehicle

HAL = "application/hal+json"


class _Unauthorized(vendor.SimError):
    status = 401
    code = 40100


class _MethodNotAllowed(vendor.SimError):
    status = 405
    code = 40500


def error_response(exc: vendor.SimError) -> JsonResponse:
    response = JsonResponse(wire.error_body(code=exc.code, message=str(exc)), status=exc.status)
    if exc.status == 401 and settings.SIMULATOR_CREDENTIALS:
        response["WWW-Authenticate"] = 'Basic realm="stellantis-simulator"'
    return response


def _authenticate(request) -> None:
    # The vendor wants client_id on every call; any value is good enough for a simulator.
    if not request.GET.get("client_id"):
        raise _Unauthorized("client_id query parameter is missing.")
    expected = settings.SIMULATOR_CREDENTIALS
    if not expected:
        return
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode() if scheme.lower() == "basic" else ""
    except (binascii.Error, UnicodeDecodeError):
        given = ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _Unauthorized("HTTP Basic credentials are missing or wrong.")


def endpoint(*methods: str):
    """A simulated API view: checks client_id and credentials, answers SimErrors as xError JSON."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, **kwargs):
            try:
                _authenticate(request)
                if request.method not in methods:
                    raise _MethodNotAllowed(f"{request.method} is not allowed here; use {', '.join(methods)}.")
                result = view(request, wire.Links(request), **kwargs)
            except vendor.SimError as exc:
                return error_response(exc)
            if result is None:
                return HttpResponse(status=204)
            status, body = result
            return JsonResponse(body, status=status, content_type=HAL, json_dumps_params={"ensure_ascii": False})

        return wrapper

    return decorate


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
    remote_type = request.GET.get("remoteType")
    if remote_type:
        items = [c for c in items if remote_type in c.remote_types]
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
