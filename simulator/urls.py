"""The simulated Fleet Owner API; the project mounts it at settings.SIMULATOR_PATH (…/connectedcar/v3/)."""

from django.urls import path, re_path

from . import views

app_name = "simulator"

_fleet = "fleets/<str:fleet_id>"
_vehicle = f"{_fleet}/vehicles/<str:vehicle_id>"
_callback = f"{_fleet}/remote/callbacks/<str:callback_id>"
_remotes = f"{_vehicle}/callbacks/<str:callback_id>/remotes"

urlpatterns = [
    path("fleets", views.fleets, name="fleets"),
    path(_fleet, views.fleet, name="fleet"),
    path(f"{_fleet}/vehicles", views.vehicles, name="vehicles"),
    path(_vehicle, views.vehicle, name="vehicle"),
    path(f"{_vehicle}/status", views.vehicle_status, name="vehicle-status"),
    path(f"{_fleet}/remote/callbacks", views.callbacks, name="callbacks"),
    path(_callback, views.callback, name="callback"),
    path(f"{_callback}/status", views.callback_status, name="callback-status"),
    path(_remotes, views.remotes, name="remotes"),
    path(f"{_remotes}/<str:action_id>", views.remote, name="remote"),
    # Anything else under the simulator answers like the vendor: a JSON 404, not an HTML page.
    re_path(r"^(?P<rest>.*)$", views.not_found, name="not-found"),
]
