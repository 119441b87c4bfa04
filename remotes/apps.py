from django.apps import AppConfig


class RemotesConfig(AppConfig):
    name = "remotes"
    verbose_name = "Remote actions"
