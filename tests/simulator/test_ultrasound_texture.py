"""Speckle statistics, the noise floor in shadows and specular soft-tissue walls, measured on small
analytic phantoms against their known answers."""

import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.structures import LabelTable
from anatomy_models.volume import Volume
from simulator.imaging import ultrasound
from simulator.imaging.probe import Probe
from simulator.imaging.ultrasound import render_ultrasound

# 10 log10 of an exponentially distributed intensity (fully developed speckle) has SD 5.57 dB.
FULLY_DEVELOPED_SD_DB = 10.0 / np.log(10.0) * np.pi / np.sqrt(6.0)


def block(labels: np.ndarray, *tissues: str) -> Anatomy:
    """An anatomy on a 1 mm grid whose label i + 1 is ``tissues[i]``."""
    table = LabelTable()
    for name in tissues:
        table.add(name, name)
    ct = np.where(labels > 0, 40, -1000).astype(np.int16)
    return Anatomy(Volume.from_spacing(ct, (1, 1, 1)), table, Volume.from_spacing(labels.astype(np.uint16), (1, 1, 1)))


def log_spread_db(image, region) -> float:
    return float((image.pixels[region].astype(float) / 255.0 * image.probe.dynamic_range_db).std())


def test_compounding_makes_speckle_less_spread_than_fully_developed(monkeypatch):
    tissue = block(np.ones((40, 40, 40)), "soft_tissue")      # no texture: speckle alone
    probe = Probe("linear", position=[20, 39.5, 20], axial=[0, -1, 0], lateral=[1, 0, 0], frequency_mhz=6.0,
                  depth_mm=30.0, tgc_db_per_cm=6.0, gain_db=20.0, image_shape=(160, 160))
    region = np.s_[40:140, 30:130]
    monkeypatch.setattr(ultrasound, "COMPOUND_FRAMES", 1)
    single = log_spread_db(render_ultrasound(tissue, probe), region)
    monkeypatch.setattr(ultrasound, "COMPOUND_FRAMES", 2)
    tissue.clear_derived()
    compounded = log_spread_db(render_ultrasound(tissue, probe), region)
    # One frame: fully developed speckle, less the little that the display's interpolation between
    # beam samples averages out; two uncorrelated frames: toward 5.57 / sqrt(2) = 3.9 dB.
    assert FULLY_DEVELOPED_SD_DB - 1.0 < single < FULLY_DEVELOPED_SD_DB + 0.3
    assert 2.8 < compounded < 4.2 and compounded < 0.75 * single


@pytest.fixture(scope="module")
def sac():
    """Muscle with a CSF box (x 18-42, y 10-30 mm) walled by a 1 mm dura shell: a sac whose lateral
    walls run parallel to a beam from above, and a bone slab under x < 12 from y = 25 mm down."""
    labels = np.ones((60, 48, 40), np.uint8)
    labels[17:44, 9:32] = 2
    labels[18:43, 10:31] = 3
    labels[:12, :26] = 4
    return block(labels, "muscle", "dura", "csf", "cortical_bone")


def sac_image(sac, **settings):
    probe = Probe("linear", position=[30, 47.5, 20], axial=[0, -1, 0], lateral=[1, 0, 0], frequency_mhz=6.0,
                  depth_mm=44.0, footprint_mm=56.0, image_shape=(220, 280), **settings)
    return render_ultrasound(sac, probe)


def column_of(image, x_mm):
    return int(round(image.lps_to_pixel([x_mm, 40.0, 20.0])[1]))


def row_of(image, y_mm):
    return int(round(image.lps_to_pixel([30.0, y_mm, 20.0])[0]))


def test_walls_parallel_to_the_beam_fall_below_the_noise_floor(sac):
    image = sac_image(sac)
    grey = image.pixels.astype(float)
    floor = 255.0 * ultrasound.DISPLAY_NOISE_ABOVE_BLACK_DB / image.probe.dynamic_range_db
    rows = slice(row_of(image, 27.0), row_of(image, 13.0))            # between the roof and the floor
    # The dura's lateral walls (x 17-18 and 42-43 mm) are as dark as the CSF between them: at the noise floor.
    for wall_x in (17.5, 42.5):
        wall = grey[rows, column_of(image, wall_x) - 1:column_of(image, wall_x) + 2].mean()
        assert wall < 1.5 * floor, (wall_x, wall, floor)
    csf = grey[rows, column_of(image, 26.0):column_of(image, 34.0)].mean()
    assert csf < 1.5 * floor
    # The roof (y 30-31 mm), square to the beam, is a bright line.
    roof = grey[row_of(image, 32.5):row_of(image, 29.5), column_of(image, 26.0):column_of(image, 34.0)]
    assert roof.mean(axis=1).max() > 4 * floor


def test_shadows_are_dark_but_never_exactly_black(sac):
    image = sac_image(sac, gain_db=15.0)
    shadow = image.pixels[row_of(image, 20.0):row_of(image, 6.0), column_of(image, 3.0):column_of(image, 10.0)]
    muscle = image.pixels[row_of(image, 20.0):row_of(image, 6.0), column_of(image, 50.0):column_of(image, 56.0)]
    assert shadow.size > 500
    assert np.mean(shadow == 0) == 0.0 and shadow.min() >= 3
    assert shadow.mean() < 0.5 * muscle.mean()


def test_an_injected_volume_is_an_anechoic_pocket(sac):
    """Hydrodissection: contrast at a medium's concentration in a 6 mm ball in the muscle beside the
    sac turns it into fluid, dark as the CSF; the same muscle without it is lit."""
    grid = np.zeros((60, 48, 40), np.float32)
    x, y, z = np.meshgrid(*[np.arange(n, dtype=float) for n in grid.shape], indexing="ij")
    grid[(x - 51) ** 2 + (y - 20) ** 2 + (z - 20) ** 2 <= 36] = 240.0     # mg iodine/mL
    fluid = Volume.from_spacing(grid, (1, 1, 1))
    probe = sac_image(sac, gain_db=15.0).probe
    plain, injected = render_ultrasound(sac, probe), render_ultrasound(sac, probe, fluid=fluid)
    pocket = np.s_[row_of(plain, 23.0):row_of(plain, 17.0), column_of(plain, 49.0):column_of(plain, 53.0)]
    floor = 255.0 * ultrasound.DISPLAY_NOISE_ABOVE_BLACK_DB / probe.dynamic_range_db
    assert plain.pixels[pocket].mean() > 2.5 * floor
    assert injected.pixels[pocket].mean() < 1.5 * floor
    assert np.mean(injected.pixels[pocket] == 0) == 0.0


def column_profile(labels, *tissues, frequency_mhz=6.0):
    """Mean grey level per row over the central columns of a linear probe looking down -y at ``labels``."""
    body = block(labels, *tissues)
    probe = Probe("linear", position=[20, labels.shape[1] - 0.5, 20], axial=[0, -1, 0], lateral=[1, 0, 0],
                  frequency_mhz=frequency_mhz, depth_mm=30.0, footprint_mm=30.0, image_shape=(240, 96))
    image = render_ultrasound(body, probe)
    return image.pixels[:, 30:66].astype(float).mean(axis=1), image.pixel_mm


def bright_lines(profile, pixel_mm, around_mm, reach_mm=4.0):
    """How many separate bright lines (local maxima above half the brightest) the profile holds within
    ``reach_mm`` of depth ``around_mm``."""
    rows = np.arange(len(profile))
    window = np.abs((rows + 0.5) * pixel_mm - around_mm) < reach_mm
    values = np.where(window, profile, 0.0)
    peak = values.max()
    maxima = (values[1:-1] > values[:-2]) & (values[1:-1] >= values[2:]) & (values[1:-1] > 0.5 * peak)
    return int(maxima.sum())


@pytest.mark.parametrize("thickness_mm, lines", [(1, 1), (6, 2)])
def test_a_thin_fascial_plane_is_one_line_a_thick_layer_two(thickness_mm, lines):
    """A voxel-thick fat plane in muscle (an intermuscular septum as a 1 mm label map draws it) gives one
    bright line, not one per face (the doubled lines the blind read rejected); a 6 mm fat layer keeps
    both of its faces. At 6 MHz the pulse resolves faces 1 mm apart, so only the merge makes one line."""
    labels = np.ones((40, 40, 40), np.uint8)
    labels[:, 20 - thickness_mm:20] = 2                  # fat from y = 20 - t to 20: 19.5 mm below the face
    profile, pixel_mm = column_profile(labels, "muscle", "fat")
    centre_mm = 19.5 + thickness_mm / 2
    assert bright_lines(profile, pixel_mm, centre_mm, reach_mm=thickness_mm / 2 + 1.5) == lines


def test_cauda_equina_is_faint_strands_in_an_anechoic_sac():
    """The roots drawn as one labelled mass inside the CSF show as sparse faint echoes (strands), the sac
    between them as dark as the CSF alone, and no bright outline where the mass meets the CSF."""
    table = LabelTable()
    muscle, csf = table.add("muscle", "muscle").id, table.add("dural_sac.csf", "csf").id
    roots = table.add("cauda_equina", "nerve").id
    labels = np.full((48, 40, 48), muscle, np.uint16)
    labels[8:40, 6:26, :] = csf
    labels[14:34, 9:20, :] = roots                       # 20 x 11 mm of roots across, the whole length
    body = Anatomy(Volume.from_spacing(np.full(labels.shape, 40, np.int16), (1, 1, 1)), table,
                   Volume.from_spacing(labels, (1, 1, 1)))
    probe = Probe("linear", position=[24, 39.5, 24], axial=[0, -1, 0], lateral=[1, 0, 0], frequency_mhz=6.0,
                  depth_mm=36.0, footprint_mm=40.0, image_shape=(216, 240))
    image = render_ultrasound(body, probe)
    points = image.grid_lps()
    inside = ((points[..., 0] > 15) & (points[..., 0] < 33) & (points[..., 1] > 10) & (points[..., 1] < 19))
    floor = 255.0 * ultrasound.DISPLAY_NOISE_ABOVE_BLACK_DB / probe.dynamic_range_db
    grey = image.pixels[inside].astype(float)
    assert np.median(grey) < 1.6 * floor                 # anechoic between the strands
    assert np.mean(grey > 4.0 * floor) > 0.02            # and the strands show
    top = (np.abs(points[..., 1] - 19.5) < 1.0) & (points[..., 0] > 15) & (points[..., 0] < 33)
    assert image.pixels[top].mean() < 3.0 * floor        # no outline where the roots meet the CSF


def test_a_shadow_edge_fades_over_millimetres_into_the_dark(sac, monkeypatch):
    """Beside lit muscle, a shadowed line's side lobes still hear the muscle (issue 17: no knife-edged
    black shadows): 10 mm under the bone's top the shadow is hazier within 2 mm of its edge (x = 12 mm)
    than without side lobes, and as dark as without them 6 mm in, where only the noise remains."""
    def profile():
        sac.clear_derived()
        image = sac_image(sac, gain_db=25.0)
        row = slice(row_of(image, 17.0), row_of(image, 15.0))
        return (image.pixels[row, column_of(image, 10.0):column_of(image, 11.5)].mean(),
                image.pixels[row, column_of(image, 3.0):column_of(image, 6.0)].mean())

    near_edge, inside = profile()
    monkeypatch.setattr(ultrasound, "SIDE_LOBE_DB", -200.0)
    bare_edge, bare_inside = profile()
    sac.clear_derived()
    assert near_edge > bare_edge + 4.0
    assert inside == pytest.approx(bare_inside, abs=0.5)


def test_the_shadow_of_a_narrow_bone_fills_in_with_depth(monkeypatch):
    """Sound passing either side of a 2 mm bone bar spreads into its shadow (Fresnel diffraction): just
    under the bar the shadow is dark; 30 mm under it the muscle shows again, dimmer than beside it and
    brighter than without the spreading (side lobes off, so that only the diffraction fills it)."""
    monkeypatch.setattr(ultrasound, "SIDE_LOBE_DB", -200.0)
    labels = np.ones((48, 48, 24), np.uint8)
    labels[23:25, 34:36] = 2                                   # a 2 mm x 2 mm bar along z, top at y = 36 mm
    bar = block(labels, "muscle", "cortical_bone")
    probe = Probe("linear", position=[24, 47.5, 12], axial=[0, -1, 0], lateral=[1, 0, 0], frequency_mhz=6.0,
                  depth_mm=46.0, footprint_mm=40.0, gain_db=15.0, image_shape=(230, 200))

    def under(image, depth_below_mm):
        y = 34.0 - depth_below_mm
        rows = slice(int(round(image.lps_to_pixel([24.0, y + 1.0, 12.0])[0])),
                     int(round(image.lps_to_pixel([24.0, y - 1.0, 12.0])[0])))
        centre = int(round(image.lps_to_pixel([24.0, y, 12.0])[1]))
        return image.pixels[rows, centre - 1:centre + 2].mean(), image.pixels[rows, centre + 40:centre + 60].mean()

    image = render_ultrasound(bar, probe)
    (shallow, lit), (deep, lit_deep) = under(image, 3.0), under(image, 30.0)
    monkeypatch.setattr(ultrasound, "FRESNEL_SPREAD", 0.0)
    bar.clear_derived()
    straight, _ = under(render_ultrasound(bar, probe), 30.0)
    assert shallow < 0.5 * lit and deep < 0.8 * lit_deep
    assert deep > straight + 5.0
