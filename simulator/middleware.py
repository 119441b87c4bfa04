"""The simulator's remote POST skips the middleware that serves people (issue 14: "a simulator that
is not the bottleneck").

A load test of the portal posts thousands of commands per minute to the simulated vendor's
`POST …/fleets/{fid}/vehicles/{vid}/callbacks/{cid}/remotes`. The vendor's API has no session,
no signed-in person, no CSRF token (its views are exempt), no message, no htmx, no audit entry
(its record is its own SimRemoteAction row), no Idempotency-Key (only under /api/) and no login
for django-axes to watch: it authenticates every call itself, with HTTP Basic and a client_id
(simulator.views.endpoint). Going through that chain cost about a fifth of the POST's CPU.

Like the webhook's fast path (remotes.middleware), this sits right after SecurityMiddleware
(HTTPS redirect, HSTS, nosniff, referrer and opener policies) and the request log, and hands
such a POST straight to its view. What the view and its answer need from the rest is done here:
the host is checked against ALLOWED_HOSTS and the Content-Length set as CommonMiddleware does,
the request carries its resolver match (the log line of an error names the view), and the
answer gets the same X-Frame-Options and Content-Security-Policy as through the whole chain. It
no longer gets `Vary: Cookie`: no cookie is read. A remote accepted in time writes no request
line (`log_quiet`): its row is its record; a refusal, an error or a slow answer still does.
The view runs outside ATOMIC_REQUESTS either way (off in this project; `simulator.vendor`
commits its own transaction). Anything else (another method, another path of the simulator)
goes down the whole chain as before.

Only in MIDDLEWARE when the simulator is mounted (settings.SIMULATOR_ENABLED).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.urls import NoReverseMatch, ResolverMatch, resolve, reverse

REMOTES_URL_NAME = "simulator:remotes"
# The URL's parameters, each a `str` converter (any text without a slash), as simulator/urls.py says.
_PARAMETERS = ("fleet_id", "vehicle_id", "callback_id")


class _Route:
    """Where the remotes URL is in one URLconf: a regex for its path and the match it resolves to."""

    def __init__(self, urlconf):
        self.regex = None
        try:
            # Placeholders that reverse() leaves as they are, then turned into the converters' regex.
            sample = reverse(REMOTES_URL_NAME, kwargs={name: f"SIMULATORFASTPATH{name}" for name in _PARAMETERS},
                             urlconf=urlconf)
        except NoReverseMatch:
            return
        match = resolve(sample, urlconf=urlconf)
        if match.url_name != "remotes" or match.kwargs != {name: f"SIMULATORFASTPATH{name}" for name in _PARAMETERS}:
            return  # another pattern answers that path first: leave it to the whole chain
        pattern = re.escape(sample)
        for name in _PARAMETERS:
            pattern = pattern.replace(f"SIMULATORFASTPATH{name}", f"(?P<{name}>[^/]+)")
        self.regex = re.compile(pattern)
        self.match = match

    def resolve(self, path: str) -> ResolverMatch | None:
        found = self.regex.fullmatch(path) if self.regex is not None else None
        if found is None:
            return None
        m = self.match
        return ResolverMatch(m.func, (), found.groupdict(), m.url_name, m.app_names, m.namespaces, m.route)


class _Headers:
    """What XFrameOptionsMiddleware and CSPMiddleware add to a simulator answer, built once per
    value of the settings they read (django-csp built its policy on every answer). No nonce and no
    per-view policy to consider: the simulator's views use neither."""

    def __init__(self):
        self._key = None
        self._frame = ""
        self._policies: list[tuple[str, str, tuple[str, ...]]] = []  # (header, value, excluded path prefixes)

    def _load(self) -> None:
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        key = (settings.X_FRAME_OPTIONS, policy, report_only)
        if key == self._key:  # the same objects, unless a test overrode the settings
            return
        from csp.constants import HEADER, HEADER_REPORT_ONLY
        from csp.utils import build_policy

        policies = []
        for name, value, config in (
            (HEADER, build_policy(), policy),
            (HEADER_REPORT_ONLY, build_policy(report_only=True), report_only),
        ):
            if value:
                policies.append((name, value, tuple((config or {}).get("EXCLUDE_URL_PREFIXES") or ())))
        self._frame, self._policies, self._key = settings.X_FRAME_OPTIONS.upper(), policies, key

    def add(self, request, response) -> None:
        self._load()
        if "X-Frame-Options" not in response:
            response["X-Frame-Options"] = self._frame
        if settings.DEBUG and response.status_code in (404, 500):
            return  # django-csp leaves Django's debug pages alone
        for name, value, excluded in self._policies:
            if name not in response and not request.path_info.startswith(excluded):
                response[name] = value


class SimulatorFastPath:
    def __init__(self, get_response):
        self.get_response = get_response
        self._routes: dict = {}  # URLconf -> _Route
        self._headers = _Headers()

    def _route(self, urlconf) -> _Route:
        # Once per process and URLconf, at the first request (the URLconf is loaded by then). Keyed by
        # URLconf so that a test's override (the simulator-only URLconf) is not misread.
        route = self._routes.get(urlconf)
        if route is None:
            route = self._routes[urlconf] = _Route(urlconf)
        return route

    def __call__(self, request):
        if request.method != "POST":
            return self.get_response(request)
        match = self._route(getattr(request, "urlconf", None) or settings.ROOT_URLCONF).resolve(request.path_info)
        if match is None:
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS, as CommonMiddleware does
        request.resolver_match = match
        request.log_quiet = True  # a log line only for a refused, failed or slow remote (fleetportal.logs)
        response = match.func(request, *match.args, **match.kwargs)
        self._headers.add(request, response)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
        return response
