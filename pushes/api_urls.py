from django.urls import path

from . import api

urlpatterns = [
    path("webhook-endpoints/", api.EndpointList.as_view(), name="api-webhook-endpoint-list"),
    path("webhook-endpoints/<int:pk>/", api.EndpointDetail.as_view(), name="api-webhook-endpoint-detail"),
    path("webhook-endpoints/<int:pk>/deliveries/", api.EndpointDeliveries.as_view(), name="api-webhook-endpoint-deliveries"),
    path(
        "webhook-endpoints/<int:pk>/deliveries/<int:delivery_id>/replay/", api.ReplayDelivery.as_view(), name="api-webhook-delivery-replay"
    ),
]
