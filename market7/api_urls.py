"""REST API v1: one router that every app registers its viewsets on."""

from django.urls import include, path

urlpatterns = [
    path("", include("trading.api_urls")),
    path("", include("mlops.api_urls")),
]
