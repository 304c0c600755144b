"""The ultrasound probe: what it is (linear or curvilinear array, frequency, field of view), where it
sits on the skin, and the machine settings (depth, gain, time-gain compensation, dynamic range).

Probe frame, stated once: ``position`` is the centre of the probe face on the skin (LPS mm);
``axial`` is the beam direction at the face centre, pointing into the patient; ``lateral`` runs
along the array from the image's left edge to its right edge; ``elevation = lateral x axial`` is
the out-of-plane direction (the slice thickness). The orientation marker on the probe is at the
image-left end (the screen convention: marker side on the left of the display).

Clinical probe movements (``Probe.moved``): *slide* along the array (in-plane), *sweep* across it
(out of plane), *rotate* about the beam axis, *tilt* (fan the beam out of plane, about the array
axis) and *rock* (heel-toe, in-plane angulation about the elevation axis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from anatomy_models.errors import SpinesimError
from anatomy_models.structures import check_side
from anatomy_models.tissues import BONE_TISSUES, SCANNER_SPEED_OF_SOUND_M_PER_S
from scenarios.poses import ProbeKind, ProbePose

View = Literal["transverse-spinous", "sagittal-transverse-process", "paramedian-sagittal", "articular",
               "paramedian-sagittal-oblique", "transverse-interlaminar", "sacroiliac-joint",
               "sacral-hiatus-transverse", "sacral-hiatus-sagittal"]
# The lumbar scan a sonographer takes, outside in (Karmakar's sequence, as taught) [ED], then the
# sacral views: the lower sacroiliac joint and the sacral hiatus across and along.
LUMBAR_VIEWS: tuple[str, ...] = ("transverse-spinous", "sagittal-transverse-process", "paramedian-sagittal",
                                 "articular", "paramedian-sagittal-oblique", "transverse-interlaminar")
SACRAL_VIEWS: tuple[str, ...] = ("sacroiliac-joint", "sacral-hiatus-transverse", "sacral-hiatus-sagittal")
VIEWS: tuple[str, ...] = LUMBAR_VIEWS + SACRAL_VIEWS
# The probe a view is done with unless another is asked for: the convex array for the deep lumbar and
# sacroiliac views, the linear array for the hiatus, 4-6 mm under the skin over a sharply curved sacrum
# and coccyx (a 60 mm convex face does not lie on it) [ED].
DEFAULT_KIND: dict[str, ProbeKind] = {view: "curvilinear" for view in VIEWS} | {
    "sacral-hiatus-transverse": "linear", "sacral-hiatus-sagittal": "linear"}
# Views across the back (marker on the patient's right), which a hand never holds square to the spine.
TRANSVERSE_VIEWS = ("transverse-spinous", "transverse-interlaminar", "sacroiliac-joint", "sacral-hiatus-transverse")

# Preset arrays [ED]: a high-frequency linear array (5-12 MHz, 38 mm footprint) for superficial
# blocks, and a low-frequency curvilinear array (2-5 MHz, 60 mm radius, 60 degree sector) for the
# lumbar neuraxial views, as regional-anaesthesia practice uses them.
PRESETS: dict[str, dict[str, float]] = {
    "linear": {"frequency_mhz": 10.0, "depth_mm": 40.0, "footprint_mm": 38.0, "elevation_focus_mm": 20.0,
               "elevation_f_number": 4.0},
    "curvilinear": {"frequency_mhz": 3.5, "depth_mm": 80.0, "radius_mm": 60.0, "field_of_view_deg": 60.0,
                    "elevation_focus_mm": 60.0, "elevation_f_number": 5.0},
}
# Frequencies a probe of each kind can be driven at (MHz) [ED, widened from the issue's 5-12 / 2-5].
FREQUENCY_RANGE_MHZ: dict[str, tuple[float, float]] = {"linear": (4.0, 15.0), "curvilinear": (1.5, 7.0)}


def _unit(value: object, name: str) -> np.ndarray:
    vector = np.asarray(value, dtype=np.float64)
    norm = float(np.linalg.norm(vector)) if vector.shape == (3,) else 0.0
    if not np.isfinite(norm) or norm < 1e-9:
        raise SpinesimError(f"probe {name} must be a non-zero finite LPS 3-vector, got {value!r}")
    return vector / norm


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation matrix about unit ``axis`` by ``degrees`` (right-hand rule), Rodrigues' formula."""
    angle = np.radians(degrees)
    x, y, z = axis
    cross = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


@dataclass(frozen=True, eq=False)
class Probe:
    """An ultrasound probe placed on the patient, with its machine settings.

    Parameters
    ----------
    kind : {"linear", "curvilinear"}
        Array geometry. Settings left as ``None`` take the kind's preset (:data:`PRESETS`).
    position : array (3,)
        Centre of the probe face, LPS mm (on the skin; see :func:`on_skin`).
    axial : array (3,)
        Beam direction at the face centre, into the patient (LPS unit vector; normalised here).
    lateral : array (3,)
        Along the array, image left -> right (LPS vector; made orthogonal to ``axial`` here).
    frequency_mhz : float
        Centre frequency, MHz (linear 4-15, curvilinear 1.5-7).
    depth_mm : float
        Imaging depth below the face, mm.
    footprint_mm : float
        Linear array: active width of the array, mm.
    radius_mm, field_of_view_deg : float
        Curvilinear array: radius of the convex face, mm, and the sector angle, degrees.
    focus_mm : float, optional
        Transmit focal depth, mm; ``None`` puts it at 60 % of the depth.
    gain_db : float
        Overall receive gain, dB.
    dynamic_range_db : float
        Range of echo levels mapped from black to white by the log compression, dB.
    tgc_db : tuple of float
        Time-gain-compensation sliders: extra gain in dB at evenly spaced depths from the face to
        ``depth_mm`` (like a scanner's slider bank), linearly interpolated; empty for none.
    tgc_db_per_cm : float, optional
        Depth-proportional gain, dB per cm of depth; ``None`` compensates the round-trip
        attenuation of average soft tissue at this frequency (see ``ultrasound.AUTO_TGC_DB_PER_CM_MHZ``).
    elevation_focus_mm, elevation_f_number : float
        Fixed elevation lens: focal depth (mm) and f-number; set the slice thickness.
    image_shape : (int, int)
        The display frame (rows, columns), pixels: the field of view is scaled to fill it and the
        image is cut to the field of view, so its aspect follows depth x width (at most this size).
        The beam is sampled with ``rows`` samples per line and ``columns`` lines.

    Examples
    --------
    >>> p = Probe("curvilinear", position=[0, 80, 0], axial=[0, -1, 0], lateral=[0, 0, -1])
    >>> p.frequency_mhz, p.depth_mm, (p.elevation + 0.0).tolist()    # elevation = lateral x axial
    (3.5, 80.0, [-1.0, 0.0, 0.0])
    >>> q = p.moved(slide_mm=10)      # 10 mm along the array: toward the image's right (caudal here)
    >>> q.position.tolist()
    [0.0, 80.0, -10.0]
    """

    kind: ProbeKind
    position: np.ndarray
    axial: np.ndarray
    lateral: np.ndarray
    frequency_mhz: float | None = None
    depth_mm: float | None = None
    footprint_mm: float | None = None
    radius_mm: float | None = None
    field_of_view_deg: float | None = None
    focus_mm: float | None = None
    gain_db: float = 0.0
    dynamic_range_db: float = 55.0
    tgc_db: tuple[float, ...] = ()
    tgc_db_per_cm: float | None = None
    elevation_focus_mm: float | None = None
    elevation_f_number: float | None = None
    image_shape: tuple[int, int] = (256, 256)
    _key: tuple = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in PRESETS:
            raise SpinesimError(f"unknown probe kind {self.kind!r}", hint="use 'linear' or 'curvilinear'")
        preset = PRESETS[self.kind]
        for name, value in preset.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        position = np.asarray(self.position, dtype=np.float64)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise SpinesimError(f"probe position must be three finite LPS numbers (mm), got {self.position!r}")
        axial = _unit(self.axial, "axial direction")
        lateral = _unit(self.lateral, "lateral direction")
        lateral = lateral - (lateral @ axial) * axial
        if np.linalg.norm(lateral) < 0.1:
            raise SpinesimError("probe lateral direction is parallel to its axial direction",
                                hint="give a lateral (array) direction across the beam")
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "axial", axial)
        object.__setattr__(self, "lateral", lateral / np.linalg.norm(lateral))
        low, high = FREQUENCY_RANGE_MHZ[self.kind]
        self._check("frequency_mhz", self.frequency_mhz, low, high, f"a {self.kind} probe runs at {low:g}-{high:g} MHz")
        self._check("depth_mm", self.depth_mm, 10.0, 300.0, "imaging depth is 10-300 mm")
        if self.kind == "linear":
            self._check("footprint_mm", self.footprint_mm, 10.0, 100.0, "a linear array is 10-100 mm wide")
        else:
            self._check("radius_mm", self.radius_mm, 5.0, 150.0, "a convex array's radius is 5-150 mm")
            self._check("field_of_view_deg", self.field_of_view_deg, 10.0, 150.0, "a sector spans 10-150 degrees")
        if self.focus_mm is None:
            object.__setattr__(self, "focus_mm", 0.6 * self.depth_mm)
        self._check("focus_mm", self.focus_mm, 1.0, self.depth_mm, "the focus lies between the face and the imaging depth")
        self._check("dynamic_range_db", self.dynamic_range_db, 10.0, 120.0, "dynamic range is 10-120 dB")
        self._check("gain_db", self.gain_db, -60.0, 60.0, "gain is -60..60 dB")
        self._check("elevation_focus_mm", self.elevation_focus_mm, 1.0, 300.0, "the elevation focus is 1-300 mm deep")
        self._check("elevation_f_number", self.elevation_f_number, 0.5, 20.0, "an f-number is 0.5-20")
        tgc = tuple(float(v) for v in self.tgc_db)
        if not all(np.isfinite(v) and -60.0 <= v <= 60.0 for v in tgc):
            raise SpinesimError(f"TGC sliders must be gains of -60..60 dB, got {self.tgc_db!r}", where="field 'tgc_db'")
        object.__setattr__(self, "tgc_db", tgc)
        if self.tgc_db_per_cm is not None:
            self._check("tgc_db_per_cm", self.tgc_db_per_cm, 0.0, 30.0, "depth gain is 0-30 dB/cm")
        shape = tuple(int(n) for n in self.image_shape)
        if len(shape) != 2 or not all(16 <= n <= 4096 for n in shape):
            raise SpinesimError(f"image shape must be (rows, columns) of 16-4096 pixels, got {self.image_shape!r}",
                                where="field 'image_shape'")
        object.__setattr__(self, "image_shape", shape)
        numbers = [getattr(self, name) for name in ("frequency_mhz", "depth_mm", "footprint_mm", "radius_mm",
                                                      "field_of_view_deg", "focus_mm", "elevation_focus_mm",
                                                      "elevation_f_number")]
        object.__setattr__(self, "_key", (self.kind, *[None if v is None else round(float(v), 9) for v in numbers], shape))

    @classmethod
    def at(cls, pose: ProbePose, **settings) -> Probe:
        """The probe in ``pose`` (a ``place_probe`` action's, a session state's); the settings the pose
        leaves out take the kind's preset (curvilinear unless named), ``settings`` add others
        (``image_shape``).

        Raises
        ------
        SpinesimError
            If the pose or a setting is impossible (a zero vector, a frequency the probe cannot run at).
        """
        given = {name: getattr(pose, name) for name in ("depth_mm", "gain_db", "frequency_mhz")
                 if getattr(pose, name) is not None}
        return cls(pose.kind or "curvilinear", position=pose.position, axial=pose.direction, lateral=pose.lateral,
                   **given, **settings)

    def pose(self, view: str | None = None) -> ProbePose:
        """This probe's pose for a ``place_probe`` action: position (rounded to 0.1 um) and axes (to
        1e-6), the settings a trainee turns (kind, depth, gain, frequency) and an optional ``view`` name.

        Examples
        --------
        >>> probe = Probe("linear", position=[0, 80, 0], axial=[0, -1, 0], lateral=[1, 0, 0])
        >>> pose = probe.pose("articular")
        >>> pose.kind, pose.depth_mm, pose.frequency_mhz, pose.direction, pose.view
        ('linear', 40.0, 10.0, (0.0, -1.0, 0.0), 'articular')
        >>> Probe.at(pose).geometry_key == probe.geometry_key
        True
        """
        return ProbePose(position=tuple(round(float(v), 4) for v in self.position),
                         direction=tuple(round(float(v), 6) + 0.0 for v in self.axial),
                         lateral=tuple(round(float(v), 6) + 0.0 for v in self.lateral), kind=self.kind,
                         depth_mm=round(float(self.depth_mm), 3), gain_db=round(float(self.gain_db), 3),
                         frequency_mhz=round(float(self.frequency_mhz), 3), view=view or None)

    @staticmethod
    def _check(name: str, value: float | None, low: float, high: float, rule: str) -> None:
        if value is None or not np.isfinite(value) or not low <= value <= high:
            raise SpinesimError(f"probe {name} = {value!r} is out of range ({rule})", where=f"field {name!r}")

    # ------------------------------------------------------------------ frame
    @property
    def elevation(self) -> np.ndarray:
        """Out-of-plane unit vector, ``lateral x axial`` (LPS)."""
        return np.cross(self.lateral, self.axial)

    @property
    def scan_key(self) -> tuple:
        """Hashable summary of the settings that shape the scan and its point-spread function (no pose)."""
        return self._key

    @property
    def geometry_key(self) -> tuple:
        """Hashable summary of everything that decides which tissue the beams see and how sharply."""
        return (*self._key, *np.round(np.concatenate([self.position, self.axial, self.lateral]), 9))

    @property
    def wavelength_mm(self) -> float:
        """Wavelength in soft tissue at the centre frequency, mm (scanner speed of sound)."""
        return SCANNER_SPEED_OF_SOUND_M_PER_S / (self.frequency_mhz * 1e3)

    # ------------------------------------------------------------------ movement
    def with_settings(self, **settings) -> Probe:
        """The same probe with other settings (any constructor field)."""
        return replace(self, **settings)

    def moved(self, *, slide_mm: float = 0.0, sweep_mm: float = 0.0, press_mm: float = 0.0,
              rotate_deg: float = 0.0, tilt_deg: float = 0.0, rock_deg: float = 0.0) -> Probe:
        """The probe after the clinical movements, applied in the probe's own frame.

        Parameters
        ----------
        slide_mm : float
            Translation along the array (toward the image's right), mm.
        sweep_mm : float
            Translation across the array (along ``elevation``), mm.
        press_mm : float
            Translation along the beam (into the patient), mm.
        rotate_deg : float
            Turn about the beam axis (right-hand rule about ``axial``), degrees.
        tilt_deg : float
            Fan the beam out of plane toward ``+elevation`` (about the array axis), degrees.
        rock_deg : float
            Heel-toe: swing the beam in plane toward ``+lateral`` (about the elevation axis), degrees.
        """
        rotation = (_rotation(self.axial, rotate_deg)
                    @ _rotation(self.lateral, tilt_deg)
                    @ _rotation(self.elevation, -rock_deg))
        position = self.position + slide_mm * self.lateral + sweep_mm * self.elevation + press_mm * self.axial
        return replace(self, position=position, axial=rotation @ self.axial, lateral=rotation @ self.lateral)


# --------------------------------------------------------------------------- placement on the skin
def skin_point(anatomy, aim: np.ndarray, direction: np.ndarray, *, step_mm: float = 0.25) -> np.ndarray:
    """Where the line through ``aim`` along ``direction`` first meets the body (LPS mm).

    Marches along ``direction`` from outside the anatomy's grid, through ``aim`` and on, and returns
    the first point whose tissue class is not air (the skin, or whatever the body's outer layer is).
    ``aim`` may lie inside the body (a target) or outside it (a probe hovering over the skin).
    """
    aim = np.asarray(aim, dtype=np.float64)
    direction = _unit(direction, "direction")
    classes, names = anatomy.tissue_map()
    air = names.index("air") if "air" in names else -1
    lower, upper = anatomy.ct.bounds()
    start_distance = float(np.linalg.norm(upper - lower)) + 1.0
    distances = np.arange(-start_distance, start_distance, step_mm)
    points = aim[None, :] + distances[:, None] * direction[None, :]
    ijk = np.rint(anatomy.ct.world_to_voxel(points)).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(classes.shape)), axis=1)
    tissue = np.full(len(points), air, dtype=np.int64)
    tissue[inside] = classes[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]]
    body = np.flatnonzero(inside & (tissue != air))
    if body.size == 0:
        raise SpinesimError(f"the line toward {np.round(aim, 1).tolist()} along {np.round(direction, 3).tolist()} "
                            "does not meet the body", hint="aim the probe at a point inside the patient")
    return points[body[0]]


def on_skin(anatomy, probe: Probe) -> Probe:
    """``probe`` moved along its beam axis so that the face centre touches the skin."""
    return replace(probe, position=skin_point(anatomy, probe.position, probe.axial))


def aimed_probe(anatomy, kind: ProbeKind, aim: np.ndarray, axial: np.ndarray, lateral: np.ndarray, **settings) -> Probe:
    """A probe on the skin whose central beam passes through ``aim`` (LPS mm) along ``axial``."""
    axial = _unit(axial, "axial direction")
    return Probe(kind, position=skin_point(anatomy, aim, axial), axial=axial, lateral=lateral, **settings)


# Medial tilt of the paramedian sagittal oblique view: the beam is angled 10-15 degrees toward the
# midline to pass through the interlaminar window (Karmakar's technique, as taught) [ED].
PSO_MEDIAL_TILT_DEG = 15.0
# Where the sagittal views sit across the back [ED]: the lamina view halfway from the midline to the
# facet joint; the trident view over the transverse processes, this far from their tips toward their
# roots (the tips are thin and drop out of a 1-2 mm slice).
LAMINA_FROM_MIDLINE = 0.5
TRANSVERSE_PROCESS_FROM_TIP = 0.4
# A linear probe's default depth in the standard views reaches this far beyond the structure aimed at
# (mm, rounded up to 5 mm), and its frequency drops so that the depth stays within its penetration:
# depth (cm) x frequency (MHz) <= PENETRATION_CM_MHZ (10 MHz reaches 4.5 cm) [ED].
DEPTH_MARGIN_MM = 15.0
PENETRATION_CM_MHZ = 45.0
# Seating the face on the skin: the presets rock the probe in its plane (heel-toe) about the point they
# aim at, within this range, until the face is as evenly on the skin as it can be (the curved back of
# a lordotic spine otherwise leaves one end of the face in the air). FACE_POINTS points across the face
# are checked; a point whose beam meets the skin more than GEL_MM beyond the face has lost contact
# (the renderer draws it black).
SEAT_ROCK_RANGE_DEG = 30.0
SEAT_ROCK_STEP_DEG = 1.0
FACE_POINTS = 9
GEL_MM = 10.0
# Then the probe is pressed in, as sonographers press a convex probe on the back, until no part of the
# face is more than SEAT_GAP_MM off the skin, by at most SEAT_PRESS_MM (the soft tissue under the face
# centre is indented that much; the model's tissue does not deform, so the press is kept small) [ED].
SEAT_GAP_MM = 5.0
# Points across the face at which contact is checked (about one every 2 mm of a 60 mm face).
CONTACT_POINTS = 33
SEAT_PRESS_MM = 4.0
# The hiatus views aim between the cornua this far from their tips toward the hiatus apex, where the
# plane cuts both cornua through their height (at the tips a few degrees' turn misses one) [ED].
CORNUA_TOWARD_APEX = 0.25
# A transverse view is held by a hand, not a jig: the probe sits a few degrees off square to the spine
# (turned about its beam and rocked heel-toe) [ED]. Held exactly square over a symmetric model, the
# transverse views were mirror images of themselves, which the sonographer's blind read singled out.
# The transverse interlaminar view tilts the probe in the sagittal plane within INTERSPINOUS_TILTS_DEG until
# the beam passes between the spinous processes (and laminae) to the window, checked from the window back
# INTERSPINOUS_REACH_MM toward the skin and INTERSPINOUS_CLEARANCE_MM either side in the slice's thickness
# (the elevation beam is 2-3 mm wide at the laminae's depth) [ED]; sonographers tilt it "slightly cephalad"
# (Karmakar's technique) or caudad, whichever opens the window.
INTERSPINOUS_TILTS_DEG = tuple(range(-25, 26))
INTERSPINOUS_REACH_MM = 60.0
INTERSPINOUS_CLEARANCE_MM = 1.5
HAND_ROTATE_DEG = 4.0
HAND_ROCK_DEG = 2.0


def standard_view(anatomy, view: str, level: str = "L4-L5", side: str = "left", kind: ProbeKind | None = None,
                  **settings) -> Probe:
    """A probe on the skin in one of the standard lumbar views, its face seated on the skin.

    Parameters
    ----------
    anatomy : Anatomy
        Needs the landmarks ``{level}.interlaminar_window.center`` and, for the articular and lamina
        views, ``facet_joint.{level}.{side}.center``; the transverse views also use the
        spinous-process tips, the trident view the transverse-process tips and roots
        (``{vertebra}.SAP_TP_junction.{side}``), the paramedian sagittal oblique view the labels of
        the disc and vertebral bodies.
    view : str
        ``"transverse-spinous"``: transverse on the midline over the upper vertebra's spinous process
        (its tip a bright cap with a shadow, the laminae either side); marker on the patient's right.
        ``"sagittal-transverse-process"``: sagittal over the transverse processes of both vertebrae,
        beam straight down (the "trident": finger-like shadows, psoas between); marker cranial.
        ``"paramedian-sagittal"``: sagittal over the laminae, beam straight down (a saw-tooth of
        laminae); marker cranial.
        ``"articular"``: sagittal plane over the facet joints, beam straight down (the articular
        processes as a continuous wavy line, "camel humps"); marker cranial.
        ``"paramedian-sagittal-oblique"``: sagittal plane beside the midline, beam tilted medially
        through the interlaminar window onto the anterior complex (the back of the disc, on the
        midline): laminae as a saw-tooth, the window between them; marker cranial.
        ``"transverse-interlaminar"``: transverse plane through the interspinous gap, beam aimed
        between the spinous-process tips into the window; marker on the patient's right.
        ``"sacroiliac-joint"``: transverse over the lower third of the sacroiliac joint (landmark
        ``sacroiliac_joint.{side}.inferior_third``), beam straight down: the sacrum's lateral crest
        medially, the ilium's medial edge laterally, the joint a dark cleft between them; marker on
        the patient's right.
        ``"sacral-hiatus-transverse"``: transverse over the sacral cornua (``S1.cornu.{left,right}.tip``):
        the two cornua as bright humps, the sacrococcygeal ligament a bright band between them and
        the sacral base a bright line deeper (the "frog's eyes"); marker on the patient's right.
        ``"sacral-hiatus-sagittal"``: sagittal on the midline over the hiatus: the ligament over the
        hiatus, the dorsal wall of the sacrum cranially, the canal's floor below; marker cranial.
        The transverse views are held a few degrees off square (``HAND_ROTATE_DEG``, ``HAND_ROCK_DEG``).
    level : str
        Interspace, e.g. ``"L4-L5"`` (the sacral views do not use it).
    side : {"left", "right"}
        Patient side of the paramedian views and of the sacroiliac joint.
    kind : {"linear", "curvilinear"}, optional
        Probe kind; ``None`` takes the view's (:data:`DEFAULT_KIND`: curvilinear for the lumbar and
        sacroiliac views, linear for the hiatus). A linear probe's depth and frequency, unless given,
        are set to reach the structure aimed at.
    **settings
        Other :class:`Probe` fields (depth_mm, frequency_mhz, gain_db, ...).
    """
    if view not in VIEWS:
        raise SpinesimError(f"unknown ultrasound view {view!r}", hint=f"use one of: {', '.join(VIEWS)}")
    check_side(side)
    kind = kind or DEFAULT_KIND[view]
    aim, axial, lateral = _view_aim(anatomy, view, level, side)
    probe = aimed_probe(anatomy, kind, aim, axial, lateral, **settings)
    if kind == "linear":
        probe = probe.with_settings(**_reaching(probe, aim, settings))
    probe = seated(anatomy, probe, aim)
    return held(anatomy, probe, aim) if view in TRANSVERSE_VIEWS else probe


def held(anatomy, probe: Probe, aim: np.ndarray) -> Probe:
    """``probe`` as a hand holds it: turned ``HAND_ROTATE_DEG`` about its beam and rocked
    ``HAND_ROCK_DEG`` heel-toe about ``aim`` (its central beam still passes through it), back on the
    skin and pressed in as far as it was."""
    aim = np.asarray(aim, dtype=np.float64)
    pressed = (skin_point(anatomy, aim, probe.axial) - probe.position) @ probe.axial
    turned = probe.moved(rotate_deg=HAND_ROTATE_DEG, rock_deg=HAND_ROCK_DEG)
    try:
        return replace(turned, position=skin_point(anatomy, aim, turned.axial)).moved(press_mm=max(-pressed, 0.0))
    except SpinesimError:
        return probe  # the turned beam misses the body: keep the square hold


def _view_aim(anatomy, view: str, level: str, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The point a standard view aims its central beam at, the beam's direction and the array's (LPS)."""
    superior = np.array([0.0, 0.0, 1.0])
    anterior = np.array([0.0, -1.0, 0.0])
    # Transverse views: marker on the patient's right, the image's left is the patient's right (+x is left).
    across = np.array([1.0, 0.0, 0.0])
    if view == "sacroiliac-joint":
        return anatomy.landmark(f"sacroiliac_joint.{side}.inferior_third"), anterior, across
    if view in ("sacral-hiatus-transverse", "sacral-hiatus-sagittal"):
        tips = 0.5 * (anatomy.landmark("S1.cornu.left.tip") + anatomy.landmark("S1.cornu.right.tip"))
        aim = tips + CORNUA_TOWARD_APEX * (anatomy.landmark("sacral_hiatus.apex") - tips)
        return aim, anterior, across if view == "sacral-hiatus-transverse" else -superior
    window = anatomy.landmark(f"{level}.interlaminar_window.center")
    upper, lower = level.split("-")
    if view == "transverse-interlaminar":
        return window, interspinous_beam(anatomy, window), across
    if view == "transverse-spinous":
        # Straight down through the tip, aimed at the laminae's depth (that of the window) so that a
        # linear probe's depth takes them in.
        aim = anatomy.landmark(f"{upper}.spinous_process.tip").copy()
        aim[1] = window[1]
        return aim, anterior, across
    # Sagittal views: marker cranial, so the image's left is cranial and +lateral points caudal.
    if view == "articular":
        return anatomy.landmark(f"facet_joint.{level}.{side}.center"), anterior, -superior
    if view == "paramedian-sagittal":
        facet = anatomy.landmark(f"facet_joint.{level}.{side}.center")
        aim = window.copy()
        aim[0] += LAMINA_FROM_MIDLINE * (facet[0] - window[0])
        return aim, anterior, -superior
    if view == "sagittal-transverse-process":
        roots = [anatomy.landmark(f"{v}.transverse_process.{side}.tip") * (1.0 - TRANSVERSE_PROCESS_FROM_TIP)
                 + anatomy.landmark(f"{v}.SAP_TP_junction.{side}") * TRANSVERSE_PROCESS_FROM_TIP
                 for v in (upper, lower)]
        return np.mean(roots, axis=0), anterior, -superior
    medial = np.array([-1.0 if side == "left" else 1.0, 0.0, 0.0])  # +x is the patient's left
    tilt = np.radians(PSO_MEDIAL_TILT_DEG)
    return anterior_complex(anatomy, level), np.cos(tilt) * anterior + np.sin(tilt) * medial, -superior


def interspinous_beam(anatomy, window: np.ndarray) -> np.ndarray:
    """The beam direction (LPS unit vector) of the transverse interlaminar view: through the interspinous
    gap onto the interlaminar ``window``, tilted in the sagittal plane as a sonographer tilts the probe
    (cranially or caudally, ``INTERSPINOUS_TILTS_DEG``) until the beam and the slice's thickness beside it
    (``INTERSPINOUS_CLEARANCE_MM`` either side) pass no bone between the skin and the window: the least
    tilt that does, or the one that crosses the least bone. Without labels the beam points straight down.

    Aimed from the midpoint of the two spinous-process tips, the beam slanted caudally along the upper
    process's sloping lower border and met its shadow on the midline (the view's flaw since generator 13).
    """
    anterior = np.array([0.0, -1.0, 0.0])
    if anatomy.labels is None:
        return anterior
    bone = [label.id for label in anatomy.label_table if label.tissue in BONE_TISSUES]
    depths = np.arange(2.0, INTERSPINOUS_REACH_MM, 0.5)
    best, best_bone = anterior, np.inf
    for tilt in sorted(INTERSPINOUS_TILTS_DEG, key=abs):
        angle = np.radians(tilt)
        axial = np.array([0.0, -np.cos(angle), np.sin(angle)])       # positive tilt: the beam points cranially
        slice_normal = np.array([0.0, np.sin(angle), np.cos(angle)])  # the elevation, in the sagittal plane
        crossed = 0
        for offset in (-INTERSPINOUS_CLEARANCE_MM, 0.0, INTERSPINOUS_CLEARANCE_MM):
            points = window - depths[:, None] * axial + offset * slice_normal
            ijk = np.rint(anatomy.labels.world_to_voxel(points)).astype(np.int64)
            inside = np.all((ijk >= 0) & (ijk < np.asarray(anatomy.labels.shape)), axis=1)
            crossed += int(np.isin(anatomy.labels.array[tuple(ijk[inside].T)], bone).sum())
        if crossed == 0:
            return axial
        if crossed < best_bone:
            best, best_bone = axial, crossed
    return best


def _reaching(probe: Probe, aim: np.ndarray, given: dict) -> dict:
    """A linear probe's depth and frequency that reach ``DEPTH_MARGIN_MM`` beyond ``aim`` (those not ``given``)."""
    settings = {}
    reach = (aim - probe.position) @ probe.axial + DEPTH_MARGIN_MM
    depth = float(given.get("depth_mm", 5.0 * math.ceil(reach / 5.0)))
    if "depth_mm" not in given:
        settings["depth_mm"] = min(max(depth, PRESETS["linear"]["depth_mm"]), 120.0)
        settings["focus_mm"] = None
    if "frequency_mhz" not in given:
        low, high = FREQUENCY_RANGE_MHZ["linear"]
        settings["frequency_mhz"] = round(min(max(PENETRATION_CM_MHZ / (depth / 10.0), low), probe.frequency_mhz), 1)
    return settings


def face_points(probe: Probe, points: int = FACE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """LPS points across the probe's face, end to end in the image plane, and the beam direction at each."""
    frame = np.stack([probe.lateral, probe.axial])
    if probe.kind == "linear":
        offsets = np.linspace(-0.5, 0.5, points) * probe.footprint_mm
        return probe.position + offsets[:, None] * probe.lateral, np.repeat(probe.axial[None], points, axis=0)
    angles = np.radians(np.linspace(-0.5, 0.5, points) * probe.field_of_view_deg)
    directions = np.stack([np.sin(angles), np.cos(angles)], axis=1)
    origins = probe.radius_mm * directions - [0.0, probe.radius_mm]  # the apex is a radius behind the face
    return probe.position + origins @ frame, directions @ frame


def face_gaps_mm(anatomy, probe: Probe, points: int = FACE_POINTS) -> np.ndarray:
    """How far beyond each of ``points`` points across the face its beam meets the skin (mm; negative:
    that part of the face is pressed into the skin)."""
    origins, directions = face_points(probe, points)
    return np.array([(skin_point(anatomy, origin, direction) - origin) @ direction
                     for origin, direction in zip(origins, directions)])


def contact_lost(anatomy, probe: Probe) -> float:
    """Share of the probe's face (0-1) off the skin by more than the gel fills (``GEL_MM``): the part
    of the image that is black for want of contact."""
    return float(np.mean(face_gaps_mm(anatomy, probe, CONTACT_POINTS) > GEL_MM))


def seated(anatomy, probe: Probe, aim: np.ndarray) -> Probe:
    """``probe`` rocked in its plane about ``aim`` (its central beam still passes through it) and put
    back on the skin, by the smallest angle that lays its face most evenly on the skin (the largest
    gap between face and skin least; within ``SEAT_ROCK_RANGE_DEG``), then pressed in until its
    largest gap is ``SEAT_GAP_MM`` (at most ``SEAT_PRESS_MM``)."""
    aim = np.asarray(aim, dtype=np.float64)
    best, best_gap = probe, np.inf
    for rock in sorted(np.arange(-SEAT_ROCK_RANGE_DEG, SEAT_ROCK_RANGE_DEG + 1e-9, SEAT_ROCK_STEP_DEG), key=abs):
        rocked = probe.moved(rock_deg=float(rock))
        try:
            candidate = replace(rocked, position=skin_point(anatomy, aim, rocked.axial))
            gap = float(np.max(np.abs(face_gaps_mm(anatomy, candidate))))
        except SpinesimError:
            continue   # that rock takes the beam or a face point off the body
        if gap < best_gap - 0.25:      # a quarter millimetre is within the skin's voxels: keep the smaller angle
            best, best_gap = candidate, gap
    if not np.isfinite(best_gap):
        return probe
    largest = float(np.max(face_gaps_mm(anatomy, best)))
    return best.moved(press_mm=min(max(largest - SEAT_GAP_MM, 0.0), SEAT_PRESS_MM))


def anterior_complex(anatomy, level: str, *, reach_mm: float = 60.0, step_mm: float = 0.5) -> np.ndarray:
    """The back of the disc (or vertebral body) straight in front of ``level``'s interlaminar window.

    The "anterior complex" of neuraxial ultrasound (posterior longitudinal ligament, back of the disc
    and bodies): found by stepping anteriorly from ``{level}.interlaminar_window.center`` until the
    label map shows the ``{level}.disc`` or the body of either vertebra.
    """
    upper, lower = level.split("-")
    table = anatomy.label_table
    targets = [label.id for label in table
               if label.name.startswith(f"{level}.disc") or label.name in (f"{upper}.body", f"{lower}.body")]
    if anatomy.labels is None or not targets:
        raise SpinesimError(f"the anatomy has no labelled {level} disc or vertebral bodies to aim the probe at",
                            hint="use a labelled anatomy, or aim the probe yourself with aimed_probe")
    window = anatomy.landmark(f"{level}.interlaminar_window.center")
    points = window + np.arange(0.0, reach_mm, step_mm)[:, None] * np.array([0.0, -1.0, 0.0])
    ijk = np.rint(anatomy.labels.world_to_voxel(points)).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(anatomy.labels.shape)), axis=1)
    hits = np.flatnonzero(inside)[np.isin(anatomy.labels.array[tuple(ijk[inside].T)], targets)]
    if hits.size == 0:
        raise SpinesimError(f"no {level} disc or vertebral body within {reach_mm:g} mm in front of its interlaminar window")
    return points[hits[0]]

