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


# --- insert_all ------------------------------------------------------------------------------------


def _audit_rows(action):
    from audit.models import AuditEntry

    fields = [f.attname for f in AuditEntry._meta.concrete_fields if f.attname not in ("id", "at", "action")]
    return sorted(tuple(str(v) for v in row) for row in AuditEntry.objects.filter(action=action).values_list(*fields))


def test_insert_all_writes_what_bulk_create_writes():
    """The same rows as Django's bulk_create, shared columns and per-row ones alike (JSON, an
    auto-numbered pk, a default), in one statement. (The audit log is append-only: two actions.)"""
    from audit.models import AuditEntry
    from core.sql import insert_all

    def entries(action):
        return [
            AuditEntry(actor="system", action=action, object_type="x", object_id=str(n), object_repr=f"#{n}",
                       changes={"n": n} if n % 2 else {}, reason="same for all", ip_address="10.0.0.1" if n else None)
            for n in range(5)
        ]

    AuditEntry.objects.bulk_create(entries("test.django"))
    with CaptureQueriesContext(connection) as queries:
        insert_all(entries("test.ours"))

    assert len(queries) == 1
    assert len(_audit_rows("test.ours")) == 5
    assert _audit_rows("test.ours") == _audit_rows("test.django")
    assert AuditEntry.objects.filter(action="test.ours", changes={"n": 3}).exists()


def test_insert_all_fills_auto_now_and_skips_conflicts_when_asked():
    from core.sql import insert_all

    at = timezone.now()
    insert_all([VendorBudget(name="one", hold_until=at, reason="same")])
    insert_all([VendorBudget(name="one", hold_until=at, reason="again"), VendorBudget(name="two", hold_until=at, reason="again")],
               ignore_conflicts=True)

    assert dict(VendorBudget.objects.values_list("name", "reason")) == {"one": "same", "two": "again"}  # the first kept
    assert not VendorBudget.objects.filter(updated_at__isnull=True).exists()
