"""Speckle statistics of the B-mode simulator against fully developed speckle and a compounded scanner.

``python -m benchmarks.speckle_stats``: a block of uniform soft tissue (no texture) under a 6 MHz
linear and a 3.5 MHz curvilinear probe, with and without spatial compounding; prints the grain size
(full width at half maximum of the image's autocorrelation, axial x lateral, mm) and the spread of
the log-compressed speckle (standard deviation of the display level, dB). Fully developed speckle
(one frame, Rayleigh envelope) has 5.57 dB (Burckhardt 1978: 10 log10 of an exponential intensity
has SD 5.57 dB); compounding N uncorrelated frames brings it toward 5.57 / sqrt(N).
"""

from __future__ import annotations

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.structures import LabelTable
from anatomy_models.volume import Volume
from simulator.imaging import ultrasound
from simulator.imaging.probe import Probe
from simulator.imaging.ultrasound import render_ultrasound


def uniform_block(size_mm: int = 80) -> Anatomy:
    """A cube of uniform soft tissue (no texture lattice: speckle alone), 1 mm voxels."""
    table = LabelTable()
    table.add("liver", "soft_tissue")
    shape = (size_mm,) * 3
    return Anatomy(Volume.from_spacing(np.zeros(shape, np.int16), (1, 1, 1)), table,
                   Volume.from_spacing(np.ones(shape, np.uint16), (1, 1, 1)))


def fwhm_px(centred: np.ndarray, axis: int, reach: int = 40) -> float:
    """Full width (pixels) at which the autocorrelation of ``centred`` along ``axis`` falls to one half."""
    n = centred.shape[axis]
    values = np.array([np.mean(np.take(centred, range(k, n), axis) * np.take(centred, range(n - k), axis))
                       for k in range(reach)])
    values = values / values[0]
    below = int(np.argmax(values < 0.5))
    return 2.0 * float(np.interp(0.5, values[below::-1], np.arange(below, -1, -1)))


def speckle_statistics(image, probe: Probe, region: tuple[slice, slice]) -> dict[str, float]:
    """Grain size (axial, lateral FWHM, mm) and the log-compressed SD (dB) of ``region`` of ``image``."""
    grey = image.pixels[region].astype(float)
    level_db = grey / 255.0 * probe.dynamic_range_db
    centred = grey - grey.mean()
    return {"axial_mm": fwhm_px(centred, 0) * image.pixel_mm, "lateral_mm": fwhm_px(centred, 1) * image.pixel_mm,
            "sd_db": float(level_db.std()), "black_share": float(np.mean(grey == 0))}


def probes(block: Anatomy) -> dict[str, tuple[Probe, tuple[slice, slice]]]:
    """The two probes on the block (gain set so nothing clips) and the region measured in each frame."""
    top = block.ct.bounds()[1][1]
    linear = Probe("linear", position=[40, top, 40], axial=[0, -1, 0], lateral=[1, 0, 0], frequency_mhz=6.0,
                   depth_mm=30.0, footprint_mm=38.0, tgc_db_per_cm=2 * 0.5 * 6.0, gain_db=20.0, image_shape=(256, 256))
    convex = Probe("curvilinear", position=[40, top, 40], axial=[0, -1, 0], lateral=[1, 0, 0], frequency_mhz=3.5,
                   depth_mm=60.0, tgc_db_per_cm=2 * 0.5 * 3.5, gain_db=20.0, image_shape=(256, 256))
    return {"linear 6 MHz": (linear, (slice(60, 200), slice(40, 200))),
            "curvilinear 3.5 MHz": (convex, (slice(40, 110), slice(88, 168)))}


def run(frames: tuple[int, ...] = (1, 2)) -> dict[str, dict[str, float]]:
    block = uniform_block()
    results = {}
    for name, (probe, region) in probes(block).items():
        for count in frames:
            ultrasound.COMPOUND_FRAMES, saved = count, ultrasound.COMPOUND_FRAMES
            try:
                block.clear_derived()
                results[f"{name}, {count} frame{'s' if count > 1 else ''}"] = speckle_statistics(
                    render_ultrasound(block, probe), probe, region)
            finally:
                ultrasound.COMPOUND_FRAMES = saved
    return results


if __name__ == "__main__":
    print(f"{'probe, compounded frames':34} {'grain axial x lateral (mm)':>28} {'SD (dB)':>8} {'black':>6}")
    for label, stats in run().items():
        print(f"{label:34} {stats['axial_mm']:>12.2f} x {stats['lateral_mm']:<13.2f} {stats['sd_db']:>8.2f} "
              f"{stats['black_share']:>6.3f}")
    print("fully developed speckle (Rayleigh): 5.57 dB")
