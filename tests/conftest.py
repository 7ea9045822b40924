"""Shared fixtures. Tests run against the real Postgres+pgvector and Redis that `make test` starts."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

# The same default as settings.STYLESITE_SHARED_DIR, read without Django so tests/ml run without it.
SHARED = Path(os.environ.get("STYLESITE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
CLOTHING = SHARED / "data" / "clothing-small"


def image_bytes(color=(200, 30, 30), size=(48, 64), fmt="JPEG", seed: int = 0) -> bytes:
    """A small real image; different ``seed``s give different bytes (so no duplicate detection)."""
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(color, (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4))
    # An 8×8 corner block (one JPEG block) coloured from the seed survives compression.
    img.paste(((seed * 53) % 256, (seed * 97 // 256) % 256, (seed * 29) % 256), (0, 0, 8, 8))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def clothing_photos(label: str, n: int, split: str = "train") -> list[Path]:
    return sorted((CLOTHING / split / label).glob("*.jpg"))[:n]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    settings.STYLESITE_ARTIFACT_DIR = tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session", autouse=True)
def _clean_test_media():
    yield
    shutil.rmtree(Path(settings.MEDIA_ROOT), ignore_errors=True)


@pytest.fixture
def collection(db):
    from catalog.services import collection_create

    return collection_create(name="Garments", slug="garments", remove_background=False)


@pytest.fixture
def make_item(collection):
    from catalog.services import ItemFields, item_create_with_image

    counter = {"n": 0}

    def make(label: str = "dress", gender: str = "", split: str = "train", data: bytes | None = None,
             target=None):
        counter["n"] += 1
        return item_create_with_image(
            collection=target or collection,
            fields=ItemFields(title=f"{label} {counter['n']}", label=label, gender=gender, split=split,
                              source_name=f"{label}-{counter['n']}.jpg"),
            data=data or image_bytes(seed=counter["n"]), filename=f"{label}-{counter['n']}.jpg",
        )

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("curator", password="pw-curator-1", is_staff=True)


@pytest.fixture
def visitor(django_user_model):
    return django_user_model.objects.create_user("visitor", password="pw-visitor-1")


@pytest.fixture(scope="session")
def celery_session_app():
    from stylesite.celery import app

    return app


@pytest.fixture
def worker(transactional_db, celery_session_app):
    """A real Celery worker thread consuming this run's own queue on the real broker."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_session_app, pool="solo", perform_ping_check=False,
                      queues=[settings.CELERY_TASK_DEFAULT_QUEUE], shutdown_timeout=30) as w:
        yield w
