import pytest
from rest_framework.authtoken.models import Token

from catalog.models import Item
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_item_list_detail_and_filters(api_client, make_item):
    dress = make_item("dress", gender="W")
    make_item("hat", gender="M")
    listing = api_client.get("/api/items/").json()
    assert listing["count"] == 2
    filtered = api_client.get("/api/items/", {"label": "dress"}).json()
    assert [r["id"] for r in filtered["results"]] == [dress.pk]
    detail = api_client.get(f"/api/items/{dress.pk}/").json()
    assert detail["label"] == "dress" and detail["collection"] == "garments"
    assert detail["images"][0]["thumbnail"].endswith(".webp")
    assert api_client.get("/api/items/999999/").status_code == 404


def test_pagination_is_capped_at_100(api_client, collection):
    Item.objects.bulk_create(ItemFactory.build_batch(101, collection=collection))
    page = api_client.get("/api/items/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["count"] == 101 and page["next"]
    big = api_client.get("/api/items/", {"page_size": 10_000})
    assert big.status_code == 200
    assert len(big.json()["results"]) == 100 and big.json()["next"]


def test_writes_are_staff_only(api_client, collection, staff_user, visitor):
    payload = {"collection": "garments", "title": "New coat", "label": "outwear", "split": "train"}
    anonymous = api_client.post("/api/items/", payload, format="json")
    assert anonymous.status_code == 401
    api_client.force_authenticate(visitor)
    assert api_client.post("/api/items/", payload, format="json").status_code == 403
    assert api_client.post("/api/collections/", {"name": "X", "slug": "x"}, format="json").status_code == 403
    api_client.force_authenticate(staff_user)
    created = api_client.post("/api/items/", payload, format="json")
    assert created.status_code == 201, created.content
    item_id = created.json()["id"]
    patched = api_client.patch(f"/api/items/{item_id}/", {"label": "coat"}, format="json")
    assert patched.status_code == 200 and patched.json()["label"] == "coat"


def test_token_auth(api_client, staff_user):
    bad = api_client.post("/api/auth/token/", {"username": "curator", "password": "wrong"})
    assert bad.status_code == 400
    ok = api_client.post("/api/auth/token/", {"username": "curator", "password": "pw-curator-1"})
    assert ok.status_code == 200
    assert ok.json()["token"] == Token.objects.get(user=staff_user).key
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {ok.json()['token']}")
    resp = api_client.post("/api/collections/", {"name": "Cafés", "slug": "cafes", "kind": "cafe"}, format="json")
    assert resp.status_code == 201


def test_stats_api_gives_the_pivot_of_the_collection(api_client, make_item):
    for _ in range(3):
        make_item("dress", gender="W", split="train")
    make_item("hat", gender="M", split="test")
    make_item("dress", gender="W", split="test")
    (stats,) = api_client.get("/api/stats/", {"collection": "garments"}).json()
    pivot = stats["pivot"]
    assert pivot["splits"] == ["train", "test"]
    assert pivot["rows"] == [
        {"label": "dress", "gender": "W", "counts": {"train": 3, "test": 1}, "total": 4},
        {"label": "hat", "gender": "M", "counts": {"train": 0, "test": 1}, "total": 1},
    ]
    assert pivot["column_totals"] == {"train": 3, "test": 2} and pivot["total"] == 5
    assert api_client.get("/api/stats/", {"collection": "nope"}).status_code == 404


def test_progress_endpoint(api_client, make_item, collection):
    make_item()
    data = api_client.get(f"/api/collections/{collection.pk}/progress/").json()
    assert data["pending"] == 1 and data["total"] == 1 and data["ready"] == 0


def test_openapi_schema_and_docs(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/items/" in paths and "/api/stats/" in paths and "/api/collections/{id}/progress/" in paths
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
