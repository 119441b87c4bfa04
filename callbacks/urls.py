from django.urls import path

from . import views

urlpatterns = [
    path("stellantis/remote/", views.StellantisWebhook.as_view(), name="stellantis-webhook"),
]
