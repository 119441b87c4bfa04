from django.contrib import admin

from .models import Callback, WebhookDelivery


@admin.register(Callback)
class CallbackAdmin(admin.ModelAdmin):
    list_display = ["__str__", "fleet", "external_id", "status", "retry_policy", "batch_size", "created_at"]
    list_filter = ["status", "fleet"]
    search_fields = ["label", "external_id", "target"]
    readonly_fields = ["external_id", "secret", "previous_secret", "created_at", "updated_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["pk", "received_at", "callback", "outcome", "event_count", "new_event_count", "remote_addr"]
    list_filter = ["outcome", "callback"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    list_select_related = ["callback"]

    def has_add_permission(self, request):
        return False
