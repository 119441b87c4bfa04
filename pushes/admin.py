from django.contrib import admin, messages
from django.db import models

from accounts import access
from accounts.scoped_admin import ScopedAdmin

from . import services
from .models import PushDelivery, WebhookEndpoint


class OrganisationWide:
    """Endpoints and their log belong to an organisation, not a fleet: members who read their
    organisation whole see them (the queryset says which rows); changes are superusers' here,
    members manage endpoints through the API."""

    def has_view_permission(self, request, obj=None):
        if request.user.is_active and request.user.is_superuser:
            return True
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return request.user.is_active and (request.user.is_superuser or bool(access.access_of(request.user).organisation_ids()))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrganisationWide, ScopedAdmin):
    list_display = ("url", "organisation", "events", "enabled", "disabled_reason", "created_at")
    list_filter = ("enabled", "organisation")
    search_fields = ("url", "description")
    exclude = ("secret",)  # never shown again after creation
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("created_by", "created_at")


@admin.register(PushDelivery)
class PushDeliveryAdmin(OrganisationWide, ScopedAdmin):
    list_display = ("event_id", "endpoint", "event_type", "action_state", "state", "attempts", "last_status_code", "created_at", "delivered_at")
    list_filter = ("state", "event_type")
    search_fields = ("event_id", "action__id")
    readonly_fields = [f.name for f in PushDelivery._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Send again (same webhook-id)")
    def replay(self, request, queryset):
        sent = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.replay(delivery=delivery, by=request.user)
            except services.EndpointNotAllowed as exc:
                self.message_user(request, f"{delivery.event_id}: {exc.message}", messages.ERROR)
                continue
            sent += 1
        if sent:
            self.message_user(request, f"{sent} delivery(ies) queued to be sent again.", messages.SUCCESS)
