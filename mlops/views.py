"""ML Monitor pages (namespace ``ml``, mounted at ``/ml/``): the user's models and versions,
a version's walk-forward report, live accuracy and feature drift, training jobs with
progress, the "Train a model" form and the registry buttons.

Thin views: reads through :mod:`mlops.selectors` (``X.objects.for_user(user)``: another user's
version or job is a 404), writes through :mod:`mlops.services.registry` and
:func:`mlops.services.training.training_job_create`. Training needs ``mlops.add_trainingjob``
and the registry buttons ``mlops.change_modelversion`` (traders and admins; viewers get 403).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mlops import selectors as sel
from mlops.forms import TrainForm
from mlops.models import ModelKind, TrainingJob
from mlops.services.registry import RegistryError, version_activate, version_deactivate, version_rollback
from mlops.services.training import TrainingError, training_job_create

TRAIN_PERM = "mlops.add_trainingjob"
OPERATE_PERM = "mlops.change_modelversion"


def _monitor_context(request: HttpRequest, form: TrainForm | None = None) -> dict:
    user = request.user
    groups = sel.versions_grouped(user)
    for g in groups:
        g["live"] = sel.live_accuracy(g["active"])[-8:] if g["active"] else []
    return {
        "groups": groups,
        "jobs": sel.jobs_for_user(user),
        "form": form or TrainForm(),
        "can_train": user.has_perm(TRAIN_PERM),
        "can_operate": user.has_perm(OPERATE_PERM),
    }


@login_required
@require_GET
def ml_monitor(request: HttpRequest) -> HttpResponse:
    """``/ml/``: models grouped by (kind, strategy) with each version's status, window, headline
    metric and promotion decision; the registry buttons; training jobs; the training form."""
    return render(request, "mlops/monitor.html", _monitor_context(request))


@login_required
@require_http_methods(["POST"])
def ml_train(request: HttpRequest) -> HttpResponse:
    """POST ``/ml/train/``: validate the form and call ``training_job_create`` (queued on the
    research queue); redirect to ``/ml/`` with a message. Invalid input: the monitor again with
    the errors (status 400) and nothing saved."""
    if not request.user.has_perm(TRAIN_PERM):
        raise PermissionDenied("your role cannot train models")
    form = TrainForm(request.POST)
    if form.is_valid():
        try:
            job = training_job_create(user=request.user, source=TrainingJob.Source.PAGE, **form.service_inputs())
        except TrainingError as exc:
            form.add_service_error(str(exc))
        else:
            messages.success(request, f"Training job #{job.pk} queued ({job.kind} / {job.strategy}).")
            return redirect("ml:monitor")
    return render(request, "mlops/monitor.html", _monitor_context(request, form), status=400)


def _back(request: HttpRequest) -> HttpResponse:
    """Redirect to the POSTed ``next`` (a local path) or ``/ml/``; an HTMX request gets
    ``HX-Redirect`` so the whole page (and its messages) reloads."""
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = ""
    target = target or reverse("ml:monitor")
    if getattr(request, "htmx", None):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


def _operate(request: HttpRequest, func, success: str, **kwargs) -> HttpResponse:
    if not request.user.has_perm(OPERATE_PERM):
        raise PermissionDenied("your role cannot change model versions")
    try:
        version = func(user=request.user, **kwargs)
    except RegistryError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success.format(v=version))
    return _back(request)


@login_required
@require_POST
def ml_version_activate(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``/ml/versions/<pk>/activate/``: make the version the active one of its model."""
    version = sel.version_for_user(request.user, pk)
    return _operate(request, version_activate, "{v.kind}/{v.strategy} v{v.version} is active.", version=version)


@login_required
@require_POST
def ml_version_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """POST ``/ml/versions/<pk>/deactivate/``: retire the active version (rule-based fallback)."""
    version = sel.version_for_user(request.user, pk)
    return _operate(
        request,
        version_deactivate,
        "{v.kind}/{v.strategy} v{v.version} deactivated; the rule-based provider serves.",
        version=version,
    )


@login_required
@require_POST
def ml_rollback(request: HttpRequest) -> HttpResponse:
    """POST ``/ml/rollback/`` (``kind``, ``strategy``): re-activate the previously active version."""
    kind, strategy = request.POST.get("kind") or "", request.POST.get("strategy") or ""
    if kind not in ModelKind.values or not strategy:
        messages.error(request, "choose a model kind and strategy to roll back")
        return _back(request)
    return _operate(
        request,
        version_rollback,
        "{v.kind}/{v.strategy} rolled back to v{v.version}.",
        owner=request.user,
        kind=kind,
        strategy=strategy,
    )


@login_required
@require_GET
def ml_version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``/ml/versions/<pk>/``: per-fold metrics, feature importance (top 20), calibration
    plot, gated-vs-ungated trading, live accuracy by week, feature drift (PSI)."""
    version = sel.version_for_user(request.user, pk)
    live = sel.live_accuracy(version)
    chart = [
        {"time": int(w["week"].timestamp()), "value": w["accuracy"] if version.is_classifier else w["mae"]}
        for w in live
    ]
    context = {
        "v": version,
        "headline": version.headline_metric,
        "folds": sel.fold_rows(version.metrics, classifier=version.is_classifier),
        "importance": sel.importance_rows(version.importance),
        "calibration": sel.calibration_chart(version.metrics),
        "trading": sel.trading_rows(version.metrics),
        "live": live,
        "live_chart": chart,
        "drift": sel.feature_drift(version),
        "has_bins": bool((version.params or {}).get("feature_bins")),
        "can_operate": request.user.has_perm(OPERATE_PERM),
    }
    return render(request, "mlops/version.html", context)


@login_required
@require_GET
def ml_job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """``/ml/jobs/<pk>/_progress/``: one training job's row fragment; it polls itself every 2 s
    (``hx-trigger="every 2s"``) while the job is queued or running."""
    job = get_object_or_404(TrainingJob.objects.for_user(request.user).select_related("version"), pk=pk)
    job.progress_pct = sel.progress_pct(job.progress)
    response = render(request, "mlops/_job.html", {"job": job})
    patch_vary_headers(response, ("HX-Request",))
    return response
