from django.urls import path

from . import views

urlpatterns = [
    path("", views.bulk_list, name="bulk-list"),
    path("new/", views.new, name="bulk-new"),
    path("<uuid:pk>/", views.detail, name="bulk-detail"),
    path("<uuid:pk>/progress/", views.progress_fragment, name="bulk-progress"),
    path("<uuid:pk>/cancel/", views.cancel, name="bulk-cancel"),
    path("<uuid:pk>/retry-failed/", views.retry_failed, name="bulk-retry-failed"),
]
