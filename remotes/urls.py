from django.urls import path

from . import views

urlpatterns = [
    path("<uuid:pk>/", views.action_detail, name="action-detail"),
    path("<uuid:pk>/timeline/", views.action_timeline, name="action-timeline"),
]

webhook_urlpatterns = [
    path("stellantis/remote/", views.webhook, name="stellantis-webhook"),
]
