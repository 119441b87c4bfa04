import logging

from django.conf import settings
from django.db import DatabaseError
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services

log = logging.getLogger(__name__)


class StellantisWebhook(APIView):
    """Where Stellantis POSTs RemoteEvents.

    200 once the delivery is stored, whatever its content (the vendor retries anything
    else); 500 only when we could not store it; 401 without a valid secret header.
    No ATOMIC_REQUESTS here: the service owns its transaction.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        try:
            callback = services.authenticate(request.headers.get(settings.WEBHOOK_SECRET_HEADER))
        except services.WebhookUnauthorized as exc:
            log.warning("webhook refused from %s: %s", request.META.get("REMOTE_ADDR"), exc)
            return Response({"detail": "Invalid or missing webhook secret."}, status=status.HTTP_401_UNAUTHORIZED)
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.WEBHOOK_MAX_BODY_BYTES:
            return Response({"detail": f"Body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            receipt = services.receive_delivery(
                callback=callback,
                body=request._request.body,
                headers=dict(request.headers),
                query=request.META.get("QUERY_STRING", ""),
                remote_addr=request.META.get("REMOTE_ADDR"),
            )
        except DatabaseError:
            log.exception("webhook delivery could not be stored")
            return Response({"detail": "Not stored; please retry."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
        return Response({"received": receipt.delivery.pk, "events": receipt.events, "new": receipt.new_events})
