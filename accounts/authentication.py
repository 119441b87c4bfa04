"""Partner tokens on the API: `Authorization: Token fpt_…` (or `Bearer fpt_…`)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import authentication, exceptions

from .access import TokenUser, token_access
from .models import PartnerToken

# last_used_at is written at most this often per token: not a write on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class PartnerTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in self.keywords:
            return None  # not ours: the session may authenticate
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected 'Token <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        token = PartnerToken.objects.select_related("user").for_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This token has expired.")
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            PartnerToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return TokenUser(token, token_access(token)), token

    def authenticate_header(self, request):
        return "Token"  # so that a refusal is a 401 with WWW-Authenticate, not a 403
