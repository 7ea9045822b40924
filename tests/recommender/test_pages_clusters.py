"""Clusters named from their members until a curator renames them; the map legend and cluster pages use the names."""
from __future__ import annotations

import json
import re

import pytest

from recommender.models import StyleCluster
from recommender.styles import clustering, services
from tests.browser import VIEWPORTS, chromium_browser, page_at
from tests.factories import blob_vectors, embed
from tests.photos import clothing_photos


@pytest.fixture
def clustered(collection, make_item):
    """Three blobs: 6 dresses and 4 skirts, 10 pants, 10 shoes — clustered with a PCA map."""
    labels = ["dress"] * 6 + ["skirt"] * 4 + ["pants"] * 10 + ["shoes"] * 10
    photos = {label: clothing_photos(label, 10) for label in set(labels)}
    counts: dict[str, int] = {}
    items = []
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
        items.append(make_item(label, data=photos[label][counts[label] - 1].read_bytes()))
    embed(items, blob_vectors([10, 10, 10]))
    clustering.clustering_run(collection, map_method="pca", k_max=6)
    return {c.name: c for c in StyleCluster.objects.filter(collection=collection)}


@pytest.mark.django_db
def test_clusters_are_named_from_their_members_labels(clustered):
    assert sorted(clustered) == ["dress 60% · skirt 40%", "pants 100%", "shoes 100%"]
    assert not any(c.named_by_curator for c in clustered.values())


@pytest.mark.django_db
def test_map_page_gives_the_legend_the_names_and_marks_curated_ones(client, collection, clustered):
    services.cluster_rename(clustered["pants 100%"], "Trousers")
    html = client.get(f"/styles/{collection.slug}/").content.decode()
    names = json.loads(re.search(r'<script id="cluster-names" type="application/json">(.*?)</script>', html)[1])
    assert sorted(names.values()) == ["Trousers", "dress 60% · skirt 40%", "shoes 100%"]
    assert names[str(clustered["shoes 100%"].index)] == "shoes 100%"
    assert re.search(r">Trousers</a> <span class=\"tag muted\" title=\"named by a curator\">curated</span>", html)
    assert html.count(">curated</span>") == 1


@pytest.mark.django_db
def test_cluster_page_is_titled_by_its_name(client, clustered):
    cluster = clustered["dress 60% · skirt 40%"]
    html = client.get(f"/styles/clusters/{cluster.pk}/").content.decode()
    assert "<title>dress 60% · skirt 40% · Stylesite</title>" in html
    assert f'<span class="swatch" data-cluster="{cluster.index}"></span>dress 60% · skirt 40%</h1>' in html
    assert "named from its members' labels until a curator renames it" in html
    services.cluster_rename(cluster, "Summer dresses")
    assert ", named by a curator." in client.get(f"/styles/clusters/{cluster.pk}/").content.decode()



@pytest.mark.browser
def test_map_legend_and_cluster_page_in_chromium(live_server, transactional_db, collection, clustered,
                                                 monkeypatch, shots):
    from playwright.sync_api import expect

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_browser() as browser:
        for name, viewport in VIEWPORTS:
            page, errors = page_at(browser, viewport, live_server_url=live_server.url)
            page.goto(f"{live_server.url}/styles/{collection.slug}/")
            page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('style-map'))")
            legend = page.evaluate(
                "() => Chart.getChart(document.getElementById('style-map')).data.datasets.map(d => d.label)")
            assert sorted(legend) == sorted(clustered)
            page.screenshot(path=str(shots / f"map-{name}.png"), full_page=True)
            page.goto(f"{live_server.url}/styles/clusters/{clustered['dress 60% · skirt 40%'].pk}/")
            expect(page.locator("h1")).to_have_text("dress 60% · skirt 40%")
            swatch = page.locator("h1 .swatch").evaluate("el => getComputedStyle(el).backgroundColor")
            assert swatch != "rgba(0, 0, 0, 0)"  # coloured like the cluster's points on the map
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            page.screenshot(path=str(shots / f"cluster-{name}.png"), full_page=True)
            assert errors == []
            page.close()
