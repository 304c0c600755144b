"""Radiofrequency at the cannula's active tip: what stimulation makes the patient feel, and the lesion heat makes.

Geometry. The active tip is the last ``spec.active_tip_mm`` of the shaft (:func:`active_segment`). The
nerve a lumbar medial branch ablation treats is modelled as a line segment (the target's
``nerve_course``, :mod:`simulator.case.targets`); the ventral ramus and root are the anatomy's labelled
roots (:meth:`simulator.needle.trace.Tracer.nerve_root_distance`).

Stimulation (clinical.md §2.5 [S39][S43]). Sensory stimulation at 50 Hz is felt as concordant tingling
or pressure in the back below ~0.5 V when the active tip lies along the nerve; motor stimulation at 2 Hz
twitches multifidus (the medial branch's muscle) and must not twitch the leg: a leg (myotomal) twitch
means the ventral ramus or root is within reach of the current, where a lesion would injure it. The
threshold of a nerve rises with its distance from the active tip. No source in clinical.md gives the
curve, so :func:`threshold_v` is an engineering model [ED], anchored on the published facts: a tip on
the nerve is below the 0.5 V sensory criterion (0.25 V at contact, 0.5 V at ~1.6 mm), and the motor
threshold of the same nerve is about twice its sensory one.

Lesion (clinical.md §2.5 [S40][S42]). The heat lesion is a prolate ellipsoid around the active tip,
its long axis along the shaft (:func:`lesion_size`). Anchored on Cosman et al. 2014 [S40]: an 18 G
cannula with a 10 mm active tip at 80 °C for 90 s makes a lesion ~8 mm wide and ~11 mm long. Width
grows with the gauge (+58-65% from 22 to 16 G), with temperature (60 -> 90 °C about doubles it) and
with time toward a plateau; the lesion extends past the ends of the active tip [S40]. The scaling
between those anchors is [ED]. The ellipsoid is centred a little distal of the active tip's middle
(it bulges past the point more than past the insulation [S40]) [ED: 0.5 mm].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.needles import OUTER_DIAMETER_MM
from simulator.needle.shaft import Needle

# Stimulation (module docstring) [ED]: threshold (V) = THRESHOLD_AT_CONTACT_V + THRESHOLD_RISE_V_PER_MM2 * d^2.
THRESHOLD_AT_CONTACT_V = 0.25
THRESHOLD_RISE_V_PER_MM2 = 0.1
# Motor fibres need about twice the sensory current at the same distance [ED].
MOTOR_FACTOR = 2.0
# The SIS criteria: concordant sensation below 0.5 V at 50 Hz (clinical.md §2.5 [S39]); motor
# stimulation at 2 Hz is given at 2 V, or at least three times the sensory threshold, and must not
# twitch the leg (§2.5 [S39][S43]; practice varies, 1.5-3 V).
SENSORY_CRITERION_V = 0.5
MOTOR_TEST_V = 2.0

# Lesion anchor, Cosman et al. 2014 [S40]: 18 G, 10 mm active tip, 80 °C, 90 s -> 8 mm wide, 11 mm long.
REFERENCE_GAUGE = 18
REFERENCE_TEMPERATURE_C = 80.0
REFERENCE_SECONDS = 90.0
REFERENCE_WIDTH_MM = 8.0
# How far the lesion reaches past the two ends of the active tip together, in widths: (11 - 10) / 8 [S40].
OVERHANG_PER_WIDTH = 0.125
BODY_TEMPERATURE_C = 37.0
# Lesion growth toward its plateau: width follows 1 - exp(-t / tau) [ED]; most of it is made in the first minute.
GROWTH_TIME_CONSTANT_S = 30.0
# Width with gauge: diameter ** 0.5 gives +61% from 22 to 16 G, inside the published +58-65% [S40].
GAUGE_EXPONENT = 0.5
# The ellipsoid's centre sits this far distal of the active tip's middle [ED].
DISTAL_SHIFT_MM = 0.5
# Points along the nerve course sampled for coverage (per mm).
SAMPLES_PER_MM = 4


@dataclass(frozen=True)
class Lesion:
    """A heat lesion: a prolate ellipsoid around the active tip.

    Parameters
    ----------
    center : array (3,)
        LPS mm.
    axis : array (3,)
        Unit direction of the long axis (the shaft's).
    length_mm, width_mm : float
        Full length along the axis and full width across it, mm.
    """

    center: np.ndarray
    axis: np.ndarray
    length_mm: float
    width_mm: float

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Whether each LPS point (n, 3) lies inside the lesion."""
        offset = np.atleast_2d(np.asarray(points, dtype=np.float64)) - self.center
        along = offset @ self.axis
        across = np.linalg.norm(offset - along[:, None] * self.axis, axis=1)
        return (along / (0.5 * self.length_mm)) ** 2 + (across / (0.5 * self.width_mm)) ** 2 <= 1.0

    def to_json(self) -> dict:
        return {"center": np.round(self.center, 4).tolist(), "axis": np.round(self.axis, 6).tolist(),
                "length_mm": round(self.length_mm, 3), "width_mm": round(self.width_mm, 3)}


def lesion_size(gauge: int, active_tip_mm: float, temperature_c: float, seconds: float) -> tuple[float, float]:
    """(length, width) of the lesion, mm, for a cannula of ``gauge`` and ``active_tip_mm`` held at
    ``temperature_c`` for ``seconds`` (module docstring).

    Examples
    --------
    >>> [round(v, 1) for v in lesion_size(18, 10.0, 80.0, 90.0)]   # Cosman 2014 [S40]: ~11 x 8 mm
    [11.0, 8.0]
    >>> lesion_size(20, 10.0, 80.0, 90.0)[1] < 8.0 < lesion_size(18, 10.0, 90.0, 90.0)[1]
    True
    """
    heat = (temperature_c - BODY_TEMPERATURE_C) / (REFERENCE_TEMPERATURE_C - BODY_TEMPERATURE_C)
    growth = ((1.0 - np.exp(-seconds / GROWTH_TIME_CONSTANT_S))
              / (1.0 - np.exp(-REFERENCE_SECONDS / GROWTH_TIME_CONSTANT_S)))
    gauge_factor = (OUTER_DIAMETER_MM[gauge] / OUTER_DIAMETER_MM[REFERENCE_GAUGE]) ** GAUGE_EXPONENT
    width = REFERENCE_WIDTH_MM * heat * growth * gauge_factor
    return float(active_tip_mm + OVERHANG_PER_WIDTH * width), float(width)


def active_segment(needle: Needle) -> tuple[np.ndarray, np.ndarray]:
    """(proximal end, tip) of the needle's active tip, LPS mm (the inserted part only)."""
    length = min(needle.spec.active_tip_mm, needle.depth_mm)
    return needle.tip - length * needle.direction, needle.tip


def lesion_at(needle: Needle, temperature_c: float, seconds: float) -> Lesion:
    """The lesion ``needle`` makes at its present position."""
    length, width = lesion_size(needle.spec.gauge, needle.spec.active_tip_mm, temperature_c, seconds)
    start, tip = active_segment(needle)
    center = 0.5 * (start + tip) + DISTAL_SHIFT_MM * needle.direction
    return Lesion(center, needle.direction, length, width)


def segment_points(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Points evenly along the segment ``start``-``end`` (:data:`SAMPLES_PER_MM` per mm), ends included."""
    count = max(2, int(np.ceil(np.linalg.norm(end - start) * SAMPLES_PER_MM)) + 1)
    return start + np.linspace(0.0, 1.0, count)[:, None] * (end - start)


def segment_distance_mm(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Closest distance between two segments (each (start, end)), mm, by sampling the first against the second.

    Examples
    --------
    >>> segment_distance_mm((np.zeros(3), np.array([10.0, 0, 0])), (np.array([5.0, 3, -5]), np.array([5.0, 3, 5])))
    3.0
    """
    points = segment_points(*a)
    start, end = np.asarray(b[0], float), np.asarray(b[1], float)
    span = end - start
    t = np.clip(((points - start) @ span) / max(float(span @ span), 1e-12), 0.0, 1.0)
    return float(np.min(np.linalg.norm(points - (start + t[:, None] * span), axis=1)))


def coverage(lesions: list[Lesion], nerve: tuple[np.ndarray, np.ndarray]) -> float:
    """Fraction (0-1) of the nerve segment's length inside the union of ``lesions``."""
    points = segment_points(*nerve)
    inside = np.zeros(len(points), dtype=bool)
    for lesion in lesions:
        inside |= lesion.contains(points)
    return float(inside.mean())


def threshold_v(distance_mm: float, motor: bool = False) -> float:
    """Stimulation threshold (V) of a nerve ``distance_mm`` from the active tip [ED, module docstring].

    Examples
    --------
    >>> threshold_v(0.0), round(threshold_v(1.6), 3), threshold_v(0.0, motor=True)
    (0.25, 0.506, 0.5)
    """
    sensory = THRESHOLD_AT_CONTACT_V + THRESHOLD_RISE_V_PER_MM2 * float(distance_mm) ** 2
    return sensory * (MOTOR_FACTOR if motor else 1.0)


@dataclass(frozen=True)
class Response:
    """What the patient reports (sensory) or the physician sees (motor) for one stimulation.

    Parameters
    ----------
    mode : {"sensory", "motor"}
    volts : float
    nerve_mm, root_mm : float
        Distance from the active tip to the treated nerve and to the nearest ventral ramus or root, mm.
    back : bool
        Sensory: concordant tingling or pressure in the back; motor: multifidus twitch.
    leg : bool
        A response in the leg (the ventral ramus or root reached): radiating tingling or a myotomal twitch.
    """

    mode: str
    volts: float
    nerve_mm: float
    root_mm: float
    back: bool
    leg: bool

    @property
    def words(self) -> str:
        """What the patient says, or what is seen, in clinical words."""
        if self.mode == "sensory":
            parts = (["the patient feels concordant tingling and pressure in the back"] if self.back else []) + (
                ["tingling shooting down the leg"] if self.leg else [])
            return " and ".join(parts) if parts else "the patient feels nothing"
        parts = (["the multifidus twitches"] if self.back else []) + (
            ["the leg twitches (myotomal)"] if self.leg else [])
        return " and ".join(parts) if parts else "no twitch"

    def to_json(self) -> dict:
        return {"mode": self.mode, "volts": self.volts, "nerve_mm": round(self.nerve_mm, 4),
                "root_mm": round(min(self.root_mm, 1e6), 4), "back": self.back, "leg": self.leg}


def stimulate(mode: str, volts: float, nerve_mm: float, root_mm: float) -> Response:
    """The response to stimulating at ``volts`` with the nerve ``nerve_mm`` and the nearest root
    ``root_mm`` from the active tip (sensory 50 Hz or motor 2 Hz, module docstring)."""
    motor = mode == "motor"
    return Response(mode, float(volts), float(nerve_mm), float(root_mm), volts >= threshold_v(nerve_mm, motor),
                    bool(np.isfinite(root_mm)) and volts >= threshold_v(root_mm, motor))
