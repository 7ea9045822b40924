"""The project's Celery app, with pool children that take longer to start than Celery's default 4 s
allows (as loading the models does on a busy machine). ``tests/test_worker.py`` runs the Procfile's
worker with ``-A tests.slow_start``."""
import os
import time

from celery.signals import worker_process_init

from stylesite.celery import app

__all__ = ["app"]


@worker_process_init.connect
def slow_start(**_kwargs) -> None:
    time.sleep(float(os.environ.get("STYLESITE_TEST_CHILD_START_SECONDS", "6")))
