import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_grid_shows_thumbnails_not_originals_and_filters(client, make_item):
    dress = make_item("dress", gender="W")
    make_item("hat", gender="M")
    page = client.get("/")
    html = page.content.decode()
    assert page.status_code == 200
    cover = dress.images.get()
    assert cover.thumbnail.url in html and cover.original.url not in html
    filtered = client.get("/", {"label": "hat"}).content.decode()
    assert "hat" in filtered and dress.title not in filtered


def test_grid_paginates(client, make_item):
    for _ in range(26):
        make_item()
    html = client.get("/").content.decode()
    assert "Page 1 of 2" in html
    assert client.get("/", {"page": 2}).status_code == 200
    assert client.get("/", {"page": "junk"}).status_code == 200


def test_detail_and_stats_pages(client, make_item):
    item = make_item("skirt", gender="W")
    detail = client.get(item.get_absolute_url())
    assert detail.status_code == 200 and "skirt" in detail.content.decode()
    assert client.get("/items/424242/").status_code == 404
    stats = client.get("/stats/").content.decode()
    assert "skirt" in stats


def test_catalog_stats_command(make_item):
    make_item("skirt", gender="W")
    make_item("skirt", gender="W")
    make_item("hat", gender="M")
    out = io.StringIO()
    call_command("catalog_stats", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "== Garments (garments)"
    assert lines[2].split() == ["label", "gender", "train", "total"]
    assert lines[3].split() == ["hat", "Men", "1", "1"]
    assert lines[4].split() == ["skirt", "Women", "2", "2"]
    assert lines[5].split() == ["total", "3", "3"]
