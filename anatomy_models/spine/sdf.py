"""Signed distance functions: primitives placed by frames, smooth combinations, evaluation on a grid.

A shape answers ``sdf(x, y, z)`` for world points (LPS mm, broadcastable float arrays): negative
inside, positive outside, roughly the distance to the surface in mm. Every shape also knows an
axis-aligned world box outside which it is certainly positive, so a grid is only evaluated where a
shape can be. Distances are exact for boxes and capsules and close for ellipsoids and blends; the
generator needs the sign everywhere and the distance only within a few millimetres of a surface
(cortical shell, blend radius).

Examples
--------
>>> ball = Primitive(Frame.at((0, 0, 0)), ellipsoid((10, 10, 10)), (10, 10, 10))
>>> float(ball.sdf(np.float32(15.0), np.float32(0.0), np.float32(0.0)))
5.0
>>> grid = Grid((21, 21, 21), origin=(-10, -10, -10), spacing=1.0)
>>> voxels = int((grid.evaluate(ball)[1] < 0).sum())
>>> abs(voxels - 4 / 3 * np.pi * 10 ** 3) < 0.02 * 4 / 3 * np.pi * 10 ** 3   # the ball's volume in mm^3
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

# The value of "far outside": what an sdf buffer holds where no shape was evaluated.
FAR_MM = np.float32(1.0e4)

LocalSdf = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def f32(value: float) -> np.float32:
    return np.float32(value)


# ----------------------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class Frame:
    """A rigid frame: ``origin`` (LPS mm) and ``rotation`` whose columns are the local u, v, w axes."""

    origin: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    @classmethod
    def at(cls, origin: Sequence[float], rotation: np.ndarray | None = None) -> Frame:
        return cls(np.asarray(origin, dtype=np.float64), np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64))

    @classmethod
    def from_axes(cls, origin: Sequence[float], u: Sequence[float], v: Sequence[float]) -> Frame:
        """A frame whose u axis is ``u`` and whose v axis is ``v`` made orthogonal to it (w = u x v)."""
        u = np.asarray(u, dtype=np.float64)
        u = u / np.linalg.norm(u)
        v = np.asarray(v, dtype=np.float64)
        v = v - u * np.dot(u, v)
        v = v / np.linalg.norm(v)
        return cls(np.asarray(origin, dtype=np.float64), np.column_stack([u, v, np.cross(u, v)]))

    def to_local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local coordinates (mm) of world points given as broadcastable arrays."""
        dx, dy, dz = x - f32(self.origin[0]), y - f32(self.origin[1]), z - f32(self.origin[2])
        r = self.rotation.astype(np.float32)
        return (r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz,
                r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz,
                r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz)

    def point(self, local: Sequence[float]) -> np.ndarray:
        """World position (mm) of a point given in this frame."""
        return self.origin + self.rotation @ np.asarray(local, dtype=np.float64)

    def vector(self, local: Sequence[float]) -> np.ndarray:
        """World direction of a vector given in this frame."""
        return self.rotation @ np.asarray(local, dtype=np.float64)


# --------------------------------------------------------------------------------- local sdfs
def ellipse_estimate(k0: np.ndarray, k1: np.ndarray, smallest_radius: np.float32 | np.ndarray) -> np.ndarray:
    """Quilez's ellipse/ellipsoid distance estimate ``k0 (k0 - 1) / k1``, made exact at the centre.

    ``k0`` is the radius-normalised length of the point, ``k1`` the radius^2-normalised one. At the
    centre the estimate is 0/0; there (and inside generally) it is bounded by ``(k0 - 1) r_min``.
    """
    # In place on as few temporaries as it takes: the generator evaluates this over millions of voxels
    # for every muscle, vessel and bone part (a fifth of a 1 mm patient's generation time).
    below = k0 - f32(1.0)
    estimate = np.asarray(k0 * below)  # an array also for one point, to be written in place
    estimate /= np.maximum(k1, f32(1e-9))
    below *= smallest_radius
    np.minimum(estimate, below, out=estimate, where=k0 < 1.0)
    return estimate


def ellipsoid(radii: Sequence[float]) -> LocalSdf:
    """Ellipsoid with semi-axes ``radii`` (mm) centred on the origin (Quilez's bound-corrected estimate)."""
    rx, ry, rz = (f32(r) for r in radii)
    smallest = f32(min(radii))

    def sdf(u, v, w):
        k0 = np.sqrt((u / rx) ** 2 + (v / ry) ** 2 + (w / rz) ** 2)
        k1 = np.sqrt((u / (rx * rx)) ** 2 + (v / (ry * ry)) ** 2 + (w / (rz * rz)) ** 2)
        return ellipse_estimate(k0, k1, smallest)
    return sdf


def rounded_box(half_sizes: Sequence[float], radius: float = 0.0) -> LocalSdf:
    """Box with half sizes (mm) along u, v, w and edges rounded by ``radius`` (mm, inside the box)."""
    hx, hy, hz = (f32(h - radius) for h in half_sizes)
    r = f32(radius)

    def sdf(u, v, w):
        qx, qy, qz = np.abs(u) - hx, np.abs(v) - hy, np.abs(w) - hz
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
        return outside + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0) - r
    return sdf


def elliptic_rod(radius_v: float, radius_w: float, half_length: float, end_radius: float | None = None) -> LocalSdf:
    """A rod along u (length ``2 half_length``) with elliptic cross-section (semi-axes in v, w, mm).

    The ends are rounded with ``end_radius`` (defaults to the smaller semi-axis).
    """
    rv, rw, h = f32(radius_v), f32(radius_w), f32(half_length)
    rounding = f32(min(radius_v, radius_w) if end_radius is None else end_radius)

    def sdf(u, v, w):
        k0 = np.sqrt((v / rv) ** 2 + (w / rw) ** 2)
        k1 = np.sqrt((v / (rv * rv)) ** 2 + (w / (rw * rw)) ** 2)
        across = ellipse_estimate(k0, k1, min(rv, rw)) + rounding
        along = np.abs(u) - h + rounding
        outside = np.sqrt(np.maximum(across, 0) ** 2 + np.maximum(along, 0) ** 2)
        return outside + np.minimum(np.maximum(across, along), 0) - rounding
    return sdf


def tapered_capsule(start: Sequence[float], end: Sequence[float], radius_start: float, radius_end: float) -> LocalSdf:
    """A capsule from ``start`` to ``end`` (mm) whose radius goes linearly from one value to the other."""
    a = np.asarray(start, dtype=np.float32)
    b = np.asarray(end, dtype=np.float32)
    ab = b - a
    length2 = f32(max(float(ab @ ab), 1e-9))
    r0, r1 = f32(radius_start), f32(radius_end)

    def sdf(u, v, w):
        t = np.clip(((u - a[0]) * ab[0] + (v - a[1]) * ab[1] + (w - a[2]) * ab[2]) / length2, 0, 1)
        distance = np.sqrt((u - a[0] - t * ab[0]) ** 2 + (v - a[1] - t * ab[1]) ** 2 + (w - a[2] - t * ab[2]) ** 2)
        return distance - (r0 + (r1 - r0) * t)
    return sdf


def tapered_box(half_length: float, start_half: Sequence[float], end_half: Sequence[float], radius: float) -> LocalSdf:
    """A rounded box along u whose v and w half sizes go linearly from ``start_half`` (u = -half_length)
    to ``end_half`` (u = +half_length), mm. An estimate (exact where the taper is gentle)."""
    h = f32(half_length)
    v0, w0 = (f32(x - radius) for x in start_half)
    v1, w1 = (f32(x - radius) for x in end_half)
    r = f32(radius)

    def sdf(u, v, w):
        t = np.clip((u + h) / (2 * h), 0, 1)
        qx = np.abs(u) - (h - r)
        qy = np.abs(v) - (v0 + (v1 - v0) * t)
        qz = np.abs(w) - (w0 + (w1 - w0) * t)
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
        return outside + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0) - r
    return sdf


def curved_slab(axis_distance: float, inner: float, outer: float, half_angle: float, half_height: float,
                radius: float = 0.0, top_width: float = 1.0, bottom_width: float = 1.0,
                inner_top: float | None = None, outer_top: float | None = None) -> LocalSdf:
    """A slab bent around a vertical axis: the points whose distance from the axis ``(u, v) =
    (axis_distance, 0)`` lies in [inner, outer] (mm), within ``half_angle`` (rad) of the direction
    toward the origin and ``half_height`` (mm) of w = 0. Articular facets are pieces of such shells.
    ``top_width`` and ``bottom_width`` scale the angular width at the top and bottom, and
    ``inner_top`` / ``outer_top`` (mm, default ``inner`` / ``outer``) are the radii at the top, the
    others being those at the bottom: a process that tapers in width and thickness, like the pointed
    tip of a superior articular process.
    """
    a = f32(axis_distance)
    r0, r1, phi, hz, rr = f32(inner), f32(outer), f32(half_angle), f32(half_height), f32(radius)
    r0_top = r0 if inner_top is None else f32(inner_top)
    r1_top = r1 if outer_top is None else f32(outer_top)
    scale_top, scale_bottom = f32(top_width), f32(bottom_width)
    middle = (r0 + r1) / 2

    def sdf(u, v, w):
        du = a - u
        r = np.sqrt(du * du + v * v)
        height = np.clip((w + hz) / (2 * hz), 0, 1)
        low = r0 + (r0_top - r0) * height
        high = r1 + (r1_top - r1) * height
        across = np.abs(r - (low + high) / 2) - ((high - low) / 2 - rr)
        along = (np.abs(np.arctan2(v, du)) - phi * (scale_bottom + (scale_top - scale_bottom) * height)) * middle + rr
        vertical = np.abs(w) - hz + rr
        outside = np.sqrt(np.maximum(across, 0) ** 2 + np.maximum(along, 0) ** 2 + np.maximum(vertical, 0) ** 2)
        return outside + np.minimum(np.maximum(np.maximum(across, along), vertical), 0) - rr
    return sdf


def half_space() -> LocalSdf:
    """The half-space ``w < 0`` of a frame (signed distance ``w``); give it a large extent."""
    return lambda u, v, w: w


# ------------------------------------------------------------------------------------ combining
def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: ``min(a, b)`` with a fillet of about ``k`` mm where they meet.

    The formula's own numbers, to the bit (a cached patient's voxels must not move), also broadcast:

    >>> a, b = np.random.default_rng(1).normal(0.0, 4.0, (2, 40, 50)).astype(np.float32)
    >>> def written_out(a, b, k):
    ...     h = np.clip(0.5 + 0.5 * (b - a) / f32(k), 0, 1)
    ...     return b + (a - b) * h - f32(k) * h * (1 - h)
    >>> all(np.array_equal(smooth_min(x, y, 3.5), written_out(x, y, 3.5)) for x, y in ((a, b), (a[:1], b), (a, b[:, :1])))
    True
    """
    if k <= 0:
        return np.minimum(a, b)
    k = f32(k)
    # b + (a - b) h - k h (1 - h), h = clip(0.5 + 0.5 (b - a) / k, 0, 1), on three arrays, not eight: the
    # bones' boxes hold up to ten million voxels. The same operations in the same order, to the bit.
    h = np.asarray(b - a)
    h *= 0.5
    h /= k
    h += 0.5
    np.clip(h, 0, 1, out=h)
    result = np.asarray(a - b)
    result *= h
    result += b
    fillet = k * h
    fillet *= np.subtract(1, h, out=h)
    result -= fillet
    return result


def smooth_max(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth maximum (smooth intersection), the mirror of :func:`smooth_min`."""
    return -smooth_min(-a, -b, k)


class Shape:
    """Something with a signed distance function and a world box that holds its inside."""

    lower: np.ndarray
    upper: np.ndarray

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def paint(self, buffer: np.ndarray, grid: Grid, box: tuple[slice, slice, slice]) -> None:
        """Lower ``buffer`` (the sdf over ``box`` of ``grid``) to this shape's sdf where it is smaller.

        The whole box is evaluated, not only the shape's own box: a caller that blends shapes passes a
        box grown by the blend radius, where the blend can reach beyond either shape."""
        np.minimum(buffer, self.sdf(*grid.axes(box)), out=buffer)


@dataclass(eq=False)
class Primitive(Shape):
    """A local sdf placed in the world by ``frame``; ``extent`` bounds its inside in local |u|, |v|, |w| (mm)."""

    frame: Frame
    local_sdf: LocalSdf
    extent: Sequence[float]

    def __post_init__(self) -> None:
        e = np.asarray(self.extent, dtype=np.float64)
        corners = np.array([[sx * e[0], sy * e[1], sz * e[2]] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        world = corners @ self.frame.rotation.T + self.frame.origin
        self.lower, self.upper = world.min(axis=0), world.max(axis=0)

    def sdf(self, x, y, z):
        return self.local_sdf(*self.frame.to_local(x, y, z))


@dataclass(eq=False)
class SmoothUnion(Shape):
    """The union of ``parts`` with fillets of ``blend_mm`` where they meet."""

    parts: Sequence[Shape]
    blend_mm: float = 0.0

    def __post_init__(self) -> None:
        self.lower = np.min([p.lower for p in self.parts], axis=0) - self.blend_mm
        self.upper = np.max([p.upper for p in self.parts], axis=0) + self.blend_mm

    def sdf(self, x, y, z):
        result = None
        for part in self.parts:
            d = part.sdf(x, y, z)
            result = d if result is None else smooth_min(result, d, self.blend_mm)
        return result

    def paint(self, buffer, grid, box):
        sub_box = grid.intersect(box, self.lower, self.upper)
        if sub_box is None:
            return
        local = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(sub_box, box))
        own = np.full(grid.box_shape(sub_box), FAR_MM, dtype=np.float32)
        for part in self.parts:
            inner = grid.intersect(sub_box, part.lower - self.blend_mm, part.upper + self.blend_mm)
            if inner is None:
                continue
            part_local = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(inner, sub_box))
            values = np.full(grid.box_shape(inner), FAR_MM, dtype=np.float32)
            part.paint(values, grid, inner)
            own[part_local] = smooth_min(own[part_local], values, self.blend_mm)
        np.minimum(buffer[local], own, out=buffer[local])


@dataclass(eq=False)
class Difference(Shape):
    """``shape`` with ``cut`` removed (smoothly over ``blend_mm``)."""

    shape: Shape
    cut: Shape
    blend_mm: float = 0.0

    def __post_init__(self) -> None:
        self.lower, self.upper = self.shape.lower, self.shape.upper

    def sdf(self, x, y, z):
        return smooth_max(self.shape.sdf(x, y, z), -self.cut.sdf(x, y, z), self.blend_mm)


@dataclass(eq=False)
class Intersection(Shape):
    """The common inside of ``shapes`` (smoothly over ``blend_mm``); boxed by the first shape."""

    shapes: Sequence[Shape]
    blend_mm: float = 0.0

    def __post_init__(self) -> None:
        self.lower = np.max([s.lower for s in self.shapes], axis=0)
        self.upper = np.min([s.upper for s in self.shapes], axis=0)

    def sdf(self, x, y, z):
        result = self.shapes[0].sdf(x, y, z)
        for shape in self.shapes[1:]:
            result = smooth_max(result, shape.sdf(x, y, z), self.blend_mm)
        return result


@dataclass(eq=False)
class Bounded(Shape):
    """``shape`` with a tighter world box [``lower``, ``upper``] (mm) than its own, where the caller knows
    the inside lies: the same distances, evaluated over fewer voxels. The box must hold the whole inside.

    >>> ball = Primitive(Frame.at((0, 0, 0)), ellipsoid((10, 10, 10)), (40, 40, 40))  # a loose extent
    >>> tight = Bounded(ball, np.full(3, -11.0), np.full(3, 11.0))
    >>> grid = Grid((81, 81, 81), origin=(-40, -40, -40), spacing=1.0)
    >>> [int((grid.evaluate(s)[1] < 0).sum()) for s in (ball, tight)] == [int((grid.evaluate(ball)[1] < 0).sum())] * 2
    True
    >>> grid.evaluate(tight)[1].shape
    (23, 23, 23)
    """

    shape: Shape
    box_lower: np.ndarray
    box_upper: np.ndarray

    def __post_init__(self) -> None:
        self.lower = np.maximum(self.shape.lower, np.asarray(self.box_lower, dtype=np.float64))
        self.upper = np.minimum(self.shape.upper, np.asarray(self.box_upper, dtype=np.float64))

    def sdf(self, x, y, z):
        return self.shape.sdf(x, y, z)


# ----------------------------------------------------------------------------------------- grid
@dataclass(frozen=True)
class Grid:
    """An axis-aligned LPS grid: ``shape`` voxels of ``spacing`` mm, voxel (0, 0, 0) centred at ``origin``."""

    shape: tuple[int, int, int]
    origin: tuple[float, float, float]
    spacing: float

    @property
    def affine(self) -> np.ndarray:
        affine = np.eye(4)
        affine[:3, :3] *= self.spacing
        affine[:3, 3] = self.origin
        return affine

    @property
    def full(self) -> tuple[slice, slice, slice]:
        return tuple(slice(0, n) for n in self.shape)  # type: ignore[return-value]

    def box(self, lower: Sequence[float], upper: Sequence[float]) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose centres lie in the world box, or None if none do."""
        return self.intersect(self.full, lower, upper)

    def intersect(self, box: tuple[slice, slice, slice], lower: Sequence[float], upper: Sequence[float]):
        """``box`` narrowed to the voxels whose centres lie in the world box [lower, upper]."""
        origin = np.asarray(self.origin)
        lo = np.ceil((np.asarray(lower) - origin) / self.spacing - 1e-6).astype(int)
        hi = np.floor((np.asarray(upper) - origin) / self.spacing + 1e-6).astype(int) + 1
        slices = []
        for axis, s in enumerate(box):
            start, stop = max(s.start, lo[axis]), min(s.stop, hi[axis])
            if stop <= start:
                return None
            slices.append(slice(int(start), int(stop)))
        return tuple(slices)

    @staticmethod
    def box_shape(box: tuple[slice, slice, slice]) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in box)  # type: ignore[return-value]

    def axes(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World x, y, z of the voxel centres in ``box`` as arrays shaped to broadcast to the box."""
        x = (self.origin[0] + self.spacing * np.arange(box[0].start, box[0].stop)).astype(np.float32)
        y = (self.origin[1] + self.spacing * np.arange(box[1].start, box[1].stop)).astype(np.float32)
        z = (self.origin[2] + self.spacing * np.arange(box[2].start, box[2].stop)).astype(np.float32)
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def evaluate(self, shape: Shape, pad_mm: float = 0.0) -> tuple[tuple[slice, slice, slice], np.ndarray] | tuple[None, None]:
        """The sdf of ``shape`` over its (padded) box: (index box, float32 array), or (None, None) off-grid."""
        box = self.box(shape.lower - pad_mm, shape.upper + pad_mm)
        if box is None:
            return None, None
        buffer = np.full(self.box_shape(box), FAR_MM, dtype=np.float32)
        shape.paint(buffer, self, box)
        return box, buffer


@dataclass(eq=False)
class VerticalTube(Shape):
    """A tube of horizontal elliptic sections whose centre and semi-axes vary with height.

    ``z`` (ascending, mm) are the nodes; ``cx, cy`` the section centre and ``ax, ay`` its semi-axes
    (mm) at each node, linearly interpolated between nodes; the tube is capped at the first and last
    node. Good for structures that run along the body (dural sac, vessels, muscles).
    """

    z: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    ax: np.ndarray
    ay: np.ndarray

    def __post_init__(self) -> None:
        arrays = [np.asarray(a, dtype=np.float64) for a in (self.z, self.cx, self.cy, self.ax, self.ay)]
        self.z, self.cx, self.cy, self.ax, self.ay = arrays
        self.lower = np.array([np.min(self.cx - self.ax), np.min(self.cy - self.ay), self.z[0]])
        self.upper = np.array([np.max(self.cx + self.ax), np.max(self.cy + self.ay), self.z[-1]])

    def sdf(self, x, y, z):
        # Interpolate the sections at z's own shape: on a grid z is a (1, 1, nk) column, so this is
        # one interpolation per slice, broadcast over the slice.
        zf = np.asarray(z, dtype=np.float64).ravel()
        values = [np.interp(zf, self.z, a).astype(np.float32).reshape(np.shape(z)) for a in
                  (self.cx, self.cy, self.ax, self.ay)]
        cx, cy, ax, ay = values[0], values[1], np.maximum(values[2], f32(0.05)), np.maximum(values[3], f32(0.05))
        u, v = x - cx, y - cy
        k0 = np.add((u / ax) ** 2, (v / ay) ** 2)
        k1 = np.add((u / (ax * ax)) ** 2, (v / (ay * ay)) ** 2)
        section = ellipse_estimate(np.sqrt(k0, out=k0), np.sqrt(k1, out=k1), np.minimum(ax, ay))
        caps = np.maximum(f32(self.z[0]) - z, z - f32(self.z[-1]))
        return np.maximum(section, caps, out=section)
