"""The Celery app. Settings come from Django's settings (CELERY_* names)."""
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stylesite.settings.base")

app = Celery("stylesite")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _task_packages() -> list[str]:
    """Installed apps, plus each recommender area (its tasks live in ``recommender/<area>/tasks.py``)."""
    from django.conf import settings

    from recommender.apps import area_packages

    return [*settings.INSTALLED_APPS, *area_packages()]


app.autodiscover_tasks(_task_packages)


@worker_process_init.connect
def warm_up(**_kwargs) -> None:
    """Load the active embedding models once per worker process, before the first task."""
    from recommender.pipeline.services import warm_up_models

    warm_up_models()
