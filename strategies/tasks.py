"""Celery tasks of the strategies app. Thin: take ids, call one service."""

from celery import shared_task


@shared_task(name="strategies.tasks.backtest_run", acks_late=True)
def backtest_run(run_id: int) -> str:
    """Execute backtest run ``run_id`` (queue ``research``); returns its final status."""
    from strategies.services.backtests import backtest_execute

    return backtest_execute(run_id=run_id).status
