"""Logs: one JSON line per request and per q2 task, and nothing secret in any line.

- `RedactFilter` sits on every handler (settings.LOGGING): whatever a message, its arguments
  or a traceback holds, a partner token key, our webhook secret header value, an
  Authorization/Cookie value, a `whsec_` signing secret or a password in a URL leaves masked
  (the JSON formatter masks its whole line again, extra fields included). It masks what looks like one; a secret that looks like nothing (a bare password)
  must simply never be logged, which fleetportal/tests/test_logs.py checks on a real flow.
- `JsonFormatter` (python-json-logger) writes a record and its extra fields as one line.
- `RequestLogMiddleware` writes one line per request (`fleetportal.request`).
- One line per q2 task (`fleetportal.task`) is core's (core/apps.py: django-q2's signals,
  connected where core needs no app of ours).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.http import HttpRequest
from django.utils.functional import empty
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

_HEX = frozenset("0123456789abcdef")


def _hex_then_dot(text: str) -> bool:
    """Whether 16 hex digits precede some '.': the shape of our secret header value, cheaper than a regex scan."""
    at = text.find(".", 16)
    while at != -1:
        if _HEX.issuperset(text[at - 16 : at]):
            return True
        at = text.find(".", at + 1)
    return False


# (needles, pattern, replacement): each masks the secret part and keeps what helps to read the
# line. A pattern runs only when one of its needles is in the lower-cased text (or its test
# function says so): most lines hold none, and the request line is on the webhook's hot path.
_KEYWORDS = ("password", "passwd", "secret", "api_key", "api-key", "apikey", "access_token", "refresh_token")
_REDACTIONS = (
    # A partner token key `fpt_<8-char prefix>_<secret>`: the prefix is public (the admin and
    # the request lines show it), the rest is the key.
    (("fpt_",), re.compile(r"fpt_([0-9A-Za-z]{8})_[A-Za-z0-9_-]+"), r"fpt_\1_***"),
    # Our webhook secret header value `<16-hex webhook_key>.<secret>` (callbacks.models).
    (_hex_then_dot, re.compile(r"(?<=[0-9a-f]{16})\.[A-Za-z0-9_-]{6,}"), ".***"),
    # Standard Webhooks signing secrets of the partners' push endpoints (pushes.models).
    (("whsec_",), re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_***"),
    # The value of an Authorization header, as `Name: value`, `'Name': 'value'` or
    # `HTTP_AUTHORIZATION=value`: its scheme kept, its credentials masked.
    (
        ("authoriz",),
        re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z]+\s+)?)[^\s\"',;]+"),
        r"\1***",
    ),
    # The value of a Cookie or Set-Cookie header, or of our secret header: up to the end of the
    # quoted value or of the line (cookies are several `name=value;`).
    (
        ("cookie", "fleetportal-secret", "fleetportal_secret"),
        re.compile(r"(?i)((?:cookie|fleetportal[-_]secret)[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+"),
        r"\1***",
    ),
    # Credentials of an HTTP auth scheme wherever they appear without their header's name.
    (("basic", "bearer", "digest"), re.compile(r"(?i)\b(Basic|Bearer|Digest)\s+[A-Za-z0-9+/=._~-]{8,}"), r"\1 ***"),
    # user:password@ in any URL (a database, a broker, a callback target).
    (("@",), re.compile(r"://([^/\s:@]+):[^/\s@]+@"), r"://\1:***@"),
    # password=…, secret=…, token=… in a query string or a form body.
    (
        tuple(f"{k}=" for k in _KEYWORDS) + ("password1=", "password2=", "token="),
        re.compile(r"(?i)\b(password\d?|passwd|secret|client_secret|api[-_]?key|access_token|refresh_token|token)=[^&\s\"']+"),
        r"\1=***",
    ),
    # "password": "…" (and the like) in JSON or a Python repr.
    (
        _KEYWORDS,
        re.compile(r"(?i)([\"']?(?:password\d?|passwd|secret|client_secret|api[-_]?key|access_token|refresh_token)[\"']?\s*:\s*[\"'])[^\"']*"),
        r"\1***",
    ),
)


# Every needle above, tested at once on the lower-cased text (substring tests, in C): most
# lines hold none, and then no pattern runs (the request line is written on the webhook's hot
# path, once per delivery).
_ALL_NEEDLES = tuple({n for needles, _, _ in _REDACTIONS if not callable(needles) for n in needles})


def redact(text: str) -> str:
    lowered = text.lower()
    if not any(n in lowered for n in _ALL_NEEDLES) and not _hex_then_dot(text):
        return text
    for needles, pattern, replacement in _REDACTIONS:
        if callable(needles):
            if not needles(text):
                continue
        else:
            if lowered is None:
                lowered = text.lower()
            if not any(needle in lowered for needle in needles):
                continue
        text, count = pattern.subn(replacement, text)
        if count:
            lowered = None
    return text


class RedactFilter(logging.Filter):
    """Masks secrets in a record's message, arguments and traceback before any handler
    formats it (it changes the record: the handlers after this one see it masked too).
    Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or type(record.msg) is not str:
            try:
                message = record.getMessage()
            except Exception:  # a broken %-format: keep what the formatter would show
                message = f"{record.msg!r} % {record.args!r}"
            record.msg, record.args = redact(message), None
        else:
            record.msg = redact(record.msg)
        if record.exc_info:
            # Formatted here, masked, and the exception dropped: formatters print exc_text
            # (python-json-logger would format exc_info again, unmasked).
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        # Extra fields are masked where they are written: the JSON formatter masks its whole
        # line (the text format shows none), once rather than field by field.
        return True


def _json_default(value):
    """Extra fields that are not JSON: a request as its method and path (no query string, no
    headers), anything else as its masked str()."""
    if isinstance(value, HttpRequest):
        return f"{value.method} {value.path}"
    if isinstance(value, uuid.UUID):
        return str(value)
    return redact(str(value))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, and the record's extra fields.

    The serialized line is masked again: extras may nest a secret inside a dict or a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("json_default", _json_default)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")  # ISO 8601, UTC
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def serialize_log_record(self, log_data) -> str:
        return redact(super().serialize_log_record(log_data))


# --- one line per request --------------------------------------------------------------------

request_log = logging.getLogger("fleetportal.request")

# URL parameters that are never written into a logged path (a password reset link's token).
_SECRET_URL_KWARGS = ("token", "key", "secret", "uidb64")


def _user_fields(request) -> dict:
    """Who asked, from what authentication already loaded: never a query of its own."""
    fields = {}
    token = getattr(request, "auth", None)  # DRF copies its authentication onto the HttpRequest
    prefix = getattr(token, "prefix", None)
    if prefix is not None:
        fields["token"] = f"fpt_{prefix}…"
        fields["user_id"] = getattr(token, "user_id", None)
        fields["organisation_id"] = getattr(token, "organisation_id", None)
        return fields
    user = request.__dict__.get("user")
    # AuthenticationMiddleware's lazy user: read only if the view already loaded it.
    user = getattr(user, "_wrapped", user)
    if user is None or user is empty or not getattr(user, "is_authenticated", False):
        return fields
    fields["user_id"] = user.pk
    access = getattr(user, "_fleetportal_access", None)  # accounts.access caches it when a view asked
    grants = getattr(access, "grants", None)
    if grants and len(grants) == 1:
        fields["organisation_id"] = next(iter(grants))
    return fields


def _request_fields(request, response, duration_ms: float) -> dict:
    path = request.path
    fields = {
        "event": "request",
        "method": request.method,
        "path": path,
        "status": response.status_code,
        "duration_ms": duration_ms,
    }
    if request.META.get("QUERY_STRING"):
        # The parameters' names only: a value may be anything, a secret included.
        fields["query_keys"] = sorted({part.partition("=")[0] for part in request.META["QUERY_STRING"].split("&") if part})
    match = getattr(request, "resolver_match", None)
    if match is not None:
        kwargs = match.kwargs
        fields["view"] = match.url_name or match.view_name
        for name in _SECRET_URL_KWARGS:
            if kwargs.get(name):
                fields["path"] = path = path.replace(str(kwargs[name]), "***")
        pk = kwargs.get("pk")
        if isinstance(pk, uuid.UUID):  # remote actions are the only objects with UUID keys in our URLs
            fields["action_id"] = str(pk)
        elif "/remotes/" in match.route and request.method == "POST" and response.status_code == 202:
            # A command just requested through the API: the answer names it (DRF's data, no parsing).
            data = getattr(response, "data", None)
            if isinstance(data, dict) and data.get("id"):
                fields["action_id"] = str(data["id"])
        if kwargs.get("vin"):
            fields["vin"] = kwargs["vin"]
        if kwargs.get("fleet_id"):
            fields["fleet"] = kwargs["fleet_id"]
    fields.update(_user_fields(request))
    # A view may add its own (a delivery id, …): request.log_context = {...}.
    fields.update(getattr(request, "log_context", None) or {})
    return fields


# A request marked `request.log_quiet = True` (the Stellantis webhook, remotes.middleware) gets
# its line only when it failed (4xx, 5xx) or was slow: each of its deliveries is already a
# row (the raw inbox), and the line was a few percent of its CPU.
QUIET_UNLESS_SLOWER_MS = 250.0


class RequestLogMiddleware:
    """One line per request, right after SecurityMiddleware so that it times the rest.

    Cheap on the webhook's hot path: no query, and the fields are built only when the
    line will be written."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if request_log.isEnabledFor(logging.INFO):
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            if response.status_code < 400 and duration_ms < QUIET_UNLESS_SLOWER_MS and getattr(request, "log_quiet", False):
                return response
            fields = _request_fields(request, response, duration_ms)
            request_log.info(
                "%s %s %s %.1fms", fields["method"], fields["path"], fields["status"], duration_ms, extra=fields
            )
        return response
