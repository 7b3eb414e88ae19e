"""The numba loops of the optimizers' kernels: tile and chunk bodies, and their launches.

:mod:`lni_geometry.optim_kernels` holds what these loops compute and the
Python functions that call them; this module holds the loops themselves.  A
launch (``_*_kernel``) takes arrays by address (``address[i, role]``, read
through :func:`_view`), their lengths and the work items of a
:class:`~lni_geometry.optim_kernels.Layout`, and runs one chunk per item:
``parts`` (:attr:`~lni_geometry.optim_kernels.Layout.parts`: runs of items
of about equal entries, one per thread) spreads the items over the thread
pool with ``prange``, run by run; without parts the items run in order on
the calling thread (the same chunks, the same rows of ``out`` either way).
Chunks are processed tile by tile (:data:`TILE` entries) over slices, so
that loop indices start at 0 (the compiler then drops negative-index checks
and vectorises).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import carray, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .elementary import fma
from .kernels import (
    LANES,
    _lane_c_norms,
    _lane_c_norms_rounded,
    _lane_norms,
    _tile_sums,
)
from .models import TILE_SCRATCH, fill_gaussian_tile

#: Entries per tile: values are formed, summed and drawn tile by tile (small tiles keep
#: the arithmetic close to the loads it waits on, so that it overlaps the memory traffic).
TILE = 512


# --- arrays by address ---------------------------------------------------------------


@intrinsic
def _pointer(typingctx, address, like):
    """``address`` (an int64) as a pointer to ``like``'s element type (``like``: an array)."""
    if not isinstance(address, types.Integer) or not isinstance(like, types.Array):
        return None
    sig = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@intrinsic
def _prefetch(typingctx, array, index):
    """A hint to bring the cache line of ``array[index]`` into the L2 cache (``llvm.prefetch``:
    read, locality 2, data); no effect on any value, and no fault for any index."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        arrayty = signature.args[0]
        ary = context.make_array(arrayty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, arrayty, ary, [args[1]], wraparound=False)
        i32 = ir.IntType(32)
        bytes_ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [bytes_ptr, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [bytes_ptr], fnty)  # named for the pointer type
        builder.call(fn, [builder.bitcast(ptr, bytes_ptr), i32(0), i32(2), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always")
def _view(address, n, like):
    """The ``n`` entries at ``address`` as a 1-D array of ``like``'s dtype."""
    return carray(_pointer(address, like), n)


@njit(cache=True, error_model="numpy")
def _fold_rows(out, items, total):
    for k in range(items.shape[0]):
        total[items[k, 0]] += out[k]


@njit(cache=True, error_model="numpy")
def exact_sum(values):
    """``(sum, ok)``: the sum of ``values`` (float64) rounded once, to nearest even, as Python's
    :func:`math.fsum` gives it; ``ok`` False where ``math.fsum`` would not return a finite number
    (an inf or a nan among the values, or an intermediate overflow), the sum then ``nan``.

    Shewchuk's exact partials (1997, "Adaptive precision floating-point
    arithmetic", as CPython's ``math_fsum``): each value is added to a list
    of non-overlapping partials without error (two-sum), and the partials
    are added from the largest down, with the half-even correction across
    partials.  At most one partial per value is kept.
    """
    partials = np.empty(values.shape[0] + 1)
    n = 0
    for v in values:
        x = v
        i = 0
        for j in range(n):
            y = partials[j]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[i] = lo
                i += 1
            x = hi
        n = i
        if x != 0.0:
            if not np.isfinite(x):
                return np.nan, False
            partials[n] = x
            n += 1
    if n == 0:
        return 0.0, True
    n -= 1
    hi = partials[n]
    lo = 0.0
    while n > 0:  # from the top, while the sum is exact
        x = hi
        n -= 1
        y = partials[n]
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            break
    if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
        y = lo * 2.0  # half-even rounding across the partials left
        x = hi + y
        if y == x - hi:
            hi = x
    return hi, True


@njit(cache=True, error_model="numpy")
def turn_coefficients(c2, cz, zz, n, cos_t, sin_t):
    """``(alpha, beta, ok)`` of Enim's update ``u = alpha c + beta z``, turned by ``t`` from ``c``,
    from ``c2 = c.c``, ``cz = c.z``, ``zz = z.z`` over ``n > 1`` entries::

        |w'|^2 = zz - cz^2 / c2                 (z projected on the complement of c)
        alpha  = sqrt(n) (cos t / sqrt(c2) - sin t cz / (c2 |w'|))
        beta   = sqrt(n) sin t / |w'|

    so that ``u.c = sqrt(n) |c| cos t`` and ``|u| = sqrt(n)``.  ``c2 = 0``:
    ``(0, 0, True)`` (weight decay only).  ``ok`` False (and ``nan``
    coefficients) when ``|w'|^2 <= 1e-8 z.z`` (``|sin(z, c)| < 1e-4``: ``u``
    would lose digits; ``z`` is to be drawn again).
    """
    if not c2 > 0.0:
        return 0.0, 0.0, True
    w2 = zz - cz * cz / c2
    if not w2 > 1e-8 * zz:
        return np.nan, np.nan, False
    wn = np.sqrt(w2)
    root_n = np.sqrt(np.float64(n))
    return root_n * (cos_t / np.sqrt(c2) - sin_t * cz / (c2 * wn)), root_n * sin_t / wn, True


# --- tile bodies (inlined into the chunk loops) ------------------------------------


@njit(inline="always", error_model="numpy")
def _c_of(mj, gj, beta1, w, rounded, b1, w1):
    """One entry of ``c = beta1 m + (1 - beta1) g`` in float64: two products and a sum, each
    rounded (``w = 1 - beta1``), or with ``rounded`` as Lion's step forms it, ``fma(g, w1, m * b1)``
    in the arrays' dtype, then widened."""
    return np.float64(fma(gj, w1, mj * b1)) if rounded else beta1 * np.float64(mj) + w * np.float64(gj)


@njit(inline="always", error_model="numpy")
def _c_tile(mt, gt, zt, n, beta1, threshold, xbuf, zbuf, rounded, b1, w1, counts):
    """``c`` of a tile (:func:`_c_of`; ``b1``, ``w1``: ``beta1``, ``1 - beta1`` rounded to the
    arrays' dtype) into ``xbuf`` (float64); ``nnz(c)`` and the counts; ``zt`` (if it has
    entries) widened into ``zbuf``.

    ``threshold`` is in the arrays' dtype
    (:func:`_threshold`): ``|m| < threshold`` is then the comparison with the
    exact threshold.  Without ``counts`` the counts of ``g`` and ``m`` are 0.
    """
    w = 1.0 - beta1
    zero = b1 - b1  # b1 is finite (the threshold may be inf or nan when a momentum is)
    has_z = zt.shape[0] > 0
    nz = 0
    zg = 0
    tr = 0
    rv = 0
    if has_z:  # a loop of its own (a branch inside would keep the compiler from vectorising)
        for j in range(n):
            zbuf[j] = np.float64(zt[j])
    if not counts:
        for j in range(n):
            mj = mt[j]
            gj = gt[j]
            x = _c_of(mj, gj, beta1, w, rounded, b1, w1)
            xbuf[j] = x
            nz += x != 0.0
        return nz, zg, tr, rv
    for j in range(n):
        mj = mt[j]
        gj = gt[j]
        x = _c_of(mj, gj, beta1, w, rounded, b1, w1)
        xbuf[j] = x
        gz = gj == zero
        nz += x != 0.0
        zg += gz
        tr += gz & (mj != zero)
        rv += (not gz) & (abs(mj) < threshold)
    return nz, zg, tr, rv


@njit(inline="always", error_model="numpy")
def _c_norms_tile(mt, gt, zt, n, beta1, rounded, b1, w1):
    """``(sum |c_j|, sum c_j**2, sum c_j z_j, sum z_j**2, nnz(c))`` of a tile, ``c`` formed as
    :func:`_c_of` forms it, read from the arrays where they lie: :func:`_c_tile` then
    :func:`_norms_tile` without their float64 buffers (16 lanes, then the ragged end in
    order: the same bits)."""
    w = 1.0 - beta1
    if rounded:
        s1, s2, cz, zz, lanes_nz = _lane_c_norms_rounded(mt, gt, zt, n, b1, w1)
    else:
        s1, s2, cz, zz, lanes_nz = _lane_c_norms(mt, gt, zt, n, beta1, w)
    nz = int(lanes_nz)
    for j in range(n - n % LANES, n):
        mj = mt[j]
        gj = gt[j]
        x = _c_of(mj, gj, beta1, w, rounded, b1, w1)
        y = np.float64(zt[j])
        s1 += abs(x)
        s2 += x * x
        cz += x * y
        zz += y * y
        nz += x != 0.0
    return s1, s2, cz, zz, nz


@njit(inline="always", error_model="numpy")
def _norms_tile(x, y, n):
    """``(sum |x_j|, sum x_j**2, sum x_j y_j, sum y_j**2)`` of a tile: 16 lanes, then the ragged end in order."""
    s1, s2, sxy, syy = _lane_norms(x, y, n)
    for j in range(n - n % LANES, n):
        s1 += abs(x[j])
        s2 += x[j] * x[j]
        sxy += x[j] * y[j]
        syy += y[j] * y[j]
    return s1, s2, sxy, syy


@njit(inline="always", error_model="numpy")
def _unplane(buf, zt, n):
    """A Gaussian tile from the tile order of :func:`fill_gaussian_tile` (four planes) to
    natural order, rounded to ``zt``'s dtype."""
    nb = n // 4
    p0 = buf[:nb]
    p1 = buf[nb:2 * nb]
    p2 = buf[2 * nb:3 * nb]
    p3 = buf[3 * nb:4 * nb]
    for b in range(nb):
        zt[4 * b] = p0[b]
        zt[4 * b + 1] = p1[b]
        zt[4 * b + 2] = p2[b]
        zt[4 * b + 3] = p3[b]
    for r in range(4 * nb, n):
        zt[r] = buf[r]


@njit(inline="always", error_model="numpy")
def _add_counts(out, k, counts):
    for i in range(4):
        out[k, 2 + i] += counts[i]


# --- chunk bodies ----------------------------------------------------------------------


@njit(inline="always", error_model="numpy")
def _norm_chunk(c, lo, hi, out, k):
    """``(||c||_1, ||c||_2^2, nnz(c))`` of entries lo..hi-1 into ``out[k, :3]``."""
    xbuf = np.empty(TILE)
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        ct = c[t0:t0 + n]
        nz = 0
        for j in range(n):
            x = np.float64(ct[j])
            xbuf[j] = x
            nz += x != 0.0
        s1, s2, _ = _tile_sums(xbuf, n)
        out[k, 0] += s1
        out[k, 1] += s2
        out[k, 2] += nz


@njit(inline="always", error_model="numpy")
def _momentum_chunk(m, g, z, beta1, threshold, rounded, b1, w1, counts, lo, hi, out, k):
    """The telemetry sums of entries lo..hi-1 (counts if asked), and ``c . z``, ``z . z`` if ``z`` has entries.

    With ``z`` and without counts (Enim's first pass without the telemetry's
    counts, Lion's telemetry sums with ``z = m``) each tile is summed where it
    lies (:func:`_c_norms_tile`); otherwise through float64 tile buffers.
    Both give the same bits.
    """
    xbuf = np.empty(TILE)
    zbuf = np.empty(TILE)
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        if z.shape[0] > 0 and not counts:  # no counts to make: the sums straight from the arrays
            s1, s2, cz, zz, nz = _c_norms_tile(m[t0:t0 + n], g[t0:t0 + n], z[t0:t0 + n], n, beta1, rounded, b1, w1)
            out[k, 0] += s1
            out[k, 1] += s2
            out[k, 2] += nz
            out[k, 6] += cz
            out[k, 7] += zz
            continue
        _add_counts(out, k, _c_tile(m[t0:t0 + n], g[t0:t0 + n], z[t0:t0 + n], n, beta1, threshold, xbuf, zbuf,
                                    rounded, b1, w1, counts))
        if z.shape[0] > 0:
            s1, s2, cz, zz = _norms_tile(xbuf, zbuf, n)
            out[k, 6] += cz
            out[k, 7] += zz
        else:
            s1, s2, _ = _tile_sums(xbuf, n)
        out[k, 0] += s1
        out[k, 1] += s2


@njit(inline="always", error_model="numpy")
def _lion_chunk(p, m, g, b1, w1, b2, w2, nlr, decay, one, threshold, count, lo, hi, out, k):
    """Lion's step on entries lo..hi-1, in the arrays' dtype (constants already in it); with
    ``count``, ``out[k, :3]``: the telemetry's counts of those entries, read before the step
    (``g = 0``; ``g = 0`` and ``m != 0``; ``g != 0`` and ``|m| < threshold``).

    Tile by tile over slices, so that the loop index starts at 0 (the compiler
    then drops the negative-index checks and vectorises).
    """
    zero = one - one
    zero_grad = 0
    tracing = 0
    revived = 0
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        pt = p[t0:t0 + n]
        mt = m[t0:t0 + n]
        gt = g[t0:t0 + n]
        if count:
            zt = np.int32(0)  # a tile's counts fit 32 bits; narrow counters keep the loop vectorised wide
            tt = np.int32(0)
            rt = np.int32(0)
            for j in range(n):
                mj = mt[j]
                gj = gt[j]
                gz = gj == zero
                zt += np.int32(gz)
                tt += np.int32(gz & (mj != zero))
                rt += np.int32((not gz) & (abs(mj) < threshold))
                c = fma(gj, w1, mj * b1)
                s = one if c > zero else (-one if c < zero else zero)  # sign(0) = sign(nan) = 0, as torch
                pt[j] = fma(s, nlr, pt[j] * decay)
                mt[j] = fma(gj, w2, mj * b2)
            zero_grad += zt
            tracing += tt
            revived += rt
        else:
            for j in range(n):
                mj = mt[j]
                gj = gt[j]
                c = fma(gj, w1, mj * b1)
                s = one if c > zero else (-one if c < zero else zero)
                pt[j] = fma(s, nlr, pt[j] * decay)
                mt[j] = fma(gj, w2, mj * b2)
    out[k, 0] = zero_grad
    out[k, 1] = tracing
    out[k, 2] = revived


@njit(inline="always", error_model="numpy")
def _finite_chunk(m, g, big, lo, hi, out, k):
    """``out[k, 0]``, ``out[k, 1]``: how many of entries lo..hi-1 of ``m`` and of ``g`` are not finite.

    ``|x| <= big`` (the dtype's largest finite value) fails exactly for an inf
    or a nan; the counts are integer sums, a loop the compiler vectorises.
    """
    bad_m = 0
    bad_g = 0
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        mt = m[t0:t0 + n]
        gt = g[t0:t0 + n]
        for j in range(n):
            bad_m += not abs(mt[j]) <= big
            bad_g += not abs(gt[j]) <= big
    out[k, 0] = bad_m
    out[k, 1] = bad_g


@njit(inline="always", error_model="numpy")
def _enim_draw_chunk(k0, k1, sample, z, m, g, beta1, b1, threshold, counts, lo, hi, out, k):
    """Gaussian coordinates lo..hi-1 (lo a multiple of 4) of ``sample`` into z[lo:hi]; the sums (counts if asked)."""
    words = np.empty(TILE_SCRATCH * TILE, np.uint32)
    buf = np.empty(TILE)
    xbuf = np.empty(TILE)
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        fill_gaussian_tile(k0, k1, sample, t0, n, words, buf)  # tile order: four planes
        zt = z[t0:t0 + n]
        _unplane(buf, zt, n)
        for j in range(n):  # the stored values, widened: the sums see what the update will
            buf[j] = np.float64(zt[j])
        _add_counts(out, k, _c_tile(m[t0:t0 + n], g[t0:t0 + n], z[0:0], n, beta1, threshold, xbuf, xbuf,
                                    False, b1, b1, counts))  # c in float64
        s1, s2, cz, zz = _norms_tile(xbuf, buf, n)
        out[k, 0] += s1
        out[k, 1] += s2
        out[k, 6] += cz
        out[k, 7] += zz


@njit(inline="always", error_model="numpy")
def _prefetch_tile(p, m, g, z, t0, hi):
    """Prefetch hints for entries t0..min(t0 + TILE, hi) - 1 of ``p, m, g, z``: at least one per cache line
    of 64 bytes of each (``z`` may be wider than the others)."""
    step = max(1, 64 // max(p.itemsize, z.itemsize))
    for j in range(t0, min(t0 + TILE, hi), step):
        _prefetch(p, j)
        _prefetch(m, j)
        _prefetch(g, j)
        _prefetch(z, j)


@njit(inline="always", error_model="numpy")
def _enim_update_chunk(p, m, g, z, beta1, alpha, beta, lr, decay, b2, w2, draw, k0, k1, sample, lo, hi):
    """Enim's update of entries lo..hi-1; with ``draw``, then the next ``z`` into the same tile.

    The next ``z`` (Gaussian sample ``sample`` under ``(k0, k1)``, as
    :func:`_enim_draw_chunk` draws it) is written over the tile just used,
    while the tile is in cache.
    """
    words = np.empty(TILE_SCRATCH * TILE, np.uint32)
    buf = np.empty(TILE)
    w = 1.0 - beta1
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        pt = p[t0:t0 + n]
        mt = m[t0:t0 + n]
        gt = g[t0:t0 + n]
        zt = z[t0:t0 + n]
        for j in range(n):  # two loops, each vectorised at its own width (float64, then the dtype's)
            c = beta1 * np.float64(mt[j]) + w * np.float64(gt[j])
            u = alpha * c + beta * np.float64(zt[j])
            pt[j] = decay * np.float64(pt[j]) - lr * u
        for j in range(n):
            mt[j] = fma(gt[j], w2, mt[j] * b2)
        if draw:
            _prefetch_tile(p, m, g, z, t0 + TILE, hi)
            fill_gaussian_tile(k0, k1, sample, t0, n, words, buf)
            _unplane(buf, zt, n)


@njit(inline="always", error_model="numpy")
def _normals_chunk(k0, k1, sample, z, lo, hi, start):
    """Gaussian coordinates ``start + lo .. start + hi - 1`` of ``sample`` into z[lo:hi], natural order.

    ``start`` (the global coordinate of ``z[0]``: a shard's offset in its
    tensor) need not be a multiple of 4: the entries before the first whole
    block of four are copied from their block, drawn whole.
    """
    words = np.empty(TILE_SCRATCH * TILE, np.uint32)
    buf = np.empty(TILE)
    first = start + lo
    head = min((4 - first % 4) % 4, hi - lo)
    if head > 0:
        fill_gaussian_tile(k0, k1, sample, first - first % 4, 4, words, buf)  # one block: natural order
        for j in range(head):
            z[lo + j] = buf[first % 4 + j]
    for t0 in range(lo + head, hi, TILE):
        n = min(TILE, hi - t0)
        fill_gaussian_tile(k0, k1, sample, start + t0, n, words, buf)
        _unplane(buf, z[t0:t0 + n], n)


# --- launches: every chunk of every array, on the thread pool or in order ---------------


@njit(inline="always", error_model="numpy")
def _norm_item(address, sizes, items, k, like, out):
    i = items[k, 0]
    _norm_chunk(_view(address[i, 0], sizes[i], like), items[k, 1], items[k, 2], out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _norm_kernel(address, sizes, items, parts, like, out):
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _norm_item(address, sizes, items, k, like, out)
    else:
        for k in range(items.shape[0]):
            _norm_item(address, sizes, items, k, like, out)


@njit(inline="always", error_model="numpy")
def _finite_item(address, sizes, items, k, big, out):
    i, n = items[k, 0], sizes[items[k, 0]]
    _finite_chunk(_view(address[i, 0], n, big), _view(address[i, 1], n, big), big[0], items[k, 1], items[k, 2],
                  out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _finite_kernel(address, sizes, items, parts, big, out):
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _finite_item(address, sizes, items, k, big, out)
    else:
        for k in range(items.shape[0]):
            _finite_item(address, sizes, items, k, big, out)


@njit(inline="always", error_model="numpy")
def _sums_item(address, sizes, items, k, zlike, has_z, beta1, consts, rounded, counts, out):
    i, n = items[k, 0], sizes[items[k, 0]]
    z = _view(address[i, 2] if has_z else 0, n if has_z else 0, zlike)
    _momentum_chunk(_view(address[i, 0], n, consts), _view(address[i, 1], n, consts), z, beta1[i], consts[i, 2],
                    rounded, consts[i, 0], consts[i, 1], counts, items[k, 1], items[k, 2], out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _sums_kernel(address, sizes, items, parts, zlike, has_z, beta1, consts, rounded, counts, out):
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _sums_item(address, sizes, items, k, zlike, has_z, beta1, consts, rounded, counts, out)
    else:
        for k in range(items.shape[0]):
            _sums_item(address, sizes, items, k, zlike, has_z, beta1, consts, rounded, counts, out)


@njit(inline="always", error_model="numpy")
def _lion_item(address, sizes, items, k, consts, count, out):
    i, n = items[k, 0], sizes[items[k, 0]]
    c = consts[i]
    _lion_chunk(_view(address[i, 0], n, consts), _view(address[i, 1], n, consts), _view(address[i, 2], n, consts),
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], count, items[k, 1], items[k, 2], out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _lion_kernel(address, sizes, items, parts, consts, count, out):
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _lion_item(address, sizes, items, k, consts, count, out)
    else:
        for k in range(items.shape[0]):
            _lion_item(address, sizes, items, k, consts, count, out)


@njit(inline="always", error_model="numpy")
def _draw_item(address, sizes, items, k, zlike, k0, k1, samples, beta1, consts, counts, out):
    i, n = items[k, 0], sizes[items[k, 0]]
    _enim_draw_chunk(k0, k1, samples[i], _view(address[i, 0], n, zlike), _view(address[i, 1], n, consts),
                     _view(address[i, 2], n, consts), beta1[i], consts[i, 0], consts[i, 1], counts,
                     items[k, 1], items[k, 2], out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _draw_kernel(address, sizes, items, parts, zlike, k0, k1, samples, beta1, consts, counts, out):
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _draw_item(address, sizes, items, k, zlike, k0, k1, samples, beta1, consts, counts, out)
    else:
        for k in range(items.shape[0]):
            _draw_item(address, sizes, items, k, zlike, k0, k1, samples, beta1, consts, counts, out)


@njit(inline="always", error_model="numpy")
def _update_item(address, sizes, items, k, zlike, coef, consts, draw, k0, k1, samples):
    i, n = items[k, 0], sizes[items[k, 0]]
    c = coef[i]
    _enim_update_chunk(_view(address[i, 0], n, consts), _view(address[i, 1], n, consts),
                       _view(address[i, 2], n, consts), _view(address[i, 3], n, zlike), c[0], c[1], c[2], c[3],
                       c[4], consts[i, 0], consts[i, 1], draw, k0, k1, samples[i], items[k, 1], items[k, 2])


@njit(cache=True, parallel=True, error_model="numpy")
def _update_kernel(address, sizes, items, parts, zlike, coef, consts, draw, k0, k1, samples):
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _update_item(address, sizes, items, k, zlike, coef, consts, draw, k0, k1, samples)
    else:
        for k in range(items.shape[0]):
            _update_item(address, sizes, items, k, zlike, coef, consts, draw, k0, k1, samples)


@njit(cache=True, parallel=True, error_model="numpy")
def _enim_step_kernel(sums_address, address, sizes, items, parts, zlike, beta1, sums_consts, coef, consts, turn,
                      k0, k1, samples, out, rows):
    """Enim's whole step with one turn of every entry in one launch
    (:meth:`~lni_geometry.optim_kernels.EnimStep.step`): the first pass
    (:func:`_sums_kernel` over ``sums_address``'s ``m, g, z``, without
    counts) folded into ``rows`` (both zeroed first); then, only if every
    ``||c||_1`` is finite, the coefficients from the exact sums of the rows
    (:func:`exact_sum`, :func:`turn_coefficients` with ``turn = (cos t,
    sin t)``, into ``coef[:, 1:3]``) and the update with the next draw
    (:func:`_update_kernel` over ``address``'s ``p, m, g, z``).

    Returns 0 when it wrote; 1 when some ``c`` is not finite; 2 when the
    coefficients are not to be had here (``z`` almost parallel to ``c``, an
    overflow of the sums, a single entry).  Nothing is written but ``out``,
    ``rows`` and ``coef`` unless it returns 0.
    """
    out[:] = 0.0
    rows[:] = 0.0
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _sums_item(sums_address, sizes, items, k, zlike, True, beta1, sums_consts, False, False, out)
    else:
        for k in range(items.shape[0]):
            _sums_item(sums_address, sizes, items, k, zlike, True, beta1, sums_consts, False, False, out)
    _fold_rows(out, items, rows)
    entries = 0
    for i in range(sizes.shape[0]):
        if not np.isfinite(rows[i, 0]):
            return 1
        entries += sizes[i]
    c2, ok_c2 = exact_sum(rows[:, 1])
    cz, ok_cz = exact_sum(rows[:, 6])
    zz, ok_zz = exact_sum(rows[:, 7])
    if entries < 2 or not (ok_c2 and ok_cz and ok_zz):
        return 2
    alpha, beta, ok = turn_coefficients(c2, cz, zz, entries, turn[0], turn[1])
    if not ok:
        return 2
    coef[:, 1] = alpha
    coef[:, 2] = beta
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _update_item(address, sizes, items, k, zlike, coef, consts, True, k0, k1, samples)
    else:
        for k in range(items.shape[0]):
            _update_item(address, sizes, items, k, zlike, coef, consts, True, k0, k1, samples)
    return 0


@njit(inline="always", error_model="numpy")
def _normals_item(address, sizes, items, k, zlike, k0, k1, samples, starts):
    i = items[k, 0]
    _normals_chunk(k0, k1, samples[i], _view(address[i, 0], sizes[i], zlike), items[k, 1], items[k, 2], starts[i])


@njit(cache=True, parallel=True, error_model="numpy")
def _normals_kernel(address, sizes, items, parts, zlike, k0, k1, samples, starts):
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _normals_item(address, sizes, items, k, zlike, k0, k1, samples, starts)
    else:
        for k in range(items.shape[0]):
            _normals_item(address, sizes, items, k, zlike, k0, k1, samples, starts)


@njit(inline="always", error_model="numpy")
def _revived_thresholds(rows, sizes, groups, fraction, consts, big):
    """``consts[:, 7]``: per array, ``fraction`` times the RMS of the momenta of its group (from
    ``rows[:, 7]``, each array's ``||m||_2^2``), as the smallest value of the dtype ``t >= thr``,
    so that ``|m| < t`` iff ``|m| < thr``."""
    count = sizes.shape[0]
    width = 0
    for i in range(count):
        width = max(width, groups[i] + 1)
    total = np.zeros(width)
    entries = np.zeros(width)
    for i in range(count):  # in array order, as the Python path adds them
        total[groups[i]] += rows[i, 7]
        entries[groups[i]] += sizes[i]
    for i in range(count):
        gi = groups[i]
        thr = fraction * np.sqrt(total[gi] / entries[gi]) if entries[gi] > 0 else 0.0
        consts[i, 7] = thr
        if np.float64(consts[i, 7]) < thr:
            consts[i, 7] = np.nextafter(consts[i, 7], big[0] + big[0])  # towards inf, in the dtype


@njit(cache=True, parallel=True, error_model="numpy")
def _lion_checked_kernel(address, sizes, items, parts, consts, big, out, rows):
    """Lion's whole step in one launch (:class:`~lni_geometry.optim_kernels.LionStep` without
    telemetry): the non-finite counts of ``m`` and ``g`` (:func:`_finite_kernel`, reading
    ``address`` columns 1 and 2 of ``p, m, g``) folded into ``rows`` (both zeroed first); then,
    only if they are all 0, the update (:func:`_lion_kernel`).  Returns whether it wrote."""
    first = address[:, 1:]
    out[:] = 0.0
    rows[:] = 0.0
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _finite_item(first, sizes, items, k, big, out)
    else:
        for k in range(items.shape[0]):
            _finite_item(first, sizes, items, k, big, out)
    _fold_rows(out, items, rows)
    for i in range(sizes.shape[0]):
        if rows[i, 0] + rows[i, 1] > 0:
            return False
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _lion_item(address, sizes, items, k, consts, False, out)
    else:
        for k in range(items.shape[0]):
            _lion_item(address, sizes, items, k, consts, False, out)
    return True


@njit(cache=True, parallel=True, error_model="numpy")
def _lion_telemetry_kernel(address, sizes, items, parts, beta1, sums_consts, consts, big, groups, fraction,
                           out, rows):
    """Lion's whole step with its telemetry in one launch (:class:`~lni_geometry.optim_kernels.LionStep`).

    ``address`` columns ``p, m, g, m``; the first pass reads columns 1..3 as
    :func:`_sums_kernel` with ``z = m`` (without the counts, which wait for
    the update: it reads the same ``m`` and ``g``) and folds its item rows
    into ``rows`` (both zeroed first); then, only if every ``c`` is finite,
    the revived thresholds (:func:`_revived_thresholds`) and the update
    (:func:`_lion_kernel`), whose counts go to ``rows[:, 3:6]``.  Returns
    whether it wrote.
    """
    first = address[:, 1:]
    out[:] = 0.0
    rows[:] = 0.0
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _sums_item(first, sizes, items, k, consts, True, beta1, sums_consts, True, False, out)
    else:
        for k in range(items.shape[0]):
            _sums_item(first, sizes, items, k, consts, True, beta1, sums_consts, True, False, out)
    _fold_rows(out, items, rows)
    for i in range(sizes.shape[0]):
        if not np.isfinite(rows[i, 0]):
            return False
    _revived_thresholds(rows, sizes, groups, fraction, consts, big)
    if parts.shape[0] > 0:
        for q in prange(parts.shape[0] - 1):
            for k in range(parts[q], parts[q + 1]):
                _lion_item(address, sizes, items, k, consts, True, out)
    else:
        for k in range(items.shape[0]):
            _lion_item(address, sizes, items, k, consts, True, out)
    for k in range(items.shape[0]):
        for j in range(3):
            rows[items[k, 0], 3 + j] += out[k, j]
    return True
