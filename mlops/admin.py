"""Admin for the model registry, training jobs and feature snapshots.

Versions are written by training only (artifacts and metrics must match); the admin lists them
and lets an operator change the status. Jobs and snapshots are read-only.
"""

from django.contrib import admin

from mlops.models import FeatureSnapshot, ModelVersion, TrainingJob


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "kind", "strategy", "version", "status", "timeframe", "train_end", "created_at")
    list_filter = ("status", "kind", "strategy")
    search_fields = ("owner__username", "strategy", "features_hash", "artifact_sha256")
    readonly_fields = (
        "owner", "kind", "strategy", "version", "exchange", "symbols", "timeframe", "train_start", "train_end",
        "horizon_hours", "features", "features_hash", "params", "metrics", "importance", "n_rows",
        "artifact_path", "artifact_sha256", "promotion", "created_at", "activated_at", "retired_at",
    )  # fmt: skip

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "kind", "strategy", "status", "progress", "source", "created_at", "finished_at")
    list_filter = ("status", "kind", "source")
    search_fields = ("owner__username", "strategy")
    readonly_fields = [f.name for f in TrainingJob._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(FeatureSnapshot)
class FeatureSnapshotAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "bot_id", "kind", "symbol", "time", "score", "outcome")
    list_filter = ("kind",)
    search_fields = ("symbol", "owner__username", "deal_id")
    readonly_fields = [f.name for f in FeatureSnapshot._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False
