"""REST API of the ML models (under /api/v1/), per user: a user's model versions and training
jobs are their own (``X.objects.for_user``: another user's is a 404).

- ``GET /api/v1/models/?kind=&strategy=&status=`` — versions, newest first
- ``GET /api/v1/models/{id}/`` — one version with metrics, importance, features, params
- ``POST /api/v1/models/{id}/activate/`` / ``deactivate/`` — the registry (409 when refused)
- ``POST /api/v1/models/rollback/`` (``{kind, strategy}``) — back to the previous active version
- ``POST /api/v1/models/train/`` — queue a training job (201 with the job; 400 with field errors)
- ``GET /api/v1/models/training-jobs/?status=&kind=``, ``GET /api/v1/models/training-jobs/{id}/``

Writes need ``mlops.change_modelversion`` (activate, deactivate, rollback) or
``mlops.add_trainingjob`` (train): traders and admins; viewers get 403. Writes go through
:mod:`mlops.services.registry` and :func:`mlops.services.training.training_job_create`.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response

from accounts.mixins import OwnedViewSetMixin
from mlops.forms import STRATEGY_CHOICES, day_end, day_start, training_error_field
from mlops.models import ModelKind, ModelVersion, TrainingJob
from mlops.services.registry import RegistryError, version_activate, version_deactivate, version_rollback
from mlops.services.training import TrainingError, training_job_create

TRAIN_PERM = "mlops.add_trainingjob"
OPERATE_PERM = "mlops.change_modelversion"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the registry refused the change"
    default_code = "conflict"


class HeadlineSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='"auc" (classifiers) or "mae" (regressors)')
    value = serializers.FloatField(allow_null=True, help_text="pooled walk-forward value; null when not stored")


class ModelVersionSerializer(serializers.ModelSerializer):
    headline = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "kind", "strategy", "version", "status", "exchange", "symbols", "timeframe", "train_start", "train_end",
            "n_rows", "headline", "promotion", "created_at", "activated_at", "retired_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(HeadlineSerializer)
    def get_headline(self, obj) -> dict:
        name, value = obj.headline_metric
        return {"name": name, "value": value}


class ModelVersionDetailSerializer(ModelVersionSerializer):
    metrics = serializers.JSONField(
        read_only=True,
        help_text='walk-forward metrics: {"pooled": {...}, "folds": [...], "calibration": {...}, "trading": {...}}',
    )
    importance = serializers.JSONField(read_only=True, help_text="feature -> gain importance")
    features = serializers.JSONField(read_only=True, help_text="ordered feature names")
    params = serializers.JSONField(read_only=True, help_text="XGBoost hyper-parameters and label settings")

    class Meta(ModelVersionSerializer.Meta):
        fields = [
            *ModelVersionSerializer.Meta.fields,
            "horizon_hours", "features", "features_hash", "params", "metrics", "importance", "artifact_sha256",
        ]  # fmt: skip
        read_only_fields = fields


class TrainingJobSerializer(serializers.ModelSerializer):
    version = serializers.PrimaryKeyRelatedField(read_only=True, help_text="the trained version's id once done")

    class Meta:
        model = TrainingJob
        fields = [
            "id", "kind", "strategy", "exchange", "symbols", "timeframe", "start", "end", "options", "source", "status",
            "progress", "message", "error", "version", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class RollbackSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ModelKind.choices)
    strategy = serializers.CharField(max_length=40)


class TrainSerializer(serializers.Serializer):
    """Inputs of a training job (as the ML Monitor's form)."""

    kind = serializers.ChoiceField(choices=ModelKind.choices)
    strategy = serializers.ChoiceField(choices=STRATEGY_CHOICES)
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=50,
        help_text='ccxt symbols with stored candles, e.g. ["BTC/USDT"]',
    )
    timeframe = serializers.CharField(default="1h", max_length=8)
    start = serializers.DateField(help_text="first day, UTC (from 00:00)")
    end = serializers.DateField(help_text="last day, UTC (inclusive, to 23:00)")
    folds = serializers.IntegerField(min_value=2, max_value=10, default=4, help_text="purged walk-forward folds")
    exchange = serializers.CharField(default="binance", max_length=32)

    def validate(self, attrs):
        if attrs["end"] < attrs["start"]:
            raise ValidationError({"end": ["must be on or after the start"]})
        return attrs


def _registry(func, **kwargs):
    try:
        return func(**kwargs)
    except RegistryError as exc:
        raise Conflict(str(exc)) from None


def _require(request, perm: str, what: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"your role cannot {what}")


class ModelVersionViewSet(OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your trained model versions, newest first; filter with ``kind``, ``strategy`` and
    ``status`` (candidate, active, retired). ``headline`` is the pooled walk-forward AUC
    (classifiers) or MAE (regressors)."""

    queryset = ModelVersion.objects.all()
    serializer_class = ModelVersionSerializer
    filterset_fields = ["kind", "strategy", "status"]
    lookup_value_regex = r"\d+"

    def get_serializer_class(self):
        return ModelVersionDetailSerializer if self.action == "retrieve" else ModelVersionSerializer

    def retrieve(self, request, *args, **kwargs):
        """One of your model versions with its walk-forward metrics (per fold and pooled,
        calibration, gated-vs-ungated trading), feature importance, features and parameters."""
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(summary="Activate a model version", request=None, responses=ModelVersionDetailSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Make this version the active one of its kind and strategy; the previous active
        version is retired. 409 when it already is active; 403 for viewers."""
        _require(request, OPERATE_PERM, "change model versions")
        version = _registry(version_activate, version=self.get_object(), user=request.user)
        return Response(ModelVersionDetailSerializer(version).data)

    @extend_schema(summary="Deactivate a model version", request=None, responses=ModelVersionDetailSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        """Retire this active version: bots of its kind fall back to the rule-based provider.
        409 when it is not active; 403 for viewers."""
        _require(request, OPERATE_PERM, "change model versions")
        version = _registry(version_deactivate, version=self.get_object(), user=request.user)
        return Response(ModelVersionDetailSerializer(version).data)

    @extend_schema(
        summary="Roll back to the previous active version",
        request=RollbackSerializer,
        responses=ModelVersionDetailSerializer,
        filters=False,
    )
    @action(detail=False, methods=["post"])
    def rollback(self, request):
        """Re-activate the version of ``kind`` / ``strategy`` that was active before the current
        one, and retire the current. 409 when none was ever active before; 403 for viewers."""
        _require(request, OPERATE_PERM, "change model versions")
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = _registry(version_rollback, owner=request.user, user=request.user, **body.validated_data)
        return Response(ModelVersionDetailSerializer(version).data)

    @extend_schema(
        summary="Train a model (queue a training job)",
        request=TrainSerializer,
        responses={201: TrainingJobSerializer},
        filters=False,
    )
    @action(detail=False, methods=["post"])
    def train(self, request):
        """Queue a training job (research queue): candles → features → labels → purged
        walk-forward XGBoost → a candidate version, then the promotion rule. 201 with the job
        (follow it at ``/api/v1/models/training-jobs/{id}/``); 400 with field errors, nothing
        saved; 403 for viewers."""
        _require(request, TRAIN_PERM, "train models")
        body = TrainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        try:
            job = training_job_create(
                user=request.user,
                kind=d["kind"],
                strategy=d["strategy"],
                symbols=list(d["symbols"]),
                timeframe=d["timeframe"],
                start=day_start(d["start"]),
                end=day_end(d["end"]),
                exchange=d["exchange"],
                options={"folds": d["folds"]},
                source=TrainingJob.Source.API,
            )
        except TrainingError as exc:
            raise ValidationError({training_error_field(str(exc)) or "non_field_errors": [str(exc)]}) from None
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)


class TrainingJobViewSet(OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your training jobs, newest first; filter with ``status`` (queued, running, done,
    failed) and ``kind``. ``progress`` is a fraction 0..1 with a ``message``; a failed job has
    its ``error``; a done job names its ``version``."""

    queryset = TrainingJob.objects.all()
    serializer_class = TrainingJobSerializer
    filterset_fields = ["status", "kind"]
    lookup_value_regex = r"\d+"


VIEWSETS = [
    ("models/training-jobs", TrainingJobViewSet, "training-job"),
    ("models", ModelVersionViewSet, "model-version"),
]
