"""The session on the built-in spine (2 mm): the expert path of every procedure is safe and on
target; scripted wrong attempts produce the complications they should (issue 5, "Must show")."""

import numpy as np
import pytest

from scenarios.schema import load_scenario
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.needle.hub import blood_shows
from simulator.needle.trace import BONE_STANDOFF_MM
from simulator.session.fold import Session
from tests.simulator.attempts import nearest_points, place_toward


def _kinds(events):
    return [e.kind for e in events]


def _session(anatomy, scenario_id):
    return Session(load_scenario(scenario_id), anatomy)


@pytest.mark.parametrize("scenario_id", ["ilesi-default", "tfesi-default", "facet-default", "mbb-default"])
def test_the_expert_path_reaches_the_target_with_no_unsafe_event(small_spine, scenario_id):
    session = _session(small_spine, scenario_id)
    trajectory = plan_trajectory(session.tracer, session.target, session.spec)
    for action in expert_actions(session.scenario, session.target, trajectory):
        session.apply(action)
    state = session.state
    assert state.finished and state.in_target, (state.tip_structure, state.tip_to_target_mm)
    assert session.unsafe_events() == []
    assert state.tip_to_target_mm <= session.target.zone.radius_mm
    contrast = next(e for e in session.events if e.kind == "contrast")
    expected = {"ilesi-default": "epidural", "tfesi-default": "epidural", "facet-default": "intra_articular",
                "mbb-default": "soft_tissue"}[scenario_id]
    assert contrast.data["pattern"] == expected
    if scenario_id == "ilesi-default":
        assert [e.data["feel"] for e in session.events if e.kind == "loss_of_resistance"][-1] == "lost"
    if scenario_id == "mbb-default":
        assert state.bone_contacts == 1


def test_interlaminar_overshoot_is_a_dural_puncture_with_csf(small_spine):
    session = _session(small_spine, "ilesi-default")
    trajectory = plan_trajectory(session.tracer, session.target, session.spec)
    session.apply({"type": "place_needle", "t": 1, "entry": trajectory.entry.tolist(),
                   "direction": trajectory.direction.tolist()})
    # Overshoot: on through the epidural space and the dura into the CSF behind it.
    trace = session.tracer.trace(trajectory.entry, trajectory.direction, trajectory.depth_mm + 30.0)
    csf = next(s for s in trace.segments if s.structure == "dural_sac.csf" and s.depth_in_mm > trajectory.depth_mm)
    events = session.apply({"type": "advance", "t": 5, "mm": (csf.depth_in_mm + csf.depth_out_mm) / 2})
    assert {"dural_puncture", "csf_flashback"} <= set(_kinds(events))
    assert session.state.tip_tissue == "csf"
    shown = session.apply({"type": "inject_contrast", "t": 8, "ml": 1.0})
    assert shown[0].data["pattern"] == "intrathecal" and shown[0].severity == "unsafe"


def test_transforaminal_too_cranial_lateral_meets_the_root(small_spine):
    session = _session(small_spine, "tfesi-default")
    root = nearest_points(session, "nerve_root.L4.left", session.target.point)
    depth = place_toward(session, root, root_clearance_mm=0.0, avoid_groups=("dural_sac",),
                         avoid_tissues=("blood", "disc_annulus", "disc_nucleus", "air"))
    events = session.apply({"type": "advance", "t": 10, "mm": depth})
    assert "paraesthesia" in _kinds(events)
    assert next(e for e in events if e.kind == "paraesthesia").severity == "unsafe"


def test_transforaminal_too_ventral_caudal_is_intradiscal(small_spine):
    session = _session(small_spine, "tfesi-default")
    disc = nearest_points(session, "L4-L5.disc", small_spine.landmark("L4-L5.kambin_triangle.left"))
    depth = place_toward(session, disc, root_clearance_mm=0.0, avoid_tissues=("blood", "air"))
    events = session.apply({"type": "advance", "t": 10, "mm": depth + 2.0})
    assert "intradiscal" in _kinds(events)
    assert session.apply({"type": "inject_contrast", "t": 12, "ml": 0.5})[0].data["pattern"] == "intradiscal"


def test_transforaminal_into_the_radicular_artery_flashes_back_as_seeded_and_washes_out(small_spine):
    session = _session(small_spine, "tfesi-default")
    artery = nearest_points(session, "radicular_artery.L4.left", session.target.point)
    depth = place_toward(session, artery, root_clearance_mm=0.0, avoid_groups=("dural_sac",),
                         avoid_tissues=("disc_annulus", "disc_nucleus", "air"))
    events = session.apply({"type": "advance", "t": 10, "mm": depth})
    flash = blood_shows(session.scenario.seed, session.state.actions - 1)  # blood at the hub 44.7% of the time
    assert "vessel_puncture" in _kinds(events) and ("blood_flashback" in _kinds(events)) is flash
    assert next(e for e in events if e.kind == "vessel_puncture").data["arterial"]
    shown = session.apply({"type": "inject_contrast", "t": 12, "ml": 1.0})
    assert shown[0].data["pattern"] == "arterial" and shown[0].severity == "unsafe"
    seen, gone = session.contrast(12.3), session.contrast(18.0)
    assert seen.array.max() > 50.0 and gone.array.max() < 0.01 * seen.array.max()


def test_straight_into_a_lamina_stops_at_its_surface(small_spine):
    session = _session(small_spine, "ilesi-default")
    tracer = session.tracer
    lamina = tracer.volume.voxel_to_world(np.argwhere(np.isin(tracer.codes, tracer.codes_in_group("L4.lamina.left"))))
    centre = lamina[np.argmin(np.linalg.norm(lamina - lamina.mean(axis=0), axis=1))]
    session.apply({"type": "place_needle", "t": 1, "entry": (centre + [0, 80, 0]).tolist(), "direction": [0, -1, 0]})
    events = session.apply({"type": "advance", "t": 3, "mm": 80.0})
    assert events[0].kind == "bone_contact" and events[0].data["structure"].startswith("L4.")
    needle = session.state.needle
    surface = tracer.trace(needle.entry, needle.direction, 80.0).first_bone().depth_in_mm
    assert needle.depth_mm == pytest.approx(surface - BONE_STANDOFF_MM, abs=1e-3)
    assert session.apply({"type": "advance", "t": 4, "mm": 5.0})[0].kind == "bone_contact"
    assert session.state.needle.depth_mm == pytest.approx(needle.depth_mm)
