"""Fused per-sample sums of the raw coordinates, shared by all backends.

For a sample ``g`` of dimension ``n`` the kernels compute, without ever holding
``g``, the three sums every angle needs::

    l1 = sum |g_i|,    l2sq = sum g_i**2,    total = sum g_i

Fixed reduction order (what makes results independent of threads and chunks):
coordinates are cut into *chunks* of ``CHUNK`` coordinates (the last one
shorter) and chunks into *tiles* of ``TILE`` coordinates.  A tile is generated
into a small buffer (in the model's tile order,
:func:`lni_geometry.models.fill_tile`) and reduced into ``LANES = 16`` float64
accumulators per sum (entry ``j`` into lane ``j mod 16``; one ``<16 x double>``
vector per sum, two AVX-512 registers, so two independent chains of additions;
written as LLVM IR (:func:`_lane_loop`) so that it is vectorised and ordered
the same on AVX2 and AVX-512; ``l2sq`` lanes by a fused multiply-add), the
lanes folded pairwise ``(0+1), (2+3), ...``, then those pairs pairwise, to
``((((0+1)+(2+3))+((4+5)+(6+7)))+(((8+9)+...)))``, then the ragged end
(< 16 entries) added in order; tile sums are added in tile order within a chunk, chunk sums in chunk
order.  Whoever computes a chunk, the result is the same bits.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import float64, int64, njit, prange, types, uint32, uint64
from numba.core import cgutils
from numba.extending import intrinsic

from .elementary import CONTRACT
from .models import TILE_SCRATCH, fill_coords, fill_tile
from .rng import box_muller_pieces

CHUNK = 1 << 16  # coordinates per chunk: the unit of parallel work in one sample
TILE = 512  # coordinates generated per tile (a multiple of every model's block)
LANES = 16  # float64 accumulators per sum (two AVX-512 registers: two independent add chains)


def _lane_loop(builder, pointers, n, width, body):
    """Emit a loop over ``pointers[k][j : j + LANES]`` for ``j < n - n % LANES``.

    ``body(builder, vectors, accumulators)`` returns the ``width`` new
    ``<LANES x double>`` accumulators from the loaded vectors (one per
    pointer, ``<LANES x T>`` for a pointer to ``T``) and the old ones (zero
    at the start).  Returns the accumulators after the loop, each folded
    pairwise ``(0+1), (2+3), ...``, then those pairs pairwise, to one double.
    ``n`` is not checked against the pointers' lengths: the callers pass tile
    buffers or a tile's slices of arrays, and ``n`` at most their size.
    """
    i64 = ir.IntType(64)
    vty = ir.VectorType(ir.DoubleType(), LANES)
    full = builder.sub(n, builder.srem(n, i64(LANES)))
    zero = ir.Constant(vty, [0.0] * LANES)
    pre = builder.block
    loop = builder.append_basic_block("lanes.loop")
    body_block = builder.append_basic_block("lanes.body")
    done = builder.append_basic_block("lanes.done")
    builder.branch(loop)
    builder.position_at_end(loop)
    j = builder.phi(i64)
    acc = [builder.phi(vty) for _ in range(width)]
    j.add_incoming(i64(0), pre)
    for a in acc:
        a.add_incoming(zero, pre)
    builder.cbranch(builder.icmp_signed("<", j, full), body_block, done)
    builder.position_at_end(body_block)
    vectors = [builder.load(builder.bitcast(builder.gep(p, [j]), ir.VectorType(p.type.pointee, LANES).as_pointer()),
                            align=_bytes(p.type.pointee)) for p in pointers]
    new = body(builder, vectors, acc)
    body_end = builder.block
    j.add_incoming(builder.add(j, i64(LANES)), body_end)
    for a, v in zip(acc, new):
        a.add_incoming(v, body_end)
    builder.branch(loop)
    builder.position_at_end(done)
    out = []
    for a in acc:
        e = [builder.extract_element(a, i64(k)) for k in range(LANES)]
        while len(e) > 1:  # pairwise: (0+1), (2+3), ... then their pairs
            e = [builder.fadd(e[k], e[k + 1]) for k in range(0, len(e), 2)]
        out.append(e[0])
    return out


def _bytes(ty):
    return 4 if isinstance(ty, ir.FloatType) else 8


def _vector_intrinsic(builder, name, nargs, element=None):
    element = ir.DoubleType() if element is None else element
    vty = ir.VectorType(element, LANES)
    fnty = ir.FunctionType(vty, [vty] * nargs)
    suffix = "f32" if isinstance(element, ir.FloatType) else "f64"
    return cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.v{LANES}{suffix}")


def _is_float64_buffer(buf):
    return isinstance(buf, types.Array) and buf.dtype == types.float64 and buf.ndim == 1 and buf.layout == "C"


@intrinsic
def _lane_sums(typingctx, buf, n):
    """Three ``LANES``-wide vector sums of ``buf[:n - n % LANES]``, and their fold.

    LLVM IR written out (``<16 x double>`` loads, ``fabs``, ``fma``, ``fadd``;
    no fast-math flags, so nothing else is contracted or reordered): entry
    ``j`` goes into lane ``j mod 16`` of each sum; the lanes are folded
    pairwise, a balanced tree ``(0+1), (2+3), ...``.  The vector type fixes the
    order of every addition whatever the instruction set (two AVX-512
    registers, four AVX2 ones: independent chains, so the sums are not bound
    by the latency of one chain of additions), and it is written out because the compiler's own vectorisers leave
    such loops scalar (reassociation would be needed).
    """
    if not (_is_float64_buffer(buf) and isinstance(n, types.Integer)):
        return None
    sig = types.UniTuple(types.float64, 3)(buf, n)

    def codegen(context, builder, signature, args):
        arrty, nty = signature.args
        data = context.make_array(arrty)(context, builder, args[0]).data
        nval = context.cast(builder, args[1], nty, types.int64)
        fma, fabs = _vector_intrinsic(builder, "fma", 3), _vector_intrinsic(builder, "fabs", 1)

        def body(b, v, a):
            (x,) = v
            return [b.fadd(a[0], b.call(fabs, [x])), b.call(fma, [x, x, a[1]]), b.fadd(a[2], x)]

        out = _lane_loop(builder, [data], nval, 3, body)
        return context.make_tuple(builder, signature.return_type, out)

    return sig, codegen


@intrinsic
def _lane_norms(typingctx, a, b, n):
    """``(sum |a_j|, sum a_j**2, sum a_j b_j, sum b_j**2)`` over ``j < n - n % LANES``, lanes folded as :func:`_lane_sums`.

    One loop over two buffers: what the optimizers' kernels need of ``c`` and
    of the momentum (Lion) or the Gaussian ``z`` (Enim), where ``c`` was
    formed in a float64 buffer (with the telemetry's counts on the way, or
    after Enim's draw of ``z``); otherwise :func:`_lane_c_norms` reads the
    arrays themselves.
    """
    if not (_is_float64_buffer(a) and _is_float64_buffer(b) and isinstance(n, types.Integer)):
        return None
    sig = types.UniTuple(types.float64, 4)(a, b, n)

    def codegen(context, builder, signature, args):
        aty, bty, nty = signature.args
        pa = context.make_array(aty)(context, builder, args[0]).data
        pb = context.make_array(bty)(context, builder, args[1]).data
        nval = context.cast(builder, args[2], nty, types.int64)
        fma, fabs = _vector_intrinsic(builder, "fma", 3), _vector_intrinsic(builder, "fabs", 1)

        def body(bld, v, acc):
            x, y = v
            return [bld.fadd(acc[0], bld.call(fabs, [x])), bld.call(fma, [x, x, acc[1]]),
                    bld.call(fma, [x, y, acc[2]]), bld.call(fma, [y, y, acc[3]])]

        out = _lane_loop(builder, [pa, pb], nval, 4, body)
        return context.make_tuple(builder, signature.return_type, out)

    return sig, codegen


def _is_float_buffer(buf):
    return (isinstance(buf, types.Array) and isinstance(buf.dtype, types.Float) and buf.dtype.bitwidth in (32, 64)
            and buf.ndim == 1 and buf.layout == "C")


def _lane_c_norms_of(rounded):
    """The intrinsic :func:`_lane_c_norms` (``rounded`` False) or :func:`_lane_c_norms_rounded` (True)."""

    def typer(typingctx, m, g, z, n, a, b):
        if not (_is_float_buffer(m) and _is_float_buffer(z) and g == m and isinstance(n, types.Integer)):
            return None
        if a != b or a != (m.dtype if rounded else types.float64):
            return None
        sig = types.UniTuple(types.float64, 5)(m, g, z, n, a, b)

        def codegen(context, builder, signature, args):
            pm, pg, pz = (context.make_array(t)(context, builder, v).data for t, v in zip(signature.args[:3], args[:3]))
            nval = context.cast(builder, args[3], signature.args[3], types.int64)
            dty = ir.DoubleType()
            vty = ir.VectorType(dty, LANES)
            element = context.get_value_type(signature.args[0].dtype)

            def splat(value, ty):
                vec = ir.Constant(ir.VectorType(ty, LANES), ir.Undefined)
                for k in range(LANES):
                    vec = builder.insert_element(vec, value, ir.IntType(32)(k))
                return vec

            av, bv = splat(args[4], element if rounded else dty), splat(args[5], element if rounded else dty)
            fma, fabs = _vector_intrinsic(builder, "fma", 3), _vector_intrinsic(builder, "fabs", 1)
            fma_dtype = _vector_intrinsic(builder, "fma", 3, element)
            zero, one = ir.Constant(vty, [0.0] * LANES), ir.Constant(vty, [1.0] * LANES)

            def wide(bld, v):
                return v if isinstance(v.type.element, ir.DoubleType) else bld.fpext(v, vty)

            def body(bld, v, acc):
                mv, gv, zv = v
                if rounded:  # fma(g, w1, m * b1) in the arrays' dtype, then widened
                    x = wide(bld, bld.call(fma_dtype, [gv, bv, bld.fmul(mv, av)]))
                else:  # beta1 m + (1 - beta1) g in float64: two products and a sum, each rounded
                    x = bld.fadd(bld.fmul(av, wide(bld, mv)), bld.fmul(bv, wide(bld, gv)))
                y = wide(bld, zv)
                nonzero = bld.select(bld.fcmp_unordered("!=", x, zero), one, zero)  # a nan counts, as x != 0
                return [bld.fadd(acc[0], bld.call(fabs, [x])), bld.call(fma, [x, x, acc[1]]),
                        bld.call(fma, [x, y, acc[2]]), bld.call(fma, [y, y, acc[3]]), bld.fadd(acc[4], nonzero)]

            out = _lane_loop(builder, [pm, pg, pz], nval, 5, body)
            return context.make_tuple(builder, signature.return_type, out)

        return sig, codegen

    typer.__name__ = typer.__qualname__ = "_lane_c_norms_rounded" if rounded else "_lane_c_norms"
    return intrinsic(typer)


#: ``(sum |c_j|, sum c_j**2, sum c_j z_j, sum z_j**2, nnz(c))`` over ``j < n - n % LANES`` of
#: ``c = a m + b g`` formed in float64 from the arrays ``m``, ``g`` (float32 or float64) and
#: ``z`` (its own float dtype) read where they lie: :func:`_lane_norms` of ``c`` and ``z``
#: without the float64 tile buffers (the same lanes, the same fold, the same bits).
_lane_c_norms = _lane_c_norms_of(False)

#: :func:`_lane_c_norms` with ``c = fma(g, b, m * a)`` formed in the arrays' dtype (``a``,
#: ``b`` in it), then widened: ``c`` as Lion's step forms it.
_lane_c_norms_rounded = _lane_c_norms_of(True)


@njit(inline="always", cache=True, error_model="numpy")
def _tile_sums(buf, n):
    """Sums of ``buf[:n]`` into ``LANES = 16`` lanes each, lane ``j mod 16`` for entry ``j``.

    Returns three floats ``(sum |z|, sum z**2, sum z)``, each the pairwise fold
    of its 16 lanes (:func:`_lane_sums`, one ``<16 x double>`` vector per sum)
    plus the ragged end added in entry order.
    """
    s1, s2, st = _lane_sums(buf, n)
    # the ragged end of the last tile (fewer than 16 entries), in entry order
    for j in range(n - n % LANES, n):
        z = buf[j]
        s1 += abs(z)
        s2 += z * z
        st += z
    return s1, s2, st


@njit(cache=True, error_model="numpy")
def chunk_sums(model_id, p0, p1, k0, k1, sample, dim, chunk, buf, out):
    """Sums ``(l1, l2sq, total)`` of chunk ``chunk`` of a sample, into ``out[0:3]``.

    Each tile of ``TILE`` coordinates is generated into ``buf`` (scratch of
    length ``TILE``; scratch of ``TILE_SCRATCH * TILE`` words) by :func:`fill_tile` and reduced by :func:`_tile_sums`; tile sums are added in
    tile order.
    """
    first = chunk * CHUNK
    last = min(first + CHUNK, dim)
    words = np.empty(TILE_SCRATCH * TILE, np.uint32)
    s1 = 0.0
    s2 = 0.0
    st = 0.0
    for t0 in range(first, last, TILE):
        n = min(TILE, last - t0)
        fill_tile(model_id, p0, p1, k0, k1, sample, t0, n, words, buf)
        t1, t2, tt = _tile_sums(buf, n)
        s1 += t1
        s2 += t2
        st += tt
    out[0] = s1
    out[1] = s2
    out[2] = st


def n_chunks(dim):
    """Number of chunks of a sample of dimension ``dim``."""
    return -(-int(dim) // CHUNK)


@njit(cache=True, parallel=True, error_model="numpy")
def sums_over_samples(model_id, p0, p1, k0, k1, start, samples, dim, out):
    """Sums of samples ``start .. start + samples - 1``, one thread per sample.

    ``out`` has shape ``(samples, 3)``.  Chunks of a sample are added in order.
    """
    nch = (dim + CHUNK - 1) // CHUNK
    for i in prange(samples):
        buf = np.empty(TILE)
        part = np.empty(3)
        s1 = 0.0
        s2 = 0.0
        st = 0.0
        for c in range(nch):
            chunk_sums(model_id, p0, p1, k0, k1, int64(start + i), dim, c, buf, part)
            s1 += part[0]
            s2 += part[1]
            st += part[2]
        out[i, 0] = s1
        out[i, 1] = s2
        out[i, 2] = st


@njit(cache=True, parallel=True, error_model="numpy")
def chunk_sums_of_sample(model_id, p0, p1, k0, k1, sample, dim, chunk0, nchunks, out):
    """Sums of chunks ``chunk0 .. chunk0 + nchunks - 1`` of one sample, in parallel.

    ``out`` has shape ``(nchunks, 3)``; add its rows in order with
    :func:`add_rows_in_order` to get the sample's sums.
    """
    for c in prange(nchunks):
        buf = np.empty(TILE)
        chunk_sums(model_id, p0, p1, k0, k1, sample, dim, chunk0 + c, buf, out[c])


@njit(cache=True, error_model="numpy")
def add_rows_in_order(parts):
    """Column sums of ``parts`` (shape (m, 3)), rows added first to last."""
    s1 = 0.0
    s2 = 0.0
    st = 0.0
    for c in range(parts.shape[0]):
        s1 += parts[c, 0]
        s2 += parts[c, 1]
        st += parts[c, 2]
    return s1, s2, st


@njit(cache=True, parallel=True, error_model="numpy")
def coords_of_samples(model_id, p0, p1, k0, k1, start, samples, dim, block, out):
    """Raw coordinates of samples ``start ..`` into ``out`` (shape (samples, dim)).

    ``block`` is the model's ``coords_per_block``.
    """
    padded = ((dim + block - 1) // block) * block
    for i in prange(samples):
        buf = np.empty(padded)
        fill_coords(model_id, p0, p1, k0, k1, int64(start + i), 0, dim, buf)
        for j in range(dim):
            out[i, j] = buf[j]


# --- the exact moments of the Gaussian transform ---------------------------------

_MOMENT_BLOCK = 1 << 12


@njit(cache=True, parallel=True, error_model="numpy", fastmath=CONTRACT)
def _box_muller_moment_sums(first, stride, count, jitter, out):
    """Sums over the words ``w = first + stride * i (+ j_i)``, ``i < count`` (a multiple of
    ``_MOMENT_BLOCK``) of ``r, r**2, |c|, c**2, |s|, s**2`` (the float32 radius,
    cosine and sine of :func:`lni_geometry.rng.box_muller`), one row of ``out``
    per block of ``_MOMENT_BLOCK`` words; with ``jitter``, ``j_i`` in
    ``[0, stride)`` is a multiplicative hash of ``i`` (one word from each cell
    of ``stride`` words)."""
    for b in prange(out.shape[0]):
        br = np.empty(_MOMENT_BLOCK)
        bc = np.empty(_MOMENT_BLOCK)
        bs = np.empty(_MOMENT_BLOCK)
        base = first + stride * (b * _MOMENT_BLOCK)
        for i in range(_MOMENT_BLOCK):
            h = (uint64(uint32((b * _MOMENT_BLOCK + i) * 2654435761)) * uint64(stride)) >> uint64(32)
            w = uint32(base + stride * i + (int64(h) if jitter else int64(0)))
            r, c, s = box_muller_pieces(w, w)
            br[i] = float64(r)
            bc[i] = float64(c)
            bs[i] = float64(s)
        a1, a2, _ = _lane_sums(br, _MOMENT_BLOCK)
        c1, c2, _ = _lane_sums(bc, _MOMENT_BLOCK)
        s1, s2, _ = _lane_sums(bs, _MOMENT_BLOCK)
        out[b, 0] = a1
        out[b, 1] = a2
        out[b, 2] = c1
        out[b, 3] = c2
        out[b, 4] = s1
        out[b, 5] = s2


def box_muller_moments(first=0, stride=1, count=None, jitter=False):
    """Means of ``r, r**2, |cos|, cos**2, |sin|, sin**2`` of the Gaussian transform
    over the words ``first, first + stride, ...`` (``count`` of them; by default
    every word up to ``2**32``), or with ``jitter`` one word drawn by a fixed hash
    from each cell ``[first + stride i, first + stride (i + 1))`` (a stratified
    estimate: the words' float32 rounding repeats with periods up to 256, so a
    fixed offset in each cell would alias with it).

    With the defaults these are the exact moments of the discretised transform
    (every word equally likely; sums of float64 in blocks, rounding below
    ``1e-13`` relative), and ``E z**2 = E r**2 (E cos**2 + E sin**2)/2``,
    ``E|z| = E r (E|cos| + E|sin|)/2`` exactly (the coordinates are the exact
    float64 products of float32 factors drawn from different words).  The
    biases they give are stated in :mod:`lni_geometry.rng` ("Gaussian
    coordinates").

    Returns
    -------
    dict with keys ``r``, ``r2``, ``abs_cos``, ``cos2``, ``abs_sin``, ``sin2``.
    """
    if count is None:
        count = (2**32 - first + stride - 1) // stride
    if count % _MOMENT_BLOCK:
        raise ValueError(f"count must be a multiple of {_MOMENT_BLOCK}, got {count}")
    last = first + stride * (count - 1) + (stride - 1 if jitter else 0)  # the largest word used
    if first < 0 or last >= 2**32:
        raise ValueError("the words must lie in [0, 2**32)")
    out = np.empty((count // _MOMENT_BLOCK, 6))
    _box_muller_moment_sums(int64(first), int64(stride), int64(count), bool(jitter), out)
    m = out.sum(axis=0) / count
    return dict(zip(("r", "r2", "abs_cos", "cos2", "abs_sin", "sin2"), (float(x) for x in m)))
