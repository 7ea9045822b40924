"""The item page: original and cut-out side by side, suspect flag, state and embedding model,
the staff re-process button, and which space answered the look-alikes."""
from __future__ import annotations

import pytest
from django.test import Client

from catalog.lifecycle import image_fail, image_mark_ready
from catalog.models import ItemImage
from catalog.services import collection_create
from recommender.pipeline.services import image_process
from tests.browser import VIEWPORTS, chromium_browser, page_at
from tests.photos import clothing_photos


@pytest.fixture
def cut_collection(db):
    """A collection whose images are cut out of their background (the pipeline's full path)."""
    return collection_create(name="Looks", slug="looks", remove_background=True)


@pytest.fixture
def processed(make_item, cut_collection):
    """Two real garment photos run through the real pipeline: cut out, embedded, ready."""
    items = [make_item(label, data=clothing_photos(label, 1)[0].read_bytes(), target=cut_collection)
             for label in ("dress", "shoes")]
    for item in items:
        assert image_process(item.images.get().pk) == "ready"
    return items


@pytest.mark.django_db
def test_processed_item_shows_original_and_cutout_state_model_and_space(client, processed, visitor):
    item = processed[0]
    image = item.images.get()
    client.force_login(visitor)
    html = client.get(item.get_absolute_url()).content.decode()
    compare = html[html.index('<div class="compare">'):html.index('<div class="detail-info">')]
    assert f'<img src="{image.original.url}"' in compare and f'<img src="{image.cutout.url}"' in compare
    assert html.count('class="view-toggle"') == 3 and 'id="view-both" class="view-toggle" checked' in html
    assert '<span class="status status-ready">Ready</span>' in html
    facts = html[html.index("<dt>Embedding</dt>"):html.index("</dl>")]
    model = item.collection.embedding_model
    assert model.startswith("efficientnet-lite0") and model in facts and "1280-d" in facts
    assert "searches use it" in facts
    looks = html[html.index('class="looks-like"'):]
    assert f"Answered in the space of <strong>{model}</strong>" in looks
    assert looks.count('class="card"') == 1
    # The look-alike cards know the signed-in visitor: vote buttons, not "Log in to like".
    assert looks.count('class="vote-like"') == 1 and "Log in to like" not in looks


@pytest.mark.django_db
def test_suspect_cutout_is_flagged(client, make_item):
    item = make_item()
    image_mark_ready(item.images.get().pk, mask="masks/m.png", cutout="cutouts/c.webp", foreground_share=0.02,
                     suspect=True)
    html = client.get(item.get_absolute_url()).content.decode()
    assert '<p class="flag suspect" role="note"><strong>Suspect cut-out.</strong>' in html
    assert "it keeps 2% of the picture" in html
    assert '<figure class="shot cutout suspect">' in html and "Cut-out · suspect" in html


@pytest.mark.django_db
def test_unprocessed_item_has_no_toggle_and_says_it_is_not_embedded(client, make_item):
    item = make_item()
    html = client.get(item.get_absolute_url()).content.decode()
    assert "view-toggle" not in html and 'class="shot cutout' not in html
    assert '<span class="status status-pending">Pending</span>' in html
    assert "not embedded yet" in html
    assert "flag suspect" not in html


@pytest.mark.django_db
def test_failed_item_shows_its_reason(client, make_item):
    item = make_item()
    image_fail(item.images.get().pk, "cannot decode: truncated file")
    html = client.get(item.get_absolute_url()).content.decode()
    assert '<span class="status status-failed">Failed</span>: cannot decode: truncated file' in html


@pytest.mark.django_db
def test_reprocess_button_is_for_staff_only(client, make_item, staff_user, visitor):
    item = make_item()
    assert "Re-process" not in client.get(item.get_absolute_url()).content.decode()
    client.force_login(visitor)
    assert "Re-process" not in client.get(item.get_absolute_url()).content.decode()
    client.force_login(staff_user)
    html = client.get(item.get_absolute_url()).content.decode()
    assert f'action="/items/{item.pk}/reprocess/"' in html and "csrfmiddlewaretoken" in html


@pytest.mark.django_db
def test_staff_reprocess_sends_the_images_back_through_the_pipeline(client, make_item, staff_user,
                                                                      django_capture_on_commit_callbacks):
    item = make_item()
    image_fail(item.images.get().pk, "cannot decode: truncated file")
    client.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(f"/items/{item.pk}/reprocess/")
    assert response.status_code == 302 and response["Location"] == item.get_absolute_url()
    image = item.images.get()
    assert (image.status, image.error, image.attempts) == (ItemImage.Status.PENDING, "", 0)
    assert len(queued) == 1  # the pipeline is asked once the transaction commits
    page = client.get(item.get_absolute_url()).content.decode()
    assert "1 image sent back through the pipeline." in page


@pytest.mark.django_db
def test_reprocess_refuses_visitors_get_and_missing_csrf_and_changes_nothing(client, make_item, staff_user,
                                                                             visitor):
    item = make_item()
    image_fail(item.images.get().pk, "cannot decode: truncated file")
    url = f"/items/{item.pk}/reprocess/"
    assert client.post(url).status_code == 403  # anonymous
    client.force_login(visitor)
    assert client.post(url).status_code == 403
    client.force_login(staff_user)
    assert client.get(url).status_code == 405
    assert client.post("/items/424242/reprocess/").status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    assert strict.post(url).status_code == 403
    assert item.images.get().status == ItemImage.Status.FAILED



@pytest.mark.browser
def test_item_page_toggle_and_reprocess_in_chromium(live_server, transactional_db, make_item, cut_collection,
                                                    staff_user, monkeypatch, shots):
    from playwright.sync_api import expect

    items = [make_item(label, data=clothing_photos(label, 1)[0].read_bytes(), target=cut_collection)
             for label in ("dress", "skirt", "shoes")]
    for item in items:
        assert image_process(item.images.get().pk) == "ready"
    staff = Client()
    staff.force_login(staff_user)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with chromium_browser() as browser:
        for name, viewport in VIEWPORTS:
            page, errors = page_at(browser, viewport, live_server_url=live_server.url, session=staff)
            page.goto(f"{live_server.url}{items[0].get_absolute_url()}")
            original, cutout = page.locator(".compare .original"), page.locator(".compare .cutout")
            expect(original).to_be_visible()
            expect(cutout).to_be_visible()
            # Side by side: the two pictures share one row.
            assert original.bounding_box()["y"] == cutout.bounding_box()["y"]
            expect(page.locator(".looks-like .space")).to_contain_text(items[0].collection.embedding_model)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            page.screenshot(path=str(shots / f"item-{name}.png"), full_page=True)
            page.click("label[for=view-cutout]")
            expect(original).to_be_hidden()
            expect(cutout).to_be_visible()
            page.click("label[for=view-original]")
            expect(cutout).to_be_hidden()
            expect(original).to_be_visible()
            assert errors == []
            page.context.close()
        page, _ = page_at(browser, VIEWPORTS[0][1], live_server_url=live_server.url, session=staff)
        page.goto(f"{live_server.url}{items[0].get_absolute_url()}")
        page.click("form.reprocess button")
        expect(page.locator(".messages")).to_contain_text("1 image sent back through the pipeline.")
        expect(page.locator(".state .status")).to_have_text("Pending")
