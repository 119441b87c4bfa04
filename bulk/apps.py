from django.apps import AppConfig


class BulkConfig(AppConfig):
    name = "bulk"
    verbose_name = "Bulk requests"
    default_auto_field = "django.db.models.BigAutoField"
