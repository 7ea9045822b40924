"""Similarity-search latency and HNSW recall at 10k and 100k catalogue items, plus photo search end to end.

The catalogue is the real efficientnet-lite0 embeddings of a processed demo collection (default
``search-eval``, every clothing-small photo) copied into a dedicated bench collection, topped up
with synthetic clustered unit vectors for scale: each synthetic vector is a real one plus Gaussian
noise (cosine ≈ 0.8 to it), labelled like it. Queries are real embeddings of the validation/test
items. Recall@10 compares the HNSW query with exact cosine search (numpy, float16 values as
stored) over the whole bench catalogue. The API numbers come from a gunicorn server on
127.0.0.1:PORT, requests sent one after another. Everything the bench adds (collection
``search-bench``, its model row and HNSW index) is removed at the end.

    .venv/bin/python bench/search.py [--sizes 10000,100000] [--queries 200] [--source search-eval]
        [--photo-bg search-eval-bg] [--photo-nobg search-eval] [--port 8101]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stylesite.settings.base")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from catalog.models import Collection, Item, ItemImage  # noqa: E402
from catalog.services import collection_create  # noqa: E402
from recommender.embeddings import active_model, active_model_or_none  # noqa: E402
from recommender.embeddings.services import hnsw_index_ensure  # noqa: E402
from recommender.models import ActiveEmbeddingModel, Embedding, EmbeddingModel  # noqa: E402
from recommender.models.embeddings import NearestFilters  # noqa: E402

BENCH_SLUG = "search-bench"
BENCH_MODEL = "bench-real-plus-synthetic"
K = 12
# Untimed photo searches first: each of the two server workers loads its models on its first one.
WARM_UP_PHOTOS = 4


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def pick_collection(slug: str, remove_background: bool | None = None) -> Collection | None:
    """``slug`` when it exists, else the collection (of that background setting) with the most vectors."""
    found = Collection.objects.filter(slug=slug).first()
    if found is not None:
        return found
    candidates = Collection.objects.exclude(slug=BENCH_SLUG)
    if remove_background is not None:
        candidates = candidates.filter(remove_background=remove_background)
    counts = {c: Embedding.objects.filter(item__collection=c, model=active_model_or_none(c)).count() for c in candidates}
    best = max(counts, key=counts.get, default=None)
    return best if best is not None and counts[best] else None


def real_catalogue(source: Collection) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Vectors (cover image per item), labels, splits and thumbnail names of a processed collection."""
    model = active_model(source)
    rows = (Embedding.objects.filter(model=model, item__collection=source)
            .order_by("item_id", "image__position", "image_id")
            .values_list("item_id", "item__label", "item__split", "image__thumbnail", "vector"))
    seen, vectors, labels, splits, thumbs = set(), [], [], [], []
    for item_id, label, split, thumb, vector in rows:
        if item_id in seen:
            continue
        seen.add(item_id)
        vectors.append(vector)
        labels.append(label)
        splits.append(split)
        thumbs.append(thumb)
    return np.asarray(vectors, dtype=np.float32), labels, splits, thumbs


def synthetic(real: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors clustered around randomly chosen real ones; returns them and their centres."""
    centres = rng.integers(0, len(real), size=n)
    noise = rng.normal(size=(n, real.shape[1])).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = real[centres] + 0.75 * noise
    return out / np.linalg.norm(out, axis=1, keepdims=True), centres


def bench_setup(dim: int) -> tuple[Collection, EmbeddingModel]:
    bench_cleanup()
    collection = collection_create(name="Search bench", slug=BENCH_SLUG, remove_background=False)
    model = EmbeddingModel.objects.create(name=BENCH_MODEL, version=f"{uuid.uuid4().hex[:8]}", dimension=dim)
    ActiveEmbeddingModel.objects.create(collection=collection, model=model)
    return collection, model


def bench_cleanup() -> None:
    """Remove every row and index the bench added (raw deletes: 100k cascades through the ORM are slow)."""
    with connection.cursor() as cursor:
        for model in EmbeddingModel.objects.filter(name=BENCH_MODEL):
            cursor.execute(f"DROP INDEX IF EXISTS {model.index_name}")
            cursor.execute("DELETE FROM recommender_embedding WHERE model_id = %s", [model.pk])
        for collection in Collection.objects.filter(slug=BENCH_SLUG):
            cursor.execute("DELETE FROM recommender_activeembeddingmodel WHERE collection_id = %s", [collection.pk])
            cursor.execute("DELETE FROM catalog_itemimage WHERE collection_id = %s", [collection.pk])
            cursor.execute("DELETE FROM catalog_item WHERE collection_id = %s", [collection.pk])
            cursor.execute("DELETE FROM catalog_collection WHERE id = %s", [collection.pk])
        cursor.execute("DELETE FROM recommender_embeddingmodel WHERE name = %s", [BENCH_MODEL])


def add_items(collection: Collection, model: EmbeddingModel, vectors: np.ndarray, labels: list[str],
              splits: list[str], thumbs: list[str], start: int) -> list[int]:
    """Items with one file-less image each and their vectors (binary COPY); returns the item ids."""
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    ids: list[int] = []
    connection.ensure_connection()
    register_vector(connection.connection)
    for lo in range(0, len(vectors), 5000):
        hi = min(lo + 5000, len(vectors))
        items = Item.objects.bulk_create([
            Item(collection=collection, title=f"bench {start + i}", label=labels[i], split=splits[i])
            for i in range(lo, hi)])
        images = ItemImage.objects.bulk_create([
            ItemImage(item=item, collection=collection, original="bench/none.jpg", thumbnail=thumbs[i],
                      sha256=f"bench-{collection.pk}-{start + i:012d}".ljust(64, "0"), status=ItemImage.Status.READY)
            for item, i in zip(items, range(lo, hi))])
        with connection.cursor() as cursor, cursor.cursor.copy(
            "COPY recommender_embedding (image_id, item_id, model_id, vector, created) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int8", "int8", "halfvec", "timestamptz"])
            now = timezone.now()
            for image, vector in zip(images, vectors[lo:hi]):
                copy.write_row([image.pk, image.item_id, model.pk, HalfVector(vector), now])
        ids.extend(item.pk for item in items)
    return ids


def build_index(model: EmbeddingModel) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {model.index_name}")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        hnsw_index_ensure(model)  # timed: the same build the ensure step runs
        cursor.execute("ANALYZE recommender_embedding")
        cursor.execute("ANALYZE catalog_item")
    return time.perf_counter() - started


def exact_top(all_vectors: np.ndarray, query: np.ndarray, exclude: int, k: int, allowed: np.ndarray | None) -> set[int]:
    sims = all_vectors @ query
    sims[exclude] = -np.inf
    if allowed is not None:
        sims[~allowed] = -np.inf
    return set(np.argpartition(-sims, k)[:k].tolist())


def db_numbers(collection, model, vectors, labels, ids, queries, ef: int) -> dict[str, float]:
    """p50/p95 of ``nearest`` (k=12) and recall@10 against exact search, with and without a label filter."""
    stored = vectors.astype(np.float16).astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    index_of = {item_id: i for i, item_id in enumerate(ids)}
    label_arr = np.asarray(labels)
    out: dict[str, float] = {}
    for name, use_label in (("all", False), ("label", True)):
        times, recalls = [], []
        for q in queries:
            filters = NearestFilters(collection_id=collection.pk, exclude_item_id=ids[q],
                                     label=labels[q] if use_label else "")
            started = time.perf_counter()
            got = Embedding.objects.nearest(vectors[q], K, filters, model=model, ef_search=ef)
            times.append((time.perf_counter() - started) * 1000)
            truth = exact_top(stored, stored[q], q, 10, label_arr == labels[q] if use_label else None)
            recalls.append(len({index_of[n.item_id] for n in got[:10]} & truth) / 10)
        out[f"{name}_p50"], out[f"{name}_p95"] = pct(times, 50), pct(times, 95)
        out[f"{name}_recall"] = float(np.mean(recalls))
    out["server_p50"], out["server_p95"] = server_times(collection, model, vectors, ids, queries, ef)
    return out


def server_times(collection, model, vectors, ids, queries, ef: int) -> tuple[float, float]:
    """p50/p95 of Postgres's own execution time (EXPLAIN ANALYZE) of the unfiltered query: no client costs."""
    times = []
    for q in queries:
        sql, params = Embedding.objects.nearest_sql(
            vectors[q], NearestFilters(collection_id=collection.pk, exclude_item_id=ids[q]), model=model)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                           "set_config('hnsw.iterative_scan', 'relaxed_order', true)", [str(ef)])
            cursor.execute("EXPLAIN (ANALYZE) " + sql, [*params, K * 3, K])
            plan = [row[0] for row in cursor.fetchall()]
        assert any(model.index_name in line for line in plan), plan
        times.append(float(plan[-1].split(":")[1].split()[0]))
    return pct(times, 50), pct(times, 95)


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_DEBUG": "false", "STYLESITE_PHOTO_SEARCH_RATE": "100000/min",
           "DJANGO_LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore::UserWarning"}
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "stylesite.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/collections/", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    sys.exit("the bench server did not start")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def api_numbers(port: int, item_ids: list[int]) -> tuple[float, float]:
    times = []
    for n, item_id in enumerate(item_ids):
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/items/{item_id}/similar/?k={K}", timeout=30) as r:
            body = json.load(r)
        elapsed = (time.perf_counter() - started) * 1000
        assert len(body) == K, body
        if n >= 5:  # the first requests warm both workers up
            times.append(elapsed)
    return pct(times, 50), pct(times, 95)


def photo_numbers(port: int, slug: str, photos: list[Path]) -> tuple[float, float]:
    times = []
    for n, photo in enumerate(photos):
        boundary = uuid.uuid4().hex
        body = io.BytesIO()
        for name, value in (("collection", slug), ("k", str(K))):
            body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{photo.name}"\r\n'
                   f"Content-Type: image/jpeg\r\n\r\n".encode() + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode())
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/search/image/", data=body.getvalue(),
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as r:
            assert len(json.load(r)["results"]) == K
        if n >= WARM_UP_PHOTOS:  # the first requests load the models into both workers
            times.append((time.perf_counter() - started) * 1000)
    return pct(times, 50), pct(times, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--source", default="search-eval")
    parser.add_argument("--photo-bg", default="search-eval-bg")
    parser.add_argument("--photo-nobg", default="search-eval")
    parser.add_argument("--photos", type=int, default=14)
    parser.add_argument("--ef", default="40,80,200", help="ef_search values for the database rows")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    efs = [int(e) for e in args.ef.split(",")]
    rng = np.random.default_rng(0)

    source = pick_collection(args.source)
    if source is None:
        print("No collection has embeddings yet: run `make demo` (or import and process one) first.")
        return
    real, labels, splits, thumbs = real_catalogue(source)
    query_pool = [i for i, s in enumerate(splits) if s in ("validation", "test")] or list(range(len(real)))
    queries = sorted(rng.choice(query_pool, size=min(args.queries, len(query_pool)), replace=False).tolist())
    print(f"Catalogue: {len(real)} real {real.shape[1]}-d embeddings of {source.slug} ({active_model(source)}) + "
          "synthetic clustered unit vectors (real vector + noise, cos≈0.8) up to each size; "
          f"{len(queries)} queries = real validation/test embeddings; k={K}; "
          f"setting STYLESITE_HNSW_EF_SEARCH={settings.STYLESITE_HNSW_EF_SEARCH}.", flush=True)
    rows = []
    collection, model = bench_setup(real.shape[1])
    try:
        vectors, all_labels, all_ids = real, list(labels), []
        all_ids += add_items(collection, model, real, labels, splits, thumbs, 0)
        for size in sizes:
            extra = size - len(vectors)
            if extra > 0:
                with connection.cursor() as cursor:  # bulk loads go faster without the graph; rebuilt below
                    cursor.execute(f"DROP INDEX IF EXISTS {model.index_name}")
                fake, centres = synthetic(real, extra, rng)
                fake_labels = [labels[c] for c in centres]
                all_ids += add_items(collection, model, fake, fake_labels, ["train"] * extra,
                                     [thumbs[c] for c in centres], len(vectors))
                vectors = np.concatenate([vectors, fake])
                all_labels += fake_labels
            build_s = build_index(model)
            print(f"{size:>7} items: HNSW index built in {build_s:.0f} s", flush=True)
            for ef in efs:
                numbers = db_numbers(collection, model, vectors, all_labels, all_ids, queries, ef)
                rows.append((size, ef, numbers, None))
                print(f"{size:>7} ef={ef}: {numbers}", flush=True)
            server = start_server(args.port)
            try:
                rows.append((size, settings.STYLESITE_HNSW_EF_SEARCH, None,
                             api_numbers(args.port, [all_ids[q] for q in queries])))
            finally:
                stop_server(server)
        photos_at = {}
        photos = sorted((settings.STYLESITE_SHARED_DIR / "data/clothing-small/validation").glob("*/*.jpg"))
        photos = [photos[i] for i in rng.choice(len(photos), size=args.photos, replace=False)]
        server = start_server(args.port)
        try:
            for name, slug, cut in (("with bg removal", args.photo_bg, True),
                                    ("without bg removal", args.photo_nobg, False)):
                target = pick_collection(slug, remove_background=cut)
                if target is not None and target.remove_background == cut:
                    photos_at[name] = (target.slug, photo_numbers(args.port, target.slug, photos))
        finally:
            stop_server(server)
    finally:
        bench_cleanup()

    print()
    print("| items | ef_search | Postgres execution p50 / p95 ms | DB query from Django p50 / p95 ms | "
          "same, label filter | recall@10 | recall@10, label filter | API p50 / p95 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, ef, db, api in rows:
        if db:
            print(f"| {size:,} | {ef} | {db['server_p50']:.1f} / {db['server_p95']:.1f} | "
                  f"{db['all_p50']:.1f} / {db['all_p95']:.1f} | {db['label_p50']:.1f} / {db['label_p95']:.1f} | "
                  f"{db['all_recall']:.3f} | {db['label_recall']:.3f} | |")
        else:
            print(f"| {size:,} | {ef} | | | | | | {api[0]:.1f} / {api[1]:.1f} |")
    print(f"(load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print()
    print(f"Photo search end to end (POST /api/search/image/, {args.photos - WARM_UP_PHOTOS} timed photos, sequential):")
    for name, (slug, (p50, p95)) in photos_at.items():
        print(f"  {name:20s} ({slug}): p50 {p50:.0f} ms, p95 {p95:.0f} ms")


if __name__ == "__main__":
    main()
