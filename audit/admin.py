from django.contrib import admin

from core.admin import HistoryAdmin, IndexedValuesFilter

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(HistoryAdmin, admin.ModelAdmin):
    """Read-only, for everyone: an audit entry is never added, changed or deleted by hand.

    A history list (core.admin.HistoryAdmin): no count of the whole log, its actions listed
    from their index, a date filter rather than a date hierarchy (a DISTINCT over every entry)."""

    list_display = ["at", "actor", "action", "object_repr", "source", "ip_address", "organisation"]
    list_filter = [("action", IndexedValuesFilter), "source", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor", "object_repr", "object_id", "reason"]
    list_select_related = ["organisation"]
    list_defer = ("changes", "reason", "user_agent")

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
