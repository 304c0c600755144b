"""Helpers that script wrong (and right) attempts: find a point of a structure, and put a needle on a
textbook-cone path toward any point, allowing the path to end in what the attempt is meant to hit."""

from __future__ import annotations

import numpy as np

from simulator.case.planner import find_trajectory
from simulator.session.fold import Session


def nearest_points(session: Session, group: str, near: np.ndarray) -> np.ndarray:
    """Centres of the voxels of structure ``group``, nearest to ``near`` first (LPS mm)."""
    tracer = session.tracer
    points = tracer.volume.voxel_to_world(np.argwhere(np.isin(tracer.codes, tracer.codes_in_group(group))))
    return points[np.argsort(np.linalg.norm(points - near, axis=1), kind="stable")]


def place_toward(session: Session, points: np.ndarray, cone_deg: float = 30.0, axis: np.ndarray | None = None,
                 **allow) -> float:
    """Place the needle on the best path within ``cone_deg`` of ``axis`` (the target's textbook direction unless
    given) to the first of ``points`` (shape (3,) or (n, 3)) that one reaches, ``allow`` relaxing
    :func:`simulator.case.planner.find_trajectory`'s safety rules; returns the depth of that point.
    """
    axis = session.target.textbook_direction if axis is None else axis
    for point in np.atleast_2d(np.asarray(points, float))[:40]:
        path = find_trajectory(session.tracer, point, axis, cone_deg,
                               max_depth_mm=session.spec.length_mm, **allow)
        if path is not None:
            session.apply({"type": "place_needle", "t": session.state.t + 1, "entry": path.entry.tolist(),
                           "direction": path.direction.tolist()})
            return path.depth_mm
    raise AssertionError(f"no path to any of {np.atleast_2d(points)[:3]} ...")
