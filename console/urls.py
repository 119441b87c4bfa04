from django.urls import path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    # Before remotes' own "actions/…" pages in the root URLconf: this one is the list itself.
    path("actions/", views.action_list, name="action-list"),
    path("map/", views.fleet_map, name="fleet-map"),
    path("map/positions.json", views.map_positions, name="fleet-map-positions"),
]
