"""Partner REST API for remote actions: one small view per operation."""

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from vehicles.models import Vehicle

from . import approvals, services
from .models import RemoteAction, Source
from .selectors import action_with_timeline
from .serializers import AcceptedActionSerializer, RemoteActionSerializer


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


class VehicleRemotes(APIView):
    """POST a Stellantis `Remote` body without its label, e.g. {"horn": {"state": "Activated"}},
    and a `reason` (required for unlock, immobilization and stolen)."""

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


class RemoteActionDetail(APIView):
    def get(self, request, pk):
        return Response(_representation(request, pk))


class _Decision(APIView):
    """POST {"comment": "…"} (optional): one four-eyes decision on a command waiting for approval.

    The action is found among those the caller sees (another organisation's is a 404); who may
    decide, and the refusals (403 self_approval, 409 not_awaiting_approval), are `approvals`'."""

    decide = None  # approvals.approve, reject or cancel

    def post(self, request, pk):
        action = _visible_action(request, pk)
        body = DecisionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.decide(action, by=request.user, comment=body.validated_data.get("comment") or "")
        return Response(_representation(request, pk))


class ApproveRemoteAction(_Decision):
    decide = staticmethod(approvals.approve)


class RejectRemoteAction(_Decision):
    decide = staticmethod(approvals.reject)


class CancelRemoteAction(_Decision):
    decide = staticmethod(approvals.cancel)
