from django.db import migrations


def create_schedule(apps, schema_editor):
    # Every minute: re-enqueue deliveries whose enqueue or worker was lost; owe final statuses nobody emitted.
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="pushes-sweep",
        defaults={"func": "pushes.tasks.sweep", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="pushes-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("pushes", "0001_initial"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(create_schedule, drop_schedule)]
