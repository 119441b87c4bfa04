"""Migration operations that keep the big tables writable while they run (docs/operations.md,
"Deploying without downtime").

A plain `AddIndex` is `CREATE INDEX`, which on PostgreSQL blocks every write to the table
until the index is built: minutes on the actions, events and deliveries. Django's
`django.contrib.postgres.operations.AddIndexConcurrently` builds it without that lock, but
fails on SQLite (the demo and the tests: its schema editor knows no `concurrently`). These
are concurrent on PostgreSQL and plain elsewhere (SQLite locks its whole file for any
write anyway). A migration that uses them must say `atomic = False`: PostgreSQL refuses
CONCURRENTLY inside a transaction. fleetportal/tests/test_migrations_safe.py enforces both.
"""

from django.db import NotSupportedError
from django.db.migrations.operations import AddIndex, RemoveIndex


def _concurrently(schema_editor, operation) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    if schema_editor.connection.in_atomic_block:
        raise NotSupportedError(
            f"The {operation.__class__.__name__} operation cannot be executed inside a transaction "
            "(set atomic = False on the migration)."
        )
    return True


class AddIndexConcurrently(AddIndex):
    """CREATE INDEX CONCURRENTLY on PostgreSQL (no write lock while it builds), CREATE INDEX elsewhere."""

    def describe(self):
        return f"Concurrently create index {self.index.name} on field(s) {', '.join(self.index.fields)} of model {self.model_name}"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if _concurrently(schema_editor, self):
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if _concurrently(schema_editor, self):
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)


class RemoveIndexConcurrently(RemoveIndex):
    """DROP INDEX CONCURRENTLY on PostgreSQL (does not wait behind, nor block, the table's queries), DROP INDEX elsewhere."""

    def describe(self):
        return f"Concurrently remove index {self.name} from {self.model_name}"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        if _concurrently(schema_editor, self):
            schema_editor.remove_index(model, index, concurrently=True)
        else:
            schema_editor.remove_index(model, index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        if _concurrently(schema_editor, self):
            schema_editor.add_index(model, index, concurrently=True)
        else:
            schema_editor.add_index(model, index)
