"""/metrics (Prometheus, behind a token) and /healthz/ready (what a load balancer polls)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from . import health, metrics


def _bearer(request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@never_cache
@require_GET
def metrics_view(request):
    """Without METRICS_TOKEN (production leaves it unset until asked) there is no such page: 404."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    # Bytes: compare_digest refuses str with non-ASCII characters, which a client may send.
    if not hmac.compare_digest(_bearer(request).encode("utf-8", "surrogatepass"), token.encode()):
        response = HttpResponse("A metrics token is needed: Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.scrape(), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def ready_view(request):
    ok, answer = health.readiness()
    return JsonResponse(answer, status=200 if ok else 503)
