"""The browser-test rule: a missing Chromium fails the test under CI and skips it elsewhere."""
import pytest

from tests.browser import chromium_or_skip

ABSENT = "/nonexistent/chromium"


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_missing_chromium_fails_under_ci(ci):
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        chromium_or_skip(ABSENT, {"CI": ci})


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}])
def test_missing_chromium_skips_outside_ci(environ):
    with pytest.raises(pytest.skip.Exception, match="/nonexistent/chromium is absent"):
        chromium_or_skip(ABSENT, environ)


def test_present_chromium_is_returned_in_and_out_of_ci(tmp_path):
    browser = tmp_path / "chromium"
    browser.touch()
    assert chromium_or_skip(str(browser), {"CI": "true"}) == str(browser)
    assert chromium_or_skip(str(browser), {}) == str(browser)
