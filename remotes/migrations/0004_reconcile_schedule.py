from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Every minute: read back actions that waited too long for their Done notification.
    Schedule.objects.update_or_create(
        name="remotes-reconcile",
        defaults={"func": "remotes.tasks.reconcile", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="remotes-reconcile").delete()


class Migration(migrations.Migration):
    dependencies = [("remotes", "0003_reconciled_at")]
    operations = [migrations.RunPython(create_schedule, drop_schedule)]
