"""Latency of the personal feed, predictions and "rate these next" through the whole Django stack.

Runs in a throwaway test database (``stylesite.settings.test``; created and dropped here) so it
needs only the shared Postgres and Redis. ``--items`` items get real clothing-small vectors
(plus a little noise, cycling through the 3,781 photos) under a bench embedding model, and real
descriptors; ``--voters`` simulated visitors cast 60 votes each (``simulate_families``); the
served predictor is ``personal``, fitted as the Celery task does. One user with 60 votes then
asks, ``--requests`` times each: ``GET /api/me/feed/?k=20``, ``POST /api/me/predict/`` for 150
items, ``GET /api/me/next/?k=10``; and a vote followed by the next prediction (``PUT`` then
``POST``). Prints p50/p95 in ms. Targets: feed p95 <= 150 ms at 10k items, predict p95 <= 200 ms
for 150 items, vote to updated prediction <= 2 s.

    nice -n 10 .venv/bin/python bench/preferences_latency.py [--items 10000] [--requests 40]
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "stylesite.settings.test"

import django

django.setup()


def percentiles(values: list[float]) -> str:
    ms = np.array(values) * 1000
    return f"p50 {np.percentile(ms, 50):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--voters", type=int, default=100)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def run(args) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench.preferences_catalogue import load_catalogue
    from catalog.models import Item, ItemImage
    from catalog.services import collection_create
    from ml.descriptors import DESCRIPTOR_VERSION
    from ml.simulation import simulate_families
    from ml.vectors import l2_normalise
    from recommender.embeddings import active_model_switch
    from recommender.models import (
        Embedding,
        EmbeddingModel,
        ItemDescriptor,
        ServedPredictor,
        Vote,
    )
    from recommender.preferences.fitting import preference_model_fit
    from recommender.preferences.services import voter_ensure

    cat = load_catalogue()
    rng = np.random.default_rng(0)
    source = np.arange(args.items) % len(cat.labels)
    vectors = l2_normalise(cat.features[source] + 0.01 * rng.normal(size=(args.items, cat.features.shape[1])))
    collection = collection_create(name="Latency bench", slug="latency-bench", remove_background=False)
    model = EmbeddingModel.objects.create(name="latency-bench", version="b1", dimension=vectors.shape[1])
    items = Item.objects.bulk_create([Item(collection=collection, title=f"bench {i}",
                                           label=cat.label_names[cat.labels[s]]) for i, s in enumerate(source)],
                                     batch_size=5000)
    images = ItemImage.objects.bulk_create([
        ItemImage(item=item, collection=collection, original="bench/none.jpg", status=ItemImage.Status.READY,
                  sha256=f"{k:064x}") for k, item in enumerate(items)], batch_size=5000)
    Embedding.objects.bulk_create([Embedding(image=img, item_id=img.item_id, model=model, vector=v.tolist())
                                   for img, v in zip(images, vectors)], batch_size=2000)
    ItemDescriptor.objects.bulk_create([ItemDescriptor(item=item, version=DESCRIPTOR_VERSION,
                                                       values=cat.descriptors[s].tolist())
                                        for item, s in zip(items, source)], batch_size=5000)
    active_model_switch(collection, model)
    ids = np.array([i.pk for i in items])
    labels = cat.labels[source]
    sim = simulate_families(vectors, labels, cat.colour[source], cat.pattern[source], args.voters + 1, 60, seed=0)
    users = [voter_ensure("simulated", f"latency-{u}") for u in range(args.voters + 1)]
    Vote.objects.bulk_create([Vote(user=users[u], item_id=int(ids[i]), value="like" if v else "dislike")
                              for u, i, v in zip(sim.train.user_ids, sim.train.item_idx, sim.train.liked)],
                             batch_size=5000)
    ServedPredictor.objects.create(collection=collection, name="personal")
    started = time.perf_counter()
    fitted = preference_model_fit(collection)
    print(f"{args.items} items, {args.voters + 1} voters x 60 votes; fit {fitted.name} in "
          f"{time.perf_counter() - started:.1f} s")
    me = users[-1]
    client = Client()
    client.force_login(get_user_model().objects.get(pk=me.pk))
    asked = [int(i) for i in rng.choice(ids, 150, replace=False)]
    client.get("/api/me/feed/?collection=latency-bench&k=20")  # loads the artifact into this process
    gc.freeze()  # as a web worker does after its warm-up (stylesite/gunicorn_conf.py)

    def timed(call) -> list[float]:
        out = []
        for _ in range(args.requests):
            t = time.perf_counter()
            response = call()
            out.append(time.perf_counter() - t)
            assert response.status_code == 200, response.content[:300]
        return out

    feed = timed(lambda: client.get("/api/me/feed/?collection=latency-bench&k=20"))
    predict = timed(lambda: client.post("/api/me/predict/", {"items": asked}, content_type="application/json"))
    rate_next = timed(lambda: client.get("/api/me/next/?collection=latency-bench&k=10"))
    unrated = [int(i) for i in ids if int(i) not in set(asked)][:args.requests]
    vote_then = []
    for n, item in enumerate(unrated):
        t = time.perf_counter()
        client.put(f"/api/votes/{item}/", {"value": "like" if n % 2 else "dislike"}, content_type="application/json")
        client.post("/api/me/predict/", {"items": asked}, content_type="application/json")
        vote_then.append(time.perf_counter() - t)
    print(f"feed k=20 over {args.items} items   {percentiles(feed)}   (target p95 <= 150 ms)")
    print(f"predict 150 items           {percentiles(predict)}   (target p95 <= 200 ms)")
    print(f"rate next k=10              {percentiles(rate_next)}")
    print(f"vote -> updated prediction  {percentiles(vote_then)}   (target <= 2 s)")


if __name__ == "__main__":
    main()
