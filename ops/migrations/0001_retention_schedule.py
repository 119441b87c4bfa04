from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Every hour: retention in short batches within a time budget (ops.retention); a run that
    # does not finish leaves the rest to the next one.
    Schedule.objects.update_or_create(
        name="ops-retention",
        defaults={"func": "ops.tasks.prune", "schedule_type": "I", "minutes": 60, "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="ops-retention").delete()


class Migration(migrations.Migration):
    dependencies = [("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(create_schedule, drop_schedule)]
