"""The statistics page, ``/api/stats/`` and ``catalog_stats``: pivots with totals, charts, pipeline state."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from catalog.lifecycle import image_fail, image_mark_ready
from catalog.selectors import collection_stats, reason_group
from catalog.services import collection_create
from tests.browser import VIEWPORTS, chromium_browser, page_at
from tests.photos import clothing_photos


def fail(item, reason: str) -> None:
    image_fail(item.images.get().pk, reason)


def ready(item, *, suspect: bool = False) -> None:
    image_mark_ready(item.images.get().pk, mask="", cutout="", foreground_share=0.01 if suspect else 0.4,
                     suspect=suspect)


@pytest.fixture
def garments(make_item):
    """Dresses outnumber hats 4 to 1; one image failed to decode, one is a suspect cut-out."""
    items = [make_item("dress", gender="W", split="train") for _ in range(3)]
    items.append(make_item("dress", gender="W", split="test"))
    items.append(make_item("hat", gender="M", split="validation"))
    ready(items[0])
    ready(items[1], suspect=True)
    fail(items[2], "cannot decode: broken data stream when reading image file")
    fail(items[3], "cannot decode: broken data stream when reading image file")
    return items


@pytest.mark.django_db
def test_pivot_has_a_column_per_split_and_totals_both_ways(collection, garments):
    (stats,) = collection_stats(collection)
    pivot = stats.pivot
    assert pivot.splits == ["train", "validation", "test"]
    assert [(r.label, r.gender, r.counts, r.total) for r in pivot.rows] == [
        ("dress", "W", {"train": 3, "validation": 0, "test": 1}, 4),
        ("hat", "M", {"train": 0, "validation": 1, "test": 0}, 1),
    ]
    assert pivot.column_totals == {"train": 3, "validation": 1, "test": 1} and pivot.total == 5
    assert [(s.label, s.count, s.share) for s in stats.labels] == [("dress", 4, 0.8), ("hat", 1, 0.2)]
    assert stats.imbalance_ratio == 4.0


@pytest.mark.django_db
def test_pipeline_state_counts_statuses_suspects_and_groups_failure_reasons(collection, garments, make_item):
    fail(make_item("hat"), "internal error: ValueError: x")
    (stats,) = collection_stats(collection)
    p = stats.pipeline
    assert (p.ready, p.pending, p.processing, p.failed, p.suspect, p.total) == (2, 1, 0, 3, 1, 6)
    assert [(r.reason, r.count) for r in p.failed_reasons] == [
        ("cannot decode: broken data stream when reading image file", 2), ("internal error: ValueError: x", 1)]


def test_reason_group_keeps_the_first_line_and_shortens_long_reasons():
    assert reason_group("cannot decode\nTraceback …") == "cannot decode"
    assert reason_group("") == "(no reason given)"
    long = reason_group("x" * 200)
    assert len(long) == 80 and long.endswith("…")


@pytest.mark.django_db
def test_every_collection_gets_its_section_and_an_empty_one_says_so(client, collection, garments):
    collection_create(name="Cafés", slug="cafes", kind="cafe")
    assert [s.collection.slug for s in collection_stats()] == ["cafes", "garments"]
    html = client.get("/stats/").content.decode()
    cafes = html[html.index('id="stats-cafes"'):html.index('id="stats-garments"')]
    assert "No items yet." in cafes and "No images yet." in cafes


@pytest.mark.django_db
def test_stats_page_shows_the_pivot_chart_imbalance_and_pipeline(client, garments):
    html = client.get("/stats/", {"collection": "garments"}).content.decode()
    table = html[html.index('<table class="data pivot"'):html.index("</table>")]
    assert "<th class=\"num\">Train</th><th class=\"num\">Validation</th><th class=\"num\">Test</th>" in table
    row = '<td>dress</td><td>Women</td><td class="num">3</td><td class="num">0</td><td class="num">1</td>' \
          '<td class="num total">4</td>'
    assert row in table
    assert '<tfoot><tr><th colspan="2">Total</th><td class="num">3</td><td class="num">1</td>' \
           '<td class="num">1</td><td class="num total">5</td></tr></tfoot>' in table
    # One SVG bar chart of the pivot (two rows) and one of the pipeline, drawn on the server.
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') >= 2
    assert "<title>dress · Women · Train: 3</title>" in html
    assert '<strong class="imbalanced">4.0×</strong>' in html
    assert '<li class="bad"><span class="big">2</span> failed</li>' in html
    assert '<li class="warn"><span class="big">1</span> suspect cut-out</li>' in html
    assert "<td>cannot decode: broken data stream when reading image file</td><td class=\"num\">2</td>" in html


@pytest.mark.django_db
def test_stats_page_of_an_unknown_collection_is_404(client):
    assert client.get("/stats/", {"collection": "nope"}).status_code == 404


@pytest.mark.django_db
def test_stats_api_has_the_pivot_labels_and_pipeline(api_client, garments):
    (stats,) = api_client.get("/api/stats/").json()
    assert stats["collection"] == "garments" and stats["name"] == "Garments"
    assert stats["pivot"]["column_totals"] == {"train": 3, "validation": 1, "test": 1}
    assert stats["labels"] == [{"label": "dress", "count": 4, "share": 0.8}, {"label": "hat", "count": 1, "share": 0.2}]
    assert stats["imbalance_ratio"] == 4.0
    assert stats["pipeline"] == {
        "pending": 1, "processing": 0, "ready": 2, "failed": 2, "suspect": 1, "total": 5,
        "failed_reasons": [{"reason": "cannot decode: broken data stream when reading image file", "count": 2}],
    }


@pytest.mark.django_db
def test_openapi_schema_declares_the_stats_response(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    response = schema["paths"]["/api/stats/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"type": "array", "items": {"$ref": "#/components/schemas/CollectionStats"}}
    components = schema["components"]["schemas"]
    assert set(components["CollectionStats"]["properties"]) == {
        "collection", "name", "pivot", "labels", "imbalance_ratio", "pipeline"}
    assert "failed_reasons" in components["PipelineState"]["properties"]


@pytest.mark.django_db
def test_command_prints_the_pivot_labels_pipeline_and_reasons(garments):
    out = io.StringIO()
    call_command("catalog_stats", "--collection", "garments", stdout=out)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[2].split() == ["label", "gender", "train", "validation", "test", "total"]
    assert lines[3].split() == ["dress", "Women", "3", "0", "1", "4"]
    assert lines[5].split() == ["total", "3", "1", "1", "5"]
    assert "labels, largest first (largest / smallest: 4.0x)" in text
    assert ["dress", "4", "80.0"] in [line.split() for line in lines]
    pipeline = lines[lines.index("image pipeline") + 2:lines.index("image pipeline") + 8]
    assert [line.split() for line in pipeline] == [["ready", "2"], ["pending", "1"], ["processing", "0"],
                                                   ["failed", "2"], ["suspect", "1"], ["total", "5"]]
    assert lines[-1].split()[-1] == "2" and lines[-1].startswith("cannot decode: broken data stream")


@pytest.mark.django_db
def test_command_rejects_an_unknown_collection():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no collection with slug 'nope'"):
        call_command("catalog_stats", "--collection", "nope", stdout=io.StringIO())



@pytest.mark.browser
def test_stats_page_in_chromium_at_laptop_and_phone_width(live_server, transactional_db, make_item, monkeypatch,
                                                         visitor, staff_user, shots):
    from recommender.preferences.services import vote_upsert

    for label, n in (("dress", 6), ("pants", 4), ("shoes", 2)):
        for i, path in enumerate(clothing_photos(label, n)):
            item = make_item(label, gender="W" if label == "dress" else "U", split=("train", "test")[i % 2],
                             data=path.read_bytes())
            ready(item, suspect=label == "shoes")
            # The recommender's votes block fills the page's slot: a few likes and dislikes.
            vote_upsert(visitor, item.pk, "like" if label != "pants" else "dislike")
            if i % 2:
                vote_upsert(staff_user, item.pk, "dislike")
    fail(make_item("hat"), "cannot decode: broken data stream when reading image file")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with chromium_browser() as browser:
        for name, viewport in VIEWPORTS:
            page, errors = page_at(browser, viewport, live_server_url=live_server.url)
            page.goto(f"{live_server.url}/stats/")
            section = page.locator("#stats-garments")
            assert section.locator("table.pivot tbody tr").count() == 4
            assert section.locator("table.pivot tfoot").inner_text().split() == ["Total", "7", "6", "13"]
            bars = section.locator("figure.chart svg").first
            assert bars.bounding_box()["width"] <= viewport["width"]
            assert section.locator("svg rect title").first.inner_html() == "dress · Women · Train: 3"
            assert "1 failed" in " ".join(section.locator(".pipeline-facts").inner_text().split())
            assert section.locator(".vote-stats table tbody tr").count() == 3
            # Nothing wider than the screen: the page never scrolls sideways.
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            page.screenshot(path=str(shots / f"stats-{name}.png"), full_page=True)
            assert errors == []
            page.close()
