"""The C-arm card's magnification field, shutters and table moves without a browser: each is a ``set_carm``
in the attempt's log that keeps the rest of the pose, a new angle or preset keeps the field and shutters,
the dose counter rises with magnification and the DAP falls with the shutters; a drag re-aims the needle's
fields so its tip's image moves the dragged way."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from frontends.store import Store
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from simulator.case.controls import needle_direction
from tests.frontends.web.conftest import ANATOMY


@pytest.fixture()
def handlers(patient, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    page: dict = {}
    handlers = Handlers(store, store.add_user("ben", "trainee", "battery staple"), library_scenarios(),
                        Patients(ANATOMY), tmp_path, show=lambda **changes: page.update(changes))
    handlers.start_attempt("tfesi-default")
    return handlers, page


def test_field_shutters_and_table_are_set_carm_actions_that_keep_the_rest_of_the_pose(handlers):
    handlers, page = handlers
    attempt = handlers.attempt
    handlers.shot()
    full = attempt.ledger.reference_air_kerma_mgy
    handlers.magnify(15)
    handlers.collimate(0.5)
    handlers.pan(10, 0)
    handlers.move_carm(20, 0)
    logged = attempt.store.actions(attempt.attempt_id)
    moves = [a for a in logged if a["type"] == "set_carm"][1:]
    assert [m.get("field_cm") for m in moves] == [15.0, 15.0, 15.0, 15.0]
    assert [m.get("shutters") for m in moves] == [None, 0.5, 0.5, 0.5]
    # The table moved the view 10 mm toward the image's right (the patient's right in AP: -x).
    np.testing.assert_allclose(np.subtract(moves[2]["isocenter"], moves[1]["isocenter"]), [-10.0, 0.0, 0.0],
                               atol=1e-3)
    assert page["carm_label"] == "LAO 20° · field 15 cm · shutters 50%" and page["carm_field_cm"] == 15
    before = attempt.ledger
    handlers.shot()
    kerma = attempt.ledger.reference_air_kerma_mgy - before.reference_air_kerma_mgy
    assert kerma > 2.0 * full  # magnified: (23 / 15)^2 = 2.35 times the detector dose the exposure control asks
    handlers.magnify(23)
    handlers.collimate(1)
    assert "field_cm" not in attempt.store.actions(attempt.attempt_id)[-2]
    assert "shutters" not in attempt.store.actions(attempt.attempt_id)[-1]
    with pytest.raises(SpinesimError, match="unknown magnification field"):
        handlers.magnify(12)


def test_a_drag_to_the_right_turns_the_needles_fields_so_the_tip_goes_right(handlers):
    handlers, page = handlers
    attempt = handlers.attempt
    handlers.shot()
    handlers.pick(256, 256, 512, 512)
    handlers.drag_aim(256, 256, 296, 256, 512, 512, 0.0, 0.0)
    carm, entry = attempt.last_shot.carm, handlers._picked
    straight = entry + 50.0 * needle_direction(0.0, 0.0)
    turned = needle_direction(page["needle_left"], page["needle_cranial"])
    # Along the turned needle, the point as far from the X-ray source as the straight one's 50 mm point.
    tip = entry + turned * (carm.depth(straight) - carm.depth(entry)) / (turned @ carm.beam_direction)
    moved = carm.project(tip) - carm.project(straight)
    assert moved[0] == pytest.approx(40.0, abs=0.3) and abs(moved[1]) < 0.3  # the fields hold 0.01°


def test_the_needle_chosen_from_the_tray_is_the_one_inserted_and_the_log_says_which(patient, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    handlers = Handlers(store, store.add_user("ben", "trainee", "battery staple"), library_scenarios(),
                        Patients(ANATOMY), tmp_path, show=lambda **changes: None)
    view = handlers.scenario_view("tfesi-bmi40-l4l5-left")
    assert [item["title"] for item in view["needle_items"]] == ["Quincke 22 G, 127 mm", "Quincke 22 G, 89 mm"]
    handlers.start_attempt("tfesi-bmi40-l4l5-left")
    handlers.shot()
    handlers.choose_needle(1)  # the 3.5-inch needle, too short for this patient
    handlers.pick(256, 256, 512, 512)
    handlers.insert(0.0, 0.0)
    assert handlers.attempt.session.state.needle.spec.length_mm == pytest.approx(88.9)
    assert store.actions(handlers.attempt.attempt_id)[-1]["needle"] == 1
    handlers.choose_needle(0)
    handlers.insert(0.0, 0.0)
    assert handlers.attempt.session.state.needle.spec.length_mm == pytest.approx(127.0)
    assert "needle" not in store.actions(handlers.attempt.attempt_id)[-1]
    handlers.choose_needle(3)
    with pytest.raises(SpinesimError, match="this case offers 2 needles, not a number 3"):
        handlers.insert(0.0, 0.0)
