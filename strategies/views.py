"""Backtest pages: start a run from a form, follow its progress (HTMX polling), read its
metrics, equity and drawdown curves and trades; the list of past runs.

Thin views: ``strategies.services.backtests.backtest_create`` validates, saves and enqueues the
run (Celery, research queue); reads go through ``BacktestRun.objects.for_user(user)`` — another
user's run is a 404. Starting a run needs ``strategies.add_backtestrun`` (viewers: 403).
"""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from strategies.charts import axis_precision, curves
from strategies.forms import BacktestForm
from strategies.models import BacktestRun
from strategies.selectors import (
    COMPARE_MAX,
    compare_rows,
    decision_log_page,
    metric_rows,
    open_deal_rows,
    pair_rows,
    param_rows,
    run_chart,
    run_for_user,
    runs_for_compare,
    trades_csv_rows,
    trades_page,
)

ADD_PERM = "strategies.add_backtestrun"
PAGE_SIZE = 30
TERMINAL = (BacktestRun.Status.DONE, BacktestRun.Status.FAILED)


def _is_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _run_or_404(request: HttpRequest, pk: int) -> BacktestRun:
    return run_for_user(request.user, pk)


@login_required
@require_GET
def backtest_list(request: HttpRequest) -> HttpResponse:
    """``/backtests/``: the user's runs, newest first."""
    qs = BacktestRun.objects.for_user(request.user).order_by("-created_at", "-id")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page") or 1)
    for run in page.object_list:
        run.progress_pct = round((run.progress or 0) * 100)
    return render(
        request,
        "strategies/list.html",
        {
            "page": page,
            "runs": page.object_list,
            "can_add": request.user.has_perm(ADD_PERM),
            "compare_max": COMPARE_MAX,
        },
    )


def _service_errors(exc: Exception) -> dict[str, str]:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        return {str(k): str(v) for k, v in errors.items()}
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return {k: "; ".join(v) for k, v in exc.message_dict.items()}
    if isinstance(exc, ValidationError):
        return {"__all__": "; ".join(exc.messages)}
    return {"__all__": str(exc)}


@login_required
@require_http_methods(["GET", "POST"])
def backtest_new(request: HttpRequest) -> HttpResponse:
    """``/backtests/new/``: the form; a valid POST calls ``backtest_create`` and redirects to the
    run page. Invalid input: field errors and nothing saved."""
    if not request.user.has_perm(ADD_PERM):
        raise PermissionDenied("your role cannot run backtests")
    if request.method == "POST":
        form = BacktestForm(request.POST)
        if form.is_valid():
            try:
                from strategies.services.backtests import backtest_create
            except ImportError:
                form.add_error(None, "Backtests are not available yet (strategies.services.backtests is missing).")
            else:
                data = form.cleaned_data
                try:
                    run = backtest_create(
                        user=request.user,
                        strategy=data["strategy"],
                        symbols=list(data["symbols"]),
                        timeframe=data["timeframe"],
                        start=data["start_dt"],
                        end=data["end_dt"],
                        capital=data["capital"],
                        params=form.cleaned_params,
                        fee_bps=data["fee_bps"],
                        slippage_bps=data["slippage_bps"],
                        name=data.get("name") or "",
                    )
                except PermissionDenied:
                    raise
                except (ValidationError, ValueError, KeyError) as exc:
                    form.add_service_errors(_service_errors(exc))
                except Exception as exc:  # a service-specific error class with .errors
                    if not hasattr(exc, "errors"):
                        raise
                    form.add_service_errors(_service_errors(exc))
                else:
                    messages.success(request, f"Backtest #{run.pk} queued.")
                    return redirect("backtests:detail", run.pk)
    else:
        # prefill from the query (Scan Review's "Backtest this setup": strategy, symbols, timeframe, start, end)
        initial = {k: request.GET.get(k) for k in ("strategy", "timeframe", "start", "end") if request.GET.get(k)}
        if request.GET.getlist("symbols"):
            initial["symbols"] = request.GET.getlist("symbols")
        form = BacktestForm(initial=initial)
    return render(request, "strategies/form.html", {"form": form})


@login_required
@require_GET
def backtest_params(request: HttpRequest) -> HttpResponse:
    """``/backtests/_params/?strategy=``: the strategy's parameter fields (HTMX on change)."""
    form = BacktestForm(initial={"strategy": request.GET.get("strategy") or ""})
    return render(request, "trading/bots/_params.html", {"form": form})


def _progress_context(run: BacktestRun) -> dict:
    run.progress_pct = round(min(max(run.progress or 0, 0), 1) * 100)
    return {"run": run, "polling": run.status not in TERMINAL}


def _decisions_context(request: HttpRequest, run: BacktestRun) -> dict:
    """The decision log section: ``?rule=&outcome=&dsymbol=&dpage=``."""
    flt = {k: request.GET.get(q) or "" for k, q in (("rule", "rule"), ("outcome", "outcome"), ("symbol", "dsymbol"))}
    page, facets = decision_log_page(run, page=request.GET.get("dpage") or 1, **flt)
    counts = (run.report or {}).get("decisions") or {}
    return {"decisions": page, "decision_facets": facets, "decision_filter": flt, "decision_counts": counts}


@login_required
@require_GET
def backtest_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``/backtests/<pk>/``: progress while it runs; then metrics, charts, per-market table and
    the closed deals a page at a time (``?page=``, ``?symbol=``; an HTMX request targeting
    ``#bt-trades`` gets only that section) and the decision log (``?rule=&outcome=&dsymbol=
    &dpage=``; HTMX target ``#bt-decisions``)."""
    run = _run_or_404(request, pk)
    symbol = request.GET.get("symbol") or ""
    trades = {"trades": trades_page(run, page=request.GET.get("page") or 1, symbol=symbol), "trades_symbol": symbol}
    if _is_fragment(request) and request.htmx.target == "bt-trades":
        response = render(request, "strategies/_trades.html", {"run": run} | trades)
        patch_vary_headers(response, ("HX-Request",))
        return response
    decisions = _decisions_context(request, run)
    if _is_fragment(request) and request.htmx.target == "bt-decisions":
        response = render(request, "strategies/_decisions.html", {"run": run} | decisions)
        patch_vary_headers(response, ("HX-Request",))
        return response
    equity, drawdown = curves(run.equity_curve)
    open_deals, open_pnl = open_deal_rows(run)
    context = (
        _progress_context(run)
        | trades
        | decisions
        | {
            "metrics": metric_rows(run.metrics or run.report.get("metrics") or {}, run.quote),
            "params": param_rows(run.params or {}),
            "pairs": pair_rows(run),
            "per_strategy": [
                {"name": name, **row} for name, row in sorted(((run.report or {}).get("strategies") or {}).items())
            ],
            "open_deals": open_deals,
            "open_pnl": open_pnl,
            "equity": equity,
            "drawdown": drawdown,
            "equity_precision": axis_precision([p["value"] for p in equity], min_decimals=2),
            "drawdown_precision": axis_precision([p["value"] for p in drawdown] + [0.0]),
        }
    )
    return render(request, "strategies/detail.html", context)


@login_required
@require_GET
def backtest_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """``/backtests/<pk>/_progress/``: the progress fragment. It polls itself every second
    (``hx-trigger="every 1s"``) while the run is queued or running; when a poll finds the run
    finished it answers ``HX-Refresh: true`` so the page reloads with the results."""
    run = _run_or_404(request, pk)
    context = _progress_context(run)
    response = render(request, "strategies/_progress.html", context)
    if _is_fragment(request) and not context["polling"] and request.GET.get("poll") == "1":
        response["HX-Refresh"] = "true"
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_GET
def backtest_chart(request: HttpRequest, pk: int) -> JsonResponse:
    """``/backtests/<pk>/chart.json?symbol=``: candles and trade markers of one market of the
    run (:func:`strategies.selectors.run_chart`); a symbol the run did not trade is a 400."""
    run = _run_or_404(request, pk)
    try:
        return JsonResponse(run_chart(run, request.GET.get("symbol") or None))
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)


@login_required
@require_GET
def backtest_trades_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """``/backtests/<pk>/trades.csv``: every closed deal (columns
    :data:`strategies.selectors.TRADE_CSV_COLUMNS`), as an attachment."""
    run = _run_or_404(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}-trades.csv"'
    csv.writer(response, lineterminator="\n").writerows(trades_csv_rows(run))
    return response


@login_required
@require_GET
def backtest_report_json(request: HttpRequest, pk: int) -> JsonResponse:
    """``/backtests/<pk>/report.json``: the stored report with the run's identity and inputs
    (``{"id", "name", "status", "created_at", "finished_at", "exchange", "report"}``), as an
    attachment."""
    run = _run_or_404(request, pk)
    body = {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "exchange": run.exchange,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "report": run.report,
    }
    response = JsonResponse(body, json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}-report.json"'
    return response


@login_required
@require_GET
def backtest_compare(request: HttpRequest) -> HttpResponse:
    """``/backtests/compare/?ids=1&ids=2``: 2 to ``COMPARE_MAX`` of the user's runs side by side
    (metrics table, overlaid equity curves). A bad selection re-shows the form with the reason
    (400); another user's run id is a 404."""
    ids = request.GET.getlist("ids")
    try:
        runs = runs_for_compare(request.user, ids)
    except ValueError as exc:
        return render(request, "strategies/compare.html", {"error": str(exc), "compare_max": COMPARE_MAX}, status=400)
    return render(request, "strategies/compare.html", {"runs": runs, "compare_max": COMPARE_MAX} | compare_rows(runs))
