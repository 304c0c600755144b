"""A procedure attempt: the fold of its action log into a state, with events as they happen.

A :class:`Session` takes actions (:mod:`simulator.session.actions`) one at a time. Each is validated and
applied to the current :class:`SessionState` by a pure step; only when the step succeeds is the
action appended to the log on disk (flushed and fsynced) and the new state kept. A nonsense action
(NaN, a negative length, an unknown type, a needle that would start outside the body) raises a
:class:`SpinesimError` and leaves the session exactly as it was.

Replaying a log (:func:`simulator.session.replay.replay`) folds the same actions again: randomness (loss-of-resistance
false losses) is drawn from generators seeded by the scenario seed and the action's index, and time
comes only from the actions' timestamps, so every state and event is reproduced exactly.

Events
------
========================  ========  =========================================================
kind                      severity  when
========================  ========  =========================================================
``needle_placed``         info      a new skin puncture (a pass)
``redirect``              info      pulled back to the subcutaneous layer and re-aimed (a pass)
``bone_contact``          info      bone stopped the needle; it rests on the bone surface
``hub_at_skin``           warning   the needle is in to its hub and can go no deeper
``needle_removed``        info      withdrawn out of the skin
``target_reached``        info      the tip entered the target's acceptance zone
``target_left``           info      the tip left it
``joint_entered``         info      the tip entered a facet joint
``dural_puncture``        unsafe    the shaft entered the dural sac (clinical.md §3)
``csf_flashback``         unsafe    the tip is in CSF: CSF at the hub
``blood_flashback``       unsafe    the tip entered a vessel and blood shows at the hub (44.7% of the
                                    time, seeded: :mod:`simulator.needle.hub`)
``cord_contact``          unsafe    the tip entered the spinal cord or conus
``cauda_equina_contact``  unsafe    the tip entered the cauda equina
``paraesthesia``          unsafe    the shaft came within 1.5 mm of a root (§3: ~1-2 mm)
``root_penetration``      unsafe    the tip entered a root or ganglion
``vessel_puncture``       unsafe    the tip entered a vessel; ``flashback`` if it is still in it
``intradiscal``           unsafe    the tip entered a disc
``loss_of_resistance``    info      a syringe check: ``feel``, ``false_loss`` (for scoring)
``contrast``              info /    a contrast test: ``pattern`` (``simulator.needle.contrast``); unsafe
                          unsafe    for intrathecal, subdural, arterial, venous, intradiscal
``contrast_read``         info      the trainee named the last contrast's pattern: ``reading``,
                                    ``actual``, ``correct``
``medication``            info /    the injectate (``agent``): not radio-opaque, so it has no spread to
                          unsafe    render; ``pattern`` is the compartment it takes from the tip, as
                                    contrast would (deterministic, so a replay reproduces it); unsafe
                                    as for contrast
``capsule_rupture``       warning   more than the facet capsule holds was injected, contrast and
                                    injectate together (§2.3: ≤1-1.5 mL in all)
``stimulation``           info /    RF stimulation (``mode`` sensory or motor, ``volts``): what the patient
                          warning   feels or what twitches (``back``, ``leg``, ``nerve_mm``, ``root_mm``,
                                    :mod:`simulator.needle.ablation`); a warning when the leg responds
``lesion``                info /    an RF heat lesion (``temperature_c``, ``seconds``, ``coverage`` of the
                          unsafe    nerve's course so far, ``root_mm``); unsafe when it reaches within
                                    :data:`LESION_ROOT_MARGIN_MM` of a ventral ramus or root
``carm_moved``            info      new C-arm pose
``fluoro_shot``           info      an exposure (``shot`` number, cumulative ``fluoro_seconds``)
``probe_placed``          info      new ultrasound probe pose or settings
``hint_shown``            info      the scenario's next hint was revealed (``number``, 1-based)
``finished``              info      the trainee ended the attempt
========================  ========  =========================================================

What the trainee perceives. Events are the engine's truth, for scoring and the debrief; while the
attempt runs a trainee perceives only what a physician feels, sees at the hub or on the monitor
(:attr:`Event.perceived`): not whether the tip is in the target, a joint, the sac, a root, a vessel or
a disc (the images, the syringe, the hub and the patient tell that), and an injection is "contrast
injected", its pattern read from the images. ``data["verdict"]`` holds what the trainee had to judge
for themselves, for the debrief: how a contrast injection looks, where an injectate went, that a loss
of resistance was false, whether a reading of the contrast was right.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import clinical_name, in_group
from anatomy_models.volume import Volume
from scenarios.needles import NeedleSpec
from scenarios.poses import CArmPose, ProbePose
from scenarios.schema import Scenario
from simulator.case.controls import entry_words
from simulator.case.planner import PARAESTHESIA_MM
from simulator.case.targets import Target, target_for
from simulator.imaging.carm import CArm
from simulator.imaging.dose import beam_seconds
from simulator.imaging.probe import Probe
from simulator.imaging.ultrasound import GEL_MM
from simulator.needle.ablation import Lesion, active_segment, coverage, lesion_at, segment_distance_mm, stimulate
from simulator.needle.contrast import MODELS as CONTRAST_MODELS
from simulator.needle.contrast import ContrastSpread, compartment_at, contrast_volume, inject, is_artery
from simulator.needle.hub import blood_shows
from simulator.needle.resistance import check_loss_of_resistance
from simulator.needle.sacral_contrast import inject_sacral, sacral_compartment
from simulator.needle.shaft import Needle
from simulator.needle.trace import AIR, Trace, Tracer, stop_at_bone, tracer_for
from simulator.session import actions as act

Severity = Literal["info", "warning", "unsafe"]
# Contrast patterns that are complications (clinical.md §3).
UNSAFE_PATTERNS = frozenset({"intrathecal", "subdural", "arterial", "venous", "intradiscal"})
AGENT_WORDS = {"local_anaesthetic": "local anaesthetic", "steroid_nonparticulate": "non-particulate steroid",
               "steroid_particulate": "particulate steroid"}
# How a physician names each contrast pattern on the monitor (simulator.session.actions.ContrastReading).
READING_OF_PATTERN = {"epidural": "epidural", "intrathecal": "intrathecal", "subdural": "subdural", "arterial": "vascular",
                      "venous": "vascular", "intra_articular": "intra_articular", "intradiscal": "intradiscal",
                      "soft_tissue": "soft_tissue"}
READING_WORDS = {"epidural": "epidural", "intrathecal": "intrathecal (a myelogram)", "subdural": "subdural",
                 "vascular": "vascular", "intra_articular": "intra-articular", "intradiscal": "intradiscal",
                 "soft_tissue": "soft tissue"}
# Where an injectate went, by the pattern contrast there takes (simulator.needle.contrast), for the debrief.
INJECTATE_WENT = {"epidural": "into the epidural space", "intrathecal": "into the CSF (intrathecal)",
                  "subdural": "subdural", "arterial": "into an artery", "venous": "into a vein",
                  "intra_articular": "into the facet joint", "intradiscal": "into the disc",
                  "soft_tissue": "into the soft tissue"}


def _injectate_went(pattern: str, structure: str) -> str:
    """Where an injectate of ``pattern`` at ``structure`` went, in words (:data:`INJECTATE_WENT`; a joint by name)."""
    if in_group(structure, "sacroiliac_joint"):
        return f"into the {clinical_name(structure)}"
    return INJECTATE_WENT[pattern]


# A redirect pulls the tip back to this far above the deep end of the subcutaneous layer (mm) [ED].
SUBCUTANEOUS_MARGIN_MM = 1.0
# ... but never shallower than this (mm): the needle must stay in the skin to be steered [ED].
MIN_STEERING_DEPTH_MM = 3.0
SUBCUTANEOUS = ("skin", "fat")
# A lesion whose edge comes within this distance (mm) of a ventral ramus or root can injure it: the
# motor test's leg twitch is there to catch it (clinical.md §2.5 [S39][S43]) [ED: 1 mm beyond the lesion].
LESION_ROOT_MARGIN_MM = 1.0
# Events the trainee does not perceive as they happen (see the module docstring).
UNPERCEIVED = frozenset({"target_reached", "target_left", "joint_entered", "dural_puncture", "cauda_equina_contact",
                         "root_penetration", "vessel_puncture", "intradiscal"})


@dataclass(frozen=True)
class Event:
    """Something that happened, at time ``t`` (s since the attempt started)."""

    t: float
    kind: str
    severity: Severity
    message: str
    data: dict = field(default_factory=dict)

    @property
    def perceived(self) -> bool:
        """Whether the trainee perceives it as it happens (felt, at the hub, on the monitor)."""
        return self.kind not in UNPERCEIVED

    @property
    def debrief(self) -> str:
        """The message with what the trainee had to judge for themselves (an injection's pattern), for
        the replay and the report."""
        verdict = self.data.get("verdict")
        return f"{self.message}: {verdict}" if verdict else self.message

    def to_json(self) -> dict:
        return {"t": self.t, "kind": self.kind, "severity": self.severity, "message": self.message, "data": self.data}


@dataclass(frozen=True)
class Injection:
    """One injection: when, where, how much, which compartment took it, and what: ``contrast`` (the test)
    or the injectate's agent (:data:`simulator.session.actions.AGENTS`)."""

    t: float
    tip: tuple[float, float, float]
    ml: float
    pattern: str
    structure: str
    agent: str = "contrast"

    def to_json(self) -> dict:
        return {"t": self.t, "tip": list(self.tip), "ml": self.ml, "pattern": self.pattern,
                "structure": self.structure} | ({} if self.agent == "contrast" else {"agent": self.agent})


@dataclass(frozen=True)
class Reading:
    """The trainee's reading of contrast injection number ``injection`` (0-based) against the truth
    (:data:`simulator.session.actions.ContrastReading` words)."""

    t: float
    injection: int
    reading: str
    actual: str

    @property
    def correct(self) -> bool:
        return self.reading == self.actual

    def to_json(self) -> dict:
        return {"t": self.t, "injection": self.injection, "reading": self.reading, "actual": self.actual}


@dataclass(frozen=True)
class Stimulation:
    """One RF stimulation: when, its mode and volts, the needle pose it was given at (entry, direction,
    depth, so a lesion can tell whether the cannula moved since), and the response."""

    t: float
    mode: str
    volts: float
    pose: tuple[float, ...]
    back: bool
    leg: bool
    nerve_mm: float
    root_mm: float

    def to_json(self) -> dict:
        return {"t": self.t, "mode": self.mode, "volts": self.volts, "back": self.back, "leg": self.leg,
                "nerve_mm": round(self.nerve_mm, 4), "root_mm": round(min(self.root_mm, 1e6), 4)}


@dataclass(frozen=True)
class LesionMade:
    """One RF lesion: when, at what temperature and for how long, the needle pose, the lesion, and the
    closest ventral ramus or root to the active tip (mm)."""

    t: float
    temperature_c: float
    seconds: float
    pose: tuple[float, ...]
    lesion: Lesion
    root_mm: float

    def to_json(self) -> dict:
        return {"t": self.t, "temperature_c": self.temperature_c, "seconds": self.seconds,
                "root_mm": round(min(self.root_mm, 1e6), 4)} | self.lesion.to_json()


def needle_pose(needle: Needle) -> tuple[float, ...]:
    """The needle's entry, direction and depth as one tuple (equal poses: the needle has not moved)."""
    return tuple(np.round(np.concatenate([needle.entry, needle.direction, [needle.depth_mm]]), 6).tolist())


@dataclass(frozen=True)
class SessionState:
    """Everything the attempt has come to after some actions.

    Times in s, lengths in mm. ``needle`` is None before the first placement and after the needle
    is pulled out; ``carm`` is the C-arm's pose, ``probe`` the ultrasound probe's (None until one is
    placed), as the last ``set_carm`` and ``place_probe`` left them (or the scenario's start).
    """

    t: float = 0.0
    actions: int = 0
    needle: Needle | None = None
    tip_structure: str | None = None
    tip_tissue: str | None = None
    blood_at_hub: bool = False
    passes: int = 0
    redirects: int = 0
    bone_contacts: int = 0
    advanced_mm: float = 0.0
    near_root: bool = False
    in_target: bool = False
    tip_to_target_mm: float | None = None
    carm: CArmPose = CArmPose()
    probe: ProbePose | None = None
    fluoro_shots: int = 0
    fluoro_seconds: float = 0.0
    dsa_runs: int = 0
    lor_checks: int = 0
    injections: tuple[Injection, ...] = ()
    readings: tuple[Reading, ...] = ()
    medications: tuple[Injection, ...] = ()
    stimulations: tuple[Stimulation, ...] = ()
    lesions: tuple[LesionMade, ...] = ()
    hints_shown: int = 0
    finished: bool = False

    def to_json(self) -> dict:
        needle = None
        if self.needle is not None:
            needle = {"entry": np.round(self.needle.entry, 4).tolist(), "direction": np.round(self.needle.direction, 6).tolist(),
                      "depth_mm": round(self.needle.depth_mm, 4), "tip": np.round(self.needle.tip, 4).tolist(),
                      "bevel_roll_deg": self.needle.bevel_roll_deg}
        return {
            "t": self.t, "actions": self.actions, "needle": needle, "tip_structure": self.tip_structure,
            "tip_tissue": self.tip_tissue, "blood_at_hub": self.blood_at_hub, "passes": self.passes, "redirects": self.redirects,
            "bone_contacts": self.bone_contacts, "advanced_mm": round(self.advanced_mm, 4), "in_target": self.in_target,
            "tip_to_target_mm": None if self.tip_to_target_mm is None else round(self.tip_to_target_mm, 4),
            "carm": self.carm.to_json(), "probe": None if self.probe is None else self.probe.to_json(),
            "fluoro_shots": self.fluoro_shots,
            "fluoro_seconds": round(self.fluoro_seconds, 4), "dsa_runs": self.dsa_runs, "lor_checks": self.lor_checks,
            "injections": [i.to_json() for i in self.injections],
            "readings": [r.to_json() for r in self.readings],
            "contrast_ml": round(sum(i.ml for i in self.injections), 4),
            "medications": [i.to_json() for i in self.medications],
            "medication_ml": round(sum(i.ml for i in self.medications), 4),
            "stimulations": [s.to_json() for s in self.stimulations], "lesions": [m.to_json() for m in self.lesions],
            "hints_shown": self.hints_shown,
            "finished": self.finished,
        }


@dataclass(frozen=True)
class Step:
    """One applied action and what it did.

    Parameters
    ----------
    number : int
        1-based position of the action in the log.
    action : action model
        The action (:mod:`simulator.session.actions`).
    before, after : SessionState
        The state before and after it.
    events : tuple of Event
        What it caused.
    """

    number: int
    action: object
    before: SessionState
    after: SessionState
    events: tuple[Event, ...]

    @property
    def t(self) -> float:
        return self.after.t


class Session:
    """One trainee's attempt at a scenario.

    Parameters
    ----------
    scenario : Scenario
    anatomy : Anatomy
        The scenario's patient (already loaded).
    log_path : path, optional
        Where to write the action log as it happens (a new file with a header line).
    tracer : Tracer, optional
        Shared with other sessions on the same anatomy (default: the anatomy's cached one).

    Notes
    -----
    Typical use: ``Session(load_scenario("ilesi-default"), load_anatomy("default"), log_path=...)``,
    then ``session.apply({"type": "place_needle", "t": 1.0, "entry": [...], "aim": [...]})`` and so
    on; ``replay(scenario, anatomy, log_path)`` (:mod:`simulator.session.replay`) rebuilds it from its log.
    Every applied action leaves a :class:`Step` in :attr:`steps`: scoring reads the live session's
    history from them.
    """

    def __init__(self, scenario: Scenario, anatomy: Anatomy, *, log_path: str | Path | None = None,
                 tracer: Tracer | None = None) -> None:
        self.scenario = scenario
        self.anatomy = anatomy
        self.tracer = tracer or tracer_for(anatomy)
        self.target: Target = target_for(scenario, anatomy, self.tracer)
        self.spec = scenario.needle.spec()
        self.state = SessionState(carm=scenario.start.carm, probe=scenario.start.probe)
        self.states: list[SessionState] = [self.state]
        self.events: list[Event] = []
        self.actions: list = []
        self.steps: list[Step] = []
        self.spreads: list[tuple[ContrastSpread, float]] = []
        self.truncated: str | None = None
        self._writer = act.LogWriter(log_path, log_header(scenario)) if log_path else None

    # ------------------------------------------------------------------ driving
    def apply(self, action) -> list[Event]:
        """Apply one action (an action model or its JSON record); returns the events it caused.

        Raises
        ------
        SpinesimError
            For an invalid action; the session is then unchanged.
        """
        if not isinstance(action, tuple(_STEPS)):
            action = act.parse_action(action)
        state, events, spread = _Step(self, action).run()
        if self._writer is not None:
            self._writer.append(act.action_record(action))
        self.steps.append(Step(len(self.steps) + 1, action, self.state, state, tuple(events)))
        self.state = state
        self.states.append(state)
        self.events.extend(events)
        self.actions.append(action)
        if spread is not None:
            self.spreads.append((spread, action.t))
        return events

    def close(self) -> None:
        """Close the log file (the session can still be read)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def log_to(self, writer: act.LogWriter) -> None:
        """Append every further action to ``writer``'s log (a replayed session resuming its log)."""
        self.close()
        self._writer = writer

    # ------------------------------------------------------------------ reading
    @property
    def needle(self) -> Needle | None:
        return self.state.needle

    def tray_spec(self, number: int | None) -> NeedleSpec:
        """The needle number ``number`` of the scenario's tray (None: the scenario's own, :attr:`spec`).

        Raises
        ------
        SpinesimError
            If the tray has no such needle.
        """
        if number is None:
            return self.spec
        tray = self.scenario.tray
        if number >= len(tray):
            raise SpinesimError(f"this case offers {len(tray)} needle{'s' if len(tray) > 1 else ''}, not a "
                                f"number {number}", hint=f"choose a needle 0-{len(tray) - 1}")
        return tray[number].spec()

    def carm(self, state: SessionState | None = None) -> CArm:
        """The C-arm as it stands (or as it stood in ``state``, one of :attr:`states`); centred on the
        target unless a ``set_carm`` gave an isocentre."""
        return CArm.at((state or self.state).carm, self.target.point)

    def probe(self, state: SessionState | None = None, **settings) -> Probe | None:
        """The ultrasound probe as it stands (or stood in ``state``), None before one is placed;
        ``settings`` add display settings (``image_shape``)."""
        pose = (state or self.state).probe
        return None if pose is None else Probe.at(pose, **settings)

    def contrast(self, at_time_s: float | None = None) -> Volume | None:
        """Iodine concentration (mg/mL) of every injection so far at ``at_time_s`` (default: now)."""
        now = self.state.t if at_time_s is None else at_time_s
        return contrast_volume([(spread, max(now - t, 0.0)) for spread, t in self.spreads if t <= now])

    def unsafe_events(self) -> list[Event]:
        return [e for e in self.events if e.severity == "unsafe"]


def log_header(scenario: Scenario) -> dict:
    """What an attempt's log records in its first line: the scenario, its seed and, for a drawn
    patient, the patient's seed (so a replay, and its score, has exactly that patient)."""
    header = {"scenario": scenario.id, "seed": scenario.seed}
    if scenario.patient_seed is not None:
        header["patient"] = scenario.patient_seed
    return header


def scenario_of_log(scenario: Scenario, header: dict, log_path: str | Path) -> Scenario:
    """``scenario`` as the log with ``header`` was played: a log of another scenario is refused,
    and the seed and the patient the log recorded are used (no ``patient``: the case's own)."""
    logged = header.get("scenario")
    if logged is not None and logged != scenario.id:
        raise SpinesimError(f"this log is an attempt at scenario {logged!r}, not {scenario.id!r}", path=log_path,
                            where="line 1", hint=f"replay it with scenario {logged!r}")
    update = {"seed": header.get("seed", scenario.seed), "patient_seed": header.get("patient", scenario.patient_seed)}
    if update != {"seed": scenario.seed, "patient_seed": scenario.patient_seed}:
        return scenario.model_copy(update=update)
    return scenario


# --------------------------------------------------------------------------- one step of the fold
class _Step:
    """Applies one action to a session's current state without changing the session."""

    def __init__(self, session: Session, action) -> None:
        self.session = session
        self.action = action
        self.tracer = session.tracer
        self.target = session.target
        self.before = session.state
        self.events: list[Event] = []
        self.spread: ContrastSpread | None = None

    def run(self) -> tuple[SessionState, list[Event], ContrastSpread | None]:
        state = self.before
        if state.finished:
            raise SpinesimError("the attempt is finished; no more actions", hint="start a new attempt")
        if self.action.t < state.t:
            raise SpinesimError(f"time goes backwards: t = {self.action.t} s is before the previous action's {state.t} s")
        state = replace(state, t=self.action.t, actions=state.actions + 1)
        state = _STEPS[type(self.action)](self, state)
        return state, self.events, self.spread

    def emit(self, kind: str, severity: Severity, message: str, **data) -> None:
        self.events.append(Event(self.action.t, kind, severity, message, data))

    def needle_in(self, state: SessionState) -> Needle:
        if state.needle is None:
            raise SpinesimError(f"{self.action.type}: there is no needle in the patient", hint="place the needle first")
        return state.needle

    # ------------------------------------------------------------------ needle moves
    def place(self, state: SessionState) -> SessionState:
        a = self.action
        picked = np.asarray(a.entry, dtype=np.float64)
        direction = _aimed_direction(picked, a)
        entry = self.tracer.skin_entry(picked, direction)
        needle = Needle(entry, direction, 0.0, self.session.tray_spec(a.needle), bevel_roll_deg=a.bevel_roll_deg)
        if state.needle is not None:
            self.emit("needle_removed", "info", "the previous needle was taken out")
        state = replace(state, needle=needle, passes=state.passes + 1, near_root=False, in_target=False)
        self.emit("needle_placed", "info", f"needle through the {entry_words(entry, self.session.scenario, self.session.anatomy)}",
                  entry=np.round(entry, 4).tolist(), moved_mm=round(float(np.linalg.norm(entry - picked)), 4),
                  passes=state.passes)
        return self.move_to(state, needle, a.depth_mm) if a.depth_mm > 0 else self.settle(state, needle)

    def advance(self, state: SessionState) -> SessionState:
        needle = self.needle_in(state)
        moved = needle.advanced(self.action.mm)
        state = self.move_to(state, replace(moved, depth_mm=needle.depth_mm), moved.depth_mm)
        if needle.depth_mm + self.action.mm > needle.spec.length_mm and state.needle.depth_mm >= needle.spec.length_mm:
            self.emit("hub_at_skin", "warning", f"the needle is in to its hub ({needle.spec.length_mm:.0f} mm)",
                      length_mm=needle.spec.length_mm)
        return state

    def withdraw(self, state: SessionState) -> SessionState:
        needle = self.needle_in(state)
        if self.action.mm >= needle.depth_mm:
            self.emit("needle_removed", "info", "the needle is out of the skin")
            return replace(state, needle=None, tip_structure=None, tip_tissue=None, blood_at_hub=False, near_root=False,
                           in_target=False, tip_to_target_mm=None)
        return self.settle(state, needle.withdrawn(self.action.mm))

    def redirect(self, state: SessionState) -> SessionState:
        needle = self.needle_in(state)
        trace = self.tracer.trace(needle.entry, needle.direction, max(needle.depth_mm, 1e-6))
        deep_end = next((s.depth_in_mm for s in trace.segments
                         if s.tissue != AIR and s.structure not in SUBCUTANEOUS), trace.length_mm)
        pulled_back = min(needle.depth_mm, max(deep_end - SUBCUTANEOUS_MARGIN_MM, MIN_STEERING_DEPTH_MM))
        direction = _aimed_direction(needle.entry, self.action)
        turned = needle.redirected(direction, 0.0, self.action.bevel_roll_deg)
        # Whether the new direction points into the body is read 2 mm along it from the entry, however deep the
        # needle is: a needle just placed (depth 0) read the entry point itself, on the skin's surface, where the
        # voxel is air or skin by a fraction of a millimetre.
        if self.tracer.tissue_of(self.tracer.structure_at(turned.entry + 2.0 * turned.direction)) == AIR:
            raise SpinesimError("redirect: that direction points out of the body", hint="aim into the patient")
        state = replace(state, redirects=state.redirects + 1, passes=state.passes + 1, near_root=False)
        self.emit("redirect", "info", f"pulled back to {pulled_back:.1f} mm and re-aimed", passes=state.passes,
                  depth_mm=round(pulled_back, 4))
        return self.move_to(state, turned, pulled_back)

    def move_to(self, state: SessionState, needle: Needle, depth_mm: float) -> SessionState:
        """Push ``needle`` (currently at its own depth) to ``depth_mm``; bone stops it."""
        start = needle.depth_mm
        trace = self.tracer.trace(needle.entry, needle.direction, max(depth_mm, 1e-6))
        reached, bone = stop_at_bone(trace, depth_mm)
        if bone is not None:
            state = replace(state, bone_contacts=state.bone_contacts + 1)
            self.emit("bone_contact", "info", f"the needle stops on bone {bone.depth_in_mm:.0f} mm from the skin",
                      structure=bone.structure, depth_mm=round(bone.depth_in_mm, 4))
        self.report_entries(trace, start, reached, needle)
        state = replace(state, advanced_mm=state.advanced_mm + max(reached - start, 0.0))
        return self.settle(state, needle.at_depth(reached))

    def report_entries(self, trace: Trace, start: float, reached: float, needle: Needle) -> None:
        """Events for what the shaft entered between depths ``start`` and ``reached``."""
        # The tip comes near a root before it can enter one: paraesthesia first.
        if reached > start:
            samples = needle.entry + np.linspace(start, reached, max(2, int((reached - start) / 0.25) + 1))[:, None] * needle.direction
            closest = float(np.min(self.tracer.nerve_root_distance(samples)))
            if closest <= PARAESTHESIA_MM and not self.before.near_root:
                self.emit("paraesthesia", "unsafe", "the patient feels a sharp, shooting pain down the leg",
                          distance_mm=round(closest, 4))
        previous = next((s for s in reversed(trace.segments) if s.depth_in_mm <= start), trace.segments[0])
        for segment in trace.entered_between(start, reached + 1e-9):
            name, tissue, depth = segment.structure, segment.tissue, round(segment.depth_in_mm, 4)
            was = previous.structure
            if in_group(name, "dural_sac") and not in_group(was, "dural_sac") and not in_group(was, "cauda_equina"):
                self.emit("dural_puncture", "unsafe", f"the needle punctured the dura {depth:.0f} mm from the skin", structure=name,
                          depth_mm=depth)
            if in_group(name, "spinal_cord"):
                self.emit("cord_contact", "unsafe", "the needle entered the spinal cord", structure=name, depth_mm=depth)
            if in_group(name, "cauda_equina"):
                self.emit("cauda_equina_contact", "unsafe", "the needle entered the cauda equina", structure=name,
                          depth_mm=depth)
            if _is_root(name) and not _is_root(was):
                self.emit("root_penetration", "unsafe", f"the needle entered the {clinical_name(name)}", structure=name,
                          depth_mm=depth)
            if tissue == "blood" and previous.tissue != "blood":
                self.emit("vessel_puncture", "unsafe", f"the needle entered the {clinical_name(name)}", structure=name,
                          depth_mm=depth,
                          arterial=is_artery(name),
                          flashback=segment.depth_in_mm <= reached <= segment.depth_out_mm)
            if tissue in ("disc_annulus", "disc_nucleus") and previous.tissue not in ("disc_annulus", "disc_nucleus"):
                self.emit("intradiscal", "unsafe", f"the needle entered the {clinical_name(name)}", structure=name, depth_mm=depth)
            if in_group(name, "facet_joint") and not in_group(was, "facet_joint"):
                self.emit("joint_entered", "info", f"the tip entered the {clinical_name(name)}", structure=name, depth_mm=depth)
            previous = segment

    def settle(self, state: SessionState, needle: Needle) -> SessionState:
        """State with ``needle`` at its depth: tip structure, target and flashback events."""
        tip = needle.tip
        structure = self.tracer.structure_at(tip)
        tissue = self.tracer.tissue_of(structure)
        in_target = self.target.zone.contains(tip, structure, tissue)
        distance = float(np.linalg.norm(tip - self.target.point))
        near_root = bool(self.tracer.nerve_root_distance(tip[None])[0] <= PARAESTHESIA_MM)
        if in_target and not self.before.in_target:
            self.emit("target_reached", "info", f"the tip is in the {self.target.description}",
                      tip_to_target_mm=round(distance, 4))
        if self.before.in_target and not in_target:
            self.emit("target_left", "info", "the tip left the target zone", tip_to_target_mm=round(distance, 4))
        if tissue == "csf" and self.before.tip_tissue != "csf":
            self.emit("csf_flashback", "unsafe", "clear fluid (CSF) drips from the hub", structure=structure)
        blood = tissue == "blood" and (blood_shows(self.session.scenario.seed, self.before.actions)
                                       if self.before.tip_tissue != "blood" else state.blood_at_hub)
        if blood and not state.blood_at_hub:
            self.emit("blood_flashback", "unsafe", "blood appears at the hub", structure=structure,
                      arterial=is_artery(structure))
        return replace(state, needle=needle, tip_structure=structure, tip_tissue=tissue, in_target=in_target,
                       tip_to_target_mm=distance, near_root=near_root, blood_at_hub=blood)

    # ------------------------------------------------------------------ everything else
    def set_carm(self, state: SessionState) -> SessionState:
        pose = self.action.pose
        carm = CArm.at(pose, self.target.point)  # refuses poses no C-arm can take
        self.emit("carm_moved", "info", f"C-arm to {carm.label}",
                  **pose.to_json())
        return replace(state, carm=pose)

    def fluoro_shot(self, state: SessionState) -> SessionState:
        imaging = self.session.scenario.imaging
        if not imaging.fluoroscopy:
            raise SpinesimError("fluoroscopy is not available in this scenario")
        if self.action.mode == "dsa" and not imaging.dsa:
            raise SpinesimError("DSA is not available in this scenario", hint="use mode 'live' or 'pulse'")
        state = replace(state, fluoro_shots=state.fluoro_shots + 1,
                        fluoro_seconds=state.fluoro_seconds + beam_seconds(self.action.seconds),
                        dsa_runs=state.dsa_runs + (self.action.mode == "dsa"))
        self.emit("fluoro_shot", "info", f"{self.action.mode} exposure", shot=state.fluoro_shots, mode=self.action.mode,
                  fluoro_seconds=round(state.fluoro_seconds, 4), carm=state.carm.to_json())
        return state

    def place_probe(self, state: SessionState) -> SessionState:
        if not self.session.scenario.imaging.ultrasound:
            raise SpinesimError("ultrasound is not available in this scenario")
        pose = self.action.pose
        probe = Probe.at(pose)  # refuses settings no probe has
        skin = self.tracer.skin_entry(probe.position, probe.axial)
        if np.linalg.norm(skin - probe.position) > GEL_MM:  # more than the gel fills: not on the skin
            raise SpinesimError(f"place_probe: the probe face is {np.linalg.norm(skin - probe.position):.0f} mm from the "
                                "skin along its beam", hint="put the probe on the patient's skin")
        self.emit("probe_placed", "info", f"ultrasound probe placed ({pose.view or 'free hand'})", probe=pose.to_json())
        return replace(state, probe=pose)

    def show_hint(self, state: SessionState) -> SessionState:
        hints = self.session.scenario.hints
        if state.hints_shown >= len(hints):
            raise SpinesimError("there is no further hint" if hints else "this scenario has no hints")
        number = state.hints_shown + 1
        self.emit("hint_shown", "info", hints[number - 1], number=number)
        return replace(state, hints_shown=number)

    def inject(self, state: SessionState) -> SessionState:
        needle = self.needle_in(state)
        seed = [self.session.scenario.seed, self.before.actions]
        # The sacrum's own patterns (sacroiliac arthrogram, caudal epidurogram, sacral venous plexus) first.
        spread = (inject_sacral(self.tracer, needle.tip, self.action.ml, seed=seed)
                  or inject(self.tracer, needle.tip, self.action.ml, seed=seed))
        self.spread = spread
        injection = Injection(self.action.t, tuple(np.round(needle.tip, 4).tolist()), self.action.ml, spread.pattern,
                              spread.structure)
        state = replace(state, injections=state.injections + (injection,))
        severity: Severity = "unsafe" if spread.pattern in UNSAFE_PATTERNS else "info"
        self.emit("contrast", severity, f"{self.action.ml:g} mL of contrast injected", pattern=spread.pattern,
                  ml=self.action.ml, structure=spread.structure, verdict=spread.appearance)
        self.check_capsule(state, injection)
        return state

    def inject_medication(self, state: SessionState) -> SessionState:
        a = self.action
        needle = self.needle_in(state)
        compartment = sacral_compartment(self.tracer, needle.tip) or compartment_at(self.tracer, needle.tip)
        medication = Injection(a.t, tuple(np.round(needle.tip, 4).tolist()), a.ml, compartment.pattern,
                               compartment.structure, a.agent)
        state = replace(state, medications=state.medications + (medication,))
        severity: Severity = "unsafe" if compartment.pattern in UNSAFE_PATTERNS else "info"
        self.emit("medication", severity, f"{a.ml:g} mL of {AGENT_WORDS[a.agent]} injected", pattern=compartment.pattern,
                  ml=a.ml, agent=a.agent, structure=compartment.structure,
                  verdict=f"it went {_injectate_went(compartment.pattern, compartment.structure)}")
        self.check_capsule(state, medication)
        return state

    def check_capsule(self, state: SessionState, injection: Injection) -> None:
        """A capsule_rupture event when ``injection`` takes a facet joint past what its capsule holds
        (contrast and injectate together, clinical.md §2.3); a sacroiliac joint's extra-articular spread is
        common and no fault (:mod:`simulator.needle.sacral_contrast`)."""
        if injection.pattern != "intra_articular" or not in_group(injection.structure, "facet_joint"):
            return
        joint_ml = sum(i.ml for i in state.injections + state.medications
                       if i.pattern == "intra_articular" and i.structure == injection.structure)
        capsule = CONTRAST_MODELS["intra_articular"].capsule_ml
        if joint_ml > capsule >= joint_ml - injection.ml:
            self.emit("capsule_rupture", "warning", f"{joint_ml:g} mL exceeds what the joint capsule holds ({capsule:g} mL)",
                      structure=injection.structure, ml=joint_ml)

    def check_resistance(self, state: SessionState) -> SessionState:
        self.needle_in(state)
        result = check_loss_of_resistance(state.tip_structure or AIR, state.tip_tissue or AIR,
                                          self.session.scenario.seed, self.before.actions)
        words = {"high": "firm resistance", "moderate": "moderate resistance", "low_moderate": "slight resistance",
                 "lost": "loss of resistance"}
        false = f"a false loss: the tip was in the {clinical_name(state.tip_structure)}, not the epidural space"
        self.emit("loss_of_resistance", "info", words[result.feel], feel=result.feel, false_loss=result.false_loss,
                  structure=state.tip_structure, **({"verdict": false} if result.false_loss else {}))
        return replace(state, lor_checks=state.lor_checks + 1)

    def read_contrast(self, state: SessionState) -> SessionState:
        if not state.injections:
            raise SpinesimError("read_contrast: no contrast has been injected yet", hint="inject contrast, image it, "
                                "then name its pattern")
        last = state.injections[-1]
        actual = READING_OF_PATTERN[last.pattern]
        reading = Reading(self.action.t, len(state.injections) - 1, self.action.reading, actual)
        right = "right" if reading.correct else f"it was {READING_WORDS[actual]}"
        self.emit("contrast_read", "info", f"you read the contrast as {READING_WORDS[self.action.reading]}",
                  reading=self.action.reading, actual=actual, correct=reading.correct, injection=reading.injection + 1,
                  verdict=right)
        return replace(state, readings=state.readings + (reading,))

    def rf_cannula(self, state: SessionState) -> Needle:
        """The needle, which must be an RF cannula in the patient with the scenario's nerve to treat."""
        needle = self.needle_in(state)
        if needle.spec.kind != "rf_cannula" or self.target.nerve_course is None:
            raise SpinesimError(f"{self.action.type}: needs an RF cannula at a nerve to ablate",
                                hint="stimulation and lesions belong to a radiofrequency ablation scenario")
        return needle

    def distances(self, needle: Needle) -> tuple[float, float]:
        """(nerve, root) distances from the active tip, mm: to the treated nerve's course and to the
        nearest ventral ramus or root."""
        segment = active_segment(needle)
        samples = segment[0] + np.linspace(0.0, 1.0, 9)[:, None] * (segment[1] - segment[0])
        root_mm = float(np.min(self.tracer.nerve_root_distance(samples)))
        return segment_distance_mm(segment, self.target.nerve_course), root_mm

    def stimulate(self, state: SessionState) -> SessionState:
        a = self.action
        needle = self.rf_cannula(state)
        nerve_mm, root_mm = self.distances(needle)
        response = stimulate(a.mode, a.volts, nerve_mm, root_mm)
        hz = "50 Hz" if a.mode == "sensory" else "2 Hz"
        self.emit("stimulation", "warning" if response.leg else "info",
                  f"{a.mode} stimulation at {a.volts:g} V ({hz}): {response.words}", **response.to_json())
        record = Stimulation(a.t, a.mode, a.volts, needle_pose(needle), response.back, response.leg, nerve_mm, root_mm)
        return replace(state, stimulations=state.stimulations + (record,))

    def lesion(self, state: SessionState) -> SessionState:
        a = self.action
        needle = self.rf_cannula(state)
        lesion = lesion_at(needle, a.temperature_c, a.seconds)
        _, root_mm = self.distances(needle)
        made = LesionMade(a.t, a.temperature_c, a.seconds, needle_pose(needle), lesion, root_mm)
        lesions = state.lesions + (made,)
        covered = coverage([m.lesion for m in lesions], self.target.nerve_course)
        near_root = root_mm < 0.5 * lesion.width_mm + LESION_ROOT_MARGIN_MM
        self.emit("lesion", "unsafe" if near_root else "info",
                  f"lesion at {a.temperature_c:g} °C for {a.seconds:g} s "
                  f"({lesion.width_mm:.0f} x {lesion.length_mm:.0f} mm)"
                  + (": the patient cries out with pain shooting down the leg" if near_root else ""),
                  temperature_c=a.temperature_c, seconds=a.seconds, coverage=round(covered, 4),
                  root_mm=round(min(root_mm, 1e6), 4), near_root=near_root, **lesion.to_json())
        return replace(state, lesions=lesions)

    def finish(self, state: SessionState) -> SessionState:
        self.emit("finished", "info", "attempt finished", in_target=state.in_target,
                  tip_to_target_mm=None if state.tip_to_target_mm is None else round(state.tip_to_target_mm, 4))
        return replace(state, finished=True)


def _is_root(structure: str) -> bool:
    return in_group(structure, "nerve_root") or in_group(structure, "dorsal_root_ganglion")


def _aimed_direction(origin: np.ndarray, action) -> np.ndarray:
    """The unit direction of an aimed action: its ``direction``, or from ``origin`` to its ``aim``."""
    if action.direction is not None:
        direction = np.asarray(action.direction, dtype=np.float64)
    else:
        direction = np.asarray(action.aim, dtype=np.float64) - origin
        if np.linalg.norm(direction) < 1e-6:
            raise SpinesimError(f"{action.type}: the aim point is the entry point; aim somewhere else")
    return direction / np.linalg.norm(direction)


_STEPS = {
    act.PlaceNeedle: _Step.place, act.Advance: _Step.advance, act.Withdraw: _Step.withdraw,
    act.Redirect: _Step.redirect, act.SetCarm: _Step.set_carm, act.FluoroShot: _Step.fluoro_shot,
    act.PlaceProbe: _Step.place_probe, act.InjectContrast: _Step.inject, act.ReadContrast: _Step.read_contrast,
    act.InjectMedication: _Step.inject_medication, act.CheckLossOfResistance: _Step.check_resistance,
    act.Stimulate: _Step.stimulate, act.Lesion: _Step.lesion, act.ShowHint: _Step.show_hint, act.Finish: _Step.finish,
}
