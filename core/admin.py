from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property

from .models import VendorBudget


@admin.register(VendorBudget)
class VendorBudgetAdmin(admin.ModelAdmin):
    """Read-only: whether calls to Stellantis are held off by its rate limits, until when and why.

    The vendor's budget is shared by every organisation: superusers only (no import of
    accounts here, core sits below it)."""

    list_display = ["name", "hold_until", "reason", "updated_at"]
    readonly_fields = ["name", "hold_until", "reason", "updated_at"]

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- history lists that do not grow with history (issue 14) ------------------------------------
#
# The admin's changelist counts its rows twice per page (the filtered list, then the whole
# table for "N total"), and every filter of a text column without choices lists its values
# with SELECT DISTINCT over the table: each a full scan at a million rows. A history admin
# counts at most `HISTORY_COUNT_CAP` rows ("more than 5,000"), never the whole table, lists a
# column's values by walking its index, and leaves out what it does not show.

HISTORY_COUNT_CAP = 5_000


class CappedCountPaginator(Paginator):
    """A paginator that counts at most `cap` + 1 rows: `SELECT COUNT(*) FROM (… LIMIT cap+1)`.

    Beyond the cap the count reads "more than cap" (`capped`), and the pages stop at the first
    one past it: a person filters or sorts rather than paging through a million rows."""

    cap = HISTORY_COUNT_CAP

    @cached_property
    def count(self):
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


class HistoryChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        defer = getattr(self.model_admin, "list_defer", ())
        return queryset.defer(*defer) if defer else queryset


class HistoryAdmin:
    """Mixed into the ModelAdmin of a table that grows with history (events, actions, deliveries, audit).

    A constant number of queries per page whatever the table's size: no count of the whole
    table, a capped count of the filtered one, no facets, and `list_defer` columns (a raw
    body) not read for the list. Its filters and orderings need an index each (remotes 0014)."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    change_list_template = "admin/history_change_list.html"
    list_defer: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        return HistoryChangeList


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's "all values" filter, its values found by walking the column's index.

    Django lists them with SELECT DISTINCT, which reads every row. This asks the index for the
    smallest value above the last one, once per value (a "loose index scan", a recursive CTE on
    PostgreSQL and SQLite alike): a few dozen probes for a vocabulary (statuses, failure
    causes, audit actions). Empty values are not listed. The values are the vocabulary's words,
    not an organisation's data, so they are not narrowed to the person's scope."""

    most = 50

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = indexed_values(model, field.column, most=self.most)


def indexed_values(model, column: str, *, most: int = 50) -> list[str]:
    qn = connection.ops.quote_name
    table, col = qn(model._meta.db_table), qn(column)
    # Quoted identifiers of our own models, no input. `<> ''` in each probe lets PostgreSQL use
    # a partial index WHERE col <> '' (failure causes): it cannot prove `col > v.x` implies it.
    sql = (
        f"WITH RECURSIVE v(x) AS (SELECT min({col}) FROM {table} WHERE {col} > '' "  # noqa: S608
        f"UNION ALL SELECT (SELECT min({col}) FROM {table} WHERE {col} > v.x AND {col} <> '') FROM v WHERE v.x IS NOT NULL) "
        f"SELECT x FROM v WHERE x IS NOT NULL LIMIT {int(most)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]
