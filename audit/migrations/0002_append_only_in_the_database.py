"""The database itself refuses to change or delete an audit entry.

PostgreSQL (production, CI): a row trigger refuses UPDATE and DELETE. TRUNCATE is left to
the table's owner (Django's test flush uses it; the application never does).
SQLite (the zero-setup demo): a trigger refuses UPDATE only. Django's test flush empties
tables with DELETE, so a DELETE trigger there would break every test run; deletion is
refused by the model, its queryset and the admin.
"""

from django.db import migrations

PG_FORWARDS = [
    """CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()""",
]
PG_BACKWARDS = [
    "DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_auditentry",
    "DROP FUNCTION IF EXISTS audit_entry_append_only()",
]
SQLITE_FORWARDS = [
    """CREATE TRIGGER audit_entry_append_only BEFORE UPDATE ON audit_auditentry
    BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: UPDATE refused'); END""",
]
SQLITE_BACKWARDS = ["DROP TRIGGER IF EXISTS audit_entry_append_only"]


def _run(sql_by_vendor):
    def run(apps, schema_editor):
        for statement in sql_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARDS, "sqlite": SQLITE_FORWARDS}),
            _run({"postgresql": PG_BACKWARDS, "sqlite": SQLITE_BACKWARDS}),
        )
    ]
