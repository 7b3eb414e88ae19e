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

The telemetry and Enim need ``c`` only through sums, and Enim through its
update ``u = alpha c + beta z``: :func:`momentum_sums` and :func:`enim_update`
form ``c`` on the fly from ``m`` and ``g`` (in float64), so a step reads each
array a minimal number of times and allocates nothing.

All functions take 1-D contiguous float32 or float64 numpy arrays (the CPU
tensors' ``.numpy()`` views) and return Python numbers (or update in place).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["c_sums", "momentum_sums", "enim_update"]

CHUNK = 1 << 15  # entries per chunk: the unit of parallel work
#: Arrays shorter than this are reduced on the calling thread: waking the thread pool
#: costs more than it saves there, and much more on a loaded machine.  The serial and
#: parallel kernels sum the same chunks in the same order: the same bits either way.
PARALLEL_MIN = 1 << 20


# Each kernel is a chunk body (summing entries lo..hi-1 in order) run over the chunks,
# in parallel for large arrays (PARALLEL_MIN), in order on the calling thread otherwise.
# The bodies are plain loops with float64 accumulators (counts too: exact below 2**53)
# and no branch that the compiler cannot turn into a select: they run at memory speed.


@njit(inline="always", error_model="numpy")
def _c_chunk(c, lo, hi, out, k):
    a = 0.0
    b = 0.0
    z = 0.0
    for i in range(lo, hi):
        x = np.float64(c[i])
        a += abs(x)
        b += x * x
        z += 1.0 if x != 0.0 else 0.0
    out[k, 0] = a
    out[k, 1] = b
    out[k, 2] = z


@njit(cache=True, parallel=True, error_model="numpy")
def _c_sums_parallel(c, out):
    n = c.shape[0]
    for k in prange(out.shape[0]):
        _c_chunk(c, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _c_sums_serial(c, out):
    n = c.shape[0]
    for k in range(out.shape[0]):
        _c_chunk(c, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(inline="always", error_model="numpy")
def _momentum_chunk(m, g, z, beta1, threshold_sq, lo, hi, out, k):
    """Sums over entries lo..hi-1 of c = beta1 m + (1 - beta1) g (float64); z . c and z . z if z has entries."""
    if z.shape[0] == 0:
        _counts_chunk(m, g, beta1, threshold_sq, lo, hi, out, k)
        return
    _counts_chunk(m, g, beta1, threshold_sq, lo, hi, out, k)
    w = 1.0 - beta1
    cz = 0.0
    zz = 0.0
    for i in range(lo, hi):
        x = beta1 * np.float64(m[i]) + w * np.float64(g[i])
        zi = np.float64(z[i])
        cz += x * zi
        zz += zi * zi
    out[k, 6] = cz
    out[k, 7] = zz


@njit(inline="always", error_model="numpy")
def _counts_chunk(m, g, beta1, threshold_sq, lo, hi, out, k):
    a = 0.0
    b = 0.0
    nz = 0.0
    zg = 0.0
    tr = 0.0
    rv = 0.0
    w = 1.0 - beta1
    for i in range(lo, hi):
        y = np.float64(m[i])
        gi = np.float64(g[i])
        x = beta1 * y + w * gi
        a += abs(x)
        b += x * x
        nz += 1.0 if x != 0.0 else 0.0
        gz = gi == 0.0
        zg += 1.0 if gz else 0.0
        tr += 1.0 if (gz and y != 0.0) else 0.0
        rv += 1.0 if ((not gz) and y * y < threshold_sq) else 0.0
    out[k, 0] = a
    out[k, 1] = b
    out[k, 2] = nz
    out[k, 3] = zg
    out[k, 4] = tr
    out[k, 5] = rv


@njit(cache=True, parallel=True, error_model="numpy")
def _momentum_sums_parallel(m, g, z, beta1, threshold_sq, out):
    n = m.shape[0]
    for k in prange(out.shape[0]):
        _momentum_chunk(m, g, z, beta1, threshold_sq, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(cache=True, error_model="numpy")
def _momentum_sums_serial(m, g, z, beta1, threshold_sq, out):
    n = m.shape[0]
    for k in range(out.shape[0]):
        _momentum_chunk(m, g, z, beta1, threshold_sq, k * CHUNK, min(n, (k + 1) * CHUNK), out, k)


@njit(inline="always", error_model="numpy")
def _update_chunk(p, m, g, z, beta1, alpha, beta, lr, decay, lo, hi):
    w = 1.0 - beta1
    for i in range(lo, hi):
        c = beta1 * np.float64(m[i]) + w * np.float64(g[i])
        u = alpha * c + beta * np.float64(z[i])
        p[i] = decay * np.float64(p[i]) - lr * u


@njit(cache=True, parallel=True, error_model="numpy")
def _enim_update_parallel(p, m, g, z, beta1, alpha, beta, lr, decay):
    n = p.shape[0]
    for k in prange((n + CHUNK - 1) // CHUNK):
        _update_chunk(p, m, g, z, beta1, alpha, beta, lr, decay, k * CHUNK, min(n, (k + 1) * CHUNK))


@njit(cache=True, error_model="numpy")
def _enim_update_serial(p, m, g, z, beta1, alpha, beta, lr, decay):
    _update_chunk(p, m, g, z, beta1, alpha, beta, lr, decay, 0, p.shape[0])


def _run(parallel, serial, n, width, *args):
    """Chunk partial sums of ``width`` quantities, folded in chunk order."""
    chunks = max(1, (n + CHUNK - 1) // CHUNK)
    out = np.zeros((chunks, width))
    (parallel if n >= PARALLEL_MIN else serial)(*args, out)
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


_NO_Z = np.zeros(0)


def momentum_sums(m, g, beta1, threshold=0.0, z=None):
    """One pass over ``(m, g[, z])`` with ``c = beta1 m + (1 - beta1) g`` formed in float64.

    What the telemetry of a Lion or Enim step needs (before the momentum
    update), and for Enim the sums against its Gaussian ``z``.

    Parameters
    ----------
    m, g : ndarray
        Momentum (before the step) and gradient.
    beta1 : float
    threshold : float
        A coordinate is *revived* when ``g != 0`` and ``|m| < threshold``.
    z : ndarray, optional

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
        _same_length(m=m, g=g)
    else:
        z = _check("z", z)
        _same_length(m=m, g=g, z=z)
    a, b, nz, zg, tr, rv, cz, zz = _run(_momentum_sums_parallel, _momentum_sums_serial, m.shape[0], 8,
                                        m, g, _NO_Z if z is None else z, float(beta1), float(threshold) ** 2)
    out = (float(a), float(b), int(nz), int(zg), int(tr), int(rv))
    return out if z is None else out + (float(cz), float(zz))


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
    kernel = _enim_update_parallel if p.shape[0] >= PARALLEL_MIN else _enim_update_serial
    kernel(p, m, g, z, float(beta1), float(alpha), float(beta), float(lr), float(decay))
