"""What the needle passes through: the structures along its shaft, the one at its tip, where bone stops it.

The needle feels the anatomy as one *structure code* per voxel: the label map's id where a structure
is labelled, and otherwise the tissue class of the CT number (``air``, ``fat``, ``soft_tissue``,
``cancellous_bone``, ``cortical_bone``). Between voxel centres, the structure at a point is the code
with the largest trilinear weight among the 8 voxels around it. An interface between two structures
therefore lies on the 0.5 level of their trilinearly interpolated indicator: exactly on the voxel face
for a grid-aligned interface, and a smooth surface instead of a staircase for an oblique one.

A trace marches the shaft at a fine step (a tenth of the smallest voxel) and refines every change of
structure by bisection on the straight line to :data:`BOUNDARY_TOLERANCE_MM`, so depths in and out are
sub-voxel. The marching and the bisection are one compiled kernel: a 100 mm shaft on a 1 mm grid
takes tens of microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numba
import numpy as np
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import in_group
from anatomy_models.tissues import BONE_TISSUES, tissue_from_hu

# Depths of structure boundaries are refined to this (mm); far below any voxel size.
BOUNDARY_TOLERANCE_MM = 1e-4
# Marching step as a fraction of the smallest voxel size: a structure thinner than this along the
# shaft can be missed (none of the modelled structures is; the thinnest, dura, is a voxel thick).
STEP_FRACTION = 0.1
# The tip rests this far short of a bone surface it hits (mm): on the periosteum, not in the cortex.
BONE_STANDOFF_MM = 0.05

# Beyond the grid: air for the needle, but not a place a needle can come from (a CT's field of view
# may cut through the body, and that cut is not skin).
OUTSIDE = "outside"
# Groups whose surface the paraesthesia rule measures the tip's distance to (clinical.md §3).
NERVE_ROOT_GROUPS = ("nerve_root", "dorsal_root_ganglion")
# Distance maps reach this far (mm) beyond the structures they measure to; farther is "infinite".
DISTANCE_MARGIN_MM = 20.0
AIR = "air"


@dataclass(frozen=True)
class Segment:
    """A stretch of the shaft inside one structure.

    Parameters
    ----------
    structure : str
        Structure name (label table) or, for unlabelled voxels, the tissue class of the CT number.
    tissue : str
        Tissue class (``anatomy_models.tissues``).
    depth_in_mm, depth_out_mm : float
        Where the shaft enters and leaves it, mm from the skin entry point along the shaft.
    """

    structure: str
    tissue: str
    depth_in_mm: float
    depth_out_mm: float

    @property
    def is_bone(self) -> bool:
        return self.tissue in BONE_TISSUES

    def to_json(self) -> dict:
        return {"structure": self.structure, "tissue": self.tissue,
                "depth_in_mm": round(self.depth_in_mm, 4), "depth_out_mm": round(self.depth_out_mm, 4)}


@dataclass(frozen=True)
class Trace:
    """The ordered segments along a straight path from the skin entry point, deepest last."""

    segments: tuple[Segment, ...]

    @property
    def length_mm(self) -> float:
        return self.segments[-1].depth_out_mm if self.segments else 0.0

    @property
    def tip(self) -> Segment:
        """The segment holding the far end of the path."""
        return self.segments[-1]

    def first_bone(self) -> Segment | None:
        """The first bone segment along the path, if any."""
        return next((s for s in self.segments if s.is_bone), None)

    def entered_between(self, depth_from_mm: float, depth_to_mm: float) -> list[Segment]:
        """Segments whose entry depth lies in (from, to], in order: what a move over that range enters."""
        return [s for s in self.segments if depth_from_mm < s.depth_in_mm <= depth_to_mm]


# --------------------------------------------------------------------------- compiled kernels
@numba.njit(cache=True)
def _code_at(codes, m, x, y, z, outside):
    """Structure code at LPS point (x, y, z): the largest trilinear weight among the 8 voxels."""
    fi = m[0, 0] * x + m[0, 1] * y + m[0, 2] * z + m[0, 3]
    fj = m[1, 0] * x + m[1, 1] * y + m[1, 2] * z + m[1, 3]
    fk = m[2, 0] * x + m[2, 1] * y + m[2, 2] * z + m[2, 3]
    i0 = int(np.floor(fi))
    j0 = int(np.floor(fj))
    k0 = int(np.floor(fk))
    wi = fi - i0
    wj = fj - j0
    wk = fk - k0
    found = np.empty(8, np.int64)
    weight = np.zeros(8)
    n = 0
    ni, nj, nk = codes.shape
    for corner in range(8):
        di = corner >> 2
        dj = (corner >> 1) & 1
        dk = corner & 1
        w = (wi if di else 1.0 - wi) * (wj if dj else 1.0 - wj) * (wk if dk else 1.0 - wk)
        i = i0 + di
        j = j0 + dj
        k = k0 + dk
        if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk:
            c = np.int64(codes[i, j, k])
        else:
            c = outside
        slot = n
        for s in range(n):
            if found[s] == c:
                slot = s
                break
        if slot == n:
            found[n] = c
            n += 1
        weight[slot] += w
    best = 0
    for s in range(1, n):
        if weight[s] > weight[best]:
            best = s
    return found[best]


@numba.njit(cache=True)
def _codes_at(codes, m, points, outside):
    out = np.empty(points.shape[0], np.int64)
    for p in range(points.shape[0]):
        out[p] = _code_at(codes, m, points[p, 0], points[p, 1], points[p, 2], outside)
    return out


@numba.njit(cache=True)
def _trace(codes, m, start, direction, length, step, tolerance, outside):
    """Codes along start + t * direction for t in [0, length] and the depths where each begins."""
    seg_codes = [_code_at(codes, m, start[0], start[1], start[2], outside)]
    seg_starts = [0.0]
    current = seg_codes[0]
    t_previous = 0.0
    n_steps = int(np.ceil(length / step))
    for s in range(1, n_steps + 1):
        t = min(s * step, length)
        code = _code_at(codes, m, start[0] + t * direction[0], start[1] + t * direction[1],
                        start[2] + t * direction[2], outside)
        # Several changes may fall within one step (a structure thinner than the step): find each.
        while code != current:
            low = t_previous
            high = t
            while high - low > tolerance:
                middle = 0.5 * (low + high)
                c = _code_at(codes, m, start[0] + middle * direction[0], start[1] + middle * direction[1],
                             start[2] + middle * direction[2], outside)
                if c == current:
                    low = middle
                else:
                    high = middle
            current = _code_at(codes, m, start[0] + high * direction[0], start[1] + high * direction[1],
                               start[2] + high * direction[2], outside)
            seg_codes.append(current)
            seg_starts.append(high)
            t_previous = high
        t_previous = t
    return np.array(seg_codes), np.array(seg_starts)


# --------------------------------------------------------------------------- the needle's view of an anatomy
@dataclass(frozen=True)
class DistanceMap:
    """Distances (mm) to a set of structures on a crop of the tracer's grid (:meth:`Tracer.distance_to`).

    Parameters
    ----------
    distance_mm : array (I, J, K) float32
        Distance of each voxel centre of the crop from the nearest voxel of the structures, mm.
    to_voxel : array (3, 4)
        LPS mm to the crop's voxel index.
    half_voxel_mm : float
        Half the smallest voxel spacing, mm (the surface lies that far outside the outermost voxel centres).
    codes : array
        The structures' codes.
    """

    distance_mm: np.ndarray
    to_voxel: np.ndarray
    half_voxel_mm: float
    codes: np.ndarray


class Tracer:
    """An anatomy as the needle feels it: structure codes per voxel, traced along straight shafts.

    Build one per anatomy with :func:`tracer_for` (it is cached on the anatomy object).

    Parameters
    ----------
    anatomy : Anatomy
        CT (and label map, if any) in LPS mm.
    """

    def __init__(self, anatomy: Anatomy) -> None:
        self.anatomy = anatomy
        grid = anatomy.labels if anatomy.labels is not None else anatomy.ct
        from_hu, hu_names = tissue_from_hu(anatomy.ct.array)
        table = list(anatomy.label_table)
        first_hu_code = max((label.id for label in table), default=0) + 1
        n_codes = first_hu_code + len(hu_names) + 1
        names = [""] * n_codes
        tissues = [""] * n_codes
        for label in table:
            names[label.id], tissues[label.id] = label.name, label.tissue
        for index, name in enumerate(hu_names):
            names[first_hu_code + index] = tissues[first_hu_code + index] = name
        names[-1], tissues[-1] = OUTSIDE, AIR
        # One byte per voxel where the codes fit (the built-in spine has under 200): half the memory.
        dtype = np.uint8 if n_codes <= 256 else np.uint16
        codes = from_hu.astype(dtype) + dtype(first_hu_code)
        if anatomy.labels is not None:
            labelled = anatomy.labels.array > 0
            codes[labelled] = anatomy.labels.array[labelled]
        # Kept by the anatomy's derived store: a server's workstations with this patient then share one copy
        # (Derived.share_arrays; ~60 MB for the 1 mm patient).
        self.codes = anatomy.derived(("trace.codes", np.dtype(dtype).str), lambda: np.ascontiguousarray(codes))
        self.names = names
        self.tissues = tissues
        self.outside_code = n_codes - 1
        self.volume = grid.with_array(self.codes)
        self._world_to_voxel = np.ascontiguousarray(np.linalg.inv(grid.affine)[:3])
        self.step_mm = STEP_FRACTION * float(np.min(grid.spacing))
        self._code_groups: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ lookups
    def codes_at(self, points: np.ndarray) -> np.ndarray:
        """Structure codes at LPS points, shape (..., 3) -> (...)."""
        points = np.asarray(points, dtype=np.float64)
        flat = np.ascontiguousarray(points.reshape(-1, 3))
        return _codes_at(self.codes, self._world_to_voxel, flat, self.outside_code).reshape(points.shape[:-1])

    def structure_at(self, point: Sequence[float] | np.ndarray) -> str:
        """Name of the structure at an LPS point (tissue class where nothing is labelled)."""
        return self.names[int(self.codes_at(np.asarray(point, dtype=np.float64)[None])[0])]

    def tissue_of(self, structure: str) -> str:
        """Tissue class of a structure name this tracer knows."""
        try:
            return self.tissues[self.names.index(structure)]
        except ValueError:
            raise SpinesimError(f"no structure named {structure!r} in this anatomy") from None

    def codes_in_group(self, group: str) -> np.ndarray:
        """Codes of every structure that is ``group`` or part of it (may be empty)."""
        if group not in self._code_groups:
            self._code_groups[group] = np.array([c for c, name in enumerate(self.names) if name and in_group(name, group)],
                                                dtype=np.int64)
        return self._code_groups[group]

    # ------------------------------------------------------------------ tracing
    def trace(self, entry: np.ndarray, direction: np.ndarray, length_mm: float) -> Trace:
        """Structures along the straight path ``entry + t * direction``, 0 <= t <= ``length_mm``.

        Parameters
        ----------
        entry : array (3,)
            Start of the path, LPS mm (the skin entry point for a needle).
        direction : array (3,)
            Unit vector along the path.
        length_mm : float
            Path length, mm.

        Returns
        -------
        Trace
            Segments in order; adjacent stretches of the same named structure are merged.
        """
        entry = np.asarray(entry, dtype=np.float64)
        direction = np.asarray(direction, dtype=np.float64)
        length_mm = float(length_mm)
        codes, starts = _trace(self.codes, self._world_to_voxel, entry, direction, length_mm, self.step_mm,
                               BOUNDARY_TOLERANCE_MM, self.outside_code)
        ends = np.append(starts[1:], length_mm)
        segments: list[Segment] = []
        for code, depth_in, depth_out in zip(codes.tolist(), starts.tolist(), ends.tolist()):
            name, tissue = self.names[code], self.tissues[code]
            if segments and segments[-1].structure == name and segments[-1].tissue == tissue:
                segments[-1] = Segment(name, tissue, segments[-1].depth_in_mm, depth_out)
            else:
                segments.append(Segment(name, tissue, depth_in, depth_out))
        return Trace(tuple(segments))

    def skin_entry(self, point: Sequence[float] | np.ndarray, direction: Sequence[float] | np.ndarray,
                   search_mm: float = 300.0) -> np.ndarray:
        """Snap a picked point (or a ray's origin) to the skin along ``direction``.

        Searches the line ``point + t * direction`` for ``|t| <= search_mm`` and returns the place
        where it enters the body (air -> tissue, going along ``direction``) nearest to ``point``.
        Where the grid's edge cuts the body there is no skin: the line must cross air first.
        A point outside the body snaps forward onto the skin, a point inside snaps back out to it.

        Raises
        ------
        SpinesimError
            If the line never enters the body.
        """
        point = np.asarray(point, dtype=np.float64)
        direction = np.asarray(direction, dtype=np.float64)
        start = point - search_mm * direction
        trace = self.trace(start, direction, 2.0 * search_mm)
        entries = [s.depth_in_mm for previous, s in zip(trace.segments, trace.segments[1:])
                   if previous.structure == AIR and s.tissue != AIR]
        if not entries:
            raise SpinesimError(f"the line through {np.round(point, 1).tolist()} along {np.round(direction, 3).tolist()} "
                                "never meets the patient's skin", hint="pick an entry point on the patient's back")
        nearest = min(entries, key=lambda depth: abs(depth - search_mm))
        return start + nearest * direction

    def body_exit_depth(self, point: np.ndarray, direction: np.ndarray, search_mm: float = 300.0) -> float | None:
        """Distance (mm) from ``point`` back along ``-direction`` to the skin, or None if ``point`` is in
        air or the line leaves the grid before it meets air.

        The skin entry of a needle that ends at ``point`` coming from ``direction`` is
        ``point - distance * direction``.
        """
        point = np.asarray(point, dtype=np.float64)
        direction = np.asarray(direction, dtype=np.float64)
        backward = self.trace(point, -direction, search_mm)
        first_air = next((s for s in backward.segments if s.tissue == AIR), None)
        if first_air is None or first_air.structure != AIR or first_air.depth_in_mm == 0.0:
            return None
        return first_air.depth_in_mm

    # ------------------------------------------------------------------ distances
    def nerve_root_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance (mm) from LPS points to the surface of the nearest nerve root or ganglion.

        0 inside a root; infinite if the anatomy has none or beyond :data:`DISTANCE_MARGIN_MM`
        (see :meth:`distance_to`).
        """
        return self.distance_to(NERVE_ROOT_GROUPS, points)

    def distance_to(self, groups: Sequence[str], points: np.ndarray) -> np.ndarray:
        """Distance (mm) from LPS points to the surface of the nearest structure in ``groups``.

        0 inside one; infinite if the anatomy has none, or farther than :data:`DISTANCE_MARGIN_MM`
        from them. Computed from a Euclidean distance map of the group's voxels, made once per set
        of groups on their bounding box plus the margin and kept by the anatomy (shared as its codes are), sampled
        trilinearly; the surface lies half a voxel outside the outermost voxel centres.

        Parameters
        ----------
        groups : sequence of str
            Structure groups (``("dural_sac",)``, ``("nerve_root", "dorsal_root_ganglion")``).
        points : array (..., 3)
            LPS mm.

        Returns
        -------
        array (...,)
            Distances, mm.
        """
        points = np.asarray(points, dtype=np.float64)
        key = tuple(groups)
        kept = self.anatomy.derived(("trace.distance", key), lambda: self._distance_map(self.codes_in_groups(key)))
        distance_map, to_voxel, half_voxel, codes = kept.distance_mm, kept.to_voxel, kept.half_voxel_mm, kept.codes
        if distance_map.size == 0:
            return np.full(points.shape[:-1], np.inf)
        ijk = points.reshape(-1, 3) @ to_voxel[:, :3].T + to_voxel[:, 3]
        values = ndimage.map_coordinates(distance_map, ijk.T, order=1, mode="constant", cval=np.inf, prefilter=False)
        inside = np.isin(self.codes_at(points.reshape(-1, 3)), codes)
        values = np.where(inside, 0.0, np.maximum(values - half_voxel, 0.0))
        # map_coordinates blends inf into finite values near the map's edge: beyond the margin, say inf.
        return np.where(np.isfinite(values), values, np.inf).reshape(points.shape[:-1])

    def codes_in_groups(self, groups: Sequence[str]) -> np.ndarray:
        """Codes of every structure in any of ``groups``."""
        return np.unique(np.concatenate([self.codes_in_group(group) for group in groups] + [np.zeros(0, np.int64)]))

    def root_codes(self) -> np.ndarray:
        """Codes of the nerve roots and dorsal root ganglia."""
        return self.codes_in_groups(NERVE_ROOT_GROUPS)

    def _distance_map(self, codes: np.ndarray) -> DistanceMap:
        inside = np.isin(self.codes, codes)
        spacing = self.volume.spacing
        if not inside.any():
            return DistanceMap(np.zeros((0, 0, 0)), np.zeros((3, 4)), 0.0, codes)
        margin = np.ceil(DISTANCE_MARGIN_MM / spacing).astype(int)
        box = ndimage.find_objects(inside.astype(np.uint8))[0]
        lower = np.maximum([s.start for s in box] - margin, 0)
        upper = np.minimum([s.stop for s in box] + margin, inside.shape)
        crop = tuple(slice(a, b) for a, b in zip(lower, upper))
        # float32: distances are sampled to far below a voxel either way, in half the memory.
        distance = ndimage.distance_transform_edt(~inside[crop], sampling=spacing).astype(np.float32)
        to_voxel = self._world_to_voxel.copy()
        to_voxel[:, 3] -= lower
        return DistanceMap(distance, to_voxel, 0.5 * float(np.min(spacing)), codes)


def tracer_for(anatomy: Anatomy) -> Tracer:
    """The :class:`Tracer` of ``anatomy``, built once and held by it (``anatomy.derived``)."""
    return anatomy.derived("trace.tracer", lambda: Tracer(anatomy))


def stop_at_bone(trace: Trace, depth_mm: float) -> tuple[float, Segment | None]:
    """How deep a needle pushed to ``depth_mm`` along ``trace`` gets, and the bone that stopped it.

    Bone stops a needle at its surface: the tip rests :data:`BONE_STANDOFF_MM` short of the first bone
    segment that begins before ``depth_mm``.
    """
    bone = trace.first_bone()
    if bone is None or bone.depth_in_mm >= depth_mm:
        return depth_mm, None
    return max(bone.depth_in_mm - BONE_STANDOFF_MM, 0.0), bone
