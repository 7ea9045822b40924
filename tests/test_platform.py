"""The platform itself: the Celery round trip through the real broker, and deploy checks."""
import os
import re
import subprocess
import sys

from django.conf import settings

from recommender.pipeline.tasks import sweep_stuck_images_task


def test_celery_round_trip_through_the_real_broker(worker):
    result = sweep_stuck_images_task.apply_async(queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    assert result.get(timeout=30) == 0
    assert result.successful()


def test_celery_reliability_settings():
    from stylesite.celery import app

    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
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
    proc = subprocess.run([sys.executable, "manage.py", "check", "--deploy"],
                          cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    issues = set(re.findall(r"\((\w+\.[EW]\d+)\)", proc.stderr + proc.stdout))
    assert proc.returncode == 0, proc.stderr
    assert issues <= ACCEPTED_DEPLOY_WARNINGS, proc.stderr
