"""The Celery app. Settings come from Django's settings (CELERY_* names)."""
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stylesite.settings.base")

app = Celery("stylesite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(related_name="style_tasks")  # recommender/style_tasks.py


@worker_process_init.connect
def warm_up(**_kwargs) -> None:
    """Load the active embedding models once per worker process, before the first task."""
    from recommender.services import warm_up_models

    warm_up_models()
