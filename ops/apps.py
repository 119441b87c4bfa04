from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: metrics and readiness (and data retention). Sits above every domain app."""

    name = "ops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from stellantis import client

        from . import receivers  # connects the signal receivers

        client.set_call_observer(receivers.vendor_call)
