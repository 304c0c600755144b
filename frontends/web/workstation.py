"""One user's workstation: the trame app a trainee (or instructor) works in, one process per login.

trame keeps ONE shared state per server process: every browser connected to a process sees and
changes the same state. So the portal (:mod:`frontends.web.portal`) starts a workstation process
for each logged-in user, bound to the loopback interface, and forwards only that user's requests
to it; users never share a process, and so never see each other's state.

The trainee's screen: a scenario picker, the fluoroscopy monitor (black, last image held), the
C-arm (angles, presets), the needle (entry picked on the image, two angles, advance/withdraw by a
step, redirect), the loss-of-resistance syringe and contrast, events, timer, shot and dose counters,
hints (each a ``show_hint`` action), where the scenario allows ultrasound a second monitor with live
B-mode and the probe's controls (standard views, slide/sweep/rotate/tilt/rock, depth, gain,
frequency, an in-plane needle aimed on the image), then Finish and the report with a replay slider. An instructor also gets the Review tab: attempts
by trainee and scenario, reports, replays, scenario previews and learning curves.

Every click becomes an action of :class:`frontends.web.attempt.LiveAttempt`; a refused action shows
its :class:`SpinesimError` message and changes nothing. The image is sent (JPEG data URL, flushed
on its own) before the rest of the screen is updated.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.store import load_anatomy
from frontends.cli import log_internal_error
from frontends.store import Store
from frontends.web.attempt import LiveAttempt, scenario_preview
from frontends.web.curve import learning_curve_svg
from scenarios.schema import Scenario, library_scenarios
from simulator.case.controls import (PROBE_MOVES, PROBE_VIEWS, carm_presets, carm_start, in_plane_entry, moved_probe,
                                     needle_angles, needle_direction, probe_level_and_side, probe_preset,
                                     probe_with_settings)
from simulator.needle.trace import Tracer, tracer_for
from simulator.session.fold import Session

# Events a trainee sees as a banner (in addition to the list).
_ALERT_KINDS = {"csf_flashback", "blood_flashback", "paraesthesia", "dural_puncture", "bone_contact", "hub_at_skin",
                "cord_contact", "cauda_equina_contact", "root_penetration", "vessel_puncture", "intradiscal",
                "capsule_rupture"}
# Work longer than this (s: a patient loaded, a report, a first ultrasound frame) leaves freed scratch
# memory that glibc keeps unless asked to hand it back (release_freed_memory, a few ms).
HEAVY_WORK_S = 0.3
_SEVERITY_COLOUR = {"info": "blue-grey", "warning": "amber-darken-2", "unsafe": "red-darken-2"}
_HIDDEN_KINDS = {"target_reached", "target_left",  # the trainee must judge that from the images
                 "probe_placed", "hint_shown"}  # the monitor and the hint list show these


@dataclass(frozen=True)
class WorkstationConfig:
    """What the portal tells a workstation process (JSON in the ``SPINESIM_WORKSTATION`` variable).

    A spare starts with ``user_id`` and ``port`` None, warms up, writes ``warm`` to the file
    descriptor ``warm_fd`` and reads them (a JSON line) from its standard input.
    """

    db_url: str
    secret: str  # every request must carry it in the portal's SECRET_HEADER
    user_id: int | None = None
    port: int | None = None
    anatomy: str | None = None  # overrides every scenario's anatomy (tests, a department's own patient)
    scenario: str | None = None  # the scenario picked when the screen opens
    warm_fd: int | None = None
    reports_dir: str | None = None  # where its reports go (the portal's folder, removed with the portal)

    @classmethod
    def from_environment(cls) -> WorkstationConfig:
        return cls(**json.loads(os.environ["SPINESIM_WORKSTATION"]))

    def assigned(self, line: str) -> WorkstationConfig:
        """This configuration with the user and port of an assignment line from the portal.

        Raises
        ------
        SpinesimError
            If the line is not ``{"user_id": int, "port": int}`` (the portal went away: an empty line).
        """
        try:
            assignment = json.loads(line)
            user_id, port = int(assignment["user_id"]), int(assignment["port"])
        except (ValueError, KeyError, TypeError):
            raise SpinesimError(f"a spare workstation expected its assignment, got {line[:80]!r}") from None
        return replace(self, user_id=user_id, port=port, warm_fd=None)


class Patients:
    """Anatomies and their tracers, loaded once per source and shared by every attempt."""

    def __init__(self, override: str | None) -> None:
        self.override = override
        self._loaded: dict[str, tuple[Anatomy, Tracer]] = {}

    def of(self, scenario: Scenario) -> tuple[Anatomy, Tracer]:
        key = self.override or scenario.anatomy.model_dump_json()
        if key not in self._loaded:
            anatomy = compact_labels(load_anatomy(self.override) if self.override else scenario.anatomy.load())
            self._loaded[key] = (anatomy, tracer_for(anatomy))
        return self._loaded[key]


def compact_labels(anatomy: Anatomy) -> Anatomy:
    """``anatomy`` with its label map held in one byte per voxel where every id fits (the built-in
    spine has under 200 structures): a workstation keeps its patients for hours, and this halves the
    label map's memory. The ids, and so every structure, are unchanged."""
    labels = anatomy.labels
    fits = max((label.id for label in anatomy.label_table), default=0) < 256
    if labels is not None and labels.array.dtype.itemsize > 1 and fits:
        anatomy.labels = labels.with_array(labels.array.astype(np.uint8))
    return anatomy


class Workstation:
    """The trame server of one user (see the module docstring)."""

    def __init__(self, config: WorkstationConfig, server=None, *, scenarios: dict[str, Scenario] | None = None,
                 patients: Patients | None = None) -> None:
        from trame.app import get_server

        self.config = config
        self.store = Store(config.db_url)
        self.user = self.store.user_by_id(config.user_id)
        self.scenarios = scenarios or library_scenarios()
        self.patients = patients or Patients(config.anatomy)
        self.attempt: LiveAttempt | None = None
        self._picked: np.ndarray | None = None  # skin entry picked on the fluoroscopy image
        self._aim: np.ndarray | None = None  # in-plane aim picked on the ultrasound image
        self._presets: dict[str, dict] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.opened: LiveAttempt | None = None  # the attempt whose report is open
        self.lock = asyncio.Lock()
        self.server = server or get_server(client_type="vue3")
        # HTML reports this workstation made, served to its own user only (through the portal).
        self._reports = Path(tempfile.mkdtemp(prefix="spinesim-reports-", dir=config.reports_dir))
        self.server.serve["reports"] = str(self._reports)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.ctrl.on_server_bind.add(lambda wslink_server: wslink_server.app.middlewares.append(
            require_secret(config.secret)))
        self._init_state()
        self._bind()
        self._layout()

    # ------------------------------------------------------------------ state
    def _init_state(self) -> None:
        s = self.state
        first = first_scenario(self.scenarios, self.config.scenario)
        s.update({
            "tab": "sim", "action_count": 0, "user_name": self.user.name, "role": self.user.role,
            "scenario_items": [{"value": k, "title": v.title} for k, v in sorted(self.scenarios.items())],
            "scenario_id": first, "scenario": {}, "attempt_active": False, "attempt_id": None, "resume_id": None,
            "busy": False, "error_text": "", "error_show": False, "alert_text": "", "alert_colour": "red-darken-2",
            "alert_show": False,
            "fluoro_src": "", "fluoro_caption": "", "pick_marker": None, "entry_text": "",
            "carm_primary": 0.0, "carm_secondary": 0.0, "carm_label": "AP", "preset_names": [],
            "needle_left": 0.0, "needle_cranial": 0.0, "step_mm": 5.0, "needle_in": False, "depth_mm": 0.0,
            "hub_text": "", "lor_text": "", "contrast_ml": 1.0, "live_seconds": 3.0, "dsa_allowed": False,
            "hints_shown": [], "hints_left": 0, "events": [],
            "us_allowed": False, "us_src": "", "us_caption": "", "us_aspect": "1 / 1", "us_views": list(PROBE_VIEWS), "probe_on": False,
            "us_depth": 80.0, "us_gain": 0.0, "us_frequency": 3.5, "us_step_mm": 2.0, "us_step_deg": 5.0,
            "us_aim_marker": None, "us_aim_text": "", "us_entry_end": "right",
            "report_scans": [], "replay_us_src": "", "replay_us_caption": "", "replay_us_aspect": "1 / 1", "timer_text": "00:00", "shots": 0, "fluoro_s": 0.0, "kerma_mgy": 0.0, "dap": 0.0,
            "passes": 0,
            "report": None, "report_page": "", "report_shots": [], "replay_max": 0, "replay_step": 0, "replay_src": "",
            "replay_caption": "", "replay_action": "", "replay_events": [],
            "review_trainees": [], "review_trainee": None, "review_scenario": None, "review_rows": [],
            "curve_svg": "", "preview_id": first, "preview_src": "", "preview_text": "",
        })
        s.update(self._scenario_view(first))
        s.update(self._resume_view())
        s.update(self._review_view())

    def _bind(self) -> None:
        c = self.ctrl
        for name in ("start_attempt", "resume_attempt", "shot", "live", "dsa", "move_carm", "preset", "pick",
                     "insert", "redirect", "advance", "withdraw", "lor", "inject", "finish", "open_attempt",
                     "preview", "new_attempt", "hint", "probe_view", "probe_move", "probe_settings", "us_pick",
                     "insert_in_plane"):
            setattr(c, name, getattr(self, name))
        # These run on the event loop while the state is being flushed: they only update the state; a
        # value the browser sent that makes no sense is shown as a message, like a refused action.
        self._on_change("scenario_id", lambda scenario_id, **_: self._scenario_view(scenario_id))
        self._on_change("replay_step", lambda replay_step, **_: self._replay_view(
            _integer(replay_step, "replay step", 0, 10**6)))
        # New attempts may have been made since: the review is read again whenever its tab opens.
        self._on_change("tab", lambda tab, **_: self._review_view(self.state.review_trainee, self.state.review_scenario)
                        if tab == "review" else {})
        self._on_change("review_trainee", "review_scenario",
                        lambda review_trainee, review_scenario, **_: self._review_view(review_trainee, review_scenario))
        c.on_server_ready.add(lambda **_: asyncio.ensure_future(self._tick()))

    def _on_change(self, *names_and_view) -> None:
        """Update the state with ``view(**changed)`` when any of ``names`` changes."""
        *names, view = names_and_view

        def changed(**values) -> None:
            try:
                self.state.update(view(**values))
            except SpinesimError as error:
                self.state.update({"error_text": str(error), "error_show": True})

        self.state.change(*names)(changed)

    # ------------------------------------------------------------------ helpers
    def _scenario_view(self, scenario_id) -> dict:
        scenario = self.scenarios[_choice(scenario_id, self.scenarios, "scenario")]
        imaging = [name.upper() if name == "dsa" else name for name, on in scenario.imaging.model_dump().items() if on]
        return {"scenario": {"title": scenario.title, "brief": scenario.brief,
                             "procedure": scenario.procedure.replace("_", " "),
                             "needle": f"{scenario.needle.kind.replace('_', ' ').title()} {scenario.needle.gauge} G, "
                                       f"{scenario.needle.spec().length_mm:.0f} mm",
                             "imaging": ", ".join(imaging)},
                "dsa_allowed": scenario.imaging.dsa, "us_allowed": scenario.imaging.ultrasound}

    def _set(self, **changes) -> None:
        """Change the shared state and push it to the browser now, from the event loop or a worker."""
        if threading.get_ident() == self._loop_thread:
            with self.state:
                self.state.update(changes)
        else:
            asyncio.run_coroutine_threadsafe(self._set_async(changes), self._loop).result()

    async def _set_async(self, changes: dict) -> None:
        self._set(**changes)

    async def _run(self, work, *args) -> None:
        """Run ``work`` (blocking) in a worker thread, one at a time; errors become a message on screen."""
        if self.lock.locked():
            return
        async with self.lock:
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
            self._set(busy=True)
            started = time.monotonic()
            try:
                await self._loop.run_in_executor(None, work, *args)
            except SpinesimError as error:
                self._set(error_text=str(error), error_show=True)
            except Exception as error:  # noqa: BLE001 - the trainee gets a message, the log the traceback
                log = log_internal_error(f"workstation of user {self.user.name}")
                self._set(error_text=f"internal error ({type(error).__name__}); details in {log}", error_show=True)
            finally:
                self._set(busy=False)
                if time.monotonic() - started > HEAVY_WORK_S:
                    release_freed_memory()

    def _act(self, record: dict) -> None:
        if self.attempt is None or self.attempt.finished:
            raise SpinesimError("no attempt in progress", hint="start an attempt first")
        shots_before, state_before = len(self.attempt.shots), self.attempt.session.state
        events = self.attempt.act(record)
        if len(self.attempt.shots) > shots_before:
            # The image first, on its own message: it is what the trainee is waiting for.
            shot = self.attempt.last_shot
            self._set(fluoro_src=shot.data_url, fluoro_caption=shot.caption, pick_marker=None)
        state = self.attempt.session.state
        if state.probe is not None and (state.probe != state_before.probe or state.needle is not state_before.needle):
            scan = self.attempt.scan  # live ultrasound: a new frame for every probe or needle move
            self._set(us_src=scan.data_url, us_caption=scan.caption, us_aspect=scan.aspect)
        self._set(**self._attempt_view(events))

    def _attempt_view(self, events=()) -> dict:
        attempt = self.attempt
        state = attempt.session.state
        view = {"attempt_active": not attempt.finished, "attempt_id": attempt.attempt_id,
                "action_count": len(attempt.session.actions),
                "carm_label": attempt.session.carm().label, "shots": state.fluoro_shots,
                "fluoro_s": round(state.fluoro_seconds, 1), "kerma_mgy": round(attempt.ledger.reference_air_kerma_mgy, 2),
                "dap": round(attempt.ledger.dose_area_product_gy_cm2, 3), "passes": state.passes,
                "needle_in": state.needle is not None,
                "depth_mm": round(state.needle.depth_mm, 1) if state.needle is not None else 0.0,
                "hub_text": {"csf": "Clear fluid (CSF) at the hub", "blood": "Blood at the hub"}.get(state.tip_tissue or "", ""),
                "events": _event_rows([e for e in attempt.session.events if e.kind not in _HIDDEN_KINDS][-60:][::-1])}
        for event in events:
            if event.kind == "loss_of_resistance":
                view["lor_text"] = event.message
        alerts = [e for e in events if e.kind in _ALERT_KINDS]
        if alerts:
            view |= {"alert_text": " · ".join(e.message for e in alerts), "alert_show": True,
                     "alert_colour": "red-darken-2" if any(e.severity == "unsafe" for e in alerts) else "amber-darken-3"}
        shot = attempt.last_shot
        view |= {"fluoro_src": shot.data_url if shot else "", "fluoro_caption": shot.caption if shot else ""}
        hints = attempt.session.scenario.hints
        view |= {"hints_shown": hints[:state.hints_shown], "hints_left": len(hints) - state.hints_shown}
        scan = attempt.scan
        view |= {"probe_on": scan is not None, "us_src": scan.data_url if scan else "",
                 "us_caption": scan.caption if scan else "", "us_aspect": scan.aspect if scan else "1 / 1"}
        if scan is not None:
            probe = scan.image.probe
            view |= {"us_depth": probe.depth_mm, "us_gain": probe.gain_db, "us_frequency": probe.frequency_mhz}
        return view

    # ------------------------------------------------------------------ attempt life cycle
    def start_attempt(self):
        return self._run(self._start)

    def _start(self) -> None:
        scenario = self.scenarios[_choice(self.state.scenario_id, self.scenarios, "scenario")]
        anatomy, tracer = self.patients.of(scenario)
        self._begin(LiveAttempt.start(self.store, self.user.id, scenario, anatomy, tracer))

    def resume_attempt(self):
        return self._run(self._resume)

    def _resume(self) -> None:
        stored = self.store.attempt(_integer(self.state.resume_id, "attempt", 1, _MAX_ID))
        if stored.user_id != self.user.id or stored.status != "in_progress":
            raise SpinesimError(f"attempt {stored.id} cannot be resumed here")
        scenario = self.scenarios[stored.scenario_id]
        anatomy, tracer = self.patients.of(scenario)
        self._set(scenario_id=stored.scenario_id)
        self._begin(LiveAttempt.resume(self.store, stored.id, scenario, anatomy, tracer))

    def _begin(self, attempt: LiveAttempt) -> None:
        self.attempt, self._picked = attempt, None
        self._presets = carm_presets(attempt.session.scenario, attempt.session.anatomy)
        carm = attempt.session.carm()
        self._aim = None
        view = {"preset_names": list(self._presets), "us_aim_marker": None, "us_aim_text": "",
                "carm_primary": round(carm.primary_deg, 2),
                "carm_secondary": round(carm.secondary_deg, 2), "pick_marker": None, "entry_text": "", "lor_text": "",
                "alert_show": False, "resume_id": None, "tab": "sim"}
        needle = attempt.session.state.needle
        if needle is not None:
            left, cranial = needle_angles(needle.direction)
            view |= {"needle_left": round(left, 2), "needle_cranial": round(cranial, 2)}
        self._set(**view, **self._attempt_view())

    def hint(self):
        """Reveal the scenario's next hint: a ``show_hint`` action, in the log like any other (scoring
        may deduct for it, per the scenario's rubric)."""
        return self._run(self._act, {"type": "show_hint"})

    def new_attempt(self) -> None:
        self.attempt = None
        self._set(attempt_active=False, tab="sim", **self._resume_view())

    def _resume_view(self) -> dict:
        unfinished = self.store.unfinished_attempt(self.user.id)
        if unfinished is None or self.attempt is not None:
            return {"resume_id": None, "resume_text": ""}
        return {"resume_id": unfinished.id, "resume_text": f"Attempt {unfinished.id} ({unfinished.scenario_id}) was "
                                                           f"interrupted after {unfinished.actions} actions."}

    async def _tick(self) -> None:
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        while True:
            await asyncio.sleep(1.0)
            if self.attempt is not None and not self.attempt.finished:
                seconds = int(self.attempt.now())
                self._set(timer_text=f"{seconds // 60:02d}:{seconds % 60:02d}")

    # ------------------------------------------------------------------ C-arm and imaging
    def shot(self):
        return self._run(self._act, {"type": "fluoro_shot", "mode": "pulse"})

    def live(self, seconds):
        return self._run(lambda: self._act({"type": "fluoro_shot", "mode": "live",
                                             "seconds": _number(seconds, "live seconds")}))

    def dsa(self, seconds):
        return self._run(lambda: self._act({"type": "fluoro_shot", "mode": "dsa",
                                            "seconds": _number(seconds, "DSA seconds")}))

    def move_carm(self, primary_deg, secondary_deg):
        return self._run(self._move_carm, primary_deg, secondary_deg)

    def _move_carm(self, primary_deg, secondary_deg) -> None:
        isocenter = self.attempt.session.state.carm.isocenter if self.attempt else None
        self._act({"type": "set_carm", "primary_deg": _number(primary_deg, "LAO/RAO angle"),
                   "secondary_deg": _number(secondary_deg, "cranial/caudal angle"), "isocenter": isocenter})

    def preset(self, name: str):
        return self._run(self._preset, name)

    def _preset(self, name: str) -> None:
        if self.attempt is None:
            raise SpinesimError("no attempt in progress", hint="start an attempt first")
        name = _choice(name, self._presets, "C-arm preset")
        pose = self._presets[name]
        self._act({"type": "set_carm", **pose.to_json()})
        self._set(carm_primary=pose.primary_deg, carm_secondary=pose.secondary_deg)

    # ------------------------------------------------------------------ needle
    def pick(self, x, y, width, height):
        return self._run(self._pick, x, y, width, height)

    def _pick(self, x, y, width, height) -> None:
        if self.attempt is None or self.attempt.finished:
            raise SpinesimError("no attempt in progress", hint="start an attempt first")
        x, y, width, height = (_number(v, "click position") for v in (x, y, width, height))
        if width <= 0 or height <= 0:
            raise SpinesimError("the image has no size on screen")
        shot = self.attempt.last_shot
        pixels = shot.carm.detector_pixels if shot is not None else 512
        point = self.attempt.pick_entry(x / width * pixels - 0.5, y / height * pixels - 0.5)
        self._picked = point
        self._set(pick_marker={"x": 100 * x / width, "y": 100 * y / height},
                  entry_text=_lps_text(point))

    def insert(self, left_deg, cranial_deg):
        return self._run(self._insert, left_deg, cranial_deg)

    def _insert(self, left_deg, cranial_deg) -> None:
        if self._picked is None:
            raise SpinesimError("no entry point picked", hint="click the skin entry point on the fluoroscopy image")
        self._act({"type": "place_needle", "entry": [round(float(v), 4) for v in self._picked],
                   "direction": _direction(left_deg, cranial_deg)})

    def redirect(self, left_deg, cranial_deg):
        return self._run(lambda: self._act({"type": "redirect", "direction": _direction(left_deg, cranial_deg)}))

    def advance(self, mm):
        return self._run(lambda: self._act({"type": "advance", "mm": _number(mm, "step")}))

    def withdraw(self, mm):
        return self._run(lambda: self._act({"type": "withdraw", "mm": _number(mm, "step")}))

    def lor(self):
        return self._run(self._act, {"type": "check_loss_of_resistance"})

    def inject(self, ml):
        return self._run(lambda: self._act({"type": "inject_contrast", "ml": _number(ml, "contrast volume")}))

    # ------------------------------------------------------------------ ultrasound
    def _probe_now(self):
        pose = self._live().session.state.probe
        if pose is None:
            raise SpinesimError("there is no probe on the patient", hint="choose an ultrasound view first")
        return pose

    def _live(self) -> LiveAttempt:
        if self.attempt is None or self.attempt.finished:
            raise SpinesimError("no attempt in progress", hint="start an attempt first")
        return self.attempt

    def _place_probe(self, pose) -> None:
        self._act({"type": "place_probe", **pose.to_json()})
        self._set(us_aim_marker=None, us_aim_text="")
        self._aim = None

    def probe_view(self, name):
        return self._run(self._probe_view, name)

    def _probe_view(self, name) -> None:
        attempt = self._live()
        if not isinstance(name, str) or name not in PROBE_VIEWS:
            raise SpinesimError(f"unknown ultrasound view {name!r}", hint=f"use one of: {', '.join(PROBE_VIEWS)}")
        session = attempt.session
        self._place_probe(probe_preset(session.scenario, session.anatomy, name, session.state.probe))

    def probe_move(self, movement, sign, step_mm, step_deg):
        return self._run(self._probe_move, movement, sign, step_mm, step_deg)

    def _probe_move(self, movement, sign, step_mm, step_deg) -> None:
        if not isinstance(movement, str) or movement not in PROBE_MOVES:
            raise SpinesimError(f"unknown probe movement {movement!r}", hint=f"use one of: {', '.join(PROBE_MOVES)}")
        if sign not in (-1, 1):
            raise SpinesimError(f"a probe movement goes one way or the other (-1 or 1), not {sign!r}")
        step = _number(step_mm, "probe step (mm)") if PROBE_MOVES[movement] == "mm" else _number(step_deg, "probe step (°)")
        if step <= 0:
            raise SpinesimError(f"the probe step must be positive, got {step:g}")
        self._place_probe(moved_probe(self.attempt.session.anatomy, self._probe_now(), movement, sign * step))

    def probe_settings(self, depth_mm, gain_db, frequency_mhz):
        return self._run(self._probe_settings, depth_mm, gain_db, frequency_mhz)

    def _probe_settings(self, depth_mm, gain_db, frequency_mhz) -> None:
        self._place_probe(probe_with_settings(self._probe_now(), _number(depth_mm, "ultrasound depth"),
                                              _number(gain_db, "gain"), _number(frequency_mhz, "frequency")))

    def us_pick(self, x, y, width, height):
        return self._run(self._us_pick, x, y, width, height)

    def _us_pick(self, x, y, width, height) -> None:
        scan = self._live().scan
        if scan is None:
            raise SpinesimError("there is no ultrasound image to pick on", hint="choose an ultrasound view first")
        x, y, width, height = (_number(v, "click position") for v in (x, y, width, height))
        if width <= 0 or height <= 0:
            raise SpinesimError("the image has no size on screen")
        rows, cols = scan.image.pixels.shape
        row, col = y / height * rows - 0.5, x / width * cols - 0.5
        inside = 0 <= round(row) < rows and 0 <= round(col) < cols and scan.image.field_of_view[round(row), round(col)]
        if not inside:
            raise SpinesimError("that point is outside the ultrasound image", hint="click inside the scanned sector")
        self._aim = scan.image.pixel_to_lps(row, col)
        depth = (self._aim - scan.image.probe.position) @ scan.image.probe.axial
        self._set(us_aim_marker={"x": 100 * x / width, "y": 100 * y / height},
                  us_aim_text=f"{depth:.0f} mm deep below the probe")

    def insert_in_plane(self, end):
        return self._run(self._insert_in_plane, end)

    def _insert_in_plane(self, end) -> None:
        probe = self._probe_now()
        if self._aim is None:
            raise SpinesimError("no aim point picked", hint="click the target on the ultrasound image")
        entry = in_plane_entry(probe, end)
        self._act({"type": "place_needle", "entry": [round(float(v), 4) for v in entry],
                   "aim": [round(float(v), 4) for v in self._aim]})
        needle = self.attempt.session.state.needle
        left, cranial = needle_angles(needle.direction)
        self._picked = None
        self._set(needle_left=round(left, 2), needle_cranial=round(cranial, 2), pick_marker=None,
                  entry_text=_lps_text(needle.entry) + " (in plane)")

    def finish(self):
        return self._run(self._finish)

    def _finish(self) -> None:
        self._act({"type": "finish"})
        self._open(self.attempt)

    # ------------------------------------------------------------------ report and replay
    def _open(self, attempt: LiveAttempt) -> None:
        self.opened = attempt
        stored = self.store.attempt(attempt.attempt_id)
        report = (stored.report or attempt.report()) | {"attempt_id": stored.id, "user": stored.user_name,
                                                         "status": stored.status.replace("_", " ")}
        steps = len(attempt.session.actions)
        self._set(report=report, replay_max=steps, tab="report", report_page="",
                  report_shots=[{"src": shot.data_url, "caption": shot.caption, "step": shot.action_index + 1}
                                for shot in attempt.shots],
                  report_scans=[{"src": scan.data_url, "caption": scan.caption, "step": scan.state_index}
                                for scan in attempt.scans()])
        self._set(replay_step=steps, **self._replay_view(steps))
        # The full page (final views, contrast run, 3D reveal) takes a few seconds more: it follows.
        page = self._reports / f"attempt-{stored.id}-{steps}.html"
        if not page.exists():
            page.write_text(attempt.report_page(), encoding="utf-8")
        self._set(report_page=f"reports/{page.name}")

    def _replay_view(self, step: int) -> dict:
        attempt = self.opened
        if attempt is None:
            return {}
        session = attempt.session
        step = int(np.clip(step, 0, len(session.actions)))
        shot = attempt.shot_at(step)
        scan = attempt.scan_at(step)
        view = {"replay_src": shot.data_url if shot is not None else "",
                "replay_caption": shot.caption if shot is not None else "no image yet",
                "replay_us_src": scan.data_url if scan is not None else "",
                "replay_us_caption": scan.caption if scan is not None else "",
                "replay_us_aspect": scan.aspect if scan is not None else "1 / 1"}
        if step == 0:
            return view | {"replay_action": "0. start", "replay_events": []}
        action = session.actions[step - 1]
        fields = {k: v for k, v in action.model_dump(exclude_none=True).items() if k not in ("type", "t")}
        before, after = session.states[step - 1].t, session.states[step].t
        events = [e for e in session.events if before < e.t <= after or (step == 1 and e.t == after)]
        return view | {"replay_action": f"{step}. t = {action.t:.1f} s · {action.type.replace('_', ' ')} "
                                        + ", ".join(f"{k} {_short(v)}" for k, v in fields.items()),
                       "replay_events": _event_rows(events)}

    def open_attempt(self, attempt_id):
        return self._run(self._open_stored, attempt_id)

    def _open_stored(self, attempt_id) -> None:
        stored = self.store.attempt(_integer(attempt_id, "attempt", 1, _MAX_ID))
        if self.user.role != "instructor" and stored.user_id != self.user.id:
            raise SpinesimError("that attempt is not yours")
        scenario = self.scenarios[stored.scenario_id]
        anatomy, tracer = self.patients.of(scenario)
        self._open(LiveAttempt.resume(self.store, stored.id, scenario, anatomy, tracer))

    # ------------------------------------------------------------------ instructor review
    def _review_view(self, trainee=None, scenario=None) -> dict:
        if self.user.role != "instructor":
            return {}
        trainee = None if trainee is None else _integer(trainee, "trainee", 1, _MAX_ID)
        scenario = None if scenario is None else _choice(scenario, self.scenarios, "scenario")
        rows = self.store.attempts(user_id=trainee, scenario_id=scenario)
        view = {"review_trainees": [{"value": u.id, "title": f"{u.name} ({u.role})"} for u in self.store.users()],
                "review_rows": [{"id": a.id, "user": a.user_name, "scenario": a.scenario_id,
                                 "started": a.started.astimezone().strftime("%Y-%m-%d %H:%M"),
                                 "status": a.status.replace("_", " "),
                                 "outcome": "" if a.report is None else ("pass" if a.report["passed"] else "fail"),
                                 "grade": "" if a.report is None else f"{a.report['grade']:.0f}",
                                 "time": f"{a.elapsed_s / 60:.1f} min", "actions": a.actions} for a in reversed(rows)],
                "curve_svg": ""}
        done = [a for a in self.store.attempts(user_id=trainee) if a.report is not None] if trainee is not None else []
        if done:
            series = [("Grade", [a.report["grade"] for a in done]),
                      ("Shots", [a.report["metrics"]["fluoro_shots"] for a in done]),
                      ("Time (min)", [round(a.report["metrics"]["procedure_time_s"] / 60, 2) for a in done])]
            view["curve_svg"] = learning_curve_svg(series, passed=[a.report["passed"] for a in done])
        return view

    def preview(self):
        return self._run(self._preview)

    def _preview(self) -> None:
        scenario = self.scenarios[_choice(self.state.preview_id, self.scenarios, "scenario")]
        anatomy, tracer = self.patients.of(scenario)
        target = Session(scenario, anatomy, tracer=tracer).target
        self._set(preview_src=scenario_preview(scenario, anatomy, tracer),
                  preview_text=f"Target: {target.description} (ringed in red on the AP view).")

    # ------------------------------------------------------------------ layout
    def _layout(self) -> None:
        from frontends.web.layout import build_layout

        build_layout(self.server, instructor=self.user.role == "instructor")


def first_scenario(scenarios: dict[str, Scenario], wanted: str | None) -> str:
    """The scenario selected when the screen opens: ``wanted`` if it is one, else the first by id."""
    return wanted if wanted in scenarios else sorted(scenarios)[0]


def warm_up(scenario: Scenario, patients: Patients) -> None:
    """Load the scenario's patient and compile the imaging kernels (fluoroscopy with DSA, and
    ultrasound with its acoustic maps if the scenario allows it) before the first click."""
    from simulator.case.planner import plan_trajectory
    from simulator.case.targets import target_for
    from simulator.imaging.probe import standard_view
    from simulator.session.replay import replay
    from simulator.session.scans import render_scan
    from simulator.session.shots import render_shot

    anatomy, tracer = patients.of(scenario)
    imaging = scenario.imaging.model_copy(update={"dsa": True})
    warming = scenario.model_copy(update={"imaging": imaging})
    target = target_for(warming, anatomy, tracer)
    path = plan_trajectory(tracer, target, warming.needle.spec())
    actions = [
        {"type": "place_needle", "t": 1.0, "entry": path.entry.tolist(), "direction": path.direction.tolist(),
         "depth_mm": path.depth_mm},
        {"type": "inject_contrast", "t": 2.0, "ml": 0.1},
        {"type": "fluoro_shot", "t": 3.0, "mode": "dsa", "seconds": 1.0},
        # The first shot of an attempt: its pose's DRR is then cached.
        {"type": "set_carm", "t": 4.0, **carm_start(scenario, anatomy).to_json()},
        {"type": "fluoro_shot", "t": 5.0},
    ]
    if scenario.imaging.ultrasound:
        probe = standard_view(anatomy, "paramedian-sagittal-oblique", *probe_level_and_side(scenario))
        actions.append({"type": "place_probe", "t": 6.0, **probe.pose().to_json()})
    session = replay(warming, anatomy, actions, tracer=tracer, source="the warm-up")
    for step in session.steps:
        if step.action.type == "fluoro_shot":
            render_shot(session, step.after, step.action.mode, step.action.seconds)
    if scenario.imaging.ultrasound:
        render_scan(session, session.state)


def release_freed_memory() -> None:
    """Hand memory the process freed back to the system (glibc keeps freed heap pages otherwise:
    ~70 MB after loading a patient and compiling the kernels). No-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def require_secret(secret: str):
    """aiohttp middleware refusing (403) every request, WebSocket upgrades included, that lacks the
    workstation's secret (the portal adds it; another local user reaching the port cannot)."""
    from aiohttp import web

    from frontends.web.portal import SECRET_HEADER, secrets_match

    @web.middleware
    async def guard(request, handler):
        if not secrets_match(request.headers.get(SECRET_HEADER), secret):
            print(f"refused {request.method} {request.path} from {request.remote}: no workstation secret", flush=True)
            raise web.HTTPForbidden(text="this workstation only answers its portal")
        return await handler(request)

    return guard


# Largest database id the browser may name (SQLite and PostgreSQL integers are 64-bit; ids stay far below).
_MAX_ID = 2**31 - 1


def _choice(value, options, what: str) -> str:
    """One of ``options`` (names) chosen in the browser, or a SpinesimError naming the field."""
    if not isinstance(value, str) or value not in options:
        raise SpinesimError(f"unknown {what} {value!r}", hint=f"choose one of: {', '.join(sorted(options))}")
    return value


def _integer(value, what: str, low: int, high: int) -> int:
    """A whole number from the browser in [low, high], or a SpinesimError naming the field.

    Examples
    --------
    >>> _integer("7", "attempt", 1, 10), _integer(3.0, "step", 0, 5)
    (7, 3)
    >>> _integer(2.5, "attempt", 1, 10)
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: attempt: 2.5 is not a whole number
    """
    number = _number(value, what)
    if number != int(number):
        raise SpinesimError(f"{what}: {value!r} is not a whole number")
    if not low <= number <= high:
        raise SpinesimError(f"{what}: {int(number)} is out of range ({low}-{high})")
    return int(number)


def _number(value, what: str) -> float:
    """A number typed in the browser, or a SpinesimError naming the field."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SpinesimError(f"{what}: {value!r} is not a number") from None
    if not np.isfinite(number):
        raise SpinesimError(f"{what}: {value!r} is not a finite number")
    return number


def _lps_text(point) -> str:
    return f"L {point[0]:+.1f}  P {point[1]:+.1f}  S {point[2]:+.1f} mm"


def _direction(left_deg, cranial_deg) -> list[float]:
    direction = needle_direction(_number(left_deg, "left/right angle"), _number(cranial_deg, "cranial/caudal angle"))
    return [round(float(v), 6) for v in direction]


def _event_rows(events) -> list[dict]:
    return [{"t": f"{e.t:.1f}", "kind": e.kind.replace("_", " "), "message": e.message,
             "colour": _SEVERITY_COLOUR[e.severity]} for e in events]


def _short(value) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def main() -> None:
    """Entry point of a workstation process (started by the portal): warm up, then (a spare) wait
    for the portal to name the user and port, then serve."""
    from frontends.web.portal import die_with_parent

    die_with_parent()
    config = WorkstationConfig.from_environment()
    sys.argv = sys.argv[:1]  # trame parses the command line; the configuration came in the environment
    started = time.monotonic()
    scenarios, patients = library_scenarios(), Patients(config.anatomy)
    warm_up(scenarios[first_scenario(scenarios, config.scenario)], patients)
    release_freed_memory()
    print(f"workstation warm in {time.monotonic() - started:.1f} s", flush=True)
    if config.user_id is None:
        os.write(config.warm_fd, b"warm\n")
        os.close(config.warm_fd)
        config = config.assigned(sys.stdin.readline())
        started = time.monotonic()
    station = Workstation(config, scenarios=scenarios, patients=patients)
    print(f"workstation for user {config.user_id} serving on port {config.port} after "
          f"{time.monotonic() - started:.1f} s more", flush=True)
    station.server.start(port=config.port, host="127.0.0.1", open_browser=False, show_connection_info=False,
                         timeout=0, disable_logging=True)


if __name__ == "__main__":
    main()
