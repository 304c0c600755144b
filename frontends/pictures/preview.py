"""Start views of a scenario: the C-arm poses the case is worked in, with the target drawn on them.

``preview_images`` renders the scenario's starting C-arm view and the target's views in the order
they are used (alignment AP, trajectory oblique, depth lateral or contralateral oblique, see
:mod:`simulator.case.targets`) and marks, with each frame's own projection matrix, the target point, its
acceptance zone, the textbook skin entry and the line between them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anatomy_models.anatomy import Anatomy
from frontends.pictures.overlay import Marker, Segment, save_picture, with_overlay
from scenarios.schema import Scenario
from simulator.case.targets import Target, target_for
from simulator.imaging.carm import CArm
from simulator.imaging.fluoro import render_fluoro
from simulator.needle.trace import tracer_for

TARGET_COLOR = (60, 220, 90)
ZONE_COLOR = (60, 200, 220)
ENTRY_COLOR = (250, 200, 40)


def start_views(scenario: Scenario, target: Target) -> list[tuple[str, CArm]]:
    """(name, C-arm) of the starting pose, then each distinct view of the target."""
    views = [("start " + (scenario.start.carm.setup or "pose"), CArm.at(scenario.start.carm, target.point))]
    for view in target.views:
        if not any(np.allclose(view.carm.projection_matrix, carm.projection_matrix) for _, carm in views):
            views.append((view.name, view.carm))
    return views


def target_marks(target: Target) -> tuple[list[Marker], list[Segment]]:
    """Markers for the target point and zone and the textbook entry, and the line from entry to target; the target's
    dot is drawn last, so that on a view down the needle (the entry over the target: the transforaminal's trajectory
    view, clinical.md §2.2(a)) the entry's cross stands round the target and does not hide it."""
    point = tuple(target.point.tolist())
    markers = [Marker(point, ZONE_COLOR, "ring", target.zone.radius_mm, None)]
    segments = []
    if target.entry_point is not None:
        entry = tuple(target.entry_point.tolist())
        markers.append(Marker(entry, ENTRY_COLOR, "cross", 4.0, "entry"))
        segments.append(Segment(entry, point, ENTRY_COLOR, dashed=True))
    markers.append(Marker(point, TARGET_COLOR, "dot", 1.0, "target"))
    return markers, segments


def preview_images(scenario: Scenario, anatomy: Anatomy, folder: str | Path, *, pixels: int = 512) -> list[Path]:
    """Write one PNG per start view of ``scenario`` into ``folder``; returns their paths."""
    folder = Path(folder)
    target = target_for(scenario, anatomy, tracer_for(anatomy))
    markers, segments = target_marks(target)
    written = []
    for number, (name, carm) in enumerate(start_views(scenario, target), start=1):
        image = render_fluoro(anatomy, carm.with_(detector_pixels=pixels), seed=scenario.seed + number)
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        written.append(save_picture(with_overlay(image, markers, segments), folder / f"{number}-{slug}.png"))
    return written
