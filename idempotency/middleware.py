"""`Idempotency-Key` on every POST under /api/, with Stripe's semantics (docs/partner-api.md).

A middleware rather than a DRF mixin: every API view gets it without a line of its own, and
the 409/422 answers are given before the view (and its vendor call) runs at all.
"""

from __future__ import annotations

import hashlib
import re

from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse

from accounts.models import PartnerToken
from core.errors import ServiceError
from fleetportal.api import PROBLEM_JSON, problem

from . import services
from .errors import IdempotencyKeyInUse, InvalidIdempotencyKey

MAX_KEY_LENGTH = 255
# Answers that say nothing about the request itself: who is asking may not (401, 403: the
# view did nothing, and a retry once rights are fixed must run), or not now (429, before the
# view ran). They are not stored: the key is released.
NOT_STORED = frozenset({401, 403, 429})


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Costs nothing for every other request: a method, a prefix and a dict lookup.
        if request.method != "POST" or not request.path_info.startswith("/api/") or "HTTP_IDEMPOTENCY_KEY" not in request.META:
            return self.get_response(request)
        return self._idempotent(request, request.META["HTTP_IDEMPOTENCY_KEY"])

    def _idempotent(self, request, key: str):
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            return _problem(InvalidIdempotencyKey(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters."))
        scope = caller_scope(request)
        if scope is None:
            return self.get_response(request)  # nobody we know: the view answers 401, nothing is recorded
        path = request.get_full_path()
        digest = hashlib.sha256(f"{request.method} {path}\n".encode())
        digest.update(request.body)  # Django keeps the bytes: DRF parses them again afterwards
        try:
            row, owned = services.claim(scope=scope, key=key, method=request.method, path=path, fingerprint=digest.hexdigest())
        except ServiceError as exc:
            return _problem(exc)
        if not owned:
            return _replay(row)

        writes = CommittedWrites()
        try:
            with connection.execute_wrapper(writes):
                response = self.get_response(request)
        except BaseException:
            _settle(row, None, writes)
            raise
        _settle(row, response, writes)
        return response


def _settle(row, response, writes: CommittedWrites) -> None:
    """Store the answer, or give the key back so that the client may retry.

    A 5xx (or an exception) releases the key — unless the view had already committed a
    change. ATOMIC_REQUESTS is off in this project: services commit their own transactions
    (`request_remote` commits the action, then enqueues its submit on commit), so a failure
    *after* that, e.g. while rendering the answer, leaves a real command behind. Releasing
    the key then would let the retry create a second one; so the failure is stored and
    replayed instead. Had the work run in a transaction that rolled back (ATOMIC_REQUESTS on,
    or a service's atomic block undone by the error), no write committed and the key is
    released. `CommittedWrites` tells the two apart. Vendor-side effects that left no row
    (a callback created at Stellantis whose local save failed) are not seen by it.
    """
    if response is None:  # an exception escaped the handler (Django usually turns it into a 500 first)
        if writes.committed:
            body = problem(500, code="server_error", detail="Something went wrong on our side after the request was carried out.")
            services.finish(row, status_code=500, headers={"Content-Type": PROBLEM_JSON}, body=JsonResponse(body).content)
        else:
            services.release(row)
        return
    status = response.status_code
    if status in NOT_STORED or (status >= 500 and not writes.committed):
        services.release(row)
        return
    # A streamed body cannot be kept: the status alone is replayed (no API view streams today).
    services.finish(row, status_code=status, headers=response.headers, body=b"" if response.streaming else response.content)


# Writes every request makes whatever the view does: the throttle's counter (the shared
# database cache), a token's last_used_at (at most once a minute), a session.
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|WITH)\b", re.IGNORECASE)
_BOOKKEEPING = re.compile(r'fleetportal_cache|"accounts_partnertoken" SET "last_used_at"|django_session|idempotency_idempotentrequest')


class CommittedWrites:
    """An execute wrapper that notes whether the view's work changed the database for good.

    Each write registers an on_commit callback: it runs at once outside a transaction, at the
    outermost commit inside one, and never when that transaction rolls back.
    """

    def __init__(self):
        self.committed = False

    def _mark(self):
        self.committed = True

    def __call__(self, execute, sql, params, many, context):
        if not self.committed and _WRITE.match(sql) and not _BOOKKEEPING.search(sql):
            try:
                transaction.on_commit(self._mark, using=context["connection"].alias)
            except Exception:
                self.committed = True  # cannot tell (manual transaction management): assume it counts
        return execute(sql, params, many, context)


def caller_scope(request) -> str | None:
    """Whose keys these are: the partner token (`token:<pk>`) or the signed-in person (`user:<pk>`).

    The token is checked the way accounts.authentication checks it (prefix finds the row, the
    key's hash must match, revoked or expired is refused): an unknown token gets no scope,
    so a stranger can neither fill nor probe another caller's keys."""
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if parts and parts[0].lower() in ("token", "bearer"):
        token = PartnerToken.objects.usable().for_key(parts[1]) if len(parts) == 2 else None
        return f"token:{token.pk}" if token is not None else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def _problem(exc: ServiceError) -> JsonResponse:
    """The API's one error shape (fleetportal.api), from outside a DRF view."""
    response = JsonResponse(problem(exc.status, code=exc.code, detail=exc.message), status=exc.status, content_type=PROBLEM_JSON)
    if isinstance(exc, IdempotencyKeyInUse):
        response["Retry-After"] = "1"
    return response


def _replay(row) -> HttpResponse:
    response = HttpResponse(bytes(row.response_body or b""), status=row.status_code)
    for name, value in row.response_headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response
