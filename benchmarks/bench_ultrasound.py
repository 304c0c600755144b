"""Ultrasound: B-mode frames per second on two cores, and the share of a frame spent resampling.

A 256 x 256 curvilinear frame (3.5 MHz, 80 mm) of the built-in spine in the paramedian sagittal
oblique view at L4-L5, rendered for a new probe pose every frame (the full tissue pass: the probe
slides and tilts a little between frames), and for a needle move on a still probe (the needle
composited on the cached tissue frame), and with colour Doppler over a box; each tissue frame is two compounded frames with noise and
reverberation (issue 17). Baselines from the same run: scipy's trilinear
resampling of one channel (ln Z) at the frame's sample points (the plain-numpy cost of just
resampling the plane), and one ``np.sum`` over as many float32 values as the frame reads voxel
records. The resampling share is a numba kernel doing only the frame's trilinear class-map reads.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange
from scipy import ndimage

from anatomy_models.store import load_anatomy
from benchmarks.measure import Measurement, best_time
from simulator.imaging.doppler import DopplerBox, colour_doppler, vessel_flow
from simulator.imaging.probe import standard_view
from simulator.imaging.ultrasound import _scan_for, _scan_lines, acoustic_maps, render_ultrasound
from simulator.needle.shaft import Needle

FRAME_RATE_GOAL = 60.0  # frames per second on two cores, 256 x 256 (issue 17; issue 7 asked 30)


@njit(parallel=True, cache=True, fastmath=True)
def _resample_only(voxels, world_to_index, ln_z, origins, directions, sample_mm, out):
    """The frame's trilinear class-map reads and ln Z blend, nothing else (the resampling share)."""
    lines, samples = out.shape
    ni, nj, nk = voxels.shape[0], voxels.shape[1], voxels.shape[2]
    for line in prange(lines):
        for m in range(samples):
            depth = (m + 0.5) * sample_mm
            px = origins[line, 0] + depth * directions[line, 0]
            py = origins[line, 1] + depth * directions[line, 1]
            pz = origins[line, 2] + depth * directions[line, 2]
            fi = world_to_index[0, 0] * px + world_to_index[0, 1] * py + world_to_index[0, 2] * pz + world_to_index[0, 3]
            fj = world_to_index[1, 0] * px + world_to_index[1, 1] * py + world_to_index[1, 2] * pz + world_to_index[1, 3]
            fk = world_to_index[2, 0] * px + world_to_index[2, 1] * py + world_to_index[2, 2] * pz + world_to_index[2, 3]
            i0, j0, k0 = math.floor(fi), math.floor(fj), math.floor(fk)
            if i0 < 0 or j0 < 0 or k0 < 0 or i0 + 1 >= ni or j0 + 1 >= nj or k0 + 1 >= nk:
                continue
            total = 0.0
            for corner in range(8):
                cx, cy, cz = corner & 1, (corner >> 1) & 1, (corner >> 2) & 1
                w = ((fi - i0) if cx else 1.0 - (fi - i0)) * ((fj - j0) if cy else 1.0 - (fj - j0)) * ((fk - k0) if cz else 1.0 - (fk - k0))
                c = voxels[np.int64(i0) + cx, np.int64(j0) + cy, np.int64(k0) + cz]
                total += w * (ln_z[np.int64(c[0])] + c[1] + c[2] + c[3])
            out[line, m] = total


def run() -> list[Measurement]:
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    anatomy = load_anatomy("default")
    probe = standard_view(anatomy, "paramedian-sagittal-oblique", "L4-L5", "left", image_shape=(256, 256))
    render_ultrasound(anatomy, probe)  # compile and build the acoustic maps
    maps = acoustic_maps(anatomy)
    poses = [probe.moved(slide_mm=0.5 * k, tilt_deg=0.2 * k) for k in range(12)]
    counter = iter(range(10**9))

    def new_pose_frame() -> None:
        render_ultrasound(anatomy, poses[next(counter) % len(poses)], seed=next(counter))

    frame = best_time(new_pose_frame, repeats=20)
    numba.set_num_threads(1)
    frame_one_core = best_time(new_pose_frame, repeats=20)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    entry = probe.position - 30.0 * probe.lateral          # in plane, from the caudal end of the probe
    target = anatomy.landmark("L4-L5.interlaminar_window.center")
    needles = [Needle(entry=entry, direction=target - entry, depth_mm=20.0 + k) for k in range(8)]

    def needle_frame() -> None:
        render_ultrasound(anatomy, probe, needles[next(counter) % len(needles)])

    needle = best_time(needle_frame, repeats=20)
    rows, cols = render_ultrasound(anatomy, probe).pixels.shape
    box = DopplerBox(rows // 4, rows, cols // 4, 3 * cols // 4)
    vessel_flow(anatomy)

    def doppler_frame() -> None:
        colour_doppler(anatomy, render_ultrasound(anatomy, poses[next(counter) % len(poses)], seed=next(counter)), box)

    doppler = best_time(doppler_frame, repeats=20)

    scan = _scan_for(anatomy, probe)
    origins, directions = _scan_lines(probe, scan)
    samples = origins.shape[0] * scan.samples
    out = np.zeros((origins.shape[0], scan.samples), dtype=np.float32)
    resample = best_time(lambda: _resample_only(maps.voxels, maps.world_to_index, maps.ln_impedance, origins,
                                                directions, scan.sample_mm, out), repeats=20)
    depths = (np.arange(scan.samples) + 0.5) * scan.sample_mm
    points = origins[:, None, :] + depths[None, :, None] * directions[:, None, :]
    index = points.reshape(-1, 3) @ maps.world_to_index[:, :3].T + maps.world_to_index[:, 3]
    ln_z_volume = maps.ln_impedance[maps.voxels[..., 0].astype(np.int64)]
    scipy_resample = best_time(lambda: ndimage.map_coordinates(ln_z_volume, index.T, order=1, prefilter=False), repeats=5)
    values = np.ones(samples * 8, dtype=np.float32)
    one_sum = best_time(lambda: np.sum(values), repeats=20)
    return [
        Measurement("frames per second, new pose (256x256)", 1.0 / frame, FRAME_RATE_GOAL, "fps",
                    "goal of issue 17", goal_min=1.0),
        Measurement("frames per second, new pose, one core", 1.0 / frame_one_core, FRAME_RATE_GOAL, "fps",
                    "goal of issue 17 (on two cores)"),
        Measurement("frames per second, needle move (256x256)", 1.0 / needle, FRAME_RATE_GOAL, "fps",
                    "goal of issue 17", goal_min=1.0),
        Measurement("colour Doppler frame (new pose, box 3/4 x 1/2) vs B-mode", doppler * 1e3, frame * 1e3, "ms",
                    "the B-mode frame", goal_max=2.0),
        Measurement("frame (new pose) vs scipy trilinear of the plane", frame * 1e3, scipy_resample * 1e3, "ms",
                    "scipy map_coordinates, one channel"),
        Measurement("frame (new pose) vs np.sum of 8 values per sample", frame * 1e3, one_sum * 1e3, "ms",
                    "np.sum"),
        Measurement("share of the frame spent resampling", resample * 1e3, frame * 1e3, "ms", "the frame",
                    goal_max=0.5),
    ]
