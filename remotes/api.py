"""Partner REST API for remote actions: one small view per operation."""

from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from vehicles.models import Vehicle

from . import services
from .models import RemoteAction, Source
from .selectors import action_with_timeline
from .serializers import AcceptedActionSerializer, RemoteActionSerializer


class VehicleRemotes(APIView):
    """POST a Stellantis `Remote` body without its label, e.g. {"horn": {"state": "Activated"}}."""

    def post(self, request, vin):
        vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet"), vin=vin.upper())
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        data = {k: v for k, v in request.data.items() if k not in ("reason",)}
        # A refusal (ServiceError) becomes the API's one error shape in fleetportal.api.
        action = services.request_remote(
            vehicle=vehicle, command=data, by=request.user, source=Source.API, reason=str(request.data.get("reason") or "")
        )
        body = AcceptedActionSerializer(action, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class RemoteActionDetail(APIView):
    def get(self, request, pk):
        qs = RemoteAction.objects.visible_to(request.user)
        try:
            action = action_with_timeline(qs, pk)
        except RemoteAction.DoesNotExist as exc:
            raise NotFound("No such remote action.") from exc
        return Response(RemoteActionSerializer(action, context={"request": request}).data)
