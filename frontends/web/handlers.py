"""What reacts to the browser in one workstation: each request (a click with the values it carries, or
a changed field) is checked (:mod:`frontends.web.inputs`), turned into an engine call (an action of the
:class:`frontends.web.attempt.LiveAttempt`, a stored attempt opened, a preview rendered), and what the
page then shows (:mod:`frontends.web.views`) is pushed to it.

The workstation (:mod:`frontends.web.workstation`) wires these to trame: a click's handler blocks, so it
runs in a worker thread, one at a time, and a refused request's :class:`SpinesimError` becomes a
message on screen; a field's handler returns the state to change.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from frontends.pictures.encode import jpeg_data_url
from frontends.store import Store, User
from frontends.web.attempt import PREVIEW_PIXELS, HeldRun, LiveAttempt, Shot
from frontends.web.explanation import attempt_explanation_view, check_may_explain, explanation_view
from frontends.web.inputs import MAX_ID, choice, clipped, integer, number, trainee_words
from frontends.web.kernels import UltrasoundKernels
from frontends.web.patients import Patients, next_patient_seed, release_mapped_pages
from frontends.web.review import my_attempts_view, preview_view, programme_view, review_view, stored_attempt
from frontends.web.views import (ATTEMPT_FIELDS, attempt_view, comment_rows, lps_text, replay_view, report_view,
                                 resume_view, scenario_view)
from scenarios.schema import Scenario
from scoring.metrics import MGY_PER_GY
from simulator.case.controls import (PROBE_MOVES, PROBE_VIEWS, SHUTTER_OPENINGS, beam_aligned_angles, carm_presets,
                                     dragged_angles, entry_words, in_plane_entry, moved_probe, needle_angles,
                                     needle_direction, nudged_angles, panned_pose, probe_preset, probe_with_settings)
from simulator.imaging.carm import MAGNIFICATION_MODES_CM
from simulator.imaging.fluoro import FluoroImage
from simulator.session.fold import READING_WORDS

# The longest a held live run lasts before the beam stops by itself, s: a fluoro_shot's longest run
# (simulator.session.actions.FluoroShot.seconds).
MAX_HELD_S = 600.0
# The longest a released run's stream may take to push its last frame, s (a frame being made as Live is let go).
STREAM_STOP_S = 5.0
# How far along the needle the point a drag moves lies before the needle is in (and at least), mm [ED]: about
# the depth of a lumbar target, so a drag moves the aim about as far as the tip will go.
DRAG_REACH_MM = 50.0
# What the live stream shows while Live is held (Handlers.stream_live), left out of the other requests' views.
_STREAMED = ("fluoro_src", "fluoro_caption", "kerma_mgy", "dap_mgy_cm2")
# Every request a page may send: the handler's name and how many values it carries.
REQUESTS = {"start_attempt": 1, "resume_attempt": 1, "new_attempt": 0, "finish": 0, "abandon": 0, "hint": 0,
            "shot": 0, "live": 1, "live_hold": 1, "dsa": 1, "move_carm": 2, "preset": 1, "pan": 2, "magnify": 1,
            "collimate": 1, "pick": 4, "align_beam": 0, "nudge": 4, "drag_aim": 8, "insert": 3, "redirect": 3,
            "advance": 1, "withdraw": 1, "lor": 0, "inject": 1, "read_contrast": 1, "medicate": 2, "stimulate": 2,
            "lesion": 2, "probe_view": 1, "probe_move": 4, "probe_settings": 3, "us_pick": 4, "insert_in_plane": 1,
            "open_attempt": 1, "preview": 1, "scenario_view": 1, "replay_view": 1, "review_view": 2,
            "programme_view": 2, "my_attempts_view": 0, "explain_case": 1, "explain_attempt": 0, "play_run": 0,
            "comment": 2, "choose_needle": 1}


class Handlers:
    """The requests of one user's page (see the module docstring).

    Parameters
    ----------
    store, user, scenarios, patients
        The attempt store, the user at this workstation, the scenarios by id and the loaded patients.
    reports : Path
        The folder the full HTML reports are written to (served to this user as ``reports/``).
    show : callable
        ``show(**changes)`` pushes changed state to the page now (from a worker thread too).
    later : callable, optional
        ``later(work)`` runs ``work()`` after the request has been answered, without holding the page's
        next requests back (the workstation: in a worker thread); by default at once.
    kernels : UltrasoundKernels, optional
        The server's compile of the ultrasound kernels, waited for before the first ultrasound frame
        (:mod:`frontends.web.kernels`); by default none.
    """

    def __init__(self, store: Store, user: User, scenarios: dict[str, Scenario], patients: Patients,
                 reports: Path, show: Callable[..., None],
                 later: Callable[[Callable[[], None]], None] | None = None,
                 kernels: UltrasoundKernels | None = None) -> None:
        self.store, self.user, self.scenarios, self.patients = store, user, scenarios, patients
        self._reports = reports
        self._set = show
        self._later = later or (lambda work: work())
        self._kernels = kernels or UltrasoundKernels(None)
        self.attempt: LiveAttempt | None = None
        self.opened: LiveAttempt | None = None  # the attempt whose report is open
        self._picked: np.ndarray | None = None  # skin entry picked on the fluoroscopy image
        self._aim: np.ndarray | None = None  # in-plane aim picked on the ultrasound image
        self._presets: dict[str, dict] = {}
        self._needle_number = 0  # the needle chosen from the case's tray (choose_needle)
        self._streamed = threading.Event()  # set when no live stream is running
        self._streamed.set()

    def request(self, name, *values):
        """Handle the page's request ``name`` with the ``values`` it carries (what a field's handler
        returns, for a field).

        Raises
        ------
        SpinesimError
            If there is no such request or it carries another number of values (a page that is not
            ours), or a value is refused.
        """
        if not isinstance(name, str) or name not in REQUESTS:
            raise SpinesimError(f"unknown request {clipped(name)}", hint="reload the page")
        if len(values) != REQUESTS[name]:
            raise SpinesimError(f"request {name!r} carries {len(values)} values, not {REQUESTS[name]}",
                                hint="reload the page")
        return getattr(self, name)(*values)

    # ------------------------------------------------------------------ fields (return the state to change)
    def scenario_view(self, scenario_id) -> dict:
        self._needle_number = 0
        return scenario_view(self.scenarios[choice(scenario_id, self.scenarios, "scenario")])

    def choose_needle(self, needle_number) -> dict:
        """The needle taken from the case's tray (``Scenario.tray``; 0 the case's own) for the next Insert,
        which records it in its ``place_needle``."""
        self._needle_number = integer(needle_number, "needle", 0, 5)
        return {}

    def replay_view(self, replay_step) -> dict:
        return replay_view(self.opened, integer(replay_step, "replay step", 0, 10**6))

    def review_view(self, trainee=None, scenario=None) -> dict:
        return review_view(self.store, self.scenarios, self.user, trainee, scenario)

    def programme_view(self, cohort=None, scenario=None) -> dict:
        return programme_view(self.store, self.scenarios, self.user, cohort, scenario)

    def my_attempts_view(self) -> dict:
        return my_attempts_view(self.store, self.scenarios, self.user)

    def resume_view(self) -> dict:
        return resume_view(self.store.unfinished_attempt(self.user.id))

    # ------------------------------------------------------------------ the attempt's actions
    def _act(self, record: dict) -> None:
        if self.attempt is None or self.attempt.finished:
            raise SpinesimError("no attempt in progress", hint="start an attempt first")
        self._act_on(self.attempt, lambda: self.attempt.act(record, preview=self._show_shot))

    def _act_on(self, attempt: LiveAttempt, act: Callable[[], list]) -> None:
        """Make ``act()`` (an action of ``attempt``) and push what it shows: a new image first, a new
        ultrasound frame, then the rest of the screen."""
        shots_before, state_before = len(attempt.shots), attempt.session.state
        try:
            events = act()
        except SpinesimError as error:
            raise trainee_words(error) from None
        if len(attempt.shots) > shots_before:
            # The image first, on its own message: it is what the trainee is waiting for.
            self._show_shot(attempt.last_shot)
        state = attempt.session.state
        if state.probe is not None and (state.probe != state_before.probe or state.needle is not state_before.needle):
            self._ultrasound_ready(attempt)
            scan = attempt.scan  # live ultrasound: a new frame for every probe or needle move
            self._set(us_src=scan.data_url, us_caption=scan.caption, us_preparing=False, us_aspect=scan.aspect)
        view = attempt_view(attempt, events, needle_moved=state.needle is not state_before.needle)
        if attempt.held is not None:  # the live stream owns the monitor and the dose counters while held
            view = {name: value for name, value in view.items() if name not in _STREAMED}
        self._set(**view)
        if len(attempt.shots) > shots_before and attempt.last_shot.mode != "pulse" \
                and not attempt.last_shot.held:  # a held run was watched as it ran
            self.play_run()

    def _show_shot(self, shot: Shot) -> None:
        """Put a shot's image (or its coarse preview, :meth:`LiveAttempt.act`) on the monitor."""
        self._set(fluoro_src=shot.data_url, fluoro_caption=shot.caption, pick_marker=None)

    # ------------------------------------------------------------------ attempt life cycle
    def start_attempt(self, scenario_id) -> None:
        case = self.scenarios[choice(scenario_id, self.scenarios, "scenario")]
        # A new patient for this attempt (the case's pool in turn); the one after it is generated while
        # the trainee works, so the next attempt starts as fast as this one.
        scenario = case.for_attempt(next_patient_seed(self.store, self.user.id, case))
        anatomy, tracer = self.patients.of(scenario)
        self._begin(LiveAttempt.start(self.store, self.user.id, scenario, anatomy, tracer))
        self.patients.prepare(case.for_attempt(next_patient_seed(self.store, self.user.id, case)), hold=True)

    def resume_attempt(self, resume_id) -> None:
        stored = self.store.attempt(integer(resume_id, "attempt", 1, MAX_ID))
        if stored.user_id != self.user.id or stored.status != "in_progress":
            raise SpinesimError(f"attempt {stored.id} cannot be resumed here")
        scenario = self.scenarios[stored.scenario_id].for_attempt(stored.seed)
        anatomy, tracer = self.patients.of(scenario)
        self._set(scenario_id=stored.scenario_id)
        self._begin(LiveAttempt.resume(self.store, stored.id, scenario, anatomy, tracer))

    def _begin(self, attempt: LiveAttempt) -> None:
        self.attempt, self._picked = attempt, None
        self._presets = carm_presets(attempt.session.scenario, attempt.session.anatomy)
        carm = attempt.session.carm()
        self._aim = None
        view = ATTEMPT_FIELDS | {"notice_text": "", "preset_names": list(self._presets), "us_aim_marker": None,
                                 "us_aim_text": "",
                "carm_primary": round(carm.primary_deg, 2),
                "carm_secondary": round(carm.secondary_deg, 2), "pick_marker": None, "entry_text": "", "entry_lps": "",
                "lor_text": "",
                "alert_show": False, "resume_id": None, "tab": "sim"}
        needle = attempt.session.state.needle
        if needle is not None:
            left, cranial = needle_angles(needle.direction)
            view |= {"needle_left": _shown_angle(left), "needle_cranial": _shown_angle(cranial)}
        self._ultrasound_ready(attempt)
        self._set(**view, **attempt_view(attempt))

    def _ultrasound_ready(self, attempt: LiveAttempt) -> None:
        """Before ``attempt``'s first ultrasound frame (once it has placed a probe): wait for the server's compile of
        the ultrasound kernels if it is still running, the monitor saying so meanwhile (and only that: not its
        "NO PROBE"; the frame that follows clears ``us_preparing``)."""
        if any(action.type == "place_probe" for action in attempt.session.actions):
            self._kernels.wait(lambda text: self._set(us_caption=text, us_preparing=True))

    def hint(self) -> None:
        """Reveal the scenario's next hint: a ``show_hint`` action, in the log like any other (scoring
        may deduct for it, per the scenario's rubric)."""
        self._act({"type": "show_hint"})

    def new_attempt(self) -> None:
        self.attempt = None
        self._set(attempt_active=False, tab="sim", **self.resume_view())

    def finish(self) -> None:
        self._act({"type": "finish"})
        self._open(self.attempt)

    def abandon(self) -> None:
        """Stop the attempt without a grade: the store keeps it, with its actions, as abandoned (not a
        failure); the simulator is ready for a new one."""
        attempt = self._live()
        with attempt.lock:
            attempt.held = None  # a live run still held ends unrecorded, with the attempt
        self.store.abandon_attempt(attempt.attempt_id)
        self.attempt = None
        release_mapped_pages(attempt.session.anatomy)
        self._set(attempt_active=False, alert_show=False, tab="sim",
                  notice_text=f"Attempt {attempt.attempt_id} abandoned: kept in your records as abandoned, not graded.",
                  **self.resume_view())

    # ------------------------------------------------------------------ C-arm and imaging
    def shot(self) -> None:
        self._act({"type": "fluoro_shot", "mode": "pulse"})

    def live(self, seconds) -> None:
        self._act({"type": "fluoro_shot", "mode": "live", "seconds": number(seconds, "live seconds")})

    def live_hold(self, held) -> None:
        """Live held down (the Live button or the space bar, like a foot pedal) or let go. Held: the beam
        comes on and frames stream to the monitor at the pulse rate, each showing the needle as it is then
        (Advance and the other controls still work), the dose counted frame by frame; let go: the run is
        recorded (a held live ``fluoro_shot``) and its last frame stays on the monitor. The stream runs
        beside the page's other requests (:meth:`stream_live`), so a release is never held up by them."""
        if not isinstance(held, bool):
            raise SpinesimError(f"Live is held or not (true or false), not {clipped(held)}", hint="reload the page")
        attempt = self._live()
        if not held:
            if attempt.held is not None:
                self._act_on(attempt, lambda: self._released(attempt))
            return
        if attempt.held is None:
            run = attempt.hold_live()
            self._streamed.clear()
            self._later(lambda: self.stream_live(attempt, run))

    def _released(self, attempt: LiveAttempt) -> list:
        """Record the held run, once its stream has pushed its last frame (the hold goes over it)."""
        events = attempt.release_live()
        self._streamed.wait(timeout=STREAM_STOP_S)
        return events

    def stream_live(self, attempt: LiveAttempt, run: HeldRun, sleep=time.sleep) -> int:
        """Push the held ``run``'s frames to the monitor as the attempt's clock reaches each, until it is
        released; a frame the machine could not make in time is skipped (the next due is shown). Returns
        the number of frames shown.

        Pipelined: this thread makes frame n + 1 while another encodes frame n and waits for the page to
        take it (:meth:`_push_held_frames`), through a slot of one frame, so making and sending no longer
        take turns; a frame made before the last was sent replaces it (the monitor never lags behind the
        run). At a pose the monitor has not shown yet (the C-arm moved while Live is held, or since the
        last shot) a preview with a ray per 4 x 4 pixels (:data:`PREVIEW_PIXELS`) is put on the monitor
        first, then the frame itself. The dose counter counts the frames the pulse rate makes, shown or not.
        """
        newest = _NewestFrame()
        pusher = threading.Thread(target=self._push_held_frames, args=(attempt, run, newest), daemon=True,
                                  name=f"live stream of shot {run.shot}")
        pusher.start()
        shown_pose = attempt.last_shot.carm.projection_matrix if attempt.last_shot else None
        index = 0
        try:
            while attempt.held is run and newest.error is None:
                if attempt.now() - run.start_s >= MAX_HELD_S:  # a page gone while Live was held: the beam stops
                    self._act_on(attempt, attempt.release_live)
                    break
                due = run.frames_due(attempt.now()) - 1
                if due < index:
                    sleep(max(0.0, run.frame_at(index) - attempt.now()))
                    continue
                index = due
                state = attempt.held_state(run, index)
                if state is None:
                    break
                pose = attempt.session.carm(state).projection_matrix
                if shown_pose is None or not np.allclose(pose, shown_pose):
                    newest.put(index, attempt.held_frame(run, index, state, pixels=PREVIEW_PIXELS))
                    shown_pose = pose
                newest.put(index, attempt.held_frame(run, index, state))
                index += 1
        finally:
            newest.close()
            pusher.join(timeout=STREAM_STOP_S)
            self._streamed.set()
        if newest.error is not None:
            raise newest.error
        return newest.shown

    def _push_held_frames(self, attempt: LiveAttempt, run: HeldRun, newest: _NewestFrame) -> None:
        """Encode and push each frame :meth:`stream_live` makes, the newest first, until it is done."""
        try:
            while (made := newest.take()) is not None:
                index, frame = made
                picture = jpeg_data_url(frame.pixels)
                frames = index + 1
                kerma_mgy = (attempt.ledger.reference_air_kerma_mgy
                             + frames * run.frame_exposure.reference_air_kerma_mgy)
                dap_gy_cm2 = (attempt.ledger.dose_area_product_gy_cm2
                              + frames * run.frame_exposure.dose_area_product_gy_cm2)
                if attempt.held is not run:
                    continue  # released: the hold goes on the monitor, not this frame
                self._set(fluoro_src=picture, pick_marker=None,
                          fluoro_caption=f"#{run.shot}  LIVE ● {frames / run.frames_per_second:.1f} s",
                          kerma_mgy=round(kerma_mgy, 2), dap_mgy_cm2=round(dap_gy_cm2 * MGY_PER_GY, 1))
                newest.shown += 1
        except Exception as error:  # noqa: BLE001 - raised again by stream_live, whose caller shows it
            newest.error = error
            newest.close()

    def dsa(self, seconds) -> None:
        self._act({"type": "fluoro_shot", "mode": "dsa", "seconds": number(seconds, "DSA seconds")})

    def play_run(self) -> None:
        """Play the newest live or DSA run on the monitor at its pulse rate, frame by frame (the contrast
        filling and washing out as it did), ending on the image it held; the monitor's buttons wait."""
        attempt = self._live()
        shot = attempt.last_run
        if shot is None:
            raise SpinesimError("there is no live or DSA run to play yet", hint="take a live or DSA run first")
        frames, interval_s = attempt.cine(shot)
        started = time.monotonic()
        for index, frame in enumerate(frames, start=1):
            self._set(fluoro_src=frame, fluoro_caption=f"{shot.caption}  frame {index}/{len(frames)}")
            time.sleep(max(0.0, started + index * interval_s - time.monotonic()))
        self._set(fluoro_src=shot.data_url, fluoro_caption=shot.caption)

    def move_carm(self, primary_deg, secondary_deg) -> None:
        isocenter = self.attempt.session.state.carm.isocenter if self.attempt else None
        self._act({"type": "set_carm", "primary_deg": number(primary_deg, "LAO/RAO angle"),
                   "secondary_deg": number(secondary_deg, "cranial/caudal angle"), "isocenter": isocenter,
                   **self._carm_mode()})

    def _carm_mode(self) -> dict:
        """The magnification field and shutters as they stand: a new angle or preset keeps them."""
        pose = self._live().session.state.carm
        return {name: value for name, value in (("field_cm", pose.field_cm), ("shutters", pose.shutters))
                if value is not None}

    def preset(self, name: str) -> None:
        if self.attempt is None:
            raise SpinesimError("no attempt in progress", hint="start an attempt first")
        name = choice(name, self._presets, "C-arm preset")
        pose = self._presets[name]
        self._act({"type": "set_carm", **pose.to_json(), **self._carm_mode()})
        self._set(carm_primary=pose.primary_deg, carm_secondary=pose.secondary_deg)

    def pan(self, right_mm, up_mm) -> None:
        """Move the table so that the view goes ``right_mm`` toward the image's right and ``up_mm`` toward
        its top (a ``set_carm`` with the isocentre moved; angles, field and shutters kept)."""
        session = self._live().session
        pose = panned_pose(session.state.carm, session.carm(), number(right_mm, "table move"),
                           number(up_mm, "table move"))
        self._act({"type": "set_carm", **pose.to_json()})

    def magnify(self, field_cm) -> None:
        """The image intensifier's magnification mode: its field ``field_cm`` across (one of
        :data:`MAGNIFICATION_MODES_CM`; the largest is no magnification). The dose per frame rises as the
        field shrinks (:func:`simulator.imaging.dose.magnification_dose_factor`)."""
        field = _one_of(field_cm, MAGNIFICATION_MODES_CM, "magnification field (cm)")
        pose = self._live().session.state.carm
        update = {"field_cm": None if field == MAGNIFICATION_MODES_CM[0] else float(field)}
        self._act({"type": "set_carm", **pose.model_copy(update=update).to_json()})

    def collimate(self, opening) -> None:
        """Close the collimator's shutters to ``opening`` of the field across and up and down (one of
        :data:`SHUTTER_OPENINGS`; 1 is open): the dose-area product and the scatter fall with the field."""
        share = _one_of(opening, SHUTTER_OPENINGS, "shutter opening")
        pose = self._live().session.state.carm
        update = {"shutters": None if share == 1.0 else float(share)}
        self._act({"type": "set_carm", **pose.model_copy(update=update).to_json()})

    # ------------------------------------------------------------------ needle
    def pick(self, x, y, width, height) -> None:
        if self.attempt is None or self.attempt.finished:
            raise SpinesimError("no attempt in progress", hint="start an attempt first")
        across, down = _click_fractions(x, y, width, height)
        shot = self.attempt.last_shot
        if shot is None:
            raise SpinesimError("there is no image to pick on yet", hint="take a fluoroscopy shot first")
        pixels = shot.carm.detector_pixels
        row, col = (min(int(fraction * pixels), pixels - 1) for fraction in (down, across))
        if not shot.carm.field_mask()[row, col]:
            raise SpinesimError("that point is outside the X-ray image (the black border, where no X-rays reach)",
                                hint="click the skin entry point inside the round image")
        point = self.attempt.pick_entry(across * pixels - 0.5, down * pixels - 0.5)
        self._picked = point
        session = self.attempt.session
        self._set(pick_marker={"x": 100 * across, "y": 100 * down},
                  entry_text=entry_words(point, session.scenario, session.anatomy), entry_lps=lps_text(point))

    def align_beam(self) -> None:
        """Fill the needle's angle fields coaxial with the C-arm's central ray as it stands (down the
        barrel); Insert or Redirect then uses them."""
        left, cranial = beam_aligned_angles(self._live().session.carm())
        self._set(needle_left=_shown_angle(left), needle_cranial=_shown_angle(cranial))

    def nudge(self, left_deg, cranial_deg, right_deg, up_deg) -> None:
        """Turn the needle's angle fields ``right_deg`` toward the right of the image the monitor holds
        (of the C-arm as it stands before any shot) and ``up_deg`` toward its top; Insert or Redirect
        then uses them."""
        attempt = self._live()
        carm = attempt.last_shot.carm if attempt.last_shot is not None else attempt.session.carm()
        left, cranial = nudged_angles(carm, number(left_deg, "left/right angle"),
                                      number(cranial_deg, "cranial/caudal angle"), number(right_deg, "nudge"),
                                      number(up_deg, "nudge"))
        self._set(needle_left=_shown_angle(left), needle_cranial=_shown_angle(cranial))

    def drag_aim(self, x0, y0, x1, y1, width, height, left_deg, cranial_deg) -> None:
        """Re-aim by dragging on the monitor from (``x0``, ``y0``) to (``x1``, ``y1``) px of the image shown
        ``width`` x ``height`` px: the needle's angle fields turn about its entry so that its tip's image moves
        the way and as far as the drag went (:func:`simulator.case.controls.dragged_angles`); Redirect (or
        Insert, at the picked entry, before the needle is in) then uses them. Before the needle is in, the
        point that moves is :data:`DRAG_REACH_MM` along the angles in the fields."""
        attempt = self._live()
        shot = attempt.last_shot
        if shot is None:
            raise SpinesimError("there is no image to drag on yet", hint="take a fluoroscopy shot first")
        start, end = _click_fractions(x0, y0, width, height), _click_fractions(x1, y1, width, height)
        pixels = shot.carm.detector_pixels
        du, dv = ((b - a) * pixels for a, b in zip(start, end))
        needle = attempt.session.state.needle
        if needle is not None:
            entry, length_mm = needle.entry, max(needle.depth_mm, DRAG_REACH_MM)
        elif self._picked is not None:
            entry, length_mm = self._picked, DRAG_REACH_MM
        else:
            raise SpinesimError("no entry point to aim from", hint="click the skin entry point on the image first")
        direction = needle_direction(number(left_deg, "left/right angle"), number(cranial_deg, "cranial/caudal angle"))
        left, cranial = dragged_angles(shot.carm, entry, direction, length_mm, du, dv)
        self._set(needle_left=_shown_angle(left), needle_cranial=_shown_angle(cranial))

    def insert(self, left_deg, cranial_deg, bevel_deg=0.0) -> None:
        """Insert the needle at the picked entry along the two angles, its bevel rolled ``bevel_deg`` from
        facing cranial (:attr:`simulator.needle.shaft.Needle.bevel_roll_deg`)."""
        if self._picked is None:
            raise SpinesimError("no entry point picked", hint="click the skin entry point on the fluoroscopy image")
        chosen = {"needle": self._needle_number} if self._needle_number else {}
        self._act({"type": "place_needle", "entry": [round(float(v), 4) for v in self._picked],
                   "direction": _direction(left_deg, cranial_deg), "bevel_roll_deg": number(bevel_deg, "bevel"),
                   **chosen})

    def redirect(self, left_deg, cranial_deg, bevel_deg=None) -> None:
        """Pull back and re-aim along the two angles, the bevel turned to ``bevel_deg`` (None: as it was)."""
        bevel = {} if bevel_deg is None else {"bevel_roll_deg": number(bevel_deg, "bevel")}
        self._act({"type": "redirect", "direction": _direction(left_deg, cranial_deg), **bevel})

    def advance(self, mm) -> None:
        self._act({"type": "advance", "mm": number(mm, "step")})

    def withdraw(self, mm) -> None:
        self._act({"type": "withdraw", "mm": number(mm, "step")})

    def lor(self) -> None:
        self._act({"type": "check_loss_of_resistance"})

    def inject(self, ml) -> None:
        self._act({"type": "inject_contrast", "ml": number(ml, "contrast volume")})

    def read_contrast(self, reading) -> None:
        """The trainee names the last contrast injection's pattern (simulator.session.fold.READING_WORDS)."""
        self._act({"type": "read_contrast", "reading": choice(reading, READING_WORDS, "contrast pattern")})

    def medicate(self, ml, agent) -> None:
        """The injectate (not radio-opaque): ``agent`` one of simulator.session.actions.AGENTS."""
        self._act({"type": "inject_medication", "ml": number(ml, "injectate volume"), "agent": agent})

    def stimulate(self, mode, volts) -> None:
        """RF stimulation through the cannula: ``mode`` sensory (50 Hz) or motor (2 Hz) at ``volts``."""
        self._act({"type": "stimulate", "mode": mode, "volts": number(volts, "stimulation voltage")})

    def lesion(self, temperature_c, seconds) -> None:
        """An RF heat lesion at ``temperature_c`` for ``seconds``."""
        self._act({"type": "lesion", "temperature_c": number(temperature_c, "lesion temperature"),
                   "seconds": number(seconds, "lesion time")})

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

    def probe_view(self, name) -> None:
        attempt = self._live()
        if not isinstance(name, str) or name not in PROBE_VIEWS:
            raise SpinesimError(f"unknown ultrasound view {clipped(name)}", hint=f"use one of: {', '.join(PROBE_VIEWS)}")
        session = attempt.session
        self._place_probe(probe_preset(session.scenario, session.anatomy, name, session.state.probe))

    def probe_move(self, movement, sign, step_mm, step_deg) -> None:
        if not isinstance(movement, str) or movement not in PROBE_MOVES:
            raise SpinesimError(f"unknown probe movement {clipped(movement)}", hint=f"use one of: {', '.join(PROBE_MOVES)}")
        if sign not in (-1, 1):
            raise SpinesimError(f"a probe movement goes one way or the other (-1 or 1), not {clipped(sign)}")
        step = number(step_mm, "probe step (mm)") if PROBE_MOVES[movement] == "mm" else number(step_deg, "probe step (°)")
        if step <= 0:
            raise SpinesimError(f"the probe step must be positive, got {step:g}")
        self._place_probe(moved_probe(self.attempt.session.anatomy, self._probe_now(), movement, sign * step))

    def probe_settings(self, depth_mm, gain_db, frequency_mhz) -> None:
        self._place_probe(probe_with_settings(self._probe_now(), number(depth_mm, "ultrasound depth"),
                                              number(gain_db, "gain"), number(frequency_mhz, "frequency")))

    def us_pick(self, x, y, width, height) -> None:
        scan = self._live().scan
        if scan is None:
            raise SpinesimError("there is no ultrasound image to pick on", hint="choose an ultrasound view first")
        across, down = _click_fractions(x, y, width, height)
        rows, cols = scan.image.pixels.shape
        row, col = down * rows - 0.5, across * cols - 0.5
        inside = 0 <= round(row) < rows and 0 <= round(col) < cols and scan.image.field_of_view[round(row), round(col)]
        if not inside:
            raise SpinesimError("that point is outside the ultrasound image", hint="click inside the scanned sector")
        self._aim = scan.image.pixel_to_lps(row, col)
        depth = (row - scan.image.face_row) * scan.image.pixel_mm  # as the image's depth scale reads it
        self._set(us_aim_marker={"x": 100 * across, "y": 100 * down},
                  us_aim_text=f"{depth:.0f} mm deep below the probe")

    def insert_in_plane(self, end) -> None:
        probe = self._probe_now()
        if self._aim is None:
            raise SpinesimError("no aim point picked", hint="click the target on the ultrasound image")
        entry = in_plane_entry(probe, end)
        self._act({"type": "place_needle", "entry": [round(float(v), 4) for v in entry],
                   "aim": [round(float(v), 4) for v in self._aim]})
        needle = self.attempt.session.state.needle
        left, cranial = needle_angles(needle.direction)
        self._picked = None
        self._set(needle_left=_shown_angle(left), needle_cranial=_shown_angle(cranial), pick_marker=None,
                  entry_text=entry_words(needle.entry, self.attempt.session.scenario, self.attempt.session.anatomy)
                  + " (in plane)", entry_lps=lps_text(needle.entry))

    # ------------------------------------------------------------------ report, replay and review
    def _open(self, attempt: LiveAttempt) -> None:
        self.opened = attempt
        self._ultrasound_ready(attempt)
        stored = self.store.attempt(attempt.attempt_id)
        steps = len(attempt.session.actions)
        # The report comes with its slider's step in one message: sent before it, the report showed the slider where
        # the last report had left it until the replay of the last step followed, and a slider moved meanwhile
        # jumped to the end when it came (a browser sends a moved slider only once the open is answered).
        self._set(**report_view(attempt, stored), report_comments=comment_rows(self.store.comments(stored.id)),
                  replay_step=steps, **replay_view(attempt, steps))
        # The full page (final views, contrast run, 3D reveal) takes several seconds more: it follows, and
        # meanwhile the page answers (the replay slider, the tabs); a browser's requests wait for the one
        # before them to be answered, so the slider stayed still 10-30 s while it was written.
        self._later(lambda: self._write_report_page(attempt, stored.id, steps))

    def _write_report_page(self, attempt: LiveAttempt, attempt_id: int, steps: int) -> None:
        page = self._reports / f"attempt-{attempt_id}-{steps}.html"
        if not page.exists():
            # Whole or not at all: a page cut short (a crash, a full disk) would otherwise exist, and be served,
            # for good.
            with atomic_path(page) as temporary:
                temporary.write_text(attempt.report_page(), encoding="utf-8")
        if self.opened is attempt:  # the user may have opened another report since
            self._set(report_page=f"reports/{page.name}")
        release_mapped_pages(attempt.session.anatomy)  # the attempt and its report are done with the tables

    def comment(self, text, step) -> None:
        """A comment on the attempt whose report is open, at replay step ``step`` (None: the whole attempt)."""
        if self.opened is None:
            raise SpinesimError("no attempt is open", hint="open an attempt from Review first")
        if not isinstance(text, str):
            raise SpinesimError("the comment must be text")
        at = None if step is None else integer(step, "replay step", 1, 10**6)
        self.store.add_comment(self.opened.attempt_id, self.user.id, text, step=at)
        self._set(comment_text="", report_comments=comment_rows(self.store.comments(self.opened.attempt_id)))

    def open_attempt(self, attempt_id) -> None:
        self._open(stored_attempt(self.store, self.scenarios, self.patients, self.user, attempt_id))

    def preview(self, preview_id) -> None:
        self._set(**preview_view(self.scenarios[choice(preview_id, self.scenarios, "scenario")], self.patients))

    # ------------------------------------------------------------------ patient explanation
    def explain_case(self, scenario_id) -> None:
        """Link the patient explanation of the case picked, written on the first request (a few seconds:
        the page says it is being prepared): an instructor's at any time, a trainee's once they have
        finished an attempt at it (:func:`frontends.web.explanation.check_may_explain`)."""
        scenario = self.scenarios[choice(scenario_id, self.scenarios, "scenario")]
        attempting = self.attempt is not None and not self.attempt.finished
        check_may_explain(self.store, self.user, scenario, attempting)
        self._set(explain_for=scenario.id, explain_page="")
        self._set(**explanation_view(scenario, self.patients, self._reports))

    def explain_attempt(self) -> None:
        """Link the patient explanation of the attempt whose report is open (its patient and its needle),
        written on the first request; whoever may open the attempt may explain it."""
        if self.opened is None:
            raise SpinesimError("no attempt is open", hint="open an attempt's report first")
        self._set(explain_attempt_for=self.opened.attempt_id, explain_attempt_page="")
        self._set(**attempt_explanation_view(self.opened, self._reports))


def _click_fractions(x, y, width, height) -> tuple[float, float]:
    """Where a click at (``x``, ``y``) px fell on an image shown ``width`` x ``height`` px: the fractions
    across and down, each in [0, 1].

    Raises
    ------
    SpinesimError
        If a value is not a number, the image has no size, or the click lies outside it.
    """
    x, y, width, height = (number(v, "click position") for v in (x, y, width, height))
    if width <= 0 or height <= 0:
        raise SpinesimError("the image has no size on screen")
    if not (0 <= x <= width and 0 <= y <= height):
        raise SpinesimError(f"the click ({x:g}, {y:g}) lies outside the {width:g} x {height:g} image")
    return x / width, y / height


def _one_of(value, options: tuple[float, ...], what: str) -> float:
    """One of the numbers ``options`` chosen in the browser, or a SpinesimError naming the field.

    >>> _one_of("15", (23, 15, 11), "field")
    15.0
    >>> _one_of(14, (23, 15, 11), "field")
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: unknown field 14. Choose one of: 23, 15, 11.
    """
    chosen = number(value, what)
    if chosen not in options:
        raise SpinesimError(f"unknown {what} {clipped(value)}",
                            hint=f"choose one of: {', '.join(f'{o:g}' for o in options)}")
    return chosen


def _shown_angle(angle_deg: float) -> float:
    """An angle as its field shows it: to 0.01°, and 0 never as "-0" (the beam-aligned angles of AP).

    Examples
    --------
    >>> _shown_angle(-0.0), _shown_angle(-0.001), _shown_angle(12.3456)
    (0.0, 0.0, 12.35)
    """
    return round(float(angle_deg), 2) + 0.0


def _direction(left_deg, cranial_deg) -> list[float]:
    direction = needle_direction(number(left_deg, "left/right angle"), number(cranial_deg, "cranial/caudal angle"))
    return [round(float(v), 6) for v in direction]


class _NewestFrame:
    """A slot of one held frame between :meth:`Handlers.stream_live`, which makes the frames, and the
    thread that pushes them: :meth:`put` replaces a frame not taken yet (a stale frame is dropped, not
    queued), :meth:`take` waits for the next one (None once closed and empty)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._made: tuple[int, FluoroImage] | None = None
        self._closed = False
        self.shown = 0  # frames pushed to the monitor
        self.error: Exception | None = None  # what stopped the pushing thread

    def put(self, index: int, frame: FluoroImage | None) -> None:
        if frame is None:  # released while it was being made
            return
        with self._changed:
            self._made = (index, frame)
            self._changed.notify()

    def take(self) -> tuple[int, FluoroImage] | None:
        with self._changed:
            self._changed.wait_for(lambda: self._made is not None or self._closed)
            made, self._made = self._made, None
            return made

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
