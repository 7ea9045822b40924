"""Style discovery on real embeddings: k by silhouette, map job times (PCA, t-SNE), classifier quality.

Runs on a processed collection (default ``styles-demo``: every clothing-small photo, background
removal off, efficientnet-lite0). Build it once with::

    .venv/bin/python manage.py shell -c "from catalog.services import collection_create; \
        collection_create(name='Styles demo', slug='styles-demo', remove_background=False)"
    .venv/bin/python manage.py import_catalog ../shared/data/clothing-small --collection styles-demo
    # then run a worker (make run) or pipeline.image_process for each pending image

The clustering jobs replace the collection's clusters and map (the last one run, t-SNE, stays);
the classifier job trains a new version only when labels or vectors changed, so the second run
shows the skip. With ``--backbone-epochs N`` it also fine-tunes a backbone (slow on CPU).

    .venv/bin/python bench/styles.py [--collection styles-demo] [--k-max 30] [--backbone-epochs 0]
        [--backbone-limit 40] [--backbone-arch efficientnet-lite0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stylesite.settings.base")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from catalog.models import Collection  # noqa: E402
from recommender.embeddings import collection_vectors  # noqa: E402
from recommender.styles.clustering import clustering_run  # noqa: E402
from recommender.styles.curation import classifier_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="styles-demo")
    parser.add_argument("--k-max", type=int, default=30)
    parser.add_argument("--backbone-epochs", type=int, default=0)
    parser.add_argument("--backbone-limit", type=int, default=40, help="images per label and split")
    parser.add_argument("--backbone-arch", default="efficientnet-lite0")
    args = parser.parse_args()

    collection = Collection.objects.filter(slug=args.collection).first()
    if collection is None:
        print(f"skipped: no collection {args.collection!r}; see this script's docstring to build it")
        return 0
    started = time.monotonic()
    data = collection_vectors(collection)
    load_seconds = time.monotonic() - started
    if len(data.item_ids) < 100:
        print(f"skipped: {args.collection} has only {len(data.item_ids)} embedded items; process it first")
        return 0
    print(f"collection {collection.slug}: {len(data.item_ids)} embedded items, model {data.model}, "
          f"{os.cpu_count()} CPU(s); vectors loaded in {load_seconds:.1f} s")

    print("\n| map | items | k (by silhouette) | silhouette | map step s (CPU s) | whole job s (CPU s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for method in ("pca", "tsne"):
        result = clustering_run(collection, map_method=method, k_max=args.k_max)
        print(f"| {method} | {result['items']} | {result['k']} | {result['silhouette']:.4f} | "
              f"{result['map_seconds']:.1f} ({result['map_cpu_seconds']:.1f}) | "
              f"{result['seconds']:.1f} ({result['cpu_seconds']:.1f}) |")

    print("\n| classifier run | retrained | version | kind | val acc | test acc | test macro F1 | seconds |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for run in ("first", "second (unchanged inputs)"):
        started = time.monotonic()
        result = classifier_run(collection)
        print(f"| {run} | {result['retrained']} | {result['version']} | {result['kind']} | "
              f"{result['validation_accuracy']:.4f} | {result['test_accuracy']:.4f} | "
              f"{result['test_macro_f1']:.4f} | {time.monotonic() - started:.1f} |")
    test_labels = [label for label, split in zip(data.labels, data.splits) if split == "test" and label]
    if test_labels:
        majority = Counter(test_labels).most_common(1)[0]
        print(f"majority-class rate on test: {majority[1] / len(test_labels):.4f} ({majority[0]})")
    print(f"curation: {result['predictions']} predictions, {result['duplicate_pairs']} near-duplicate pair(s)")

    if args.backbone_epochs:
        print(f"\ntrain_backbone {args.backbone_arch} --pretrained, {args.backbone_epochs} epoch(s), "
              f"at most {args.backbone_limit} images per label and split:")
        call_command("train_backbone", "--collection", collection.slug, "--arch", args.backbone_arch,
                     "--pretrained", "--epochs", str(args.backbone_epochs),
                     "--limit-per-label", str(args.backbone_limit), "--name", f"bench-{args.backbone_arch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
