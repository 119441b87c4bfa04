from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path, re_path

from fleetportal import api
from remotes.urls import webhook_urlpatterns


def healthz(request):
    return JsonResponse({"ok": True})


# Django's password pages: set a password from an invitation (password_reset_confirm), reset a
# forgotten one, change one's own. Login and logout are ours, below.
password_urlpatterns = [p for p in auth_urls.urlpatterns if p.name not in ("login", "logout")]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", include(password_urlpatterns)),
    path("healthz", healthz, name="healthz"),  # liveness: touches nothing
    path("", include("ops.urls")),  # /healthz/ready (readiness) and /metrics
    path("api/v1/", include("fleetportal.api_urls")),
    re_path(r"^api/", api.not_found),  # after every API route: unknown paths get a problem document
    path("webhooks/", include(webhook_urlpatterns)),
    path("callbacks/", include("callbacks.urls")),
    path("org/", include("accounts.urls")),
    path("bulk/", include("bulk.urls")),
    path("", include("console.urls")),  # the overview is the landing page
    path("", include("vehicles.urls")),
    path("actions/", include("remotes.urls")),
]

handler500 = api.server_error

# The simulator exists only when asked (SIMULATOR_ENABLED, on by default only in a DEBUG demo).
if settings.SIMULATOR_ENABLED:
    urlpatterns.append(path(f"{settings.SIMULATOR_PATH}/", include("simulator.urls")))
