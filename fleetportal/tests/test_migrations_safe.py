"""Migrations stay safe to run while the old code serves (docs/operations.md, "Deploying without downtime").

On the big tables, a migration newer than the baseline below must not hold a long lock: an
index is added (or dropped) with core.migration_ops' concurrent operations, in a migration
with `atomic = False`; a new column does not come with an index built under lock. What was
migrated before the rule (the baseline) ran when the tables were small.

Run on both databases:
    .venv/bin/pytest fleetportal/tests/test_migrations_safe.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fp_logs .venv/bin/pytest fleetportal/tests/test_migrations_safe.py
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection, models
from django.db.migrations import operations as ops
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from core.migration_ops import AddIndexConcurrently, RemoveIndexConcurrently

BIG_TABLES = {
    "remotes_remoteaction",
    "remotes_remoteevent",
    "remotes_actionstep",
    "callbacks_webhookdelivery",
    "vehicles_vehicle",
    "audit_auditentry",
}
# The last migration of each app that holds a big table when the rule was written: these and
# their ancestors are not checked.
BASELINE = {
    "remotes": "0012_approval_decision",
    "vehicles": "0004_fleet_organisation",
    "audit": "0002_append_only_in_the_database",
    "callbacks": "0004_callback_status_schedule",
}
# (app, migration name) → why this one may do what the rule forbids. Keep it short.
ALLOWED: dict[tuple[str, str], str] = {}


def _new_migrations(loader: MigrationLoader):
    done = set()
    for app, name in BASELINE.items():
        done.update(loader.graph.forwards_plan((app, name)))
    for key, migration in loader.disk_migrations.items():
        if key not in done and key not in ALLOWED:
            yield key, migration


def _table(app_label: str, model_name: str) -> str | None:
    try:
        return apps.get_model(app_label, model_name)._meta.db_table
    except LookupError:  # a model deleted since: not one of ours today
        return None


def _indexes_under_lock(field) -> bool:
    """Whether adding this column also builds an index in the same locked statement."""
    if getattr(field, "unique", False) and not getattr(field, "primary_key", False):
        return True
    if getattr(field, "db_index", False):
        return True  # ForeignKey included: db_index is True unless told otherwise
    return False


def problems_of(app_label: str, migration, before: ProjectState | None = None) -> list[str]:
    """What in `migration` would lock a big table for long; `before` is the state it starts from."""
    found = []
    for op in migration.operations:
        model_name = getattr(op, "model_name", None) or getattr(op, "name", None)
        table = _table(app_label, model_name) if model_name else None
        if table not in BIG_TABLES:
            continue
        where = f"{app_label}.{migration.name}: {op.describe()} on {table}"
        if isinstance(op, ops.AddIndex) and not isinstance(op, AddIndexConcurrently):
            found.append(f"{where}: use core.migration_ops.AddIndexConcurrently (CREATE INDEX blocks writes while it builds)")
        if isinstance(op, ops.RemoveIndex) and not isinstance(op, RemoveIndexConcurrently):
            found.append(f"{where}: use core.migration_ops.RemoveIndexConcurrently")
        if isinstance(op, AddIndexConcurrently | RemoveIndexConcurrently) and migration.atomic:
            found.append(f"{where}: a concurrent index needs `atomic = False` on the migration (PostgreSQL refuses it in a transaction)")
        if isinstance(op, ops.AddField) and _indexes_under_lock(op.field):
            found.append(
                f"{where}: the column comes with an index built under lock; add it with db_index=False "
                "(ForeignKey: db_index=False too), then AddIndexConcurrently in a non-atomic migration"
            )
        if isinstance(op, ops.AlterField):
            old = before.models[app_label, op.model_name_lower].fields.get(op.name) if before else None
            if _indexes_under_lock(op.field) and not (old is not None and _indexes_under_lock(old)):
                found.append(f"{where}: the field gains an index built under lock; add it with AddIndexConcurrently instead")
            if old is not None and old.get_internal_type() != op.field.get_internal_type():
                found.append(f"{where}: a new column type rewrites the table under lock; add a new column and backfill instead")
        if isinstance(op, ops.AddConstraint):
            found.append(
                f"{where}: a constraint is checked (and a unique one indexed) under lock; "
                "build its index concurrently first, or add to ALLOWED with why"
            )
    return found


def test_migrations_after_the_baseline_hold_no_long_lock_on_the_big_tables():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    problems = [
        p
        for (app, name), migration in _new_migrations(loader)
        for p in problems_of(app, migration, loader.project_state((app, name), at_end=False))
    ]
    assert not problems, "\n".join(problems)


def test_the_big_tables_exist():
    """A renamed table would silently leave the rule above with nothing to check."""
    tables = {m._meta.db_table for m in apps.get_models()}
    assert BIG_TABLES <= tables


def test_the_rule_catches_a_plain_index_and_an_atomic_concurrent_one():
    class Migration:
        name = "9999_example"
        atomic = True
        operations = [
            ops.AddIndex("remoteaction", models.Index(fields=["created_at"], name="plain_idx")),
            AddIndexConcurrently("remoteaction", models.Index(fields=["created_at"], name="conc_idx")),
            ops.AddField("remoteevent", "note", models.CharField(max_length=10, default="", db_index=True)),
            ops.AddField("remoteevent", "seen_at", models.DateTimeField(null=True)),  # safe: no index, nullable
            ops.AddIndex("fleet", models.Index(fields=["name"], name="small_idx")),  # not a big table
        ]

    found = problems_of("remotes", Migration) + problems_of("vehicles", Migration)
    assert len(found) == 3, found
    assert "AddIndexConcurrently" in found[0] and "atomic = False" in found[1] and "index built under lock" in found[2]


@pytest.mark.django_db(transaction=True)
def test_the_concurrent_operations_run_on_this_database_and_back():
    """Concurrent on PostgreSQL, plain on SQLite (Django's own AddIndexConcurrently fails there)."""
    state = MigrationLoader(connection).project_state()
    index = models.Index(fields=["created_at"], name="fp_test_conc_idx")
    add, remove = AddIndexConcurrently("remoteaction", index), RemoveIndexConcurrently("remoteaction", "fp_test_conc_idx")
    with_index = state.clone()
    add.state_forwards("remotes", with_index)

    def indexes():
        with connection.cursor() as cursor:
            return connection.introspection.get_constraints(cursor, "remotes_remoteaction")

    assert not connection.in_atomic_block
    with connection.schema_editor(atomic=False) as editor:
        add.database_forwards("remotes", editor, state, with_index)
    assert "fp_test_conc_idx" in indexes()
    without = with_index.clone()
    remove.state_forwards("remotes", without)
    with connection.schema_editor(atomic=False) as editor:
        remove.database_forwards("remotes", editor, with_index, without)
    assert "fp_test_conc_idx" not in indexes()
    with connection.schema_editor(atomic=False) as editor:
        add.database_forwards("remotes", editor, state, with_index)
        add.database_backwards("remotes", editor, with_index, state)
    assert "fp_test_conc_idx" not in indexes()
    assert isinstance(state, ProjectState)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL builds an index concurrently")
@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_postgresql_refuses_and_says_why():
    from django.db import NotSupportedError, transaction

    state = MigrationLoader(connection).project_state()
    add = AddIndexConcurrently("remoteaction", models.Index(fields=["created_at"], name="fp_test_atomic_idx"))
    after = state.clone()
    add.state_forwards("remotes", after)
    with pytest.raises(NotSupportedError, match="atomic = False"), transaction.atomic(), connection.schema_editor() as editor:
        add.database_forwards("remotes", editor, state, after)
