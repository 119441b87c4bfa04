from django.apps import AppConfig


class RemotesConfig(AppConfig):
    name = "remotes"
    verbose_name = "Remote actions"

    def ready(self):
        # The inbox keeps a per-process cache of callback secrets and drops an entry when
        # its callback is saved (a signal receiver): connect it in every process.
        from . import inbox, signals, verification  # noqa: F401

        # Outcome verified: a Success read back from the vehicle's status (remotes.verification).
        signals.events_applied.connect(verification.on_events_applied, dispatch_uid="remotes.verify.events_applied")
        signals.action_status_changed.connect(verification.on_status_changed, dispatch_uid="remotes.verify.status_changed")
