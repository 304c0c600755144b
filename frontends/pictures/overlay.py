"""Teaching overlays on fluoroscopy frames: targets, zones and planned paths drawn in colour.

Everything is projected with the frame's own C-arm projection matrix (``FluoroImage.carm``), the one
the DRR used, so a marker sits exactly where its point images. A radius in mm is drawn at the
magnification of its point's depth (source-to-detector over source-to-point distance).

Callouts name a point in words ("the needle"): the text sits on a dark box away from the point,
joined to it by a leader line; each is put where it keeps furthest from the marks, the other
callouts and the frame's edges, so several can share a small frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from anatomy_models.atomic import atomic_path
from simulator.imaging.fluoro import FluoroImage

Shape = Literal["ring", "cross", "dot"]
# JPEG quality of pictures carried in pages: noisy frames compress badly as PNG [ED].


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
    """A straight line between two LPS points (mm), solid or dashed; ``width_px`` None scales with the frame."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    color: tuple[int, int, int]
    dashed: bool = False
    width_px: int | None = None


@dataclass(frozen=True)
class Callout:
    """Words pointing at an LPS point (mm): a label on a dark box with a leader line to a dot."""

    point: tuple[float, float, float]
    text: str
    color: tuple[int, int, int] = (255, 255, 255)


# Directions (screen u, v) a callout's text may sit in from its point, tried in this order.
_CALLOUT_DIRECTIONS = np.array([(1, -1), (-1, -1), (1, 1), (-1, 1), (1, 0), (-1, 0), (0, -1), (0, 1)], dtype=float)


def label_font(size: int) -> ImageFont.FreeTypeFont:
    """The font of overlay labels at ``size`` pixels."""
    return ImageFont.load_default(size=size)


def with_overlay(image: FluoroImage, markers: Sequence[Marker] = (), segments: Sequence[Segment] = (),
                 callouts: Sequence[Callout] = ()) -> Image.Image:
    """The frame as an RGB picture with the markers, segments and callouts drawn on it."""
    carm = image.carm
    picture = Image.fromarray(image.pixels).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(1, carm.detector_pixels // 256)
    for segment in segments:
        (u0, v0), (u1, v1) = carm.project(np.array([segment.start, segment.end]))
        line = segment.width_px or width
        if segment.dashed:
            length = float(np.hypot(u1 - u0, v1 - v0))
            pieces = max(1, int(length // (6 * line)))
            for k in range(0, pieces, 2):
                a, b = k / pieces, min((k + 1) / pieces, 1.0)
                draw.line([(u0 + a * (u1 - u0), v0 + a * (v1 - v0)), (u0 + b * (u1 - u0), v0 + b * (v1 - v0))],
                          fill=segment.color, width=line)
        else:
            draw.line([(u0, v0), (u1, v1)], fill=segment.color, width=line)
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
            draw.text((u + r + 3, v - r - 3), marker.label, fill=marker.color, font=label_font(size), anchor="lb",
                      stroke_width=1, stroke_fill=(0, 0, 0))
    for marker, u, v, r in placed:
        if marker.shape == "ring":
            draw.ellipse([u - r, v - r, u + r, v + r], outline=marker.color, width=width)
        elif marker.shape == "cross":
            draw.line([(u - r, v), (u + r, v)], fill=marker.color, width=width)
            draw.line([(u, v - r), (u, v + r)], fill=marker.color, width=width)
        else:
            draw.ellipse([u - r, v - r, u + r, v + r], fill=marker.color)
    if callouts:
        marks = [(u, v) for _, u, v, _ in placed]
        for segment in segments:
            marks.extend(tuple(p) for p in carm.project(np.array([segment.start, segment.end])))
        picture = _draw_callouts(picture, carm, callouts, marks)
    return picture


def _draw_callouts(picture: Image.Image, carm, callouts: Sequence[Callout], marks: list) -> Image.Image:
    """``picture`` with each callout's box, leader line and dot (module docstring)."""
    size = max(11, carm.detector_pixels // 22)
    font = label_font(size)
    width, height = picture.size
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    anchors = [np.asarray(carm.project(np.asarray(c.point, dtype=np.float64)), dtype=float) for c in callouts]
    avoid = [np.asarray(m, dtype=float) for m in marks]
    reach = 0.16 * min(width, height)
    pad = size * 0.35
    boxes = []
    for callout, anchor in zip(callouts, anchors):
        left, top, right, bottom = draw.textbbox((0, 0), callout.text, font=font)
        text_w, text_h = right - left + 2 * pad, bottom - top + 2 * pad
        best = None
        for direction in _CALLOUT_DIRECTIONS:
            centre = anchor + direction / np.linalg.norm(direction) * (reach + 0.5 * abs(direction[0]) * text_w)
            box = np.array([centre[0] - text_w / 2, centre[1] - text_h / 2, centre[0] + text_w / 2, centre[1] + text_h / 2])
            shift = np.array([max(0.0, 2 - box[0]) - max(0.0, box[2] - width + 2),
                              max(0.0, 2 - box[1]) - max(0.0, box[3] - height + 2)])
            box += np.concatenate([shift, shift])
            middle = 0.5 * (box[:2] + box[2:])
            clearance = min([float(np.linalg.norm(middle - a)) for a in avoid] +
                            [float(np.linalg.norm(middle - 0.5 * (b[:2] + b[2:]))) for b in boxes] + [1e9])
            score = clearance - (0.0 if np.allclose(shift, 0) else 0.25 * reach)
            if best is None or score > best[0] + 1e-6:
                best = (score, box)
        box = best[1]
        boxes.append(box)
        avoid.append(anchor)
        edge = np.clip(anchor, box[:2], box[2:])
        draw.line([tuple(edge), tuple(anchor)], fill=callout.color + (255,), width=max(2, size // 8))
        dot = max(3, size // 4)
        draw.ellipse([anchor[0] - dot, anchor[1] - dot, anchor[0] + dot, anchor[1] + dot], fill=callout.color + (255,),
                     outline=(0, 0, 0, 255))
        draw.rounded_rectangle(box.tolist(), radius=pad, fill=(10, 14, 20, 205), outline=callout.color + (255,))
        draw.text((box[0] + pad - left, box[1] + pad - top), callout.text, fill=callout.color + (255,), font=font)
    return Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB")


def save_picture(picture: Image.Image, path: str | Path) -> Path:
    """Write an overlay picture as PNG (atomically)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        picture.save(temporary, format="PNG")
    return path
