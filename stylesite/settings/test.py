"""Test settings: the real Postgres+pgvector and Redis, isolated per test run.

Each run gets its own test database and Celery queue (suffixed by process id) so that two
runs on one machine never share rows or steal each other's tasks.
"""
import os

from .base import *  # noqa: F403
from .base import CACHES, DATABASES, VAR_DIR

_RUN = os.environ.get("STYLESITE_TEST_RUN", str(os.getpid()))
DEBUG = False
SECRET_KEY = "test-only"
DATABASES["default"]["TEST"] = {"NAME": f"test_stylesite_{_RUN}"}
# Tests run in one process against a throwaway database: no pool (the served stack's pool is
# exercised by tests/test_serving.py through gunicorn).
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
CELERY_TASK_DEFAULT_QUEUE = f"test-{_RUN}"
STYLESITE_REFINE_QUEUE = f"test-{_RUN}-refine"
CACHES["default"]["KEY_PREFIX"] = f"test-{_RUN}"
STATIC_ROOT = None  # static files come from the source folders (WHITENOISE_USE_FINDERS)
MEDIA_ROOT = VAR_DIR / "test-media" / _RUN
STYLESITE_ARTIFACT_DIR = VAR_DIR / "test-artifacts" / _RUN
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
