"""The pump is armed once per burst of remotes (`SimPumpLease.armed_until`), and a q2 schedule
runs it every minute as a safety net: a pump killed mid-slice (a worker lost, q2's time-out)
never leaves notifications frozen once traffic stops."""

from django.db import migrations, models

SAFETY_NET = "simulator pump (safety net)"


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SAFETY_NET,
        defaults={"func": "simulator.tasks.pump_safety_net", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SAFETY_NET).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("simulator", "0005_help_texts_name_the_causes"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="simpumplease",
            name="armed_until",
            field=models.DateTimeField(
                blank=True,
                help_text="A pump task was enqueued and has not started yet; past this, it is presumed lost.",
                null=True,
            ),
        ),
        migrations.RunPython(create_schedule, drop_schedule),
    ]
