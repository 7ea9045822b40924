"""The nearest-neighbour query on real Postgres+pgvector, with vectors written directly (exact and fast)."""
from __future__ import annotations

import numpy as np
import pytest
from django.db import connection, transaction

from catalog.models import Item, ItemImage
from recommender.embeddings import active_model_switch
from recommender.models import Embedding, EmbeddingModel
from recommender.models.embeddings import ItemVector, NearestFilters
from recommender.search.selectors import SearchParams, similar_items
from tests.factories import (
    VECTOR_DIM,
    CollectionFactory,
    ItemFactory,
    items_with_vectors,
    unit_vectors,
    vector_model,
    vector_put,
)
from tests.photos import image_bytes


def bulk_items(collection, vectors: np.ndarray, model: EmbeddingModel, labels: list[str],
               genders: list[str]) -> list[Item]:
    """Many items with one (file-less) image and one vector each, inserted in bulk, then ANALYZEd."""
    items = items_with_vectors(model, vectors, [
        ItemFactory.build(collection=collection, title=f"bulk {i}", label=labels[i], gender=genders[i], split="train")
        for i in range(len(vectors))])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE recommender_embedding; ANALYZE catalog_item")
    return items


def exact_order(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Indices by exact cosine similarity, on the float16 values the database stores."""
    stored = vectors.astype(np.float16).astype(np.float32)
    q = query.astype(np.float16).astype(np.float32)
    sims = stored @ q / (np.linalg.norm(stored, axis=1) * np.linalg.norm(q))
    return np.argsort(-sims, kind="stable"), sims


@pytest.mark.django_db
def test_order_matches_exact_cosine_order(collection, make_item):
    rng = np.random.default_rng(1)
    model = vector_model()
    items = [make_item(label="dress") for _ in range(25)]
    vectors = unit_vectors(rng, 25)
    for item, vec in zip(items, vectors):
        vector_put(model, item.images.get(), vec)
    query = unit_vectors(rng, 1)[0]
    order, sims = exact_order(query, vectors)

    got = Embedding.objects.nearest(query, 10, NearestFilters(collection_id=collection.pk), model=model)

    assert [n.item_id for n in got] == [items[i].pk for i in order[:10]]
    assert [round(n.score, 3) for n in got] == pytest.approx([round(float(sims[i]), 3) for i in order[:10]], abs=2e-3)


@pytest.mark.django_db
def test_one_row_per_item_with_its_best_image_and_query_item_excluded(collection, make_item):
    from catalog.services import image_add

    model = vector_model()
    query_item = make_item()
    many = make_item()
    extra = [image_add(item=many, data=image_bytes(seed=900 + i), filename=f"m{i}.jpg") for i in range(9)]
    others = [make_item() for _ in range(6)]
    axis = np.eye(VECTOR_DIM, dtype=np.float32)
    vector_put(model, query_item.images.get(), axis[0])
    # Ten images of one item all nearer than any other item: it must appear once, scored by its best
    # image, and the first 3×k candidates (mostly its images) are widened until k items come back.
    for i, image in enumerate([many.images.order_by("pk").first(), *extra]):
        vector_put(model, image, axis[0] + (0.05 + 0.02 * i) * axis[1])
    for i, item in enumerate(others):
        vector_put(model, item.images.get(), axis[0] + (0.5 + 0.1 * i) * axis[2])

    got = Embedding.objects.nearest(axis[0], 4, NearestFilters(collection_id=collection.pk,
                                                               exclude_item_id=query_item.pk), model=model)

    assert [n.item_id for n in got] == [many.pk, others[0].pk, others[1].pk, others[2].pk]
    best = axis[0] + 0.05 * axis[1]
    assert got[0].score == pytest.approx(float(best[0] / np.linalg.norm(best)), abs=2e-3)
    assert got[0].image_id == many.images.order_by("pk").first().pk
    assert query_item.pk not in [n.item_id for n in got]


@pytest.fixture
def big_set(collection):
    """3,000 items, half women's, 1% labelled "rare", each with one random unit vector."""
    rng = np.random.default_rng(7)
    model = vector_model()
    vectors = unit_vectors(rng, 3000)
    labels = ["rare" if i % 100 == 0 else "common" for i in range(3000)]
    genders = ["W" if i % 2 else "M" for i in range(3000)]
    items = bulk_items(collection, vectors, model, labels, genders)
    return model, vectors, labels, genders, items, unit_vectors(rng, 1)[0]


def _settings_in_force() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
        return cursor.fetchone()


@pytest.mark.django_db
def test_query_uses_the_models_hnsw_index_under_the_settings_nearest_applies(collection, big_set, settings):
    model, _, _, _, items, query = big_set
    everywhere = NearestFilters(collection_id=collection.pk)
    # `nearest` sets them with set_config(..., true): they last until this test's enclosing transaction ends.
    settings.STYLESITE_HNSW_EF_SEARCH = 23
    Embedding.objects.nearest(query, 12, everywhere, model=model)
    assert _settings_in_force() == ("23", "relaxed_order")
    Embedding.objects.nearest(query, 12, everywhere, model=model, ef_search=17)
    assert _settings_in_force() == ("17", "relaxed_order")
    women = NearestFilters(collection_id=collection.pk, gender="W")
    own = NearestFilters(collection_id=collection.pk, gender="W", exclude_item_id=items[0].pk)
    # The item's own vector, read inside the query, walks the index as a literal vector does.
    for query_of, filters in ((query, everywhere), (query, women), (ItemVector(items[0].pk), own)):
        sql, params = Embedding.objects.nearest_sql(query_of, filters, model=model)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, [*params, 36, 12])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert f"Index Scan using {model.index_name}" in plan, plan


@pytest.mark.django_db
def test_every_connection_opens_with_the_search_settings_so_the_default_search_is_one_statement(
        collection, big_set, settings, django_assert_num_queries):
    from django.db import connections

    model, _, _, _, _, query = big_set
    fresh = connections.create_connection("default")  # a new session, as the pool would open
    try:
        with fresh.cursor() as cursor:
            cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
            assert cursor.fetchone() == (str(settings.STYLESITE_HNSW_EF_SEARCH), "relaxed_order")
    finally:
        fresh.close()
    everywhere = NearestFilters(collection_id=collection.pk)
    with django_assert_num_queries(1):
        neighbours = Embedding.objects.nearest(query, 12, everywhere, model=model)
    with django_assert_num_queries(1):
        items = Embedding.objects.nearest_items(query, 12, everywhere, model=model)
    assert len(neighbours) == 12
    assert [(item.pk, pytest.approx(score)) for item, score in items] == [(n.item_id, n.score) for n in neighbours]
    expected = [list(ItemImage.objects.filter(item_id=item.pk).order_by("position", "id").values_list("pk", flat=True))
                for item, _ in items]
    with django_assert_num_queries(0):  # their images came with them
        assert [[image.pk for image in item.images.all()] for item, _ in items] == expected


@pytest.mark.django_db
def test_filter_returns_k_rows_thanks_to_the_iterative_index_scan(collection, big_set):
    model, vectors, _, genders, items, query = big_set
    filters = NearestFilters(collection_id=collection.pk, gender="W")
    sql, params = Embedding.objects.nearest_sql(query, filters, model=model)
    # Without the iterative scan, ef_search 10 yields 10 index rows, of which only ~half pass the filter.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', '10', true), "
                       "set_config('hnsw.iterative_scan', 'off', true)")
        cursor.execute(sql, [*params, 60, 20])
        assert len(cursor.fetchall()) < 20

    got = Embedding.objects.nearest(query, 20, filters, model=model, ef_search=10)

    women = [i for i, g in enumerate(genders) if g == "W"]
    assert len(got) == 20
    assert {n.item_id for n in got} <= {items[i].pk for i in women}
    order, _ = exact_order(query, vectors[women])
    # Graph search is approximate; here it finds at least 18 of the true 20.
    assert len({n.item_id for n in got} & {items[women[i]].pk for i in order[:20]}) >= 18


@pytest.mark.django_db
def test_rare_filter_returns_the_exact_top_k(collection, big_set):
    model, vectors, labels, _, items, query = big_set
    rare = [i for i, label in enumerate(labels) if label == "rare"]
    # For 30 matching rows Postgres rightly skips the graph (label index, then sort): exact results.
    got = Embedding.objects.nearest(query, 20, NearestFilters(collection_id=collection.pk, label="rare"),
                                    model=model, ef_search=10)
    order, _ = exact_order(query, vectors[rare])
    assert [n.item_id for n in got] == [items[rare[i]].pk for i in order[:20]]


@pytest.mark.django_db
def test_filters_and_k_rows_when_k_exist(collection, make_item):
    rng = np.random.default_rng(3)
    model = vector_model()
    specs = [("dress", "W", "train")] * 6 + [("dress", "M", "train")] * 6 + [("shirt", "W", "test")] * 6
    items = [make_item(label=label, gender=gender, split=split) for label, gender, split in specs]
    for item, vec in zip(items, unit_vectors(rng, len(items))):
        vector_put(model, item.images.get(), vec)
    query = unit_vectors(rng, 1)[0]
    base = {"collection_id": collection.pk}

    women_dresses = Embedding.objects.nearest(query, 6, NearestFilters(**base, label="dress", gender="W"), model=model)
    tests = Embedding.objects.nearest(query, 10, NearestFilters(**base, split="test"), model=model)

    assert {n.item_id for n in women_dresses} == {i.pk for i in items[:6]}
    assert {n.item_id for n in tests} == {i.pk for i in items[12:]}  # only 6 exist: all of them


@pytest.mark.django_db
def test_other_collections_are_not_searched(collection, make_item):
    other = CollectionFactory()
    model = vector_model()
    mine, theirs = make_item(), make_item(target=other)
    vector_put(model, mine.images.get(), np.eye(VECTOR_DIM)[0])
    vector_put(model, theirs.images.get(), np.eye(VECTOR_DIM)[0])
    got = Embedding.objects.nearest(np.eye(VECTOR_DIM)[0], 5, NearestFilters(collection_id=collection.pk), model=model)
    assert [n.item_id for n in got] == [mine.pk]


@pytest.mark.django_db
def test_switching_the_active_model_changes_the_vectors_searched(collection, make_item):
    old, new = vector_model("old-vectors"), vector_model("new-vectors")
    query_item, a, b = make_item(), make_item(), make_item()
    axis = np.eye(VECTOR_DIM, dtype=np.float32)
    # Under the old model `a` is the look-alike; under the new one it is `b`.
    for model, near, far in ((old, a, b), (new, b, a)):
        vector_put(model, query_item.images.get(), axis[0])
        vector_put(model, near.images.get(), axis[0] + 0.1 * axis[1])
        vector_put(model, far.images.get(), axis[1])
    active_model_switch(collection, old)
    assert [m.item.pk for m in similar_items(query_item, SearchParams(k=2))] == [a.pk, b.pk]

    active_model_switch(collection, new)
    assert [m.item.pk for m in similar_items(query_item, SearchParams(k=2))] == [b.pk, a.pk]


@pytest.mark.django_db
def test_dimension_mismatch_is_refused(collection):
    model = vector_model()
    with pytest.raises(ValueError, match="dimensions"):
        Embedding.objects.nearest(np.ones(VECTOR_DIM + 1), 3, NearestFilters(collection_id=collection.pk), model=model)


@pytest.mark.django_db
def test_an_items_own_vector_is_read_inside_the_query_from_its_first_image(collection, make_item):
    from catalog.services import image_add

    model = vector_model()
    query_item, a, b = make_item(), make_item(), make_item()
    back = image_add(item=query_item, data=image_bytes(seed=5), filename="back.jpg")
    axis = np.eye(VECTOR_DIM, dtype=np.float32)
    cover = query_item.images.order_by("position", "pk").first()
    vector_put(model, cover, axis[0])
    vector_put(model, back, axis[1])  # a later image: not the query
    vector_put(model, a.images.get(), axis[0] + 0.2 * axis[2])
    vector_put(model, b.images.get(), axis[1] + 0.1 * axis[2])
    filters = NearestFilters(collection_id=collection.pk, exclude_item_id=query_item.pk)

    by_item = Embedding.objects.nearest(ItemVector(query_item.pk), 2, filters, model=model)

    assert by_item == Embedding.objects.nearest(axis[0], 2, filters, model=model)
    assert [n.item_id for n in by_item] == [a.pk, b.pk]
    # The cover moves behind the back view: the back view is now the query.
    type(cover).objects.filter(pk=cover.pk).update(position=back.position + 1)
    assert [n.item_id for n in Embedding.objects.nearest(ItemVector(query_item.pk), 2, filters, model=model)] \
        == [b.pk, a.pk]
    # An item without a vector under the model finds nothing (the selector then says NotReady).
    assert Embedding.objects.nearest(ItemVector(a.pk), 2, filters, model=vector_model("other")) == []
