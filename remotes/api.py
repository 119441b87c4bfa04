"""Partner REST API for remote actions: one small view per operation."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from vehicles.api import CursorPage
from vehicles.models import Vehicle

from . import approvals, services
from .filters import RemoteActionFilter, VehicleActionFilter
from .models import RemoteAction, Source
from .selectors import action_with_timeline
from .serializers import AcceptedActionSerializer, RemoteActionListSerializer, RemoteActionSerializer

# The `Remote` body as the vendor describes it: a component fleetportal/schema.py adds to the document.
REMOTE_REQUEST = {"$ref": "#/components/schemas/RemoteRequest"}

# One example per feature (the bodies remotes/tests/test_features.py sends); dangerous ones carry a reason.
REMOTE_EXAMPLES = [
    OpenApiExample("horn", value={"horn": {"state": "Activated"}}, request_only=True),
    OpenApiExample("lights", value={"lights": {"on": True}}, request_only=True),
    OpenApiExample("door lock", value={"door": {"state": "Locked"}}, request_only=True),
    OpenApiExample("door unlock", value={"door": {"state": "Unlocked"}, "reason": "customer locked out"}, request_only=True),
    OpenApiExample("charging", value={"charging": {"immediate": True}}, request_only=True),
    OpenApiExample("preconditioning", value={"preconditioning": {"airConditioning": {"immediate": True}}}, request_only=True),
    OpenApiExample("wakeUp (state refresh)", value={"wakeUp": {"action": "WakeUp"}}, request_only=True),
    OpenApiExample(
        "navigation", request_only=True,
        value={"navigation": {"positions": [{"type": "Point", "coordinates": [2.2945, 48.8584]}, {"type": "Point", "coordinates": [4.8357, 45.764]}]}},
    ),
    OpenApiExample("immobilization", value={"immobilization": {"activate": True}, "reason": "rental overdue"}, request_only=True),
    OpenApiExample("stolen", value={"stolen": {"stolen": True}, "reason": "reported stolen by the driver"}, request_only=True),
]


class ActionCursorPage(CursorPage):
    ordering = "-created_at"  # indexed (and with the vehicle, for one vehicle's actions)


def _action_list(request):
    """Actions the caller sees, with what the list shows joined: no query per action."""
    return RemoteAction.objects.visible_to(request.user).select_related(
        "vehicle", "requested_by", "requested_by_token", "decided_by", "decided_by_token"
    )


class TextField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class RequestInputSerializer(serializers.Serializer):
    """What a command request carries beside the `Remote` member; the command itself is
    parsed (and refused field by field) by `services.request_remote`."""

    # Required for dangerous commands: services.check_reason says so, naming `reason`.
    reason = TextField(required=False, allow_null=True, allow_blank=True, max_length=500)


class DecisionInputSerializer(serializers.Serializer):
    comment = TextField(required=False, allow_null=True, allow_blank=True, max_length=500)


def _visible_action(request, pk) -> RemoteAction:
    """An action the caller sees; another organisation's is not found (404), never forbidden."""
    try:
        return RemoteAction.objects.visible_to(request.user).select_related("vehicle__fleet__organisation").get(pk=pk)
    except RemoteAction.DoesNotExist as exc:
        raise NotFound("No such remote action.") from exc


def _representation(request, pk) -> dict:
    qs = RemoteAction.objects.visible_to(request.user).select_related("requested_by_token", "decided_by", "decided_by_token")
    try:
        action = action_with_timeline(qs, pk)
    except RemoteAction.DoesNotExist as exc:
        raise NotFound("No such remote action.") from exc
    return RemoteActionSerializer(action, context={"request": request}).data


class VehicleRemotes(generics.ListAPIView):
    """POST a Stellantis `Remote` body without its label, e.g. {"horn": {"state": "Activated"}},
    and a `reason` (required for unlock, immobilization and stolen); GET the vehicle's actions."""

    serializer_class = RemoteActionListSerializer
    pagination_class = ActionCursorPage
    filterset_class = VehicleActionFilter
    problems = {"post": {
        403: "The token lacks `command` (or `dangerous_command` for unlock, immobilization and stolen) (`permission_denied`).",
        409: "No Running callback serves this remote type (`missing_remote_type`), the vehicle cannot do it (`not_capable`), "
        "or the same `Idempotency-Key` is still running (`idempotency_key_in_use`).",
    }}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular inspecting the view
            return RemoteAction.objects.none()
        vehicle = get_object_or_404(Vehicle.objects.visible_to(self.request.user), vin=self.kwargs["vin"].upper())
        return _action_list(self.request).filter(vehicle=vehicle)

    @extend_schema(summary="List a vehicle's actions, newest first", tags=["remotes"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Send a remote command to a vehicle", tags=["remotes"], request={"application/json": REMOTE_REQUEST},
        responses={202: AcceptedActionSerializer}, examples=REMOTE_EXAMPLES,
        description="The Stellantis `Remote` body without its `label`, exactly one action, and a `reason` (required for "
        "unlock, immobilization and stolen). 202: the action is queued (or awaiting a second approver under four-eyes); "
        "follow its `url` for the timeline.",
    )
    def post(self, request, vin):
        vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet__organisation"), vin=vin.upper())
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        extra = RequestInputSerializer(data=request.data)
        extra.is_valid(raise_exception=True)
        data = {k: v for k, v in request.data.items() if k != "reason"}
        # A refusal (ServiceError) becomes the API's one error shape in fleetportal.api.
        action = services.request_remote(
            vehicle=vehicle, command=data, by=request.user, source=Source.API, reason=extra.validated_data.get("reason") or ""
        )
        body = AcceptedActionSerializer(action, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


@extend_schema(tags=["remotes"])
class RemoteActionList(generics.ListAPIView):
    serializer_class = RemoteActionListSerializer
    pagination_class = ActionCursorPage
    filterset_class = RemoteActionFilter

    def get_queryset(self):
        return _action_list(self.request)

    @extend_schema(summary="List your actions, newest first (filters by status, type, vehicle, time)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RemoteActionDetail(APIView):
    @extend_schema(summary="One action with its timeline", tags=["remotes"], responses={200: RemoteActionSerializer})
    def get(self, request, pk):
        return Response(_representation(request, pk))


class _Decision(APIView):
    """POST {"comment": "…"} (optional): one four-eyes decision on a command waiting for approval.

    The action is found among those the caller sees (another organisation's is a 404); who may
    decide, and the refusals (403 self_approval, 409 not_awaiting_approval), are `approvals`'."""

    decide = None  # approvals.approve, reject or cancel
    problems = {"post": {
        403: "Deciding needs `dangerous_command` and the approver role; the requester never decides (`permission_denied`, `self_approval`).",
        409: "The action is not awaiting approval (`not_awaiting_approval`), or the same `Idempotency-Key` is still running.",
    }}

    @extend_schema(tags=["remotes"], request=DecisionInputSerializer, responses={200: RemoteActionSerializer})
    def post(self, request, pk):
        action = _visible_action(request, pk)
        body = DecisionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.decide(action, by=request.user, comment=body.validated_data.get("comment") or "")
        return Response(_representation(request, pk))


@extend_schema(summary="Approve a command waiting for a second person")
class ApproveRemoteAction(_Decision):
    decide = staticmethod(approvals.approve)


@extend_schema(summary="Reject a command waiting for approval: it is never sent")
class RejectRemoteAction(_Decision):
    decide = staticmethod(approvals.reject)


@extend_schema(summary="Withdraw your own command waiting for approval")
class CancelRemoteAction(_Decision):
    decide = staticmethod(approvals.cancel)
