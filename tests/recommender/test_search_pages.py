"""Search pages: the item page's look-alikes, the photo-search page, and one run in headless Chromium."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from recommender.embeddings import active_model_switch
from recommender.pipeline.services import image_process
from tests.browser import VIEWPORTS, chromium_browser, page_at
from tests.factories import unit_vectors, vector_model, vector_put
from tests.photos import clothing_photos


@pytest.mark.django_db
def test_item_page_shows_twelve_look_alikes_with_scores_and_links(client, collection, make_item):
    model = vector_model()
    active_model_switch(collection, model)
    items = [make_item(label="dress") for _ in range(15)]
    for item, vec in zip(items, unit_vectors(np.random.default_rng(11), len(items))):
        vector_put(model, item.images.get(), vec)

    html = client.get(items[0].get_absolute_url()).content.decode()

    section = html[html.index('class="looks-like"'):]
    assert "Looks like" in section
    assert section.count('class="card"') == 12
    assert section.count('class="tag score"') == 12
    assert f'href="{items[0].get_absolute_url()}"' not in section
    assert sum(f'href="{i.get_absolute_url()}"' in section for i in items[1:]) == 12


@pytest.mark.django_db
def test_item_page_of_an_unprocessed_item_says_why_there_are_no_look_alikes(client, make_item):
    item = make_item()
    response = client.get(item.get_absolute_url())
    assert response.status_code == 200
    assert "has no embedding" in response.content.decode()


@pytest.mark.django_db
def test_photo_search_page_renders_with_filters_and_the_cropper(client, collection, make_item):
    make_item(label="skirt")
    html = client.get("/search/").content.decode()
    assert 'id="photo-search"' in html and 'data-api="/api/search/image/"' in html
    assert "cropperjs-1.6.3/cropper.min.js" in html and "search/photo_search.js" in html
    assert '<option value="garments" selected>' in html and "<option>skirt</option>" in html
    assert 'accept="image/jpeg,image/png,image/webp"' in html
    assert "csrftoken" in client.cookies


@pytest.mark.browser
def test_upload_a_photo_and_see_results_in_chromium(live_server, transactional_db, make_item, monkeypatch,
                                                    tmp_path):
    from playwright.sync_api import expect

    for label in ("shoes", "dress"):
        for path in clothing_photos(label, 2):
            item = make_item(label=label, data=path.read_bytes())
            assert image_process(item.images.get().pk) == "ready"
    photo = tmp_path / "phone-photo.jpg"
    shutil.copy(clothing_photos("shoes", 1, split="validation")[0], photo)
    # Playwright's sync API runs an event loop in this thread; the live server's DB work is elsewhere.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with chromium_browser() as browser:  # in the body, so that under CI a missing browser fails the test
        page, errors = page_at(browser, VIEWPORTS[1][1], live_server_url=live_server.url)  # a phone
        page.goto(f"{live_server.url}/search/")
        page.set_input_files("#ps-file", str(photo))
        expect(page.locator(".cropper-crop-box")).to_be_visible()
        page.click("#ps-submit")
        cards = page.locator("#ps-results .card")
        expect(cards).to_have_count(4, timeout=20_000)
        expect(page.locator("#ps-cutout")).to_have_attribute("src", re.compile(r"^data:image/webp;base64,"))
        assert "shoes" in cards.first.inner_text()
        assert errors == []
