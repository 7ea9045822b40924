"""The platform itself: the Celery round trip through the real broker, and deploy checks."""
import json
import os
import re
import subprocess
import sys
import threading
import time

import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from recommender.pipeline.tasks import sweep_stuck_images_task
from stylesite.celery import app


def test_celery_round_trip_through_the_real_broker(worker):
    result = sweep_stuck_images_task.apply_async(queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    assert result.get(timeout=30) == 0
    assert result.successful()


# A task that runs until the test lets it finish (the test worker is a thread of this process).
_started, _release = threading.Event(), threading.Event()


@app.task(name="tests.test_platform.hold")
def hold() -> str:
    _started.set()
    _release.wait(60)
    return "released"


def _unacked_task_ids(broker: redis.Redis) -> set[str]:
    """Ids of the tasks the broker has handed out and not yet seen acknowledged (kombu's redis transport)."""
    return {json.loads(raw)[0]["headers"]["id"] for raw in broker.hvals("unacked")}


def test_a_running_task_is_acknowledged_after_it_ends_and_holds_back_the_queue():
    """acks_late: a task a killed worker was running is redelivered. Prefetch 1: a busy worker does not
    sit on queued tasks another worker could run. (A thread pool, so the consumer stays free to prefetch
    while the task runs, as in production's prefork pool.)"""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    _started.clear()
    _release.clear()
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, queues=[queue],
                      shutdown_timeout=30):
        try:
            running = hold.apply_async(queue=queue)
            assert _started.wait(30), "the worker never started the task"
            waiting = [hold.apply_async(queue=queue) for _ in range(3)]
            time.sleep(1)  # give a worker that would prefetch the time to do it
            assert running.id in _unacked_task_ids(broker)  # running, so not acknowledged yet
            assert broker.llen(queue) == 3  # none of the others was reserved by the busy worker
        finally:
            _release.set()
        assert [r.get(timeout=30) for r in (running, *waiting)] == ["released"] * 4
    assert not {running.id, *(r.id for r in waiting)} & _unacked_task_ids(broker)


def test_the_hard_time_limit_ends_a_task_before_the_broker_would_redeliver_it():
    """Redis redelivers an unacknowledged task after the visibility timeout; the hard limit must end
    the first run before that, or a long task would run twice at once. A relation between two
    settings that no test can show in seconds, hence checked as such."""
    conf = app.conf
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]


# Warnings `check --deploy` may give on production settings, each with the reason we accept it.
ACCEPTED_DEPLOY_WARNINGS = {
    # Preloading HSTS is an opt-in a deployer makes once the domain is ready (DJANGO_SECURE_HSTS_PRELOAD).
    "security.W021",
}


def test_check_deploy_on_production_settings_has_no_unexplained_issue():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="stylesite.settings.production",
               DJANGO_SECRET_KEY="x" * 60 + "-production-like-secret-key-for-check",
               DJANGO_ALLOWED_HOSTS="stylesite.example")
    proc = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], check=False,
                          cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    issues = set(re.findall(r"\((\w+\.[EW]\d+)\)", proc.stderr + proc.stdout))
    assert proc.returncode == 0, proc.stderr
    assert issues <= ACCEPTED_DEPLOY_WARNINGS, proc.stderr


def test_collectstatic_on_production_settings_builds_the_manifest(tmp_path):
    """The Docker image runs collectstatic under the production (manifest) storage: every file a static
    file references must exist (a vendored script's ``sourceMappingURL`` to an absent map failed it)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="stylesite.settings.production", DJANGO_SECRET_KEY="build",
               DJANGO_ALLOWED_HOSTS="build", STYLESITE_STATIC_ROOT=str(tmp_path))
    proc = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], check=False,
                          cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())
    assert "styles/chart.umd.min.js" in manifest["paths"]
