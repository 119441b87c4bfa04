"""Where the current request comes from, for the audit log, without passing it down.

`AuditContextMiddleware` notes the request's source (page, admin, API), address and user
agent in a context variable for the time of the request; `services.record` reads it. Outside
a request (q2 tasks, management commands) the source is "system".
"""

from __future__ import annotations

import contextvars
import functools
from dataclasses import dataclass

from django.urls import reverse

from .models import Source


@dataclass(frozen=True)
class Origin:
    source: str
    ip_address: str | None = None
    user_agent: str = ""


SYSTEM = Origin(Source.SYSTEM)
_current: contextvars.ContextVar[Origin] = contextvars.ContextVar("audit_origin", default=SYSTEM)


def current() -> Origin:
    return _current.get()


@functools.cache
def _admin_prefix() -> str:
    return reverse("admin:index")  # once per process: this runs on every request, the webhook's too


def origin_of(request) -> Origin:
    path = request.path_info
    if path.startswith(_admin_prefix()):
        source = Source.ADMIN
    elif path.startswith("/api/"):
        source = Source.API
    else:
        source = Source.PAGE
    # REMOTE_ADDR as the WSGI server saw it: behind a proxy, configure the proxy to set it
    # (gunicorn's --forwarded-allow-ips); an X-Forwarded-For header is the sender's to write.
    return Origin(source, request.META.get("REMOTE_ADDR") or None, request.META.get("HTTP_USER_AGENT", "")[:300])


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current.set(origin_of(request))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
