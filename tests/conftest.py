"""Shared fixtures. Tests run against the real Postgres+pgvector and Redis that `make test` starts.

Factories and helpers that test modules import live in ``tests/factories.py`` (rows, vectors) and
``tests/photos.py`` (images); this file only holds fixtures.
"""
from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import UserFactory
from tests.photos import clothing_photos, image_bytes


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
    """Items with a real image file, made by the catalogue service (which queues the pipeline on commit)."""
    from catalog.services import ItemFields, item_create_with_image

    counter = itertools.count(1)

    def make(label: str = "dress", gender: str = "", split: str = "train", data: bytes | None = None,
             target=None):
        n = next(counter)
        return item_create_with_image(
            collection=target or collection,
            fields=ItemFields(title=f"{label} {n}", label=label, gender=gender, split=split,
                              source_name=f"{label}-{n}.jpg"),
            data=data or image_bytes(seed=n), filename=f"{label}-{n}.jpg",
        ).item

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for():
    """``client_for(user)``: a new API client authenticated as ``user``."""
    from rest_framework.test import APIClient

    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def staff_user(db):
    return UserFactory(username="curator", password="pw-curator-1", is_staff=True)


@pytest.fixture
def visitor(db):
    return UserFactory(username="visitor", password="pw-visitor-1")


@pytest.fixture
def wait_for():
    """``wait_for(condition, timeout=…)``: poll until ``condition()`` is truthy and return it, or fail.

    For work done by the Celery worker thread. The timeout only bounds a hang; it is not a speed check.
    """
    def wait(condition: Callable[[], object], timeout: float = 60, what: str = "the worker") -> object:
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not finish within {timeout:.0f} s")
            time.sleep(0.2)
        return result

    return wait


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


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: ``STYLESITE_SCREENSHOT_DIR`` when set (to look at them), else a temporary dir."""
    out = Path(os.environ.get("STYLESITE_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def processed_photo_items(make_item):
    """``make(labels, {split: n})``: items from that many real demo photos per label and split, each
    run through the real pipeline (ready, with a vector)."""
    from recommender.pipeline.services import image_process

    def make(labels, per_split: dict[str, int]) -> list:
        items = [make_item(label=label, split=split, data=path.read_bytes())
                 for label in labels for split, n in per_split.items() for path in clothing_photos(label, n, split)]
        for item in items:
            assert image_process(item.images.get().pk) == "ready"
        return items

    return make
