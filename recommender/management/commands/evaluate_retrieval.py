from __future__ import annotations

import time
from collections import Counter

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection, Item
from ml.metrics import retrieval_metrics
from recommender.embeddings import active_model, embedding_model_ensure
from recommender.models import Embedding, EmbeddingModel, LearnedSpace, RetrievalReport
from recommender.models.embeddings import NearestFilters


def _ints(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise CommandError(f"--k must be whole numbers separated by commas, not {text!r}") from None
    if not values or values[0] < 1 or values[-1] > 100:
        raise CommandError("--k values must be from 1 to 100")
    return values


class Command(BaseCommand):
    help = ("Measure same-label retrieval: items of the query splits search the gallery split, per embedding "
            "model; prints precision@k, recall@k and mAP@k and saves the table as a report in the admin.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", required=True, help="Collection slug.")
        parser.add_argument("--model", action="append", default=[],
                            help="Embedder name (repeatable); default: the collection's active model. Each needs "
                                 "vectors for the collection: `reembed --collection SLUG --model NAME` makes them.")
        parser.add_argument("--k", default="1,5,10", help="Cut-offs, comma-separated (default 1,5,10).")
        parser.add_argument("--queries", default="validation,test", help="Query splits (default validation,test).")
        parser.add_argument("--gallery", default=Item.Split.TRAIN, choices=Item.Split.values)
        parser.add_argument("--ef-search", type=int, default=None, help="HNSW ef_search (default: the setting).")
        parser.add_argument("--spaces", action="store_true",
                            help="Instead: one table of the raw, learned and blended spaces of the collection's "
                                 "newest similarity head over each backbone (train_similarity; a top-block "
                                 "fine-tuned backbone's rows are marked fine-tuned), per query split, with "
                                 "overlap@10 against the first backbone's raw lists and a style classifier "
                                 "fitted on each space (exact search).")

    def handle(self, *args, collection: str, model: list[str], k: str, queries: str, gallery: str,
               ef_search: int | None, spaces: bool, **options) -> None:
        from ml.embedders import UnknownModel, WeightsMissing

        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection with slug {collection!r}")
        if spaces:
            self._spaces(target)
            return
        ks = _ints(k)
        query_splits = [s.strip() for s in queries.split(",") if s.strip()]
        unknown = set(query_splits) - set(Item.Split.values)
        if unknown or not query_splits:
            raise CommandError(f"unknown query split(s) {sorted(unknown)}; use {', '.join(Item.Split.values)}")
        ef = ef_search or settings.STYLESITE_HNSW_EF_SEARCH
        try:
            models = [embedding_model_ensure(name) for name in model] or [active_model(target)]
        except (UnknownModel, WeightsMissing) as exc:
            raise CommandError(str(exc)) from exc
        started = time.perf_counter()
        rows = [self._evaluate(target, m, ks, query_splits, gallery, ef) for m in models]
        table = _table(target, rows, ks, query_splits, gallery)
        report = RetrievalReport.objects.create(
            collection=target, background_removed=target.remove_background, query_splits=",".join(query_splits),
            gallery_split=gallery, k_values=ks, ef_search=ef, rows=rows, table=table,
            seconds=round(time.perf_counter() - started, 2),
        )
        self.stdout.write(table)
        self.stdout.write(self.style.SUCCESS(f"Saved as retrieval report {report.pk} ({report.seconds:.1f} s)."))

    def _evaluate(self, collection: Collection, model: EmbeddingModel, ks: list[int], query_splits: list[str],
                  gallery: str, ef: int) -> dict:
        gallery_labels = dict(
            Embedding.objects.filter(model=model, item__collection=collection, item__split=gallery)
            .exclude(item__label="").values_list("item_id", "item__label").distinct()
        )
        per_label = Counter(gallery_labels.values())
        query_vectors: dict[int, tuple[str, np.ndarray]] = {}
        for item_id, label, vector in (
            Embedding.objects.filter(model=model, item__collection=collection, item__split__in=query_splits)
            .exclude(item__label="").order_by("item_id", "image__position", "image_id")
            .values_list("item_id", "item__label", "vector")
        ):
            query_vectors.setdefault(item_id, (label, np.asarray(vector, dtype=np.float32)))
        if not gallery_labels or not query_vectors:
            raise CommandError(
                f"{collection.slug} has {len(query_vectors)} query and {len(gallery_labels)} gallery item(s) with "
                f"vectors under {model}; run `manage.py reembed --collection {collection.slug} --model {model.name}` "
                "after the images are processed")
        missing = (Item.objects.filter(collection=collection, split__in=[*query_splits, gallery])
                   .exclude(label="").exclude(embeddings__model=model).count())
        if missing:
            self.stderr.write(f"{missing} labelled item(s) have no vector under {model} and are left out.")
        k_max = max(ks)
        sums = {f"{name}@{k}": 0.0 for k in ks for name in ("precision", "recall", "map")}
        for label, vector in query_vectors.values():
            neighbours = Embedding.objects.nearest(
                vector, k_max, NearestFilters(collection_id=collection.pk, split=gallery), model=model, ef_search=ef)
            relevant = [gallery_labels.get(n.item_id) == label for n in neighbours]
            relevant += [False] * (k_max - len(relevant))
            for k in ks:
                p, r, ap = retrieval_metrics(relevant, k, per_label[label])
                sums[f"precision@{k}"] += p
                sums[f"recall@{k}"] += r
                sums[f"map@{k}"] += ap
        n = len(query_vectors)
        return {"model": model.name, "version": model.version, "queries": n, "gallery": len(gallery_labels),
                "metrics": {key: round(total / n, 4) for key, total in sums.items()}}


    def _spaces(self, collection: Collection) -> None:
        from ml.metrics import top_k
        from ml.similarity import SCORE_K, evaluation_rows, evaluation_table
        from ml.vectors import l2_normalise
        from recommender.styles.similarity import (
            base_vectors,
            head_load,
            labelled_item_ids,
            labelled_split,
        )

        # The newest head over each backbone the collection has one for (e.g. the ImageNet backbone and
        # a top-block fine-tuned one), the backbone first fitted on first: its raw lists are the
        # reference of every overlap@10, on the items all backbones have vectors for.
        newest: dict[int, LearnedSpace] = {}
        for space in LearnedSpace.objects.select_related("base_model", "model").filter(collection=collection):
            newest.setdefault(space.base_model_id, space)
        spaces = sorted(newest.values(), key=lambda s: LearnedSpace.objects.filter(
            collection=collection, base_model_id=s.base_model_id).order_by("version").values_list(
            "version", flat=True).first())
        if not spaces:
            raise CommandError(f"{collection.slug} has no learned similarity yet; run "
                               f"`manage.py train_similarity --collection {collection.slug}` first")
        started = time.perf_counter()
        data = [base_vectors(collection, space.base_model) for space in spaces]
        common = set.intersection(*(labelled_item_ids(d) for d in data))
        query_splits = [s for s in (Item.Split.VALIDATION, Item.Split.TEST) if labelled_split(data[0], s, common)[1]]
        if not query_splits:
            raise CommandError(f"{collection.slug} has no labelled validation or test items to query with")
        rows, reference = [], None
        for space, vectors in zip(spaces, data):
            train = labelled_split(vectors, Item.Split.TRAIN, common)
            queries = {split: labelled_split(vectors, split, common) for split in query_splits}
            part = evaluation_rows(head_load(space), train, queries, reference=reference)
            if reference is None:
                reference = {split: top_k(l2_normalise(x), l2_normalise(train[0]), SCORE_K)
                             for split, (x, _y) in queries.items()}
            else:
                for row in part:
                    row["space"] = f"fine-tuned {row['space']}"
            rows += [{**row, "version": space.model.version} for row in part]
        names = "; ".join(f"v{s.version} over {s.base_model} ({s.kind}, raw weight {s.weight:g})" for s in spaces)
        table = evaluation_table(rows, (
            f"Same-label retrieval in {collection.slug}, learned spaces {names}: queries against the train split, "
            "exact search; overlap@10 with the first backbone's raw lists"))
        ks = [1, 5, 10]
        report = RetrievalReport.objects.create(
            collection=collection, background_removed=collection.remove_background,
            query_splits=",".join(query_splits), gallery_split=Item.Split.TRAIN, k_values=ks, ef_search=0,
            table=table, seconds=round(time.perf_counter() - started, 2), rows=[
                {"model": f"{row['space']} ({row['split']})", "version": row["version"],
                 "queries": row["queries"], "gallery": row["gallery"],
                 "metrics": {**{f"{name}@{k}": round(row[f"{short}@{k}"], 4) for k in ks
                                for name, short in (("precision", "p"), ("recall", "r"), ("map", "map"))},
                             "overlap@10": round(row["overlap@10"], 4), "accuracy": round(row["accuracy"], 4),
                             "macro_f1": round(row["macro_f1"], 4)}}
                for row in rows])
        self.stdout.write(table)
        self.stdout.write(self.style.SUCCESS(f"Saved as retrieval report {report.pk} ({report.seconds:.1f} s)."))


def _table(collection: Collection, rows: list[dict], ks: list[int], query_splits: list[str], gallery: str) -> str:
    keys = [(f"{name}@{k}", f"{short}@{k}") for k in ks for name, short in
            (("precision", "P"), ("recall", "R"), ("map", "mAP"))]
    header = ["model", "bg removed", "queries", "gallery", *(short for _, short in keys)]
    body = [[row["model"], "yes" if collection.remove_background else "no", str(row["queries"]),
             str(row["gallery"]), *(f"{row['metrics'][key]:.3f}" for key, _ in keys)] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))

    title = (f"Same-label retrieval in {collection.slug}: {'+'.join(query_splits)} items query the {gallery} "
             f"split (one row per item, best image)")
    return "\n".join([title, fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in body)])
