import json
import math
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from scenarios.poses import CArmPose, ProbePose
from scenarios.schema import load_scenario
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.case.targets import needle_direction
from simulator.imaging.dose import PULSE_SECONDS
from simulator.needle.hub import blood_shows
from simulator.needle.trace import BONE_STANDOFF_MM
from simulator.session.fold import Session
from simulator.session.replay import replay
from tests.simulator.anatomy_phantoms import mini_spine
from tests.simulator.attempts import place_toward


def _session(scenario_id="ilesi-default", **kwargs):
    return Session(load_scenario(scenario_id), mini_spine(), **kwargs)


def _kinds(events):
    return [e.kind for e in events]


def _expert(scenario_id):
    session = _session(scenario_id)
    trajectory = plan_trajectory(session.tracer, session.target, session.spec)
    return session, expert_actions(session.scenario, session.target, trajectory)


@pytest.mark.parametrize("scenario_id", ["ilesi-default", "tfesi-default", "facet-default", "mbb-default"])
def test_the_expert_path_reaches_the_target_safely_on_the_phantom(scenario_id):
    session, actions = _expert(scenario_id)
    for action in actions:
        session.apply(action)
    assert session.state.finished and session.state.in_target
    assert session.unsafe_events() == []
    assert "target_reached" in _kinds(session.events)
    assert session.state.passes == 1 and session.state.redirects == 0
    if scenario_id == "mbb-default":
        assert session.state.bone_contacts == 1  # the needle rests on the SAP-TP junction


def test_the_trainee_perceives_the_hub_the_syringe_and_the_monitor_not_the_engine_s_verdicts():
    """While the attempt runs the events a trainee perceives name no structure and no contrast verdict;
    the debrief adds the pattern the images showed."""
    from frontends.web.views import event_rows, live_events

    session, actions = _expert("tfesi-default")
    for action in actions:
        session.apply(action)
    hidden = {e.kind for e in session.events if not e.perceived}
    assert "target_reached" in hidden and {e.kind for e in live_events(session.events)} & hidden == set()
    contrast = next(e for e in session.events if e.kind == "contrast")
    assert contrast.perceived and contrast.message == "1 mL of contrast injected"
    assert contrast.debrief == f"1 mL of contrast injected: {contrast.data['verdict']}" and "epidural" in contrast.debrief
    unsafe = replace(contrast, severity="unsafe")  # an intrathecal run looks the same on the list while it runs
    assert event_rows([unsafe])[0]["colour"] == event_rows([contrast])[0]["colour"]
    assert event_rows([unsafe], debrief=True)[0]["colour"] != event_rows([contrast], debrief=True)[0]["colour"]
    names = set(session.tracer.names)
    assert not any(name in e.message for e in live_events(session.events) for name in names if "." in name)


@pytest.mark.parametrize("scenario_id, went", [("tfesi-default", "into the epidural space"),
                                               ("facet-default", "into the facet joint")])
def test_the_injectate_takes_the_compartment_its_test_showed_and_no_image_shows_it(scenario_id, went):
    """The injectate is not radio-opaque: it leaves no spread to render, but the compartment it takes from
    the tip is recorded (as contrast there would take it), and the debrief says where it went."""
    session, actions = _expert(scenario_id)
    for action in actions:
        session.apply(action)
    test = next(e for e in session.events if e.kind == "contrast")
    given = next(e for e in session.events if e.kind == "medication")
    assert given.data["pattern"] == test.data["pattern"] and given.severity == "info" and given.perceived
    assert given.message == f"{given.data['ml']:g} mL of non-particulate steroid injected"
    assert given.debrief == f"{given.message}: it went {went}"
    assert len(session.spreads) == 1 and len(session.state.injections) == 1
    (medication,) = session.state.medications
    assert medication.agent == "steroid_nonparticulate" and medication.tip == session.state.injections[0].tip
    state = session.state.to_json()
    assert state["medication_ml"] == medication.ml and state["medications"][0]["agent"] == medication.agent
    assert "agent" not in state["injections"][0]  # a contrast test's record is as before


def test_contrast_and_injectate_together_can_rupture_a_facet_capsule():
    session, actions = _expert("facet-default")
    for action in actions[:-1]:
        session.apply(action)
    assert "capsule_rupture" not in _kinds(session.events)
    events = session.apply({"type": "inject_medication", "t": 500, "ml": 1.0, "agent": "steroid_particulate"})
    assert _kinds(events) == ["medication", "capsule_rupture"] and events[1].data["ml"] == pytest.approx(1.8)


def test_interlaminar_expert_feels_the_ligament_then_the_loss():
    session, actions = _expert("ilesi-default")
    for action in actions:
        session.apply(action)
    feels = [e.data["feel"] for e in session.events if e.kind == "loss_of_resistance"]
    assert feels == ["high", "lost"]
    contrast = [e for e in session.events if e.kind == "contrast"]
    assert contrast[0].data["pattern"] == "epidural" and contrast[0].severity == "info"


def _aim(session, point, direction, **extra):
    """place_needle from the skin toward ``point`` along ``direction``; returns the depth to it."""
    point, direction = np.asarray(point, float), np.asarray(direction, float) / np.linalg.norm(direction)
    back = session.tracer.body_exit_depth(point, direction)
    session.apply({"type": "place_needle", "t": session.state.t + 1, "entry": (point - (back + 5) * direction).tolist(),
                   "direction": direction.tolist(), **extra})
    return back


def test_interlaminar_overshoot_punctures_the_dura():
    session = _session()
    depth = _aim(session, session.target.point, session.target.textbook_direction)
    events = session.apply({"type": "advance", "t": 10, "mm": depth + 6})
    assert "dural_puncture" in _kinds(events) and "csf_flashback" in _kinds(events)
    assert session.state.tip_tissue == "csf"
    inject = session.apply({"type": "inject_contrast", "t": 12, "ml": 1})
    assert inject[0].data["pattern"] == "intrathecal" and inject[0].severity == "unsafe"


def test_straight_into_a_lamina_stops_on_the_bone_surface():
    session = _session()
    session.apply({"type": "place_needle", "t": 1, "entry": [8.0, 45.0, 20.0], "direction": [0, -1, 0]})
    events = session.apply({"type": "advance", "t": 2, "mm": 60})
    assert _kinds(events)[0] == "bone_contact" and events[0].data["structure"] == "L4.lamina.left"
    # Skin at y = 40, lamina surface at y = 13 (phantom geometry): the tip rests just above it.
    assert session.state.needle.tip[1] == pytest.approx(13.0 + BONE_STANDOFF_MM, abs=0.05)
    assert session.apply({"type": "advance", "t": 3, "mm": 5})[0].kind == "bone_contact"
    assert session.state.bone_contacts == 2 and session.state.needle.tip[1] == pytest.approx(13.05, abs=0.05)
    session.apply({"type": "withdraw", "t": 4, "mm": 10})
    assert session.state.needle.depth_mm == pytest.approx(27.0 - BONE_STANDOFF_MM - 10.0, abs=0.05)


# The classic subpedicular oblique (25 deg from sagittal from the left, 10 deg cranial): the phantom's artery and disc
# are placed for it; the library's transforaminal target is now aimed down its trajectory view's beam, which on the
# small phantom runs out of its grid sideways before it meets the skin.
OBLIQUE_LEFT_TRANSFORAMINAL = needle_direction(25.0, 1.0, 10.0)


@pytest.mark.parametrize("flash", [True, False])
def test_a_needle_into_the_radicular_artery_flashes_back_as_often_as_in_life_and_its_contrast_washes_out(flash):
    """Blood shows at the hub with the seeded 44.7% sensitivity (simulator.needle.hub): a seed where the
    draw for this advance (action 2, index 1) flashes, and one where it does not."""
    scenario = load_scenario("tfesi-default")
    seed = next(seed for seed in range(100) if blood_shows(seed, 1) is flash)
    session = Session(scenario.model_copy(update={"seed": seed}), mini_spine())
    depth = _aim(session, [20.0, -7.0, 10.0], OBLIQUE_LEFT_TRANSFORAMINAL)
    events = session.apply({"type": "advance", "t": 10, "mm": depth})
    assert "vessel_puncture" in _kinds(events) and ("blood_flashback" in _kinds(events)) is flash
    assert session.state.blood_at_hub is flash and session.state.tip_tissue == "blood"
    puncture = next(e for e in events if e.kind == "vessel_puncture")
    assert puncture.data["arterial"] and puncture.data["flashback"] and not puncture.perceived
    shown = session.apply({"type": "inject_contrast", "t": 11, "ml": 1})
    assert shown[0].data["pattern"] == "arterial" and shown[0].severity == "unsafe"
    early, late = session.contrast(11.2), session.contrast(16.0)
    assert early.array.max() > 50 and late.array.max() < 0.01 * early.array.max()


def test_aiming_ventral_caudal_is_intradiscal_and_at_the_root_is_paraesthesia():
    session = _session("tfesi-default")
    depth = place_toward(session, [14.0, -11.0, 0.0], axis=OBLIQUE_LEFT_TRANSFORAMINAL, avoid_tissues=("blood", "air"))
    events = session.apply({"type": "advance", "t": 10, "mm": depth})
    assert "intradiscal" in _kinds(events) and session.state.tip_structure == "L4-L5.disc.annulus"
    session = _session("tfesi-default")
    root_surface = np.array([29.3, -3.0, -2.26])  # on the phantom root's upper-lateral surface
    depth = place_toward(session, root_surface, root_clearance_mm=0.0, avoid_groups=("dural_sac",))
    events = session.apply({"type": "advance", "t": 10, "mm": depth - 1.2})
    assert "paraesthesia" in _kinds(events) and "root_penetration" not in _kinds(events)
    # Staying near the root does not repeat it; entering the root is a penetration.
    assert "paraesthesia" not in _kinds(session.apply({"type": "advance", "t": 11, "mm": 0.2}))
    assert "root_penetration" in _kinds(session.apply({"type": "advance", "t": 12, "mm": 3.0}))


def test_redirect_pulls_back_to_the_subcutaneous_layer_and_counts_a_pass():
    session = _session()
    session.apply({"type": "place_needle", "t": 1, "entry": [8.0, 45.0, 20.0], "direction": [0, -1, 0]})
    session.apply({"type": "advance", "t": 2, "mm": 20})
    events = session.apply({"type": "redirect", "t": 3, "direction": [0.0, -1.0, -0.3]})
    # Skin and fat 12 mm deep (phantom): the tip comes back to 1 mm above the muscle, then turns.
    assert events[0].kind == "redirect" and events[0].data["depth_mm"] == pytest.approx(11.0, abs=0.05)
    assert session.state.needle.depth_mm == pytest.approx(11.0, abs=0.05)
    assert session.state.redirects == 1 and session.state.passes == 2
    np.testing.assert_allclose(session.state.needle.entry, [8.0, 40.0, 20.0], atol=1e-3)
    with pytest.raises(SpinesimError, match="points out of the body"):
        session.apply({"type": "redirect", "t": 4, "direction": [0.0, 1.0, 0.0]})


def test_a_needle_just_placed_can_be_redirected_into_the_body():
    """At depth 0 the re-aimed direction is read 2 mm along it, not at the entry point on the skin's surface
    (whose voxel is air or skin by a fraction of a millimetre: facet-l5s1-right's competent attempt was refused)."""
    session = _session()
    session.apply({"type": "place_needle", "t": 1, "entry": [8.0, 45.0, 20.0], "direction": [0, -1, 0]})
    events = session.apply({"type": "redirect", "t": 2, "direction": [0.0, -1.0, -0.3]})
    assert events[0].kind == "redirect" and session.state.redirects == 1
    with pytest.raises(SpinesimError, match="points out of the body"):
        session.apply({"type": "redirect", "t": 3, "direction": [0.0, 1.0, 0.0]})


def test_the_hub_stops_the_needle():
    session = _session("facet-default")
    session.apply({"type": "place_needle", "t": 1, "entry": [30.0, 45.0, 0.0], "direction": [0, -1, 0]})
    events = session.apply({"type": "advance", "t": 2, "mm": 200})
    assert "hub_at_skin" in _kinds(events)
    assert session.state.needle.depth_mm == pytest.approx(session.spec.length_mm)


@pytest.mark.parametrize("action, message", [
    ({"type": "advance", "t": 5, "mm": math.nan}, "finite"),
    ({"type": "advance", "t": 5, "mm": -3}, "greater than 0"),
    ({"type": "withdraw", "t": 5, "mm": 0}, "greater than 0"),
    ({"type": "wiggle", "t": 5}, "unknown action 'wiggle'"),
    ({"type": "place_needle", "t": 5, "entry": [0, 200, 0], "direction": [0, 1, 0]}, "never meets the patient's skin"),
    ({"type": "place_needle", "t": 5, "entry": [300, 300, 300], "direction": [1, 1, 1]}, "never meets the patient's skin"),
    ({"type": "advance", "t": 1, "mm": 3}, "time goes backwards"),
    ({"type": "set_carm", "t": 5, "primary_deg": 400}, "primary_deg"),
    ({"type": "fluoro_shot", "t": 5, "mode": "dsa"}, "DSA is not available"),
    ({"type": "place_probe", "t": 5, "position": [0, 50, 0], "direction": [0, -1, 0], "lateral": [1, 0, 0]},
     "ultrasound is not available"),
])
def test_nonsense_leaves_the_session_unchanged_and_usable(tmp_path, action, message):
    session = _session(log_path=tmp_path / "log.jsonl")
    session.apply({"type": "place_needle", "t": 2, "entry": [8.0, 45.0, 20.0], "direction": [0, -1, 0]})
    session.apply({"type": "advance", "t": 3, "mm": 10})
    before, events, log = session.state, list(session.events), (tmp_path / "log.jsonl").read_bytes()
    with pytest.raises(SpinesimError, match=message):
        session.apply(action)
    assert session.state == before and session.events == events
    assert (tmp_path / "log.jsonl").read_bytes() == log  # nothing was logged
    session.apply({"type": "advance", "t": 6, "mm": 5})
    assert session.state.needle.depth_mm == pytest.approx(15.0)


def test_actions_that_need_a_needle_say_so():
    session = _session()
    for action in ({"type": "advance", "t": 1, "mm": 3}, {"type": "inject_contrast", "t": 1, "ml": 1},
                   {"type": "inject_medication", "t": 1, "ml": 1, "agent": "local_anaesthetic"},
                   {"type": "check_loss_of_resistance", "t": 1}, {"type": "redirect", "t": 1, "aim": [0, 0, 0]}):
        with pytest.raises(SpinesimError, match="no needle in the patient"):
            session.apply(action)
    session.apply({"type": "finish", "t": 2})
    with pytest.raises(SpinesimError, match="finished"):
        session.apply({"type": "fluoro_shot", "t": 3})


def _eventful_attempt():
    """An attempt with a bit of everything, including seeded loss-of-resistance checks."""
    session, actions = _expert("ilesi-default")
    actions = actions[:-1] + [
        {"type": "withdraw", "t": 200, "mm": 12},
        *({"type": "check_loss_of_resistance", "t": 201 + i} for i in range(6)),
        {"type": "redirect", "t": 210, "aim": [0.0, 0.0, -3.0]},
        {"type": "advance", "t": 211, "mm": 45},
        {"type": "inject_contrast", "t": 212, "ml": 1.5},
        {"type": "inject_medication", "t": 213, "ml": 2.0, "agent": "local_anaesthetic"},
        {"type": "withdraw", "t": 220, "mm": 100},
        {"type": "finish", "t": 230},
    ]
    return session, actions


def test_replaying_a_log_reproduces_every_state_and_event(tmp_path):
    live, actions = _eventful_attempt()
    live = Session(live.scenario, live.anatomy, log_path=tmp_path / "log.jsonl")
    for action in actions:
        live.apply(action)
    live.close()
    replayed = replay(live.scenario, live.anatomy, tmp_path / "log.jsonl")
    assert [s.to_json() for s in replayed.states] == [s.to_json() for s in live.states]
    assert [e.to_json() for e in replayed.events] == [e.to_json() for e in live.events]
    assert "dural_puncture" in _kinds(live.events)
    np.testing.assert_array_equal(replayed.contrast(225.0).array, live.contrast(225.0).array)
    json.dumps([s.to_json() for s in live.states])  # every state is plain JSON


@lru_cache(maxsize=1)
def _logged_attempt(folder: str):
    """The eventful attempt played live once, with its log's bytes."""
    live, actions = _eventful_attempt()
    live = Session(live.scenario, live.anatomy, log_path=Path(folder) / "log.jsonl")
    for action in actions:
        live.apply(action)
    live.close()
    return live, (Path(folder) / "log.jsonl").read_bytes()


def _cut(data: bytes, where: str) -> int:
    """Where in the log's bytes a cut ``where`` falls: before, inside, or at the end of a line (without or with
    its newline), on the first line (the header), a line in the middle, or the last."""
    ends = [i for i, byte in enumerate(data) if byte == ord("\n")]  # each line's newline
    middle = len(ends) // 2
    return {"nothing": 0, "inside the header": ends[0] // 2, "the header without its newline": ends[0],
            "inside a middle line": (ends[middle - 1] + 1 + ends[middle]) // 2,
            "a middle line without its newline": ends[middle], "after a middle line": ends[middle] + 1,
            "the last line without its newline": ends[-1], "the whole log": len(data)}[where]


# Every class of place a crash can cut the log at (a whole line, a line short of its newline only, a line cut
# inside), at its start, middle and end: a replay of each costs the attempt's two contrast spreads (~1 s of
# CPU), so these eight stand for the 20 random cuts drawn before, which hit a line's end 1 time in 30.
@pytest.mark.parametrize("where, cut_inside_a_line", [
    ("nothing", False), ("inside the header", True), ("the header without its newline", False),
    ("inside a middle line", True), ("a middle line without its newline", False), ("after a middle line", False),
    ("the last line without its newline", False), ("the whole log", False)])
def test_a_log_cut_at_any_byte_replays_up_to_its_last_whole_line(tmp_path_factory, where, cut_inside_a_line):
    live, data = _logged_attempt(str(tmp_path_factory.getbasetemp()))
    log = tmp_path_factory.mktemp("cut") / "log.jsonl"
    position = _cut(data, where)
    log.write_bytes(data[:position])
    replayed = replay(live.scenario, live.anatomy, log, resume=True)
    kept = len(replayed.actions)
    assert kept == max(data[:position + 1].count(b"\n") - 1, 0)  # the lines whole but for a newline, less the header
    assert [s.to_json() for s in replayed.states] == [s.to_json() for s in live.states[:kept + 1]]
    assert (replayed.truncated is not None) == cut_inside_a_line
    # Resuming continues the same attempt: the rest of it brings back the whole log.
    for action in live.actions[kept:]:
        replayed.apply(action)
    replayed.close()
    assert log.read_bytes() == data


def test_a_log_of_another_scenario_is_refused(tmp_path):
    session = _session(log_path=tmp_path / "log.jsonl")
    session.apply({"type": "fluoro_shot", "t": 1})
    session.close()
    with pytest.raises(SpinesimError, match="attempt at scenario 'ilesi-default', not 'facet-default'"):
        replay(load_scenario("facet-default"), mini_spine(), tmp_path / "log.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"type": "advance", "t": 1, "mm": 3}\n')
    with pytest.raises(SpinesimError, match="bad.jsonl: line 1: advance: there is no needle"):
        replay(load_scenario("facet-default"), mini_spine(), tmp_path / "bad.jsonl")


def test_fluoroscopy_is_counted():
    session = _session("tfesi-default")
    session.apply({"type": "set_carm", "t": 1, "primary_deg": 25, "secondary_deg": -10, "setup": "oblique"})
    session.apply({"type": "fluoro_shot", "t": 2})
    session.apply({"type": "fluoro_shot", "t": 3, "mode": "dsa", "seconds": 4})
    session.apply({"type": "fluoro_shot", "t": 9, "mode": "live", "seconds": 2.5})
    state = session.state
    assert (state.fluoro_shots, state.dsa_runs) == (3, 1)
    assert state.fluoro_seconds == pytest.approx(PULSE_SECONDS + 4 + 2.5)  # a pulse shot is a tap of PULSE_SECONDS
    assert state.carm == CArmPose(setup="oblique", primary_deg=25.0, secondary_deg=-10.0)
    assert state.to_json()["carm"] == {"setup": "oblique", "primary_deg": 25.0, "secondary_deg": -10.0}


def test_a_bevelled_needle_drifts_and_replays_the_same(tmp_path):
    scenario = load_scenario("tfesi-default")
    bent = scenario.model_copy(update={"needle": scenario.needle.model_copy(update={"bevel_deflection_deg_per_cm": 0.3})})
    session = Session(bent, mini_spine(), log_path=tmp_path / "log.jsonl")
    session.apply({"type": "place_needle", "t": 1, "entry": [30.0, 45.0, 0.0], "direction": [0, -1, 0],
                   "bevel_roll_deg": 90.0})
    session.apply({"type": "advance", "t": 2, "mm": 30})
    tip = session.state.needle.tip
    # Roll 90 turns the bevel face from +z to -x (right-hand rule about the shaft, -y): the tip drifts
    # away from it, to +x, by depth * angle = 30 mm * 0.9 deg.
    assert session.state.needle.bevel_face[0] < -0.99
    assert tip[0] == pytest.approx(30.0 + 30.0 * np.radians(0.9), abs=0.01) and tip[2] == pytest.approx(0.0, abs=1e-9)
    session.close()
    replayed = replay(bent, mini_spine(), tmp_path / "log.jsonl")
    assert replayed.state.to_json() == session.state.to_json()


def test_hints_are_actions_revealed_in_order_and_replayed(tmp_path):
    session = _session(log_path=tmp_path / "log.jsonl")
    hints = session.scenario.hints
    for number in range(1, len(hints) + 1):
        (event,) = session.apply({"type": "show_hint", "t": number})
        assert event.kind == "hint_shown" and event.message == hints[number - 1] and event.data == {"number": number}
        assert session.state.hints_shown == number
    with pytest.raises(SpinesimError, match="no further hint"):
        session.apply({"type": "show_hint", "t": 9})
    session.close()
    replayed = replay(session.scenario, session.anatomy, tmp_path / "log.jsonl")
    assert replayed.state.hints_shown == len(hints) and replayed.state.to_json()["hints_shown"] == len(hints)


def test_a_scenario_without_hints_refuses_one():
    scenario = load_scenario("ilesi-default").model_copy(update={"hints": []})
    with pytest.raises(SpinesimError, match="this scenario has no hints"):
        Session(scenario, mini_spine()).apply({"type": "show_hint", "t": 1})


def test_the_probe_is_placed_with_its_settings_on_the_skin_only():
    session = _session("ilesi-ultrasound-l4l5-left")
    record = {"type": "place_probe", "t": 1, "position": [0.0, 80.0, 0.0], "direction": [0, -1, 0], "lateral": [0, 0, -1],
              "kind": "linear", "depth_mm": 45.0, "gain_db": 3.0, "view": "articular"}
    skin = session.tracer.skin_entry(np.array([0.0, 80.0, 0.0]), np.array([0.0, -1.0, 0.0]))
    record["position"] = skin.tolist()
    (event,) = session.apply(record)
    probe = session.probe()
    assert event.kind == "probe_placed" and "articular" in event.message
    assert (probe.kind, probe.depth_mm, probe.gain_db, probe.frequency_mhz) == ("linear", 45.0, 3.0, 10.0)
    np.testing.assert_allclose(probe.position, skin)
    for position, message in (((skin + [0, 30, 0]).tolist(), "30 mm from the skin"),
                              (skin.tolist(), "frequency_mhz = 2.0 is out of range")):
        with pytest.raises(SpinesimError, match=message):
            session.apply(record | {"t": 2, "position": position} | ({"frequency_mhz": 2.0} if "frequency" in message else {}))
    assert session.probe().geometry_key == probe.geometry_key  # unchanged by the refused ones


def test_the_state_holds_the_poses_its_actions_wrote_and_writes_them_back_unchanged():
    scenario = load_scenario("ilesi-ultrasound-l4l5-left")
    start_probe = ProbePose(position=(0, 80, 0), direction=(0, -1, 0), lateral=(0, 0, -1))
    session = Session(scenario.model_copy(update={"start": scenario.start.model_copy(update={"probe": start_probe})}),
                      mini_spine())
    start = session.state.to_json()
    assert (start["carm"], start["probe"]) == ({"setup": "AP", "primary_deg": 0.0, "secondary_deg": 0.0},
                                               {"position": [0.0, 80.0, 0.0], "direction": [0.0, -1.0, 0.0],
                                                "lateral": [0.0, 0.0, -1.0]})
    skin = session.tracer.skin_entry(np.array([0.0, 80.0, 0.0]), np.array([0.0, -1.0, 0.0])).tolist()
    records = [{"type": "set_carm", "t": 1.0, "primary_deg": 20.0, "secondary_deg": -5.0, "isocenter": [1.0, 2.0, 3.0]},
               {"type": "place_probe", "t": 2.0, "position": skin, "direction": [0.0, -1.0, 0.0],
                "lateral": [0.0, 0.0, -1.0], "kind": "linear", "depth_mm": 45.0, "view": "articular"},
               {"type": "set_carm", "t": 3.0, "primary_deg": -15.0, "setup": "oblique"},
               {"type": "fluoro_shot", "t": 4.0}]
    for record in records:
        session.apply(record)
    states = [state.to_json() for state in session.states[1:]]
    fields = [{k: v for k, v in r.items() if k not in ("type", "t")} for r in records]
    assert list(states[0]["carm"].items()) == list(({"setup": None} | fields[0]).items())
    assert list(states[1]["probe"].items()) == list(fields[1].items())
    assert states[2]["carm"] == {"setup": "oblique", "primary_deg": -15.0, "secondary_deg": 0.0}
    assert session.state.carm == CArmPose(setup="oblique", primary_deg=-15.0)
    assert session.state.probe == session.actions[1].pose and session.state.probe.view == "articular"
    shot = session.events[-1]
    assert shot.kind == "fluoro_shot" and shot.data["carm"] == states[2]["carm"]
    assert json.loads(json.dumps(states)) == states
