from django.apps import AppConfig


class RemotesConfig(AppConfig):
    name = "remotes"
    verbose_name = "Remote actions"

    def ready(self):
        # The inbox keeps a per-process cache of callback secrets and drops an entry when
        # its callback is saved (a signal receiver): connect it in every process.
        from . import inbox  # noqa: F401
