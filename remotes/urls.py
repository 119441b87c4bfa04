from django.urls import path

from . import views

urlpatterns = [
    path("awaiting/", views.awaiting_approval, name="actions-awaiting"),
    path("<uuid:pk>/", views.action_detail, name="action-detail"),
    path("<uuid:pk>/timeline/", views.action_timeline, name="action-timeline"),
    path("<uuid:pk>/approve/", views.approve, name="action-approve"),
    path("<uuid:pk>/reject/", views.reject, name="action-reject"),
    path("<uuid:pk>/cancel/", views.cancel, name="action-cancel"),
]

webhook_urlpatterns = [
    path("stellantis/remote/", views.webhook, name="stellantis-webhook"),
]
