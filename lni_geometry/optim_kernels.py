"""Fused kernels of the PyTorch optimizers: Lion's and Enim's steps, their telemetry sums, Enim's Gaussian.

The optimizers of :mod:`lni_geometry.torch` need, per parameter tensor and per
step, the update itself and a few sums over Lion's ``c = beta1 m + (1 - beta1) g``,
the gradient ``g`` and the momentum ``m``: ``||c||_1``, ``||c||_2^2``,
``nnz(c)`` (the sign angle and the angle budget), counts of exact zeros and of
small momenta (momentum tracing), the new momentum's ``||m||_2^2`` (the next
step's threshold), and for Enim ``c . z`` and ``z . z`` with a Gaussian ``z``.
Separate torch operations would read every array once per operation (a Lion
step is six passes in torch), and torch's float32 ``vector_norm`` and ``dot``
accumulate in float32 (relative errors of 1e-3 at 10^7 entries); these kernels
read each array once per step (Enim: twice), accumulate in float64, and run on
all cores.

- :func:`lion_update`: Lion's step in one pass, bit for bit torch's operations
  (and so lucidrains/lion-pytorch's ``Lion``): ``c = fma(g, 1 - beta1, m * beta1)``,
  ``w <- fma(sign(c), -lr, w * (1 - lr wd))``, ``m <- fma(g, 1 - beta2, m * beta2)``
  in the parameters' dtype, with the constants rounded to it, as torch's
  ``mul_`` and ``add_(x, alpha=)`` compute them on a CPU with FMA
  (:func:`torch_uses_fma` checks); with ``threshold`` also the telemetry sums.
- :func:`enim_draw`: Enim's first pass: the Gaussian ``z`` of the step (from
  the package's Philox stream, :func:`fill_normals`) written to its buffer,
  and the sums of ``c`` and of ``z`` against ``c``.
- :func:`enim_update`: Enim's second pass: ``w <- (1 - lr wd) w - lr (alpha c + beta z)``
  (float64, rounded once) and Lion's momentum update; optionally the next
  step's ``z`` drawn into the buffer on the way (the next first pass is then
  :func:`momentum_sums` with that ``z``).
- :func:`momentum_sums`, :func:`c_sums`: the sums alone (Enim with a ``z``
  drawn ahead or from elsewhere; a momentum's norm).
- :func:`fill_normals`, :func:`normal_sums`: Gaussian coordinates of the
  package's stream into an array, or only their sums (Enim's ``"lni"`` angle).

Telemetry sums are over the ``c`` each optimizer's update uses: Lion's in the
parameters' dtype (``rounded``, the ``c`` whose sign it takes), Enim's formed
in float64 (``beta1 m + (1 - beta1) g`` with ``beta1`` a float64).

Fixed reduction order (what makes every sum independent of the number of
threads): entries are cut into chunks of :data:`CHUNK`, chunks into tiles of
:data:`TILE`; a tile's values are formed in float64 into a small buffer by a
loop the compiler vectorises (counts are integer sums: exact in any order),
and the buffer is summed by the lane kernels of :mod:`lni_geometry.kernels`
(16 float64 lanes and a fixed pairwise fold, whatever the instruction set);
tile sums are added in tile order, chunk sums in chunk order.  Arrays shorter
than :data:`PARALLEL_MIN` are processed on the calling thread, in the same
order.

The kernels take 1-D contiguous float32 or float64 numpy arrays (the CPU
tensors' ``.numpy()`` views); the update kernels write them in place, the sums
(``c_sums``, ``momentum_sums``, ``normal_sums``) only read, and every kernel
returns Python numbers (:func:`torch_uses_fma` takes a dtype).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint32

from .elementary import fma
from .kernels import LANES, _lane_norms, _tile_sums, add_rows_in_order, chunk_sums_of_sample, n_chunks
from .models import GAUSSIAN_ID, TILE_SCRATCH, fill_gaussian_tile

__all__ = [
    "SUMS",
    "c_sums",
    "enim_draw",
    "enim_update",
    "fill_normals",
    "lion_update",
    "momentum_sums",
    "normal_sums",
    "torch_uses_fma",
]

CHUNK = 1 << 15  # entries per chunk: the optimizers' unit of parallel work (the sampler's is kernels.CHUNK)
#: Entries per tile: values pass through float64 buffers of this size.  Small tiles
#: keep the telemetry's arithmetic close to the loads it waits on, so that it overlaps
#: the memory traffic (the Lion kernel alone with telemetry at 10^7 entries, timed in one process:
#: 1.1x the kernel without at 512, 1.4x at 1024; `lni-geometry bench --torch`'s whole step: 1.24x to 1.35x).
TILE = 512
#: Arrays shorter than this are processed on the calling thread: waking the thread
#: pool costs more than it saves there, and much more on a loaded machine.  The
#: serial and parallel kernels sum the same chunks in the same order: the same bits.
PARALLEL_MIN = 1 << 20

#: The sums the kernels return, in order (a row of ``out`` per chunk):
#: ``l1 = ||c||_1``, ``l2sq = ||c||_2^2``, ``nnz = nnz(c)``, ``zero_grad = #{g = 0}``,
#: ``tracing = #{g = 0, m != 0}``, ``revived = #{g != 0, |m| < threshold}``,
#: ``cz = c . z``, ``zz = z . z``, ``m2_new = ||m||_2^2`` after the momentum update.
SUMS = ("l1", "l2sq", "nnz", "zero_grad", "tracing", "revived", "cz", "zz", "m2_new")
_WIDTH = len(SUMS)
_COUNTS = (2, 3, 4, 5)  # exact integers (float64 sums of integers below 2**53)


# --- tile bodies (inlined into the chunk loops) ------------------------------------


@njit(inline="always", error_model="numpy")
def _c_tile(mt, gt, n, beta1, threshold, xbuf, rounded, b1, w1, counts):
    """``c = beta1 m + (1 - beta1) g`` of a tile into ``xbuf`` (float64); ``nnz(c)`` and the counts.

    ``c`` is formed in float64, or with ``rounded`` as Lion's step forms it,
    ``fma(g, w1, m * b1)`` in the arrays' dtype (``b1``, ``w1``: ``beta1``,
    ``1 - beta1`` rounded to it).  ``threshold`` is in the arrays' dtype
    (:func:`_threshold`): ``|m| < threshold`` is then the comparison with the
    exact threshold.  Without ``counts`` the counts of ``g`` and ``m`` are 0.
    """
    w = 1.0 - beta1
    zero = b1 - b1  # b1 is finite (the threshold may be inf or nan when a momentum is)
    nz = 0
    zg = 0
    tr = 0
    rv = 0
    if not counts:
        for j in range(n):
            mj = mt[j]
            gj = gt[j]
            x = np.float64(fma(gj, w1, mj * b1)) if rounded else beta1 * np.float64(mj) + w * np.float64(gj)
            xbuf[j] = x
            nz += x != 0.0
        return nz, zg, tr, rv
    for j in range(n):
        mj = mt[j]
        gj = gt[j]
        x = np.float64(fma(gj, w1, mj * b1)) if rounded else beta1 * np.float64(mj) + w * np.float64(gj)
        xbuf[j] = x
        gz = gj == zero
        nz += x != 0.0
        zg += gz
        tr += gz & (mj != zero)
        rv += (not gz) & (abs(mj) < threshold)
    return nz, zg, tr, rv


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
    """The telemetry sums of entries lo..hi-1 (counts if asked), and ``c . z``, ``z . z`` if ``z`` has entries."""
    xbuf = np.empty(TILE)
    zbuf = np.empty(TILE)
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        _add_counts(out, k, _c_tile(m[t0:t0 + n], g[t0:t0 + n], n, beta1, threshold, xbuf, rounded, b1, w1, counts))
        if z.shape[0] > 0:
            zt = z[t0:t0 + n]
            for j in range(n):
                zbuf[j] = np.float64(zt[j])
            s1, s2, cz, zz = _norms_tile(xbuf, zbuf, n)
            out[k, 6] += cz
            out[k, 7] += zz
        else:
            s1, s2, _ = _tile_sums(xbuf, n)
        out[k, 0] += s1
        out[k, 1] += s2


@njit(inline="always", error_model="numpy")
def _lion_chunk(p, m, g, b1, w1, b2, w2, nlr, decay, one, threshold, telemetry, lo, hi, out, k):
    """Lion's step on entries lo..hi-1, in the arrays' dtype (constants already in it).

    With ``telemetry``, in the same loop: the sums of the ``c`` the step takes
    the sign of (as :func:`_c_tile` forms it with ``rounded``) and the counts,
    before ``m`` moves, and the new momentum's squared norm.
    """
    zero = one - one
    xbuf = np.empty(TILE)
    mbuf = np.empty(TILE)
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        pt = p[t0:t0 + n]
        mt = m[t0:t0 + n]
        gt = g[t0:t0 + n]
        if not telemetry:
            for j in range(n):
                mj = mt[j]
                gj = gt[j]
                c = fma(gj, w1, mj * b1)
                s = one if c > zero else (-one if c < zero else zero)  # sign(0) = sign(nan) = 0, as torch
                pt[j] = fma(s, nlr, pt[j] * decay)
                mt[j] = fma(gj, w2, mj * b2)
            continue
        nz = 0
        zg = 0
        tr = 0
        rv = 0
        for j in range(n):  # the same step, and what the telemetry needs
            mj = mt[j]
            gj = gt[j]
            c = fma(gj, w1, mj * b1)
            s = one if c > zero else (-one if c < zero else zero)
            pt[j] = fma(s, nlr, pt[j] * decay)
            mn = fma(gj, w2, mj * b2)
            mt[j] = mn
            xbuf[j] = np.float64(c)
            mbuf[j] = np.float64(mn)
            gz = gj == zero
            nz += c != zero
            zg += gz
            tr += gz & (mj != zero)
            rv += (not gz) & (abs(mj) < threshold)
        s1, s2, _, m2 = _norms_tile(xbuf, mbuf, n)
        out[k, 0] += s1
        out[k, 1] += s2
        _add_counts(out, k, (nz, zg, tr, rv))
        out[k, 8] += m2


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
        _add_counts(out, k, _c_tile(m[t0:t0 + n], g[t0:t0 + n], n, beta1, threshold, xbuf,
                                    False, b1, b1, counts))  # c in float64
        s1, s2, cz, zz = _norms_tile(xbuf, buf, n)
        out[k, 0] += s1
        out[k, 1] += s2
        out[k, 6] += cz
        out[k, 7] += zz


@njit(inline="always", error_model="numpy")
def _enim_update_chunk(p, m, g, z, beta1, alpha, beta, lr, decay, b2, w2, telemetry, draw, k0, k1, sample,
                       lo, hi, out, k):
    """Enim's update of entries lo..hi-1; with ``draw``, then the next ``z`` into the same tile.

    The next ``z`` (Gaussian sample ``sample`` under ``(k0, k1)``, as
    :func:`_enim_draw_chunk` draws it) is written over the tile just used,
    while the tile is in cache.
    """
    mbuf = np.empty(TILE)
    words = np.empty(TILE_SCRATCH * TILE, np.uint32)
    buf = np.empty(TILE)
    w = 1.0 - beta1
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        pt = p[t0:t0 + n]
        mt = m[t0:t0 + n]
        gt = g[t0:t0 + n]
        zt = z[t0:t0 + n]
        for j in range(n):
            mj = mt[j]
            gj = gt[j]
            c = beta1 * np.float64(mj) + w * np.float64(gj)
            u = alpha * c + beta * np.float64(zt[j])
            pt[j] = decay * np.float64(pt[j]) - lr * u
            mt[j] = fma(gj, w2, mj * b2)
        if telemetry:
            for j in range(n):
                mbuf[j] = np.float64(mt[j])
            out[k, 8] += _norms_tile(mbuf, mbuf, n)[1]
        if draw:
            fill_gaussian_tile(k0, k1, sample, t0, n, words, buf)
            _unplane(buf, zt, n)


@njit(inline="always", error_model="numpy")
def _normals_chunk(k0, k1, sample, z, lo, hi):
    """Gaussian coordinates lo..hi-1 (lo a multiple of 4) of ``sample`` into z[lo:hi], natural order."""
    words = np.empty(TILE_SCRATCH * TILE, np.uint32)
    buf = np.empty(TILE)
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        fill_gaussian_tile(k0, k1, sample, t0, n, words, buf)
        _unplane(buf, z[t0:t0 + n], n)


# --- over the chunks: in parallel, or in order on the calling thread ------------------


@njit(cache=True, parallel=True, error_model="numpy")
def _norm_parallel(c, out):
    for k in prange(out.shape[0]):
        _norm_chunk(c, k * CHUNK, min(c.shape[0], (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _norm_serial(c, out):
    for k in range(out.shape[0]):
        _norm_chunk(c, k * CHUNK, min(c.shape[0], (k + 1) * CHUNK), out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _momentum_parallel(m, g, z, beta1, threshold, rounded, b1, w1, counts, out):
    for k in prange(out.shape[0]):
        _momentum_chunk(m, g, z, beta1, threshold, rounded, b1, w1, counts, k * CHUNK, min(m.shape[0], (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _momentum_serial(m, g, z, beta1, threshold, rounded, b1, w1, counts, out):
    for k in range(out.shape[0]):
        _momentum_chunk(m, g, z, beta1, threshold, rounded, b1, w1, counts, k * CHUNK, min(m.shape[0], (k + 1) * CHUNK), out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _lion_parallel(p, m, g, b1, w1, b2, w2, nlr, decay, one, threshold, telemetry, out):
    for k in prange(out.shape[0]):
        _lion_chunk(p, m, g, b1, w1, b2, w2, nlr, decay, one, threshold, telemetry,
                    k * CHUNK, min(p.shape[0], (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _lion_serial(p, m, g, b1, w1, b2, w2, nlr, decay, one, threshold, telemetry, out):
    for k in range(out.shape[0]):
        _lion_chunk(p, m, g, b1, w1, b2, w2, nlr, decay, one, threshold, telemetry,
                    k * CHUNK, min(p.shape[0], (k + 1) * CHUNK), out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _enim_draw_parallel(k0, k1, sample, z, m, g, beta1, b1, threshold, counts, out):
    for k in prange(out.shape[0]):
        _enim_draw_chunk(k0, k1, sample, z, m, g, beta1, b1, threshold, counts, k * CHUNK, min(z.shape[0], (k + 1) * CHUNK),
                         out, k)


@njit(cache=True, error_model="numpy")
def _enim_draw_serial(k0, k1, sample, z, m, g, beta1, b1, threshold, counts, out):
    for k in range(out.shape[0]):
        _enim_draw_chunk(k0, k1, sample, z, m, g, beta1, b1, threshold, counts, k * CHUNK, min(z.shape[0], (k + 1) * CHUNK),
                         out, k)


@njit(cache=True, parallel=True, error_model="numpy")
def _normals_parallel(k0, k1, sample, z, out):
    for k in prange(out.shape[0]):
        _normals_chunk(k0, k1, sample, z, k * CHUNK, min(z.shape[0], (k + 1) * CHUNK))


@njit(cache=True, error_model="numpy")
def _normals_serial(k0, k1, sample, z, out):
    for k in range(out.shape[0]):
        _normals_chunk(k0, k1, sample, z, k * CHUNK, min(z.shape[0], (k + 1) * CHUNK))


@njit(cache=True, parallel=True, error_model="numpy")
def _enim_update_parallel(p, m, g, z, beta1, alpha, beta, lr, decay, b2, w2, telemetry, draw, k0, k1, sample, out):
    for k in prange(out.shape[0]):
        _enim_update_chunk(p, m, g, z, beta1, alpha, beta, lr, decay, b2, w2, telemetry, draw, k0, k1, sample,
                           k * CHUNK, min(p.shape[0], (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _enim_update_serial(p, m, g, z, beta1, alpha, beta, lr, decay, b2, w2, telemetry, draw, k0, k1, sample, out):
    for k in range(out.shape[0]):
        _enim_update_chunk(p, m, g, z, beta1, alpha, beta, lr, decay, b2, w2, telemetry, draw, k0, k1, sample,
                           k * CHUNK, min(p.shape[0], (k + 1) * CHUNK), out, k)


# --- the Python functions -------------------------------------------------------------


def _check(name, x):
    if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a 1-D float32 or float64 numpy array, got {type(x).__name__}"
                        f" {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be contiguous")
    return x


def _same(**arrays):
    """One length for all the arrays."""
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the arrays must have one length, got {lengths}")


def _same_dtype(**arrays):
    dtypes = {k: str(v.dtype) for k, v in arrays.items()}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"the arrays must have one dtype, got {dtypes}")


def _run(parallel, serial, n, *args):
    """Run a kernel over the chunks of ``n`` entries; the chunk rows folded in chunk order."""
    out = np.zeros((max(1, -(-n // CHUNK)), _WIDTH))
    (parallel if n >= PARALLEL_MIN else serial)(*args, out)
    total = np.zeros(_WIDTH)
    for row in out:  # fixed order: thread-count invariant
        total += row
    return tuple(int(v) if i in _COUNTS else float(v) for i, v in enumerate(total))


def _threshold(dtype, threshold):
    """The smallest ``dtype`` value ``t >= threshold``: for ``x`` of that dtype, ``x < t`` iff ``x < threshold``."""
    t = np.dtype(dtype).type(threshold)
    if float(t) < float(threshold):
        t = np.nextafter(t, np.dtype(dtype).type(np.inf))
    return t


def _key(key):
    k0, k1 = (int(k) for k in key)
    if not (0 <= k0 < 2**32 and 0 <= k1 < 2**32):
        raise ValueError(f"key must be two integers in [0, 2**32), got {tuple(key)!r}")
    return uint32(k0), uint32(k1)


def c_sums(c):
    """``(||c||_1, ||c||_2^2, nnz(c))`` accumulated in float64, in the fixed order of the module.

    Parameters
    ----------
    c : ndarray
        1-D contiguous float32 or float64.

    Returns
    -------
    tuple
        ``(float, float, int)``.

    Examples
    --------
    >>> import numpy as np
    >>> c_sums(np.array([3.0, 0.0, -4.0], dtype=np.float32))
    (7.0, 25.0, 2)
    """
    c = _check("c", c)
    return _run(_norm_parallel, _norm_serial, c.shape[0], c)[:3]


def momentum_sums(m, g, beta1, threshold=0.0, z=None, *, rounded=False, counts=True):
    """One pass over ``(m, g[, z])`` with ``c = beta1 m + (1 - beta1) g`` formed in float64 (or as Lion's step).

    What the telemetry of a step needs (before the momentum update), and for
    Enim the sums against its Gaussian ``z``.

    Parameters
    ----------
    m, g : ndarray
        Momentum (before the step) and gradient, one dtype (float32 or float64).
    beta1 : float
        Lion's interpolation coefficient, in ``[0, 1)``.
    threshold : float
        A coordinate is *revived* when ``g != 0`` and ``|m| < threshold``
        (compared exactly, whatever the dtype).
    z : ndarray, optional
        Enim's Gaussian, same length (float32 or float64).
    rounded : bool
        Form ``c`` as :func:`lion_update` does, ``fma(g, T(1 - beta1), m * T(beta1))``
        in the arrays' dtype ``T`` (the ``c`` whose sign Lion takes), not in float64.
    counts : bool
        False: skip the counts of ``g`` and ``m`` (returned as 0; ``nnz(c)`` is kept).

    Returns
    -------
    tuple
        ``(||c||_1, ||c||_2^2, nnz(c), #{g = 0}, #{g = 0, m != 0},
        #{g != 0, |m| < threshold})``, then ``(c . z, z . z)`` when ``z`` is given.

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda *x: np.array(x, dtype=np.float32)
    >>> momentum_sums(f(0, 2, 0), f(1, 0, 0), 0.5, threshold=0.1)
    (1.5, 1.25, 2, 2, 1, 1)
    >>> momentum_sums(f(0, 2, 0), f(1, 0, 0), 0.5, z=f(1, 1, 1))[6:]
    (1.5, 3.0)
    """
    m, g = _check("m", m), _check("g", g)
    if z is None:
        _same(m=m, g=g)
    else:
        z = _check("z", z)
        _same(m=m, g=g, z=z)
    _same_dtype(m=m, g=g)
    zz = np.zeros(0, m.dtype) if z is None else z
    t = m.dtype.type
    out = _run(_momentum_parallel, _momentum_serial, m.shape[0], m, g, zz, float(beta1), _threshold(m.dtype, threshold),
               bool(rounded), t(beta1), t(1.0 - beta1), bool(counts))
    return out[:6] if z is None else out[:8]


def torch_uses_fma(dtype):
    """Whether torch's ``a.add(b, alpha=w)`` rounds ``a + w b`` once (an FMA) for CPU tensors of ``dtype``.

    :func:`lion_update` reproduces torch's Lion operations bit for bit only if
    so (true where torch runs its AVX2 or AVX-512 kernels); the optimizers
    check once per dtype and otherwise step with torch's operations.  The
    probe: 4096 random pairs, among which one and two roundings differ in
    about one in ten.

    Parameters
    ----------
    dtype : numpy.float32 or numpy.float64

    Returns
    -------
    bool
    """
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal(4096).astype(dtype)
    b = rng.standard_normal(4096).astype(dtype)
    w = dtype(0.1)
    got = torch.from_numpy(a).add(torch.from_numpy(b), alpha=float(w)).numpy()
    return bool(np.array_equal(got, _fma_probe(a, b, w)))


@njit(cache=True, error_model="numpy")
def _fma_probe(a, b, w):
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        out[i] = fma(b[i], w, a[i])
    return out


def lion_update(p, m, g, beta1, beta2, lr, weight_decay, threshold=None):
    """Lion's step in place, in one pass: torch's operations bit for bit; telemetry sums if asked.

    In ``p``'s dtype ``T`` (float32 or float64; ``p``, ``m``, ``g`` alike),
    with ``T(x)`` the rounding of a constant to it, as torch's scalar
    operations round them::

        c = fma(g, T(1 - beta1), m * T(beta1))
        p <- fma(sign(c), T(-lr), p * T(1 - lr * weight_decay))     # sign(0) = sign(nan) = 0
        m <- fma(g, T(1 - beta2), m * T(beta2))

    which is what ``m.mul(beta1).add_(g, alpha=1 - beta1).sign_()``,
    ``p.mul_(1 - lr wd).add_(c, alpha=-lr)`` and
    ``m.mul_(beta2).add_(g, alpha=1 - beta2)`` compute where
    :func:`torch_uses_fma` holds.

    Parameters
    ----------
    p, m, g : ndarray
        Weights and momentum (both updated in place), gradient.
    beta1, beta2 : float
        Lion's interpolation and momentum coefficients, in ``[0, 1)``.
    lr, weight_decay : float
        Learning rate ``> 0`` and decoupled weight decay ``>= 0``.
    threshold : float or None
        With a number: the telemetry sums, in the same pass and the same bits
        as :func:`momentum_sums` with ``rounded=True`` (over the ``c`` whose
        sign the step takes, counts before ``m`` moves), and the new
        momentum's ``||m||_2^2``.

    Returns
    -------
    tuple or None
        With ``threshold``, the 9 sums named in :data:`SUMS` (``cz``, ``zz`` are 0).

    Examples
    --------
    >>> import numpy as np
    >>> p, m = np.ones(3, np.float32), np.zeros(3, np.float32)
    >>> lion_update(p, m, np.array([0.5, -2.0, 0.0], np.float32), 0.9, 0.99, 0.1, 0.0)
    >>> p
    array([0.9, 1.1, 1. ], dtype=float32)
    """
    p, m, g = _check("p", p), _check("m", m), _check("g", g)
    _same(p=p, m=m, g=g)
    _same_dtype(p=p, m=m, g=g)
    t = p.dtype.type
    consts = (t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(-lr), t(1.0 - lr * weight_decay), t(1.0))
    telemetry = threshold is not None
    thr = _threshold(t, threshold if telemetry else 0.0)
    out = _run(_lion_parallel, _lion_serial, p.shape[0], p, m, g, *consts, thr, telemetry)
    return out if telemetry else None


def enim_draw(z, m, g, beta1, key, sample, threshold=None):
    """Enim's first pass: ``z`` <- Gaussian sample ``sample`` under ``key``; the sums of ``c`` and ``z``.

    ``z[i]`` is coordinate ``i`` of the sample, as :func:`fill_normals` draws
    it, rounded to ``z``'s dtype; the sums (those of :func:`momentum_sums`
    with ``z``, the same bits) are of the stored values.

    Parameters
    ----------
    z : ndarray
        The buffer to fill (float32 or float64).
    m, g : ndarray
        Momentum and gradient, one dtype; ``c = beta1 m + (1 - beta1) g`` in float64.
    beta1 : float
        Lion's interpolation coefficient.
    key : sequence of two ints in ``[0, 2**32)``
        The Philox key of the draw.
    sample : int
        The sample index, ``0 <= sample < 2**48``.
    threshold : float or None
        With a number, the counts of :func:`momentum_sums` too (the
        telemetry); without, they are returned as 0.

    Returns
    -------
    tuple
        The first 8 sums of :data:`SUMS`.
    """
    z, m, g = _check("z", z), _check("m", m), _check("g", g)
    _same(z=z, m=m, g=g)
    _same_dtype(m=m, g=g)
    k0, k1 = _key(key)
    counts = threshold is not None
    out = _run(_enim_draw_parallel, _enim_draw_serial, z.shape[0], k0, k1, np.int64(sample), z, m, g,
               float(beta1), m.dtype.type(beta1), _threshold(m.dtype, threshold if counts else 0.0), counts)
    return out[:8]


def enim_update(p, m, g, z, beta1, beta2, alpha, beta, lr, weight_decay, telemetry=False, next_key=None,
                sample=0):
    """Enim's second pass, in place: the weights by ``u = alpha c + beta z``, Lion's momentum update,
    and optionally the next step's ``z``.

    ``p <- (1 - lr wd) p - lr (alpha c + beta z)`` with ``c = beta1 m + (1 - beta1) g``,
    computed in float64 per entry and stored in ``p``'s dtype; ``m`` as in
    :func:`lion_update` (so that Enim and Lion carry the same momentum on the
    same gradients).  With ``next_key``, each tile of ``z`` is then
    overwritten by Gaussian sample ``sample`` under that key (the numbers of
    :func:`fill_normals`), while the tile is in cache: the next first pass
    then only reads ``z`` (an Enim step of 10^7 parameters: about 15% shorter
    than drawing ``z`` in the first pass).

    Parameters
    ----------
    p : ndarray
        Weights, updated in place (float32 or float64).
    m, g : ndarray
        Momentum (updated in place) and gradient, one dtype.
    z : ndarray
        Enim's Gaussian (overwritten with ``next_key``).
    beta1, beta2 : float
        Lion's coefficients.
    alpha, beta : float
        The coefficients of ``u`` (see :class:`lni_geometry.torch.Enim`).
    lr, weight_decay : float
        Learning rate and decoupled weight decay.
    telemetry : bool
        Also return the new momentum's squared norm.
    next_key : sequence of two ints, optional
        The Philox key of the next step's ``z``.
    sample : int
        Its sample index.

    Returns
    -------
    float or None
        With ``telemetry``, the new momentum's ``||m||_2^2``.

    Examples
    --------
    >>> import numpy as np
    >>> p, m = np.ones(2), np.zeros(2)
    >>> enim_update(p, m, np.array([2.0, 4.0]), np.array([1.0, -1.0]), 0.5, 0.9, 1.0, 2.0, 0.1, 1.0)
    >>> p, m
    (array([0.6, 0.9]), array([0.2, 0.4]))
    """
    p, m, g, z = _check("p", p), _check("m", m), _check("g", g), _check("z", z)
    _same(p=p, m=m, g=g, z=z)
    _same_dtype(m=m, g=g)
    t = m.dtype.type
    draw = next_key is not None
    k0, k1 = _key(next_key) if draw else (uint32(0), uint32(0))
    out = _run(_enim_update_parallel, _enim_update_serial, p.shape[0], p, m, g, z, float(beta1), float(alpha),
               float(beta), float(lr), 1.0 - lr * weight_decay, t(beta2), t(1.0 - beta2), bool(telemetry),
               draw, k0, k1, np.int64(sample))
    return out[8] if telemetry else None


def fill_normals(out, key, sample=0):
    """Fill ``out`` with coordinates ``0 .. len(out) - 1`` of a Gaussian sample of the package's stream.

    ``out[i]`` is coordinate ``i`` of sample ``sample`` of the
    :class:`~lni_geometry.models.Gaussian` model under the Philox ``key``
    (rounded to ``out``'s dtype): the numbers of
    :func:`lni_geometry.sample_vectors` for that key.  Standard normals with
    ``|z| <= MAX_NORMAL = 6.7637`` (:mod:`lni_geometry.rng`).

    Parameters
    ----------
    out : ndarray
        1-D contiguous float32 or float64, filled in place.
    key : sequence of two ints in ``[0, 2**32)``
    sample : int
        The sample index, ``0 <= sample < 2**48``.

    Examples
    --------
    >>> import numpy as np
    >>> from lni_geometry.backends import cpu
    >>> from lni_geometry.models import Gaussian
    >>> z = np.empty(5)
    >>> fill_normals(z, (7, 9))
    >>> bool(np.array_equal(z, cpu.sample_coords(np.array([7, 9], np.uint32), Gaussian(), 5, 0, 1)[0]))
    True
    """
    out = _check("out", out)
    k0, k1 = _key(key)
    _run(_normals_parallel, _normals_serial, out.shape[0], k0, k1, np.int64(sample), out)


def normal_sums(n, key, sample=0):
    """``(sum |z_i|, sum z_i^2)`` over coordinates ``0 .. n - 1`` of a Gaussian sample, never stored.

    The sampler's fused kernel (:func:`lni_geometry.kernels.chunk_sums_of_sample`,
    in its own chunk order): the sums behind :func:`lni_geometry.sample_angles`
    for that key and sample (summing :func:`fill_normals`' output in this
    module's order gives the same values up to the last bits).

    Parameters
    ----------
    n : int
        The dimension, ``>= 1``.
    key : sequence of two ints in ``[0, 2**32)``
    sample : int
        The sample index.

    Returns
    -------
    tuple of float
        ``(||z||_1, ||z||_2^2)``.
    """
    k0, k1 = _key(key)
    chunks = n_chunks(n)
    out = np.empty((chunks, 3))
    chunk_sums_of_sample(GAUSSIAN_ID, 0.0, 0.0, k0, k1, np.int64(sample), np.int64(n), np.int64(0),
                         np.int64(chunks), out)
    l1, l2sq, _ = add_rows_in_order(out)
    return float(l1), float(l2sq)
