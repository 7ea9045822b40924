"""The Content-Security-Policy keeps every page working: no violations in headless Chromium."""
from __future__ import annotations

import pytest

from tests.browser import VIEWPORTS, chromium_browser, page_at


@pytest.mark.browser
def test_pages_run_under_the_policy_without_violations(live_server, transactional_db, make_item, monkeypatch,
                                                        shots):
    from playwright.sync_api import expect

    item = make_item(label="dress")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's event loop runs in this thread
    with chromium_browser() as browser:
        page, problems = page_at(browser, VIEWPORTS[0][1], live_server_url=live_server.url)
        page.on("console", lambda msg: problems.append(msg.text)
                if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text else None)
        for path in ("/", f"/items/{item.pk}/", "/search/", "/styles/", "/accounts/login/", "/api/docs/"):
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200 and response.headers["content-security-policy"]
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"{path.strip('/').replace('/', '_') or 'home'}.png"), full_page=True)
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible()  # the docs' script ran
        page.goto(f"{live_server.url}/stats/")
        page.select_option("select[name=collection]", "garments")  # the filter submits itself (no inline JS)
        page.wait_for_url("**/stats/?collection=garments")
        assert problems == []
