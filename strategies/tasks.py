"""Celery tasks of the strategies app. Thin: take ids, call one service.

- ``strategies.tasks.backtest_run(run_id)``: one backtest run (queue ``research``).
- ``strategies.tasks.optimisation_trial(optimisation_id)``: one hyperopt trial (queue ``research``).
- ``strategies.tasks.scan_watchlists()``: the scheduled scan of every user's watchlist (beat every
  ``MARKET7_SCAN_EVERY_S`` s, queue ``research``, see ``market7.celery``).
"""

from celery import shared_task


@shared_task(name="strategies.tasks.backtest_run", acks_late=True)
def backtest_run(run_id: int) -> str:
    """Execute backtest run ``run_id`` (queue ``research``); returns its final status."""
    from strategies.services.backtests import backtest_execute

    return backtest_execute(run_id=run_id).status


@shared_task(name="strategies.tasks.scan_watchlists", ignore_result=False)
def scan_watchlists(at: str | None = None) -> dict:
    """Scan every user's enabled watchlist markets, then delete scans past the retention
    (beat, every ``MARKET7_SCAN_EVERY_S`` s, queue ``research``). ``at``: ISO time to scan as
    of (default now). Returns the report: stored scan ids, signal count, failed markets
    ``{"user/exchange/symbol": reason}``, scans deleted."""
    from strategies.services.scans import parse_at
    from strategies.services.scheduled_scans import scan_watchlists as run

    return run(at=parse_at(at) if at else None).as_dict()


@shared_task(name="strategies.tasks.optimisation_trial", acks_late=True)
def optimisation_trial(optimisation_id: int) -> int | None:
    """Run one trial of optimisation ``optimisation_id`` (queue ``research``) and enqueue the
    next while trial slots remain; returns the Optuna trial number, or None (no slot left)."""
    from strategies.services.optimisations import optimisation_trial_run

    return optimisation_trial_run(optimisation_id=optimisation_id, chain=True)
