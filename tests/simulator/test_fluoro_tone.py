"""The display's global tone (issue 16's blind read: "discs, foramina and bone junctions white on the lateral and
obliques", "dark and bright rims round the body and the bones"): what the beam crosses much of is never shown as
white as air, and an edge is shown without a wide halo."""

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm, ap, lateral, square_endplate
from simulator.imaging.fluoro import DetectorModel, Display, render_fluoro

# A region of the body is "air-white" within this many grey levels of the 255 that air is shown at [ED: the
# foramen of the lateral L4 was shown at 254 with the earlier harmonisation, its 265 mm of water-equivalent path
# against the body's 295].
AIR_WHITE_MARGIN = 25


def _grey(image, carm, point) -> float:
    """The displayed grey (bone_black: air 255) around ``point`` (LPS mm), a 3 x 3 mean."""
    column, row = np.rint(carm.project(np.asarray(point, float)[None])[0]).astype(int)
    return float(image.pixels[row - 1:row + 2, column - 1:column + 2].mean())


def test_the_laterals_disc_and_foramen_are_grey_between_the_body_and_air(small_spine):
    """On the lateral of L4 the L4-L5 disc and foramen are crossed by nearly as much tissue as the vertebral body
    (stop 21, built-in patient at 1 mm: 302 and 265 mm of water-equivalent path against the body's 295): a global
    tone curve shows them a little brighter (or darker) than the body, never as white as air. The earlier display
    subtracted 75% of a 20 mm blur of the image and showed the foramen, ringed by bone, at 254 (body 132)."""
    carm = lateral(small_spine, "L4", "left", detector_pixels=256)
    image = render_fluoro(small_spine, carm, dose=None, display=Display(letters=False),
                          detector=DetectorModel(vignetting=0.0))
    landmark = small_spine.landmark
    body = _grey(image, carm, landmark("L4.body.center"))
    disc = _grey(image, carm, (landmark("L4.inferior_endplate.center") + landmark("L5.superior_endplate.center")) / 2)
    foramina = [_grey(image, carm, landmark(f"L4-L5.{name}.left")) for name in ("safe_triangle", "kambin_triangle")]
    for region in (disc, *foramina):
        assert body - 40 <= region <= 255 - AIR_WHITE_MARGIN, (body, disc, foramina)


def _block_phantom() -> Anatomy:
    """A soft-tissue slab (140 mm across, 120 mm along the beam) in air holding a bone block 40 mm wide (a
    vertebral body's size), 2 mm voxels: x across the screen, y along the beam, z down it."""
    hu = np.full((100, 100, 40), -1000, np.int16)
    x = (np.arange(100) - 49.5) * 2.0
    hu[np.ix_(np.abs(x) < 70, np.abs(x) < 60, np.ones(40, bool))] = 40
    hu[np.ix_(np.abs(x) < 20, np.abs(x) < 20, np.ones(40, bool))] = 700
    return Anatomy(ct=Volume.from_spacing(hu, (2.0, 2.0, 2.0), origin=(-99.0, -99.0, -39.0)),
                   metadata={"name": "block"})


def test_a_bone_block_is_shown_without_a_wide_halo():
    """Across a 40 mm bone block in soft tissue (noiseless, no vignetting): the soft tissue 4-16 mm beside the block
    is shown within 20% of the block's step of its level 21-41 mm away [ED] (13% measured with the display's
    shoulder at 0.85, 15.4% with contrast8's 0.75 knee, which shortens the step on the bone's side: the mild
    harmonisation brightens it a little towards the block; flat without it), and the overshoot at the edge, outside and inside
    the block, stays within 35% of the step (27%, the unsharp mask's 13% on that 13%, and 13% at the 0.85 knee; 31%
    outside at the 0.75 knee). The earlier display
    (75% of a 20 mm blur subtracted, unsharp-mask gain 1.4) showed the soft tissue next to the block white, twice
    the step brighter than 30 mm away, and the block's rim black, a halo readers saw round every bone."""
    anatomy = _block_phantom()
    carm = CArm(detector_pixels=256)
    image = render_fluoro(anatomy, carm, dose=None, display=Display(letters=False),
                          detector=DetectorModel(vignetting=0.0))
    row = image.pixels[118:138].astype(float).mean(axis=0)
    # From the block's centre, mm at the isocentre.
    mm = np.abs(np.arange(256) - 127.5) * carm.pixel_size_mm / carm.magnification
    side = np.sign(np.arange(256) - 127.5)
    centre = np.median(row[mm < 10.0])
    for half in (-1.0, 1.0):
        far = np.median(row[(side == half) & (mm > 41.0) & (mm < 61.0)])
        step = far - centre
        assert step > 40
        beside = row[(side == half) & (mm > 24.0) & (mm < 36.0)]
        # Within 36 grey levels (14% of the scale) [ED], not 20% of the step: the window's bottom now lies a quarter
        # window below the slab (fluoro._WINDOW_LOW_MARGIN), which is shown grey instead of at the toe's knee, so the
        # step is 88 levels instead of 133 while the harmonisation's slope beside the block is the same 31 levels.
        assert np.abs(beside - far).max() <= 36.0, (half, beside, far, step)
        # The edge itself is spread over ~2 mm (the block's front and back are magnified differently): its
        # overshoot is the brightest of the soft tissue just outside, the darkest of the bone just inside.
        edge = row[(side == half) & (mm > 19.0) & (mm < 24.0)]
        # Within 50 grey levels [ED], not 35% of the step, for the same reason: 41 levels (31% of 133) before, 47 now.
        assert edge.max() - far <= 50.0, (half, edge, far, step)
        rim = row[(side == half) & (mm > 15.0) & (mm < 21.0)]
        assert centre - rim.min() <= 0.35 * step, (half, rim, centre, step)


def _disc_median(values: np.ndarray, centre: np.ndarray, radius_px: float) -> float:
    """The median of ``values`` within ``radius_px`` of ``centre`` (column, row)."""
    rows, columns = np.indices(values.shape)
    return float(np.median(values[np.hypot(columns - centre[0], rows - centre[1]) <= radius_px]))


def test_the_vertebral_body_is_shown_darker_than_the_tissue_beside_it(small_spine):
    """Issue 16's blind read, stop 24 ("eggshells": only the cortex and the pedicles dark, the AP L4's body 118
    against the paraspinal tissue's 133-138): a display shows small and large line-integral differences at a
    similar grey per unit. On the AP of L4 (2 mm patient, 256 px, noiseless), halfway from the body's centre to
    each pedicle (the body) against 2.3 times as far (the paraspinal tissue beside it; 0.22-0.26 less line
    integral), and the interlaminar window of L4-L5 against the lamina above it (0.5 less): the lamina's grey
    per unit of line integral is at most 1.8 times the body's [ED: the harmonisation takes a share of a
    body-sized difference, so not 1], and the body is at least 30 grey levels darker than the tissue beside it
    [ED]. With the intensifier's whole vignetting in the camera's log image (DetectorModel.vignetting 0.3) the
    paraspinal tissue, further from the centre, was shown as if denser: 2.7 and 2.0 times, 20 and 32 levels;
    now 1.6 and 1.5 times, 37 and 48 levels."""
    carm = square_endplate(small_spine, "L4", detector_pixels=256)
    image = render_fluoro(small_spine, carm, dose=None, display=Display(letters=False))
    grey, path = image.pixels.astype(float), image.line_integrals

    def at(name):
        return carm.project(small_spine.landmark(name)[None])[0]

    body, window = at("L4.body.center"), at("L4-L5.interlaminar_window.center")
    for side in ("left", "right"):
        half = at(f"L4.pedicle.{side}.center")[0] - body[0]
        vertebral = body + np.array([0.55 * half, 0.0])
        paraspinal = body + np.array([2.3 * half, 0.0])
        lamina = window - np.array([0.0, 0.35 * abs(half)])
        shown = {name: _disc_median(grey, point, 2.5) for name, point in
                 (("body", vertebral), ("beside", paraspinal), ("window", window), ("lamina", lamina))}
        crossed = {name: _disc_median(path, point, 2.5) for name, point in
                   (("body", vertebral), ("beside", paraspinal), ("window", window), ("lamina", lamina))}
        assert crossed["body"] > crossed["beside"] + 0.15 and crossed["lamina"] > crossed["window"] + 0.3, crossed
        large = (shown["beside"] - shown["body"]) / (crossed["body"] - crossed["beside"])
        small = (shown["window"] - shown["lamina"]) / (crossed["lamina"] - crossed["window"])
        assert small <= 1.8 * large, (side, small, large, shown)
        assert shown["beside"] - shown["body"] >= 30, (side, shown)


def test_tissue_crossed_by_as_much_as_a_disc_is_shown_as_light_as_it(small_spine):
    """Issue 16's blind read, stop 25 ("the discs and the gaps between bones brighter than the paraspinal soft
    tissue", an inverted look, on seven of ten views): on the AP of L4 the L4-L5 disc's ray and the paraspinal
    tissue's beside it at the same level, where the ray crosses as much (the pixel of the row whose line integral is
    nearest the disc's, 1.8-2.8 half pedicle distances out), are shown within 6 grey levels of each other [ED: 5 on
    xray13's branch; 5.5 on the right with bone13's denser bodies (generator 61, cores 205 HU), whose edge-aware
    large-scale image still takes a little of them into the disc's].
    The detector's scatter, glare and vignetting are off, so what differs is the display's alone. A Gaussian
    large-scale image for the harmonisation took the dense bodies above and below into the disc's and showed it
    lighter (1 mm patient, 512 px: 205 against 193, the line integrals 5.08 and 5.09)."""
    carm = square_endplate(small_spine, "L4", detector_pixels=256)
    image = render_fluoro(small_spine, carm, dose=None, display=Display(letters=False),
                          detector=DetectorModel(scatter=False, glare_fraction=0.0, vignetting=0.0))
    grey, path = image.pixels.astype(float), image.line_integrals

    def at(name):
        return carm.project(small_spine.landmark(name)[None])[0]

    disc = (at("L4.inferior_endplate.center") + at("L5.superior_endplate.center")) / 2.0
    half = abs(at("L4.pedicle.left.center")[0] - at("L4.pedicle.right.center")[0]) / 2.0
    row = int(round(disc[1]))
    crossed = _disc_median(path, disc, 1.5)
    shown = _disc_median(grey, disc, 1.5)
    for side in (-1.0, 1.0):
        columns = np.arange(int(round(disc[0] + side * 1.8 * half)), int(round(disc[0] + side * 2.8 * half)),
                            int(side))
        beside = columns[np.argmin(np.abs(path[row, columns] - crossed))]
        assert abs(path[row, beside] - crossed) < 0.02, (side, path[row, beside], crossed)
        assert abs(_disc_median(grey, (beside, row), 1.5) - shown) <= 6.0, (side, beside, shown, crossed)


def _over_the_crests(anatomy: Anatomy, carm: CArm, near_mm: tuple[float, float],
                     far_mm: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The pixels above the ilia's projected shadow (the soft tissue over the iliac crests) ``near_mm`` and
    ``far_mm`` from it (mm at the isocentre), in the field less 20 mm of its rim."""
    from scipy import ndimage

    n = carm.detector_pixels
    shadow = np.zeros((n, n), bool)
    for side in ("left", "right"):
        columns_rows = np.rint(carm.project(anatomy.labels.voxel_to_world(np.argwhere(anatomy.mask(f"ilium.{side}")))))
        columns_rows = columns_rows[((columns_rows >= 0) & (columns_rows < n)).all(axis=1)].astype(int)
        shadow[columns_rows[:, 1], columns_rows[:, 0]] = True
    shadow = ndimage.binary_closing(shadow, iterations=2)
    mm_per_pixel = carm.pixel_size_mm / carm.magnification
    distance = ndimage.distance_transform_edt(~shadow) * mm_per_pixel
    top = np.where(shadow.any(axis=0), shadow.argmax(axis=0), -1)
    above = (np.arange(n)[:, None] < top[None, :]) & (top[None, :] > 0)
    inner = ndimage.binary_erosion(carm.field_mask(), iterations=int(20.0 / mm_per_pixel))
    return tuple(above & inner & (distance > low) & (distance <= high) for low, high in (near_mm, far_mm))


def test_the_soft_tissue_over_the_iliac_crests_has_no_bright_halo(small_spine):
    """Issue 16's blind read, stop 25: "white halos 15-20 px along the iliac crests". On the AP of L5 tilted 15
    degrees caudal (noiseless) the soft tissue 1-5 mm above the crests is shown no lighter against the tissue
    15-20 mm above them than a plain linear window shows it (no harmonisation, equalisation or edge enhancement:
    the rays' own difference) by more than 5 grey levels [ED] on either side. Before the harmonisation's
    large-scale image was edge-aware and the edge enhancement's overshoot limited, 11 and 13 grey levels (1 mm
    patient, 512 px: 215 and 219 against 199 and 198, plainly 196 and 199 against 191; now 2 and 2); 13 and 6 on
    the 2 mm patient at 256 px."""
    carm = ap(small_spine, "L5", detector_pixels=256).with_(secondary_deg=-15.0)
    near, far = _over_the_crests(small_spine, carm, (1.0, 5.0), (15.0, 20.0))
    lighter = {}
    for name, display in (("shown", Display(letters=False)),
                          ("plain", Display(letters=False, harmonisation=0.0, equalisation=0.0, edge_enhancement=0.0))):
        grey = render_fluoro(small_spine, carm, dose=None, display=display).pixels.astype(float)
        for half in (np.arange(256)[None, :] < 128, np.arange(256)[None, :] >= 128):
            assert np.count_nonzero(near & half) > 50 and np.count_nonzero(far & half) > 50
            lighter[name, bool(half[0, 0])] = np.median(grey[near & half]) - np.median(grey[far & half])
    for left in (True, False):
        assert lighter["shown", left] - lighter["plain", left] <= 5.0, lighter
