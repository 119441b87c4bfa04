from django.urls import path

from remotes import api as remotes_api

urlpatterns = [
    path("vehicles/<str:vin>/remotes/", remotes_api.VehicleRemotes.as_view(), name="api-vehicle-remotes"),
    path("remotes/<uuid:pk>/", remotes_api.RemoteActionDetail.as_view(), name="api-remote-detail"),
]
