from django.urls import include, path

from callbacks import api as callbacks_api
from remotes import api as remotes_api

urlpatterns = [
    path("vehicles/<str:vin>/remotes/", remotes_api.VehicleRemotes.as_view(), name="api-vehicle-remotes"),
    path("remotes/<uuid:pk>/", remotes_api.RemoteActionDetail.as_view(), name="api-remote-detail"),
    path("remotes/<uuid:pk>/approve/", remotes_api.ApproveRemoteAction.as_view(), name="api-remote-approve"),
    path("remotes/<uuid:pk>/reject/", remotes_api.RejectRemoteAction.as_view(), name="api-remote-reject"),
    path("remotes/<uuid:pk>/cancel/", remotes_api.CancelRemoteAction.as_view(), name="api-remote-cancel"),
    path("callbacks/", callbacks_api.CallbackList.as_view(), name="api-callback-list"),
    path("callbacks/<int:pk>/", callbacks_api.CallbackDetail.as_view(), name="api-callback-detail"),
    path("callbacks/<int:pk>/status/", callbacks_api.CallbackStatusView.as_view(), name="api-callback-status"),
    path("", include("pushes.api_urls")),
]
