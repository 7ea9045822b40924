"""The rule for tests that drive headless Chromium: under CI a missing browser is a failure, not a skip."""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from django.test import Client
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the ``CI`` environment variable is set to anything but empty, ``0`` or ``false``."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false")


def chromium_or_skip(path: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """``path`` (default ``CHROMIUM``) when Chromium is there; otherwise fail the test under CI and skip it
    elsewhere. A silent skip in CI would let the only end-to-end check of the photo-search page vanish.
    """
    path = path or CHROMIUM
    if Path(path).exists():
        return path
    message = f"{path} is absent (apt-get install chromium)"
    if in_ci(environ):
        pytest.fail(f"{message}; CI must run the browser tests", pytrace=False)
    pytest.skip(message)


# The two widths every page is checked at: a laptop and a phone.
VIEWPORTS = (("laptop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844}))


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """Headless Chromium for one test, closed afterwards. Call it in the test body: under CI a
    missing browser then fails the test (``chromium_or_skip``)."""
    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield browser
        finally:
            browser.close()


def page_at(browser: Browser, viewport: dict[str, int], *, live_server_url: str,
            session: Client | None = None) -> tuple[Page, list[str]]:
    """A new page at ``viewport``, signed in as the test ``session`` when given, and the list that
    collects its uncaught script errors (a test asserts it stays empty)."""
    context = browser.new_context(viewport=viewport)
    if session is not None:
        context.add_cookies([{"name": "sessionid", "value": session.cookies["sessionid"].value,
                              "url": live_server_url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors
