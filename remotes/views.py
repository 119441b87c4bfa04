import hashlib
import logging

from csp.decorators import csp_exempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.http.request import HttpHeaders
from django.shortcuts import redirect, render
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import approvals, inbox, verification
from .models import ActionStatus, RemoteAction
from .selectors import action_with_timeline, timeline
from .services import NotAllowed, person_of

log = logging.getLogger(__name__)


def _load(request, pk):
    # Who asked and who decided show on the page: joined here, not one query each.
    qs = RemoteAction.objects.visible_to(request.user).select_related(
        "vehicle__fleet", "vehicle__status_snapshot", "requested_by_token__user", "decided_by", "decided_by_token__user"
    )
    try:
        return action_with_timeline(qs, pk)
    except RemoteAction.DoesNotExist as exc:
        raise Http404("No such remote action") from exc


def _approval(request, action) -> dict:
    """What the action page offers around a decision still to take: who may decide, what changed."""
    if action.status != ActionStatus.AWAITING_APPROVAL:
        return {}
    person = person_of(request.user)
    return {
        "is_requester": person is not None and person.pk == action.requested_by_id,
        # The same rules approve/reject apply on POST; here they only choose which buttons show.
        "why_not": approvals.may_decide(action, request.user),
        "changes": approvals.changes_since_request(action),
    }


def _decision(action) -> str:
    """The verb of the decision taken on it, if any (an approved command moves on past `queued`)."""
    if action.decided_at is None:
        return ""
    # A rejection or cancellation ends it at the very moment of the decision; an approved
    # command Stellantis rejects later ends later, and was still approved.
    if action.finished_at == action.decided_at:
        return {ActionStatus.REJECTED: "Rejected", ActionStatus.CANCELLED: "Cancelled"}.get(action.status, "Approved")
    return "Approved"


def _live(action) -> dict:
    """The timeline and what the live part needs to follow it (remotes/_timeline.html)."""
    entries = timeline(action)
    return {
        "action": action,
        "timeline": entries,
        "shown": len(entries),
        "digest": _digest(entries),
        "live_until_final": not action.is_final or verification.awaits(action),
        "verdict": verification.verdict_of(action, entries),
    }


def _digest(entries) -> str:
    return hashlib.blake2s("\n".join(f"{t.at.isoformat()}|{t.origin}|{t.status}" for t in entries).encode(), digest_size=6).hexdigest()


@login_required
def action_detail(request, pk, *, status=200):
    action = _load(request, pk)
    context = {**_live(action), "approval": _approval(request, action), "decision": _decision(action)}
    return render(request, "remotes/action_detail.html", context, status=status)


@login_required
def action_timeline(request, pk):
    """The live part of the action page, asked again every 2 s by htmx until final (and verified).

    htmx sends what it shows (`shown` entries, their `digest`): nothing new is a 204 (htmx swaps
    nothing, screen readers hear nothing); new entries are appended to the list, whose
    aria-live region announces just them; an entry that came in out of order redraws the list."""
    action = _load(request, pk)
    context = _live(action)
    if not request.htmx or "shown" not in request.GET:
        return render(request, "remotes/_timeline.html", context)
    try:
        shown = max(0, int(request.GET["shown"]))
    except ValueError:
        shown = 0
    entries = context["timeline"]
    if shown == len(entries) and request.GET.get("digest") == context["digest"]:
        return HttpResponse(status=204)
    appended = entries[shown:] if shown <= len(entries) and _digest(entries[:shown]) == request.GET.get("digest") else None
    return render(request, "remotes/_timeline_update.html", {**context, "appended": appended})


@login_required
def awaiting_approval(request):
    """The commands this person may approve now, the soonest to expire first."""
    waiting = (
        approvals.waiting_for(request.user)
        .select_related("vehicle__fleet", "requested_by", "requested_by_token")
        .order_by("approval_expires_at", "created_at")
    )
    return render(request, "remotes/awaiting.html", {"waiting": waiting})


def _decision_view(decide, done: str):
    """A POST that approves, rejects or cancels one command, then shows its page again."""

    @login_required
    @require_POST
    def view(request, pk):
        try:
            action = RemoteAction.objects.visible_to(request.user).select_related("vehicle__fleet").get(pk=pk)
        except RemoteAction.DoesNotExist as exc:
            raise Http404("No such remote action") from exc
        try:
            decide(action, by=request.user, comment=request.POST.get("comment", ""))
        except NotAllowed as exc:  # SelfApproval included: the page again, refused
            messages.error(request, exc.message)
            return action_detail(request, pk, status=403)
        except approvals.NotAwaitingApproval as exc:  # another approver was first, or its time ran out
            messages.warning(request, exc.message)
        else:
            messages.success(request, done)
        return redirect("action-detail", pk=pk)

    return view


approve = _decision_view(approvals.approve, "Approved: the command is on its way to the vehicle.")
reject = _decision_view(approvals.reject, "Rejected: the command will not be sent.")
cancel = _decision_view(approvals.cancel, "Cancelled: the command will not be sent.")


# --- the Stellantis webhook ----------------------------------------------------------------


class BodyNotReceived(Exception):
    """The request's body did not reach us whole: we hold nothing, the sender must retry."""


# META key -> header name, as HttpRequest.headers spells it ("HTTP_X_FLEETPORTAL_SECRET" ->
# "X-Fleetportal-Secret"). Building `request.headers` title-cased every key of META on every
# delivery; the names a vendor sends are few and always the same. Bounded: a sender writes
# whatever names it likes.
_HEADER_NAMES: dict[str, str | None] = {}


def _headers(meta) -> dict[str, str]:
    """The request's headers as `request.headers` has them (same names, same order), cheaper."""
    names, headers = _HEADER_NAMES, {}
    for key, value in meta.items():
        name = names.get(key, False)
        if name is False:
            name = HttpHeaders.parse_header_name(key)
            if len(names) > 1000:
                names.clear()
            names[key] = name
        if name:
            headers[name] = value
    return headers


def _read_body(http) -> tuple[bytes, bool]:
    """The whole body however it is framed, at most WEBHOOK_MAX_BODY_BYTES; True when more was sent.

    Django's `HttpRequest.body` reads CONTENT_LENGTH bytes, and a chunked request has no
    Content-Length: it read as empty, and the delivery was stored with no events. gunicorn
    (Procfile) de-chunks such a body, gives no CONTENT_LENGTH and says that its input ends
    where the body does (`wsgi.input_terminated`, as mod_wsgi and Werkzeug do): read it to
    its end. Django's runserver and test live server (wsgiref) hand a chunked body on as
    nothing at all: there it is not received (500, the sender retries) rather than stored
    empty. Reading stops at the limit + 1 bytes, so no body sits in memory whole past it.
    """
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    meta = http.META
    if meta.get("CONTENT_LENGTH"):
        stream = http  # Django's stream, which stops at Content-Length
    elif meta.get("wsgi.input_terminated"):
        stream = meta["wsgi.input"]
    elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise BodyNotReceived("a chunked body this WSGI server does not pass on (gunicorn does)")
    else:
        return b"", False
    chunks, size = [], 0
    try:
        while size <= limit:
            chunk = stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:  # UnreadablePostError: the sender went away mid-body
        raise BodyNotReceived(f"the body could not be read: {exc}") from exc
    data = b"".join(chunks)
    return (data[:limit], True) if size > limit else (data, False)


class StellantisWebhook(View):
    """Where Stellantis POSTs RemoteEvents.

    What we answer. The vendor's notification system knows two answers — 200: received,
    whether or not processing it succeeded; 500: not received, which starts its retry
    policy — and asks for no other ("please do not use any other HTTP status").
    - 200 once the delivery is stored, whatever its content: processed; `partial` (some
      events refused, kept on the row); `unparseable` (not RemoteEvents at all, or over
      WEBHOOK_MAX_BODY_BYTES: its first WEBHOOK_MAX_BODY_BYTES bytes kept, flagged — a retry
      would be as big, so 500 would only repeat it for three days, and 413 is a status the
      sender does not expect; reconciliation reads its open actions back); `failed` (our
      code or the database refused something of it: replay from the admin once fixed).
    - 500 when we hold nothing: our database failed, or the body did not reach us whole
      (the sender went away mid-body, or a server that drops chunked bodies). The sender retries.
    - 401 when no accepted place carries a valid secret (`inbox.authenticate`), and then
      nothing is stored: a stranger must not get a write path into our database, nor a
      line in our 500s. The vendor sends our secret twice — a Header attribute (accepted
      under its name or with the "x-" the spec says it may add) and a Body attribute
      (`Callback.subscription`) — so a renamed or stripped header alone loses nothing. A
      vendor delivery gets a 401 only when the callback at Stellantis no longer carries our
      secret at all; then no answer of ours makes its retries acceptable, the portal flags
      the callback (`secret_at_vendor`, the "check" action) and reconciliation reads its
      actions back. The docs warn that another status "could lead to a failure regarding
      following notification": we take that risk only for requests we refuse anyway.
    Never inside ATOMIC_REQUESTS (`webhook` below says so explicitly): the inbox owns its
    transaction, and a rolled-back request must not take the raw delivery with it.

    The portal's hottest endpoint (docs/benchmarks.md), so a plain Django view (STYLE.md:
    DRF buys nothing here): the body is stored raw, the secret is its authentication, and
    the answers are JsonResponses the vendor reads only the status of. DRF's dispatch
    (its Request, authenticators, permissions, negotiation) was still ~0.04 ms a delivery.
    """

    http_method_names = ["post"]  # anything else: 405 (through the pages' whole chain)
    # Never throttled: a delivery refused for its rate would be retried by the vendor for days
    # (fleetportal/tests/test_security.py). A plain view has no throttle; said here all the same.
    throttle_classes = []

    def post(self, http):
        meta = http.META
        try:
            body, over_limit = _read_body(http)
        except BodyNotReceived as exc:
            log.error("webhook delivery not received from %s: %s", meta.get("REMOTE_ADDR"), exc)
            return JsonResponse({"detail": "Body not received; please retry."}, status=500)
        try:
            receipt = inbox.receive_delivery(
                body=body,
                over_limit=over_limit,
                headers=_headers(meta),
                query=meta.get("QUERY_STRING", ""),
                remote_addr=meta.get("REMOTE_ADDR"),
            )
        except inbox.WebhookUnauthorized as exc:
            log.warning("webhook refused from %s: %s", meta.get("REMOTE_ADDR"), exc)
            return JsonResponse({"detail": "Invalid or missing webhook secret."}, status=401)
        except DatabaseError:
            log.exception("webhook delivery could not be stored")
            return JsonResponse({"detail": "Not stored; please retry."}, status=500)
        return JsonResponse(
            {"received": receipt.delivery_id, "outcome": receipt.outcome, "events": receipt.events, "new": receipt.new_events, "refused": receipt.refused}
        )


# Whatever ATOMIC_REQUESTS says, the inbox owns its transaction (see the class docstring).
# No Content-Security-Policy on its JSON answers: the vendor renders nothing, and building the
# header cost about a tenth of the hot path's CPU (docs/benchmarks.md).
webhook = csp_exempt()(csrf_exempt(transaction.non_atomic_requests(StellantisWebhook.as_view())))
