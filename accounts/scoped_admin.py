"""The Django admin, scoped like every other surface: members see their organisations' rows only.

Every admin of our models mixes in `ScopedAdmin`. A superuser sees and does everything, as
before. Anyone else is a member: what they see comes from the model's `visible_to(user)`,
what they may do from their role (`access.py`), never from Django's per-user model
permissions. An object outside their organisations is not found (404), like a page or the
API answers, never "forbidden" nor the admin's "doesn't exist" redirect.

No import of the apps above accounts: the model's own queryset brings `visible_to`.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import TO_FIELD_VAR
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.http import Http404

from .access import READ, access_of


def scoped(queryset, user):
    """`queryset` narrowed to what `user` may see; every row for a superuser.

    Superusers skip `visible_to` on purpose: some rows belong to no organisation (a fleet
    just imported, a delivery no callback claimed) and only a superuser can look at them."""
    if user.is_active and user.is_superuser:
        return queryset
    visible_to = getattr(queryset, "visible_to", None)
    if visible_to is None:
        raise ImproperlyConfigured(f"{queryset.model.__name__} has no visible_to(user): the admin cannot scope it for members.")
    return visible_to(user)


def _is_superuser(request) -> bool:
    return request.user.is_active and request.user.is_superuser


def may_somewhere(request, ability: str) -> bool:
    """Whether the user holds `ability` in at least one of their organisations (or fleets)."""
    ids = access_of(request.user).organisation_ids(ability)
    return ids is None or bool(ids)


class VisibleRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A filter on a fleet, callback or organisation listing only those the user may see.

    Django's own lists every row of the related table: another organisation's fleet names
    would appear in the sidebar."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        limit = None
        if not _is_superuser(request):
            visible = scoped(field.related_model._default_manager.all(), request.user)
            limit = Q(pk__in=visible.values("pk"))
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to=limit)


class ScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows, filters, form choices and permissions follow the user's roles.

    Set per admin:
    - `fleet_path`: the attributes leading from an object to its fleet ("" for a fleet,
      "vehicle.fleet" for an action); an object without one is a superuser's only;
    - `add_ability`, `change_ability`, `delete_ability`: the ability (`access.py`) a member
      needs on the object's fleet; None (the default): superusers only.
    Custom actions that act per object call `allowed(...)` to keep the ones the user may touch.
    """

    fleet_path = ""
    add_ability: str | None = None
    change_ability: str | None = None
    delete_ability: str | None = None

    # --- what is listed ----------------------------------------------------------------------

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user)

    def get_list_filter(self, request):
        return [self._scoped_filter(spec) for spec in super().get_list_filter(request)]

    def _scoped_filter(self, spec):
        if not isinstance(spec, str):
            return spec  # a filter class of its own, or a (field, filter) pair: it decides
        field = get_fields_from_path(self.model, spec)[-1]
        return (spec, VisibleRelatedFieldListFilter) if field.is_relation else spec

    def get_field_queryset(self, db, db_field, request):
        # The choices of a foreign key (select, raw id or autocomplete) in a change form.
        queryset = super().get_field_queryset(db, db_field, request)
        if _is_superuser(request):
            return queryset
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.using(db).all()
        return scoped(queryset, request.user)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Change, delete and history of an object the user cannot see: the same answer as one
        # that does not exist, and the same as the pages and the API give (404, not a redirect
        # that reads "doesn't exist, perhaps it was deleted").
        raise Http404(f"No {opts.verbose_name} matches the given query.")

    def delete_view(self, request, object_id, extra_context=None):
        # Django asks for the delete permission before it looks the object up: a member who
        # may not delete would get 403 for another organisation's object, not its 404.
        # (With a `_to_field` Django answers 403 alike for a missing and a hidden object.)
        if TO_FIELD_VAR not in request.GET and self.get_object(request, unquote(object_id)) is None:
            self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().delete_view(request, object_id, extra_context)

    # --- what may be done --------------------------------------------------------------------

    def fleet_of(self, obj):
        for attribute in filter(None, self.fleet_path.split(".")):
            obj = getattr(obj, attribute, None)
            if obj is None:
                return None
        return obj

    def may_on(self, request, ability: str, obj) -> bool:
        if _is_superuser(request):
            return True
        fleet = self.fleet_of(obj)
        return fleet is not None and access_of(request.user).may(ability, fleet)

    def _by_role(self, request, ability: str | None, obj) -> bool:
        if ability is None:
            return False
        return may_somewhere(request, ability) if obj is None else self.may_on(request, ability, obj)

    def has_module_permission(self, request):
        if _is_superuser(request):
            return super().has_module_permission(request)
        return may_somewhere(request, READ)

    def has_view_permission(self, request, obj=None):
        if _is_superuser(request):
            return super().has_view_permission(request, obj)
        return self._by_role(request, READ, obj)

    def has_add_permission(self, request):
        if _is_superuser(request):
            return super().has_add_permission(request)
        return self._by_role(request, self.add_ability, None)

    def has_change_permission(self, request, obj=None):
        if _is_superuser(request):
            return super().has_change_permission(request, obj)
        return self._by_role(request, self.change_ability, obj)

    def has_delete_permission(self, request, obj=None):
        if _is_superuser(request):
            return super().has_delete_permission(request, obj)
        return self._by_role(request, self.delete_ability, obj)

    def allowed(self, request, objects, ability: str, what: str) -> list:
        """The selected objects the user may `ability` on; one message naming the others.

        The list of actions shows an action to whoever may do it somewhere; a selection can
        still mix fleets where they may and fleets where they only read."""
        ok, refused = [], []
        for obj in objects:
            (ok if self.may_on(request, ability, obj) else refused).append(obj)
        if refused:
            fleet = self.fleet_of(refused[0])
            reason = access_of(request.user).why_not(ability, fleet) if fleet is not None else "only superusers may."
            names = ", ".join(str(o) for o in refused[:10]) + ("…" if len(refused) > 10 else "")
            self.message_user(request, f"{what} refused for {names}: {reason}", messages.ERROR)
        return ok


class ScopedInline:
    """Mixed into an inline of a scoped admin: its rows narrowed the same way, read-only for members."""

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user)

    def has_view_permission(self, request, obj=None):
        if _is_superuser(request):
            return super().has_view_permission(request, obj)
        return may_somewhere(request, READ)  # `obj` is the parent, already found through its admin's scope

    def has_add_permission(self, request, obj):
        return _is_superuser(request) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_superuser(request) and super().has_delete_permission(request, obj)


class FormKnowsWho:
    """A ModelAdmin whose form gets `by`, the person saving it: forms that save through a
    service (which audits who did what) need them, and a form class knows no request."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"by": request.user})
