from django.urls import path

from . import list_views, views

urlpatterns = [
    path("vehicles/", list_views.vehicle_list, name="vehicle-list"),
    path("vehicles/export.csv", list_views.vehicle_export, name="vehicle-export"),
    path("vehicles/<str:vin>/label/", list_views.vehicle_label, name="vehicle-label"),
    path("vehicles/<str:vin>/", views.vehicle_detail, name="vehicle-detail"),
    path("vehicles/<str:vin>/remote/<str:member>/", views.vehicle_remote, name="vehicle-remote"),
]
