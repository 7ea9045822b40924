"""The served stack (issue 11, F1): gunicorn as the Procfile starts it, against this run's test database.

``runserver`` with ``CONN_MAX_AGE=60`` kept one Postgres connection per finished request thread and
ran Postgres out of connections after a few hundred requests. Served as in production, each web
worker borrows from a pool of at most ``STYLESITE_DB_POOL_SIZE`` connections.
"""
from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from tests.processes import free_port, run_database_url, stop_group

ROOT = Path(__file__).resolve().parents[1]
WEB_WORKERS = 2
REQUESTS = 400
CLIENTS = 16  # more concurrent clients than the server has threads


def _procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name!r} process in the Procfile")


# The served processes name their connections (libpq reads PGAPPNAME), so the count is theirs alone: an
# autovacuum worker, or a connection another test's thread left open, also shows this database's name (CI
# twice saw 9 of 8 when counting by database).
SERVED_APP_NAME = "stylesite-served-test"


def _connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                       [connection.settings_dict["NAME"], SERVED_APP_NAME])
        return cursor.fetchone()[0]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@contextmanager
def _serving(**extra_env: str) -> Iterator[str]:
    """The Procfile's web process on a free loopback port (``extra_env`` on top); yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "stylesite.settings.base",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": run_database_url(),
        "STYLESITE_WEB_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(WEB_WORKERS),
        "STYLESITE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "STYLESITE_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "PGAPPNAME": SERVED_APP_NAME,
        **extra_env,
    }
    process = subprocess.Popen(["bash", "-c", f"exec {_procfile_command('web')}"], cwd=ROOT, env=env,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # up to a minute for the workers to load the models
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {process.stderr.read().decode()[-2000:]}")
            try:
                _get(base + "/static/styles/styles.css")
                break
            except OSError:
                time.sleep(0.25)
        yield base
    finally:
        stop_group(process, timeout=30)


@pytest.fixture
def served(transactional_db):
    with _serving() as base:
        yield base


def test_a_few_hundred_requests_keep_postgres_connections_bounded(served, make_item):
    items = [make_item(label=f"label{i % 3}") for i in range(6)]
    paths = ["/", "/api/items/", "/static/styles/styles.css",
             *(f"/items/{item.pk}/" for item in items), *(f"/api/items/{item.pk}/" for item in items)]
    bound = WEB_WORKERS * settings.STYLESITE_DB_POOL_SIZE
    statuses: list[int] = []
    peak = 0
    with ThreadPoolExecutor(CLIENTS) as clients:
        for start in range(0, REQUESTS, 40):
            urls = [served + paths[i % len(paths)] for i in range(start, start + 40)]
            statuses += list(clients.map(_get, urls))
            peak = max(peak, _connections())
    assert statuses == [200] * REQUESTS
    assert 1 <= peak <= bound
    assert _connections() <= bound


def test_every_web_thread_gets_a_pooled_connection(transactional_db, make_item):
    """The worker's warm-up (``post_worker_init``, in its main thread, which serves no request) kept one
    pooled connection for the worker's life: with the pool as large as the threads, one thread always
    waited for the pool, and under load requests failed after its timeout (PoolTimeout, 500; found by
    bench/load.py). With one thread and a pool of one, every request failed."""
    item = make_item()
    with _serving(WEB_CONCURRENCY="1", STYLESITE_WEB_THREADS="1") as base:
        assert [_get(f"{base}/api/items/{item.pk}/") for _ in range(3)] == [200, 200, 200]


def test_a_request_that_gets_no_pooled_connection_in_time_answers_503_with_retry_after(transactional_db):
    """Under overload every pooled connection stays busy and a request's wait ends in PoolTimeout, which
    answered 500. Here the pool can open none at all (nothing listens at the database address), so every
    wait times out the same way: API and pages answer 503 with Retry-After."""
    parts = urlsplit(run_database_url())
    unreachable = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{free_port()}"))
    with _serving(DATABASE_URL=unreachable, STYLESITE_DB_POOL_TIMEOUT="0.5") as base:
        for path in ("/api/items/1/similar/", "/api/items/", "/items/1/"):
            try:
                urllib.request.urlopen(base + path, timeout=30)
                raise AssertionError(f"{path} answered without its database")
            except urllib.error.HTTPError as exc:
                assert (exc.code, exc.headers.get("Retry-After")) == (503, "1"), (path, exc.code, exc.read()[:300])
