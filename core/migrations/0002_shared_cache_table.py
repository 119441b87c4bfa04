"""The table of the database cache (settings.CACHES without a Redis URL), made by `migrate`
so that no deployment or test run needs a separate `createcachetable`. The SQL is Django's own
(`createcachetable`'s), for the fixed table name the settings use."""

import io

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

CACHE_TABLE = "fleetportal_cache"  # settings.CACHES["shared"]["LOCATION"] without a Redis URL


def create_cache_table(apps, schema_editor):
    command = CreateCacheTable(stdout=io.StringIO())
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, CACHE_TABLE, dry_run=False)  # a no-op if it exists


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(CACHE_TABLE)}")


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_cache_table, drop_cache_table),
    ]
