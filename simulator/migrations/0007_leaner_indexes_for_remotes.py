"""Fewer index writes per remote and plans that do not depend on fresh statistics (issue 14, the
simulator"s POST): the remote actions" foreign keys get a plain index each instead of two (no
`varchar_pattern_ops` copy), the vehicle"s is (vehicle, created_at) for the counts a remote
makes; the events lose their own action index (the unique (action, seq) one serves) and their
foreign key in the database (see SimEvent.action), and gain a partial index of the Done events
not raised yet, which says whether an action is in progress."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("simulator", "0006_pump_armed_and_safety_net"),
    ]

    operations = [
        migrations.AlterField(
            model_name="simevent",
            name="action",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="simulator.simremoteaction",
            ),
        ),
        migrations.AlterField(
            model_name="simremoteaction",
            name="callback",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="remote_actions",
                to="simulator.simcallback",
            ),
        ),
        migrations.AlterField(
            model_name="simremoteaction",
            name="fleet",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="remote_actions",
                to="simulator.simfleet",
            ),
        ),
        migrations.AlterField(
            model_name="simremoteaction",
            name="vehicle",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="remote_actions",
                to="simulator.simvehicle",
            ),
        ),
        migrations.AddIndex(
            model_name="simevent",
            index=models.Index(
                condition=models.Q(("event_type", "Done"), ("raised_at__isnull", True)),
                fields=["action"],
                name="simevent_pending_done",
            ),
        ),
        migrations.AddIndex(
            model_name="simremoteaction",
            index=models.Index(fields=["fleet"], name="simaction_fleet"),
        ),
        migrations.AddIndex(
            model_name="simremoteaction",
            index=models.Index(fields=["callback"], name="simaction_callback"),
        ),
        migrations.AddIndex(
            model_name="simremoteaction",
            index=models.Index(fields=["vehicle", "created_at"], name="simaction_vehicle_created"),
        ),
    ]
