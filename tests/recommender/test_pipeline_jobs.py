"""The jobs page and ``GET /api/jobs/`` (issue 15, item 6): staff only, states, throughput, ETA, retry."""
from __future__ import annotations

import pytest

from catalog.lifecycle import image_fail
from catalog.models import ItemImage
from recommender.pipeline.services import image_process


@pytest.fixture
def states(make_item):
    """Three images: one ready, one failed with a reason, one pending."""
    ready, failed, pending = (make_item().images.get() for _ in range(3))
    assert image_process(ready.pk) == "ready"
    image_fail(failed.pk, "not an image: cannot identify image file")
    return ready, failed, pending


@pytest.mark.django_db
def test_api_jobs_counts_each_state_with_reasons_throughput_and_eta(api_client, staff_user, states, settings):
    ready, failed, pending = states
    api_client.force_authenticate(staff_user)
    body = api_client.get("/api/jobs/").json()
    assert [q["name"] for q in body["queues"]] == [settings.CELERY_TASK_DEFAULT_QUEUE, settings.STYLESITE_REFINE_QUEUE]
    assert [q["running"] for q in body["queues"]] == [0, 0]
    [garments] = body["collections"]
    assert {key: garments[key] for key in ("collection", "pending", "processing", "refine_waiting", "refining",
                                           "failed", "ready")} == {
        "collection": "garments", "pending": 1, "processing": 0, "refine_waiting": 0, "refining": 0,
        "failed": 1, "ready": 1}
    # Two images finished in the last 5 minutes: 0.4 a minute, so the one left takes 150 s.
    assert (garments["per_minute"], garments["eta_seconds"]) == (0.4, 150)
    assert garments["failures"] == [{"image": failed.pk, "item": failed.item_id, "title": failed.item.title,
                                     "status": "failed", "reason": "not an image: cannot identify image file"}]


@pytest.mark.django_db
def test_api_jobs_is_for_staff_only(api_client, visitor, states):
    assert api_client.get("/api/jobs/").status_code == 401
    api_client.force_authenticate(visitor)
    assert api_client.get("/api/jobs/").status_code == 403


@pytest.mark.django_db
def test_the_jobs_page_shows_staff_the_failures_and_retries_them(client, staff_user, visitor, states):
    ready, failed, pending = states
    client.force_login(visitor)
    assert client.get("/jobs/").status_code == 302
    assert client.post("/jobs/garments/retry/").status_code == 302
    assert ItemImage.objects.get(pk=failed.pk).status == "failed"

    client.force_login(staff_user)
    page = client.get("/jobs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "not an image: cannot identify image file" in html and "Retry 1 failed" in html
    assert client.get("/").content.decode().count('href="/jobs/"') == 1  # the staff nav link
    assert client.post("/jobs/nope/retry/").status_code == 404
    response = client.post("/jobs/garments/retry/")
    assert response.status_code == 302 and response.url == "/jobs/"
    failed.refresh_from_db()
    assert (failed.status, failed.error) == ("pending", "")


@pytest.mark.django_db
def test_a_visitor_sees_no_jobs_link(client, visitor, states):
    client.force_login(visitor)
    assert 'href="/jobs/"' not in client.get("/").content.decode()
