"""`{% history_pagination cl %}`: the admin's page links, with a count that may read "more than 5,000" (core.admin.HistoryAdmin)."""

from django import template
from django.contrib.admin.templatetags.admin_list import pagination

register = template.Library()


@register.inclusion_tag("admin/history_pagination.html")
def history_pagination(cl):
    return pagination(cl)
