"""The home that leads: three actions, "rate these" cards for signed-in users, the catalogue below."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from recommender.preferences.services import vote_upsert
from tests.browser import VIEWPORTS, chromium_browser, page_at
from tests.photos import clothing_photos


def lead_of(html: str) -> str:
    return html[html.index('<header class="lead">'):html.index("</header>", html.index('<header class="lead">'))]


@pytest.mark.django_db
def test_home_leads_a_visitor_to_the_three_actions(client, make_item):
    make_item()
    html = client.get("/").content.decode()
    lead = lead_of(html)
    actions = re.findall(r'<a class="action" href="([^"]*)"><strong>([^<]*)</strong>', lead)
    assert actions == [("/accounts/signup/?next=/", "Rate"), ("/search/", "Search by photo"),
                       ("#catalogue", "Find look-alikes")]
    assert 'id="rate-these"' not in html  # the cards are for signed-in users
    assert html.index("</header>", html.index('class="lead"')) < html.index('<h2 id="catalogue">Catalogue</h2>')
    assert html.count('class="card"') == 1


@pytest.mark.django_db
def test_signed_in_user_gets_unrated_cards_least_voted_first(client, make_item, visitor, staff_user):
    items = [make_item() for _ in range(6)]
    vote_upsert(visitor, items[5].pk, "like")  # rated by the visitor: never offered again
    vote_upsert(staff_user, items[4].pk, "like")  # rated by someone else: offered last
    client.force_login(visitor)
    html = client.get("/").content.decode()
    assert re.findall(r'<a class="action" href="([^"]*)"><strong>Rate', html) == ["/for-you/"]
    section = html[html.index('id="rate-these"'):html.index("</section>", html.index('id="rate-these"'))]
    offered = re.findall(r'<figure class="card">\s*<a href="/items/(\d+)/"', section)
    assert offered == [str(items[3].pk), str(items[2].pk), str(items[1].pk), str(items[0].pk)]
    assert section.count('class="vote-like"') == 4


@pytest.mark.django_db
def test_a_user_who_rated_everything_gets_no_rate_section(client, make_item, visitor):
    item = make_item()
    vote_upsert(visitor, item.pk, "dislike")
    client.force_login(visitor)
    assert 'id="rate-these"' not in client.get("/").content.decode()


@pytest.mark.django_db
def test_filtered_or_paged_listing_drops_the_lead(client, make_item, visitor):
    make_item("dress")
    client.force_login(visitor)
    for query in ({"label": "dress"}, {"q": "dress"}, {"page": "1"}, {"collection": "garments"}):
        html = client.get("/", query).content.decode()
        assert 'class="lead"' not in html and 'id="rate-these"' not in html, query
        assert '<h1 id="catalogue">' in html



@pytest.mark.browser
def test_home_in_chromium_at_laptop_and_phone_width(live_server, transactional_db, make_item, visitor,
                                                    monkeypatch, shots):
    from playwright.sync_api import expect

    for label in ("dress", "skirt", "shoes", "pants"):
        for path in clothing_photos(label, 2):
            make_item(label, data=path.read_bytes())
    signed_in = Client()
    signed_in.force_login(visitor)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with chromium_browser() as browser:
        for name, viewport in VIEWPORTS:
            page, errors = page_at(browser, viewport, live_server_url=live_server.url, session=signed_in)
            page.goto(f"{live_server.url}/")
            actions = page.locator(".lead .action")
            expect(actions).to_have_count(3)
            # All three actions are on the first screen.
            assert all(actions.nth(i).bounding_box()["y"] < viewport["height"] for i in range(3))
            rate = page.locator("#rate-these .card")
            expect(rate).to_have_count(4)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            page.screenshot(path=str(shots / f"home-{name}.png"), full_page=True)
            page.locator(".lead .action", has_text="Find look-alikes").click()
            expect(page).to_have_url(re.compile(r"#catalogue$"))
            rate.first.locator(".vote-like").click()
            expect(rate.first.locator(".vote-like")).to_have_attribute("aria-pressed", "true")
            assert errors == []
            page.context.close()
