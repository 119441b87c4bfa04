from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Hourly: keys past their 24 h replay window are deleted (claims already ignore them).
    Schedule.objects.update_or_create(
        name="idempotency-sweep",
        defaults={"func": "idempotency.tasks.sweep_expired", "schedule_type": "H", "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="idempotency-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("idempotency", "0001_initial"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(create_schedule, drop_schedule)]
