"""Partner API for callbacks: every RemoteCallbackSubscribe field, synced with Stellantis."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from accounts import access
from stellantis.vocabulary import AttributeType, CallbackStatus, RemoteType, RetryPolicy
from vehicles.models import Fleet

from . import rules, services
from .models import Callback


class AttributeSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=AttributeType.values)
    key = serializers.CharField(max_length=200)
    value = serializers.CharField(max_length=500)


class CallbackInputSerializer(serializers.Serializer):
    fleet = serializers.CharField(required=False, help_text="Stellantis fleet id; required on create.")
    label = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    target = serializers.URLField(max_length=500, required=False)
    name = serializers.CharField(max_length=100, required=False, default="fleetportal")
    remote_types = serializers.ListField(child=serializers.ChoiceField(choices=RemoteType.values))
    retry_policy = serializers.ChoiceField(choices=RetryPolicy.values, default=RetryPolicy.BOUNDED)
    retry_number = serializers.IntegerField(required=False, default=3)
    retry_delay = serializers.IntegerField(required=False, default=10)
    batch_size = serializers.IntegerField(required=False, allow_null=True, default=None)
    batch_time_window = serializers.IntegerField(required=False, allow_null=True, default=None)
    attributes = AttributeSerializer(many=True, required=False, default=list)

    def validate(self, data):
        data["batch_time_window"] = rules.time_window(data.get("batch_size"), data.get("batch_time_window"))
        errors = rules.check(
            target=data.get("target") or services.default_webhook_target(), name=data.get("name", ""),
            retry_policy=data["retry_policy"], retry_number=data.get("retry_number"), retry_delay=data.get("retry_delay"),
            batch_size=data.get("batch_size"), batch_time_window=data.get("batch_time_window"),
            remote_types=data.get("remote_types") or [], attributes=[dict(a) for a in data.get("attributes") or []],
            reserved_header=settings.WEBHOOK_SECRET_HEADER,
        )
        if errors:
            raise serializers.ValidationError(errors)
        data["attributes"] = [dict(a) for a in data.get("attributes") or []]
        return data


class CallbackOutputSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    fleet = serializers.CharField(source="fleet.external_id")
    warnings = serializers.SerializerMethodField()
    pending_actions = serializers.SerializerMethodField()

    class Meta:
        model = Callback
        fields = [
            "id", "url", "fleet", "external_id", "label", "target", "name", "remote_types", "retry_policy", "retry_number",
            "retry_delay", "batch_size", "batch_time_window", "attributes", "status", "secret_at_vendor", "last_synced_at",
            "warnings", "pending_actions",
        ]

    def get_url(self, obj) -> str:
        return reverse("api-callback-detail", args=[obj.pk], request=self.context.get("request"))

    def get_warnings(self, obj) -> list[str]:
        return rules.warnings(batch_size=obj.batch_size, attributes=obj.attributes)

    def get_pending_actions(self, obj) -> int | None:
        return getattr(obj, "_pending", None)


def _callback(request, pk, ability=access.CALLBACKS) -> Callback:
    """A live callback the caller can see (else 404) and may use for `ability` (else 403)."""
    callback = get_object_or_404(Callback.objects.visible_to(request.user).live().select_related("fleet"), pk=pk)
    access.require(request.user, ability, callback.fleet)
    return callback


_TAGS = ["callbacks"]
_VENDOR = {502: "Stellantis refused the change; nothing was changed here (`vendor_refused`)."}
_NEEDS_SCOPE = {403: "The token lacks the `callbacks` scope or its member the organisation admin role (`permission_denied`)."}


# Refusals of the services (ServiceError) become the API's one error shape in fleetportal.api.
class CallbackList(APIView):
    problems = {"post": {**_NEEDS_SCOPE, **_VENDOR, 404: "No fleet of yours with that id (`not_found`)."}}

    @extend_schema(
        summary="List your callbacks", tags=_TAGS, responses={200: CallbackOutputSerializer(many=True)},
        parameters=[OpenApiParameter("fleet", str, description="Only this fleet's (its Stellantis id).")],
    )
    def get(self, request):
        qs = Callback.objects.visible_to(request.user).live().select_related("fleet")
        if request.query_params.get("fleet"):
            qs = qs.filter(fleet__external_id=request.query_params["fleet"])
        return Response(CallbackOutputSerializer(qs, many=True, context={"request": request}).data)

    @extend_schema(summary="Create a callback at Stellantis", tags=_TAGS, request=CallbackInputSerializer, responses={201: CallbackOutputSerializer})
    def post(self, request):
        data = CallbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fleet_id = fields.pop("fleet", None)
        if not fleet_id:
            raise ValidationError({"fleet": ["This field is required."]})
        fleet = get_object_or_404(Fleet.objects.visible_to(request.user), external_id=fleet_id)
        access.require(request.user, access.CALLBACKS, fleet)
        if not fields.get("target"):
            fields.pop("target", None)
        callback = services.create_callback(fleet=fleet, **fields, by=request.user)
        return Response(CallbackOutputSerializer(callback, context={"request": request}).data, status=status.HTTP_201_CREATED)


class CallbackDetail(APIView):
    problems = {
        "put": {**_NEEDS_SCOPE, **_VENDOR},
        "delete": {**_NEEDS_SCOPE, **_VENDOR, 409: "An action sent through it still waits for its Done event (`callback_in_use`)."},
    }

    @extend_schema(summary="One callback", tags=_TAGS, responses={200: CallbackOutputSerializer})
    def get(self, request, pk):
        callback = _callback(request, pk, access.READ)
        callback._pending = services.pending_action_count(callback)
        return Response(CallbackOutputSerializer(callback, context={"request": request}).data)

    @extend_schema(summary="Replace a callback (at Stellantis too)", tags=_TAGS, request=CallbackInputSerializer, responses={200: CallbackOutputSerializer})
    def put(self, request, pk):
        callback = _callback(request, pk)
        data = CallbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k != "fleet"}
        if not changes.get("target"):
            changes["target"] = callback.target
        callback = services.update_callback(callback=callback, changes=changes, by=request.user)
        return Response(CallbackOutputSerializer(callback, context={"request": request}).data)

    @extend_schema(summary="Delete a callback (at Stellantis too)", tags=_TAGS, responses={204: None})
    def delete(self, request, pk):
        services.delete_callback(callback=_callback(request, pk), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CallbackStatusView(APIView):
    problems = {"put": {**_NEEDS_SCOPE, **_VENDOR}}

    @extend_schema(
        summary="Pause or resume a callback", tags=_TAGS, responses={200: CallbackOutputSerializer},
        request=inline_serializer("CallbackStatusInput", {"status": serializers.ChoiceField(choices=[CallbackStatus.RUNNING, CallbackStatus.PAUSED])}),
    )
    def put(self, request, pk):
        callback = _callback(request, pk)
        wanted = request.data.get("status") if isinstance(request.data, dict) else None
        if wanted not in (CallbackStatus.RUNNING, CallbackStatus.PAUSED):
            raise ValidationError({"status": ["must be Running or Paused"]})
        callback = services.set_callback_status(callback=callback, status=wanted, by=request.user)
        return Response(CallbackOutputSerializer(callback, context={"request": request}).data)
