"""The audit log keeps every entry as written: nobody edits or deletes one, not even by accident."""

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction

from audit.models import AppendOnly, AuditEntry
from audit.services import diff, record


@pytest.fixture
def entry(db):
    return record("callback.changed", actor=User.objects.create_user("alice"), changes={"label": ["a", "b"]}, reason="typo")


def test_an_entry_names_who_what_and_from_where(entry):
    row = AuditEntry.objects.get()
    assert (row.actor, row.action, row.source, row.changes, row.reason) == ("alice", "callback.changed", "system", {"label": ["a", "b"]}, "typo")


def test_the_orm_refuses_to_change_or_delete_an_entry(entry):
    entry.reason = "nothing happened"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.update(reason="rewritten")
    assert AuditEntry.objects.get().reason == "typo"


def test_the_database_refuses_an_update_that_bypasses_the_orm(entry):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET reason = 'rewritten'")
    assert AuditEntry.objects.get().reason == "typo"


def test_the_database_refuses_a_delete_that_bypasses_the_orm_on_postgresql(entry):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite guards UPDATE only: Django's test flush deletes rows (see audit migration 0002)")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry")
    assert AuditEntry.objects.count() == 1


def test_a_login_and_a_failed_login_are_recorded_with_the_address(client, db):
    User.objects.create_user("bob", password="pw-bob-12345")
    client.post("/login/", {"username": "bob", "password": "wrong"}, REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="pytest-agent")
    client.post("/login/", {"username": "bob", "password": "pw-bob-12345"}, REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="pytest-agent")
    failed, ok = AuditEntry.objects.order_by("pk")
    assert (failed.action, failed.actor, failed.object_repr, failed.source) == ("login.failed", "anonymous", "as 'bob'", "page")
    assert (ok.action, ok.actor, ok.ip_address, ok.user_agent) == ("login", "bob", "10.1.2.3", "pytest-agent")
    assert "wrong" not in str(failed.changes) + failed.reason + failed.object_repr


def test_diff_keeps_only_what_changed():
    assert diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}
