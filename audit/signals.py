"""Logins and failed logins go to the audit log (pages and admin alike)."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from .services import record


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender, request, user, **kwargs):
    record("login", actor=user)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    # The username tried, never the password (Django already masks it in `credentials`).
    record("login.failed", actor_label="anonymous", object_repr=f"as {str(credentials.get('username', ''))[:150]!r}")
