"""An attempt in the web app: a :class:`~simulator.session.fold.Session` whose every action is committed to
the store before the trainee sees its result, plus the images the C-arm's monitor has shown and the
ultrasound frame of every state once a probe is placed (rendered from the state, so a replay shows
the same frames).

Order of one click: the browser's request becomes an action record with the attempt's clock time;
the session validates and applies it (a :class:`SpinesimError` leaves everything unchanged and is
shown as a message); the record is committed to the database; only then are the events and the
new image sent back. If the commit fails the session is rebuilt from the stored actions, so the
screen never shows an action the store does not hold.

The attempt's clock runs from its start; time a workstation was down (a crash) does not count:
a resumed attempt continues from its last action's time.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image, ImageDraw

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from frontends.pictures.encode import jpeg_data_url
from frontends.store import Store
from scenarios.schema import Scenario
from simulator.case.controls import carm_start, skin_point_on_ray, view_isocenter
from simulator.imaging.carm import CArm
from simulator.imaging.dose import (DoseLedger, Exposure, Technique, add_fluoro_shot, at_pulse_rate, beam_seconds,
                                    shot_exposure, technique_for)
from simulator.imaging.fluoro import FluoroImage, render_fluoro
from simulator.imaging.probe import Probe
from simulator.imaging.ultrasound import UltrasoundImage
from simulator.needle.trace import Tracer
from simulator.session.actions import action_record
from simulator.session.fold import Event, Session, SessionState, Step
from simulator.session.history import Attempt
from simulator.session.replay import replay
from simulator.session.scans import annotate, render_scan
from simulator.session.shots import held_frame_state, held_frame_time, render_held_frame, render_run, render_shot

if TYPE_CHECKING:  # grading and the report page load when first asked for (the 3D scene needs VTK)
    from scoring.report import Report


# Detector pixels across of a held run's preview of a new C-arm pose: one ray per 4 x 4 pixels of the 512
# detector, its whole display chain on a sixteenth of the pixels (50 ms of CPU with its JPEG for the 1 mm
# spine against 183 ms for the frame the trainee reads: benchmarks/bench_cine.py). Issue 18 allows a coarser
# preview while the C-arm moves if the full frame replaces it within 300 ms.
PREVIEW_PIXELS = 128

# --------------------------------------------------------------------------- images
@dataclass(frozen=True)
class Scan:
    """One ultrasound frame the monitor showed: the state it is of (index into ``session.states``), the
    image (with its pixel -> LPS mapping, for picking on it) and the picture with its caption."""

    state_index: int
    image: UltrasoundImage
    data_url: str
    caption: str

    @property
    def aspect(self) -> str:
        """The frame's CSS ``aspect-ratio`` (width / height): the monitor takes the image's shape,
        which follows the probe's depth x width."""
        rows, cols = self.image.pixels.shape
        return f"{cols} / {rows}"


# A frame with more of its face off the skin than this share carries a warning in its caption [ED].
CONTACT_WARNING_SHARE = 0.05


def scan_caption(probe: Probe, view: str | None, contact_lost: float = 0.0) -> str:
    """What the ultrasound monitor's corner says: view, probe, frequency, depth and gain, and a warning
    when part of the probe's face is off the skin (``contact_lost``, the share of the scan lines)."""
    caption = (f"{(view or 'free hand').replace('-', ' ')} · {probe.kind} {probe.frequency_mhz:g} MHz · "
               f"depth {probe.depth_mm / 10:g} cm · gain {probe.gain_db:+g} dB")
    if contact_lost > CONTACT_WARNING_SHARE:
        caption += f" · NO SKIN CONTACT over {contact_lost:.0%} of the probe: rock, tilt or press it"
    return caption


@dataclass(frozen=True)
class Shot:
    """One image the monitor showed: which action took it, how, and the picture."""

    number: int
    action_index: int  # index into session.actions
    mode: str
    carm: CArm
    data_url: str
    caption: str
    held: bool = False  # a live run screened while Live was held (its frames were streamed as it ran)


@dataclass(frozen=True)
class HeldRun:
    """A live run while the trainee holds Live (or the foot pedal): the beam on since ``start_s`` on the
    attempt's clock, a frame a pulse; recorded as a held ``fluoro_shot`` when it is released.

    Parameters
    ----------
    start_s : float
        Attempt time the beam came on, s.
    shot : int
        The run's shot number in the attempt (it is the next shot).
    technique : Technique
        The live technique at the run's pulse rate.
    frame_exposure : Exposure
        The dose of one frame, metered at the pose the run began at (the counter counts it per frame).
    """

    start_s: float
    shot: int
    technique: Technique
    frame_exposure: Exposure

    @property
    def frames_per_second(self) -> float:
        return self.technique.frames_per_second

    def frame_at(self, index: int) -> float:
        """Attempt time (s) frame ``index`` shows (:func:`simulator.session.shots.held_frame_time`)."""
        return held_frame_time(self.start_s, index, self.frames_per_second)

    def frames_due(self, now_s: float) -> int:
        """How many frames the run has made by attempt time ``now_s`` (the first at once).

        >>> run = HeldRun(10.0, 1, Technique(frames_per_second=15.0), None)
        >>> run.frames_due(10.0), run.frames_due(10.99), run.frames_due(11.0)
        (1, 15, 16)
        """
        return math.floor((now_s - self.start_s) * self.frames_per_second + 1e-9) + 1


def scenario_preview(scenario: Scenario, anatomy: Anatomy, tracer: Tracer | None = None) -> str:
    """An AP image (noiseless) of the scenario's patient, centred as the trainee's C-arm is, with the
    target ringed in red: the instructor's preview of a case."""
    session = Session(scenario, anatomy, tracer=tracer)
    carm = CArm(isocenter=view_isocenter(scenario, anatomy))
    image = render_fluoro(anatomy, carm, dose=None)
    u, v = carm.project(session.target.point)
    picture = Image.fromarray(image.pixels).convert("RGB")
    radius = image.pixels.shape[0] / 64
    ImageDraw.Draw(picture).ellipse([u - radius, v - radius, u + radius, v + radius], outline="#ff3b30", width=2)
    return jpeg_data_url(picture)


# --------------------------------------------------------------------------- the attempt
@dataclass
class LiveAttempt:
    """An attempt in progress (or finished and open for its report and replay).

    Build with :meth:`start` or :meth:`resume`; drive with :meth:`act`.
    """

    store: Store
    attempt_id: int
    session: Session
    shots: list[Shot] = field(default_factory=list)
    ledger: DoseLedger = field(default_factory=DoseLedger)
    _clock_origin: float = 0.0  # monotonic time at which the attempt clock read 0
    _scan: Scan | None = None  # the last ultrasound frame rendered
    _report: tuple[int, Report] | None = None  # (steps graded, the report)
    # The cine played last: (shot number, its frames, the seconds between them). One: the monitor replays the newest
    # run, and each run's frames (up to CINE_LOOP_FRAMES JPEGs) kept for every run piled up over an attempt.
    _cine: tuple[int, tuple[str, ...], float] | None = None
    held: HeldRun | None = None  # the live run screening now, while Live is held
    # An action's clock reading, application and commit happen under this lock, and a held run's frame picks
    # its state under it: once the clock has passed a frame's moment, no action can still land before it.
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def start(cls, store: Store, user_id: int, scenario: Scenario, anatomy: Anatomy,
              tracer: Tracer | None = None) -> LiveAttempt:
        """A new attempt: the C-arm starts in the scenario's pose, centred on the target's level."""
        attempt_id = store.start_attempt(user_id, scenario.id, scenario.seed)
        attempt = cls(store, attempt_id, Session(scenario, anatomy, tracer=tracer), _clock_origin=time.monotonic())
        attempt.act({"type": "set_carm", **carm_start(scenario, anatomy).to_json()})
        return attempt

    @classmethod
    def resume(cls, store: Store, attempt_id: int, scenario: Scenario, anatomy: Anatomy,
               tracer: Tracer | None = None) -> LiveAttempt:
        """An attempt rebuilt from its stored actions (after a crash, or to read a finished one): every
        state, event and image is reproduced; its clock continues from the last action."""
        stored = store.attempt(attempt_id)
        if stored.scenario_id != scenario.id:
            raise SpinesimError(f"attempt {attempt_id} is at scenario {stored.scenario_id!r}, not {scenario.id!r}")
        scenario = scenario.model_copy(update={"seed": stored.seed})
        session = replay(scenario, anatomy, store.actions(attempt_id), tracer=tracer, source=f"attempt {attempt_id}")
        attempt = cls(store, attempt_id, session)
        for step in session.steps:
            attempt._show(step)
        attempt._clock_origin = time.monotonic() - attempt.session.state.t
        return attempt

    # ------------------------------------------------------------------ driving
    def now(self) -> float:
        """Seconds on the attempt's clock (never before the last action)."""
        return round(max(time.monotonic() - self._clock_origin, self.session.state.t), 3)

    @property
    def finished(self) -> bool:
        return self.session.state.finished

    def act(self, record: dict, preview: Callable[[Shot], None] | None = None) -> list[Event]:
        """Apply one action (``t`` is set from the attempt's clock), commit it, render what it shows.

        Parameters
        ----------
        record : dict
            The action, as the page's request made it.
        preview : callable, optional
            ``preview(shot)`` is given the coarse image (:data:`PREVIEW_PIXELS` across, a ray per 4 x 4
            pixels) of a shot at a C-arm pose the monitor has not shown, once the action is committed and
            before its full image is made (issue 18: a pulse at a new pose showed nothing for 390 ms).

        Raises
        ------
        SpinesimError
            For an action the session refuses (nothing changes), or one the store could not keep
            (the attempt is rebuilt from the store first).
        """
        with self.lock:
            if self.held is not None and record["type"] in ("fluoro_shot", "finish"):
                raise SpinesimError("live fluoroscopy is running", hint="release Live (or the space bar) first")
            return self._commit(dict(record, t=self.now()), preview)

    def _commit(self, record: dict, preview: Callable[[Shot], None] | None = None) -> list[Event]:
        # The image is made once the store holds the action: the screen never shows one it does not hold.
        events = self.session.apply(record)
        try:
            self.store.append_action(self.attempt_id, len(self.session.actions), self._stored_record())
        except Exception as error:
            self._rebuild()
            if isinstance(error, SpinesimError):
                raise
            raise SpinesimError(f"the action could not be saved ({type(error).__name__}: {error}); it was undone",
                                hint="check the database, then try again") from None
        self._show(self.session.steps[-1], preview)
        if record["type"] == "finish":
            self.store.finish_attempt(self.attempt_id, self.report())
        return events

    # ------------------------------------------------------------------ live fluoroscopy while held
    def hold_live(self, frames_per_second: float | None = None) -> HeldRun:
        """Switch the beam on while Live is held: frames follow at the pulse rate (:meth:`held_frame`)
        until :meth:`release_live` records the run.

        Raises
        ------
        SpinesimError
            If the attempt is over, Live is already held, or the case has no fluoroscopy.
        """
        with self.lock:
            if self.finished:
                raise SpinesimError("the attempt is finished", hint="start a new attempt")
            if self.held is not None:
                raise SpinesimError("live fluoroscopy is already running")
            if not self.session.scenario.imaging.fluoroscopy:
                raise SpinesimError("fluoroscopy is not available in this case")
            fluoro = at_pulse_rate(Technique(), frames_per_second)
            self.held = HeldRun(self.now(), self.session.state.fluoro_shots + 1, technique_for("live", fluoro),
                                shot_exposure(self.session.anatomy, self.session.carm(), "live", fluoro))
            return self.held

    def held_state(self, run: HeldRun, index: int) -> SessionState | None:
        """The state frame ``index`` of the held ``run`` shows (None once the run is released), once the
        attempt's clock has passed the frame's moment (:meth:`HeldRun.frame_at`): any action made after
        that has a later time, so the frame shows what the replay's will."""
        at_s = run.frame_at(index)
        while True:
            with self.lock:
                if self.held is not run:
                    return None
                if self.now() > at_s:
                    return held_frame_state(self.session.states, at_s)
            time.sleep(0.001)

    def held_frame(self, run: HeldRun, index: int, state: SessionState | None = None, *,
                   pixels: int | None = None) -> FluoroImage | None:
        """Frame ``index`` of the held ``run`` as its cine will replay it (None once the run is released),
        of ``state`` (by default :meth:`held_state`, waited for). ``pixels``: a smaller detector, for a
        new pose's preview (:data:`PREVIEW_PIXELS`), the same frame with a ray per few pixels."""
        state = state if state is not None else self.held_state(run, index)
        if state is None:
            return None
        return render_held_frame(self.session, state, run.frame_at(index), index, run.shot, run.technique,
                                 pixels=pixels)

    def release_live(self) -> list[Event]:
        """Switch the beam off: the held run becomes a ``fluoro_shot`` (``held``, its ``seconds`` up to now,
        at least one pulse), committed like any action; its hold goes on the monitor.

        Raises
        ------
        SpinesimError
            If Live is not held.
        """
        with self.lock:
            run = self.held
            if run is None:
                raise SpinesimError("live fluoroscopy is not running", hint="hold Live (or the space bar)")
            self.held = None
            # The run's end is its start plus its seconds, so its frames fall where they were streamed.
            seconds = round(max(self.now() - run.start_s, 1.0 / run.frames_per_second), 3)
            return self._commit({"type": "fluoro_shot", "mode": "live", "seconds": seconds, "held": True,
                                 "frames_per_second": run.frames_per_second,
                                 "t": round(run.start_s + seconds, 3)})

    def _stored_record(self) -> dict:
        return action_record(self.session.actions[-1])

    def _show(self, step: Step, preview: Callable[[Shot], None] | None = None) -> None:
        """Put what ``step`` imaged on the monitor: a fluoroscopy shot's image and its dose (one shot's,
        the preview is the same exposure), first its coarse ``preview`` at a pose the monitor has not shown
        (a held run's frames were streamed as it ran)."""
        if step.action.type != "fluoro_shot":
            return
        action, state, action_index = step.action, step.after, step.number - 1
        held = bool(action.held)
        # The C-arm's angles are burned into the image's corner; the caption says which shot and how.
        run = "" if action.mode == "pulse" else f" {beam_seconds(action.seconds):g} s"
        caption = f"#{state.fluoro_shots}  {action.mode.upper()}{run}{' held' if held else ''}"
        if preview is not None and not held and not self._on_monitor(self.session.carm(state)):
            coarse = render_shot(self.session, state, action.mode, action.seconds, action.frames_per_second,
                                 pixels=PREVIEW_PIXELS, binned=True)
            preview(Shot(state.fluoro_shots, action_index, action.mode, coarse.carm, jpeg_data_url(coarse.pixels),
                         caption))
        image = render_shot(self.session, state, action.mode, action.seconds, action.frames_per_second, held=held)
        self.ledger = add_fluoro_shot(self.ledger, self.session.anatomy, image.carm, action.mode, action.seconds,
                                      at_pulse_rate(Technique(), action.frames_per_second))
        self.shots.append(Shot(state.fluoro_shots, action_index, action.mode, image.carm, jpeg_data_url(image.pixels),
                               caption, held))

    def _on_monitor(self, carm: CArm) -> bool:
        """Whether the monitor's image (the last shot's) was taken at ``carm``'s pose."""
        shown = self.last_shot
        return shown is not None and np.allclose(shown.carm.projection_matrix, carm.projection_matrix)

    def _rebuild(self) -> None:
        rebuilt = LiveAttempt.resume(self.store, self.attempt_id, self.session.scenario, self.session.anatomy,
                                     tracer=self.session.tracer)
        self.session, self.shots, self.ledger, self._scan = rebuilt.session, rebuilt.shots, rebuilt.ledger, None
        self._report = None
        self._clock_origin = rebuilt._clock_origin

    # ------------------------------------------------------------------ reading
    @property
    def last_shot(self) -> Shot | None:
        return self.shots[-1] if self.shots else None

    @property
    def last_run(self) -> Shot | None:
        """The newest live or DSA run (None before one)."""
        return next((shot for shot in reversed(self.shots) if shot.mode != "pulse"), None)

    def cine(self, shot: Shot) -> tuple[tuple[str, ...], float]:
        """A live or DSA shot's cine (:func:`simulator.session.shots.render_run`): its frames as JPEG
        data URLs, the last the image held, and the seconds between frames. Rendered when first
        played (not when an attempt is resumed), then kept until another run's is played."""
        if shot.mode == "pulse":
            raise SpinesimError("a pulse shot is one image, not a run", hint="take a live or DSA run")
        if self._cine is None or self._cine[0] != shot.number:
            step = self.session.steps[shot.action_index]
            action = step.action
            run = render_run(self.session, step.after, action.mode, action.seconds, action.frames_per_second,
                             held=bool(action.held))
            self._cine = (shot.number, tuple(jpeg_data_url(frame.pixels) for frame in run.frames),
                          1.0 / run.frames_per_second)
        return self._cine[1:]

    def shot_at(self, action_count: int) -> Shot | None:
        """The image the monitor held after the first ``action_count`` actions (None before any shot)."""
        held = [shot for shot in self.shots if shot.action_index < action_count]
        return held[-1] if held else None

    def scan_at(self, state_index: int) -> Scan | None:
        """The ultrasound frame of state ``state_index`` (0 is the start; ``len(actions)`` now), None
        while no probe is placed. The latest one is kept."""
        cached = self._scan
        if cached is not None and cached.state_index == state_index:
            return cached
        state = self.session.states[state_index]
        image = render_scan(self.session, state)
        if image is None:
            return None
        caption = scan_caption(image.probe, state.probe.view, image.contact_lost)
        scan = Scan(state_index, image, jpeg_data_url(annotate(image)), caption)
        self._scan = scan
        return scan

    @property
    def scan(self) -> Scan | None:
        """The ultrasound frame as the monitor shows it now."""
        return self.scan_at(len(self.session.actions))

    def scans(self) -> list[Scan]:
        """The frames of the attempt's named probe views (as each was first obtained) and its final frame."""
        indices = [number for number, action in enumerate(self.session.actions, start=1)
                   if action.type == "place_probe" and action.view]
        indices = sorted(set(indices + ([len(self.session.actions)] if self.session.state.probe else [])))
        return [scan for scan in (self.scan_at(i) for i in indices) if scan is not None]

    def pick_entry(self, u: float, v: float) -> np.ndarray:
        """The skin point under pixel ``(u, v)`` of the image the monitor holds."""
        if self.last_shot is None:
            raise SpinesimError("there is no image to pick on yet", hint="take a fluoroscopy shot first")
        return skin_point_on_ray(self.session.tracer, self.last_shot.carm, u, v)

    def report(self) -> dict:
        """The attempt's grade and everything it rests on (:func:`scoring.report.report_of` the live
        session's history), as JSON; graded once, when first asked."""
        return self.graded().model_dump(mode="json")

    def graded(self) -> Report:
        """The :class:`scoring.report.Report` of the session as it stands."""
        from scoring.report import report_of

        if self._report is None or self._report[0] != len(self.session.steps):
            self._report = (len(self.session.steps), report_of(Attempt.of(self.session)))
        return self._report[1]

    def report_page(self) -> str:
        """The self-contained HTML report (final views, contrast run, 3D reveal, timeline)."""
        from frontends.report import report_html

        return report_html(Attempt.of(self.session), self.graded())
