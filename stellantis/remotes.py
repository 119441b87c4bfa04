"""One validation layer for remote commands: a request → a `Remote` body the vendor accepts.

Web forms, admin actions, API serializers and the simulator all call `parse_remote`.
Errors are keyed by the dotted path of the offending field so each surface can name it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .dates import parse_instant
from .vocabulary import MEMBER_TO_TYPE, RemoteType

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DURATION = re.compile(r"^PT(?:(\d{1,2})H)?(?:(\d{1,2})M)?(?:(\d{1,2})S)?$")


class CommandInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class Command:
    """A validated remote command: the `Remote` member and its body, without the label."""

    member: str
    body: dict

    @property
    def remote_type(self) -> RemoteType:
        return MEMBER_TO_TYPE[self.member]

    @classmethod
    def from_dict(cls, stored: dict) -> Command:
        """Back from `as_dict` (how an action keeps its command); validated when it was made."""
        ((member, body),) = stored.items()
        return cls(member, body)

    def as_remote(self, label: str) -> dict:
        """The `Remote` body Stellantis takes: the command and our label (the action's id)."""
        return {"label": label, self.member: self.body}

    def as_dict(self) -> dict:
        return {self.member: self.body}


class _Errors(dict):
    def need_object(self, value, path) -> bool:
        if not isinstance(value, dict):
            self[path] = "must be an object"
            return False
        return True

    def unknown(self, value: dict, allowed: set, path: str):
        for key in value:
            if key not in allowed:
                self[f"{path}.{key}"] = "is not a known field"

    def boolean(self, value, path, *, required=False):
        if value is None:
            if required:
                self[path] = "is required"
            return
        if not isinstance(value, bool):
            self[path] = "must be true or false"

    def choice(self, value, choices, path, *, required=False):
        if value is None:
            if required:
                self[path] = "is required"
            return
        if value not in choices:
            self[path] = f"must be one of {', '.join(choices)}"

    def integer(self, value, path, *, minimum=None, maximum=None, required=False):
        if value is None:
            if required:
                self[path] = "is required"
            return
        if isinstance(value, bool) or not isinstance(value, int):
            self[path] = "must be a whole number"
        elif minimum is not None and value < minimum:
            self[path] = f"must be at least {minimum}"
        elif maximum is not None and value > maximum:
            self[path] = f"must be at most {maximum}"


def parse_remote(data) -> Command:
    """Validate a request body holding exactly one `Remote` member (a `label`, if any, is ignored)."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise CommandInvalid({"non_field_errors": "The body must be a JSON object with one action, e.g. {\"horn\": {\"state\": \"Activated\"}}."})
    unknown = [k for k in data if k not in MEMBER_TO_TYPE and k != "label"]
    for key in unknown:
        errors[key] = f"is not a remote action; use one of {', '.join(MEMBER_TO_TYPE)}"
    members = [k for k in data if k in MEMBER_TO_TYPE]
    if not members and not unknown:
        errors["non_field_errors"] = f"No action given: send exactly one of {', '.join(MEMBER_TO_TYPE)}."
    if len(members) > 1:
        errors["non_field_errors"] = f"Only one action per request; got {', '.join(members)}."
    if errors:
        raise CommandInvalid(dict(errors))
    member = members[0]
    # No field of any member is nullable: a null is an error where it stands, never "absent".
    _nulls(data[member], member, errors)
    if errors:
        raise CommandInvalid(dict(errors))
    body = _VALIDATORS[member](data[member], member, errors)
    if errors:
        raise CommandInvalid(dict(errors))
    return Command(member=member, body=body)


def _nulls(value, path, errors: _Errors) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None:
                errors[f"{path}.{key}"] = "must not be null; leave it out instead"
            else:
                _nulls(item, f"{path}.{key}", errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if item is None:
                errors[f"{path}.{i}"] = "must not be null"
            else:
                _nulls(item, f"{path}.{i}", errors)


def _horn(value, path, errors: _Errors):
    if not errors.need_object(value, path):
        return None
    errors.unknown(value, {"state"}, path)
    errors.choice(value.get("state"), ("Activated", "Unactivated"), f"{path}.state", required=True)
    return {"state": value.get("state")}


def _door(value, path, errors: _Errors):
    if not errors.need_object(value, path):
        return None
    errors.unknown(value, {"state", "forced"}, path)
    errors.choice(value.get("state"), ("Locked", "Unlocked"), f"{path}.state", required=True)
    errors.boolean(value.get("forced"), f"{path}.forced")
    body = {"state": value.get("state")}
    if value.get("forced") is not None:
        body["forced"] = value["forced"]
    return body


def _one_boolean(key: str):
    """A member whose whole body is one required boolean: immobilization, lights."""

    def validate(value, path, errors: _Errors):
        if not errors.need_object(value, path):
            return None
        errors.unknown(value, {key}, path)
        errors.boolean(value.get(key), f"{path}.{key}", required=True)
        return {key: value.get(key)}

    return validate


_immobilization = _one_boolean("activate")
# The spec file's schema for lights is broken by YAML 1.1 ("on" reads as true); the
# vendor's documented body is {"on": true}.
_lights = _one_boolean("on")


def _wake_up(value, path, errors: _Errors):
    if value is None or value == {}:
        return {"action": "WakeUp"}
    if not errors.need_object(value, path):
        return None
    errors.unknown(value, {"action"}, path)
    errors.choice(value.get("action", "WakeUp"), ("WakeUp",), f"{path}.action")
    return {"action": "WakeUp"}


def _stolen(value, path, errors: _Errors):
    if not errors.need_object(value, path):
        return None
    errors.unknown(value, {"stolen", "trackingPeriod", "immobilization"}, path)
    given = [k for k in ("stolen", "trackingPeriod", "immobilization") if k in value]
    if len(given) != 1:
        errors[path] = "give exactly one of stolen, trackingPeriod, immobilization"
        return None
    key = given[0]
    if key == "stolen":
        errors.boolean(value["stolen"], f"{path}.stolen", required=True)
        return {"stolen": value["stolen"]}
    if key == "immobilization":
        sub = value["immobilization"]
        if errors.need_object(sub, f"{path}.immobilization"):
            errors.unknown(sub, {"activate"}, f"{path}.immobilization")
            errors.boolean(sub.get("activate"), f"{path}.immobilization.activate", required=True)
            return {"immobilization": {"activate": sub.get("activate")}}
        return None
    sub = value["trackingPeriod"]
    if errors.need_object(sub, f"{path}.trackingPeriod"):
        errors.unknown(sub, {"running", "shutdown"}, f"{path}.trackingPeriod")
        if not sub:
            errors[f"{path}.trackingPeriod"] = "give running and/or shutdown"
        errors.integer(sub.get("running"), f"{path}.trackingPeriod.running", minimum=5)
        errors.integer(sub.get("shutdown"), f"{path}.trackingPeriod.shutdown", minimum=60)
        return {"trackingPeriod": {k: sub[k] for k in ("running", "shutdown") if k in sub}}
    return None


def _navigation(value, path, errors: _Errors):
    if not errors.need_object(value, path):
        return None
    errors.unknown(value, {"positions", "driverApproval"}, path)
    # Deprecated in the spec but still accepted there: checked and passed on, never dropped.
    errors.boolean(value.get("driverApproval"), f"{path}.driverApproval")
    positions = value.get("positions")
    if not isinstance(positions, list) or not 1 <= len(positions) <= 10:
        errors[f"{path}.positions"] = "give 1 to 10 points, the last one being the destination"
        return None
    cleaned = []
    for i, point in enumerate(positions):
        p = f"{path}.positions.{i}"
        if not errors.need_object(point, p):
            continue
        errors.unknown(point, {"type", "coordinates"}, p)
        errors.choice(point.get("type", "Point"), ("Point",), f"{p}.type")
        coords = point.get("coordinates")
        # A GeoJSON position: longitude, latitude and an optional altitude (metres).
        if (
            not isinstance(coords, list)
            or len(coords) not in (2, 3)
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in coords)
        ):
            errors[f"{p}.coordinates"] = "must be [longitude, latitude] or [longitude, latitude, altitude]"
            continue
        lon, lat = coords[:2]
        if not -180 <= lon <= 180:
            errors[f"{p}.coordinates"] = "longitude must be between -180 and 180"
        elif not -90 <= lat <= 90:
            errors[f"{p}.coordinates"] = "latitude must be between -90 and 90"
        cleaned.append({"type": "Point", "coordinates": [float(c) for c in coords]})
    result = {"positions": cleaned}
    if value.get("driverApproval") is not None:
        result["driverApproval"] = value["driverApproval"]
    return result


def _duration_in_day(value, path, errors: _Errors, *, required=True) -> None:
    if value is None:
        if required:
            errors[path] = "is required"
        return
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or value == "PT":
        errors[path] = "must be an ISO 8601 time of day such as PT7H30M"
        return
    h, m, s = (int(g or 0) for g in match.groups())
    if m > 59 or s > 59 or h * 3600 + m * 60 + s >= 24 * 3600:
        errors[path] = "must be a time within a day (PT0M to PT23H59M)"


def _days(occurence, path, errors: _Errors):
    if not errors.need_object(occurence, path):
        return
    errors.unknown(occurence, {"day"}, path)
    days = occurence.get("day")
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days) or len(set(days)) != len(days):
        errors[f"{path}.day"] = f"must list distinct days among {', '.join(DAYS)}"


def _slots(programs, path, errors: _Errors) -> None:
    slots = [p.get("slot") for p in programs if isinstance(p, dict)]
    if len([s for s in slots if s is not None]) != len({s for s in slots if s is not None}):
        errors[path] = "each slot can be used only once"


def _preconditioning(value, path, errors: _Errors):
    if not errors.need_object(value, path):
        return None
    errors.unknown(value, {"airConditioning"}, path)
    ac = value.get("airConditioning")
    p = f"{path}.airConditioning"
    if not errors.need_object(ac, p):
        return None
    errors.unknown(ac, {"immediate", "programs"}, p)
    if "immediate" not in ac and "programs" not in ac:
        errors[p] = "give immediate and/or programs"
        return None
    errors.boolean(ac.get("immediate"), f"{p}.immediate")
    programs = ac.get("programs")
    cleaned = {}
    if "immediate" in ac:
        cleaned["immediate"] = ac["immediate"]
    if programs is not None:
        if not isinstance(programs, list) or not 1 <= len(programs) <= 4:
            errors[f"{p}.programs"] = "give 1 to 4 programs"
            return None
        _slots(programs, f"{p}.programs", errors)
        out = []
        for i, prog in enumerate(programs):
            pp = f"{p}.programs.{i}"
            if not errors.need_object(prog, pp):
                continue
            errors.unknown(prog, {"slot", "enabled", "actionsType", "recurrence", "start", "occurence"}, pp)
            action = prog.get("actionsType", "Set")
            errors.choice(action, ("Set", "Delete"), f"{pp}.actionsType")
            errors.integer(prog.get("slot"), f"{pp}.slot", minimum=1, maximum=4, required=True)
            if action == "Delete":
                # The vendor's docs need only the slot to delete a program, but the official
                # schema (Program) requires `start` on every item: send a neutral one.
                out.append({"slot": prog.get("slot"), "actionsType": "Delete", "start": prog.get("start") or "PT0M"})
                continue
            errors.boolean(prog.get("enabled"), f"{pp}.enabled", required=True)
            errors.choice(prog.get("recurrence", "Daily"), ("None", "Daily"), f"{pp}.recurrence")
            _duration_in_day(prog.get("start"), f"{pp}.start", errors)
            if "occurence" not in prog:
                errors[f"{pp}.occurence"] = "is required"
            else:
                _days(prog["occurence"], f"{pp}.occurence", errors)
            out.append(
                {
                    "slot": prog.get("slot"),
                    "enabled": prog.get("enabled"),
                    "actionsType": "Set",
                    "recurrence": prog.get("recurrence", "Daily"),
                    "start": prog.get("start"),
                    "occurence": prog.get("occurence"),
                }
            )
        cleaned["programs"] = out
    return {"airConditioning": cleaned}


def _rfc3339(value, path, errors: _Errors) -> None:
    try:
        parsed = parse_instant(value, default_tz=None)
    except ValueError:
        errors[path] = "must be an RFC 3339 date-time such as 2026-12-01T06:30:00Z"
        return
    if parsed.tzinfo is None or "T" not in value:
        errors[path] = "must include a time and a time zone offset (e.g. Z)"


def _charging(value, path, errors: _Errors):
    if not errors.need_object(value, path):
        return None
    errors.unknown(value, {"immediate", "schedule", "preferences", "nextDelayedTime"}, path)
    if "preferences" in value and ({"immediate", "schedule", "nextDelayedTime"} & set(value)):
        errors[f"{path}.preferences"] = "cannot be sent together with immediate or schedule"
        return None
    if not ({"immediate", "schedule", "preferences", "nextDelayedTime"} & set(value)):
        errors[path] = "give immediate, schedule or preferences"
        return None
    cleaned = {}
    if "immediate" in value:
        errors.boolean(value["immediate"], f"{path}.immediate", required=True)
        cleaned["immediate"] = value["immediate"]
    schedule = value.get("schedule")
    if "nextDelayedTime" in value:  # deprecated top-level form: normalise into schedule
        schedule = {**(schedule or {}), "nextDelayedTime": value["nextDelayedTime"]}
    if schedule is not None:
        sp = f"{path}.schedule"
        if errors.need_object(schedule, sp):
            errors.unknown(schedule, {"nextDelayedTime", "programs"}, sp)
            if ("nextDelayedTime" in schedule) == ("programs" in schedule):
                errors[sp] = "give either nextDelayedTime or programs"
            elif "nextDelayedTime" in schedule:
                _rfc3339(schedule["nextDelayedTime"], f"{sp}.nextDelayedTime", errors)
                cleaned["schedule"] = {"nextDelayedTime": schedule["nextDelayedTime"]}
            else:
                programs = schedule["programs"]
                if not isinstance(programs, list) or not 1 <= len(programs) <= 4:
                    errors[f"{sp}.programs"] = "give 1 to 4 programs"
                else:
                    _slots(programs, f"{sp}.programs", errors)
                    out = []
                    for i, prog in enumerate(programs):
                        pp = f"{sp}.programs.{i}"
                        if not errors.need_object(prog, pp):
                            continue
                        errors.unknown(prog, {"slot", "enabled", "start", "end", "occurence"}, pp)
                        errors.integer(prog.get("slot"), f"{pp}.slot", minimum=1, maximum=4, required=True)
                        errors.boolean(prog.get("enabled"), f"{pp}.enabled", required=True)
                        _duration_in_day(prog.get("start"), f"{pp}.start", errors)
                        _duration_in_day(prog.get("end"), f"{pp}.end", errors, required=False)
                        if "occurence" in prog:
                            _days(prog["occurence"], f"{pp}.occurence", errors)
                        out.append({k: prog[k] for k in ("slot", "enabled", "start", "end", "occurence") if k in prog})
                    cleaned["schedule"] = {"programs": out}
    prefs = value.get("preferences")
    if prefs is not None:
        pp = f"{path}.preferences"
        if errors.need_object(prefs, pp):
            errors.unknown(prefs, {"level", "type"}, pp)
            if not prefs:
                errors[pp] = "give level and/or type"
            errors.choice(prefs.get("level"), ("Level1", "Level2", "Level3", "Level4", "Level5"), f"{pp}.level")
            errors.choice(prefs.get("type"), ("Partial", "Full"), f"{pp}.type")
            cleaned["preferences"] = {k: prefs[k] for k in ("level", "type") if k in prefs}
    return cleaned


_VALIDATORS = {
    "horn": _horn,
    "door": _door,
    "immobilization": _immobilization,
    "lights": _lights,
    "wakeUp": _wake_up,
    "stolen": _stolen,
    "navigation": _navigation,
    "preconditioning": _preconditioning,
    "charging": _charging,
}

def past_dates(command: Command, now=None) -> dict[str, str]:
    """The command's date-times already past at `now`, by field path (a date-time in 2020 is a mistake).

    Separate from `parse_remote`: a stored command is not wrong because time went by, and the
    simulator (like the vendor) reads bodies with `parse_remote` when they arrive.
    The preconditioning programs carry times of day (PT7H30M), never a date: nothing to refuse.
    """
    import datetime as dt

    now = now or dt.datetime.now(dt.UTC)
    errors = {}
    if command.member == "charging":
        value = (command.body.get("schedule") or {}).get("nextDelayedTime")
        if value:
            try:
                past = parse_instant(value) <= now
            except ValueError:
                past = False  # parse_remote names a bad value
            if past:
                errors["charging.schedule.nextDelayedTime"] = f"is in the past ({value}): give a time still to come"
    return errors


def check_not_past(command: Command, now=None) -> Command:
    errors = past_dates(command, now)
    if errors:
        raise CommandInvalid(errors)
    return command


# Members that can carry a command whose replay or late delivery is a safety problem
# (for doors, only an unlock is): they need their own permission and a confirmation.
MAY_BE_DANGEROUS = frozenset({"door", "immobilization", "stolen"})


def is_dangerous(command: Command) -> bool:
    if command.member == "door":
        return command.body.get("state") == "Unlocked"
    return command.member in MAY_BE_DANGEROUS


# --- human words ---------------------------------------------------------------------------


def _zone_name(tz) -> str:
    return getattr(tz, "key", None) or str(tz)


def _at(value: str, tz, now) -> str:
    """"22:00" today, "22:00 on 28 Nov" another day (and the year when not this one), in `tz`."""
    try:
        when = parse_instant(value).astimezone(tz)
    except (ValueError, TypeError):
        return str(value)
    today = now.astimezone(tz).date()
    if when.date() == today:
        return when.strftime("%H:%M")
    if when.year == today.year:
        return f"{when:%H:%M} on {when.day} {when:%b}"
    return f"{when:%H:%M} on {when.day} {when:%b %Y}"


def _clock(duration: str) -> str:
    """PT7H30M -> 07:30 (a time of day in the vehicle's own clock)."""
    match = _DURATION.match(duration) if isinstance(duration, str) else None
    if not match:
        return str(duration)
    h, m, _s = (int(g or 0) for g in match.groups())
    return f"{h:02d}:{m:02d}"


def _slots_words(programs) -> str:
    slots = [str(p.get("slot")) for p in programs if isinstance(p, dict) and p.get("slot") is not None]
    if not slots:
        return ""
    return f" (slot{'s' if len(slots) > 1 else ''} {', '.join(slots)})"


def _charging_words(body: dict, tz, now) -> str:
    if "preferences" in body:
        prefs = body["preferences"]
        parts = []
        if "level" in prefs:
            parts.append(f"level {str(prefs['level']).removeprefix('Level')}")
        if "type" in prefs:
            parts.append(str(prefs["type"]).lower())
        return "Set charging preferences" + (f" ({', '.join(parts)})" if parts else "")
    schedule = body.get("schedule") or {}
    if "nextDelayedTime" in body:  # the deprecated top-level form
        schedule = {**schedule, "nextDelayedTime": body["nextDelayedTime"]}
    if "nextDelayedTime" in schedule:
        return f"Start charging at {_at(schedule['nextDelayedTime'], tz, now)} ({_zone_name(tz)})"
    if "programs" in schedule:
        return "Set charging programs" + _slots_words(schedule["programs"])
    if body.get("immediate") is True:
        return "Start charging now"
    if body.get("immediate") is False:
        return "Stop charging"
    return "Charging"


def _preconditioning_words(body: dict) -> str:
    ac = body.get("airConditioning") or {}
    words = []
    if ac.get("immediate") is True:
        words.append("Start preconditioning")
    elif ac.get("immediate") is False:
        words.append("Stop preconditioning")
    programs = ac.get("programs")
    if programs:
        deleted = [p for p in programs if isinstance(p, dict) and p.get("actionsType") == "Delete"]
        if len(deleted) == len(programs):
            text = "Delete preconditioning programs" + _slots_words(programs)
        else:
            starts = [_clock(p.get("start")) for p in programs if isinstance(p, dict) and p.get("actionsType") != "Delete"]
            text = "Preconditioning programs" + _slots_words(programs)
            if starts:
                text += f" at {', '.join(starts)}"
        words.append(text if not words else text[0].lower() + text[1:])
    return " and ".join(words) or "Preconditioning"


def _navigation_words(body: dict) -> str:
    positions = body.get("positions") or []
    if not positions:
        return "Navigate"
    lon, lat = positions[-1].get("coordinates", [0, 0])[:2]
    text = f"Navigate to {lat:.4f}, {lon:.4f}"
    if len(positions) > 1:
        via = len(positions) - 1
        text += f" via {via} point{'s' if via > 1 else ''}"
    return text


def _stolen_words(body: dict) -> str:
    if "stolen" in body:
        return "Declare stolen" if body["stolen"] else "Declare recovered"
    if "immobilization" in body:
        return "Immobilize (stolen vehicle)" if (body["immobilization"] or {}).get("activate") else "Lift immobilization (stolen vehicle)"
    period = body.get("trackingPeriod") or {}
    parts = []
    if "running" in period:
        parts.append(f"every {period['running']} s when driven")
    if "shutdown" in period:
        parts.append(f"every {period['shutdown']} s when parked")
    return "Track the stolen vehicle" + (f" ({', '.join(parts)})" if parts else "")


def describe(remote_type, command: dict, tz=None, *, now=None) -> str:
    """A command as people say it: "Lock doors", "Start charging at 22:00 (Europe/Paris)".

    `command` is an action's stored command ({member: body}); `tz` the reader's zone (default:
    the active one, the person's). Never raises: a shape we do not know reads as its type.
    """
    import datetime as dt

    from django.utils import timezone

    tz = tz or timezone.get_current_timezone()
    if isinstance(tz, str):
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(tz)
    now = now or dt.datetime.now(dt.UTC)
    fallback = RemoteType(remote_type).label if remote_type in RemoteType.values else str(remote_type or "Command")
    try:
        ((member, body),) = (command or {}).items()
    except ValueError:
        return fallback
    body = body if isinstance(body, dict) else {}
    try:
        if member == "door":
            text = "Lock doors" if body.get("state") == "Locked" else "Unlock doors"
            return text + (" (forced)" if body.get("forced") else "")
        if member == "horn":
            return "Sound horn" if body.get("state", "Activated") == "Activated" else "Stop horn"
        if member == "lights":
            return "Flash lights" if body.get("on", True) else "Turn lights off"
        if member == "wakeUp":
            return "Refresh state"
        if member == "immobilization":
            return "Immobilize" if body.get("activate") else "Lift immobilization"
        if member == "stolen":
            return _stolen_words(body)
        if member == "navigation":
            return _navigation_words(body)
        if member == "preconditioning":
            return _preconditioning_words(body)
        if member == "charging":
            return _charging_words(body, tz, now)
    except (AttributeError, TypeError, ValueError, IndexError):
        return fallback
    return fallback
