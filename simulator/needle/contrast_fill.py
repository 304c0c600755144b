"""The fill every contrast pattern is built on: where injected fluid goes inside a compartment, in what order,
how much each voxel holds, and how the front relaxes.

The pattern modules (:mod:`simulator.needle.contrast` for the lumbar spine, :mod:`simulator.needle.sacral_contrast`
for the sacrum) decide the compartment, its step costs and capacities; this module holds what they share:

- :func:`fill_order`: the geodesic fill order (Dijkstra over the 26-neighbour voxel graph of a crop);
- :func:`tapered_fill` and :func:`fill_prefix`: how an amount of fluid is laid into that order;
- :func:`confined_diffusion`: the relaxation of the front along same-kind links (:func:`same_kind_neighbours`),
  which conserves the iodine exactly;
- :func:`tissue_texture`: the seeded random field of the tissue (fat lobules, muscle fibres, fascial septa);
- :func:`layer_height`: layering of contrast denser than CSF in a prone patient;
- the spill tissues and their fill fraction, shared by every compartment that overflows.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import numba
import numpy as np
from scipy import ndimage

from anatomy_models.volume import Volume

OFFSETS = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)],
                    dtype=np.int64)

# Soft tissues that take what a compartment cannot hold, and their fill fraction [ED].
SPILL_TISSUES = frozenset({"fat", "muscle", "soft_tissue", "ligament", "skin", "cartilage"})
SPILL_FILL_FRACTION = 0.2
# Geodesic cost multiplier for stepping into spill tissue: larger than any path inside a crop, so a
# compartment fills completely before anything spills.
SPILL_STEP_COST = 1.0e4

# Explicit diffusion on the voxel graph is stable for a step weight below 1 / (2 x 3 axes).
DIFFUSION_WEIGHT = 0.15


@numba.njit(cache=True)
def fill_order(step_cost, start, offsets, lengths, capacity, in_compartment, compartment_limit, needed):
    """Voxels (flat indices of the crop) in order of geodesic cost from ``start``, and their costs.

    Dijkstra over 26 neighbours; an edge costs the mean of its voxels' step costs times its length.
    Stops once the visited voxels hold ``needed`` (compartment voxels counted up to
    ``compartment_limit``), or when nothing more is reachable.
    """
    ni, nj, nk = step_cost.shape
    flat_cost = step_cost.ravel()
    n = ni * nj * nk
    distance = np.full(n, np.inf)
    done = np.zeros(n, np.bool_)
    order = np.empty(n, np.int64)
    costs = np.empty(n)
    source = (start[0] * nj + start[1]) * nk + start[2]
    distance[source] = 0.0
    heap = [(0.0, source)]
    count = 0
    in_acc = 0.0
    out_acc = 0.0
    while len(heap) > 0:
        d, v = heapq.heappop(heap)
        if done[v]:
            continue
        done[v] = True
        order[count] = v
        costs[count] = d
        count += 1
        if in_compartment[v]:
            in_acc += capacity[v]
        else:
            out_acc += capacity[v]
        if min(in_acc, compartment_limit) + out_acc >= needed:
            break
        i = v // (nj * nk)
        j = (v // nk) % nj
        k = v % nk
        here = flat_cost[v]
        for e in range(offsets.shape[0]):
            a = i + offsets[e, 0]
            b = j + offsets[e, 1]
            c = k + offsets[e, 2]
            if a < 0 or b < 0 or c < 0 or a >= ni or b >= nj or c >= nk:
                continue
            u = (a * nj + b) * nk + c
            there = flat_cost[u]
            if done[u] or not np.isfinite(there):
                continue
            candidate = d + 0.5 * (here + there) * lengths[e]
            if candidate < distance[u]:
                distance[u] = candidate
                heapq.heappush(heap, (candidate, u))
    return order[:count], costs[:count]


def same_kind_neighbours(order: np.ndarray, kind: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Pairs of positions in ``order`` (flat indices into a grid of ``shape``) of face-adjacent
    voxels of the same ``kind`` (one integer per position: compartment, spill tissue, roots)."""
    position = np.full(int(np.prod(shape)), -1, np.int64)
    position[order] = np.arange(order.size)
    ijk = np.stack(np.unravel_index(order, shape), axis=1)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    pairs = []
    for axis in range(3):
        inside = ijk[:, axis] + 1 < shape[axis]
        here = np.flatnonzero(inside)
        there = position[order[here] + strides[axis]]
        linked = there >= 0
        here, there = here[linked], there[linked]
        same = kind[here] == kind[there]
        pairs.append(np.stack([here[same], there[same]], axis=1))
    return np.concatenate(pairs)


def start_voxel(grid: Volume, tip: np.ndarray, passable: np.ndarray) -> np.ndarray | None:
    """The ``passable`` voxel of the crop nearest the tip among the 27 around it (None if none is)."""
    centre = np.rint(grid.world_to_voxel(tip)).astype(int)
    candidates = np.vstack([centre, centre + OFFSETS])
    candidates = candidates[np.all((candidates >= 0) & (candidates < grid.shape), axis=1)]
    ok = passable[tuple(candidates.T)]
    if not ok.any():
        return None
    candidates = candidates[ok]
    distance = np.linalg.norm(grid.voxel_to_world(candidates) - tip, axis=1)
    return candidates[int(np.argmin(distance))]


def tissue_texture(grid: Volume, correlation_mm: tuple[float, float, float], seed: int | Sequence[int]) -> np.ndarray:
    """Seeded Gaussian random field on the crop with unit standard deviation and the given
    correlation lengths (mm along x, y, z; the crop's axes are taken as x, y, z)."""
    noise = np.random.default_rng(seed).standard_normal(grid.shape, dtype=np.float32)
    field = ndimage.gaussian_filter(noise, np.asarray(correlation_mm) / grid.spacing)
    return field / max(float(field.std()), 1e-12)


def layer_height(grid: Volume, compartment: np.ndarray, tip: np.ndarray) -> np.ndarray:
    """Layering height (mm) of each voxel of the crop for contrast denser than the fluid it is in, in
    a prone patient (dependent = -y): its height above the compartment's lowest point in the tip's axial slice (the
    crop's first axis taken as x, its third as z), less how far its column's floor lies above its own slice's lowest
    point. One level for the whole crop along z: the contrast runs down the lordosis to the sac's lowest part and
    fills it, its surface a fluid level (a flat top on a horizontal-beam lateral), not a layer of even depth along
    the sac's floor. Across the sac (x) each column's floor counts as the slice's lowest: the
    lumbar sac lies flat on the back of the bodies and discs (the canal is oval to triangular, flat in front, and
    trefoil at L5, clinical.md §4.3 [S70]), so a dependent layer spreads across its whole width; measured from the
    lowest point of the grid's elliptical sac, 1 mL lay in its middle third, a column 10-13 mm wide in a 17 mm sac,
    "a third of the interpedicular distance" on AP (issue 16) [ED].

    Examples
    --------
    >>> from anatomy_models.volume import Volume
    >>> grid = Volume.from_spacing(np.zeros((3, 4, 2)), (1.0, 1.0, 1.0))
    >>> sac = np.zeros((3, 4, 2), bool); sac[1, 0:4] = True; sac[[0, 2], 1:4] = True   # deeper in the middle
    >>> layer_height(grid, sac, np.zeros(3))[:, :, 0].tolist()
    [[-1.0, 0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0], [-1.0, 0.0, 1.0, 2.0]]
    """
    y = grid.voxel_to_world(np.stack([np.zeros(grid.shape[1]), np.arange(grid.shape[1]),
                                      np.zeros(grid.shape[1])], axis=1))[:, 1]
    if not compartment.any():
        return np.zeros(grid.shape)
    tip_k = int(np.clip(np.rint(grid.world_to_voxel(tip)[2]), 0, grid.shape[2] - 1))
    occupied = compartment[:, :, tip_k].any(axis=0)
    level = y[occupied].min() if occupied.any() else y[compartment.any(axis=(0, 2))].min()
    # Each column's floor above its slice's lowest point: what a flat-bottomed sac would not have.
    floors = np.where(compartment, y[None, :, None], np.inf).min(axis=1)
    with np.errstate(invalid="ignore"):  # a column or slice without the compartment: no lift
        lift = floors - floors.min(axis=0)[None, :]
    lift = np.where(np.isfinite(lift), lift, 0.0)
    return y[None, :, None] - level - lift[:, None, :]


def crop_world(grid: Volume) -> np.ndarray:
    """World coordinates (mm) of every voxel of the crop, shape ``grid.shape + (3,)``."""
    ijk = np.stack(np.indices(grid.shape), axis=-1).reshape(-1, 3)
    return grid.voxel_to_world(ijk).reshape(grid.shape + (3,))


def tapered_fill(capacity: np.ndarray, cost: np.ndarray, amount: float) -> np.ndarray:
    """Fill ``amount`` into slots of ``capacity`` at geodesic ``cost`` from the tip, tapering: slot i
    holds ``capacity_i * max(0, 1 - (cost_i / R)**2)`` with the reach ``R`` that places exactly
    ``amount`` (bisection; the placed total grows with R). Full at the tip, thinning smoothly to
    nothing at the front, as an epidurogram's column tapers toward its ends. Slots that cannot hold
    it all are filled to capacity.

    Examples
    --------
    >>> out = tapered_fill(np.ones(5), np.arange(5.0), 2.0)
    >>> round(float(out.sum()), 9), bool(np.all(np.diff(out) <= 0)), float(out[0])
    (2.0, True, 1.0)
    """
    if capacity.sum() <= amount:
        return capacity.copy()
    low, high = 0.0, 1.0
    while (capacity * np.clip(1.0 - (cost / high) ** 2, 0.0, 1.0)).sum() < amount:
        high *= 2.0
    for _ in range(60):
        reach = 0.5 * (low + high)
        if (capacity * np.clip(1.0 - (cost / reach) ** 2, 0.0, 1.0)).sum() < amount:
            low = reach
        else:
            high = reach
    placed = capacity * np.clip(1.0 - (cost / high) ** 2, 0.0, 1.0)
    return placed * (amount / placed.sum())


def fill_prefix(capacity: np.ndarray, amount: float) -> np.ndarray:
    """Fill ``amount`` into slots of ``capacity`` in order: full slots, one partial, then empty."""
    cumulative = np.cumsum(capacity)
    before = cumulative - capacity
    return np.clip(amount - before, 0.0, capacity)


def confined_diffusion(amount: np.ndarray, neighbours: np.ndarray, steps: int) -> np.ndarray:
    """``amount`` (per visited voxel) after ``steps`` of explicit diffusion along the ``neighbours``
    links only: every link moves ``weight x difference`` from the fuller voxel to the other, so the
    total is conserved and nothing leaves the linked voxels.

    Examples
    --------
    >>> links = np.array([[0, 1], [1, 2]])            # a chain of three voxels; a fourth, unlinked
    >>> out = confined_diffusion(np.array([0.0, 3.0, 0.0, 5.0]), links, 4)
    >>> round(float(out[:3].sum()), 12), float(out[3]), bool(out[0] == out[2] > 0)
    (3.0, 5.0, True)
    """
    first, second = neighbours[:, 0], neighbours[:, 1]
    amount = amount.astype(np.float64, copy=True)
    for _ in range(steps):
        flux = DIFFUSION_WEIGHT * (amount[first] - amount[second])
        amount -= np.bincount(first, flux, minlength=amount.size)
        amount += np.bincount(second, flux, minlength=amount.size)
    return amount


def diffusion_steps(sigma_mm: float, voxel_mm: float) -> int:
    """Steps of :func:`confined_diffusion` that spread a point by a Gaussian of ``sigma_mm`` on a
    grid of ``voxel_mm``: each step adds a variance of 2 x weight voxels squared per axis."""
    return max(1, round((sigma_mm / voxel_mm) ** 2 / (2.0 * DIFFUSION_WEIGHT)))


def seeded_rng(seed: int | Sequence[int], stream: int) -> np.random.Generator:
    """An independent random stream ``stream`` of an injection's ``seed`` (the attempt's seed and the action's
    index): each irregularity of a pattern (which side an epidurogram favours, how far each root sleeve fills,
    how a vessel winds) draws from its own stream, so two injections differ and a replay is exact.

    Examples
    --------
    >>> a, b = seeded_rng([7, 3], 1).random(), seeded_rng([7, 3], 1).random()
    >>> a == b, a != seeded_rng([7, 3], 2).random(), a != seeded_rng([7, 4], 1).random()
    (True, True, True)
    """
    entropy = [int(seed)] if np.ndim(seed) == 0 else [int(s) for s in seed]
    return np.random.default_rng([*entropy, int(stream)])


def smooth_wander_mm(rng: np.random.Generator, along_mm: np.ndarray, amplitude_mm: float,
                     correlation_mm: float) -> np.ndarray:
    """A seeded, smooth random offset (mm) at each of the evenly spaced positions ``along_mm``: white noise
    smoothed over ``correlation_mm`` and scaled to an RMS of ``amplitude_mm``. A vessel's or a streak's
    tortuosity: irregular in wavelength and amplitude, unlike a sine.

    Examples
    --------
    >>> along = np.linspace(0.0, 60.0, 121)
    >>> wander = smooth_wander_mm(np.random.default_rng(1), along, 1.0, 5.0)
    >>> round(float(np.sqrt(np.mean(wander ** 2))), 6), bool(np.abs(np.diff(wander)).max() < 0.5)
    (1.0, True)
    """
    step_mm = float(along_mm[1] - along_mm[0]) if along_mm.size > 1 else 1.0
    noise = rng.standard_normal(along_mm.size)
    field = ndimage.gaussian_filter1d(noise, correlation_mm / step_mm, mode="reflect")
    field = field - field.mean()
    return amplitude_mm * field / max(float(np.sqrt(np.mean(field ** 2))), 1e-12)
