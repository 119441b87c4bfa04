"""Partner REST API for remote actions: one small view per operation."""

from django.shortcuts import get_object_or_404
from rest_framework import status
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
            return Response({"non_field_errors": ["The body must be a JSON object."]}, status=status.HTTP_400_BAD_REQUEST)
        data = {k: v for k, v in request.data.items() if k not in ("reason",)}
        try:
            action = services.request_remote(
                vehicle=vehicle, command=data, by=request.user, source=Source.API, reason=str(request.data.get("reason") or "")
            )
        except services.InvalidCommand as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        except services.NotAllowed as exc:
            return Response({"detail": exc.message}, status=status.HTTP_403_FORBIDDEN)
        except services.NotCapable as exc:
            return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
        except services.NoCallbackForType as exc:
            return Response(
                {"detail": exc.message, "missing_remote_type": exc.remote_type}, status=status.HTTP_409_CONFLICT
            )
        body = AcceptedActionSerializer(action, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class RemoteActionDetail(APIView):
    def get(self, request, pk):
        qs = RemoteAction.objects.visible_to(request.user)
        try:
            action = action_with_timeline(qs, pk)
        except RemoteAction.DoesNotExist:
            return Response({"detail": "No such remote action."}, status=status.HTTP_404_NOT_FOUND)
        return Response(RemoteActionSerializer(action, context={"request": request}).data)
