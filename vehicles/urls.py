from django.urls import path

from . import views

urlpatterns = [
    path("vehicles/", views.vehicle_list, name="vehicle-list"),
    path("vehicles/<str:vin>/", views.vehicle_detail, name="vehicle-detail"),
    path("vehicles/<str:vin>/remote/<str:member>/", views.vehicle_remote, name="vehicle-remote"),
]
