"""The attempt beside the expert path: the planner's safe textbook trajectory, performed by the
planner's reference actions (:mod:`simulator.case.planner`) and measured with the same rulers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from anatomy_models.errors import SpinesimError
from scoring.metrics import Metrics, anatomical_frame, depth_error_mm, measure
from scoring.proximity import NearMiss, closest_approaches
from simulator.case.planner import Trajectory, expert_actions, plan_trajectory
from simulator.session.history import Attempt, replay_attempt


class ExpertComparison(BaseModel):
    """The trainee's final needle against the expert path (None where there is nothing to compare).

    Lengths in mm, angles in degrees, times in s. ``entry_offset`` is the trainee's skin entry minus
    the expert's in the target's anatomical frame (cranial, ventral, lateral; see
    :class:`scoring.metrics.Offset`).
    """

    available: bool
    note: str | None = None
    expert_entry: tuple[float, float, float] | None = None
    expert_direction: tuple[float, float, float] | None = None
    expert_depth_mm: float | None = None
    expert_path_length_mm: float | None = None
    expert_shots: int | None = None
    expert_fluoro_seconds: float | None = None
    expert_dose_area_product_gy_cm2: float | None = None
    expert_time_s: float | None = None
    entry_distance_mm: float | None = None
    entry_offset: tuple[float, float, float] | None = None
    angle_deg: float | None = None
    depth_difference_mm: float | None = None
    path_ratio: float | None = None
    tip_to_plan_mm: float | None = None
    depth_error_to_plan_mm: float | None = None


@dataclass(frozen=True)
class Expert:
    """The expert path of a scenario on an anatomy and its measured reference attempt."""

    trajectory: Trajectory
    attempt: Attempt
    metrics: Metrics
    approaches: list[NearMiss]


def expert_for(attempt: Attempt) -> Expert | None:
    """Plan and perform the expert path of the attempt's scenario (None if no safe path exists)."""
    session = attempt.session
    try:
        trajectory = plan_trajectory(session.tracer, session.target, session.spec)
    except SpinesimError:
        return None
    reference = replay_attempt(attempt.scenario, session.anatomy,
                               expert_actions(attempt.scenario, session.target, trajectory), tracer=session.tracer)
    return Expert(trajectory, reference, measure(reference), closest_approaches(reference))


def compare(attempt: Attempt, metrics: Metrics, expert: Expert | None) -> ExpertComparison:
    """How the attempt's final needle and effort compare with the expert's."""
    if expert is None:
        spec = attempt.session.spec
        return ExpertComparison(available=False, note=f"no safe textbook path reaches the {attempt.session.target.description} "
                                f"with this {spec.length_mm:.0f} mm needle")
    path = expert.trajectory
    fields = dict(available=True, expert_entry=tuple(np.round(path.entry, 3).tolist()), expert_direction=tuple(np.round(path.direction, 5).tolist()),
                  expert_depth_mm=round(path.depth_mm, 2), expert_path_length_mm=expert.metrics.path_length_mm,
                  expert_shots=expert.metrics.fluoro_shots, expert_fluoro_seconds=expert.metrics.fluoro_seconds,
                  expert_dose_area_product_gy_cm2=expert.metrics.dose_area_product_gy_cm2,
                  expert_time_s=expert.metrics.procedure_time_s)
    if expert.metrics.path_length_mm > 0:
        fields["path_ratio"] = round(metrics.path_length_mm / expert.metrics.path_length_mm, 3)
    needle = attempt.final.needle
    if needle is not None:
        frame = anatomical_frame(attempt.scenario, attempt.session.anatomy, attempt.session.target)
        fields.update(
            entry_distance_mm=round(float(np.linalg.norm(needle.entry - path.entry)), 2),
            entry_offset=tuple(np.round(frame @ (needle.entry - path.entry), 2).tolist()),
            angle_deg=round(float(np.degrees(np.arccos(np.clip(np.dot(needle.direction, path.direction), -1, 1)))), 2),
            depth_difference_mm=round(needle.depth_mm - path.depth_mm, 2),
            # Where the safe plan puts the tip is "the point" as much as the target's landmark (its nearest safe
            # reach): the trainee's tip against the plan's, and the depth error beyond the plan's own.
            tip_to_plan_mm=round(float(np.linalg.norm(needle.tip - path.tip)), 3),
            depth_error_to_plan_mm=round(depth_error_mm(attempt.session.target, needle.tip, needle.direction)
                                         - depth_error_mm(attempt.session.target, path.tip, path.direction), 3))
    return ExpertComparison(**fields)

