from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connections, models, transaction
from pgvector.django import HalfVectorField

from catalog.models import Collection, Item, ItemImage


class EmbeddingModel(models.Model):
    """One backbone at one version. Vectors of different rows never meet in a search."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=200)
    dimension = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="unique_model_version")]

    def __str__(self) -> str:
        return f"{self.name} ({self.version})"

    @property
    def index_name(self) -> str:
        return f"embedding_hnsw_model_{self.pk}"


class ActiveEmbeddingModel(models.Model):
    """The model whose vectors a collection's searches use; switched only after a full backfill."""

    collection = models.OneToOneField(Collection, on_delete=models.CASCADE, related_name="active_embedding")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.PROTECT, related_name="active_for")
    activated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.collection}: {self.model}"


@dataclass(frozen=True)
class NearestFilters:
    """Restrictions on which items a nearest-neighbour query may return (None/"" = any)."""

    collection_id: int | None = None
    label: str = ""
    gender: str = ""
    split: str = ""
    exclude_item_id: int | None = None


@dataclass(frozen=True)
class ItemVector:
    """A query that is an item's own vector: that of its first image (by position) under the model.

    Postgres reads it inside the nearest query, so the vector never travels to Python and back."""

    item_id: int


Query = Sequence[float] | np.ndarray | ItemVector


@dataclass(frozen=True)
class Neighbour:
    item_id: int
    image_id: int
    score: float  # cosine similarity, 1 - cosine distance


# Candidates fetched from the index per wanted item: items with several images take several rows.
CANDIDATES_PER_ITEM = 3
# The candidate limit stops growing here; past it a filter is too rare for the index to help.
MAX_CANDIDATES = 4000


# What ``nearest_items`` reads of an item (all of it) and of its images (what pages and ``item_data`` show).
_ITEM_FIELDS = [f.attname for f in Item._meta.concrete_fields]
_ITEM_COLUMNS = [f.column for f in Item._meta.concrete_fields]
_IMAGE_FIELDS = [f.attname for f in ItemImage._meta.concrete_fields if f.attname in {
    "id", "item_id", "collection_id", "original", "thumbnail", "status", "width", "height", "position", "suspect"}]
_IMAGE_COLUMNS = [ItemImage._meta.get_field(name).column for name in _IMAGE_FIELDS]


def _vector_literal(vector: Sequence[float] | np.ndarray) -> str:
    values = np.asarray(vector, dtype=np.float32).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError("query vector has non-finite values")
    # Six significant digits: more than halfvec keeps (~3.3), and 5x faster to format than repr().
    return "[" + ",".join(["%.6g" % v for v in values.tolist()]) + "]"


class EmbeddingQuerySet(models.QuerySet):
    def for_model(self, model: EmbeddingModel) -> EmbeddingQuerySet:
        return self.filter(model=model)

    def nearest(self, query: Query, k: int, filters: NearestFilters, *,
                model: EmbeddingModel, ef_search: int | None = None) -> list[Neighbour]:
        """The ``k`` items whose best image is closest to ``query`` under ``model``, closest first.

        ``query`` is a vector, or an ``ItemVector`` (an item's own vector, read by the same query;
        no rows when the item has none under ``model``).

        The query orders by ``vector::halfvec(D) <=> q`` under ``WHERE model_id = N``: exactly
        the expression and predicate of the model's partial HNSW index, so Postgres walks that
        index. With filters, pgvector's iterative scan (``relaxed_order``) keeps walking until
        enough rows pass them; the materialised CTE re-sorts the slightly unordered rows. Settings
        go through ``set_config(..., true)`` (transaction-local), a function call that works the
        same under client- or server-side binding and prepared statements, unlike ``SET``.
        One row per item: candidates are fetched ``CANDIDATES_PER_ITEM`` per wanted item, the best
        image of each item is kept, and the limit doubles while too few items came back.
        """
        if k <= 0:
            return []
        sql, params = self.nearest_sql(query, filters, model=model)
        rows = self._nearest_rows(sql, params, k, ef_search)
        return [Neighbour(item_id, image_id, 1.0 - float(distance)) for item_id, image_id, distance, _ in rows]

    def nearest_items(self, query: Query, k: int, filters: NearestFilters, *, model: EmbeddingModel,
                      ef_search: int | None = None) -> list[tuple[Item, float]]:
        """``nearest``'s items themselves with their images (``item.images.all()`` needs no query), and
        their scores, in one statement: the look-alike and photo-search paths read items this way. Their
        ``collection`` is not loaded (the caller knows it)."""
        if k <= 0:
            return []
        sql, params = self.nearest_sql(query, filters, model=model)
        item_columns = ", ".join(f"i.{column}" for column in _ITEM_COLUMNS)
        image_arrays = ", ".join(f"array_agg(im.{column} ORDER BY im.position, im.id)" for column in _IMAGE_COLUMNS)
        sql = f"""
            WITH nearest AS ({sql})
            SELECT n.item_id, n.image_id, n.distance, n.candidates, {item_columns}, images.*
            FROM nearest n(item_id, image_id, distance, candidates)
            JOIN {Item._meta.db_table} i ON i.id = n.item_id
            LEFT JOIN LATERAL (SELECT {image_arrays} FROM {ItemImage._meta.db_table} im
                               WHERE im.item_id = n.item_id) images ON true
            ORDER BY n.distance, n.item_id
        """
        out = []
        n_item = len(_ITEM_COLUMNS)
        for row in self._nearest_rows(sql, params, k, ef_search):
            item = Item.from_db(self.db, _ITEM_FIELDS, row[4:4 + n_item])
            columns = row[4 + n_item:]
            images = [ItemImage.from_db(self.db, _IMAGE_FIELDS, values) for values in zip(*columns)] \
                if columns[0] is not None else []
            item.images_loaded(images)
            out.append((item, 1.0 - float(row[2])))
        return out

    def _nearest_rows(self, sql: str, params: list, k: int, ef_search: int | None) -> list[tuple]:
        """Rows of a ``nearest_sql`` query (or one wrapping it), the candidate limit doubling while too
        few items came back. The session's HNSW settings (``HNSW_SESSION_OPTIONS``) serve as they are
        when they are those wanted; otherwise they are set for one transaction."""
        ef = int(ef_search or settings.STYLESITE_HNSW_EF_SEARCH)
        connection = connections[self.db]
        limit = k * CANDIDATES_PER_ITEM
        as_opened = settings.HNSW_SESSION_OPTIONS.format(ef=ef) in connection.settings_dict.get(
            "OPTIONS", {}).get("options", "")
        with (contextlib.nullcontext() if as_opened else transaction.atomic(using=self.db)), \
                connection.cursor() as cursor:
            if not as_opened:
                cursor.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                               "set_config('hnsw.iterative_scan', 'relaxed_order', true)", [str(ef)])
            while True:
                cursor.execute(sql, [*params, limit, k])
                rows = cursor.fetchall()
                candidates = rows[0][3] if rows else 0
                if len(rows) >= k or candidates < limit or limit >= MAX_CANDIDATES:
                    return rows
                limit = min(limit * 2, MAX_CANDIDATES)

    def nearest_sql(self, query: Query, filters: NearestFilters, *, model: EmbeddingModel) -> tuple[str, list]:
        """SQL and leading parameters of ``nearest`` (then candidate limit, k); EXPLAIN-able in tests.

        The query vector is a one-row CTE read through a scalar subquery, which Postgres evaluates
        once (an InitPlan) and hands to the HNSW scan as its ordering key, as it would a literal.
        """
        dim = int(model.dimension)
        embedding_table = Embedding._meta.db_table
        item_table = Item._meta.db_table
        if isinstance(query, ItemVector):
            query_sql = (f"SELECT q.vector::halfvec({dim}) AS v FROM {embedding_table} q "
                         f"JOIN {ItemImage._meta.db_table} qi ON qi.id = q.image_id "
                         "WHERE q.item_id = %s AND q.model_id = %s ORDER BY qi.position, qi.id LIMIT 1")
            params: list = [int(query.item_id), int(model.pk)]
        else:
            literal = _vector_literal(query)
            if literal.count(",") + 1 != dim:
                raise ValueError(f"query vector has {literal.count(',') + 1} dimensions; {model} has {dim}")
            query_sql = f"SELECT %s::halfvec({dim}) AS v"
            params = [literal]
        where = ["e.model_id = %s"]
        params.append(int(model.pk))
        for column, value in (("i.collection_id", filters.collection_id), ("i.label", filters.label),
                              ("i.gender", filters.gender), ("i.split", filters.split)):
            if value not in (None, ""):
                where.append(f"{column} = %s")
                params.append(value)
        if filters.exclude_item_id is not None:
            where.append("e.item_id <> %s")
            params.append(int(filters.exclude_item_id))
        sql = f"""
            WITH query AS MATERIALIZED ({query_sql}),
            candidates AS MATERIALIZED (
                SELECT e.item_id, e.image_id,
                       (e.vector::halfvec({dim})) <=> (SELECT v FROM query) AS distance
                FROM {embedding_table} e JOIN {item_table} i ON i.id = e.item_id
                WHERE {" AND ".join(where)} AND EXISTS (SELECT FROM query)
                ORDER BY distance
                LIMIT %s
            ), best AS (
                SELECT DISTINCT ON (item_id) item_id, image_id, distance
                FROM candidates ORDER BY item_id, distance
            )
            SELECT item_id, image_id, distance, (SELECT count(*) FROM candidates)
            FROM best ORDER BY distance, item_id LIMIT %s
        """
        return sql, params


class Embedding(models.Model):
    """An image's vector under one model.

    Stored as ``halfvec`` without a fixed dimension: one table serves every backbone (512 to
    2,048 dimensions; ``vector``'s HNSW stops at 2,000), and each model gets its own partial HNSW
    index over ``vector::halfvec(D)`` (see ``services.embedding_model_ensure``).
    """

    image = models.ForeignKey(ItemImage, on_delete=models.CASCADE, related_name="embeddings")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="embeddings")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="embeddings")
    vector = HalfVectorField()
    created = models.DateTimeField(auto_now_add=True)

    objects = EmbeddingQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "model"], name="unique_embedding_per_model")]
