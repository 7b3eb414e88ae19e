"""Fused kernels of the PyTorch optimizers: float64 reductions for telemetry and Enim, Enim's update.

The PyTorch optimizers of :mod:`lni_geometry.torch` need, per parameter
tensor and per step, a few sums over Lion's ``c = beta1 m + (1 - beta1) g``,
the gradient ``g`` and the momentum ``m``: ``||c||_1``, ``||c||_2^2``,
``nnz(c)`` (the sign angle and the angle budget), counts of exact zeros and
of small momenta (momentum tracing), and for Enim ``c . z`` and ``z . z``
with a Gaussian ``z``.  Reading the arrays once per quantity with separate
torch reductions would cost as much as the step itself, and torch's float32
``vector_norm`` and ``dot`` accumulate in float32 (relative errors of 1e-3 at
10^7 entries); these kernels read each array once, accumulate in float64,
and run on all cores.

Fixed reduction order: entries are cut into chunks of :data:`CHUNK`; each
chunk is summed in order, chunk sums are added in chunk order, so the result
does not depend on the number of threads.

Enim needs ``c`` only through sums and through its update
``u = alpha c + beta z``: :func:`enim_sums` and :func:`enim_update` form ``c``
on the fly from ``m`` and ``g`` (in float64), so a step reads each array a
minimal number of times and allocates nothing.

All functions take 1-D contiguous float32 or float64 numpy arrays (the CPU
tensors' ``.numpy()`` views) and return Python numbers (or update in place).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["c_sums", "step_sums", "cross_sums", "count_revived", "enim_sums", "enim_update"]

CHUNK = 1 << 15  # entries per chunk: the unit of parallel work


# Each kernel is a chunk body (summing entries lo..hi-1 in order) run over the chunks
# in parallel; arrays of one chunk run the body directly (a parallel launch costs more
# than summing 32768 numbers).


@njit(inline="always", error_model="numpy")
def _c_chunk(c, lo, hi, out, k):
    a = 0.0
    b = 0.0
    z = 0
    for i in range(lo, hi):
        x = np.float64(c[i])
        a += abs(x)
        b += x * x
        z += x != 0.0
    out[k, 0] = a
    out[k, 1] = b
    out[k, 2] = z


@njit(inline="always", error_model="numpy")
def _step_chunk(c, g, m, lo, hi, out, k):
    a = 0.0
    b = 0.0
    mm = 0.0
    nz = 0
    zg = 0
    tr = 0
    for i in range(lo, hi):
        x = np.float64(c[i])
        y = np.float64(m[i])
        a += abs(x)
        b += x * x
        mm += y * y
        nz += x != 0.0
        gz = g[i] == 0.0
        zg += gz
        tr += gz and y != 0.0
    out[k, 0] = a
    out[k, 1] = b
    out[k, 2] = nz
    out[k, 3] = zg
    out[k, 4] = tr
    out[k, 5] = mm


@njit(inline="always", error_model="numpy")
def _cross_chunk(c, z, lo, hi, out, k):
    a = 0.0
    b = 0.0
    for i in range(lo, hi):
        y = np.float64(z[i])
        a += np.float64(c[i]) * y
        b += y * y
    out[k, 0] = a
    out[k, 1] = b


@njit(inline="always", error_model="numpy")
def _revived_chunk(g, m, threshold_sq, lo, hi, out, k):
    r = 0
    for i in range(lo, hi):
        y = np.float64(m[i])
        r += g[i] != 0.0 and y * y < threshold_sq
    out[k, 0] = r


@njit(cache=True, parallel=True, error_model="numpy")
def _c_sums_parallel(c, out):
    n = c.shape[0]
    for k in prange(out.shape[0]):
        _c_chunk(c, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _c_sums_serial(c, out):
    _c_chunk(c, 0, c.shape[0], out, 0)


@njit(cache=True, parallel=True, error_model="numpy")
def _step_sums_parallel(c, g, m, out):
    n = c.shape[0]
    for k in prange(out.shape[0]):
        _step_chunk(c, g, m, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _step_sums_serial(c, g, m, out):
    _step_chunk(c, g, m, 0, c.shape[0], out, 0)


@njit(cache=True, parallel=True, error_model="numpy")
def _cross_sums_parallel(c, z, out):
    n = c.shape[0]
    for k in prange(out.shape[0]):
        _cross_chunk(c, z, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _cross_sums_serial(c, z, out):
    _cross_chunk(c, z, 0, c.shape[0], out, 0)


@njit(cache=True, parallel=True, error_model="numpy")
def _revived_parallel(g, m, threshold_sq, out):
    n = g.shape[0]
    for k in prange(out.shape[0]):
        _revived_chunk(g, m, threshold_sq, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _revived_serial(g, m, threshold_sq, out):
    _revived_chunk(g, m, threshold_sq, 0, g.shape[0], out, 0)


@njit(inline="always", error_model="numpy")
def _enim_chunk(m, g, z, beta1, lo, hi, out, k):
    a = 0.0
    b = 0.0
    cz = 0.0
    zz = 0.0
    mm = 0.0
    nz = 0
    zg = 0
    tr = 0
    w = 1.0 - beta1
    for i in range(lo, hi):
        y = np.float64(m[i])
        gi = np.float64(g[i])
        x = beta1 * y + w * gi
        zi = np.float64(z[i])
        a += abs(x)
        b += x * x
        cz += x * zi
        zz += zi * zi
        mm += y * y
        nz += x != 0.0
        gz = gi == 0.0
        zg += gz
        tr += gz and y != 0.0
    out[k, 0] = a
    out[k, 1] = b
    out[k, 2] = nz
    out[k, 3] = zg
    out[k, 4] = tr
    out[k, 5] = mm
    out[k, 6] = cz
    out[k, 7] = zz


@njit(cache=True, parallel=True, error_model="numpy")
def _enim_sums_parallel(m, g, z, beta1, out):
    n = m.shape[0]
    for k in prange(out.shape[0]):
        _enim_chunk(m, g, z, beta1, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _enim_sums_serial(m, g, z, beta1, out):
    _enim_chunk(m, g, z, beta1, 0, m.shape[0], out, 0)


@njit(cache=True, parallel=True, error_model="numpy")
def _enim_update(p, m, g, z, beta1, alpha, beta, lr, decay):
    n = p.shape[0]
    w = 1.0 - beta1
    for k in prange((n + CHUNK - 1) // CHUNK):
        for i in range(k * CHUNK, min(n, (k + 1) * CHUNK)):
            c = beta1 * np.float64(m[i]) + w * np.float64(g[i])
            u = alpha * c + beta * np.float64(z[i])
            p[i] = decay * np.float64(p[i]) - lr * u


def _run(parallel, serial, n, width, *args):
    """Chunk partial sums of ``width`` quantities, folded in chunk order."""
    chunks = max(1, (n + CHUNK - 1) // CHUNK)
    out = np.zeros((chunks, width))
    (serial if chunks == 1 else parallel)(*args, out)
    total = np.zeros(width)
    for row in out:  # fixed order: thread-count invariant
        total += row
    return total


def _check(name, x):
    if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a 1-D float32 or float64 numpy array, got {type(x).__name__}"
                        f" {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be contiguous")
    return x


def _same_length(**arrays):
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the arrays must have one length, got {lengths}")


def c_sums(c):
    """``(||c||_1, ||c||_2^2, nnz(c))`` accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> c_sums(np.array([3.0, 0.0, -4.0], dtype=np.float32))
    (7.0, 25.0, 2)
    """
    c = _check("c", c)
    a, b, z = _run(_c_sums_parallel, _c_sums_serial, c.shape[0], 3, c)
    return float(a), float(b), int(z)


def step_sums(c, g, m):
    """One pass over ``(c, g, m)``: the sums the telemetry of a step needs.

    Returns
    -------
    tuple
        ``(||c||_1, ||c||_2^2, nnz(c), #{g = 0}, #{g = 0 and m != 0},
        ||m||_2^2)``; sums in float64, counts as ints.

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda *x: np.array(x, dtype=np.float32)
    >>> step_sums(f(1, -2, 0.5, 0), f(1, 0, 0, 0), f(0, -2, 5, 0))
    (3.5, 5.25, 3, 3, 2, 29.0)
    """
    c, g, m = _check("c", c), _check("g", g), _check("m", m)
    _same_length(c=c, g=g, m=m)
    a, b, nz, zg, tr, mm = _run(_step_sums_parallel, _step_sums_serial, c.shape[0], 6, c, g, m)
    return float(a), float(b), int(nz), int(zg), int(tr), float(mm)


def cross_sums(c, z):
    """``(c . z, z . z)`` accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> cross_sums(np.array([1.0, 2.0]), np.array([3.0, -1.0]))
    (1.0, 10.0)
    """
    c, z = _check("c", c), _check("z", z)
    _same_length(c=c, z=z)
    a, b = _run(_cross_sums_parallel, _cross_sums_serial, c.shape[0], 2, c, z)
    return float(a), float(b)


def count_revived(g, m, threshold):
    """``#{g != 0 and |m| < threshold}``: coordinates woken by a gradient at small momentum.

    Examples
    --------
    >>> import numpy as np
    >>> count_revived(np.array([1.0, 1.0, 0.0]), np.array([1e-9, 1.0, 0.0]), 1e-3)
    1
    """
    g, m = _check("g", g), _check("m", m)
    _same_length(g=g, m=m)
    (r,) = _run(_revived_parallel, _revived_serial, g.shape[0], 1, g, m, float(threshold) ** 2)
    return int(r)


def enim_sums(m, g, z, beta1):
    """One pass over ``(m, g, z)`` with ``c = beta1 m + (1 - beta1) g`` formed in float64.

    Returns
    -------
    tuple
        ``(||c||_1, ||c||_2^2, nnz(c), #{g = 0}, #{g = 0 and m != 0}, ||m||_2^2,
        c . z, z . z)``: the first six as :func:`step_sums`, then Enim's two.

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda *x: np.array(x, dtype=np.float32)
    >>> enim_sums(f(0, 2, 0), f(1, 0, 0), f(1, 1, 1), 0.5)
    (1.5, 1.25, 2, 2, 1, 4.0, 1.5, 3.0)
    """
    m, g, z = _check("m", m), _check("g", g), _check("z", z)
    _same_length(m=m, g=g, z=z)
    a, b, nz, zg, tr, mm, cz, zz = _run(_enim_sums_parallel, _enim_sums_serial, m.shape[0], 8, m, g, z, float(beta1))
    return float(a), float(b), int(nz), int(zg), int(tr), float(mm), float(cz), float(zz)


def enim_update(p, m, g, z, beta1, alpha, beta, lr, decay):
    """In place: ``p <- decay p - lr (alpha c + beta z)``, ``c = beta1 m + (1 - beta1) g``.

    Computed in float64 per entry and rounded once to ``p``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.ones(2)
    >>> enim_update(p, np.zeros(2), np.array([2.0, 4.0]), np.array([1.0, -1.0]), 0.5, 1.0, 2.0, 0.1, 0.9)
    >>> p
    array([0.6, 0.9])
    """
    p, m, g, z = _check("p", p), _check("m", m), _check("g", g), _check("z", z)
    _same_length(p=p, m=m, g=g, z=z)
    _enim_update(p, m, g, z, float(beta1), float(alpha), float(beta), float(lr), float(decay))
