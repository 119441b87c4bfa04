"""The simulated API's rate-limit counters: one row per (client_id, window), shared by every worker.

A plain table, no model: `simulator.views` reads and writes it with one portable upsert
(the same SQL on SQLite and PostgreSQL), and nothing else touches it.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("simulator", "0003_vehicle_next_failure"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE TABLE simulator_ratewindow ("
                " name varchar(300) NOT NULL PRIMARY KEY,"
                " bucket bigint NOT NULL,"
                " used integer NOT NULL"
                ")"
            ),
            reverse_sql="DROP TABLE simulator_ratewindow",
        ),
    ]
