"""Analytic test objects: voxelised with exact-ish partial volumes, and their true chord lengths."""

from __future__ import annotations

import numpy as np

from anatomy_models.volume import Volume


def grid(n: int, spacing: float, centre=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Voxel-centre coordinates (n, n, n, 3) and the origin of an n^3 grid centred on ``centre``."""
    axis = (np.arange(n) - (n - 1) / 2.0) * spacing
    origin = np.asarray(centre, dtype=np.float64) + axis[0]
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1) + np.asarray(centre)
    return points, origin


def partial_volume(inside, points: np.ndarray, spacing: float, distance, sub: int = 6) -> np.ndarray:
    """Fraction of each voxel inside a body: ``inside(p)`` tests points, ``distance(p)`` (mm, signed)
    picks the voxels near the surface that get supersampled ``sub``^3 times."""
    fraction = inside(points).astype(np.float64)
    near = np.abs(distance(points)) < spacing
    centres = points[near]
    offsets = ((np.arange(sub) + 0.5) / sub - 0.5) * spacing
    count = np.zeros(len(centres))
    for dx in offsets:
        for dy in offsets:
            for dz in offsets:
                count += inside(centres + np.array([dx, dy, dz]))
    fraction[near] = count / sub**3
    return fraction


def sphere_volume(n: int, spacing: float, radius: float, centre=(0.0, 0.0, 0.0), value: float = 0.02) -> Volume:
    points, origin = grid(n, spacing)
    c = np.asarray(centre, dtype=np.float64)
    fraction = partial_volume(lambda p: np.sum((p - c) ** 2, axis=-1) <= radius**2, points, spacing,
                              lambda p: np.linalg.norm(p - c, axis=-1) - radius)
    return Volume.from_spacing((fraction * value).astype(np.float32), (spacing,) * 3, origin=origin)


def sphere_chords(source: np.ndarray, directions: np.ndarray, radius: float, centre=(0.0, 0.0, 0.0)):
    """Chord length (mm) of rays source + t d through a sphere, and the impact parameter / radius."""
    w = source - np.asarray(centre, dtype=np.float64)
    b = directions @ w
    discriminant = b * b - (w @ w - radius**2)
    chord = 2.0 * np.sqrt(np.maximum(discriminant, 0.0))
    impact = np.sqrt(np.maximum(radius**2 - np.maximum(discriminant, 0.0), 0.0)) / radius
    return chord, impact


def z_cylinder_volume(n: int, spacing: float, radius: float, x: float = 0.0, y: float = 0.0, value: float = 0.02) -> Volume:
    """A cylinder along z (through the whole grid) of ``radius`` around (x, y)."""
    points, origin = grid(n, spacing)
    axis_point = np.array([x, y])
    fraction = partial_volume(lambda p: np.sum((p[..., :2] - axis_point) ** 2, axis=-1) <= radius**2, points, spacing,
                              lambda p: np.linalg.norm(p[..., :2] - axis_point, axis=-1) - radius)
    return Volume.from_spacing((fraction * value).astype(np.float32), (spacing,) * 3, origin=origin)


def finite_cylinder_chords(source, directions, start, axis, length, radius):
    """Chord length (mm) of unit rays through the cylinder from ``start`` along unit ``axis``."""
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    w = np.asarray(source, dtype=np.float64) - np.asarray(start, dtype=np.float64)
    along_d = directions @ axis
    along_w = w @ axis
    d_perp = directions - along_d[..., None] * axis
    w_perp = w - along_w * axis
    a = np.sum(d_perp**2, axis=-1)
    b = d_perp @ w_perp
    c = w_perp @ w_perp - radius**2
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(b * b - a * c, 0.0))
        t0 = np.where(a > 1e-14, (-b - root) / a, np.where(c <= 0, -np.inf, np.inf))
        t1 = np.where(a > 1e-14, (-b + root) / a, np.where(c <= 0, np.inf, -np.inf))
        ta = -along_w / along_d
        tb = (length - along_w) / along_d
    parallel = np.abs(along_d) < 1e-14
    inside_caps = (along_w >= 0) & (along_w <= length)
    low = np.where(parallel, np.where(inside_caps, -np.inf, np.inf), np.minimum(ta, tb))
    high = np.where(parallel, np.where(inside_caps, np.inf, -np.inf), np.maximum(ta, tb))
    return np.maximum(np.minimum(t1, high) - np.maximum(t0, low), 0.0)
