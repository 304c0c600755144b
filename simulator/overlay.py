"""Teaching overlays on fluoroscopy frames: targets, zones and planned paths drawn in colour.

Everything is projected with the frame's own C-arm projection matrix (``FluoroImage.carm``), the one
the DRR used, so a marker sits exactly where its point images. A radius in mm is drawn at the
magnification of its point's depth (source-to-detector over source-to-point distance).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from anatomy_models.atomic import atomic_path
from simulator.fluoro import FluoroImage

Shape = Literal["ring", "cross", "dot"]


@dataclass(frozen=True)
class Marker:
    """A point to mark: LPS mm, drawn as a ``ring`` of ``radius_mm``, a ``cross`` or a ``dot``."""

    point: tuple[float, float, float]
    color: tuple[int, int, int]
    shape: Shape = "ring"
    radius_mm: float = 2.0
    label: str | None = None


@dataclass(frozen=True)
class Segment:
    """A straight line between two LPS points (mm), solid or dashed."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    color: tuple[int, int, int]
    dashed: bool = False


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def with_overlay(image: FluoroImage, markers: Sequence[Marker] = (), segments: Sequence[Segment] = ()) -> Image.Image:
    """The frame as an RGB picture with the markers and segments drawn on it."""
    carm = image.carm
    picture = Image.fromarray(image.pixels).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(1, carm.detector_pixels // 256)
    for segment in segments:
        (u0, v0), (u1, v1) = carm.project(np.array([segment.start, segment.end]))
        if segment.dashed:
            length = float(np.hypot(u1 - u0, v1 - v0))
            pieces = max(1, int(length // (6 * width)))
            for k in range(0, pieces, 2):
                a, b = k / pieces, min((k + 1) / pieces, 1.0)
                draw.line([(u0 + a * (u1 - u0), v0 + a * (v1 - v0)), (u0 + b * (u1 - u0), v0 + b * (v1 - v0))],
                          fill=segment.color, width=width)
        else:
            draw.line([(u0, v0), (u1, v1)], fill=segment.color, width=width)
    size = max(9, carm.detector_pixels // 40)
    placed = []
    for marker in markers:
        point = np.asarray(marker.point, dtype=np.float64)
        u, v = carm.project(point)
        scale = carm.source_to_detector_mm / float(carm.depth(point)) / carm.pixel_size_mm
        placed.append((marker, u, v, max(marker.radius_mm * scale, 2.0 * width)))
    # Labels first, shapes over them: on a small frame a label must never hide a mark.
    for marker, u, v, r in placed:
        if marker.label:
            draw.text((u + r + 3, v - r - 3), marker.label, fill=marker.color, font=_font(size), anchor="lb",
                      stroke_width=1, stroke_fill=(0, 0, 0))
    for marker, u, v, r in placed:
        if marker.shape == "ring":
            draw.ellipse([u - r, v - r, u + r, v + r], outline=marker.color, width=width)
        elif marker.shape == "cross":
            draw.line([(u - r, v), (u + r, v)], fill=marker.color, width=width)
            draw.line([(u, v - r), (u, v + r)], fill=marker.color, width=width)
        else:
            draw.ellipse([u - r, v - r, u + r, v + r], fill=marker.color)
    return picture


def save_picture(picture: Image.Image, path: str | Path) -> Path:
    """Write an overlay picture as PNG (atomically)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        picture.save(temporary, format="PNG")
    return path
