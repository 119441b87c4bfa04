"""For tests elsewhere (the admin's bulk actions create bulk requests): their background work, now."""

from __future__ import annotations

import time
from collections import Counter
from unittest import mock

from . import services
from .models import OPEN_STATUSES, BulkRequest


class Holding:
    """A stand-in for `services.Submitter` that submits nothing: the actions stay queued, unclaimed."""

    claims = False

    def __init__(self, client=None, workers=1, **kwargs):
        self.actions = []

    def wait_for_room(self) -> None:
        pass

    def put(self, actions) -> None:
        self.actions.extend(actions)

    def close(self) -> Counter:
        return Counter()


def run_now(*, send: bool = True) -> list[BulkRequest]:
    """Expand and dispatch every open bulk request in this thread. `send=False`: the actions are
    created (queued, or awaiting approval) but not submitted — for tests with no vendor to reach."""
    done = []
    patch = mock.patch.object(services, "Submitter", Holding) if not send else mock.MagicMock()
    with patch:
        for pk in BulkRequest.objects.filter(status__in=OPEN_STATUSES).values_list("pk", flat=True):
            end = time.monotonic() + 120
            while BulkRequest.objects.filter(pk=pk, status__in=OPEN_STATUSES).exists() and time.monotonic() < end:
                services.run(pk, slice_seconds=20)
            done.append(BulkRequest.objects.get(pk=pk))
    return done
