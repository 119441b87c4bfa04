# Indexes that keep the admin's and the portal's history lists independent of history's size
# (issue 14). Built concurrently on PostgreSQL (core.migration_ops), hence not atomic.
from django.db import migrations, models

from core.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("remotes", "0013_delivery_reviewed_at"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="remoteaction",
            index=models.Index(
                condition=models.Q(("status__in", ["failed", "rejected", "expired", "error", "unknown", "cancelled"])),
                fields=["status", "created_at"],
                name="remote_action_ended_badly",
            ),
        ),
        AddIndexConcurrently(
            model_name="remoteaction",
            index=models.Index(
                condition=models.Q(("failure_cause", ""), _negated=True),
                fields=["failure_cause", "created_at"],
                name="remote_action_cause_created",
            ),
        ),
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("outcome", "processed"), _negated=True),
                fields=["outcome", "received_at"],
                name="delivery_flagged",
            ),
        ),
        AddIndexConcurrently(
            model_name="remoteevent",
            index=models.Index(
                condition=models.Q(("status__in", ["Failed", "VehicleBatteryChargeTooLow", "TooManyWakeUpsOverMonth"])),
                fields=["status", "id"],
                name="remote_event_notable",
            ),
        ),
    ]
