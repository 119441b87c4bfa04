from django.urls import path

from . import api

urlpatterns = [
    path("bulk/", api.BulkList.as_view(), name="api-bulk-list"),
    path("bulk/<uuid:pk>/", api.BulkDetail.as_view(), name="api-bulk-detail"),
    path("bulk/<uuid:pk>/cancel/", api.BulkCancel.as_view(), name="api-bulk-cancel"),
    path("bulk/<uuid:pk>/retry-failed/", api.BulkRetryFailed.as_view(), name="api-bulk-retry-failed"),
]
