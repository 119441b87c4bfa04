from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organisations and access"

    def ready(self):
        from . import timezones  # noqa: F401  (the login receiver that puts the person's zone in the session)
