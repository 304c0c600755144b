import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm, Collimation
from simulator.imaging.dose import (AEC_CURVE_TUBE_CURRENT_MA, AEC_KVP_STEPS, AEC_PULSE_SECONDS, DSA_FRAMES_PER_SECOND,
                                    DSA_TO_LIVE_DOSE_RATE, IRP_FROM_ISOCENTER_MM, DoseLedger, Technique,
                                    add_fluoro_shot, curve_tube_current_ma, dsa_target_ngy, exposure_for,
                                    live_dose_rate_mgy_per_s, photons_per_mm2_per_ugy, shot_exposure, shot_technique,
                                    tube_output_ugy_per_mas)
from simulator.imaging.fluoro import DetectorModel, quantum_noise_log, render_fluoro
from simulator.imaging.scatter import NO_GRID, Grid
from simulator.imaging.spectrum import beam


def test_tube_output_grows_about_with_kvp_squared():
    assert tube_output_ugy_per_mas(100.0) / tube_output_ugy_per_mas(70.0) == pytest.approx((100 / 70) ** 1.983)
    assert 40.0 < tube_output_ugy_per_mas(80.0) < 60.0  # typical: ~50 uGy/mAs at 1 m, 80 kVp


def test_photon_fluence_per_kerma_is_one_over_energy_times_mu_en():
    # 60 keV photons, (mu_en/rho)_air = 0.03041 cm^2/g: K = fluence * E * mu_en/rho.
    energy_j = 60e3 * 1.602176634e-19
    fluence_per_gy_per_m2 = 1.0 / (energy_j * 0.003041)
    assert photons_per_mm2_per_ugy(60.0) == pytest.approx(fluence_per_gy_per_m2 * 1e-12)
    with pytest.raises(SpinesimError, match="outside"):
        photons_per_mm2_per_ugy(100.0)


def test_inverse_square_and_reference_point():
    carm = CArm(source_to_isocenter_mm=700.0, source_to_detector_mm=1100.0)
    exposure = exposure_for(carm, Technique(mas_per_frame=0.5))
    irp = 700.0 - IRP_FROM_ISOCENTER_MM
    ratio = exposure.reference_air_kerma_mgy * 1e6 / exposure.detector_air_kerma_ngy
    assert ratio == pytest.approx((1100.0 / irp) ** 2)
    expected = tube_output_ugy_per_mas(80.0) * 0.5 * (1000.0 / irp) ** 2 * 1e-3
    assert exposure.reference_air_kerma_mgy == pytest.approx(expected)


def test_dose_area_product_is_the_same_in_every_plane_and_follows_collimation():
    carm = CArm(detector_shape="square")
    exposure = exposure_for(carm, Technique(mas_per_frame=0.2))
    at_detector = exposure.detector_air_kerma_ngy * 1e-9 * carm.field_area_at_detector_mm2() / 100.0  # Gy cm^2
    assert exposure.dose_area_product_gy_cm2 == pytest.approx(at_detector, rel=1e-9)
    narrow = exposure_for(carm.with_(collimation=Collimation(width=0.5, height=0.5)), Technique(mas_per_frame=0.2))
    assert narrow.dose_area_product_gy_cm2 == pytest.approx(exposure.dose_area_product_gy_cm2 / 4, rel=0.01)
    assert narrow.reference_air_kerma_mgy == exposure.reference_air_kerma_mgy


def test_automatic_exposure_control_and_photon_count():
    carm = CArm()
    exposure = exposure_for(carm, Technique(aec_target_ngy=40.0), transmission=np.exp(-4.0))
    assert exposure.detector_air_kerma_ngy * np.exp(-4.0) == pytest.approx(40.0)
    # Behind the patient: ~40 nGy on a 0.45 mm pixel is a few hundred detected photons.
    behind = exposure.quanta_per_pixel * np.exp(-4.0)
    assert 100 < behind < 1000
    # A thicker patient needs more tube charge and gives the patient more dose.
    thick = exposure_for(carm, Technique(aec_target_ngy=40.0), transmission=np.exp(-5.0))
    assert thick.mas == pytest.approx(exposure.mas * np.e)
    # Live lumbar fluoroscopy at 15 pulses/s: some mGy per minute at the reference point.
    assert 1.0 < live_dose_rate_mgy_per_s(exposure) * 60 < 100.0


def test_ledger_accumulates_shots_and_live_time():
    frame = exposure_for(CArm(), Technique(mas_per_frame=0.1, frames_per_second=8))
    ledger = DoseLedger()
    ledger = ledger.add_shot(frame).add_shot(frame).add_live(frame, seconds=2.5)
    # A shot is a tap of PULSE_SECONDS (0.5 s): 4 frames at 8/s; the live run 20.
    assert (ledger.shots, ledger.frames, ledger.fluoro_seconds) == (2, 28, 2.5)
    assert ledger.reference_air_kerma_mgy == pytest.approx(28 * frame.reference_air_kerma_mgy)
    assert ledger.dose_area_product_gy_cm2 == pytest.approx(28 * frame.dose_area_product_gy_cm2)
    assert [kind for kind, *_ in ledger.history] == ["shot", "shot", "live"]
    assert "2 shots" in ledger.summary() and "mGy·cm² DAP" in ledger.summary()
    assert DoseLedger().shots == 0  # the ledger is immutable: adding returns a new one
    with pytest.raises(SpinesimError, match="seconds"):
        ledger.add_live(frame, seconds=-1)


@pytest.mark.parametrize("fields, message", [
    ({"kvp": 20.0}, "kVp"),
    ({"frames_per_second": 0.0}, "frame rate"),
    ({"mas_per_frame": -1.0}, "tube charge"),
    ({"aec_target_ngy": 0.0}, "AEC target"),
    ({"averaged_frames": 0}, "averaged frames"),
    ({"averaged_frames": 2.5}, "averaged frames"),
])
def test_invalid_technique_is_a_clear_error(fields, message):
    with pytest.raises(SpinesimError, match=message):
        Technique(**fields)


def test_exposure_errors():
    with pytest.raises(SpinesimError, match="transmission"):
        exposure_for(CArm(), Technique(), transmission=0.0)
    with pytest.raises(SpinesimError, match="reference point"):
        exposure_for(CArm(source_to_isocenter_mm=120.0), Technique(mas_per_frame=1.0))


def test_a_dsa_run_is_an_acquisition_whose_dose_scales_with_its_length(small_spine):
    """A DSA run's dose rate is 2.3-4.2x live fluoroscopy's (Maus et al., Pain Medicine 2014) at the
    DSA frame rate, so a 2 s run gives twice the dose of a 1 s run."""
    carm = CArm(isocenter=tuple(small_spine.landmark("L4.body.center")))
    one, two = (add_fluoro_shot(DoseLedger(), small_spine, carm, "dsa", seconds) for seconds in (1.0, 2.0))
    assert two.reference_air_kerma_mgy == pytest.approx(2 * one.reference_air_kerma_mgy, rel=1e-12)
    assert two.dose_area_product_gy_cm2 == pytest.approx(2 * one.dose_area_product_gy_cm2, rel=1e-12)
    assert (one.frames, two.frames) == (round(DSA_FRAMES_PER_SECOND), round(2 * DSA_FRAMES_PER_SECOND))
    live = add_fluoro_shot(DoseLedger(), small_spine, carm, "live", 1.0)
    live_per_second = live.reference_air_kerma_mgy / live.frames * Technique().frames_per_second
    per_second = one.reference_air_kerma_mgy / live_per_second
    assert per_second == pytest.approx(DSA_TO_LIVE_DOSE_RATE) and 2.3 <= per_second <= 4.2
    assert [kind for kind, *_ in one.history] == ["dsa"]


def test_live_fluoroscopy_of_the_lumbar_spine_gives_the_published_dose_rates(small_spine):
    """The calibration (module docstring, 5): live AP fluoroscopy of the built-in patient's L4-L5 at the
    default 15 pulses/s gives a reference air kerma rate inside the 10-20 mGy/min typical of an average
    adult's lumbar spine at normal dose, and a DAP rate between the median and mean of Kim et al.'s
    transforaminal injections (J Spinal Disord Tech 2014: 678 mGy·cm² over 29 s, 1017 over 36 s, at
    15 pulses/s) within a fifth."""
    carm = CArm(isocenter=tuple(small_spine.landmark("L4-L5.interlaminar_window.center")))
    minute = add_fluoro_shot(DoseLedger(), small_spine, carm, "live", 60.0)
    assert minute.frames == 60 * Technique().frames_per_second
    assert 10.0 <= minute.reference_air_kerma_mgy <= 20.0, minute.summary()
    dap_per_second_mgy_cm2 = minute.dose_area_product_gy_cm2 * 1000.0 / 60.0
    assert 0.8 * 678.0 / 29.0 <= dap_per_second_mgy_cm2 <= 1.2 * 1017.0 / 36.0, dap_per_second_mgy_cm2


def test_the_live_counter_is_the_reports_total(small_spine, tmp_path):
    """The web app's live dose counter and the attempt report count the same shots the same way:
    pulses, live fluoroscopy and a DSA run give one number."""
    from frontends.store import Store
    from frontends.web.attempt import LiveAttempt
    from scenarios.schema import load_scenario

    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    trainee = store.add_user("ben", "trainee", "battery staple")
    attempt = LiveAttempt.start(store, trainee.id, load_scenario("tfesi-default"), small_spine)
    target = attempt.session.target
    for record in ({"type": "fluoro_shot", "mode": "pulse"},
                   {"type": "set_carm", **target.views[1].to_json()}, {"type": "fluoro_shot", "mode": "pulse"},
                   {"type": "fluoro_shot", "mode": "live", "seconds": 2.37},
                   {"type": "set_carm", **target.views[2].to_json()}, {"type": "fluoro_shot", "mode": "dsa", "seconds": 2.0},
                   {"type": "finish"}):
        attempt.act(record)
    metrics = store.attempt(attempt.attempt_id).report["metrics"]
    assert attempt.ledger.shots == 2 and [kind for kind, *_ in attempt.ledger.history] == ["shot", "shot", "live", "dsa"]
    assert metrics["reference_air_kerma_mgy"] == round(attempt.ledger.reference_air_kerma_mgy, 4)
    assert metrics["dose_area_product_gy_cm2"] == round(attempt.ledger.dose_area_product_gy_cm2, 5)


def test_at_the_same_detector_dose_air_kerma_and_dap_fall_with_kvp_as_the_phantom_transmits_more():
    """Automatic exposure control through 200 mm of water at 65, 80 and 120 kVp: the detector gets its
    target every time, so the reference air kerma and DAP scale with 1 / transmission, the transmission
    being Beer-Lambert through the spectrum (xraydb water, SpekPy at 0.5 keV bins: test_spectrum's
    reference), and the tube output of the model's source (the kVp^1.983 fit) cancels."""
    from anatomy_models.anatomy import Anatomy
    from anatomy_models.volume import Volume
    from simulator.imaging.fluoro import DetectorModel, render_fluoro
    from simulator.imaging.scatter import NO_GRID
    from tests.simulator.test_spectrum import _reference

    slab = Anatomy(ct=Volume.from_spacing(np.zeros((60, 100, 60), np.int16), (4, 2, 4), origin=(-118, -99, -118)))
    carm = CArm(detector_pixels=32, detector_shape="square")
    physics = DetectorModel.flat_panel(scatter=False, grid=NO_GRID)
    exposures = {kvp: render_fluoro(slab, carm, dose=Technique(kvp=kvp), detector=physics).exposure
                 for kvp in (65.0, 80.0, 120.0)}
    for kvp, exposure in exposures.items():
        transmission = np.exp(-_reference(kvp, 200.0, 0.0))
        assert exposure.detector_air_kerma_ngy * transmission == pytest.approx(Technique().aec_target_ngy, rel=0.02)
        expected = exposures[80.0].reference_air_kerma_mgy * np.exp(-_reference(80.0, 200.0, 0.0)) / transmission
        assert exposure.reference_air_kerma_mgy == pytest.approx(expected, rel=0.02)
    kerma = [exposures[k].reference_air_kerma_mgy for k in (65.0, 80.0, 120.0)]
    dap = [exposures[k].dose_area_product_gy_cm2 for k in (65.0, 80.0, 120.0)]
    assert kerma[0] > kerma[1] > kerma[2] and kerma[0] > 2.0 * kerma[2]
    assert dap[0] > dap[1] > dap[2]


def _water_slab(thickness_mm: float):
    """Water ``thickness_mm`` thick across the default C-arm's beam (2 mm voxels along it), 240 mm wide."""
    from anatomy_models.anatomy import Anatomy
    from anatomy_models.volume import Volume

    layers = int(round(thickness_mm / 2.0))
    return Anatomy(ct=Volume.from_spacing(np.zeros((60, layers, 60), np.int16), (4, 2, 4),
                                          origin=(-118, -(layers - 1), -118)))


def _needed_tube_current_ma(kvp: float, water_mm: float) -> float:
    """Tube current during a pulse (mA) that gives the detector behind ``water_mm`` of water its target kerma per
    frame at ``kvp``, from the definitions: tube output, inverse square, Beer-Lambert through the spectrum, the
    grid."""
    transmission = Grid().primary_transmission * np.exp(-beam(kvp).line_integral(water_mm=water_mm))
    detector_ngy_per_mas = tube_output_ugy_per_mas(kvp) * (1000.0 / CArm().source_to_detector_mm) ** 2 * 1e3
    return Technique().aec_target_ngy / (detector_ngy_per_mas * transmission) / AEC_PULSE_SECONDS


@pytest.mark.parametrize("water_mm", [100.0, 260.0, 440.0])
def test_the_exposure_control_climbs_its_kv_ma_curve_with_the_patient(water_mm):
    """The exposure control's curve (dose module docstring, 12) on water slabs: a thin patient stays at the bottom
    (70 kVp); a thicker one settles on the first kVp step at which the current the target needs is within the
    curve's, the detector getting its target per frame; past the top (120 kVp, 40 mA pulses) the detector gets
    less than the target, and the frame's spectrum is the chosen kVp's."""
    slab, carm = _water_slab(water_mm), CArm()
    technique = shot_technique(slab, carm, "pulse")
    kvp, current_ma = technique.kvp, technique.mas_per_frame / AEC_PULSE_SECONDS
    exposure = shot_exposure(slab, carm, "pulse")
    behind_ngy = exposure.detector_air_kerma_ngy * Grid().primary_transmission * np.exp(
        -beam(kvp).line_integral(water_mm=water_mm))
    assert exposure.kvp == kvp and exposure.mas == pytest.approx(technique.mas_per_frame)
    needed = _needed_tube_current_ma(kvp, water_mm)
    if water_mm == 100.0:
        assert kvp == AEC_KVP_STEPS[0] and needed < AEC_CURVE_TUBE_CURRENT_MA[0]
    if water_mm == 440.0:
        assert kvp == AEC_KVP_STEPS[-1] and needed > AEC_CURVE_TUBE_CURRENT_MA[1]
        assert current_ma == pytest.approx(AEC_CURVE_TUBE_CURRENT_MA[1])
        assert behind_ngy < 0.9 * Technique().aec_target_ngy
        return
    assert needed <= curve_tube_current_ma(kvp) and current_ma == pytest.approx(needed, rel=0.03)
    if kvp > AEC_KVP_STEPS[0]:
        assert 70.0 < kvp < 120.0
        below = kvp - 5.0
        assert _needed_tube_current_ma(below, water_mm) > curve_tube_current_ma(below)
    assert behind_ngy == pytest.approx(Technique().aec_target_ngy, rel=0.03)


def test_the_exposure_control_raises_the_kvp_through_the_pelvis_and_the_dose_per_frame_falls(small_spine):
    """The built-in patient: AP at L4-L5, the calibration's pose, stays at 80 kVp (so the published rates hold,
    test_live_fluoroscopy_of_the_lumbar_spine_gives_the_published_dose_rates); a lateral of L5 climbs to 100 kVp
    or more, where its reference air kerma per frame is under two thirds of what the exposure control fixed at
    80 kVp gives; a DSA run there keeps the fluoroscopy's kVp, with the DSA target and no rate limit."""
    from simulator.imaging.carm import lateral

    front = CArm(isocenter=tuple(small_spine.landmark("L4-L5.interlaminar_window.center")))
    side = lateral(small_spine, "L5")
    assert shot_technique(small_spine, front, "pulse").kvp == 80.0
    automatic = shot_exposure(small_spine, side, "pulse")
    fixed = shot_exposure(small_spine, side, "pulse", Technique(automatic_kvp=False))
    assert automatic.kvp >= 100.0 and fixed.kvp == 80.0
    assert automatic.reference_air_kerma_mgy < 0.67 * fixed.reference_air_kerma_mgy
    dsa = shot_technique(small_spine, side, "dsa")
    assert dsa.kvp == automatic.kvp and dsa.kerma_rate_limit_mgy_per_min is None
    assert dsa.aec_target_ngy == dsa_target_ngy()


def test_past_the_top_of_its_curve_the_image_holds_the_photons_the_tube_gave():
    """A body too thick for the exposure control (45 cm of water, a heavy patient's lateral through the pelvis):
    it stops at the top of its curve, the detector gets less than its target, and the image's noise is that of
    the photons that did arrive (Poisson: the log image's variance is one over the counts behind the water)."""
    water = Anatomy(ct=Volume.from_spacing(np.zeros((30, 113, 30), np.int16), (4, 4, 4), origin=(-58, -224, -58)))
    carm = CArm(detector_shape="square", detector_pixels=128)
    run = shot_technique(water, carm, "pulse")
    assert run.kvp == AEC_KVP_STEPS[-1]
    assert run.mas_per_frame == pytest.approx(curve_tube_current_ma(AEC_KVP_STEPS[-1]) * AEC_PULSE_SECONDS)
    physics = DetectorModel.flat_panel(blur_mm=0.0, scatter=False, grid=NO_GRID)
    image = render_fluoro(water, carm, dose=run, detector=physics, seed=1)
    centre = (slice(54, 74), slice(54, 74))
    p = float(image.line_integrals[centre].mean())
    behind_ngy = image.exposure.detector_air_kerma_ngy * np.exp(-p)
    assert behind_ngy < 0.8 * run.aec_target_ngy, behind_ngy
    counts = image.metadata["quanta_per_pixel"] * np.exp(-p)
    # Poisson's 1 / counts (the detector has no blur here).
    poisson = quantum_noise_log(np.full(1, np.exp(-p), np.float32), image.metadata["quanta_per_pixel"],
                                detector=physics, pixel_size_mm=carm.pixel_size_mm)
    assert image.measured[centre].var() == pytest.approx(float(poisson[0]) ** 2, rel=0.15), counts
