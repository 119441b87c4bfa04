"""The webhook inbox moved from `callbacks` to `remotes`, beside the events it applies.

State only: the table keeps its name (`db_table`), so no row moves. The `received` outcome,
never written by any code path, leaves the choices; `processed` becomes the default. The
content type follows the model, so permissions granted on deliveries are kept.
"""

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="remotes", model="webhookdelivery").exists():
        ContentType.objects.filter(app_label="callbacks", model="webhookdelivery").update(app_label="remotes")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="callbacks", model="webhookdelivery").exists():
        ContentType.objects.filter(app_label="remotes", model="webhookdelivery").update(app_label="callbacks")


class Migration(migrations.Migration):

    dependencies = [
        ("callbacks", "0002_drop_new_event_count"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("remotes", "0006_event_delivery_without_db_constraint"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="WebhookDelivery",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("received_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("remote_addr", models.GenericIPAddressField(blank=True, null=True)),
                        ("headers", models.JSONField(default=dict, help_text="Request headers, secrets removed.")),
                        ("query", models.CharField(blank=True, max_length=2000)),
                        ("body", models.TextField(blank=True)),
                        (
                            "outcome",
                            models.CharField(
                                choices=[("processed", "Processed"), ("unparseable", "Unparseable"), ("failed", "Processing failed")],
                                default="processed",
                                max_length=12,
                            ),
                        ),
                        ("error", models.TextField(blank=True)),
                        ("event_count", models.PositiveIntegerField(default=0)),
                        (
                            "callback",
                            models.ForeignKey(
                                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="deliveries", to="callbacks.callback"
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "webhook deliveries",
                        "db_table": "callbacks_webhookdelivery",
                        "ordering": ["-received_at", "-pk"],
                    },
                ),
                migrations.AlterField(
                    model_name="remoteevent",
                    name="delivery",
                    field=models.ForeignKey(
                        blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="events", to="remotes.webhookdelivery"
                    ),
                ),
            ],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
