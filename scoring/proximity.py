"""Near misses: how close the needle tip and shaft came to the structures that must not be hit.

For each structure group (dura, spinal cord, nerve roots, arteries, discs) the closest approach over
the whole attempt is measured twice: for the tip along the path it travelled, and for the whole
shaft at every needle position (the shaft of a deep pass lies along everything a shallower one
crossed). Distances come from the tracer's distance maps (one Euclidean distance transform per group,
made once per anatomy and cached, :meth:`simulator.needle.trace.Tracer.distance_to`), so they are the same
distances the session uses for paraesthesia.

Whether a close approach was a near miss depends on the procedure: a transforaminal target lies a few
millimetres from the exiting root and an interlaminar one from the dura, so the expert path itself
comes that close. :func:`is_near_miss` therefore counts an approach as a near miss only if it is
within the group's threshold and clearly closer than the expert path came.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from simulator.needle.contrast import is_artery
from simulator.needle.trace import DISTANCE_MARGIN_MM, NERVE_ROOT_GROUPS, Tracer
from simulator.session.history import Attempt

# Closer than this to a group is a near miss (mm) [ED]; contact itself is a safety flag. The root
# threshold sits above the 1.5 mm paraesthesia distance of the session (clinical.md §3: ~1-2 mm).
NEAR_MISS_MM = {"dura": 2.0, "cord": 5.0, "roots": 3.0, "arteries": 2.0, "disc": 2.0}
# ... and only if this much closer than the expert path came (mm) [ED].
EXPERT_MARGIN_MM = 1.0
# Shafts are sampled every this many mm.
SHAFT_STEP_MM = 0.5


class NearMiss(BaseModel):
    """Closest approach of the needle to one structure group over the attempt.

    Distances in mm (0 = contact; None = never within the distance map's reach, 20 mm).
    """

    group: str
    label: str
    tip_mm: float | None
    shaft_mm: float | None
    t: float | None
    structure: str | None
    point: tuple[float, float, float] | None
    expert_shaft_mm: float | None = None
    near_miss: bool = False


@dataclass(frozen=True)
class Group:
    name: str
    label: str
    structures: tuple[str, ...]


def structure_groups(tracer: Tracer) -> list[Group]:
    """The groups measured in this anatomy (only those it has)."""
    named = [n for n in tracer.names if n]
    tissue = dict(zip(tracer.names, tracer.tissues))
    arteries = tuple(sorted(n for n in named if tissue[n] == "blood" and is_artery(n)))
    discs = tuple(sorted(n for n in named if tissue[n] in ("disc_annulus", "disc_nucleus")))
    groups = [Group("dura", "dural sac", ("dural_sac",)), Group("cord", "spinal cord and conus", ("spinal_cord",)),
              Group("roots", "nerve roots and ganglia", NERVE_ROOT_GROUPS), Group("arteries", "arteries", arteries),
              Group("disc", "intervertebral discs", discs)]
    return [g for g in groups if g.structures and tracer.codes_in_groups(g.structures).size]


def _shaft_samples(attempt: Attempt) -> tuple[np.ndarray, np.ndarray]:
    points, times = [], []
    for t, needle in attempt.needles():
        n = max(2, int(np.ceil(needle.depth_mm / SHAFT_STEP_MM)) + 1)
        points.append(needle.entry + np.linspace(0.0, needle.depth_mm, n)[:, None] * needle.direction)
        times.append(np.full(n, t))
    if not points:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(points), np.concatenate(times)


def closest_approaches(attempt: Attempt) -> list[NearMiss]:
    """Closest approach of tip and shaft to every structure group of the anatomy."""
    tracer = attempt.session.tracer
    shaft, shaft_times = _shaft_samples(attempt)
    paths = attempt.tip_paths()
    tip = np.concatenate([p for p, _ in paths]) if paths else np.zeros((0, 3))
    # The tip is part of the shaft: where it went between the steps' needles (a redirect's arc about the skin entry),
    # the shaft went too, so its closest approach is never farther than the tip's. The tip's points close the
    # shaft's samples, and one distance lookup serves both.
    tip_from = len(shaft)
    shaft = np.concatenate([shaft, tip])
    shaft_times = np.concatenate([shaft_times] + [times for _, times in paths])
    found = []
    for group in structure_groups(tracer):
        distances = tracer.distance_to(group.structures, shaft) if len(shaft) else np.zeros(0)
        tip_mm = _nearest(distances[tip_from:])[0]
        shaft_mm, index = _nearest(distances)
        point = shaft[index] if index is not None else None
        found.append(NearMiss(
            group=group.name, label=group.label, tip_mm=tip_mm, shaft_mm=shaft_mm,
            t=float(shaft_times[index]) if index is not None else None,
            structure=_nearest_structure(tracer, group, point, shaft_mm) if point is not None else None,
            point=tuple(round(float(v), 3) for v in point) if point is not None else None))
    return found


def _nearest(distances: np.ndarray) -> tuple[float | None, int | None]:
    """The smallest of ``distances`` (mm, rounded to the micrometre) and its index; none if empty or all infinite."""
    if len(distances) == 0:
        return None, None
    index = int(np.argmin(distances))
    if not np.isfinite(distances[index]):
        return None, None
    return round(float(distances[index]), 3), index


def _nearest_structure(tracer: Tracer, group: Group, point: np.ndarray, distance_mm: float | None) -> str | None:
    """The structure of ``group`` nearest to ``point`` (searched in a box just larger than the distance)."""
    if distance_mm is None:
        return None
    reach = distance_mm + 2.0 * float(np.max(tracer.volume.spacing))
    box = tracer.volume.world_to_voxel(np.array([point - reach, point + reach]))
    lower = np.maximum(np.floor(box.min(axis=0)).astype(int), 0)
    upper = np.minimum(np.ceil(box.max(axis=0)).astype(int) + 1, tracer.codes.shape)
    crop = tracer.codes[lower[0]:upper[0], lower[1]:upper[1], lower[2]:upper[2]]
    ijk = np.argwhere(np.isin(crop, tracer.codes_in_groups(group.structures)))
    if len(ijk) == 0:
        return None
    centres = tracer.volume.voxel_to_world(ijk + lower)
    nearest = ijk[np.argmin(np.linalg.norm(centres - point, axis=1))] + lower
    return tracer.names[int(tracer.codes[tuple(nearest)])]


def is_near_miss(approach: NearMiss) -> bool:
    """Whether the shaft came within the group's threshold without touching it, and clearly closer
    than the expert path (if known) came."""
    if approach.shaft_mm is None or approach.shaft_mm <= 0.0:
        return False
    if approach.shaft_mm > NEAR_MISS_MM[approach.group]:
        return False
    expert = approach.expert_shaft_mm if approach.expert_shaft_mm is not None else DISTANCE_MARGIN_MM
    return approach.shaft_mm < expert - EXPERT_MARGIN_MM


def with_expert(approaches: list[NearMiss], expert: list[NearMiss] | None) -> list[NearMiss]:
    """``approaches`` with the expert path's closest approach of each group and the near-miss verdict."""
    expert_by_group = {a.group: a.shaft_mm for a in expert or []}
    result = []
    for approach in approaches:
        updated = approach.model_copy(update={"expert_shaft_mm": expert_by_group.get(approach.group)})
        result.append(updated.model_copy(update={"near_miss": is_near_miss(updated)}))
    return result
