import os

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class OpsConfig(AppConfig):
    """Operations: metrics and readiness (and data retention). Sits above every domain app."""

    name = "ops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # prometheus-client writes there from the first metric on: refuse a missing directory by name.
        multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if multiproc_dir and not os.path.isdir(multiproc_dir):
            raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR must be an existing directory, got {multiproc_dir!r}")

        from stellantis import client

        from . import receivers  # connects the signal receivers

        client.set_call_observer(receivers.vendor_call)
