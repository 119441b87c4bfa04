"""The partner API's OpenAPI 3 document (drf-spectacular): what every operation shares.

- `AutoSchema` adds to each operation the problem responses it can give (one `Problem`
  component, `application/problem+json`), the `Idempotency-Key` header on POSTs (the
  middleware in idempotency/ serves every POST under /api/) and a summary when the view gives
  none (the first line of its docstring).
- `PartnerTokenScheme`: `Authorization: Token fpt_…`.
- `REMOTE_SCHEMAS`: the `Remote` body as the vendor's `Remote` schema describes it (every
  member optional, one at a time), without `label` and with our `reason`. The checks
  themselves are `stellantis.remotes.parse_remote`'s; this only describes them.
"""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from fleetportal.api import PROBLEM_JSON

# What each status means in this API, for the response's description.
PROBLEM_DESCRIPTIONS = {
    400: "Invalid request: `errors` names each field or query parameter (`invalid`, `invalid_command`, `invalid_idempotency_key`).",
    401: "No token, or a bad, revoked or expired one (`not_authenticated`, `authentication_failed`).",
    403: "The token's scopes or its member's role do not allow it (`permission_denied`, `self_approval`).",
    404: "Not found, or not yours: another organisation's object is not found (`not_found`).",
    409: "Conflict with the object's state, or the same `Idempotency-Key` still running (`idempotency_key_in_use`).",
    415: "The body must be `application/json` (`unsupported_media_type`).",
    422: "The `Idempotency-Key` was used for another request (`idempotency_key_reused`).",
    429: "Too many requests for this token; see `Retry-After` (`throttled`).",
    502: "Stellantis refused the change; nothing was changed here (`vendor_refused`).",
}


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem document: every error of the API."""

    type = serializers.CharField(help_text="Always `about:blank`.")
    title = serializers.CharField(help_text="The HTTP status phrase.")
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Machine-readable: `invalid_command`, `not_capable`, `missing_remote_type`, …")
    detail = serializers.CharField(help_text="For people.")
    errors = serializers.DictField(child=serializers.CharField(), help_text="Field path (`door.state`, `status`) → message.")

    class Meta:
        ref_name = "Problem"


IDEMPOTENCY_KEY = OpenApiParameter(
    # The middleware takes any key that is not blank; printable ASCII without spaces is what we advise.
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False, pattern=r"^[!-~]{1,255}$",
    description="1 to 255 characters (a UUID): a retry with the same key and body replays the first answer "
    "(`Idempotent-Replayed: true`) instead of doing it again. See docs/partner-api.md, Idempotency.",
)


class AutoSchema(openapi.AutoSchema):
    """REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]. A view may declare `problems = {"post": {409: "why"}}`
    for the refusals only it gives; the ones every view may give are added here."""

    def get_override_parameters(self):
        params = super().get_override_parameters()
        if self.method == "POST":
            params = [*params, IDEMPOTENCY_KEY]
        return params

    def get_summary(self):
        summary = super().get_summary()
        if summary:
            return summary
        handler = getattr(self.view, self.method.lower(), None)
        doc = (getattr(handler, "__doc__", None) or self.view.__class__.__doc__ or "").strip()
        return doc.splitlines()[0].rstrip(".") if doc else None

    def _problem_statuses(self) -> dict[int, str]:
        statuses = {401: "", 429: ""}
        has_body = self.method in ("POST", "PUT", "PATCH")
        takes_query = getattr(self.view, "filterset_class", None) or getattr(self.view, "pagination_class", None)
        query = [p for p in self.get_override_parameters() if getattr(p, "location", None) == OpenApiParameter.QUERY]
        if has_body or (self.method == "GET" and takes_query and self._is_list_view()) or any(p.name != "fleet" for p in query):
            statuses[400] = ""
        if self.method != "GET":
            statuses[403] = ""
        if "{" in self.path:
            statuses[404] = ""
        if has_body:
            statuses[415] = ""
        if self.method == "POST":  # the Idempotency-Key middleware's answers
            statuses.update({400: "", 409: "", 422: ""})
        statuses.update(getattr(self.view, "problems", {}).get(self.method.lower(), {}))
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        for status, why in sorted(self._problem_statuses().items()):
            if str(status) in responses:
                continue
            description = why or PROBLEM_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase
            responses[str(status)] = {"description": description, "content": {PROBLEM_JSON: {"schema": problem}}}
        return responses


class PartnerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.PartnerTokenAuthentication"
    name = "partnerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Token fpt_…` (or `Bearer fpt_…`): a partner token of your organisation, with its scopes.",
        }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_TIME_OF_DAY = {"type": "string", "description": "ISO 8601 duration from midnight, e.g. `PT7H30M`.", "example": "PT7H30M"}
_DAYS = {
    "type": "object", "required": ["day"],
    "properties": {"day": {"type": "array", "items": {"type": "string", "enum": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]}}},
}
_SLOT = {"type": "integer", "minimum": 1, "maximum": 4, "description": "Program number; each slot once per list."}

REMOTE_SCHEMAS = {
    "RemoteRequest": {
        "type": "object",
        "description": "The Stellantis `Remote` body without its `label` (the portal sets it to the action's id): "
        "**exactly one** action member per request, and a `reason`.",
        "properties": {
            "preconditioning": _ref("RemotePreconditioning"),
            "immobilization": _ref("RemoteSetImmobilization"),
            "door": _ref("RemoteDoorsState"),
            "horn": _ref("RemoteHorn"),
            "charging": _ref("RemoteCharging"),
            "stolen": _ref("RemoteStolen"),
            "lights": _ref("RemoteLights"),
            "wakeUp": _ref("RemoteWakeUp"),
            "navigation": _ref("RemoteNavigation"),
            "reason": {
                "type": "string", "maxLength": 500, "nullable": True,
                "description": "Why it is asked for; required for unlock, immobilization and stolen (400 naming `reason`).",
            },
        },
    },
    "RemotePreconditioning": {
        "type": "object", "description": "Air conditioning now and/or on programs (at least one of them).",
        "properties": {"airConditioning": {"type": "object", "properties": {
            "immediate": {"type": "boolean", "default": False},
            "programs": {"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "object", "required": ["slot"], "properties": {
                "slot": _SLOT,
                "enabled": {"type": "boolean", "description": "Required unless actionsType is Delete."},
                "actionsType": {"type": "string", "enum": ["Set", "Delete"], "default": "Set"},
                "recurrence": {"type": "string", "enum": ["None", "Daily"], "default": "Daily"},
                "start": _TIME_OF_DAY,
                "occurence": _DAYS,
            }}},
        }}},
    },
    "RemoteSetImmobilization": {
        "type": "object", "required": ["activate"], "description": "Immobilize the vehicle (dangerous: needs a reason).",
        "properties": {"activate": {"type": "boolean"}},
    },
    "RemoteDoorsState": {
        "type": "object", "required": ["state"], "description": "Lock or unlock (unlocking is dangerous: needs a reason).",
        "properties": {"state": {"type": "string", "enum": ["Unlocked", "Locked"]}, "forced": {"type": "boolean", "deprecated": True}},
    },
    "RemoteHorn": {
        "type": "object", "required": ["state"],
        "properties": {"state": {"type": "string", "enum": ["Activated", "Unactivated"]}},
    },
    "RemoteCharging": {
        "type": "object",
        "description": "Charge now, on a schedule, or set preferences (`preferences` cannot go with `immediate` or `schedule`).",
        "properties": {
            "immediate": {"type": "boolean"},
            "schedule": {"type": "object", "description": "Either nextDelayedTime or programs.", "properties": {
                "nextDelayedTime": {"type": "string", "format": "date-time", "description": "RFC 3339, with a time zone."},
                "programs": {"type": "array", "minItems": 1, "maxItems": 4, "items": {
                    "type": "object", "required": ["slot", "enabled", "start"],
                    "properties": {"slot": _SLOT, "enabled": {"type": "boolean"}, "start": _TIME_OF_DAY, "end": _TIME_OF_DAY, "occurence": _DAYS},
                }},
            }},
            "preferences": {"type": "object", "properties": {
                "level": {"type": "string", "enum": ["Level1", "Level2", "Level3", "Level4", "Level5"]},
                "type": {"type": "string", "enum": ["Partial", "Full"]},
            }},
            "nextDelayedTime": {"type": "string", "format": "date-time", "deprecated": True, "description": "Use schedule.nextDelayedTime."},
        },
    },
    "RemoteStolen": {
        "type": "object", "description": "Exactly one of stolen, trackingPeriod, immobilization (dangerous: needs a reason).",
        "properties": {
            "stolen": {"type": "boolean", "description": "true declares the vehicle stolen."},
            "trackingPeriod": {"type": "object", "properties": {
                "running": {"type": "integer", "minimum": 5}, "shutdown": {"type": "integer", "minimum": 60},
            }},
            "immobilization": {"type": "object", "required": ["activate"], "properties": {"activate": {"type": "boolean"}}},
        },
    },
    "RemoteLights": {
        # The vendor's file reads `true:` here (YAML 1.1 turned `on` into a boolean); the body is {"on": true}.
        "type": "object", "required": ["on"], "properties": {"on": {"type": "boolean"}},
    },
    "RemoteWakeUp": {
        "type": "object", "description": "State refresh: the vehicle reports its status (read into the vehicle's `status`).",
        "properties": {"action": {"type": "string", "enum": ["WakeUp"], "default": "WakeUp"}},
    },
    "RemoteNavigation": {
        "type": "object", "required": ["positions"], "description": "Up to 9 points and the destination (last).",
        "properties": {
            "driverApproval": {"type": "boolean", "default": False, "deprecated": True},
            "positions": {"type": "array", "minItems": 1, "maxItems": 10, "items": {
                "type": "object", "required": ["type", "coordinates"], "description": "A GeoJSON Point.",
                "properties": {
                    "type": {"type": "string", "enum": ["Point"]},
                    "coordinates": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"},
                                    "description": "[longitude, latitude] or [longitude, latitude, altitude]."},
                },
            }},
        },
    },
}


def postprocess(result, generator, request, public):
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]: add the `Remote` components the command POST refers to
    (remotes.api.REMOTE_REQUEST)."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(REMOTE_SCHEMAS)
    return result


def preprocess(endpoints):
    """SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"]: the partner API only (not the Stellantis webhook), without
    the schema and docs pages themselves."""
    skip = {"/api/v1/schema/", "/api/v1/docs/"}
    return [e for e in endpoints if e[0].startswith("/api/v1/") and e[0] not in skip]
