"""ML Monitor pages (namespace ``ml``), included under ``ml/`` by market7/urls.py."""

from django.urls import path

from mlops import views

app_name = "ml"

urlpatterns = [
    path("", views.ml_monitor, name="monitor"),
    path("train/", views.ml_train, name="train"),
    path("rollback/", views.ml_rollback, name="rollback"),
    path("versions/<int:pk>/", views.ml_version_detail, name="version"),
    path("versions/<int:pk>/activate/", views.ml_version_activate, name="activate"),
    path("versions/<int:pk>/deactivate/", views.ml_version_deactivate, name="deactivate"),
    path("jobs/<int:pk>/_progress/", views.ml_job_progress, name="job-progress"),
]
