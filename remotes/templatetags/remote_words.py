"""{% load remote_words %}: actions, statuses and times in people's words (remotes.presentation)."""

from django import template

from .. import presentation

register = template.Library()


@register.filter
def action_title(action):
    return presentation.action_title(action) if action is not None else ""


@register.filter
def status_words(status):
    """A status value, or an action (then with its failure cause or pending step)."""
    return presentation.status_words(status)


@register.filter
def status_tone(status):
    return presentation.status_tone(status)


@register.filter
def cause_words(cause):
    return presentation.cause_words(cause)


@register.filter
def when(value, arg=""):
    """{{ dt|when }} -> "27 Nov 14:05 CET"; {{ dt|when:"seconds" }} adds the seconds."""
    return presentation.when(value, seconds=arg == "seconds")


@register.filter
def ago(value):
    return presentation.ago(value)
