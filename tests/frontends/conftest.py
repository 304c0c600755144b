"""The headless Chromium the front-end tests share: one per test module (in each pytest-xdist worker that runs
its tests), launched when a test of the module first asks for it and closed with Playwright's driver when the
module's last test there has ended. A test opens its own context in it (cookies, storage and viewport of its
own), so that a module's tests share the driver's and the browser's start-up (about 2 s, 1.5 s of it the
driver's) and nothing else.

Not one for the whole session: between its calls Playwright's sync API marks its event loop as the thread's
running loop, so while the driver is up every ``asyncio.run()`` in the process fails ("cannot be called from a
running event loop"), and the tests that drive the portal with aiohttp (test_portal, test_hostile_web,
test_upload) share the worker with the browser tests. pytest ends a module's fixtures before a test of another
module starts, so no such test runs beside the driver."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def chromium():
    """The module's browser (Playwright's sync API allows one driver at a time in a process: every test that
    drives Chromium takes it from here rather than starting its own). Skips where Playwright or Debian's chromium
    is missing."""
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
