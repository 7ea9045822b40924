"""The Procfile's Celery worker, as ``make run`` starts it, after its pool child is killed (issue 15).

A new child loads the models before it reports itself up; Celery's default allows 4 s for that, so on a
busy machine every replacement child was killed in turn and, after one lost child (an OOM kill, a
crash), the worker never ran another task.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
from django.conf import settings
from django.db import connection

from recommender.pipeline.tasks import sweep_stuck_images_task

ROOT = Path(__file__).resolve().parents[1]


def _worker_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("worker:"):
            return line.split(":", 1)[1].strip().replace("-A stylesite ", "-A tests.slow_start ")
    raise AssertionError("no worker process in the Procfile")


@pytest.fixture
def procfile_worker(transactional_db):
    """The Procfile's worker on this run's queues and test database; its children start in 6 s."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "stylesite.settings.base",
        "DATABASE_URL": urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"])),
        "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "STYLESITE_REFINE_QUEUE": settings.STYLESITE_REFINE_QUEUE,
        "STYLESITE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "STYLESITE_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
    }
    process = subprocess.Popen(["bash", "-c", f"exec {_worker_command()}"], cwd=ROOT, env=env,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield psutil.Process(process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_worker_runs_tasks_again_after_its_pool_child_is_killed(procfile_worker):
    # The timeouts bound a hang (a worker that never runs the task); they are not speed checks.
    assert sweep_stuck_images_task.delay().get(timeout=120) == 0
    (child,) = procfile_worker.children()
    child.send_signal(signal.SIGKILL)
    assert sweep_stuck_images_task.delay().get(timeout=120) == 0
    (replacement,) = procfile_worker.children()
    assert replacement.pid != child.pid
