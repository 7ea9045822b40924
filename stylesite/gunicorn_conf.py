"""gunicorn's configuration for the web process (``Procfile``, ``docker/Dockerfile``).

Threads (gthread) share one pool of database connections per worker process, sized to the
threads in the settings (``STYLESITE_WEB_THREADS``), so the number of Postgres connections is
bounded by ``workers × threads`` however many clients connect.
"""
import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stylesite.settings.base")

from django.conf import settings  # noqa: E402  (needs DJANGO_SETTINGS_MODULE first)

bind = os.environ.get("STYLESITE_WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = settings.STYLESITE_WEB_THREADS
timeout = 60
accesslog = os.environ.get("STYLESITE_WEB_ACCESS_LOG") or None


def post_worker_init(worker) -> None:
    """Load the embedding and background models before the worker takes its first request.

    The warm-up queries the database from the worker's main thread, which serves no request, so
    nothing would return that connection: it goes back to the pool here, or one of the pool's
    ``threads`` connections stays taken for the worker's life and a request thread waits for it.
    """
    from django.db import connections

    from recommender.pipeline import warm_up_models

    warm_up_models(build=False)
    connections.close_all()
    # What is loaded by now lives as long as the worker: the cyclic collector no longer walks it. Its
    # full collections took 150-230 ms, every ~15 requests, and made predict's p95 three times its
    # p50 (bench/preferences_latency.py: p95 ~220 -> ~100 ms, p50 ~66 ms either way).
    gc.freeze()
