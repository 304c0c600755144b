"""Scripted attempts for scoring tests: the expert's, a novice's, and unsafe ones that end where a
complication happens. Built from the planner and the anatomy's labels, never from coordinates, so
they follow the anatomy when the spine model improves."""

from __future__ import annotations

import numpy as np

from simulator.case.planner import (EXPERT_CONTRAST_ML, EXPERT_INJECTATE, expert_actions, find_trajectory,
                                    plan_trajectory)
from simulator.case.targets import UNSAFE_GROUPS, UNSAFE_TISSUES
from simulator.session.fold import READING_OF_PATTERN, Session

# The novice's live runs on the depth view, s each (two of them).
LIVE_RUN_S = 15.0


class Script:
    """Actions of an attempt, with a clock, applied to ``session`` as they are written (so a script can
    read where the needle is)."""

    def __init__(self, session: Session, pace_s: float = 3.0) -> None:
        self.session = session
        self.actions: list[dict] = []
        self.t = 0.0
        self.pace_s = pace_s  # seconds between actions unless an action says otherwise

    def add(self, kind: str, after_s: float | None = None, **fields) -> Script:
        self.t = round(self.t + (self.pace_s if after_s is None else after_s), 3)
        action = {"type": kind, "t": self.t} | fields
        self.session.apply(action)
        self.actions.append(action)
        return self

    def advance_to(self, depth_mm: float) -> Script:
        """Advance (or withdraw) the needle to ``depth_mm``."""
        change = round(depth_mm - self.session.state.needle.depth_mm, 3)
        if change > 0:
            return self.add("advance", mm=change)
        return self.add("withdraw", mm=-change) if change < 0 else self

    def view(self, index: int) -> Script:
        """Set the C-arm to the target's view ``index`` (0 alignment, 1 trajectory, 2 depth) and shoot."""
        return self.add("set_carm", **self.session.target.views[index].to_json()).add("fluoro_shot", 1.0)

    def place(self, entry, direction) -> Script:
        return self.add("place_needle", entry=[float(v) for v in entry], direction=[float(v) for v in direction])

    def contrast(self, ml: float = 1.0, mode: str | None = None) -> Script:
        mode = mode or ("dsa" if self.session.scenario.imaging.dsa else "live")
        return self.add("inject_contrast", ml=ml).add("fluoro_shot", 0.5, mode=mode, seconds=3.0)

    def read(self) -> Script:
        """Name the last contrast's pattern as it is (a trainee who reads the images right)."""
        pattern = self.session.state.injections[-1].pattern
        return self.add("read_contrast", 2.0, reading=READING_OF_PATTERN[pattern])

    def medication(self) -> Script:
        """The expert's injectate for the procedure (:data:`EXPERT_INJECTATE`) where the needle is."""
        ml, agent = EXPERT_INJECTATE[self.session.scenario.procedure]
        return self.add("inject_medication", ml=ml, agent=agent)


def expert_log(session: Session) -> list[dict]:
    """The planner's expert actions (``session`` only supplies the target and tracer)."""
    trajectory = plan_trajectory(session.tracer, session.target, session.spec)
    return expert_actions(session.scenario, session.target, trajectory)


def structure_points(session: Session, group: str, near: np.ndarray) -> np.ndarray:
    """Centres of the voxels of ``group``, nearest to ``near`` first (LPS mm)."""
    tracer = session.tracer
    points = tracer.volume.voxel_to_world(np.argwhere(np.isin(tracer.codes, tracer.codes_in_group(group))))
    return points[np.argsort(np.linalg.norm(points - near, axis=1), kind="stable")]


def path_to(session: Session, points: np.ndarray, *, cone_deg: float = 30.0, allow: tuple[str, ...] = (),
            root_clearance_mm: float = 2.0, max_depth_mm: float | None = None, on_bone: bool = False,
            aimed_from: np.ndarray | None = None, tries: int = 60):
    """The best textbook-cone path to the first of ``points`` one reaches, allowed to end in (and
    cross) the groups or tissues in ``allow``. With ``aimed_from`` (a skin point, LPS mm) the cone of each point is
    the one straight line from there instead: a needle entered there and aimed at the point."""
    groups = tuple(g for g in UNSAFE_GROUPS if g not in allow)
    tissues = tuple(t for t in UNSAFE_TISSUES if t not in allow)
    for point in np.atleast_2d(np.asarray(points, float))[:tries]:
        axis = session.target.textbook_direction if aimed_from is None else point - aimed_from
        path = find_trajectory(session.tracer, point, axis, cone_deg if aimed_from is None else 0.0,
                               max_depth_mm=max_depth_mm or session.spec.length_mm - 5.0, avoid_groups=groups,
                               avoid_tissues=tissues, root_clearance_mm=root_clearance_mm, on_bone=on_bone)
        if path is not None:
            return path
    raise AssertionError(f"no path to any of {np.atleast_2d(points)[:3]} ...")


def intrathecal_path(session: Session):
    """A transforaminal needle aimed too medially: entered where the planned path enters (the case's own approach,
    so it shows on AP as the same oblique needle) and aimed at the dural sac's CSF, the voxel it can reach least off
    the planned direction first. It is the classic error the AP view guards against, the tip medial to the
    pedicle's 6 o'clock. On this model the lamina and the inferior articular process wall the sac behind the
    foramen from every direction of the posterior cone, so the shaft reaches it over the lamina's edge, not through
    the foramen itself."""
    planned = plan_trajectory(session.tracer, session.target, session.spec)
    points = structure_points(session, "dural_sac.csf", session.target.point)
    reach = np.linalg.norm(points - planned.entry, axis=1)
    points = points[reach < session.spec.length_mm - 5.0]
    off_planned = (points - planned.entry) @ planned.direction / np.linalg.norm(points - planned.entry, axis=1)
    return path_to(session, points[np.argsort(-off_planned, kind="stable")], allow=("dural_sac",),
                   aimed_from=planned.entry, tries=len(points))


# Directions to step off the target point in: caudal, cranial, dorsal, lateral, ..., then the diagonals.
_DIRECTIONS = [(0, 0, -1), (0, 0, 1), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, -1, 0)] + [
    (a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if abs(a) + abs(b) + abs(c) > 1]


def offset_point(session: Session, distance_mm: float) -> np.ndarray:
    """A point ``distance_mm`` from the target that a safe path reaches (tried in a fixed order of
    directions: caudal, cranial, dorsal, lateral, ..., then the diagonals)."""
    target = session.target.point
    tracer = session.tracer
    for direction in _DIRECTIONS:
        point = target + distance_mm * np.asarray(direction, float) / np.linalg.norm(direction)
        # Well clear of the sac and the roots, so that the novice's tip is imprecise, not unsafe.
        if min(tracer.distance_to(("dural_sac",), point[None])[0], tracer.nerve_root_distance(point[None])[0]) < 2.0:
            continue
        try:
            path_to(session, point, cone_deg=25.0)
        except AssertionError:
            continue
        return point
    raise AssertionError("no safe point at that distance")


def competent_log(session: Session, off_mm: float = 3.0) -> list[dict]:
    """A safe, sound attempt short of the expert's economy: slower, one extra alignment image, a first
    aim redirected twice, more images on the way in, the tip in the target zone ``off_mm`` from the
    target point, the contrast test under live fluoroscopy (no DSA) read right, the spread on AP, the
    injectate."""
    script = Script(session, pace_s=8.0).view(0).view(0).view(1)
    final = zone_path(session, off_mm)
    script.place(final.entry, final.direction)
    script.add("redirect", aim=[float(v) for v in final.tip + np.array((0.0, 0.0, 6.0))]).add("fluoro_shot")
    script.add("redirect", direction=[float(v) for v in final.direction]).add("fluoro_shot")
    for fraction in (0.4, 0.7):
        script.advance_to(fraction * final.depth_mm).add("fluoro_shot")
    script.view(2).advance_to(final.depth_mm).add("fluoro_shot")
    if session.scenario.procedure == "interlaminar_epidural":
        script.add("check_loss_of_resistance")
    script.contrast(final_ml(session), mode="live").read().view(0)
    return script.medication().add("finish").actions


def zone_path(session: Session, distance_mm: float):
    """A safe path whose tip ends in the target's acceptance zone about ``distance_mm`` from the target
    point (tried in offset_point's order of directions; on bone for a bone target)."""
    target, tracer = session.target, session.tracer
    for direction in _DIRECTIONS:
        point = target.point + distance_mm * np.asarray(direction, float) / np.linalg.norm(direction)
        structure = tracer.structure_at(point)
        if not target.on_bone and not target.zone.contains(point, structure, tracer.tissue_of(structure)):
            continue
        try:
            path = path_to(session, point, cone_deg=25.0, on_bone=target.on_bone)
        except AssertionError:
            continue
        structure = tracer.structure_at(path.tip)
        if target.zone.contains(path.tip, structure, tracer.tissue_of(structure)):
            return path
    raise AssertionError(f"no safe path into the target zone {distance_mm} mm from the target point")


def final_ml(session: Session) -> float:
    """The expert's contrast volume for the procedure."""
    return EXPERT_CONTRAST_ML[session.scenario.procedure]


def novice_log(session: Session, off_mm: float = 6.0) -> list[dict]:
    """Many shots (24), several redirections, the last advance watched under long live runs on the depth view
    (30 s: continuous screening, the habit that gives a trainee's dose, clinical.md §3 [S63]), a tip
    ``off_mm`` from the target, contrast on a single pulse (``session`` is a fresh session the script is
    played on)."""
    script = Script(session)
    for _ in range(4):
        script.view(0)
    script.view(1)
    point = offset_point(session, off_mm)
    final = path_to(session, point, cone_deg=25.0)
    script.place(final.entry, final.direction)
    aims = [final.tip + np.array(shift) for shift in ((0, 0, 12.0), (8.0, 0, 0), (0, 0, -8.0))]
    for aim in aims:
        script.add("advance", mm=round(0.3 * final.depth_mm, 3)).add("fluoro_shot", 1.0).add("fluoro_shot", 1.0)
        script.add("redirect", 5.0, aim=[float(v) for v in aim]).add("fluoro_shot", 1.0)
    script.add("redirect", 5.0, direction=[float(v) for v in final.direction]).add("fluoro_shot", 1.0)
    for fraction in (0.5, 0.8):
        script.advance_to(fraction * final.depth_mm).add("fluoro_shot", 1.0).add("fluoro_shot", 1.0)
    script.view(2).add("fluoro_shot", 1.0, mode="live", seconds=LIVE_RUN_S)
    script.advance_to(final.depth_mm).add("fluoro_shot", 1.0, mode="live", seconds=LIVE_RUN_S).view(0)
    script.add("inject_contrast", ml=0.5).add("fluoro_shot", 20.0)
    return script.add("finish").actions
