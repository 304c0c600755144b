"""The instructor's Review tab in a real browser: the programme view (per cohort and case) follows the cohort
and the scenario chosen, and the attempts shown download as CSV and as xAPI statements."""

from __future__ import annotations

import base64
import csv
import json

import pytest

from frontends.store import RECORD_COLUMNS, Store
from frontends.web.attempt import LiveAttempt
from scenarios.schema import library_scenarios
from tests.frontends.web import browser as b
from tests.frontends.web.conftest import ANATOMY

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")
if not __import__("os").path.exists(b.CHROMIUM):
    pytest.skip("Chromium is not installed (./dev.sh installs it)", allow_module_level=True)

INSTRUCTOR, PASSWORD = "ivan", "a-long-password"


def _programme(database: str, patient) -> None:
    """Cohort year1 (ben, cy): ben fails tfesi-default (graded: one shot) then passes it (90), cy passes it (75)
    and fails ilesi-default (40); cohort year2 (dee): dee passes tfesi-default (88)."""
    store = Store(database)
    users = {name: store.add_user(name, "trainee", PASSWORD) for name in ("ben", "cy", "dee")}
    for cohort, members in (("year1", ("ben", "cy")), ("year2", ("dee",))):
        store.add_cohort(cohort)
        for member in members:
            store.join_cohort(cohort, member)
    attempt = LiveAttempt.start(store, users["ben"].id, library_scenarios()["tfesi-default"], patient)
    attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    attempt.act({"type": "finish"})
    report = store.attempt(attempt.attempt_id).report
    for name, case, grade, passed in (("ben", "tfesi-default", 90.0, True), ("cy", "tfesi-default", 75.0, True),
                                      ("cy", "ilesi-default", 40.0, False), ("dee", "tfesi-default", 88.0, True)):
        copy = store.start_attempt(users[name].id, case, 1)
        store.finish_attempt(copy, report | {"grade": grade, "passed": passed,
                                             "procedure": library_scenarios()[case].procedure})


def _pick(page, select: str, title: str) -> None:
    """Pick the item a Vuetify select lists as ``title`` exactly."""
    page.locator(f".v-select:has({select}) .v-field").click()
    page.locator(".v-overlay .v-list-item").filter(has_text=title).first.click()
    page.wait_for_function(
        "([s, t]) => document.querySelector(`.v-select:has(${s}) .v-select__selection`)?.textContent.trim() === t",
        arg=[select, title])


def _programme_rows(page) -> list[tuple[str, str]]:
    return [(row.get_attribute("data-cohort"), row.get_attribute("data-scenario"))
            for row in page.locator("#programme-table tbody tr").all()]


def _data_url(page, selector: str, kind: str) -> str:
    return base64.b64decode(page.get_attribute(selector, "href").removeprefix(f"data:{kind};base64,")).decode()


def test_the_programme_view_follows_cohort_and_scenario_and_the_attempts_download_as_csv_and_xapi(new_page, patient,
                                                                                                  tmp_path):
    database = b.database_with_users(tmp_path, {INSTRUCTOR: "instructor"}, PASSWORD)
    _programme(database, patient)
    server = b.Server(database, ANATOMY, "--require-login", "--spare", "0", log=tmp_path / "serve.log")
    try:
        page = new_page(viewport={"width": 1600, "height": 1000})
        b.log_in(page, server.url, INSTRUCTOR, PASSWORD)
        page.click("#tab-review")
        page.wait_for_selector("#programme-table")
        assert _programme_rows(page) == [("all trainees", "ilesi-default"), ("all trainees", "tfesi-default")]
        assert page.locator("#programme .programme-curve svg").count() == 2
        assert "75%" in page.text_content("#programme-table")  # 3 of 4 at tfesi-default

        _pick(page, "#review-cohort", "year1")
        page.wait_for_function("() => document.querySelector('#programme-table tbody tr')"
                               "?.getAttribute('data-cohort') === 'year1'")
        assert _programme_rows(page) == [("year1", "ilesi-default"), ("year1", "tfesi-default")]
        tfesi = library_scenarios()["tfesi-default"].title
        _pick(page, "#review-scenario", tfesi)
        page.wait_for_function("() => document.querySelectorAll('#programme-table tbody tr').length === 1")
        assert _programme_rows(page) == [("year1", "tfesi-default")]
        assert "67%" in page.text_content("#programme-table")  # ben's fail and pass, cy's pass
        # The attempts table follows the same scenario filter; its downloads hold what it shows.
        page.wait_for_function("() => document.querySelectorAll('#review-table tbody tr').length === 4")
        rows = list(csv.DictReader(_data_url(page, "#review-csv", "text/csv").splitlines()))
        assert list(rows[0]) == list(RECORD_COLUMNS) and {r["scenario"] for r in rows} == {"tfesi-default"}
        assert sorted(r["trainee"] for r in rows) == ["ben", "ben", "cy", "dee"]
        found = json.loads(_data_url(page, "#review-xapi", "application/json"))
        assert len(found) == 8 and {s["object"]["definition"]["name"]["en-US"] for s in found} == {tfesi}
        verbs = sorted(s["verb"]["display"]["en-US"] for s in found)
        assert verbs == ["completed"] * 4 + ["failed"] + ["passed"] * 3
        # A click downloads the file, under its name.
        for selector, name in (("#review-xapi", "spinesim-attempts.xapi.json"),
                               ("#review-csv", "spinesim-attempts.csv")):
            with page.expect_download() as download:
                page.click(selector)
            assert download.value.suggested_filename == name
            saved = tmp_path / name
            download.value.save_as(saved)
            assert saved.read_text(encoding="utf-8") == _data_url(page, selector, "application/json"
                                                                  if name.endswith("json") else "text/csv")
    finally:
        server.stop()
