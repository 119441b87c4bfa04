"""The webhook inbox now lives in `remotes` (see remotes 0007): state only, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("callbacks", "0002_drop_new_event_count"),
        ("remotes", "0007_webhookdelivery_moved_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(database_operations=[], state_operations=[migrations.DeleteModel(name="WebhookDelivery")]),
    ]
