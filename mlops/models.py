"""Models of the ML ops app: the model registry, training jobs and decision feature snapshots.

Models are **per user** (``OwnedModel``: reached only through ``X.objects.for_user(user)``): a
user trains, activates and rolls back their own models, and their bots are served by their own
active versions. The artifact of a version is a file in XGBoost's own JSON format under
``var/models/`` whose sha256 is stored on the row; the pure core loads it by hash-checked path
(:mod:`mlops.core.artifacts`) — nothing is ever unpickled from the database.

* :class:`ModelVersion` — one trained model: kind (``confidence``, ``recovery_odds`` ...),
  strategy, version number, training window, features (list + hash), hyper-parameters,
  walk-forward metrics, feature importance, artifact path + sha256, status
  ``candidate`` / ``active`` / ``retired`` (at most one active per owner, kind and strategy),
  and the promotion decision with its numbers.
* :class:`TrainingJob` — one training request (page, API, command or the weekly beat):
  ``queued`` → ``running`` (progress 0..1 with a message) → ``done`` (its version) or
  ``failed`` (the error).
* :class:`FeatureSnapshot` — the features a model saw when it scored a bot's decision, kept so
  real outcomes become labels later (``outcome`` is filled when the deal closes).
"""

from __future__ import annotations

from django.db import models

from accounts.models import OwnedModel


class ModelKind(models.TextChoices):
    """What a model predicts (issue 12 §3). Classifiers give a probability in [0, 1]."""

    CONFIDENCE = "confidence", "Confidence (take profit within 48 h)"
    RECOVERY_ODDS = "recovery_odds", "Recovery odds (drawdown back to break-even)"
    DCA_SPEND = "dca_spend", "DCA spend (fraction of max spend needed)"
    SAFU_EXIT = "safu_exit", "SAFU exit (exiting now beats holding)"
    SUCCESS = "success", "Detector success (TP before SL)"
    TAKE_PROFIT = "take_profit", "Detector take profit (best move, %)"
    STOP_LOSS = "stop_loss", "Detector stop loss (worst adverse move, %)"
    SIZE_MULTIPLIER = "size_multiplier", "Detector size multiplier (0.5–1.5)"
    HOLD_HOURS = "hold_hours", "Detector hold time (hours)"


CLASSIFIER_KINDS = frozenset({"confidence", "recovery_odds", "safu_exit", "success"})


class ModelVersion(OwnedModel):
    """One trained model version of a user (see module doc)."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    kind = models.CharField(max_length=24, choices=ModelKind.choices)
    strategy = models.CharField(max_length=40, help_text="strategy whose outcomes it learned, e.g. smart_dca")
    version = models.PositiveIntegerField(help_text="1, 2, ... per owner, kind and strategy")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    exchange = models.CharField(max_length=32, default="binance")
    symbols = models.JSONField(default=list, help_text="ccxt symbols trained on")
    timeframe = models.CharField(max_length=8, default="1h")
    train_start = models.DateTimeField(help_text="open time of the first training candle (UTC)")
    train_end = models.DateTimeField(help_text="open time of the last training candle (UTC)")
    horizon_hours = models.FloatField(default=0.0, help_text="longest label horizon = the embargo")
    features = models.JSONField(default=list, help_text="ordered feature names")
    features_hash = models.CharField(max_length=64)
    params = models.JSONField(default=dict, help_text="XGBoost hyper-parameters and label settings")
    metrics = models.JSONField(default=dict, help_text="walk-forward metrics: per fold and pooled")
    importance = models.JSONField(default=dict, help_text="feature -> gain importance")
    n_rows = models.PositiveIntegerField(default=0)
    artifact_path = models.CharField(max_length=255, help_text="XGBoost JSON file, relative to var/models/")
    artifact_sha256 = models.CharField(max_length=64)
    promotion = models.JSONField(default=dict, blank=True, help_text="{promoted, reason, candidate, active, margin}")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "kind", "strategy", "version"], name="mlops_version_unique"),
            models.UniqueConstraint(
                fields=["owner", "kind", "strategy"],
                condition=models.Q(status="active"),
                name="mlops_one_active_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.strategy} v{self.version} ({self.status})"

    @property
    def is_classifier(self) -> bool:
        return self.kind in CLASSIFIER_KINDS

    @property
    def headline_metric(self) -> tuple[str, float | None]:
        """``("auc", 0.61)`` for classifiers, ``("mae", 0.12)`` for regressors (pooled walk-forward)."""
        name = "auc" if self.is_classifier else "mae"
        value = (self.metrics or {}).get("pooled", {}).get(name)
        return name, value


class TrainingJob(OwnedModel):
    """One training run (see module doc). ``progress`` is a fraction 0..1."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Source(models.TextChoices):
        PAGE = "page"
        API = "api"
        COMMAND = "command"
        SCHEDULE = "schedule"

    kind = models.CharField(max_length=24, choices=ModelKind.choices)
    strategy = models.CharField(max_length=40)
    exchange = models.CharField(max_length=32, default="binance")
    symbols = models.JSONField(default=list)
    timeframe = models.CharField(max_length=8, default="1h")
    start = models.DateTimeField()
    end = models.DateTimeField()
    options = models.JSONField(default=dict, blank=True, help_text="folds, label settings, hyper-parameters")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PAGE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"train {self.kind}/{self.strategy} #{self.pk} ({self.status})"


class FeatureSnapshot(OwnedModel):
    """Features a model scored for a bot decision; ``outcome`` (1/0 or a number) once known."""

    bot_id = models.BigIntegerField(db_index=True)
    version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="snapshots")
    kind = models.CharField(max_length=24, choices=ModelKind.choices)
    symbol = models.CharField(max_length=40)
    time = models.DateTimeField(help_text="open time of the candle the decision was made on")
    deal_id = models.CharField(max_length=64, blank=True)
    features_hash = models.CharField(max_length=64)
    values = models.JSONField(help_text="feature values in the version's feature order (null = NaN)")
    score = models.FloatField()
    outcome = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["owner", "kind", "time"])]
        constraints = [
            models.UniqueConstraint(fields=["bot_id", "kind", "symbol", "time"], name="mlops_snapshot_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.symbol} @{self.time:%Y-%m-%d %H:%M} = {self.score:.3f}"
