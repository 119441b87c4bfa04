"""Partner API for webhook endpoints (push): register, read, change, delete; the delivery log and replay.

An endpoint belongs to the caller's organisation (a token's own); another organisation's is a
404. Refusals (ServiceError) become the API's one error shape in fleetportal.api.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from accounts.models import Organisation

from . import services
from .models import EventType, PushDelivery, WebhookEndpoint


class StrictText(serializers.CharField):
    """Refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class EndpointInputSerializer(serializers.Serializer):
    # Checked by the service (https, public address), which names `url` and `events` when it refuses.
    url = StrictText(max_length=500)
    events = serializers.ListField(child=StrictText(max_length=40), allow_empty=True, help_text=f"Among {', '.join(EventType.values)}.")
    description = StrictText(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    organisation = StrictText(required=False, help_text="Organisation slug, for a person in several; a token's is its own.")


class EndpointSerializer(serializers.ModelSerializer):
    href = serializers.SerializerMethodField()
    deliveries = serializers.SerializerMethodField()
    organisation = serializers.CharField(source="organisation.slug")

    class Meta:
        model = WebhookEndpoint
        ref_name = "WebhookEndpoint"
        fields = ["id", "href", "url", "events", "description", "enabled", "disabled_reason", "organisation", "created_at", "deliveries"]

    def get_href(self, obj) -> str:
        return reverse("api-webhook-endpoint-detail", args=[obj.pk], request=self.context.get("request"))

    def get_deliveries(self, obj) -> str:
        return reverse("api-webhook-endpoint-deliveries", args=[obj.pk], request=self.context.get("request"))


class EndpointCreatedSerializer(EndpointSerializer):
    """The answer to a registration: the endpoint and, this once, its signing secret."""

    secret = serializers.CharField(read_only=True, help_text="Shown this once: verify our signatures with it (whsec_…).")

    class Meta(EndpointSerializer.Meta):
        ref_name = "WebhookEndpointCreated"
        fields = [*EndpointSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    action = serializers.UUIDField(source="action_id")

    class Meta:
        model = PushDelivery
        fields = [
            "id", "event_id", "event_type", "action", "state", "attempts", "next_attempt_at", "last_status_code", "last_error",
            "created_at", "delivered_at", "payload",
        ]


def _endpoint(request, pk) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.objects.visible_to(request.user).select_related("organisation").get(pk=pk)
    except WebhookEndpoint.DoesNotExist as exc:
        raise NotFound("No such webhook endpoint.") from exc


def _organisation_for(request, slug: str | None) -> Organisation:
    token = getattr(request.user, "token", None)
    if token is not None:
        return token.organisation
    orgs = Organisation.objects.visible_to(request.user)
    if slug:
        try:
            return orgs.get(slug=slug)
        except Organisation.DoesNotExist as exc:
            raise ValidationError({"organisation": ["No such organisation."]}) from exc
    mine = [o for o in orgs[:2] if services.may_manage(request.user, o.pk)] if not request.user.is_superuser else []
    if len(mine) != 1:
        raise ValidationError({"organisation": ["Say which organisation (its slug)."]})
    return mine[0]


TAGS = ["push"]


class EndpointList(APIView):
    @extend_schema(summary="List your webhook endpoints", tags=TAGS, responses={200: EndpointSerializer(many=True)})
    def get(self, request):
        qs = WebhookEndpoint.objects.visible_to(request.user).select_related("organisation")
        return Response(EndpointSerializer(qs, many=True, context={"request": request}).data)

    @extend_schema(summary="Register a webhook endpoint", tags=TAGS, request=EndpointInputSerializer, responses={201: EndpointCreatedSerializer})
    def post(self, request):
        data = EndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        endpoint = services.create_endpoint(
            organisation=_organisation_for(request, fields.get("organisation")), url=fields["url"], events=fields["events"],
            description=fields.get("description", ""), by=request.user,
        )
        body = EndpointCreatedSerializer(endpoint, context={"request": request}).data  # the secret, this once
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["href"]})


class EndpointDetail(APIView):
    @extend_schema(summary="One webhook endpoint", tags=TAGS, responses={200: EndpointSerializer})
    def get(self, request, pk):
        return Response(EndpointSerializer(_endpoint(request, pk), context={"request": request}).data)

    @extend_schema(summary="Change a webhook endpoint", tags=TAGS, request=EndpointInputSerializer, responses={200: EndpointSerializer})
    def patch(self, request, pk):
        endpoint = _endpoint(request, pk)
        data = EndpointInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k != "organisation"}
        endpoint = services.update_endpoint(endpoint=endpoint, changes=changes, by=request.user)
        return Response(EndpointSerializer(endpoint, context={"request": request}).data)

    @extend_schema(summary="Delete a webhook endpoint", tags=TAGS, responses={204: None})
    def delete(self, request, pk):
        services.delete_endpoint(endpoint=_endpoint(request, pk), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointDeliveries(APIView):
    """The log, newest first: `?state=pending|delivered|failed`, `?limit=` (100, at most 500)."""

    @extend_schema(
        summary="An endpoint's delivery log, newest first", tags=TAGS, responses={200: DeliverySerializer(many=True)},
        parameters=[OpenApiParameter("state", str, enum=["pending", "delivered", "failed"]), OpenApiParameter("limit", int)],
    )
    def get(self, request, pk):
        qs = _endpoint(request, pk).deliveries.all()
        state = request.query_params.get("state")
        if state:
            if state not in PushDelivery.State.values:
                raise ValidationError({"state": [f"One of {', '.join(PushDelivery.State.values)}."]})
            qs = qs.filter(state=state)
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 500)
        except ValueError as exc:
            raise ValidationError({"limit": ["A whole number."]}) from exc
        return Response(DeliverySerializer(qs[:limit], many=True).data)


class ReplayDelivery(APIView):
    """Send a logged event again, same webhook-id; 202: it is queued."""

    @extend_schema(summary="Send a logged event again", tags=TAGS, request=None, responses={202: DeliverySerializer})
    def post(self, request, pk, delivery_id):
        endpoint = _endpoint(request, pk)
        try:
            delivery = endpoint.deliveries.select_related("endpoint").get(pk=delivery_id)
        except PushDelivery.DoesNotExist as exc:
            raise NotFound("No such delivery.") from exc
        delivery = services.replay(delivery=delivery, by=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
