from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from .models import RemoteAction
from .selectors import action_with_timeline, timeline


def _load(request, pk):
    try:
        return action_with_timeline(RemoteAction.objects.visible_to(request.user), pk)
    except RemoteAction.DoesNotExist as exc:
        raise Http404("No such remote action") from exc


@login_required
def action_detail(request, pk):
    action = _load(request, pk)
    return render(request, "remotes/action_detail.html", {"action": action, "timeline": timeline(action)})


@login_required
def action_timeline(request, pk):
    """The live part of the action page, fetched again every second or so until final."""
    action = _load(request, pk)
    return render(request, "remotes/_timeline.html", {"action": action, "timeline": timeline(action)})
