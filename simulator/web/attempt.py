"""An attempt in the web app: a :class:`~simulator.session.Session` whose every action is committed to
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

import base64
import io
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import level_below
from scenarios.schema import Scenario
from simulator import carm as carms
from simulator.actions import action_record
from simulator.carm import CArm
from simulator.dose import DoseLedger, add_fluoro_shot
from simulator.fluoro import render_fluoro
from simulator.probe import Probe, on_skin, standard_view
from simulator.scans import annotate, render_scan
from simulator.session import Event, Session
from simulator.shots import render_shot
from simulator.store import Store
from simulator.trace import Tracer
from simulator.ultrasound import UltrasoundImage

# JPEG quality of monitor images: ~80 KiB per 512x512 frame, 10x faster to encode than PNG (stack-notes).
JPEG_QUALITY = 90
# Clinical C-arm angles for the presets, degrees: ipsilateral oblique 25 (clinical.md §2.2(a) 20-35
# [S17][S20]); contralateral oblique 50 (§1, ~45-50 for the VILL view [S7][S11]).
IPSILATERAL_OBLIQUE_DEG = 25.0
CONTRALATERAL_OBLIQUE_DEG = 50.0


# --------------------------------------------------------------------------- geometry of the controls
def needle_direction(toward_left_deg: float, cranial_deg: float) -> np.ndarray:
    """Unit needle direction from the trainee's two angle controls.

    0/0 points straight down into the prone patient (anterior, -y); ``toward_left_deg`` tilts the tip
    toward the patient's left (+x, negative toward the right), ``cranial_deg`` toward the head (+z).

    Examples
    --------
    >>> needle_direction(0, 0).round(6).tolist()
    [0.0, -1.0, 0.0]
    >>> [round(v, 3) for v in needle_angles(needle_direction(-12.5, 15))]
    [-12.5, 15.0]
    """
    for value, name in ((toward_left_deg, "left/right angle"), (cranial_deg, "cranial/caudal angle")):
        if not np.isfinite(value) or abs(value) >= 90.0:
            raise SpinesimError(f"needle {name} must be between -90 and 90 degrees, got {value!r}")
    a, b = np.radians(toward_left_deg), np.radians(cranial_deg)
    return np.array([np.sin(a) * np.cos(b), -np.cos(a) * np.cos(b), np.sin(b)])


def needle_angles(direction: np.ndarray) -> tuple[float, float]:
    """The (toward-left, cranial) angles in degrees of a unit needle direction (inverse of
    :func:`needle_direction`)."""
    d = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    return float(np.degrees(np.arctan2(d[0], -d[1]))), float(np.degrees(np.arcsin(np.clip(d[2], -1.0, 1.0))))


def skin_point_on_ray(tracer: Tracer, carm: CArm, u: float, v: float) -> np.ndarray:
    """Where the X-ray through pixel ``(u, v)`` leaves the body toward the detector: the skin the
    trainee points at on the image (the back in an AP view), LPS mm.

    Raises
    ------
    SpinesimError
        If that ray misses the patient.
    """
    if not (np.isfinite(u) and np.isfinite(v) and -0.5 <= u <= carm.detector_pixels - 0.5
            and -0.5 <= v <= carm.detector_pixels - 0.5):
        raise SpinesimError(f"pixel ({u}, {v}) is outside the {carm.detector_pixels}-pixel image")
    source, direction = carm.pixel_to_ray(u, v)
    beyond = float(carm.depth(np.asarray(carm.isocenter))) + 250.0
    # Coming back from beyond the patient on the detector side, the first skin met is the near skin.
    try:
        return tracer.skin_entry(source + beyond * direction, -direction, search_mm=250.0)
    except SpinesimError:
        raise SpinesimError("there is no skin under that point of the image",
                            hint="click on the patient's body in the image") from None


def view_isocenter(scenario: Scenario, anatomy: Anatomy) -> tuple[float, float, float]:
    """Where the radiographer centres the C-arm: between the bodies of the target's two levels (or on
    the body of a medial branch's level), not on the target itself, which the trainee must find."""
    if scenario.target.level is not None:
        upper, lower = scenario.target.level.split("-")
        points = [anatomy.landmark(f"{upper}.body.center"), anatomy.landmark(f"{lower}.body.center")]
    else:
        points = [anatomy.landmark(f"{scenario.target.nerve_level}.body.center")]
    return tuple(float(v) for v in np.mean(points, axis=0))


def carm_presets(scenario: Scenario, anatomy: Anatomy) -> dict[str, dict]:
    """The C-arm preset buttons: name -> ``set_carm`` fields, for the scenario's level and side."""
    isocenter = view_isocenter(scenario, anatomy)
    side = "left" if scenario.target.side == "midline" else scenario.target.side
    if scenario.target.level is not None:
        squared = scenario.target.level.split("-")[1]
    else:
        squared = scenario.target.nerve_level
    fields = {"isocenter": isocenter}
    ipsi = IPSILATERAL_OBLIQUE_DEG if side == "left" else -IPSILATERAL_OBLIQUE_DEG
    views = {
        "AP": carms.ap(**fields),
        "Square endplate": carms.square_endplate(anatomy, squared, **fields),
        "Ipsilateral oblique": carms.square_endplate(anatomy, squared, primary_deg=ipsi, **fields),
        "Lateral": carms.lateral(side=side, **fields),
        "CLO": carms.square_endplate(anatomy, squared, primary_deg=-np.sign(ipsi) * CONTRALATERAL_OBLIQUE_DEG, **fields),
    }
    return {name: {"setup": name, "primary_deg": round(c.primary_deg, 2), "secondary_deg": round(c.secondary_deg, 2),
                   "isocenter": [round(v, 3) for v in isocenter]} for name, c in views.items()}


# The ultrasound view buttons: label -> standard view (simulator.probe.standard_view).
PROBE_VIEWS = {"PSO": "paramedian-sagittal-oblique", "Articular": "articular", "Transverse": "transverse-interlaminar"}
# Probe movements: name -> unit ("mm" for the translations, "deg" for the turns), and the largest step
# one press may make [ED: a slide of 2 cm or a turn of 45 degrees is already a new scan].
PROBE_MOVES = {"slide": "mm", "sweep": "mm", "rotate": "deg", "tilt": "deg", "rock": "deg"}
MAX_PROBE_STEP = {"mm": 20.0, "deg": 45.0}
# An in-plane needle enters the skin this far beyond the end of the probe's face (mm) [ED].
IN_PLANE_ENTRY_GAP_MM = 5.0


def probe_level_and_side(scenario: Scenario) -> tuple[str, str]:
    """The interspace and side the probe presets scan for the scenario's target (the medial branch's
    vertebra and the one below it; a midline target is scanned from the left)."""
    level = scenario.target.level
    if level is None:
        upper = scenario.target.nerve_level
        level = f"{upper}-{level_below(upper)}"
    return level, "left" if scenario.target.side == "midline" else scenario.target.side


def probe_preset(scenario: Scenario, anatomy: Anatomy, name: str, current: Probe | None = None) -> Probe:
    """The probe in the standard view of preset button ``name``, keeping the settings of ``current``."""
    if name not in PROBE_VIEWS:
        raise SpinesimError(f"unknown ultrasound view {name!r}", hint=f"use one of: {', '.join(PROBE_VIEWS)}")
    level, side = probe_level_and_side(scenario)
    settings = {} if current is None else {"kind": current.kind, "depth_mm": current.depth_mm,
                                            "gain_db": current.gain_db, "frequency_mhz": current.frequency_mhz}
    return standard_view(anatomy, PROBE_VIEWS[name], level, side, **settings)


def moved_probe(anatomy: Anatomy, probe: Probe, movement: str, amount: float) -> Probe:
    """``probe`` after one press of a movement control (:data:`PROBE_MOVES`; ``amount`` in mm or
    degrees, signed); after a slide or sweep the face is seated on the skin again."""
    if movement not in PROBE_MOVES:
        raise SpinesimError(f"unknown probe movement {movement!r}", hint=f"use one of: {', '.join(PROBE_MOVES)}")
    unit = PROBE_MOVES[movement]
    if not np.isfinite(amount) or abs(amount) > MAX_PROBE_STEP[unit]:
        raise SpinesimError(f"a probe {movement} step must be at most {MAX_PROBE_STEP[unit]:g} {unit}, got {amount!r}")
    moved = probe.moved(**{f"{movement}_{unit}": amount})
    return on_skin(anatomy, moved) if unit == "mm" else moved


def in_plane_entry(probe: Probe, end: str) -> np.ndarray:
    """A skin-level point just beyond the image-``end`` ("left" or "right") of the probe's face, in the
    image plane: where an in-plane needle goes in (LPS mm)."""
    if end not in ("left", "right"):
        raise SpinesimError(f"the needle enters at the image's left or right end of the probe, not {end!r}")
    if probe.kind == "linear":
        half_face = probe.footprint_mm / 2
    else:
        half_face = probe.radius_mm * np.sin(np.radians(probe.field_of_view_deg / 2))
    return probe.position + (1.0 if end == "right" else -1.0) * (half_face + IN_PLANE_ENTRY_GAP_MM) * probe.lateral


# --------------------------------------------------------------------------- images
def jpeg_data_url(pixels: np.ndarray, marks: list[tuple[float, float, str]] = ()) -> str:
    """A ``data:image/jpeg`` URL of an 8-bit greyscale (rows, cols) or RGB (rows, cols, 3) image,
    optionally with coloured rings drawn at ``(u, v, colour)`` pixels (for an instructor's view of
    the target)."""
    image = Image.fromarray(pixels)
    if marks:
        image = image.convert("RGB")
        draw = ImageDraw.Draw(image)
        radius = pixels.shape[0] / 64
        for u, v, colour in marks:
            draw.ellipse([u - radius, v - radius, u + radius, v + radius], outline=colour, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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


def scan_caption(probe: Probe, view: str | None) -> str:
    """What the ultrasound monitor's corner says: view, probe, frequency, depth and gain."""
    return (f"{(view or 'free hand').replace('-', ' ')} · {probe.kind} {probe.frequency_mhz:g} MHz · "
            f"depth {probe.depth_mm / 10:g} cm · gain {probe.gain_db:+g} dB")


@dataclass(frozen=True)
class Shot:
    """One image the monitor showed: which action took it, how, and the picture."""

    number: int
    action_index: int  # index into session.actions
    mode: str
    carm: CArm
    data_url: str
    caption: str


def scenario_preview(scenario: Scenario, anatomy: Anatomy, tracer: Tracer | None = None) -> str:
    """An AP image (noiseless) of the scenario's patient, centred as the trainee's C-arm is, with the
    target ringed in red: the instructor's preview of a case."""
    session = Session(scenario, anatomy, tracer=tracer)
    carm = CArm(isocenter=view_isocenter(scenario, anatomy))
    image = render_fluoro(anatomy, carm, dose=None)
    u, v = carm.project(session.target.point)
    return jpeg_data_url(image.pixels, [(float(u), float(v), "#ff3b30")])


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

    @classmethod
    def start(cls, store: Store, user_id: int, scenario: Scenario, anatomy: Anatomy,
              tracer: Tracer | None = None) -> LiveAttempt:
        """A new attempt: the C-arm starts in the scenario's pose, centred on the target's level."""
        attempt_id = store.start_attempt(user_id, scenario.id, scenario.seed)
        attempt = cls(store, attempt_id, Session(scenario, anatomy, tracer=tracer), _clock_origin=time.monotonic())
        start = scenario.start.carm
        attempt.act({"type": "set_carm", "setup": start.setup, "primary_deg": start.primary_deg,
                     "secondary_deg": start.secondary_deg, "isocenter": list(view_isocenter(scenario, anatomy))})
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
        attempt = cls(store, attempt_id, Session(scenario, anatomy, tracer=tracer))
        for number, record in enumerate(store.actions(attempt_id), start=1):
            try:
                attempt._apply(record)
            except SpinesimError as error:
                raise SpinesimError(error.problem, where=f"attempt {attempt_id}, action {number}", hint=error.hint) from None
        attempt._clock_origin = time.monotonic() - attempt.session.state.t
        return attempt

    # ------------------------------------------------------------------ driving
    def now(self) -> float:
        """Seconds on the attempt's clock (never before the last action)."""
        return round(max(time.monotonic() - self._clock_origin, self.session.state.t), 3)

    @property
    def finished(self) -> bool:
        return self.session.state.finished

    def act(self, record: dict) -> list[Event]:
        """Apply one action (``t`` is set from the attempt's clock), commit it, render what it shows.

        Raises
        ------
        SpinesimError
            For an action the session refuses (nothing changes), or one the store could not keep
            (the attempt is rebuilt from the store first).
        """
        record = dict(record, t=self.now())
        events = self._apply(record)
        try:
            self.store.append_action(self.attempt_id, len(self.session.actions), self._stored_record())
        except Exception as error:
            self._rebuild()
            if isinstance(error, SpinesimError):
                raise
            raise SpinesimError(f"the action could not be saved ({type(error).__name__}: {error}); it was undone",
                                hint="check the database, then try again") from None
        if record["type"] == "finish":
            self.store.finish_attempt(self.attempt_id, self.report())
        return events

    def _stored_record(self) -> dict:
        return action_record(self.session.actions[-1])

    def _apply(self, record: dict) -> list[Event]:
        events = self.session.apply(record)
        action = self.session.actions[-1]
        if action.type == "fluoro_shot":
            self._take(len(self.session.actions) - 1)
        return events

    def _take(self, action_index: int) -> None:
        action = self.session.actions[action_index]
        state = self.session.states[action_index + 1]
        image = render_shot(self.session, state, action.mode, action.seconds)
        self.ledger = add_fluoro_shot(self.ledger, self.session.anatomy, image.carm, action.mode, action.seconds)
        # The C-arm's angles are burned into the image's corner; the caption says which shot and how.
        run = "" if action.mode == "pulse" else f" {action.beam_seconds:g} s"
        caption = f"#{state.fluoro_shots}  {action.mode.upper()}{run}"
        self.shots.append(Shot(state.fluoro_shots, action_index, action.mode, image.carm, jpeg_data_url(image.pixels),
                               caption))

    def _rebuild(self) -> None:
        rebuilt = LiveAttempt.resume(self.store, self.attempt_id, self.session.scenario, self.session.anatomy,
                                     tracer=self.session.tracer)
        self.session, self.shots, self.ledger, self._scan = rebuilt.session, rebuilt.shots, rebuilt.ledger, None
        self._clock_origin = rebuilt._clock_origin

    # ------------------------------------------------------------------ reading
    @property
    def last_shot(self) -> Shot | None:
        return self.shots[-1] if self.shots else None

    def shot_at(self, action_count: int) -> Shot | None:
        """The image the monitor held after the first ``action_count`` actions (None before any shot)."""
        held = [shot for shot in self.shots if shot.action_index < action_count]
        return held[-1] if held else None

    def events_at(self, action_count: int) -> list[Event]:
        """Events up to and including action ``action_count`` (by time)."""
        if action_count <= 0:
            return []
        until = self.session.states[action_count].t
        return [event for event in self.session.events if event.t <= until]

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
        scan = Scan(state_index, image, jpeg_data_url(annotate(image)), scan_caption(image.probe, state.probe.get("view")))
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
        """The attempt's grade and everything it rests on (:func:`scoring.report.score` of its stored
        log), as JSON."""
        from scoring.report import score

        return score(self.session.scenario, self.session.anatomy, self.store.actions(self.attempt_id),
                     tracer=self.session.tracer).model_dump(mode="json")

    def report_page(self) -> str:
        """The self-contained HTML report (final views, contrast run, 3D reveal, timeline)."""
        from scoring.attempt import replay_attempt
        from scoring.html import report_html
        from scoring.report import report_of

        replayed = replay_attempt(self.session.scenario, self.session.anatomy, self.store.actions(self.attempt_id),
                                  tracer=self.session.tracer)
        return report_html(replayed, report_of(replayed))
