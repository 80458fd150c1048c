"""Celery tasks of the ML ops app. Thin: take ids, call one service.

- ``mlops.tasks.train_model(job_id)``: one training job (queue ``research``).
- ``mlops.tasks.retrain_active()``: the scheduled retraining (beat every
  ``MARKET7_ML_RETRAIN_EVERY_S`` s, weekly by default, queue ``research``, expiring).
"""

from celery import shared_task


@shared_task(name="mlops.tasks.train_model", acks_late=True)
def train_model(job_id: int) -> str:
    """Execute training job ``job_id``; returns its final status."""
    from mlops.services.training import training_job_execute

    return training_job_execute(job_id=job_id).status


@shared_task(name="mlops.tasks.retrain_active")
def retrain_active() -> list[int]:
    """Queue a retraining job for every active model version; returns the job ids."""
    from mlops.services.training import retrain_active_models

    return retrain_active_models()
