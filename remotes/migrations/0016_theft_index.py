# The stolen / immobilized state is read per vehicle from its latest successful declaration; this
# partial index holds only those rows. Built concurrently on PostgreSQL (core.migration_ops), hence
# not atomic: the actions table stays writable while it builds.
from django.db import migrations, models

from core.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("remotes", "0015_action_verification"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="remoteaction",
            index=models.Index(
                condition=models.Q(("remote_type__in", ["Stolen", "Immobilization"]), ("status__in", ["success", "already_done"])),
                fields=["vehicle", "created_at"],
                name="remote_action_theft",
            ),
        ),
    ]
