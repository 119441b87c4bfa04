import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, transaction
from django.http import Http404, JsonResponse
from django.shortcuts import render
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from . import inbox
from .models import RemoteAction
from .selectors import action_with_timeline, timeline

log = logging.getLogger(__name__)


def _load(request, pk):
    try:
        return action_with_timeline(RemoteAction.objects.visible_to(request.user), pk)
    except RemoteAction.DoesNotExist as exc:
        raise Http404("No such remote action") from exc


@login_required
def action_detail(request, pk):
    action = _load(request, pk)
    return render(request, "remotes/action_detail.html", {"action": action, "timeline": timeline(action)})


@login_required
def action_timeline(request, pk):
    """The live part of the action page, fetched again every second or so until final."""
    action = _load(request, pk)
    return render(request, "remotes/_timeline.html", {"action": action, "timeline": timeline(action)})


# --- the Stellantis webhook ----------------------------------------------------------------


class _JSONOnly(BaseContentNegotiation):
    """The vendor reads only our status code: answer JSON without parsing its Accept header."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class StellantisWebhook(APIView):
    """Where Stellantis POSTs RemoteEvents.

    200 once the delivery is stored, whatever its content (the vendor retries anything
    else); 500 only when we could not store it; 401 without a valid secret header.
    Never inside ATOMIC_REQUESTS (`webhook` below says so explicitly): the inbox owns its
    transaction, and a rolled-back request must not take the raw delivery with it.

    The portal's hottest endpoint (docs/benchmarks.md), so DRF is kept to its dispatch: no
    parsers (the body is stored raw), throttles or Accept parsing, and the answers are
    plain JsonResponses read from the underlying HttpRequest (DRF's Request proxies every
    attribute, and a Response goes through a renderer: together a fifth of the CPU).
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = []
    throttle_classes = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONOnly

    def post(self, request):
        http = request._request
        meta = http.META
        try:
            callback_id = inbox.authenticate(http.headers.get(settings.WEBHOOK_SECRET_HEADER))
        except inbox.WebhookUnauthorized as exc:
            log.warning("webhook refused from %s: %s", meta.get("REMOTE_ADDR"), exc)
            return JsonResponse({"detail": "Invalid or missing webhook secret."}, status=status.HTTP_401_UNAUTHORIZED)
        if int(meta.get("CONTENT_LENGTH") or 0) > settings.WEBHOOK_MAX_BODY_BYTES:
            return JsonResponse({"detail": f"Body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            receipt = inbox.receive_delivery(
                callback_id=callback_id,
                body=http.body,
                headers=dict(http.headers),
                query=meta.get("QUERY_STRING", ""),
                remote_addr=meta.get("REMOTE_ADDR"),
            )
        except DatabaseError:
            log.exception("webhook delivery could not be stored")
            return JsonResponse({"detail": "Not stored; please retry."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
        return JsonResponse({"received": receipt.delivery_id, "events": receipt.events, "new": receipt.new_events})


# Whatever ATOMIC_REQUESTS says, the inbox owns its transaction (see the class docstring).
webhook = transaction.non_atomic_requests(StellantisWebhook.as_view())
