from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Every minute: re-enqueue what a crash left queued or claimed, adopt orphan events.
    Schedule.objects.update_or_create(
        name="remotes-sweep",
        defaults={"func": "remotes.tasks.sweep", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="remotes-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("remotes", "0001_initial"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(create_schedule, drop_schedule)]
