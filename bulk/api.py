"""Partner REST API for bulk requests: one small view per operation."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from remotes.api import TextField
from remotes.models import Source
from remotes.services import InvalidCommand
from vehicles.api import CursorPage
from vehicles.models import Fleet

from . import services
from .models import BulkRequest, Selection

_COUNTS = inline_serializer("BulkCounts", {k: serializers.IntegerField() for k in services.COUNT_KEYS})
_REFUSAL = inline_serializer("BulkRefusal", {"cause": serializers.CharField(), "count": serializers.IntegerField(), "reason": serializers.CharField()})


class BulkInputSerializer(serializers.Serializer):
    command = serializers.DictField(help_text="The Stellantis `Remote` body without its label, as for one vehicle.")
    vins = serializers.ListField(child=serializers.CharField(max_length=17), required=False, allow_empty=False, max_length=50_000)
    fleet = serializers.CharField(required=False, max_length=64, help_text="A whole fleet: its id at Stellantis (fleet_id).")
    dry_run = serializers.BooleanField(required=False, default=False)
    reason = TextField(required=False, allow_null=True, allow_blank=True, max_length=500)
    not_before = serializers.DateTimeField(required=False, allow_null=True, help_text="Nothing is sent before (default: now).")
    not_after = serializers.DateTimeField(required=False, allow_null=True, help_text="Nothing is sent after (default: now + the command TTL).")

    def validate(self, data):
        if ("vins" in data) == ("fleet" in data):
            raise ValidationError({"vins": ["Give either `vins` or `fleet` (one of them)."]})
        return data


class BulkSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    refusals = serializers.SerializerMethodField()
    fleet = serializers.SerializerMethodField()

    class Meta:
        model = BulkRequest
        fields = [
            "id", "url", "status", "total", "counts", "progress", "refusals", "remote_type", "command", "selection", "fleet",
            "reason", "source", "not_before", "not_after", "created_at", "sent_at", "finished_at", "retry_of",
        ]

    def get_url(self, obj) -> str:
        return reverse("api-bulk-detail", args=[obj.pk], request=self.context.get("request"))

    def _counts(self, obj):
        if not hasattr(obj, "_counts"):
            obj._counts = services.counts(obj)
        return obj._counts

    @extend_schema_field(_COUNTS)
    def get_counts(self, obj):
        return self._counts(obj)

    def get_progress(self, obj) -> int:
        return services.progress(obj, self._counts(obj))

    @extend_schema_field(serializers.ListField(child=_REFUSAL))
    def get_refusals(self, obj):
        return services.refusals(obj)

    def get_fleet(self, obj) -> str | None:
        return obj.fleet.external_id if obj.fleet_id else None


class BulkPage(CursorPage):
    ordering = "-created_at"
    page_size = 20


def _visible(request, pk) -> BulkRequest:
    try:
        return BulkRequest.objects.visible_to(request.user).select_related("fleet").get(pk=pk)
    except BulkRequest.DoesNotExist as exc:
        raise NotFound("No such bulk request.") from exc


def _answer(request, bulk, code=status.HTTP_200_OK):
    body = BulkSerializer(bulk, context={"request": request}).data
    headers = {"Location": body["url"]} if code == status.HTTP_202_ACCEPTED else None
    return Response(body, status=code, headers=headers)


class BulkList(generics.ListAPIView):
    """POST a command for many vehicles (202, follow `url`); GET your bulk requests, newest first."""

    serializer_class = BulkSerializer
    pagination_class = BulkPage
    problems = {"post": {
        403: "The token lacks `command` (or `dangerous_command`) for every fleet of the selection (`permission_denied`).",
    }}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return BulkRequest.objects.none()
        return BulkRequest.objects.visible_to(self.request.user).select_related("fleet")

    @extend_schema(summary="List your bulk requests, newest first", tags=["bulk"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Send one command to many vehicles (a bulk request)", tags=["bulk"], request=BulkInputSerializer,
        responses={202: BulkSerializer, 200: inline_serializer("BulkForecast", {
            "dry_run": serializers.BooleanField(), "total": serializers.IntegerField(), "to_send": serializers.IntegerField(),
            "awaiting_approval": serializers.IntegerField(), "refused": serializers.IntegerField(),
            "refusals": serializers.ListField(child=serializers.DictField()), "concurrency": serializers.IntegerField(),
            "estimated_seconds": serializers.FloatField(), "estimated_duration": serializers.CharField(),
        })},
        examples=[
            OpenApiExample("horn to a fleet", value={"command": {"horn": {"state": "Activated"}}, "fleet": "<fleet_id>"}, request_only=True),
            OpenApiExample("lock, dry run", value={"command": {"door": {"state": "Locked"}}, "vins": ["VF3…"], "dry_run": True}, request_only=True),
        ],
        description="`command` is the `Remote` body of one vehicle's command; `vins` or `fleet` selects the vehicles. "
        "202: stored and started in the background; GET `url` for `status`, `total` and `counts` by status. "
        "`dry_run: true` answers 200 with the forecast (to send, refused by cause, estimated duration) and stores nothing.",
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        body = BulkInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        fleet = None
        if "fleet" in data:
            fleet = Fleet.objects.visible_to(request.user).filter(external_id=data["fleet"]).first()
            if fleet is None:
                raise ValidationError({"fleet": ["Unknown fleet."]})
        try:
            draft = services.draft(
                by=request.user, command=data["command"], selection=Selection.FLEET if fleet else Selection.VINS,
                vins=data.get("vins"), fleet=fleet, reason=data.get("reason") or "",
                not_before=data.get("not_before"), not_after=data.get("not_after"),
            )
        except InvalidCommand as exc:
            # The command's own fields, named under `command` (the body's member).
            raise InvalidCommand(exc.message, errors={
                (k if k == "reason" else f"command.{k}" if k != "non_field_errors" else "command"): v for k, v in exc.errors.items()
            }) from exc
        if data["dry_run"]:
            forecast = services.forecast(command=draft.command, by=request.user, vehicles=draft.vehicles, organisation=draft.organisation)
            return Response(forecast.as_dict())
        bulk = services.create_bulk(by=request.user, draft=draft, source=Source.API)
        return _answer(request, bulk, status.HTTP_202_ACCEPTED)


class BulkDetail(APIView):
    @extend_schema(summary="A bulk request: status, total and counts by status", tags=["bulk"], responses={200: BulkSerializer})
    def get(self, request, pk):
        bulk = _visible(request, pk)
        if bulk.status == "sent" and services.settle(bulk.pk):
            bulk.refresh_from_db()
        return _answer(request, bulk)


class BulkCancel(APIView):
    problems = {"post": {403: "Only its requester, or someone who may send its command to its fleets, cancels it."}}

    @extend_schema(summary="Cancel what has not been sent yet", tags=["bulk"], request=None, responses={200: BulkSerializer})
    def post(self, request, pk):
        bulk = _visible(request, pk)
        services.cancel(bulk, by=request.user)
        bulk.refresh_from_db()
        return _answer(request, bulk)


class BulkRetryFailed(APIView):
    problems = {"post": {409: "Nothing failed (`nothing_to_retry`)."}}

    @extend_schema(
        summary="Send again to the vehicles whose command failed, expired, errored or was rejected (a new bulk request)",
        tags=["bulk"], request=None, responses={202: BulkSerializer},
    )
    def post(self, request, pk):
        bulk = _visible(request, pk)
        new = services.retry_failed(bulk, by=request.user, source=Source.API)
        return _answer(request, new, status.HTTP_202_ACCEPTED)

