"""What `make run` does on a fresh database, timed from its start: the first page, every demo item
with look-alikes (pass 1), the Styles map (clusters), and how far pass 2 (cut-outs) got.

    nice -n 10 .venv/bin/python bench/first_run.py [--per-label 20] [--limit-s 900]

The same steps as `make demo` then `make run` (migrate, seed_demo, simulate_visitors, then the
Procfile under honcho), against a throwaway database on the configured Postgres, private queues, a
temporary media folder and a free loopback port. Everything it starts is stopped, and the database
dropped, at the end. pip install and the services' own start are not included.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def page_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-label", type=int, default=20)
    parser.add_argument("--limit-s", type=int, default=900, help="stop waiting after this long")
    args = parser.parse_args()

    import psycopg

    run = f"firstrun{os.getpid()}"
    server = urlsplit(os.environ["DATABASE_URL"])
    admin_url = urlunsplit(server._replace(path="/postgres"))
    media = Path(tempfile.mkdtemp(prefix=f"{run}-media-"))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": urlunsplit(server._replace(path=f"/{run}")),
           "CELERY_TASK_DEFAULT_QUEUE": run, "STYLESITE_REFINE_QUEUE": f"{run}-refine",
           "STYLESITE_CACHE_PREFIX": run, "STYLESITE_MEDIA_ROOT": str(media),
           "STYLESITE_ARTIFACT_DIR": str(media / "artifacts"), "STYLESITE_WEB_BIND": f"127.0.0.1:{port}",
           "STYLESITE_DEMO_PER_LABEL": str(args.per_label), "DJANGO_SETTINGS_MODULE": "stylesite.settings.base"}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{run}"')
    honcho = None
    started = time.perf_counter()
    marks: dict[str, float] = {}
    try:
        for command in (["migrate", "--noinput"], ["seed_demo", "--shared", str(ROOT.parent / "shared")],
                        ["simulate_visitors", "--collection", "clothing"]):
            subprocess.run([PY, "manage.py", *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        marks["demo data loaded (make demo)"] = time.perf_counter() - started
        log = open(Path(tempfile.gettempdir()) / f"{run}-honcho.log", "w")  # what the processes printed
        honcho = subprocess.Popen([str(ROOT / ".venv/bin/honcho"), "start", "-f", "Procfile"], cwd=ROOT, env=env,
                                  start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            def scalar(sql: str) -> int:
                return conn.execute(sql).fetchone()[0]

            total = scalar("SELECT count(*) FROM catalog_itemimage")
            deadline = started + args.limit_s
            while time.perf_counter() < deadline:
                if "first page" not in marks and page_ok(f"http://127.0.0.1:{port}/"):
                    marks["first page"] = time.perf_counter() - started
                now = time.perf_counter() - started  # after the page check, which may wait for a worker
                if "all demo items with look-alikes" not in marks and scalar(
                        "SELECT count(*) FROM catalog_itemimage WHERE status IN ('ready', 'failed')") >= total:
                    marks["all demo items with look-alikes"] = now
                if "Styles map and clusters" not in marks and scalar(
                        "SELECT count(*) FROM recommender_styleclustering") and scalar(
                        "SELECT count(*) FROM recommender_stylejob WHERE status IN ('queued', 'running')") == 0:
                    marks["Styles map and clusters"] = now
                if "background refinement done" not in marks and scalar(
                        "SELECT count(*) FROM catalog_itemimage WHERE refined OR status = 'failed'") >= total:
                    marks["background refinement done"] = now
                if len(marks) == 5:
                    break
                time.sleep(1)
            refined = scalar("SELECT count(*) FROM catalog_itemimage WHERE refined")
            jobs = conn.execute(
                "SELECT kind, status, left(error, 300) FROM recommender_stylejob ORDER BY id").fetchall()
        print(f"{total} demo images; times from the start of `make demo` (services already up):\n")
        print("| milestone | seconds | target |")
        print("|---|---|---|")
        targets = {"first page": "≤ 150 (with pip install)", "all demo items with look-alikes": "≤ 240",
                   "Styles map and clusters": "≤ 360", "background refinement done": "≤ 600"}
        for name in ("demo data loaded (make demo)", *targets):
            value = f"{marks[name]:.0f}" if name in marks else f"not within {args.limit_s} s"
            print(f"| {name} | {value} | {targets.get(name, '')} |")
        print(f"\nrefined (pass 2) when the bench stopped: {refined} of {total}; process output: {log.name}")
        described = "; ".join(f"{kind} {status} {error}".strip() for kind, status, error in jobs)
        print(f"style jobs: {described or 'none'}")
    finally:
        if honcho is not None:
            os.killpg(honcho.pid, signal.SIGTERM)
            try:
                honcho.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(honcho.pid, signal.SIGKILL)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{run}" WITH (FORCE)')
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).delete(run, f"{run}-refine")
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
