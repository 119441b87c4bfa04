"""Only the simulator (and the admin), mounted where the project mounts them: the tests do not
depend on other apps' URLs, which are being written alongside."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path(f"{settings.SIMULATOR_PATH}/", include("simulator.urls")),
]
