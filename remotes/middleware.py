"""The Stellantis webhook skips the middleware that serves people (issue 14, "Keep the webhook's margin").

Every delivery is one POST from the vendor's notification system: no session, no signed-in
person, no CSRF token, no message, no htmx, no page to frame or to protect with a
Content-Security-Policy (django-csp built its policy for every answer, exempt or not), no
login for django-axes to watch, no audit entry (the webhook records none: its record is the
raw delivery row), no Idempotency-Key (only under /api/). Each of those middlewares cost a
little on every delivery; together a fifth of the portal's CPU per single-event delivery
(docs/benchmarks.md). This middleware sits right after SecurityMiddleware (HTTPS redirect,
HSTS, nosniff) and the request log, and hands a POST to the webhook's URL straight to its
view. What the view needs from the rest is done here: the host is checked against
ALLOWED_HOSTS as CommonMiddleware would, and the request carries its resolver match (the log
line of an error names the view). A delivery stored and answered 200 in time writes no
request line (`log_quiet`): its row in the inbox is its record; a refusal, an error or a slow
answer still does. The view authenticates the delivery itself (its secret)
and opts out of ATOMIC_REQUESTS by its own decorator, which the handler would read: this
path runs no request transaction either. Anything else (another method, another path) goes
down the whole chain as before.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, resolve, reverse

WEBHOOK_URL_NAME = "stellantis-webhook"


class WebhookFastPath:
    def __init__(self, get_response):
        self.get_response = get_response
        self._routes = {}  # URLconf -> (path, match), or (None, None) where it has no webhook

    def _route(self, urlconf):
        # Once per process and URLconf, at the first request (the URLconf is loaded by then). Keyed
        # by URLconf so that a test's override (a simulator-only URLconf, say) is not misread.
        route = self._routes.get(urlconf)
        if route is None:
            try:
                path = reverse(WEBHOOK_URL_NAME, urlconf=urlconf)
            except NoReverseMatch:
                route = (None, None)
            else:
                route = (path, resolve(path, urlconf=urlconf))
            self._routes[urlconf] = route
        return route

    def __call__(self, request):
        path, match = self._route(getattr(request, "urlconf", None) or settings.ROOT_URLCONF)
        if path is None or request.path_info != path or request.method != "POST":
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS, as CommonMiddleware does
        request.resolver_match = match
        request.log_quiet = True  # a log line only for a refused, failed or slow delivery (fleetportal.logs)
        return match.func(request, *match.args, **match.kwargs)
