"""The simulated API's bodies, shaped like api-b2b.yaml: HAL links, collections, xError.

Links are absolute (built from the request), as the vendor's are; the portal's client follows
`_links.next.href` as given, whether it carries a `pageToken` or an `indexRange`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from stellantis.vocabulary import ELECTRIFIED

from .dispatch import rfc3339
from .models import SimCallback, SimFleet, SimRemoteAction, SimVehicle
from .vendor import SimInvalid

MAX_PAGE_SIZE = 60
_INDEX_RANGE = re.compile(r"^(\d+)-(\d*)$")


class Links:
    """The simulator's absolute URLs for one request: what `build_absolute_uri(reverse(…))` answers.

    Built from a path template per URL name instead (reverse() and build_absolute_uri() cost
    about a tenth of a remote POST's CPU for its three links) where that gives the same text:
    each value plain (letters, digits, - and _, as our ids are: nothing for either to quote).
    Any other value goes through reverse() as before.
    """

    def __init__(self, request):
        self.request = request
        self._origin = None

    def __call__(self, name: str, **kwargs) -> dict:
        template = _template(name, tuple(kwargs)) if all(map(_plain, kwargs.values())) else None
        if template is None:
            return {"href": self.request.build_absolute_uri(reverse(f"simulator:{name}", kwargs=kwargs))}
        if self._origin is None:
            self._origin = self.request.build_absolute_uri("/")[:-1]  # scheme and host
        return {"href": self._origin + template.format_map(kwargs)}

    def fleet(self, fleet_id: str) -> dict:
        return self("fleet", fleet_id=fleet_id)

    def vehicle(self, vehicle: SimVehicle) -> dict:
        return self("vehicle", fleet_id=vehicle.fleet_id, vehicle_id=vehicle.id)

    def callback(self, callback: SimCallback) -> dict:
        return self("callback", fleet_id=callback.fleet_id, callback_id=callback.id)

    def action(self, action: SimRemoteAction) -> dict:
        return self(
            "remote",
            fleet_id=action.fleet_id,
            vehicle_id=action.vehicle_id,
            callback_id=action.callback_id,
            action_id=action.id,
        )


_plain = re.compile(r"[0-9A-Za-z_-]+").fullmatch
_TEMPLATES: dict = {}


def _template(name: str, keys: tuple[str, ...]) -> str | None:
    """The path of `name` with `{key}` where each value goes, per URLconf and script prefix; None
    where build_absolute_uri() would not simply prepend scheme and host to it."""
    cache_key = (get_urlconf(), get_script_prefix(), name, keys)
    if cache_key in _TEMPLATES:
        return _TEMPLATES[cache_key]
    marks = {key: f"SIMULATORLINK{i}X" for i, key in enumerate(keys)}
    path = reverse(f"simulator:{name}", kwargs=marks)
    template = None
    if path.startswith("/") and not path.startswith("//") and "/./" not in path and "/../" not in path:
        template = path.replace("{", "{{").replace("}", "}}")
        for key, mark in marks.items():
            template = template.replace(mark, f"{{{key}}}")
    _TEMPLATES[cache_key] = template
    return template


def error_body(*, code: int, message: str) -> dict:
    return {"code": code, "uuid": str(uuid.uuid4()), "message": message, "timestamp": rfc3339(timezone.now())}


def fleet_body(links: Links, fleet: SimFleet) -> dict:
    return {
        "_links": {
            "self": links.fleet(fleet.id),
            "vehicles": links("vehicles", fleet_id=fleet.id),
            "callbacks": links("callbacks", fleet_id=fleet.id),
        },
        "id": fleet.id,
        "name": fleet.name,
        "description": fleet.description,
        "createdAt": rfc3339(fleet.created_at),
        "updatedAt": rfc3339(fleet.updated_at),
    }


def vehicle_body(links: Links, vehicle: SimVehicle, *, extensions: tuple[str, ...] = ()) -> dict:
    body = {
        "_links": {
            "self": links.vehicle(vehicle),
            "fleet": links.fleet(vehicle.fleet_id),
            "status": links("vehicle-status", fleet_id=vehicle.fleet_id, vehicle_id=vehicle.id),
        },
        "id": vehicle.id,
        "vin": vehicle.vin,
        "motorization": vehicle.motorization,
        "brand": vehicle.brand,
        "createdAt": rfc3339(vehicle.created_at),
        "updatedAt": rfc3339(vehicle.updated_at),
    }
    # Branding and pictures are accepted but the simulator has none to give.
    if "onboardCapabilities" in extensions:
        body["_embedded"] = {"extension": {"onboardCapabilities": onboard_capabilities(vehicle)}}
    return body


VEHICLE_EXTENSIONS = ("onboardCapabilities", "branding", "pictures")

_DATA_SCOPES = [
    "data:telemetry",
    "data:telemetry:vehicle",
    "data:telemetry:vehicle:ignition",
    "data:telemetry:vehicle:energies",
    "data:telemetry:vehicle:doorsState",
    "data:telemetry:vehicle:kinetic",
    "data:telemetry:vehicle:odometer",
    "data:telemetry:vehicle:lightingSystem",
    "data:position",
    "data:trip",
    "data:alert",
]
_ELECTRIC_DATA_SCOPES = ["data:telemetry:vehicle:preconditioning", "data:telemetry:vehicle:battery"]
PROGRAM_SLOTS = 4


def onboard_capabilities(vehicle: SimVehicle) -> dict:
    """What the vehicle reports it can do; no `remote` at all without a remote-control subscription."""
    electrified = vehicle.motorization in ELECTRIFIED
    capabilities: dict = {"data": _DATA_SCOPES + (_ELECTRIC_DATA_SCOPES if electrified else [])}
    if not vehicle.remote_subscribed:
        return capabilities

    def simple(scope: str) -> dict:
        return {"supported": True, "scopeName": scope, "parameters": {}}

    preferences = {"level": electrified, "type": electrified}
    capabilities["remote"] = {
        "preconditioning": {
            "supported": electrified,
            "scopeName": "remote:preconditioning:write",
            "parameters": {"programs": {"size": PROGRAM_SLOTS}, "immediate": True} if electrified else {},
        },
        "charging": {
            "supported": electrified,
            "scopeName": "remote:charging:write",
            "parameters": {
                "immediate": {"start": True, "stop": True},
                "schedule": {
                    "programs": {"supported": True, "size": PROGRAM_SLOTS},
                    "nextDelayedTime": True,
                    "preferences": preferences,
                },
                "preferences": preferences,
            }
            if electrified
            else {},
        },
        "door": simple("remote:door:write"),
        "horn": simple("remote:horn:write"),
        "lights": simple("remote:lights:write"),
        "wakeup": simple("remote:wakeup:write"),
        "navigation": simple("remote:navigation:write"),
        # The vendor's schema names no scope for the stolen-vehicle service.
        "stolen": {
            "supported": True,
            "scopeName": "remote:stolen:write",
            "parameters": {"immobilization": True, "trackingPeriod": True},
        },
    }
    return capabilities


def parse_extensions(request) -> tuple[str, ...]:
    """The `extension` query parameter: repeated or comma-separated VehicleExtensionType values."""
    values = [v.strip() for raw in request.GET.getlist("extension") for v in raw.split(",") if v.strip()]
    unknown = [v for v in values if v not in VEHICLE_EXTENSIONS]
    if unknown:
        raise SimInvalid(f"extension: unknown {', '.join(unknown)}; use {', '.join(VEHICLE_EXTENSIONS)}.")
    return tuple(dict.fromkeys(values))


_DOORS = ("Driver", "Passenger", "RearLeft", "RearRight", "Trunk")
_LIGHTS = [("Left", "Front"), ("Right", "Front"), ("Left", "Rear"), ("Right", "Rear")]
DRIVING_SPEED = 50.0  # km/h, shown while the vehicle is in use


def last_report(vehicle: SimVehicle):
    if vehicle.online and not vehicle.is_asleep():
        return timezone.now()  # awake and in coverage: the box answers with what it reads now
    if vehicle.last_driven_at is not None:
        return min(vehicle.updated_at, vehicle.last_driven_at)
    return vehicle.updated_at


def status_body(links: Links, vehicle: SimVehicle) -> dict:
    """The vehicle's latest status, as its telematics box would report it.

    A box that sleeps or is out of coverage sends nothing new: its status is the one it sent
    before (at the end of its last trip at the latest), which is what tells a fleet manager how
    long it has been silent."""
    at = rfc3339(last_report(vehicle))
    electrified = vehicle.motorization in ELECTRIFIED
    if electrified:
        charging = {
            "plugged": vehicle.plugged,
            "status": "InProgress" if vehicle.charging else ("Stopped" if vehicle.plugged else "Disconnected"),
            "chargingMode": "Slow" if vehicle.charging else "No",
        }
        if vehicle.next_delayed_charge:
            charging["nextDelayedTime"] = rfc3339(vehicle.next_delayed_charge)
        preferences = vehicle.charge_preferences or {}
        if preferences.get("level"):
            charging["chargingPowerLevel"] = preferences["level"]
        if preferences.get("type"):
            charging["type"] = preferences["type"]
        if vehicle.charge_programs:
            charging["schedule"] = {"programs": list(vehicle.charge_programs)}
        energy = {
            "createdAt": at,
            "type": "Electric",
            "subType": "ElectricEnergy",
            "level": round(vehicle.energy_level, 1),
            "autonomy": vehicle.autonomy_km,
            "extension": {"electric": {"charging": charging}},
        }
    else:
        energy = {
            "createdAt": at,
            "type": "Fuel",
            "subType": "FossilEnergy",
            "level": round(vehicle.energy_level, 1),
            "autonomy": vehicle.autonomy_km,
        }
    # While driven, the position and the ignition are live; parked, they date from the last trip.
    position_at = rfc3339(vehicle.updated_at if vehicle.in_use else (vehicle.last_driven_at or vehicle.updated_at))
    body = {
        "_links": {
            "self": links("vehicle-status", fleet_id=vehicle.fleet_id, vehicle_id=vehicle.id),
            "vehicle": links.vehicle(vehicle),
            "fleet": links.fleet(vehicle.fleet_id),
        },
        "vin": vehicle.vin,
        "createdAt": at,
        "updatedAt": at,
        "energies": [energy],
        "doorsState": {
            "createdAt": at,
            "lockedStates": ["Locked" if vehicle.doors_locked else "Unlocked"],
            "opening": [
                {"identifier": door, "state": "Open" if vehicle.door_open and door == "Driver" else "Closed"}
                for door in _DOORS
            ],
        },
        "lastPosition": {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [vehicle.longitude, vehicle.latitude]},
            "properties": {"createdAt": position_at, "type": "Acquire", "fixStatus": "3D", "vin": vehicle.vin},
        },
        "ignition": {"createdAt": position_at, "type": "Start" if vehicle.in_use else "Stop"},
        "kinetic": {
            "createdAt": position_at,
            "moving": vehicle.in_use,
            "speed": DRIVING_SPEED if vehicle.in_use else 0.0,
            "acceleration": 0.0,
        },
        "lightingSystem": {
            "createdAt": at,
            # Remote lights flash the indicators, as the hazard lights do.
            "turn": [
                {"direction": d, "position": p, "status": "On" if vehicle.lights_on else "Off"} for d, p in _LIGHTS
            ],
        },
    }
    if electrified:
        air = {"createdAt": at, "status": "Enabled" if vehicle.preconditioning_on else "Disabled"}
        if vehicle.preconditioning_on:
            air["startingCause"] = "Immediate"
        if vehicle.preconditioning_programs:
            air["programs"] = list(vehicle.preconditioning_programs)
        body["preconditioning"] = {"airConditioning": air}
    if vehicle.stolen:
        body["stolen"] = stolen_body(links, vehicle)
    return body


def stolen_body(links: Links, vehicle: SimVehicle) -> dict:
    """The StolenObj the status carries only while the vehicle is reported stolen."""
    since = vehicle.stolen_since or vehicle.updated_at
    stolen_id = uuid.uuid5(uuid.NAMESPACE_URL, f"stolen:{vehicle.id}:{since.isoformat()}").hex
    vehicle_href = links.vehicle(vehicle)["href"]
    return {
        "_links": {"self": {"href": f"{vehicle_href}/stolen/{stolen_id}"}, "vehicle": {"href": vehicle_href}},
        "id": stolen_id,
        "state": True,
        "createdAt": rfc3339(since),
        "startedAt": rfc3339(since),
    }


def callback_body(links: Links, callback: SimCallback) -> dict:
    return {
        "_links": {
            "self": links.callback(callback),
            "fleet": links.fleet(callback.fleet_id),
            # The vendor's `remotes` link is templated on the vehicle id.
            "remotes": {
                "href": links.fleet(callback.fleet_id)["href"] + f"/vehicles/{{vid}}/callbacks/{callback.id}/remotes",
                "templated": True,
            },
        },
        "id": callback.id,
        "subscribe": callback.subscribe,
        "status": callback.status,
    }


def callback_ref(links: Links, callback: SimCallback) -> dict:
    return {
        "_links": {"fleet": links.fleet(callback.fleet_id), "callback": links.callback(callback)},
        "callbackId": callback.id,
        "status": callback.status,
    }


def action_body(links: Links, action: SimRemoteAction) -> dict:
    body = {
        "_links": {
            "self": links.action(action),
            "fleet": links.fleet(action.fleet_id),
            "callback": links("callback", fleet_id=action.fleet_id, callback_id=action.callback_id),
        },
        "remoteActionId": action.id,
        "type": action.remote_type,
        "status": action.status,
        "remote": action.remote,
    }
    if action.failure_cause:
        body["failureCause"] = action.failure_cause
    if action.feedback_detail:
        body["feedbackDetail"] = action.feedback_detail
    return body


def post_response(links: Links, action: SimRemoteAction) -> dict:
    return {
        "_links": {
            "fleet": links.fleet(action.fleet_id),
            "callback": links("callback", fleet_id=action.fleet_id, callback_id=action.callback_id),
            "remote": links.action(action),
        },
        "remoteActionId": action.id,
        "type": action.remote_type,
    }


# --- collections ----------------------------------------------------------------------------


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit():
        raise SimInvalid("pageToken: not a token this server issued; start again without it.")
    return int(number)


def _paging(request) -> tuple[int, int, int, int | None]:
    """(page size, offset within the range, range start, range end inclusive or None)."""
    raw = request.GET.get("pageSize", "")
    if raw == "":
        size = MAX_PAGE_SIZE
    elif raw.isdigit() and 1 <= int(raw) <= MAX_PAGE_SIZE:
        size = int(raw)
    else:
        raise SimInvalid(f"pageSize: must be a whole number from 1 to {MAX_PAGE_SIZE}.")
    start, end = 0, None
    index_range = request.GET.get("indexRange", "")
    if index_range:
        match = _INDEX_RANGE.match(index_range)
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise SimInvalid("indexRange: must look like 0-9 or 5- (start-end, end optional).")
        start, end = int(match.group(1)), (int(match.group(2)) if match.group(2) else None)
    token = request.GET.get("pageToken", "")
    offset = _decode_token(token) if token else 0
    return size, offset, start, end


def collection(request, items, *, key: str, render) -> dict:
    """One page of `items` (a queryset or list) as a HAL CollectionResult with `_embedded.<key>`.

    `settings.SIMULATOR_PAGING` picks how the links reach the other pages: "token" (a
    `pageToken` this server built, within the `indexRange` asked for) or "index" (each link
    an `indexRange`, as the vendor's documentation describes; `total` and the page numbers
    then count the whole collection).
    """
    size, offset, start, end = _paging(request)
    count = items.count() if hasattr(items, "count") and not isinstance(items, list) else len(items)
    stop = count if end is None else min(count, end + 1)
    first = start + offset  # the index of this page's first item in the whole collection
    page = list(items[first : min(first + size, stop)]) if first < stop else []
    if settings.SIMULATOR_PAGING == "index":
        links, total, total_page, current_page = _index_links(request, size, first, end, stop, count)
    else:
        links, total, total_page, current_page = _token_links(request, size, offset, start, stop)
    return {
        "_links": links,
        "total": total,
        "totalPage": total_page,
        "currentPage": current_page,
        "_embedded": {key: [render(item) for item in page]},
    }


def _link(request, **params) -> dict:
    """This collection's URL with the request's query, minus the paging ones, plus `params`."""
    query = request.GET.copy()
    query.pop("pageToken", None)
    for name, value in params.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    encoded = query.urlencode()
    return {"href": request.build_absolute_uri(request.path + (f"?{encoded}" if encoded else ""))}


def _token_links(request, size: int, offset: int, start: int, stop: int):
    total = max(0, stop - start)
    total_page = max(1, math.ceil(total / size))

    def link(page_offset: int) -> dict:
        return _link(request, pageToken=_encode_token(page_offset) if page_offset else None)

    links = {"self": {"href": request.build_absolute_uri()}, "first": link(0), "last": link((total_page - 1) * size)}
    if offset + size < total:
        links["next"] = link(offset + size)
    if offset > 0:
        links["prev"] = link(max(0, offset - size))
    return links, total, total_page, offset // size + 1


def _index_links(request, size: int, first: int, end: int | None, stop: int, count: int):
    # "120-" with pageSize: from there on, a page at a time; a range the client bounded keeps its end.
    def link(lo: int) -> dict:
        return _link(request, indexRange=f"{lo}-" if end is None else f"{lo}-{end}")

    total_page = max(1, math.ceil(count / size))
    last = (max(stop, 1) - 1) // size * size
    links = {"self": {"href": request.build_absolute_uri()}, "first": link(0), "last": link(last)}
    if first + size < stop:
        links["next"] = link(first + size)
    if first > 0:
        links["prev"] = link(max(0, first - size))
    return links, count, total_page, first // size + 1
