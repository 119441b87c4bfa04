"""core.sql.update_each: one UPDATE, each row its own value, on SQLite and PostgreSQL alike."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import VendorBudget
from core.sql import update_each

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_value_in_one_statement():
    later = timezone.now() + dt.timedelta(minutes=5)
    for name in ("a", "b", "c"):
        VendorBudget.objects.create(name=name, hold_until=later, reason="before")

    with CaptureQueriesContext(connection) as queries:
        changed = update_each(VendorBudget, {"a": "429 on a", "b": "429 on b"}, field="reason", same={"hold_until": None})

    assert changed == 2
    assert len(queries) == 1
    rows = {b.name: (b.reason, b.hold_until) for b in VendorBudget.objects.all()}
    assert rows["a"] == ("429 on a", None)
    assert rows["b"] == ("429 on b", None)
    assert rows["c"][0] == "before" and rows["c"][1] is not None  # not in the mapping: untouched


def test_a_condition_leaves_the_rows_that_do_not_meet_it():
    at = timezone.now().replace(microsecond=0)
    VendorBudget.objects.create(name="held", hold_until=at, reason="old")
    VendorBudget.objects.create(name="free", hold_until=None, reason="old")

    changed = update_each(VendorBudget, {"held": "new", "free": "new"}, field="reason", where={"hold_until": None})

    assert changed == 1
    assert dict(VendorBudget.objects.values_list("name", "reason")) == {"held": "old", "free": "new"}
    assert update_each(VendorBudget, {}, field="reason") == 0
