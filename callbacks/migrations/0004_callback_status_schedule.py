from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Every 5 minutes: read each callback's status back, so that one Stellantis turned Failed
    # (its webhook kept refusing) is no longer chosen for new commands.
    Schedule.objects.update_or_create(
        name="callbacks-refresh-status",
        defaults={"func": "callbacks.tasks.refresh_statuses", "schedule_type": "I", "minutes": 5, "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="callbacks-refresh-status").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("callbacks", "0003_webhookdelivery_moved_to_remotes"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(create_schedule, drop_schedule)]
