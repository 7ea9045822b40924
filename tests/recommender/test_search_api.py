"""Similarity-search API on real models, real Postgres+pgvector; uploads never stored."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from PIL import Image

from catalog.models import Item, ItemImage
from recommender.models import Embedding
from recommender.pipeline.services import image_process
from tests.factories import unit_vectors, vector_model, vector_put
from tests.photos import clothing_photos

SEARCH = "/api/search/image/"


def files_under(root) -> set[Path]:
    return {p for p in Path(root).rglob("*") if p.is_file()}


@pytest.fixture
def garments(collection, make_item):
    """Three dresses, three shoes and three pants from the demo photos, through the real pipeline."""
    items = []
    for label in ("dress", "shoes", "pants"):
        for path in clothing_photos(label, 3):
            item = make_item(label=label, gender="W" if label == "dress" else "U", data=path.read_bytes())
            assert image_process(item.images.get().pk) == "ready"
            items.append(item)
    return items


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_similar_items_api_shape_filters_and_limits(api_client, collection, make_item):
    model = vector_model()
    from recommender.embeddings import active_model_switch

    active_model_switch(collection, model)
    items = [make_item(label="dress" if i % 2 else "skirt", gender="W") for i in range(8)]
    for item, vec in zip(items, unit_vectors(np.random.default_rng(5), len(items))):
        vector_put(model, item.images.get(), vec)

    response = api_client.get(f"/api/items/{items[0].pk}/similar/?k=3")
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 3 and items[0].pk not in [row["item"]["id"] for row in body]
    assert set(body[0]) == {"item", "score", "space"} and body[0]["item"]["url"] == f"/items/{body[0]['item']['id']}/"
    assert body[0]["space"] == "raw"
    assert body[0]["score"] >= body[1]["score"] >= body[2]["score"]

    dresses = api_client.get(f"/api/items/{items[0].pk}/similar/", {"label": "dress", "gender": "W"}).json()
    assert len(dresses) == 4 and {row["item"]["label"] for row in dresses} == {"dress"}

    for query, message in (("k=101", "k must be"), ("k=0", "k must be"), ("k=x", "k must be"),
                           ("gender=Q", "gender"), ("collection=nope", "no collection")):
        bad = api_client.get(f"/api/items/{items[0].pk}/similar/?{query}")
        assert bad.status_code == 400 and message in bad.json()["detail"], query
    assert api_client.get("/api/items/999999/similar/").status_code == 404


@pytest.mark.django_db
def test_similar_items_of_an_unprocessed_item_is_409(api_client, collection, make_item):
    item = make_item()
    response = api_client.get(f"/api/items/{item.pk}/similar/")
    assert response.status_code == 409 and "no embedding" in response.json()["detail"]


@pytest.mark.django_db
def test_photo_search_finds_the_same_kind_of_garment(api_client, collection, garments, settings):
    before = files_under(settings.MEDIA_ROOT)
    counts = (Item.objects.count(), ItemImage.objects.count(), Embedding.objects.count())
    photo = clothing_photos("shoes", 1, split="validation")[0]

    response = api_client.post(SEARCH, {"image": photo.open("rb"), "k": 4, "collection": collection.slug},
                               format="multipart")

    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) == 4
    assert [r["item"]["label"] for r in body["results"][:3]] == ["shoes"] * 3
    assert body["facets"]["label"][0] == {"value": "shoes", "count": 3}
    assert body["query"]["crop"] is None and body["query"]["background_removed"] is False
    assert body["query"]["cutout"].startswith("data:image/webp;base64,")
    assert body["query"]["looks_like"] is None  # no style classifier trained for this collection
    # Nothing of the upload is kept.
    assert (Item.objects.count(), ItemImage.objects.count(), Embedding.objects.count()) == counts
    assert files_under(settings.MEDIA_ROOT) == before


def _side_by_side(left: Path, right: Path) -> tuple[bytes, tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A "street photo" holding two garments; returns it and the boxes of the left and right ones."""
    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    canvas = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return buf.getvalue(), (0, 0, a.width, a.height), (a.width, 0, b.width, b.height)


@pytest.mark.django_db
def test_photo_search_with_a_crop_searches_only_the_cropped_garment(api_client, collection, garments):
    data, dress_box, pants_box = _side_by_side(clothing_photos("dress", 1, "validation")[0],
                                               clothing_photos("pants", 1, "validation")[0])
    for box, label in ((dress_box, "dress"), (pants_box, "pants")):
        response = api_client.post(SEARCH, {"image": io.BytesIO(data), "crop": ",".join(map(str, box)), "k": 3},
                                   format="multipart")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["query"]["crop"] == list(box)
        assert body["results"][0]["item"]["label"] == label, body["results"]


@pytest.mark.django_db
def test_a_large_sideways_phone_photo_is_uprighted_before_its_crop(api_client, collection, garments):
    data, _, pants_box = _side_by_side(clothing_photos("dress", 1, "validation")[0],
                                               clothing_photos("pants", 1, "validation")[0])
    upright = Image.open(io.BytesIO(data))
    upright = upright.resize((upright.width * 4, upright.height * 4))
    # Stored as a phone stores it: pixels turned a quarter, EXIF orientation 6 says "turn me back".
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    upright.rotate(90, expand=True).save(buf, "JPEG", quality=85, exif=exif.tobytes())
    box = [v * 4 for v in pants_box]  # the crop is in pixels of the upright photo, as the page sends it

    response = api_client.post(SEARCH, {"image": io.BytesIO(buf.getvalue()), "crop": ",".join(map(str, box)),
                                        "k": 3}, format="multipart")

    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["item"]["label"] == "pants"


@pytest.mark.django_db
def test_photo_search_filters_apply(api_client, collection, garments):
    photo = clothing_photos("shoes", 1, split="validation")[0]
    response = api_client.post(SEARCH, {"image": photo.open("rb"), "label": "dress", "gender": "W"},
                               format="multipart")
    assert response.status_code == 200
    assert [r["item"]["label"] for r in response.json()["results"]] == ["dress"] * 3


@pytest.mark.django_db
def test_photo_search_cuts_out_when_the_collection_does(api_client, make_item):
    from catalog.services import collection_create

    cut = collection_create(name="Cut", slug="cut", remove_background=True)
    for label in ("dress", "shoes"):
        item = make_item(label=label, data=clothing_photos(label, 1)[0].read_bytes(), target=cut)
        assert image_process(item.images.get().pk) == "ready"
    photo = clothing_photos("shoes", 1, split="validation")[0]

    response = api_client.post(SEARCH, {"image": photo.open("rb"), "collection": "cut", "k": 2}, format="multipart")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["query"]["background_removed"] is True
    assert body["results"][0]["item"]["label"] == "shoes"


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    return buf.getvalue()


BAD_UPLOADS = {
    "text file": (lambda: b"just some words, not a picture", {}, "not a JPEG, PNG or WebP"),
    "pixel bomb": (_bomb, {}, "pixels"),
    "truncated jpeg": (lambda: clothing_photos("dress", 1)[0].read_bytes()[:2000], {}, "truncated"),
    "crop outside": (lambda: clothing_photos("dress", 1)[0].read_bytes(), {"crop": "0,0,5000,10"}, "outside"),
    "crop garbage": (lambda: clothing_photos("dress", 1)[0].read_bytes(), {"crop": "1,2,three"}, "crop must"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_uploads_are_400_and_store_nothing(api_client, collection, settings, case):
    make, extra, message = BAD_UPLOADS[case]
    before = files_under(settings.MEDIA_ROOT)
    counts = (Item.objects.count(), ItemImage.objects.count(), Embedding.objects.count())
    response = api_client.post(SEARCH, {"image": io.BytesIO(make()), **extra}, format="multipart")
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert (Item.objects.count(), ItemImage.objects.count(), Embedding.objects.count()) == counts
    assert files_under(settings.MEDIA_ROOT) == before


@pytest.mark.django_db
def test_uploads_over_10_mb_are_400_before_decoding(api_client, collection):
    missing = api_client.post(SEARCH, {"k": 3}, format="multipart")
    assert missing.status_code == 400 and "`image`" in missing.json()["detail"]
    # 10 MB by default: a file of exactly 10 MiB passes the size check and reaches the decoder, which
    # refuses its bytes; one byte more is refused by size, before anything decodes it.
    at_cap = api_client.post(SEARCH, {"image": io.BytesIO(b"\xff" * (10 * 1024 * 1024))}, format="multipart")
    assert at_cap.status_code == 400 and "not a JPEG, PNG or WebP" in at_cap.json()["detail"]
    body = encode_multipart(BOUNDARY, {"image": io.BytesIO(b"\xff" * (10 * 1024 * 1024 + 1))})
    response = api_client.generic("POST", SEARCH, body, content_type=MULTIPART_CONTENT)
    assert response.status_code == 400
    assert response.json()["detail"] == "the file is 10.5 MB; images may be at most 10 MB"
    huge = api_client.post(SEARCH, {"image": io.BytesIO(b"\xff" * (30 * 1024 * 1024))}, format="multipart")
    assert huge.status_code == 400 and "at most 10 MB" in huge.json()["detail"]


@pytest.mark.django_db
def test_photo_search_is_throttled_per_client_with_retry_after(api_client, collection, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"photo_search": "2/min"}}
    codes = [api_client.post(SEARCH, {"image": io.BytesIO(b"nope")}, format="multipart").status_code
             for _ in range(3)]
    assert codes == [400, 400, 429]
    throttled = api_client.post(SEARCH, {"image": io.BytesIO(b"nope")}, format="multipart")
    assert throttled.status_code == 429 and 0 < int(throttled["Retry-After"]) <= 60
    # Another client (another address) has its own allowance.
    other = api_client.post(SEARCH, {"image": io.BytesIO(b"nope")}, format="multipart", REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 400


@pytest.mark.django_db
def test_both_endpoints_are_in_the_openapi_schema_with_examples(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    similar = schema["paths"]["/api/items/{id}/similar/"]["get"]
    search = schema["paths"]["/api/search/image/"]["post"]
    assert {p["name"] for p in similar["parameters"]} >= {"k", "collection", "label", "gender"}
    assert "examples" in similar["responses"]["200"]["content"]["application/json"]
    assert "multipart/form-data" in search["requestBody"]["content"]
    assert "examples" in search["responses"]["200"]["content"]["application/json"]
    assert "429" in search["responses"]



# The item with its collection, its active model, and one statement that searches (the item's vector read
# inside it) and returns the neighbours with their images. Before: 8 (BEGIN, search settings, the search,
# COMMIT, the neighbours, their images in statements of their own); 9 before that.
SIMILAR_MAX_QUERIES = 3


@pytest.mark.django_db
def test_similar_items_costs_a_fixed_number_of_queries_and_answers_as_the_item_serializer(
        api_client, collection, make_item, django_assert_max_num_queries):
    from catalog.serializers import ItemSerializer
    from catalog.services import image_add
    from recommender.embeddings import active_model_switch
    from tests.photos import image_bytes

    model = vector_model()
    active_model_switch(collection, model)
    items = [make_item(label="dress", gender="W") for _ in range(14)]
    Item.objects.filter(pk=items[3].pk).update(price="12.50", external_id="sku-3", category="evening")
    extra = image_add(item=items[3], data=image_bytes(seed=77), filename="back.jpg")  # a second image
    for item, vec in zip(items, unit_vectors(np.random.default_rng(8), len(items))):
        vector_put(model, item.images.order_by("position", "pk").first(), vec)
    vector_put(model, extra, unit_vectors(np.random.default_rng(9), 1)[0])

    with django_assert_max_num_queries(SIMILAR_MAX_QUERIES):
        response = api_client.get(f"/api/items/{items[0].pk}/similar/?k=13")

    assert response.status_code == 200
    body = response.json()
    assert len(body) == 13
    # The lean output is exactly what ItemSerializer (the schema's declaration) would write.
    by_pk = Item.objects.with_cover().in_bulk([row["item"]["id"] for row in body])
    request = response.wsgi_request
    for row in body:
        expected = ItemSerializer(by_pk[row["item"]["id"]], context={"request": request}).data
        assert row["item"] == expected
    priced = next(row["item"] for row in body if row["item"]["id"] == items[3].pk)
    assert priced["price"] == "12.50" and len(priced["images"]) == 2
    assert priced["images"][0]["original"].startswith("http://testserver/")
