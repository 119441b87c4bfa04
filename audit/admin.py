from django.contrib import admin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only, for everyone: an audit entry is never added, changed or deleted by hand."""

    list_display = ["at", "actor", "action", "object_repr", "source", "ip_address", "organisation"]
    list_filter = ["action", "source"]
    search_fields = ["actor", "object_repr", "object_id", "reason"]
    date_hierarchy = "at"
    list_select_related = ["organisation"]

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and (
            request.user.is_superuser or request.user.memberships.filter(role="admin").exists()
        )

    def has_module_permission(self, request):
        return self.has_view_permission(request)
