"""The headless Chromium the front-end tests share: one per test process (each pytest-xdist worker), launched
when a test first asks for it and closed as the session ends. A test opens its own context in it (cookies,
storage and viewport of its own), so that tests share the browser's start-up (1-3 s of CPU each, beside
Playwright's driver) and nothing else."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def chromium():
    """The session's browser (Playwright's sync API allows one driver per process: every test that drives
    Chromium takes it from here rather than starting its own). Skips where Playwright or Debian's chromium is
    missing."""
    from tests.frontends.web.browser import chromium_or_skip, launch_browser

    playwright = chromium_or_skip()
    with playwright.sync_playwright() as driver:
        browser = launch_browser(driver)
        yield browser
        browser.close()


@pytest.fixture()
def new_page(chromium):
    """Open a page in a context of its own, ``new_page(**context options) -> page`` (viewport 1600 x 1000 unless
    given; waits that name no ceiling wait up to ``ACTION_TIMEOUT_MS``); every context the test opened is closed
    when it ends."""
    from tests.frontends.web.browser import ACTION_TIMEOUT_MS

    contexts = []

    def open_page(**options):
        context = chromium.new_context(**{"viewport": {"width": 1600, "height": 1000}} | options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
