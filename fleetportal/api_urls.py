from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from callbacks import api as callbacks_api
from remotes import api as remotes_api
from vehicles import api as vehicles_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("fleets/", vehicles_api.FleetList.as_view(), name="api-fleet-list"),
    path("fleets/<str:fleet_id>/", vehicles_api.FleetDetail.as_view(), name="api-fleet-detail"),
    path("vehicles/", vehicles_api.VehicleList.as_view(), name="api-vehicle-list"),
    path("vehicles/<str:vin>/", vehicles_api.VehicleDetail.as_view(), name="api-vehicle-detail"),
    path("vehicles/<str:vin>/remotes/", remotes_api.VehicleRemotes.as_view(), name="api-vehicle-remotes"),
    path("remotes/", remotes_api.RemoteActionList.as_view(), name="api-remote-list"),
    path("remotes/<uuid:pk>/", remotes_api.RemoteActionDetail.as_view(), name="api-remote-detail"),
    path("remotes/<uuid:pk>/approve/", remotes_api.ApproveRemoteAction.as_view(), name="api-remote-approve"),
    path("remotes/<uuid:pk>/reject/", remotes_api.RejectRemoteAction.as_view(), name="api-remote-reject"),
    path("remotes/<uuid:pk>/cancel/", remotes_api.CancelRemoteAction.as_view(), name="api-remote-cancel"),
    path("callbacks/", callbacks_api.CallbackList.as_view(), name="api-callback-list"),
    path("callbacks/<int:pk>/", callbacks_api.CallbackDetail.as_view(), name="api-callback-detail"),
    path("callbacks/<int:pk>/status/", callbacks_api.CallbackStatusView.as_view(), name="api-callback-status"),
    path("", include("bulk.api_urls")),
    path("", include("pushes.api_urls")),
]
