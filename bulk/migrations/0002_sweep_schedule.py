from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Every minute: re-arm a bulk request whose worker went silent, finish those whose outcomes are in.
    Schedule.objects.update_or_create(
        name="bulk-sweep",
        defaults={"func": "bulk.tasks.sweep", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="bulk-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("bulk", "0001_initial"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(create_schedule, drop_schedule)]
