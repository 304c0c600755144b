"""``spinesim serve --scenarios DIR`` in a real browser: the picker shows the folder's case under the folder's
name, the case card its difficulty and objectives, an attempt starts at it, and the "Patient explanation"
button prepares the page and then links it for a new tab (served through the portal to this user)."""

from __future__ import annotations

import pytest

from tests.frontends.web import browser as b
from tests.frontends.web.conftest import ANATOMY
from tests.scenarios.test_catalogue import write_case

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")
if not __import__("os").path.exists(b.CHROMIUM):
    pytest.skip("Chromium is not installed (./dev.sh installs it)", allow_module_level=True)

INSTRUCTOR, PASSWORD = "ivan", "a-long-password"


def test_a_served_case_is_picked_started_and_explained(new_page, patient, tmp_path):
    database = b.database_with_users(tmp_path, {INSTRUCTOR: "instructor"}, PASSWORD)
    ward = tmp_path / "ward-a"
    write_case(ward, "l3l4.yaml", "ward-l3l4")
    server = b.Server(database, ANATOMY, "--require-login", "--spare", "0", "--scenarios", str(ward),
                      log=tmp_path / "serve.log")
    try:
        page = new_page(viewport={"width": 1600, "height": 1000})
        b.log_in(page, server.url, INSTRUCTOR, PASSWORD)
        page.locator(".v-select:has(#scenario) .v-field").click()
        page.locator(".v-overlay--active .v-list-subheader", has_text="ward-a").wait_for()
        b.choose(page, "#scenario", "A ward's own interlaminar case", prefix=True)
        page.wait_for_function("() => document.querySelector('#brief').textContent.includes('L3-L4')")
        assert page.text_content("#difficulty").strip().lower() == "advanced"
        assert page.locator("#objectives li").all_text_contents() == [
            "Count the level on AP.", "Judge depth on the contralateral oblique."]

        page.click("#explain")
        page.wait_for_selector("#explain-open", timeout=120_000)
        link = page.locator("#explain-open")
        assert link.get_attribute("target") == "_blank"
        assert link.get_attribute("href") == "reports/explain-ward-l3l4.html"
        reply = page.request.get(server.url + "reports/explain-ward-l3l4.html")
        assert reply.ok and "needle" in reply.text() and 'id="animation"' in reply.text()

        page.click("#start")
        b.wait_saved(page, 1)
        assert "ward-l3l4" in server_attempts(database)
    finally:
        server.stop()


def server_attempts(database: str) -> list[str]:
    from frontends.store import Store

    return [attempt.scenario_id for attempt in Store(database).attempts()]
