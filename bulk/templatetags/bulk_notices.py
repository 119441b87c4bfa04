"""The portal's notice of finished bulk requests: a count beside the Bulk link, until opened."""

from django import template
from django.utils.html import format_html

from bulk.services import unseen_notices

register = template.Library()


@register.simple_tag(takes_context=True)
def bulk_notice_badge(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    n = unseen_notices(user).count()
    if not n:
        return ""
    return format_html(' <span class="bulk-notice" id="bulk-notice" title="{} bulk request(s) finished since you last looked">{}</span>', n, n)
