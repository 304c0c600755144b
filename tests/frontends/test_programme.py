"""The programme view (per cohort and case: pass rate, grade bands, the cohort's CUSUM, dose and fluoroscopy
time median and 75th percentile, the most frequent flags) against numbers worked out by hand, on the command
line (``spinesim programme``) and on the Review tab, following the cohort and scenario chosen."""

from __future__ import annotations

import base64
import json

import pytest

from anatomy_models.errors import SpinesimError
from frontends.cli import main
from frontends.programme import ALL_TRAINEES, programme_summaries
from frontends.store import Store
from frontends.web.attempt import LiveAttempt
from frontends.web.review import programme_view, review_view
from frontends.xapi import default_homepage, statements
from scenarios.schema import library_scenarios
from scoring.curves import cusum_limits

VESSEL = {"code": "intravascular_injection", "severity": "major", "title": "Intravascular injection",
          "message": "contrast in an artery"}
DURA = {"code": "dural_puncture", "severity": "major", "title": "Dural puncture", "message": "the tip in the sac"}


@pytest.fixture(scope="module")
def programme(tmp_path_factory, small_spine):
    """Cohort year1 (ben, cy) and year2 (dee). At tfesi-default: ben fails (a real graded attempt: one shot),
    passes with 90 (DAP 0.05 Gy cm², 3 s, a vessel flag) and abandons one; cy passes with 75 (0.10 Gy cm²,
    6 s, vessel and dura flags); dee passes with 88. At ilesi-default: cy fails with 40."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('programme') / 'spinesim.db'}")
    ada = store.add_user("ada", "instructor", "correct horse")
    ben, cy, dee = (store.add_user(name, "trainee", "battery staple") for name in ("ben", "cy", "dee"))
    for cohort, members in (("year1", ("ben", "cy")), ("year2", ("dee",))):
        store.add_cohort(cohort)
        for member in members:
            store.join_cohort(cohort, member)
    attempt = LiveAttempt.start(store, ben.id, library_scenarios()["tfesi-default"], small_spine)
    attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    attempt.act({"type": "finish"})
    report = store.attempt(attempt.attempt_id).report

    def finished(user, scenario, grade, passed, dap, fluoro_s, flags):
        metrics = report["metrics"] | {"dose_area_product_gy_cm2": dap, "fluoro_seconds": fluoro_s}
        copy = store.start_attempt(user.id, scenario, 1)
        store.finish_attempt(copy, report | {"grade": grade, "passed": passed, "metrics": metrics, "flags": flags,
                                             "procedure": library_scenarios()[scenario].procedure})

    finished(ben, "tfesi-default", 90.0, True, 0.05, 3.0, [VESSEL])
    store.abandon_attempt(store.start_attempt(ben.id, "tfesi-default", 2))
    finished(cy, "tfesi-default", 75.0, True, 0.10, 6.0, [VESSEL, DURA])
    finished(dee, "tfesi-default", 88.0, True, 0.07, 4.0, [])
    finished(cy, "ilesi-default", 40.0, False, 0.02, 1.0, [])
    return store, ada, ben, report


def test_a_cohort_at_a_case_in_numbers_worked_out_by_hand(programme):
    store, _, ben, report = programme
    first_dap, first_fluoro = report["metrics"]["dose_area_product_gy_cm2"], report["metrics"]["fluoro_seconds"]
    assert not report["passed"] and report["grade"] < 50 and first_dap < 0.05 and first_fluoro < 3.0
    rows = programme_summaries(store.attempts(), store.cohorts())
    keys = [(row.cohort, row.scenario_id) for row in rows]
    assert keys == [(ALL_TRAINEES, "ilesi-default"), (ALL_TRAINEES, "tfesi-default"), ("year1", "ilesi-default"),
                    ("year1", "tfesi-default"), ("year2", "tfesi-default")]
    year1 = rows[3]
    assert (year1.trainees, year1.finished, year1.abandoned, year1.passed) == (2, 3, 1, 2)
    assert year1.pass_rate == pytest.approx(2 / 3) and year1.procedure == "transforaminal_epidural"
    assert year1.grade_counts == (1, 0, 1, 1)  # the graded fail below 50, 75, 90
    # DAP sorted: first, 0.05, 0.10 -> median 0.05; the 75th percentile half-way from 0.05 to 0.10 (linear).
    assert year1.dap_median_gy_cm2 == pytest.approx(0.05) and year1.dap_p75_gy_cm2 == pytest.approx(0.075)
    assert year1.fluoro_median_s == pytest.approx(3.0) and year1.fluoro_p75_s == pytest.approx(4.5)
    assert year1.flags == (("Intravascular injection", 2), ("Dural puncture", 1))
    # The cohort's CUSUM in the order started: a failure (+1 - s), then two passes (-s each).
    s = cusum_limits().success_step
    assert year1.curve.values == pytest.approx((1 - s, 1 - 2 * s, 1 - 3 * s)) and year1.curve.verdict == "undecided"
    everyone = rows[1]
    assert (everyone.trainees, everyone.finished, everyone.passed, everyone.grade_counts) == (3, 4, 3, (1, 0, 1, 2))
    assert rows[4].flags == () and rows[4].dap_median_gy_cm2 == pytest.approx(0.07)
    assert [r.cohort for r in programme_summaries(store.attempts(), store.cohorts(), scenario_id="ilesi-default")] == [
        ALL_TRAINEES, "year1"]
    assert programme_summaries(store.attempts(), store.cohorts(), cohort="nobody") == []


def test_the_programme_command_prints_each_cohort_and_case(programme, capsys, monkeypatch):
    store, *_ = programme
    assert main(["programme", "--cohort", "year1", "--scenario", "tfesi-default", "--db", store.url]) == 0
    text = capsys.readouterr().out
    for expected in ("year1 at tfesi-default", "pass rate 67%", "median 0.050 Gy·cm², p75 0.075", "70-84: 1",
                     "Intravascular injection ×2", "+1 abandoned", "median 3.0 s, p75 4.5 s"):
        assert expected in text, expected
    assert "ilesi-default" not in text and "year2" not in text
    assert main(["programme", "--cohort", "year9", "--db", store.url]) == 1
    assert "no cohort called 'year9'" in capsys.readouterr().err


def test_the_review_tab_shows_the_programme_for_the_cohort_and_scenario_chosen_and_offers_the_xapi(programme):
    store, ada, ben, _ = programme
    scenarios = library_scenarios()
    view = programme_view(store, scenarios, ada, None, None)
    assert [item["value"] for item in view["programme_cohorts"]] == [ALL_TRAINEES, "year1", "year2"]
    html = view["programme_html"]
    assert html.count("<tr data-cohort=") == 2 and html.count('class="programme-curve"') == 2
    assert 'data-cohort="all trainees" data-scenario="tfesi-default"' in html and "75%" in html
    year1 = programme_view(store, scenarios, ada, "year1", "tfesi-default")["programme_html"]
    assert year1.count("<tr data-cohort=") == 1 and "67%" in year1 and "Intravascular injection ×2" in year1
    assert "0.050 (p75 0.075)" in year1 and "+1 abandoned" in year1 and "year1 at tfesi-default: 3 finished" in year1
    assert programme_view(store, scenarios, ada, "year2", "ilesi-default")["programme_html"] == ""
    with pytest.raises(SpinesimError, match="unknown cohort"):
        programme_view(store, scenarios, ada, "<script>", None)
    assert programme_view(store, scenarios, store.user("ben"), "year1", None) == {}  # a trainee has none

    shown = review_view(store, scenarios, ada, ben.id, "tfesi-default")
    sent = json.loads(base64.b64decode(shown["review_xapi"].removeprefix("data:application/json;base64,")))
    attempts = store.attempts(user_id=ben.id, scenario_id="tfesi-default")
    cases = {key: (case.title, case.brief) for key, case in scenarios.items()}
    assert sent == statements(attempts, cases, default_homepage()) and len(sent) == 5  # 2 + 2 + abandoned
