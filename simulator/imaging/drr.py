"""Digitally reconstructed radiographs: line integrals of attenuation along the C-arm's rays.

The DRR of a volume of values ``f`` (mu in 1/mm, or iodine in mg/mL) for a C-arm pose is, per
detector pixel, ``integral f ds`` along the ray from the focal spot to that pixel's centre (``s`` in
mm); Beer-Lambert then gives ``I = I0 exp(-integral mu ds)`` (``simulator.imaging.fluoro``).

Two projectors, both compiled with numba and parallel over detector rows:

``"joseph"`` (default) -- interpolated
    Joseph's method: the ray is sampled once per slice across the volume axis it is most aligned
    with, bilinearly within the slice, and each sample weighted by the path length per slice. The
    volume is read as a smooth field, which is second-order accurate for smooth objects: chord
    lengths of voxelised spheres and cylinders within 0.5% (tests/simulator/test_drr.py). Linear
    interpolation's response depends on where a sample falls in its cell, and a ray along the slices'
    axis falls at one place in all of them: across the detector that offset sweeps once per voxel, a
    ripple one voxel apart (stripes, a comb, hatching, issue 16). An anatomy's CT is therefore read on
    grids shifted slice by slice, each slice the cubic spline through its voxels (:func:`_stagger`), so
    that a ray meets every offset in turn: at the voxel's period, 400-1200x less power in the error on
    smooth blobs and 14x less across the 1 mm patient's L5 body on the AP, at 2-4% more CPU per sample. Not
    at every tilt: a ray whose slope across the slices matches an axis's step of the shifts (modulo a voxel)
    meets one offset again (:func:`_stagger_shifts`).
``"siddon"`` -- exact for constant voxels
    The exact radiological path through the volume seen as constant voxels (Siddon 1985, the model
    of Plastimatch's ``drr -i exact``). It is evaluated through running sums along the volume axis
    the beam is most aligned with: each column of voxels holds the cumulative integral
    ``F(c) = integral_0^c f``, piecewise linear in ``c``, so the integral along the part of a ray
    inside one column is ``F(c_out) - F(c_in)``. A ray then costs one step per crossing of a column
    wall instead of one per voxel: in AP and lateral views, where rays run nearly along the columns,
    a ray through 256 voxels crosses only a few dozen walls, and it is 3-5x faster than Joseph; in a
    30-40° oblique, as fast. It reproduces Plastimatch's images to ~1e-5 (benchmarks/bench_drr.py).
    Constant voxels make edges parallel to the rays into voxel-sized steps, so against smooth
    analytic objects it is only first-order accurate (~1% near a sphere's rim at 44 voxels radius,
    like Plastimatch). That error is the constant-voxel model's, not the running sums': it matches
    fine nearest-voxel sampling (tests/simulator/test_drr.py) and Plastimatch's exact projector.

Joseph's cost is one sample per slice per ray: a 512 x 512 DRR takes 1.7-4 samples per voxel of the
volume (more for small volumes), each 4 gathered values and a bilinear weighting, against np.sum's
one streamed add per voxel; benchmarks/bench_drr.py measures both factors.

Either way the volume is prepared once (cropped to its non-zero box, reordered so the principal axis
is contiguous in memory, float32) and the preparation is cached per volume and principal axis. For an
:class:`~anatomy_models.anatomy.Anatomy` the tables of its mu volume (HU through ``tissues.hu_to_mu``)
and the DRR of each C-arm pose are cached too (:func:`anatomy_line_integrals`), so a needle move or a
new noise realisation never re-projects the CT. An anatomy's frame is projected only within the
detector's widest field and two pixels beyond it (:func:`_field_columns`): an image intensifier's
square's corners, 21% of its pixels, are never exposed, and the frame is zero there. A new pose's preview, the
detector binned 4 x 4 (:meth:`~simulator.imaging.carm.CArm.binned`), is the frame's own rays of one pixel a bin,
traced first and kept for the frame, which then traces only its other rays: no ray is traced twice. A ray samples
an anatomy's table only from the first to the last slice where its stencil can read anything (:func:`_sampled_slices`),
the air around the body being none (:func:`_clear_outside_air`): a quarter fewer samples on the 1 mm patient's AP, a
fifth on its lateral. The anatomy's Joseph tables are quantised to int16
and its mu volume is not kept: a workstation holds about half the CT's bytes per principal axis in
use (two in practice, AP/oblique and lateral) instead of two float32 copies per axis plus the volume.

For the polychromatic beam the CT is projected as two materials, the path lengths of water and of
cortical bone (:func:`anatomy_basis_line_integrals`, HU decomposed by ``tissues.hu_to_basis``), in one
Joseph traversal of an interleaved table: the spectrum is applied per pixel afterwards, never per
energy in the projector. Where the CPU has AVX2 that traversal takes eight neighbouring rays at a time,
one gather of both materials' words per stencil corner (:func:`_sample_octet`), else one ray at a time. A CT cut across the body along the patient's long axis is continued beyond
its cut faces as the face's own soft tissue out to the skin (:func:`body_extension`), so its rays see no band; a
flank, a belly or a back its field of view cut off is rounded off as soft tissue, meeting the cut outline.

The needle is not voxelised: :func:`needle_line_integrals` computes the steel shaft's and the plastic
hub's (plastic and steel) chord lengths per ray in closed form, only in the pixels the needle covers, averaging 4 x 4
rays per pixel so that a needle thinner than a pixel still shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils, config
from numba.extending import intrinsic
from scipy import ndimage

from anatomy_models.errors import SpinesimError
from anatomy_models.tissues import FLUORO_EFFECTIVE_KEV, hu_to_basis, hu_to_mu, tissue
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm, RaysOfBins
from simulator.needle.hub import hub_cylinders
from simulator.needle.shaft import bevel_cut

if TYPE_CHECKING:
    from anatomy_models.anatomy import Anatomy
    from simulator.needle.shaft import Needle

Method = Literal["joseph", "siddon"]
METHODS: tuple[str, ...] = ("joseph", "siddon")

# Rows handed to a thread at a time: small chunks balance the two halves of the detector, whose
# rays cross different amounts of anatomy.
_ROWS_PER_CHUNK = 4
# How many C-arm poses' DRRs are kept per anatomy (1 MB each at 512 x 512).
_FRAMES_PER_ANATOMY = 32
# An anatomy's frame is projected this many pixels beyond the detector's widest field: the pincushion
# distortion samples its input bilinearly (a pixel's neighbours) and a live frame's cells are interpolated
# from their neighbours, so every pixel they read at the field's edge is projected.
_FIELD_MARGIN_PIXELS = 2
# Quantised Joseph tables: steps of the int16 range either side of zero.
_QUANTISED_STEPS = 32767
# How far a Joseph table's cubic resampling (:func:`_stagger`) can reach beyond its volume's range, in that range:
# the cubic spline interpolant's Lebesgue constant, 1.5486 (a sample's weights' absolute sum), squared for a slice
# (2.398), holds it within [-0.699, 1.699] x the largest value of a non-negative volume.
_STAGGER_REACH = 0.5 * (1.5486 ** 2 + 1.0)
# How far inside the table's outer nodes (its zero padding) Joseph's samples stay, in voxels: rounding can then
# never push a 2x2 stencil out of the table, so no sample needs a bounds clamp. The eight-ray projector's float32
# positions (:func:`_sample_octet`) are rounded by up to ~2e-4 of a voxel a thousand voxels from a lane's first cell;
# a sample lost to the margin reads the padding, zero or the slice's spline's tail two nodes beyond the volume.
_EDGE = 1e-3
# Zero nodes around a Joseph table across its slices (a and b): its slices' cubic resampling reaches two nodes
# beyond the volume, and a sample on a slice's shifted grid reads up to one node before the ray's own position.
_PAD = 3
# Slices of a Joseph table resampled at a time (:func:`_stagger`).
_STAGGER_SLICES = 16
# The plastic number, whose inverse powers step the R2 low-discrepancy sequence (:func:`_stagger_shifts`).
_PLASTIC = 1.324717957244746
# Rays of a detector row projected at a time with AVX2 gathers: a 256-bit register's 32-bit words.
_LANES = 8
# Detector rows the eight-ray projector takes at a time, octet by octet down them (a tile): the rows' octets at one
# place read neighbouring voxels, while they are in the cache (7-9% less CPU than row by row on the 1 mm patient's AP
# and Scotty dog at 16 rows: speed20's prof/tile_exp.py).
_TILE_ROWS = 16
# Which of a row's pixels (within its columns) a Joseph kernel projects: all of them, only the rays of the
# bins of ``every`` x ``every`` pixels (:meth:`CArm.binned`: pixel ``every // 2`` of each bin, across and down),
# or all but those; the last two make one frame in two passes, the bins' first (a new pose's preview).
_ALL_RAYS, _BIN_RAYS, _OTHER_RAYS = 0, 1, 2


# --------------------------------------------------------------------------- kernels
def _cpu_has_avx2() -> bool:
    """Whether numba compiles for a CPU with AVX2: the host's, unless NUMBA_CPU_NAME/FEATURES chose another."""
    if config.CPU_NAME and config.CPU_NAME != "host":
        return "+avx2" in (config.CPU_FEATURES or "").split(",")
    return bool(llvm.get_host_cpu_features().get("avx2", False))


# Whether numba compiles for a CPU with AVX2 (checked at import): the two-material projector then takes eight
# rays at a time with its gathers (:func:`_sample_octet`), else one ray at a time.
AVX2 = _cpu_has_avx2()


def _splat(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    vector = ir.VectorType(value.type, _LANES)
    single = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), _LANES), None)
    return builder.shuffle_vector(single, ir.Constant(vector, ir.Undefined), zeros)


def _load_lanes(builder: ir.IRBuilder, pointer: ir.Value, start: int, element: ir.Type) -> ir.Value:
    at = builder.gep(pointer, [ir.Constant(ir.IntType(64), start)])
    return builder.load(builder.bitcast(at, ir.PointerType(ir.VectorType(element, _LANES))), align=4)


def _store_lanes(builder: ir.IRBuilder, value: ir.Value, pointer: ir.Value, start: int) -> None:
    at = builder.gep(pointer, [ir.Constant(ir.IntType(64), start)])
    builder.store(value, builder.bitcast(at, ir.PointerType(value.type)), align=4)


@intrinsic
def _sample_octet(typingctx, table, shifts, plane, nc, c_start, c_stop, rays, span, sums):
    """Sum Joseph's bilinear samples of both materials for eight rays, slices ``c_start`` to ``c_stop``.

    The pair kernel's loop for eight neighbouring rays of a row at once, in LLVM IR: their positions, cells
    and weights are one vector each, and each of the stencil's four corners is one ``vpgatherdd`` of eight
    32-bit words, each word both materials of a voxel (water in its low half, bone in its high half). LLVM
    compiles the one-ray loop without gathers (it rates them slow on AMD's Zen) and would split its generic
    ``llvm.masked.gather`` into scalar reads there too, so ``llvm.x86.avx2.gather.d.d.256`` is called, which
    it lowers to the instruction on any AVX2 CPU (:data:`AVX2`). The loop makes half the reads the one-ray
    loop does. Its cost is mostly its instructions, not waiting on memory: on the 1 mm patient's AP (180 MB
    table) it took 258-268 ms CPU with float64 positions, 212 with every read in a 32 KB window (L1), 152 with
    every lane reading one word (measured once, speed20); lanes as 2 x 4 or 4 x 2 pixels or prefetching 32-64
    words ahead changed it by 5% at most. Positions in float32 from each lane's cell at its first slice take 228
    (-16%), its image within 1.7e-6 of the one-ray loop's as before, and tiles of 16 rows
    (:func:`_joseph_pair_kernel_avx2`) 214 (~3.5 ns CPU a sample).

    ``table``: the interleaved pair table seen as uint32 (one word per voxel); ``shifts`` (float32, (2, nc)): each
    slice's grid's shift (a, b) (:func:`_stagger`), subtracted from the lanes' positions there; ``rays`` (float64, 32):
    per lane the ray's (a, b) at slice 0 and its slopes (a0 x 8, b0 x 8, slope_a x 8, slope_b x 8);
    ``span`` (int32, 32): per lane its first and last slice where its stencil is inside the table (its positions are
    reckoned from the first), then the first and last it samples (within those: beyond them its stencil reads only
    zero words, :func:`_sampled_slices`); ``sums`` (float32, 16) receives the lanes' sums of table steps, water's
    eight then bone's."""
    signature = types.void(table, shifts, types.int64, types.int64, types.int64, types.int64, rays, span, sums)

    def codegen(context, builder, sig, args):
        (table_value, shifts_value, plane_value, nc_value, c_start_value, c_stop_value, rays_value, span_value,
         sums_value) = args
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        f32, f64 = ir.FloatType(), ir.DoubleType()
        words, floats, doubles = ir.VectorType(i32, _LANES), ir.VectorType(f32, _LANES), ir.VectorType(f64, _LANES)
        fast = ("fast",)
        table_array = context.make_array(sig.args[0])(context, builder, table_value)
        data = [table_array.data] + [context.make_array(sig.args[k])(context, builder, value).data
                                     for k, value in ((6, rays_value), (7, span_value), (8, sums_value))]
        shift_data = context.make_array(sig.args[1])(context, builder, shifts_value).data
        base = builder.bitcast(data[0], cgutils.voidptr_t)
        a0, b0, slope_a, slope_b = (_load_lanes(builder, data[1], k * _LANES, f64) for k in range(4))
        first, last, sampled_first, sampled_last = (_load_lanes(builder, data[2], k * _LANES, i32) for k in range(4))
        plane_lanes = _splat(builder, builder.trunc(plane_value, i32))
        nc_lanes = _splat(builder, builder.trunc(nc_value, i32))
        gather = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(words, [words, cgutils.voidptr_t, words, words, i8]),
            "llvm.x86.avx2.gather.d.d.256")
        floor = cgutils.get_or_insert_function(builder.module, ir.FunctionType(floats, [floats]), "llvm.floor.v8f32")
        zero_words, zero_floats = ir.Constant(words, None), ir.Constant(floats, None)
        sixteen = _splat(builder, ir.Constant(i32, 16))
        one = _splat(builder, ir.Constant(f64, 1.0))
        # Each lane's position on an axis is its cell at its first slice (an integer) plus an offset in float32,
        # which steps by the slope: float32 arithmetic on eight lanes where float64 took sixteen (16% less CPU,
        # benchmarks/bench_drr.py), the offset within a few tens to hundreds of voxels, so rounded to ~4e-6 to 2e-4 of
        # a voxel: the span is clipped _EDGE inside the table's outer nodes, which the rounding cannot cross, and no
        # position is clamped (two compares and selects per axis a sample: 6% of the CPU, proj14's time_pair.py).
        sampled_at_all = builder.icmp_signed("<=", first, last)
        first_slice = builder.sitofp(first, doubles)
        start = []
        for origin, slope in ((a0, slope_a), (b0, slope_b)):
            at_first = builder.select(sampled_at_all, builder.fadd(origin, builder.fmul(first_slice, slope)), one)
            cell = builder.fptosi(at_first, words)  # positive on the span: the floor
            offset = builder.fptrunc(builder.fsub(at_first, builder.sitofp(cell, doubles)), floats)
            start.append((cell, offset, builder.fptrunc(slope, floats)))

        entry = builder.block
        header = builder.append_basic_block("octet.header")
        body = builder.append_basic_block("octet.body")
        done = builder.append_basic_block("octet.done")
        builder.branch(header)
        builder.position_at_end(header)
        c = builder.phi(i64)
        water = builder.phi(floats)
        bone = builder.phi(floats)
        c.add_incoming(c_start_value, entry)
        water.add_incoming(zero_floats, entry)
        bone.add_incoming(zero_floats, entry)
        builder.cbranch(builder.icmp_signed("<=", c, c_stop_value), body, done)

        builder.position_at_end(body)
        c_lanes = _splat(builder, builder.trunc(c, i32))
        sampled = builder.and_(builder.icmp_signed(">=", c_lanes, sampled_first),
                               builder.icmp_signed("<=", c_lanes, sampled_last))
        steps = builder.sitofp(builder.sub(c_lanes, first), floats)
        cells, fractions = [], []
        # A lane outside its span may get a position beyond the table: its reads are masked off (a masked gather
        # touches no memory).
        for axis, (cell, offset, slope) in enumerate(start):
            shift = builder.load(builder.gep(shift_data, [builder.add(builder.mul(ir.Constant(i64, axis), nc_value), c)]))
            position = builder.fadd(offset, builder.fmul(steps, slope, flags=fast), flags=fast)
            position = builder.fsub(position, _splat(builder, shift), flags=fast)
            whole = builder.call(floor, [position])
            cells.append(builder.add(cell, builder.fptosi(whole, words)))
            fractions.append(builder.fsub(position, whole, flags=fast))
        (cell_a, cell_b), (fa, fb) = cells, fractions
        row = builder.add(builder.add(builder.mul(cell_b, plane_lanes), builder.mul(cell_a, nc_lanes)), c_lanes)
        mask = builder.sext(sampled, words)
        corners = [builder.call(gather, [zero_words, base, index, mask, ir.Constant(i8, 4)])
                   for index in (row, builder.add(row, nc_lanes), builder.add(row, plane_lanes),
                                 builder.add(builder.add(row, plane_lanes), nc_lanes))]
        # Both halves signed (int16): the low one moved up and back, the high one down, with its sign.
        halves = ([builder.ashr(builder.shl(word, sixteen), sixteen) for word in corners],
                  [builder.ashr(word, sixteen) for word in corners])
        sums = []
        for accumulated, half in zip((water, bone), halves):
            v00, v10, v01, v11 = (builder.sitofp(word, floats) for word in half)
            top = builder.fadd(v00, builder.fmul(fa, builder.fsub(v10, v00, flags=fast), flags=fast), flags=fast)
            bottom = builder.fadd(v01, builder.fmul(fa, builder.fsub(v11, v01, flags=fast), flags=fast), flags=fast)
            sample = builder.fadd(top, builder.fmul(fb, builder.fsub(bottom, top, flags=fast), flags=fast), flags=fast)
            sums.append(builder.fadd(accumulated, sample, flags=fast))
        c.add_incoming(builder.add(c, ir.Constant(i64, 1)), builder.block)
        water.add_incoming(sums[0], builder.block)
        bone.add_incoming(sums[1], builder.block)
        builder.branch(header)

        builder.position_at_end(done)
        _store_lanes(builder, water, data[3], 0)
        _store_lanes(builder, bone, data[3], _LANES)
        return context.get_dummy_value()

    return signature, codegen


@njit(inline="always", fastmath=True)
def _running_integral(table, base, x, last):
    """F at fractional node position ``x`` of the column starting at flat index ``base``."""
    m = int(x)
    if m > last:
        m = last
    elif m < 0:
        m = 0
    w = x - m
    lower = table[base + m]
    return lower + w * (table[base + m + 1] - lower)


@njit(inline="always", fastmath=True)
def _clip(t0, t1, origin, slope, low, high):
    """Narrow the parameter range [t0, t1] to where ``origin + t * slope`` lies in [low, high]."""
    if slope != 0.0:
        ta = (low - origin) / slope
        tb = (high - origin) / slope
        return max(t0, min(ta, tb)), min(t1, max(ta, tb))
    if origin < low or origin > high:
        return t0, -1e30
    return t0, t1


@njit(inline="always", fastmath=True)
def _pixel_vector(u, v, base, along_u, along_v):
    """The 3-vector ``base + u along_u + v along_v`` (a pixel's ray direction, in some frame)."""
    return (base[0] + u * along_u[0] + v * along_v[0], base[1] + u * along_u[1] + v * along_v[1],
            base[2] + u * along_u[2] + v * along_v[2])


@njit(inline="always", fastmath=True)
def _first_wall(index, origin, slope):
    """Where a ray in voxel ``index`` first crosses a wall on one axis: (t, t per voxel, index step)."""
    if slope > 0.0:
        return (index + 0.5 - origin) / slope, 1.0 / slope, 1
    if slope < 0.0:
        return (index - 0.5 - origin) / slope, -1.0 / slope, -1
    return 1e30, 0.0, 0


@njit(inline="always", fastmath=True)
def _joseph_ray(u, v, source, q00, qu, qv, d00, du, dv, nb, na, nc):
    """Joseph's traversal of pixel (u, v)'s ray through a zero-padded (nb, na, nc) table: its (a, b) in slice
    0 and their slopes per slice, its first and last slice where the 2x2 stencil lies inside the table wherever
    the slice's grid is shifted (:func:`_stagger`: ``_EDGE`` inside its outer nodes, so no sample needs a bounds
    clamp), and the path length per slice (mm)."""
    qa, qb, qc = _pixel_vector(u, v, q00, qu, qv)
    dx, dy, dz = _pixel_vector(u, v, d00, du, dv)
    slope_a = qa / qc
    slope_b = qb / qc
    a0 = source[0] - source[2] * slope_a  # (a, b) of the ray in slice c: (a0, b0) + c slope
    b0 = source[1] - source[2] * slope_b
    c0, c1 = _clip(0.0, nc - 1.0, a0, slope_a, 1.0 + _EDGE, na - 1.0 - _EDGE)
    c0, c1 = _clip(c0, c1, b0, slope_b, 1.0 + _EDGE, nb - 1.0 - _EDGE)
    return (a0, b0, slope_a, slope_b, int(math.ceil(c0)), int(math.floor(c1)),
            math.sqrt(dx * dx + dy * dy + dz * dz) / abs(qc))


@njit(inline="always")
def _sampled_slices(a0, b0, slope_a, slope_b, first, last, first_nonzero, last_nonzero):
    """The first and last of slices ``first`` to ``last`` where the ray (a0, b0) + c (slope_a, slope_b) can read a
    non-zero word of its table: before and after them every word its stencil reads, on any slice's shifted grid, is
    zero (``first_nonzero``, ``last_nonzero``: per column (b, a) of the table, the first and last slice of a non-zero
    word within :data:`_NONZERO_REACH` columns, :func:`_nonzero_slices`), so that skipping them changes no sum; an
    empty range (first > last) where the ray meets none."""
    while first <= last and first_nonzero[int(b0 + first * slope_b), int(a0 + first * slope_a)] > first:
        first += 1
    while last >= first and last_nonzero[int(b0 + last * slope_b), int(a0 + last * slope_a)] < last:
        last -= 1
    return first, last


@njit(inline="always")
def _row_pixels(v, first, last, every, part, pixels):
    """Fill ``pixels`` with the columns of row ``v`` from ``first`` to ``last`` that ``part`` (``_ALL_RAYS``,
    ``_BIN_RAYS``, ``_OTHER_RAYS`` of bins of ``every`` pixels) projects; returns how many."""
    own = every // 2
    bin_row = v % every == own
    if part == _BIN_RAYS and not bin_row:
        return 0
    count = 0
    for u in range(first, last + 1):
        bin_ray = bin_row and u % every == own
        if part == _ALL_RAYS or bin_ray == (part == _BIN_RAYS):
            pixels[count] = u
            count += 1
    return count


@njit(parallel=True, fastmath=True, cache=True, boundscheck=False, nogil=True)
def _siddon_kernel(table, nb, na, nc, source, q00, qu, qv, d00, du, dv, columns, out):  # pragma: no cover - compiled
    """Exact line integrals through column running sums; see the module docstring.

    Only the pixels of row ``v`` from column ``columns[v, 0]`` to ``columns[v, 1]`` are projected (the
    detector's field, :func:`_field_columns`); the others of ``out`` (zeroed) are left as they are.

    ``table`` is flat (nb, na, nc + 1): node ``m`` of column (a, b) holds the sum of the column's
    first ``m`` voxels. Voxel ``c`` spans [c - 0.5, c + 0.5] in table coordinates. The ray of pixel
    (u, v) is ``p(t) = source + t q(u, v)`` in table coordinates and ``s + t d(u, v)`` in mm.
    """
    nv = out.shape[0]
    stride = nc + 1
    for v in prange(nv):
        for u in range(columns[v, 0], columns[v, 1] + 1):
            qa, qb, qc = _pixel_vector(u, v, q00, qu, qv)
            dx, dy, dz = _pixel_vector(u, v, d00, du, dv)
            # Clip to the box [-0.5, n - 0.5] on every axis (qc is never 0: c is the principal axis).
            t0, t1 = _clip(-1e30, 1e30, source[2], qc, -0.5, nc - 0.5)
            t0, t1 = _clip(t0, t1, source[0], qa, -0.5, na - 0.5)
            t0, t1 = _clip(t0, t1, source[1], qb, -0.5, nb - 0.5)
            if t1 <= t0:
                out[v, u] = 0.0
                continue
            # Column the ray enters (evaluated just inside, against rounding at the walls).
            tm = t0 + 1e-6 * (t1 - t0)
            i = min(max(int(math.floor(source[0] + tm * qa + 0.5)), 0), na - 1)
            j = min(max(int(math.floor(source[1] + tm * qb + 0.5)), 0), nb - 1)
            next_a, step_a, di = _first_wall(i, source[0], qa)
            next_b, step_b, dj = _first_wall(j, source[1], qb)
            base = (j * na + i) * stride
            acc = -_running_integral(table, base, source[2] + t0 * qc + 0.5, nc - 1)
            inside = True
            while True:
                t = min(next_a, next_b)
                if t >= t1:
                    break
                x = source[2] + t * qc + 0.5
                acc += _running_integral(table, base, x, nc - 1)
                if next_a <= next_b:
                    i += di
                    next_a += step_a
                else:
                    j += dj
                    next_b += step_b
                if i < 0 or i >= na or j < 0 or j >= nb:
                    inside = False
                    break
                base = (j * na + i) * stride
                acc -= _running_integral(table, base, x, nc - 1)
            if inside:
                acc += _running_integral(table, base, source[2] + t1 * qc + 0.5, nc - 1)
            out[v, u] = acc * math.sqrt(dx * dx + dy * dy + dz * dz) / qc


@njit(parallel=True, fastmath=True, cache=True, boundscheck=False, nogil=True)
def _joseph_kernel(table, scale, nb, na, nc, shifts, source, q00, qu, qv, d00, du, dv, columns, every, part,
                   out):  # pragma: no cover - compiled
    """Joseph's method: a bilinear sample per slice ``c`` of the zero-padded (nb, na, nc) ``table``, whose
    entries are the values divided by ``scale`` (float32 tables: 1; quantised int16 tables: their step),
    in the pixels of each row ``v`` from column ``columns[v, 0]`` to ``columns[v, 1]`` (as :func:`_siddon_kernel`)
    that ``part`` takes of bins of ``every`` pixels (:func:`_row_pixels`).

    The sample loop is the DRR's whole cost (about 3 ns a sample, compute-bound: benchmarks/
    bench_drr.py), so it is kept to the bone: the ray's slice range is clipped beforehand to where the 2x2 stencil lies inside the
    table (``_EDGE`` inside its outer nodes, so no sample needs a bounds clamp), the position steps
    by the ray's slope from slice to slice, the cell is its truncation (positive there, so the
    floor) and the flat index integer arithmetic, and the interpolation runs in float32 (the
    position in float64: its fraction keeps 1e-7 of a voxel after thousands of steps). 8% less CPU
    than a float floor and a product per sample (benchmarks/bench_drr.py).
    """
    nv = out.shape[0]
    plane = na * nc
    for v in prange(nv):
        pixels = np.empty(out.shape[1], np.int64)
        for k in range(_row_pixels(v, columns[v, 0], columns[v, 1], every, part, pixels)):
            u = pixels[k]
            a0, b0, slope_a, slope_b, first, last, length = _joseph_ray(u, v, source, q00, qu, qv, d00, du, dv,
                                                                        nb, na, nc)
            acc = np.float32(0.0)
            a = a0 + first * slope_a
            b = b0 + first * slope_b
            for c in range(first, last + 1):
                at_a = a - shifts[0, c]  # on slice c's shifted grid (:func:`_stagger`)
                at_b = b - shifts[1, c]
                cell_a = int(at_a)  # at_a, at_b >= _EDGE > 0 on the clipped range: truncation is the floor
                cell_b = int(at_b)
                fa = np.float32(at_a - cell_a)
                fb = np.float32(at_b - cell_b)
                row = cell_b * plane + cell_a * nc + c
                v00 = np.float32(table[row])
                v10 = np.float32(table[row + nc])
                v01 = np.float32(table[row + plane])
                v11 = np.float32(table[row + plane + nc])
                top = v00 + fa * (v10 - v00)
                bottom = v01 + fa * (v11 - v01)
                acc += top + fb * (bottom - top)
                a += slope_a
                b += slope_b
            out[v, u] = acc * scale * length


@njit(parallel=True, fastmath=True, cache=True, boundscheck=False, nogil=True)
def _joseph_pair_kernel(table, scale_0, scale_1, nb, na, nc, shifts, first_nonzero, last_nonzero, source, q00, qu, qv,
                        d00, du, dv, columns, every, part, out):  # pragma: no cover - compiled
    """:func:`_joseph_kernel` for a table of two interleaved materials (flat (nb, na, nc, 2)), into
    ``out`` (2, rows, columns): both line integrals for one traversal, the cost of the polychromatic
    beam's two basis materials (water, bone) being one ray's index arithmetic and twice the gathers. A ray's slices
    before and after those where it can meet a non-zero word (:func:`_sampled_slices`) are stepped over unsampled."""
    nv = out.shape[1]
    plane = na * nc
    for v in prange(nv):
        pixels = np.empty(out.shape[2], np.int64)
        for k in range(_row_pixels(v, columns[v, 0], columns[v, 1], every, part, pixels)):
            u = pixels[k]
            a0, b0, slope_a, slope_b, first, last, length = _joseph_ray(u, v, source, q00, qu, qv, d00, du, dv,
                                                                        nb, na, nc)
            sampled_first, sampled_last = _sampled_slices(a0, b0, slope_a, slope_b, first, last, first_nonzero,
                                                          last_nonzero)
            acc_0 = np.float32(0.0)
            acc_1 = np.float32(0.0)
            a = a0 + first * slope_a
            b = b0 + first * slope_b
            for c in range(first, min(sampled_first, last + 1)):  # the positions as the samples would step them
                a += slope_a
                b += slope_b
            for c in range(sampled_first, sampled_last + 1):
                at_a = a - shifts[0, c]  # as in _joseph_kernel
                at_b = b - shifts[1, c]
                cell_a = int(at_a)
                cell_b = int(at_b)
                fa = np.float32(at_a - cell_a)
                fb = np.float32(at_b - cell_b)
                row = 2 * (cell_b * plane + cell_a * nc + c)
                v00 = np.float32(table[row])
                v10 = np.float32(table[row + 2 * nc])
                v01 = np.float32(table[row + 2 * plane])
                v11 = np.float32(table[row + 2 * plane + 2 * nc])
                top = v00 + fa * (v10 - v00)
                bottom = v01 + fa * (v11 - v01)
                acc_0 += top + fb * (bottom - top)
                v00 = np.float32(table[row + 1])
                v10 = np.float32(table[row + 2 * nc + 1])
                v01 = np.float32(table[row + 2 * plane + 1])
                v11 = np.float32(table[row + 2 * plane + 2 * nc + 1])
                top = v00 + fa * (v10 - v00)
                bottom = v01 + fa * (v11 - v01)
                acc_1 += top + fb * (bottom - top)
                a += slope_a
                b += slope_b
            out[0, v, u] = acc_0 * scale_0 * length
            out[1, v, u] = acc_1 * scale_1 * length


@njit(parallel=True, fastmath=True, cache=True, boundscheck=False, nogil=True)
def _joseph_pair_kernel_avx2(words, scale_0, scale_1, nb, na, nc, shifts, first_nonzero, last_nonzero, source, q00, qu,
                             qv, d00, du, dv, columns, every, part, out):  # pragma: no cover - compiled
    """:func:`_joseph_pair_kernel` eight neighbouring rays of a row (of those ``part`` takes) at a time, each step
    along the principal axis one AVX2 gather per stencil corner (:func:`_sample_octet`); ``words`` is the pair
    table seen as uint32, one word per voxel. Only where :data:`AVX2`."""
    nv = out.shape[1]
    plane = na * nc
    for tile in prange((nv + _TILE_ROWS - 1) // _TILE_ROWS):
        rays = np.empty(4 * _LANES, np.float64)
        span = np.empty(4 * _LANES, np.int32)
        sums = np.empty(2 * _LANES, np.float32)
        lengths = np.empty(_LANES, np.float64)
        pixels = np.empty((_TILE_ROWS, out.shape[2]), np.int64)
        counts = np.zeros(_TILE_ROWS, np.int64)
        top = tile * _TILE_ROWS
        rows = min(_TILE_ROWS, nv - top)
        most = 0
        for row in range(rows):
            v = top + row
            counts[row] = _row_pixels(v, columns[v, 0], columns[v, 1], every, part, pixels[row])
            most = max(most, counts[row])
        # Down the tile's rows before along them: the rows' octets at one place read the same voxels' neighbours.
        for start in range(0, most, _LANES):
            for row in range(rows):
                if start >= counts[row]:
                    continue
                v = top + row
                lanes = min(_LANES, counts[row] - start)
                c_start, c_stop = nc, -1
                for lane in range(_LANES):
                    span[lane], span[_LANES + lane] = 0, -1  # beyond the row's last column: no samples
                    span[2 * _LANES + lane], span[3 * _LANES + lane] = 0, -1
                for lane in range(lanes):
                    a0, b0, slope_a, slope_b, first, last, length = _joseph_ray(pixels[row, start + lane], v, source,
                                                                                q00, qu, qv, d00, du, dv, nb, na, nc)
                    rays[lane], rays[_LANES + lane] = a0, b0
                    rays[2 * _LANES + lane], rays[3 * _LANES + lane] = slope_a, slope_b
                    span[lane], span[_LANES + lane], lengths[lane] = first, last, length
                    sampled_first, sampled_last = _sampled_slices(a0, b0, slope_a, slope_b, first, last,
                                                                  first_nonzero, last_nonzero)
                    span[2 * _LANES + lane], span[3 * _LANES + lane] = sampled_first, sampled_last
                    if sampled_first <= sampled_last:
                        c_start, c_stop = min(c_start, sampled_first), max(c_stop, sampled_last)
                _sample_octet(words, shifts, plane, nc, c_start, c_stop, rays, span, sums)
                for lane in range(lanes):
                    out[0, v, pixels[row, start + lane]] = sums[lane] * scale_0 * lengths[lane]
                    out[1, v, pixels[row, start + lane]] = sums[_LANES + lane] * scale_1 * lengths[lane]


@njit(inline="always", fastmath=True)
def _cylinder_chord(sx, sy, sz, dx, dy, dz, px, py, pz, ax, ay, az, length, radius, nx, ny, nz, offset):
    """Length (mm) of the ray s + t d (|d| = 1) inside the cylinder from p along unit a and in the half-space
    n . x <= offset (a bevel's cut; n = 0, offset > 0 keeps all of it), closed form."""
    wx = sx - px
    wy = sy - py
    wz = sz - pz
    along_w = wx * ax + wy * ay + wz * az
    along_d = dx * ax + dy * ay + dz * az
    # Components perpendicular to the axis.
    ex = dx - along_d * ax
    ey = dy - along_d * ay
    ez = dz - along_d * az
    fx = wx - along_w * ax
    fy = wy - along_w * ay
    fz = wz - along_w * az
    qa = ex * ex + ey * ey + ez * ez
    qb = ex * fx + ey * fy + ez * fz
    qc = fx * fx + fy * fy + fz * fz - radius * radius
    if qa < 1e-14:  # ray parallel to the axis: inside the tube everywhere or nowhere
        if qc > 0.0:
            return 0.0
        t0 = -1e30
        t1 = 1e30
    else:
        disc = qb * qb - qa * qc
        if disc <= 0.0:
            return 0.0
        root = math.sqrt(disc)
        t0 = (-qb - root) / qa
        t1 = (-qb + root) / qa
    if abs(along_d) < 1e-14:  # ray perpendicular to the axis: inside the end caps everywhere or nowhere
        if along_w < 0.0 or along_w > length:
            return 0.0
    else:
        ta = -along_w / along_d
        tb = (length - along_w) / along_d
        t0 = max(t0, min(ta, tb))
        t1 = min(t1, max(ta, tb))
    across = nx * dx + ny * dy + nz * dz
    room = offset - (nx * sx + ny * sy + nz * sz)
    if abs(across) < 1e-14:  # ray parallel to the cut: on its kept side everywhere or nowhere
        if room < 0.0:
            return 0.0
    elif across > 0.0:
        t1 = min(t1, room / across)
    else:
        t0 = max(t0, room / across)
    return max(t1 - t0, 0.0)


@njit(fastmath=True, cache=True, nogil=True)
def _needle_kernel(source, d00, du, dv, u0, v0, cylinders, samples, shadows, out):  # pragma: no cover - compiled
    """Needle line integrals of the pixels of ``out`` (the patch at column u0, row v0).

    ``cylinders`` rows: start (3), unit axis (3), length, radius, mu, cut normal (3), cut offset. Each pixel is
    sampled by ``samples`` x ``samples`` rays over its area and the detector's average of ``exp(-p)`` is
    returned as ``-ln(mean exp(-p))``, so a needle thinner than a pixel still darkens it. Pixels
    farther than every cylinder's reach from its projected axis (``shadows`` rows: u, v, u, v,
    reach, in pixels) are skipped: the needle cannot cover them.
    """
    nv, nu, _ = out.shape
    for r in range(nv):
        for c in range(nu):
            near = False
            for k in range(shadows.shape[0]):
                su = shadows[k, 2] - shadows[k, 0]
                sv = shadows[k, 3] - shadows[k, 1]
                pu = u0 + c - shadows[k, 0]
                pv = v0 + r - shadows[k, 1]
                along = min(max((pu * su + pv * sv) / max(su * su + sv * sv, 1e-12), 0.0), 1.0)
                if (pu - along * su) ** 2 + (pv - along * sv) ** 2 <= shadows[k, 4] ** 2:
                    near = True
            if not near:
                continue
            lowest = 1e300
            for sub in range(samples * samples):
                u = u0 + c + ((sub % samples) + 0.5) / samples - 0.5
                v = v0 + r + ((sub // samples) + 0.5) / samples - 0.5
                dx, dy, dz = _pixel_vector(u, v, d00, du, dv)
                norm = math.sqrt(dx * dx + dy * dy + dz * dz)
                total = 0.0
                for k in range(cylinders.shape[0]):
                    cyl = cylinders[k]
                    total += cyl[8] * _cylinder_chord(source[0], source[1], source[2], dx / norm, dy / norm, dz / norm,
                                                      cyl[0], cyl[1], cyl[2], cyl[3], cyl[4], cyl[5], cyl[6], cyl[7],
                                                      cyl[9], cyl[10], cyl[11], cyl[12])
                lowest = min(lowest, total)
                out[r, c, sub] = total
            # -ln(mean exp(-p)), computed relative to the smallest p so that it cannot underflow.
            mean = 0.0
            for sub in range(samples * samples):
                mean += math.exp(lowest - out[r, c, sub])
            out[r, c, 0] = lowest - math.log(mean / (samples * samples))


# --------------------------------------------------------------------------- preparation
@dataclass(frozen=True, eq=False)
class _Prepared:
    """A volume reordered for one projector and principal axis."""

    table: np.ndarray  # flat float32, or int16 quantised (values = table * scale)
    shape: tuple[int, int, int]  # (nb, na, nc) of the voxels (Siddon: nodes are nc + 1)
    world_to_table: np.ndarray  # 4x4: LPS mm -> (a, b, c) table coordinates
    empty: bool
    scale: float = 1.0
    shifted: bool = False  # Joseph's: each slice resampled on a grid of its own shift (:func:`_stagger`)


def _nonzero_box(values: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Index slices of the smallest box holding every non-zero voxel (None if all are zero)."""
    nonzero = values != 0
    boxes = []
    for axis in range(3):
        hit = np.flatnonzero(np.any(nonzero, axis=tuple(a for a in range(3) if a != axis)))
        if hit.size == 0:
            return None
        boxes.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(boxes)  # type: ignore[return-value]


def _principal_axis(volume: Volume, carm: CArm) -> int:
    """The voxel axis the central ray crosses most walls of (largest index-space component)."""
    index_direction = np.linalg.inv(volume.affine[:3, :3]) @ carm.beam_direction
    return int(np.argmax(np.abs(index_direction)))


def _prepare(volume: Volume, method: str, axis: int, *, shifted: bool = False) -> _Prepared:
    """``volume`` prepared for ``method`` along ``axis``, held by the volume (``volume.derived``)."""
    return volume.derived(("drr.prepared", method, axis, shifted),
                          lambda: _prepared(volume.array, volume.affine, method, axis, shifted=shifted))


def _prepared(values: np.ndarray, affine: np.ndarray, method: str, axis: int, *, quantise: bool = False,
              shifted: bool = False) -> _Prepared:
    """The table of ``values`` (on the grid of ``affine``) for ``method`` along ``axis``.

    With ``shifted`` a Joseph table's slices are resampled on grids shifted slice by slice (:func:`_stagger`),
    else they are the volume's own. With ``quantise`` it holds ``round(value / scale)`` as int16 (signed: the
    cubic resampling rings a little below zero beside an edge), ``scale`` the furthest the values reach (shifted:
    the resampling's, :data:`_STAGGER_REACH` x the largest value) over 32767: half the memory of float32, and the
    bilinear interpolation, being linear, needs only the result multiplied by ``scale``. The error of a line
    integral is at most half a step per sample (for an anatomy's mu, ~3e-6 /mm a step: far below the image's
    quantum noise).
    """
    box = _nonzero_box(values)
    others = [a for a in range(3) if a != axis]
    order = (others[1], others[0], axis)  # table axes (b, a, c): c contiguous, a next
    to_voxel = np.linalg.inv(affine)
    if box is None:
        return _Prepared(np.zeros(8, np.float32), (1, 1, 1), np.eye(4), True)
    start = np.array([s.start for s in box], dtype=np.float64)
    block = np.transpose(values[box], order)
    nb, na, nc = block.shape
    permute = np.zeros((4, 4))
    permute[3, 3] = 1.0
    # Table coordinate (a, b, c) = voxel index along (others[0], others[1], axis) minus the crop start.
    for row, voxel_axis in enumerate((others[0], others[1], axis)):
        permute[row, voxel_axis] = 1.0
        permute[row, 3] = -start[voxel_axis]
    world_to_table = permute @ to_voxel
    if method == "siddon":
        table = np.zeros((nb, na, nc + 1), dtype=np.float32)
        np.cumsum(block, axis=2, dtype=np.float32, out=table[:, :, 1:])
        scale = 1.0
    else:
        reach = _STAGGER_REACH if shifted else 1.0
        scale = reach * float(np.max(np.abs(block))) / _QUANTISED_STEPS if quantise else 1.0
        table = np.zeros((nb + 2 * _PAD, na + 2 * _PAD, nc + 2), dtype=np.int16 if quantise else np.float32)

        def store(slices: slice, values: np.ndarray) -> None:
            table[:, :, slices] = np.rint(values / scale) if quantise else values

        if shifted:
            _stagger(block, store)
        else:
            for first in range(0, nc, _STAGGER_SLICES):  # as many slices at a time: no full-size temporary
                chunk = block[:, :, first:first + _STAGGER_SLICES]
                store(slice(first + 1, first + 1 + chunk.shape[2]), np.pad(chunk, ((_PAD, _PAD), (_PAD, _PAD), (0, 0))))
        world_to_table = _padding_shift() @ world_to_table
        nb, na, nc = table.shape
    return _Prepared(table.reshape(-1), (nb, na, nc), world_to_table, False, scale, shifted)


def _padding_shift() -> np.ndarray:
    """Table coordinates of a Joseph table from its volume's: :data:`_PAD` zero nodes before the first voxel across
    the slices, one before the first slice."""
    shift = np.eye(4)
    shift[:3, 3] = (_PAD, _PAD, 1.0)
    return shift


@lru_cache(maxsize=16)
def _stagger_shifts(slices: int) -> tuple[np.ndarray, np.ndarray]:
    """Each table slice's sub-voxel shift (a, b), in [0, 1): the R2 sequence (Roberts 2018, the plastic number's
    powers), whose every run of consecutive slices covers the unit square evenly (float64, float32 copies).

    A ray of slope ``t`` voxels per slice along an axis meets offsets stepping by ``t`` minus the axis's step (0.755
    along a, 0.570 along b) from slice to slice; where that is near a whole voxel (or half of one, for the ripple's
    second harmonic) it meets one offset in every slice, as an unshifted table's AP ray does: on the AP's table
    (a left-right, b cranio-caudal) RAO 14, caudal 21-29 and cranial 28-35 take back a third to all of the
    unshifted AP's stripes (Gaussian blobs, tests/simulator/test_drr.py), and a 768-pixel field, whose slope spans
    0.25-0.4 corner to corner, reaches such a slope in part of the RAO 20's and the caudal 15's field. No fixed
    sequence avoids it: the offsets' error power summed over all slopes is the same for every sequence (Parseval).
    Shifts even at every slope (random) measured 10-40x R2's stripe power on the blobs away from R2's resonances,
    1.5-3x on the 1 mm patient's AP views and no less on its tilted ones (stop 27, proj14); steps chosen against the
    slopes of the clinical set-ups' views and their fields came within 0.03 of these (0.54-0.57 cranio-caudal,
    0.70-0.77 left-right) [ED]."""
    c = np.arange(slices, dtype=np.float64)
    shifts = np.stack([np.modf(0.5 + c / _PLASTIC)[0], np.modf(0.5 + c / _PLASTIC ** 2)[0]])
    shifts.setflags(write=False)
    return shifts, shifts.astype(np.float32)


def _cubic_weights(shift: np.ndarray) -> np.ndarray:
    """The cubic B-spline's weights (4, n) of coefficients i - 1 .. i + 2 at position i + ``shift``."""
    rest = 1.0 - shift
    return np.stack([rest ** 3 / 6.0, 2.0 / 3.0 - shift ** 2 + shift ** 3 / 2.0,
                     2.0 / 3.0 - rest ** 2 + rest ** 3 / 2.0, shift ** 3 / 6.0])


def _stagger(block: np.ndarray, store) -> None:
    """Resample each slice of ``block`` (nb, na, nc) on its own grid, shifted by :func:`_stagger_shifts`, for a
    Joseph table padded by :data:`_PAD` nodes across and one slice before and after; ``store(slices, values)``
    receives the table's slices ``slices`` (nb + 2 _PAD, na + 2 _PAD, k), chunk by chunk (no full-size temporary).

    Why: Joseph's samples interpolate linearly within a slice, whose response depends on the sample's offset
    within its cell (a voxel's value in full at a node, half of two neighbours' at mid-cell). A ray that runs
    along the slices' axis keeps one offset across all of them, so the detector's rays sweep the offset once
    per voxel: a ripple in the line integrals of one voxel's period (1.1-1.2 % of the transmission over the
    1 mm patient's pelvis, stop 25's pelvis12; stripes and hatching once the display enhances edges). On
    grids shifted slice by slice a ray takes every offset in turn, so its sum weighs them alike: the field
    each slice holds is the cubic spline through its voxels (Unser 1999, IEEE Signal Process Mag 16(6):22,
    interpolating, 16x less offset-dependence than linear on the 1 mm patient, pelvis12), read linearly,
    at no extra cost per sample."""
    nb, na, nc = block.shape
    shifts, _ = _stagger_shifts(nc + 2)
    # Table node i's value at i + shift takes coefficients i - 1 .. i + 2: one more before the padding, two after.
    coefficients = np.zeros((nb + 2 * _PAD + 3, na + 2 * _PAD + 3, _STAGGER_SLICES), np.float32)
    values = np.empty((nb + 2 * _PAD, na + 2 * _PAD, _STAGGER_SLICES), np.float32)
    for first in range(0, nc, _STAGGER_SLICES):
        last = min(first + _STAGGER_SLICES, nc)
        coefficients[:] = 0.0
        coefficients[_PAD + 1:_PAD + 1 + nb, _PAD + 1:_PAD + 1 + na, :last - first] = block[:, :, first:last]
        weights = [_cubic_weights(np.resize(shift[first + 1:last + 1], _STAGGER_SLICES)).astype(np.float32)
                   for shift in shifts]
        _shifted_slices(coefficients, weights[0], weights[1], values)
        store(slice(first + 1, last + 1), values[:, :, :last - first])


# The cubic B-spline's prefilter's pole (Unser 1999, Box 2): its coefficients are the samples filtered by
# 6 / ((1 - z / pole)(1 - pole / z)).
_SPLINE_POLE = math.sqrt(3.0) - 2.0


@njit(parallel=True, fastmath=True, cache=True, boundscheck=False, nogil=True)
def _shifted_slices(coefficients, weights_a, weights_b, values):  # pragma: no cover - compiled
    """Each slice ``c`` of ``coefficients`` (b, a, c; samples, zero beyond) turned into its cubic B-spline's
    coefficients in place (the causal and anticausal recursions along a, then b, zero-extended: Unser 1999), and
    ``values[j, i, c]`` the spline at (j + 1, i + 1) + slice c's shift, from its weights (4, c) across a and b."""
    nb, na, nc = coefficients.shape
    pole = np.float32(_SPLINE_POLE)
    last = np.float32(_SPLINE_POLE / (_SPLINE_POLE * _SPLINE_POLE - 1.0))
    for b in prange(nb):
        line = coefficients[b]
        for i in range(1, na):
            for c in range(nc):
                line[i, c] += pole * line[i - 1, c]
        for c in range(nc):
            line[na - 1, c] *= last
        for i in range(na - 2, -1, -1):
            for c in range(nc):
                line[i, c] = pole * (line[i + 1, c] - line[i, c])
    for a in prange(na):
        for j in range(1, nb):
            for c in range(nc):
                coefficients[j, a, c] += pole * coefficients[j - 1, a, c]
        for c in range(nc):
            coefficients[nb - 1, a, c] *= last
        for j in range(nb - 2, -1, -1):
            for c in range(nc):
                coefficients[j, a, c] = pole * (coefficients[j + 1, a, c] - coefficients[j, a, c])
    gain = np.float32(36.0)  # the prefilter's 6 along each axis
    for j in prange(values.shape[0]):
        across = np.zeros((4, values.shape[1], nc), np.float32)
        for t in range(4):
            for i in range(values.shape[1]):
                for c in range(nc):
                    across[t, i, c] = (weights_a[0, c] * coefficients[j + t, i, c]
                                       + weights_a[1, c] * coefficients[j + t, i + 1, c]
                                       + weights_a[2, c] * coefficients[j + t, i + 2, c]
                                       + weights_a[3, c] * coefficients[j + t, i + 3, c])
        for i in range(values.shape[1]):
            for c in range(nc):
                values[j, i, c] = gain * (weights_b[0, c] * across[0, i, c] + weights_b[1, c] * across[1, i, c]
                                          + weights_b[2, c] * across[2, i, c] + weights_b[3, c] * across[3, i, c])

@dataclass(frozen=True, eq=False)
class _PreparedPair:
    """Two materials' volumes (water, bone) in one interleaved Joseph table, quantised to int16."""

    table: np.ndarray  # flat int16 (nb, na, nc, 2)
    shape: tuple[int, int, int]
    world_to_table: np.ndarray
    empty: bool
    scales: tuple[float, float]
    first_nonzero: np.ndarray  # int32 (nb, na): per column, the first slice with a non-zero word near it
    last_nonzero: np.ndarray  # int32 (nb, na): and the last (:func:`_nonzero_slices`)


def _prepared_pair(first: np.ndarray, second: np.ndarray, affine: np.ndarray, axis: int,
                   box: tuple[slice, slice, slice] | None = None) -> _PreparedPair:
    """The interleaved, quantised Joseph table of two non-negative volumes on one grid (see :func:`_prepared`), over
    ``box`` (by default the smallest holding every non-zero voxel)."""
    box = _nonzero_box(np.maximum(first, second)) if box is None else box
    if box is None:
        return _PreparedPair(np.zeros(16, np.int16), (1, 1, 1), np.eye(4), True, (1.0, 1.0), np.zeros((1, 1), np.int32),
                             np.zeros((1, 1), np.int32))
    others = [a for a in range(3) if a != axis]
    order = (others[1], others[0], axis)
    start = np.array([s.start for s in box], dtype=np.float64)
    permute = np.zeros((4, 4))
    permute[3, 3] = 1.0
    for row, voxel_axis in enumerate((others[0], others[1], axis)):
        permute[row, voxel_axis] = 1.0
        permute[row, 3] = -start[voxel_axis]
    world_to_table = _padding_shift() @ permute @ np.linalg.inv(affine)
    blocks = [np.transpose(values[box], order) for values in (first, second)]
    nb, na, nc = blocks[0].shape
    scales = tuple(_STAGGER_REACH * max(float(np.max(block)), 1e-12) / _QUANTISED_STEPS for block in blocks)
    table = np.zeros((nb + 2 * _PAD, na + 2 * _PAD, nc + 2, 2), dtype=np.int16)
    for channel, (block, scale) in enumerate(zip(blocks, scales)):
        def store(slices: slice, values: np.ndarray, channel: int = channel, scale: float = scale) -> None:
            table[:, :, slices, channel] = np.rint(values / scale)

        _stagger(block, store)
    shape = table.shape[:3]
    return _PreparedPair(table.reshape(-1), shape, world_to_table, False, scales,  # type: ignore[arg-type]
                         *_nonzero_slices(table.view(np.uint32)[..., 0]))


# How far from a column of a Joseph table its samples' stencils reach, in columns either way: a sample on slice c's
# grid, shifted by under a voxel (:func:`_stagger`), reads the column of its position's cell, the one before and the
# one after; one more for the float32 positions' rounding (:func:`_sample_octet`) and one more for a ray's position
# reckoned apart from its samples' (:func:`_sampled_slices`).
_NONZERO_REACH = 3


def _nonzero_slices(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column (b, a) of a Joseph table's ``words`` (nb, na, nc): the first and the last slice holding a non-zero
    word in any column within :data:`_NONZERO_REACH` of it (int32 (nb, na); nc and -1 where there is none), so that a
    ray's samples before and after them read zeros only (:func:`_sampled_slices`)."""
    nonzero = words != 0
    slices = words.shape[2]
    anywhere = nonzero.any(axis=2)
    first = np.where(anywhere, np.argmax(nonzero, axis=2), slices)
    last = np.where(anywhere, slices - 1 - np.argmax(nonzero[:, :, ::-1], axis=2), -1)
    size = 2 * _NONZERO_REACH + 1
    return (ndimage.minimum_filter(first, size, mode="nearest").astype(np.int32),
            ndimage.maximum_filter(last, size, mode="nearest").astype(np.int32))


def _ray_setup(carm: CArm, world_to_table: np.ndarray) -> tuple[np.ndarray, ...]:
    """Source (table coords) and the linear maps pixel -> ray direction in table coords and in mm."""
    pixel_to_direction = carm.pixel_to_direction
    to_table = world_to_table[:3, :3] @ pixel_to_direction
    source = world_to_table[:3, :3] @ carm.source + world_to_table[:3, 3]
    return (source, to_table[:, 2].copy(), to_table[:, 0].copy(), to_table[:, 1].copy(),
            pixel_to_direction[:, 2].copy(), pixel_to_direction[:, 0].copy(), pixel_to_direction[:, 1].copy())


def line_integrals(volume: Volume, carm: CArm, *, method: Method = "joseph", shifted: bool = False) -> np.ndarray:
    """Integral of the volume's values along every pixel's ray (values x mm), float32 (rows, columns).

    Parameters
    ----------
    volume : Volume
        Values to integrate (mu in 1/mm gives the dimensionless attenuation line integral); zero is
        taken outside the grid. Its preparation is held by the volume (``volume.derived``), so do
        not modify its array in place afterwards.
    carm : CArm
        The pose and detector.
    method : {"joseph", "siddon"}
        Bilinear samples per slice, or the exact traversal of constant voxels (module docstring).
    shifted : bool
        Joseph's slices each resampled on a grid of its own sub-voxel shift (:func:`_stagger`), as an anatomy's
        CT is: no stripes one voxel apart, for a one-off cost per volume about a Gaussian filter's; a smooth
        volume made anew each frame (the contrast's, Gaussian-blurred) is read on its own grid.

    Examples
    --------
    >>> slab = Volume.from_spacing(np.full((40, 10, 40), 0.02, np.float32), (1, 1, 1), origin=(-19.5, -4.5, -19.5))
    >>> image = line_integrals(slab, CArm(detector_pixels=16, detector_size_mm=20))
    >>> round(float(image[8, 8]) / 0.02, 3)   # the central ray crosses the slab's 10 mm
    10.0
    """
    if method not in METHODS:
        raise SpinesimError(f"unknown DRR method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    values = volume.array
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise SpinesimError(f"a DRR needs a numeric volume, got dtype {values.dtype}")
    return _project(_prepare(volume, method, _principal_axis(volume, carm), shifted=shifted), carm, method)


def _project(prepared: _Prepared, carm: CArm, method: str, columns: np.ndarray | None = None, *, every: int = 1,
             part: int = _ALL_RAYS) -> np.ndarray:
    """The line integrals of ``prepared`` for ``carm``: every pixel, or only each row's ``columns``
    (:func:`_field_columns`; zero elsewhere), of those ``part`` takes of bins of ``every`` pixels (Joseph's
    only: :func:`_row_pixels`)."""
    out = np.zeros(carm.shape, dtype=np.float32)
    if prepared.empty:
        return out
    if columns is None:
        columns = _all_columns(carm.detector_pixels)
    nb, na, nc = prepared.shape
    with numba.parallel_chunksize(_ROWS_PER_CHUNK):
        if method == "siddon":
            _siddon_kernel(prepared.table, nb, na, nc, *_ray_setup(carm, prepared.world_to_table), columns, out)
        else:
            shifts = _stagger_shifts(nc)[0] if prepared.shifted else np.zeros((2, nc))
            _joseph_kernel(prepared.table, prepared.scale, nb, na, nc, shifts, *_ray_setup(carm, prepared.world_to_table),
                           columns, every, part, out)
    return out


@lru_cache(maxsize=8)
def _all_columns(pixels: int) -> np.ndarray:
    """Each row's first and last column (int64 (rows, 2)): the whole detector."""
    columns = np.tile(np.array([0, pixels - 1], dtype=np.int64), (pixels, 1))
    columns.setflags(write=False)
    return columns


@lru_cache(maxsize=8)
def _field_columns(pixels: int, shape: str) -> np.ndarray:
    """Each row's first and last column (int64 (rows, 2); first > last for none) of the pixels an anatomy's
    frame is projected in: the detector's widest field (an intensifier's round one, collimation open), widened
    by :data:`_FIELD_MARGIN_PIXELS`. The rest of an intensifier's square is never exposed
    (``simulator.imaging.fluoro.measure`` zeroes it before the blur): its corners, 20% of a 512-pixel
    detector's pixels with the margin, are not projected.

    >>> _field_columns(32, "circle")[[0, 16]].tolist()  # the top row: the circle's chord and margin; a middle row
    [[5, 26], [0, 31]]
    >>> _field_columns(32, "square")[0].tolist()  # a flat panel's field is its square
    [0, 31]
    """
    field = CArm(detector_pixels=pixels, detector_shape=shape).field_mask()
    field = ndimage.binary_dilation(field, np.ones((3, 3), bool), iterations=_FIELD_MARGIN_PIXELS)
    hit = np.arange(pixels)[None, :]
    columns = np.stack([np.where(field, hit, pixels).min(axis=1), np.where(field, hit, -1).max(axis=1)], axis=1)
    columns = np.ascontiguousarray(columns, dtype=np.int64)
    columns.setflags(write=False)
    return columns


@lru_cache(maxsize=8)
def traced_field(pixels: int, shape: str) -> np.ndarray:
    """The pixels of :func:`_field_columns` as a mask (rows, columns)."""
    columns = _field_columns(pixels, shape)
    hit = np.arange(pixels)[None, :]
    mask = (hit >= columns[:, :1]) & (hit <= columns[:, 1:])
    mask.setflags(write=False)
    return mask


def reference_line_integrals(volume: Volume, carm: CArm, *, step_mm: float = 0.25, order: int = 1,
                             rows: slice = slice(None)) -> np.ndarray:
    """Plain-numpy ray caster: samples every ``step_mm`` along each ray (midpoint rule).

    ``order`` 1 samples trilinearly (the smooth field Joseph's method integrates), 0 takes the
    nearest voxel (the constant voxels Siddon's method integrates). Slow and simple, it is the
    independent check of the compiled projectors (float64, no reordering, no cropping); ``rows``
    restricts it to some detector rows.
    """
    if order not in (0, 1):
        raise SpinesimError(f"reference ray caster order must be 0 (nearest) or 1 (trilinear), got {order}")
    values = np.pad(np.asarray(volume.array, dtype=np.float64), 1)
    n = np.array(values.shape)
    to_voxel = np.linalg.inv(volume.affine)
    row_index = np.arange(carm.detector_pixels)[rows]
    u, v = np.meshgrid(np.arange(carm.detector_pixels, dtype=np.float64), row_index.astype(np.float64))
    directions = carm.ray_directions(u, v).reshape(-1, 3)
    # Rays in padded voxel coordinates, clipped to the grid's box (voxel edges, one padding voxel out).
    origin = to_voxel[:3, :3] @ carm.source + to_voxel[:3, 3] + 1.0
    steps = directions @ to_voxel[:3, :3].T
    low_edge = 0.5 if order == 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_low = (low_edge - origin) / steps
        t_high = (n - 1.0 - low_edge - origin) / steps
    t_enter = np.max(np.where(steps != 0, np.minimum(t_low, t_high), -np.inf), axis=1)
    t_exit = np.min(np.where(steps != 0, np.maximum(t_low, t_high), np.inf), axis=1)
    result = np.zeros(len(directions))
    flat = values.ravel()
    strides = np.array([n[1] * n[2], n[2], 1])
    for chunk in np.array_split(np.arange(len(directions)), max(1, len(directions) // 2048)):
        enter, exit_ = t_enter[chunk], t_exit[chunk]
        length = np.maximum(exit_ - enter, 0.0)
        count = int(np.ceil(length.max() / step_mm)) if length.size and length.max() > 0 else 0
        if count == 0:
            continue
        k = (np.arange(count) + 0.5) * step_mm
        t = enter[:, None] + k[None, :]
        points = origin[None, None, :] + t[..., None] * steps[chunk][:, None, :]
        if order == 0:
            index = np.clip(np.floor(points + 0.5).astype(np.int64), 0, n - 1)
            sample = flat[(index * strides).sum(axis=-1)]
        else:
            base = np.clip(np.floor(points).astype(np.int64), 0, n - 2)
            frac = points - base
            sample = np.zeros(t.shape)
            for corner in range(8):
                offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
                weight = np.prod(np.where(offset, frac, 1.0 - frac), axis=-1)
                sample += weight * flat[((base + offset) * strides).sum(axis=-1)]
        # Each sample stands for its step, the last one only for what is left of the chord.
        widths = np.clip(exit_[:, None] - (enter[:, None] + k[None, :] - 0.5 * step_mm), 0.0, step_mm)
        result[chunk] = (sample * widths).sum(axis=1)
    return result.reshape(len(row_index), carm.detector_pixels).astype(np.float32)


# --------------------------------------------------------------------------- anatomy
def mu_volume(ct: Volume, kev: float = FLUORO_EFFECTIVE_KEV) -> Volume:
    """Linear attenuation (1/mm, float32) of a CT in HU at ``kev`` through the tissue table's bilinear map."""
    return ct.with_array(hu_to_mu(kev)(ct.array))


def pose_key(carm: CArm, method: str) -> tuple:
    """What a DRR depends on: the projector, the projection geometry and detector size, not the collimation."""
    return (method, carm.detector_pixels, np.round(carm.projection_matrix, 9).tobytes())


def anatomy_line_integrals(anatomy: Anatomy, carm: CArm, *, method: Method = "joseph",
                           kev: float = FLUORO_EFFECTIVE_KEV) -> np.ndarray:
    """The anatomy's attenuation line integrals for ``carm`` (float32 image), cached per pose.

    Both caches are held by the anatomy (``anatomy.derived``). The projector's table is built once
    per energy, method and principal axis (Joseph's quantised to int16: see :func:`_prepared`; the
    mu volume itself is not kept, each table is made from a transient one); each pose's image is
    kept (up to 32 poses per energy, least recently used dropped). Only the pixels of the detector's
    widest field are projected (:func:`_field_columns`); beyond it the image is zero. The returned array
    is shared: do not modify it.
    """
    if method not in METHODS:
        raise SpinesimError(f"unknown DRR method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    return anatomy.derived.recent(("drr.frames", kev), pose_key(carm, method),
                                  lambda: _anatomy_frame(anatomy, carm, method, kev), keep=_FRAMES_PER_ANATOMY)


def _anatomy_frame(anatomy: Anatomy, carm: CArm, method: str, kev: float) -> np.ndarray:
    axis = _principal_axis(anatomy.ct, carm)
    table = anatomy.derived(("drr.table", kev, method, axis), lambda: _anatomy_table(anatomy, method, axis, kev))
    image = _project(table, carm, method, _field_columns(carm.detector_pixels, carm.detector_shape))
    image.setflags(write=False)
    return image


def _anatomy_table(anatomy: Anatomy, method: str, axis: int, kev: float) -> _Prepared:
    mu = mu_volume(anatomy.ct, kev)
    return _prepared(mu.array, mu.affine, method, axis, quantise=method == "joseph", shifted=True)


def anatomy_basis_line_integrals(anatomy: Anatomy, carm: CArm, *, method: Method = "joseph") -> np.ndarray:
    """The anatomy's path lengths of water and of cortical bone along every ray, mm (float32, (2, rows, columns)).

    The CT is decomposed into the two materials by :func:`anatomy_models.tissues.hu_to_basis` and
    both are projected in one traversal (Joseph: one interleaved int16 table; Siddon: two tables),
    cached like :func:`anatomy_line_integrals`: the table per method and principal axis, the frame
    per pose, zero beyond the detector's widest field (:func:`_field_columns`). For a binned detector
    (:class:`~simulator.imaging.carm.RaysOfBins`, a new pose's preview) its rays are traced as its full frame's and
    kept for it, so that frame traces only its other rays (:func:`_bins_of_frame`). The polychromatic beam
    (:mod:`simulator.imaging.spectrum`) turns them into what the detector sees at any kVp without
    projecting again. The returned array is shared: do not modify it.
    """
    if method not in METHODS:
        raise SpinesimError(f"unknown DRR method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    return anatomy.derived.recent("drr.basis_frames", pose_key(carm, method),
                                  lambda: _anatomy_basis_frame(anatomy, carm, method), keep=_FRAMES_PER_ANATOMY)


def _anatomy_basis_frame(anatomy: Anatomy, carm: CArm, method: str) -> np.ndarray:
    if method == "joseph" and isinstance(carm, RaysOfBins):
        return _bins_of_frame(anatomy, carm)
    if method == "joseph":
        # The rays a preview of this pose traced (its bins', :func:`_bins_of_frame`) are not traced again.
        traced = anatomy.derived.recent("drr.basis_bins_traced", pose_key(carm, method), _BinsTraced, keep=_POSES_BINNED)
        out, every, part = traced.frame, traced.every, _OTHER_RAYS
        traced.frame = None  # the frame is completed now: the frames' shelf keeps it
        if out is None:
            out, every, part = np.zeros((2, *carm.shape), dtype=np.float32), 1, _ALL_RAYS
        out = _traced(anatomy, carm, out, every, part)
    else:
        axis = _principal_axis(anatomy.ct, carm)
        tables = anatomy.derived(("drr.basis_table", method, axis), lambda: _anatomy_basis_table(anatomy, method, axis))
        columns = _field_columns(carm.detector_pixels, carm.detector_shape)
        out = np.stack([_project(table, carm, method, columns) for table in tables])
        for channel, slabs in enumerate(_continuations(anatomy)):
            for slab in slabs:
                out[channel] += _project(_prepare(slab, "joseph", _principal_axis(slab, carm)), carm, "joseph", columns)
    out.setflags(write=False)
    return out


# Poses whose preview's rays are kept for their full frame (2 MB each at 512 x 512): a shot's preview is
# followed by its frame at once.
_POSES_BINNED = 2


@dataclass(eq=False)
class _BinsTraced:
    """A pose's frame (water and bone, (2, rows, columns)) with only the rays of its bins of ``every`` pixels
    traced (None: none traced, or the frame completed since), and the binned detector's image."""

    frame: np.ndarray | None = None
    every: int = 1
    bins: np.ndarray | None = None  # the binned detector's image: the bins' rays, in its own field and margin


def _traced(anatomy: Anatomy, carm: CArm, out: np.ndarray, every: int, part: int,
            columns: np.ndarray | None = None) -> np.ndarray:
    """``out`` with the water and bone paths of ``carm``'s rays that ``part`` takes of bins of ``every`` pixels
    (:func:`_row_pixels`) in each row's ``columns`` (by default the detector's widest field, :func:`_field_columns`)
    added, the body's continuations' included."""
    axis = _principal_axis(anatomy.ct, carm)
    tables = anatomy.derived(("drr.basis_table", "joseph", axis), lambda: _anatomy_basis_table(anatomy, "joseph", axis))
    if columns is None:
        columns = _field_columns(carm.detector_pixels, carm.detector_shape)
    _project_pair(tables, carm, columns, every=every, part=part, out=out)
    for channel, slabs in enumerate(_continuations(anatomy)):
        for slab in slabs:
            out[channel] += _project(_prepare(slab, "joseph", _principal_axis(slab, carm)), carm, "joseph", columns,
                                     every=every, part=part)
    return out


def _continuations(anatomy: Anatomy) -> tuple[tuple[Volume, ...], tuple[Volume, ...]]:
    """The body's continuations beyond the anatomy's CT (:func:`body_extension`): water's, then bone's."""
    return anatomy.derived("drr.body_extension",
                           lambda: (body_extension(anatomy.ct, "water"), body_extension(anatomy.ct, "bone")))


def _bins_of_frame(anatomy: Anatomy, binned: RaysOfBins) -> np.ndarray:
    """The water and bone paths of ``binned``'s rays, traced as the rays of its full detector's frame and kept
    for it: the frame, projected next, traces only its other rays (a new pose's preview costs no ray twice)."""
    full, every = binned.full, binned.bin_pixels
    traced = anatomy.derived.recent("drr.basis_bins_traced", pose_key(full, "joseph"), _BinsTraced, keep=_POSES_BINNED)
    own = slice(every // 2, None, every)
    if traced.bins is None or traced.every != every:
        # The binned detector's field and margin, in bins (the full frame's margin is a fraction of a bin), as well.
        in_frame = _field_columns(full.detector_pixels, full.detector_shape)
        in_bins = _field_columns(binned.detector_pixels, binned.detector_shape)
        columns = in_frame.copy()
        columns[own, 0] = np.minimum(in_frame[own, 0], every * in_bins[:, 0] + every // 2)
        columns[own, 1] = np.maximum(in_frame[own, 1], every * in_bins[:, 1] + every // 2)
        frame = _traced(anatomy, full, np.zeros((2, *full.shape), dtype=np.float32), every, _BIN_RAYS, columns)
        bins = frame[:, own, own].copy()
        frame[:, own, own][:, ~traced_field(full.detector_pixels, full.detector_shape)[own, own]] = 0.0  # its field's
        traced.frame, traced.every, traced.bins = frame, every, bins
    return traced.bins


def _project_pair(tables: _PreparedPair, carm: CArm, columns: np.ndarray, *, gathers: bool = AVX2, every: int = 1,
                  part: int = _ALL_RAYS, out: np.ndarray | None = None) -> np.ndarray:
    """Joseph's line integrals of both materials of ``tables`` for ``carm`` in each row's ``columns``, of those
    ``part`` takes of bins of ``every`` pixels (:func:`_row_pixels`), (2, rows, columns) float32, into ``out``
    (by default zeros; its other pixels are left as they are): eight rays at a time with AVX2 gathers where the
    CPU has them (``gathers``, :func:`_sample_octet`), else one ray at a time; both give one image."""
    out = np.zeros((2, *carm.shape), dtype=np.float32) if out is None else out
    if tables.empty:
        return out
    nb, na, nc = tables.shape
    if gathers:
        with numba.parallel_chunksize(1):  # a tile of rows at a time
            _joseph_pair_kernel_avx2(tables.table.view(np.uint32), tables.scales[0], tables.scales[1], nb, na, nc,
                                     _stagger_shifts(nc)[1], tables.first_nonzero, tables.last_nonzero,
                                     *_ray_setup(carm, tables.world_to_table), columns, every, part, out)
        return out
    with numba.parallel_chunksize(_ROWS_PER_CHUNK):
        _joseph_pair_kernel(tables.table, tables.scales[0], tables.scales[1], nb, na, nc, _stagger_shifts(nc)[0],
                            tables.first_nonzero, tables.last_nonzero, *_ray_setup(carm, tables.world_to_table),
                            columns, every, part, out)
    return out


# A CT cut across the body (an imported scan's first and last slices, or a field of view narrower
# than the patient) would leave the rays beyond its faces in air: a black band on the image. The
# body is continued there out to the skin of the face it was cut at, for this far [ED:
# beyond the widest field a 9-inch intensifier sees around a lumbar level], on cells this coarse.
EXTENSION_MM = 150.0
_EXTENSION_CELL_MM = 4.0
# A face is cut across the body when more than this fraction of its voxels are body (above -400 HU,
# the air/fat boundary of tissues.tissue_from_hu).
_CUT_FRACTION = 0.02
_BODY_HU = -400.0
# Above this a voxel of the cut face is bone (the soft tissue/bone boundary of tissues.tissue_from_hu): the body
# beyond the face is continued as the face's soft tissue, its bone as the face's mean soft tissue.
_SOFT_TISSUE_MAX_HU = 150.0
# How far inside a cut face the body's outline is read for its slope there [ED: a few voxels of a clinical
# scan, short against the outline's curvature (a flank's radius is ~100 mm)].
_OUTLINE_SLOPE_MM = 9.0
Material = Literal["water", "bone"]


def body_extension(ct: Volume, material: Material = "water") -> tuple[Volume, ...]:
    """Continuations of the body beyond the faces of ``ct`` that cut across it: the path of ``material``
    (the two materials of :func:`anatomy_models.tissues.hu_to_basis`) per mm of each cell.

    Each is a slab as thick as :data:`EXTENSION_MM`, on the CT's own spacing across the face (so its
    first node follows the CT's last one, and Joseph's interpolated fields meet without a seam) and on
    ~4 mm cells along it. Beyond a face cut across the patient's long axis the face is extruded: the skin is
    its body outline, and each cell holds the face's own soft tissue there (fat as fat, muscle as muscle: its
    water and its share of bone-like attenuation, as the CT's voxels are decomposed), bone in it replaced by
    the face's mean soft tissue (the far body is soft tissue; air inside the body is not continued). A ray
    leaving through the face then crosses, per mm, what it crossed just inside it: no step in either
    material. Until stop 29 every cell held water: on the built-in patient's lateral at L1 the rays beyond
    the volume's top crossed 1.5% more water than those just inside it and none of the soft tissue's 4-6 mm
    of bone-like path, so the CT's cranial end drew a horizontal edge. A flank the scan's field of view cut
    off (a flank, the belly, the back) is rounded off as water (:func:`_axial_completion`; no ``bone``).

    Examples
    --------
    >>> hu = np.full((10, 12, 14), -1000, np.int16); hu[2:8, 3:9, :] = 40  # a body running out of both z faces
    >>> ct = Volume.from_spacing(hu, (2.0, 2.0, 2.0))
    >>> [s.array.shape for s in body_extension(ct)]
    [(5, 6, 75), (5, 6, 75)]
    >>> water, bone = hu_to_basis(np.float32(40.0))  # each cell inside the outline holds the face's 40 HU
    >>> pairs = ((body_extension(ct), water), (body_extension(ct, "bone"), bone))
    >>> [bool(np.isclose(slabs[0].array.max(), share)) for slabs, share in pairs]
    [True, True]
    """
    if material not in ("water", "bone"):
        raise SpinesimError(f"unknown material {material!r}: use 'water' or 'bone'")
    slabs = []
    # Along the patient's long axis: a scan is cut there, above and below the levels it was
    # taken for; in the axial plane its field of view holds the body (and a phantom that is a slab,
    # cut on every face, must not grow thicker along the beam).
    axis = int(np.argmax(np.abs(ct.affine[2, :3]) / np.linalg.norm(ct.affine[:3, :3], axis=0)))
    others = [a for a in range(3) if a != axis]
    spacing = float(np.linalg.norm(ct.affine[:3, axis]))
    slices = int(math.ceil(EXTENSION_MM / spacing))
    for side in (0, ct.array.shape[axis] - 1):
        hu = np.take(ct.array, side, axis=axis).astype(np.float32)
        body = hu > _BODY_HU
        if body.mean() <= _CUT_FRACTION:
            continue
        soft = body & (hu <= _SOFT_TISSUE_MAX_HU)
        hu = np.where(soft, hu, np.float32(hu[soft].mean() if soft.any() else 0.0))
        share = np.where(body, hu_to_basis(hu)[0 if material == "water" else 1], np.float32(0.0))
        cells = [max(1, int(round(_EXTENSION_CELL_MM / float(np.linalg.norm(ct.affine[:3, a]))))) for a in others]
        padded = np.zeros([-(-n // c) * c for n, c in zip(body.shape, cells)], np.float32)
        padded[:body.shape[0], :body.shape[1]] = share
        blocks = (padded.shape[0] // cells[0], cells[0], padded.shape[1] // cells[1], cells[1])
        face = padded.reshape(blocks).mean(axis=(1, 3))
        # Slab index (i, j, k) -> CT index: across the face the cell centre, along the axis beyond the face.
        to_ct = np.zeros((4, 4))
        to_ct[3, 3] = 1.0
        for row, (a, c) in enumerate(zip(others, cells)):
            to_ct[a, row] = c
            to_ct[a, 3] = (c - 1) / 2.0
        to_ct[axis, 2] = 1.0 if side else -1.0
        to_ct[axis, 3] = side + (1.0 if side else -1.0)
        if face.any():
            slabs.append(Volume(np.repeat(face[:, :, None], slices, axis=2).astype(np.float32), ct.affine @ to_ct))
    return tuple(slabs) + (_axial_completion(ct, axis) if material == "water" else ())


def _axial_completion(ct: Volume, long_axis: int) -> tuple[Volume, ...]:
    """Water-equivalent continuations of the body beyond the faces of ``ct`` across the axial plane (left,
    right, front, back) where its field of view cut the patient off: an abdominal protocol's field narrower
    than the patient cuts a flank, or a large patient's belly or back.

    In each axial slice the body beyond a cut face is rounded off as a circle through the two ends of the
    face's cut (its chord) that meets the cut outline at the angle the outline makes there (read
    :data:`_OUTLINE_SLOPE_MM` inside the face): a convex continuation, deepest at the chord's middle and
    thinning to nothing at its ends, so a ray beyond the face crosses about the body it would have and no
    ray sees a step. It is never deeper than a circle through the ends as deep as the body is across the
    face's normal (front to back beyond a flank, side to side beyond a belly or a back): a 3 mm outline's
    slope is coarse. The chord runs from the body's first to its last voxel on the face, so bowel gas the
    face cuts through does not shorten it. The field of view cut the body's outline, not its projections, so
    this is the image-domain form of CT's truncation correction, which continues a truncated projection with
    the water cylinder that meets its value and slope at the cut (Hsieh et al. 2004, Med Phys 31:2385, "A
    novel reconstruction algorithm to extend the CT scan field-of-view"). A flat back cut off (the patient
    lies on it) is continued rounder than it is: the test's real CT cut 45 mm off its back gains 19 mm of
    water on average on the AP's rays at L4 instead of missing 21 (measured, not tested). Only the patient's
    body counts (the largest connected region above -400 HU: the table, a separate object, is neither body
    nor depth). Each slab holds water fractions on ~4 mm cells (partial at the skin), :data:`EXTENSION_MM`
    at most; bone, gas and contrast beyond the face are not continued: the far body is soft tissue.
    """
    in_plane = [a for a in range(3) if a != long_axis]
    hu = np.moveaxis(ct.array, long_axis, 2)
    if max((np.take(ct.array, side, axis=a) > _BODY_HU).mean() for a in in_plane for side in (0, -1)) <= _CUT_FRACTION:
        return ()  # the field of view holds the body (the built-in patient): nothing to add
    regions, _ = ndimage.label(hu > _BODY_HU)
    body_any = regions == 1 + int(np.argmax(np.bincount(regions.ravel())[1:]))
    # Where the scan's ends are continued too (body_extension), so is each continuation, or its corner would
    # be a bright notch beside the continued ends.
    continued = [(np.take(ct.array, end, axis=long_axis) > _BODY_HU).mean() > _CUT_FRACTION for end in (0, -1)]
    slabs: list[Volume] = []
    for cut_axis in in_plane:
        across = 3 - cut_axis - long_axis
        order = [in_plane.index(cut_axis), in_plane.index(across), 2]
        slabs += _completion_beyond(ct, np.transpose(body_any, order), (cut_axis, across, long_axis), continued)
    return tuple(slabs)


def _completion_beyond(ct: Volume, body: np.ndarray, axes: tuple[int, int, int], continued: list[bool]) -> list[Volume]:
    """The continuations beyond the two faces of ``ct`` normal to ``axes[0]`` (see :func:`_axial_completion`);
    ``body`` is the patient's body mask with its axes in the order ``axes`` (cut, across, long), ``continued``
    whether the scan's first and last slices are continued (:func:`body_extension`)."""
    cut_axis, across, long_axis = axes
    spacing = np.linalg.norm(ct.affine[:3, :3], axis=0)[list(axes)]
    cells = [max(1, int(round(_EXTENSION_CELL_MM / float(s)))) for s in spacing]
    count = int(math.ceil(EXTENSION_MM / (cells[0] * float(spacing[0]))))
    # Per slice: the body's extent across the face's normal, halved, mm.
    radius = _span(body.any(axis=0))[1] * spacing[1]
    index = np.arange(body.shape[1])[:, None]
    inward = min(max(1, int(round(_OUTLINE_SLOPE_MM / float(spacing[0])))), body.shape[0] - 1)  # a thin scan: less
    slabs = []
    for side in (0, body.shape[0] - 1):
        face = body[side]
        if face.mean() <= _CUT_FRACTION:
            continue
        # The chord per slice, from the body's first to its last voxel on the face (bowel gas the face cuts
        # through lies inside it): its middle and half length (mm), and each row's offset from its middle.
        middle, half = _span(face)
        half = half * spacing[1]
        offset = (index - middle[None, :]) * spacing[1]
        # The outline's slope at the chord's ends: how fast the chord narrows towards the face (its half length
        # that far inside), as the tangent of the angle the outline makes with the face's normal. The circle
        # through the ends with that tangent there has radius half * sqrt(1 + t^2), its centre half * t inside the
        # face. A chord that widens towards the face (t < 0) is closed as a half circle.
        inside = _span(body[side + inward if side == 0 else side - inward])[1] * spacing[1]
        slope = np.maximum(inside - half, 0.0) / (max(inward, 1) * float(spacing[0]))
        matched = np.sqrt(np.maximum(half ** 2 * (1.0 + slope ** 2) - offset ** 2, 0.0)) - half * slope
        # Nor deeper than a circle as deep as the body is across, through the same ends.
        sized = np.sqrt(np.maximum(radius ** 2 - offset ** 2, 0.0)) - np.sqrt(np.maximum(radius ** 2 - half ** 2, 0.0))
        # Not where the body fills the face from edge to edge (a slab phantom): no skin meets the face there, there
        # is no cut outline to continue. A corner the field cut on two faces (one end at the face's edge) is.
        outlined = ~(face[0] & face[-1])
        depth = np.where((np.abs(offset) < half) & outlined, np.maximum(np.minimum(matched, sized), 0.0), 0.0)  # mm
        cell_mm = cells[0] * float(spacing[0])
        outward = (np.arange(count) * cell_mm + spacing[0] / 2.0)[:, None, None]  # from the face voxel's outer side
        fine = np.clip((depth[None] - outward) / cell_mm, 0.0, 1.0).astype(np.float32)  # (count, across, long)
        padded = np.zeros([count] + [-(-m // c) * c for m, c in zip(face.shape, cells[1:])], np.float32)
        padded[:, :face.shape[0], :face.shape[1]] = fine
        water = padded.reshape(count, padded.shape[1] // cells[1], cells[1], padded.shape[2] // cells[2],
                               cells[2]).mean(axis=(2, 4))
        if side == 0:
            water = water[::-1]  # slab index runs with the CT's: the farthest cell first
        ends = [int(math.ceil(EXTENSION_MM / (cells[2] * float(spacing[2])))) * bool(end) for end in continued]
        water = np.pad(water, ((0, 0), (0, 0), tuple(ends)), mode="edge")
        # Slab index (cut, across, long) -> CT index: each cell's centre, the nearest beyond the face.
        to_ct = np.zeros((4, 4))
        to_ct[3, 3] = 1.0
        for row, (axis, c) in enumerate(zip(axes, cells)):
            to_ct[axis, row] = c
            to_ct[axis, 3] = (c - 1) / 2.0
        to_ct[long_axis, 3] -= cells[2] * ends[0]
        to_ct[cut_axis, 3] = side + 1 + (cells[0] - 1) / 2.0 if side else -cells[0] * count + (cells[0] - 1) / 2.0
        if water.any():
            slabs.append(Volume(np.ascontiguousarray(water), ct.affine @ to_ct))
    return slabs


def _span(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``mask`` (rows, columns): the middle of its first and last true row and half their span
    (voxels, ends included; 0 for an empty column)."""
    index = np.arange(mask.shape[0])[:, None]
    first = np.where(mask, index, mask.shape[0]).min(axis=0)
    last = np.where(mask, index, -1).max(axis=0)
    filled = last >= first
    return np.where(filled, (first + last) / 2.0, 0.0), np.where(filled, (last - first + 1) / 2.0, 0.0)


# CT numbers at or below this are air [ED: a CT's air reads -1000 HU with a few HU to a few tens of noise; -950 HU is
# 5% of water, above every air voxel of the built-in patient (-1012 to -985 HU)]. The air around the body is taken as
# none: its noise, clipped at no water below -1000 HU (hu_to_basis), had put ~0.005 of water in each voxel of it, and
# a ray needs no samples there (_sampled_slices).
_AIR_HU = -950.0


def _clear_outside_air(hu: np.ndarray, volumes: tuple[np.ndarray, ...], axis: int) -> None:
    """Zero ``volumes`` (on the grid of the CT numbers ``hu``) in place in the air around the body: along ``axis``,
    each line's voxels before its first and after its last voxel above :data:`_AIR_HU` (gas inside the body is kept).

    >>> hu = np.array([[[-1000.0, -990.0, 40.0, -1000.0, 40.0, -980.0]]])
    >>> volume = hu + 1000.0
    >>> _clear_outside_air(hu, (volume,), 2)
    >>> volume.tolist()
    [[[0.0, 0.0, 1040.0, 0.0, 1040.0, 0.0]]]
    """
    body = hu > _AIR_HU
    inside = np.logical_or.accumulate(body, axis=axis)
    inside &= np.flip(np.logical_or.accumulate(np.flip(body, axis=axis), axis=axis), axis=axis)
    for volume in volumes:
        volume[~inside] = 0


def _anatomy_basis_table(anatomy: Anatomy, method: str, axis: int) -> _PreparedPair | tuple[_Prepared, _Prepared]:
    water, bone = hu_to_basis(anatomy.ct.array)
    if method == "joseph":
        box = _nonzero_box(np.maximum(water, bone))  # the table's extent as before, so are its slices' shifts
        _clear_outside_air(anatomy.ct.array, (water, bone), axis)
        return _prepared_pair(water, bone, anatomy.ct.affine, axis, box)
    return (_prepared(water, anatomy.ct.affine, method, axis), _prepared(bone, anatomy.ct.affine, method, axis))


# --------------------------------------------------------------------------- needle
def needle_cylinders(needle: Needle, kev: float = FLUORO_EFFECTIVE_KEV) -> np.ndarray:
    """The needle as attenuating cylinders: rows (start xyz, unit axis xyz, length mm, radius mm, mu 1/mm, cut normal
    xyz, cut offset mm), each kept where ``normal . x <= offset``.

    The shaft is solid steel (cannula with its stylet in) from the hub end to the tip, a Quincke's cut by its bevel
    (:func:`simulator.needle.shaft.bevel_cut`); the hub beyond the shaft's outer end is
    :func:`simulator.needle.hub.hub_cylinders` (plastic, the cannula's steel, the stylet's cap and handle), uncut.
    """
    steel = tissue("steel").xray_mu_per_mm(kev)
    cut = bevel_cut(needle)
    uncut = [0.0, 0.0, 0.0, 1.0]
    shaft = [*needle.hub, *needle.direction, needle.spec.length_mm, needle.spec.outer_diameter_mm / 2.0, steel,
             *(uncut if cut is None else [*cut[0], cut[1]])]
    return np.array([shaft, *(row + uncut for row in hub_cylinders(needle, kev))], dtype=np.float64)


def needle_footprint(needle: Needle, carm: CArm) -> tuple[slice, slice, np.ndarray] | None:
    """Where on the detector the needle (shaft and hub) can be, or None if it misses it.

    Returns the rows and columns of its bounding box and, per cylinder of :func:`needle_cylinders`,
    its shadow: the projected axis (u, v of both ends) and its reach from it (the radius magnified
    at the cylinder's nearest depth, plus one and a half pixels), all in pixels.
    """
    cylinders = needle_cylinders(needle)
    starts = cylinders[:, :3]
    ends = starts + cylinders[:, 3:6] * cylinders[:, 6:7]
    depth = np.minimum(carm.depth(starts), carm.depth(ends))
    n = carm.detector_pixels
    if np.any(depth <= 1.0):
        # Part of the needle is beside or behind the focal spot: search the whole detector.
        everywhere = np.tile([0.0, 0.0, 0.0, 0.0, 2.0 * n], (len(cylinders), 1))
        return slice(0, n), slice(0, n), everywhere
    reach = cylinders[:, 7] * carm.source_to_detector_mm / depth / carm.pixel_size_mm + 1.5
    shadows = np.column_stack([carm.project(starts), carm.project(ends), reach])
    corners = np.concatenate([shadows[:, :2] - reach[:, None], shadows[:, 2:4] - reach[:, None],
                              shadows[:, :2] + reach[:, None], shadows[:, 2:4] + reach[:, None]])
    low = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, n)
    high = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, 0, n)
    if np.any(high <= low):
        return None
    return slice(int(low[1]), int(high[1])), slice(int(low[0]), int(high[0])), shadows


def add_needle_line_integrals(image: np.ndarray, needle: Needle, carm: CArm, kev: float = FLUORO_EFFECTIVE_KEV,
                              *, samples: int = 4, hub: bool = True) -> np.ndarray:
    """Add the needle's attenuation line integrals (closed form) into ``image`` in place.

    Each pixel of :func:`needle_footprint` (only those) averages ``samples`` x ``samples`` rays'
    transmissions over its area, as a detector element does; ``samples=1`` is one ray through the
    pixel centre, like the DRR. ``hub`` False: the steel shaft alone. Returns ``image``.
    """
    if int(samples) != samples or not 1 <= samples <= 16:
        raise SpinesimError(f"needle samples per pixel side must be an integer 1-16, got {samples!r}")
    footprint = needle_footprint(needle, carm)
    if footprint is None:
        return image
    rows, columns, shadows = footprint
    pixel_to_direction = carm.pixel_to_direction
    patch = np.zeros((rows.stop - rows.start, columns.stop - columns.start, int(samples) ** 2))
    cylinders = needle_cylinders(needle, kev)
    _needle_kernel(carm.source, pixel_to_direction[:, 2].copy(), pixel_to_direction[:, 0].copy(),
                   pixel_to_direction[:, 1].copy(), columns.start, rows.start, cylinders if hub else cylinders[:1],
                   int(samples), shadows if hub else shadows[:1], patch)
    image[rows, columns] += patch[:, :, 0].astype(np.float32)
    return image


def needle_line_integrals(needle: Needle, carm: CArm, kev: float = FLUORO_EFFECTIVE_KEV, *, samples: int = 4,
                          hub: bool = True) -> np.ndarray:
    """The needle's own attenuation line integrals (float32 image, zero off the needle); see
    :func:`add_needle_line_integrals`."""
    return add_needle_line_integrals(np.zeros(carm.shape, dtype=np.float32), needle, carm, kev, samples=samples,
                                     hub=hub)
