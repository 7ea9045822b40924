"""The Content-Security-Policy keeps every page working: no violations in headless Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.environ.get("STYLESITE_SCREENSHOT_DIR")  # set it to keep a PNG of each page


@pytest.mark.browser
def test_pages_run_under_the_policy_without_violations(live_server, transactional_db, make_item, monkeypatch):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is absent under CI")
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    item = make_item(label="dress")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's event loop runs in this thread
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text)
                    if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text else None)
            for path in ("/", f"/items/{item.pk}/", "/search/", "/styles/", "/accounts/login/", "/api/docs/"):
                response = page.goto(f"{live_server.url}{path}")
                assert response.status == 200 and response.headers["content-security-policy"]
                page.wait_for_load_state("networkidle")
                if SHOTS:
                    page.screenshot(path=f"{SHOTS}/{path.strip('/').replace('/', '_') or 'home'}.png", full_page=True)
            expect(page.locator(".swagger-ui .opblock").first).to_be_visible()  # the docs' script ran
            page.goto(f"{live_server.url}/stats/")
            page.select_option("select[name=collection]", "garments")  # the filter submits itself (no inline JS)
            page.wait_for_url("**/stats/?collection=garments")
            assert problems == []
        finally:
            browser.close()
