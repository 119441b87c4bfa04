"""Claim an `Idempotency-Key`, store the answer to replay, release it; sweep the expired ones.

Every step is one conditional statement on the row: INSERT … ON CONFLICT DO NOTHING to claim
(the unique constraint on (scope, key) picks one winner among concurrent requests, whichever
process they run in), UPDATE/DELETE … WHERE claim = <ours> to store or release, so a request
whose claim was taken over (it looked dead) can no longer overwrite the new holder's row.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.utils import timezone

from .errors import IdempotencyKeyInUse, IdempotencyKeyReused
from .models import IdempotentRequest, State

# Headers of an answer worth replaying; the rest (Date, Vary, security headers) are set anew.
REPLAYED_HEADERS = ("Content-Type", "Location")


def ttl() -> dt.timedelta:
    """How long an answer is replayed (Stripe's 24 hours); older rows no longer count."""
    return dt.timedelta(seconds=getattr(settings, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600))


def stale_after() -> dt.timedelta:
    """An in-flight claim silent this long is presumed dead (its process crashed) and taken
    over. Well above the longest request we serve: a vendor call times out after 5 + 15 s."""
    return dt.timedelta(seconds=getattr(settings, "IDEMPOTENCY_STALE_SECONDS", 60))


def claim(*, scope: str, key: str, method: str, path: str, fingerprint: str) -> tuple[IdempotentRequest, bool]:
    """(row, True) when this request now holds the key and must run; (row, False) when the
    row's stored answer is to be replayed. Raises IdempotencyKeyReused (another request under
    this key) or IdempotencyKeyInUse (the first one is still running)."""
    for _ in range(3):
        now = timezone.now()
        mine = uuid.uuid4()
        fresh = {"method": method, "path": path, "fingerprint": fingerprint, "state": State.IN_FLIGHT, "claim": mine, "claimed_at": now}
        # No SELECT-then-INSERT: the INSERT itself is the claim, and reading the row back tells
        # whose it is (ours carries our claim id).
        IdempotentRequest.objects.bulk_create([IdempotentRequest(scope=scope, key=key, created_at=now, **fresh)], ignore_conflicts=True)
        row = IdempotentRequest.objects.filter(scope=scope, key=key).first()
        if row is None:
            continue  # released between our INSERT and our read: claim again
        if row.claim == mine:
            return row, True
        if row.created_at <= now - ttl():
            # Past 24 h a key no longer counts: the request runs anew (the sweep may not have
            # deleted the row yet). Conditional on the holder, so one of two takers wins.
            taken = _take_over(row, created_at=now, status_code=None, response_headers={}, response_body=None, **fresh)
            if taken:
                return taken, True
            continue
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with another request (method, path or body). Use a new key for a new request."
            )
        if row.state == State.DONE:
            return row, False
        if row.claimed_at <= now - stale_after():
            # The first request went silent (its process died): take over. What it may have
            # written before dying is not known here; see docs/partner-api.md "Idempotency".
            taken = _take_over(row, **fresh)
            if taken:
                return taken, True
            continue
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is still being processed; retry in a moment.")
    raise IdempotencyKeyInUse("A request with this Idempotency-Key is being processed; retry in a moment.")


def _take_over(row: IdempotentRequest, **fields) -> IdempotentRequest | None:
    if IdempotentRequest.objects.filter(pk=row.pk, claim=row.claim).update(**fields) != 1:
        return None  # someone else took it first
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def finish(row: IdempotentRequest, *, status_code: int, headers, body: bytes) -> bool:
    """Store the answer to replay; False when the claim was taken over meanwhile."""
    kept = {name: headers[name] for name in REPLAYED_HEADERS if name in headers}
    updated = IdempotentRequest.objects.filter(pk=row.pk, claim=row.claim).update(
        state=State.DONE, status_code=status_code, response_headers=kept, response_body=body
    )
    return updated == 1


def release(row: IdempotentRequest) -> None:
    """Give the key back: the next request with it runs anew."""
    IdempotentRequest.objects.filter(pk=row.pk, claim=row.claim).delete()


def sweep_expired(*, now: dt.datetime | None = None) -> int:
    """Delete the keys older than the replay window (claim() already ignores them)."""
    cutoff = (now or timezone.now()) - ttl()
    return IdempotentRequest.objects.filter(created_at__lte=cutoff).delete()[0]
