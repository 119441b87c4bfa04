from django.urls import path

from callbacks import api as callbacks_api
from remotes import api as remotes_api

urlpatterns = [
    path("vehicles/<str:vin>/remotes/", remotes_api.VehicleRemotes.as_view(), name="api-vehicle-remotes"),
    path("remotes/<uuid:pk>/", remotes_api.RemoteActionDetail.as_view(), name="api-remote-detail"),
    path("callbacks/", callbacks_api.CallbackList.as_view(), name="api-callback-list"),
    path("callbacks/<int:pk>/", callbacks_api.CallbackDetail.as_view(), name="api-callback-detail"),
    path("callbacks/<int:pk>/status/", callbacks_api.CallbackStatusView.as_view(), name="api-callback-status"),
]
