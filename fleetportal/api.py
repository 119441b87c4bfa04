"""One error shape for the whole partner API: an RFC 9457 problem document.

    {"type": "about:blank", "title": "Conflict", "status": 409, "code": "missing_remote_type",
     "detail": "No running callback …", "errors": {}, "missing_remote_type": "Lights"}

`code` is machine-readable, `detail` is for people, `errors` maps field paths
(`door.state`, `attributes.0.type`) to one message each. Domain refusals arrive as
`core.errors.ServiceError`; DRF's own exceptions (validation, authentication, permission,
404, 405, parse, throttling) and Django's Http404 are given the same shape here, and so
are unknown paths and server errors under /api/ (`not_found`, `server_error`).
"""

from __future__ import annotations

from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ServiceError

PROBLEM_JSON = "application/problem+json"

# DRF's default codes, where ours say more.
_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.ParseError: "parse_error",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid",
}


def problem(status: int, *, code: str, detail: str, errors: dict | None = None, **extra) -> dict:
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        "errors": errors or {},
        **extra,
    }


def flatten(detail, prefix: str = "") -> dict[str, str]:
    """DRF's nested error lists and dicts as {"a.0.b": "message"}, one message per path."""
    if isinstance(detail, dict):
        out: dict[str, str] = {}
        for key, value in detail.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": " ".join(str(item) for item in detail)} if detail else {}
        out = {}
        for index, item in enumerate(detail):
            out.update(flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": str(detail)}


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every refusal of the API in one shape."""
    if isinstance(exc, ServiceError):
        # A refusal with no field to name carries its message in `detail` alone.
        errors = {} if exc.errors == {"non_field_errors": exc.message} else exc.errors
        return Response(problem(exc.status, code=exc.code, detail=exc.message, errors=errors, **exc.extra), status=exc.status, content_type=PROBLEM_JSON)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)  # keeps DRF's headers (WWW-Authenticate, Retry-After, Allow)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response  # a bug of ours: Django's 500 handling (handler500 below for /api/)
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), exc.default_code)
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten(exc.detail)
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items()) or "Invalid request."
    else:
        errors, detail = {}, str(exc.detail)
    response.data = problem(response.status_code, code=code, detail=detail, errors=errors)
    response.content_type = PROBLEM_JSON
    return response


@csrf_exempt  # a POST to an unknown path is a 404 problem, not the CSRF page (nothing is written)
def not_found(request, exception=None):
    """Every unknown path under /api/: a problem document, never Django's HTML (or debug) page."""
    return JsonResponse(problem(404, code="not_found", detail=f"No such resource: {request.path}"), status=404, content_type=PROBLEM_JSON)


def server_error(request):
    """handler500: a problem document under /api/, Django's plain page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.server_error(request)
    body = problem(500, code="server_error", detail="Something went wrong on our side; it has been logged.")
    return JsonResponse(body, status=500, content_type=PROBLEM_JSON)
