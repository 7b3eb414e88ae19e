"""CUDA kernels: the sums, coordinates and Philox words of the CUDA backend.

Kernels compute, backends launch: :mod:`lni_geometry.backends.cuda` chooses
the work layout (``layout``), allocates device memory and launches these
kernels; the CPU's kernels are in :mod:`lni_geometry.kernels`.

One source.  The kernels call the ``numba.njit`` functions of
:mod:`lni_geometry.rng` and :mod:`lni_geometry.models` (``stream_words``,
``gaussian_block``, ``fill_coords``); numba.cuda compiles a CPU dispatcher
called from a kernel as a device function of the same Python source, so the
Philox words, the Box-Muller transform and every model (whatever
``fill_coords`` dispatches to) are one code for both targets.  Under the
simulator (``NUMBA_ENABLE_CUDASIM=1``) the kernels run as Python and call the
same functions compiled for the CPU.  The work layout the kernels follow
(groups, slices, the shared-memory tree) is described in
:mod:`lni_geometry.backends.cuda`.
"""

from __future__ import annotations

from numba import cuda, float64, int64, njit

from . import rng
from .elementary import fma
from .models import GAUSSIAN_ID, fill_coords, gaussian_block

__all__ = [
    "LOCAL_COORDS",
    "MAX_THREADS",
    "add_slices_kernel",
    "coords_kernel",
    "lion_kernel",
    "momentum_sums_kernel",
    "normals_at_kernel",
    "slice_sums_kernel",
    "words_kernel",
]

#: Largest CUDA thread block (a power of two; also the shared array size).
MAX_THREADS = 256
#: Size of the thread-local coordinate buffer (an upper bound on ``G``).
LOCAL_COORDS = 16


# --- kernels ----------------------------------------------------------------
# Integer arguments arrive as int64 and thread indices are cast to int64 at
# once, so no uint64/int64 mix (which numba would promote to float64) occurs.


@njit(inline="always", cache=True, error_model="numpy")
def _add_coordinate(s1, s2, st, z):
    """One coordinate into the three running sums: ``|z|``, ``z**2``, ``z``."""
    return s1 + abs(z), s2 + z * z, st + z


@cuda.jit
def slice_sums_kernel(model_id, p0, p1, k0, k1, group, sample0, dim, nslices, iters, generic, parts):
    sh1 = cuda.shared.array(MAX_THREADS, float64)
    sh2 = cuda.shared.array(MAX_THREADS, float64)
    sht = cuda.shared.array(MAX_THREADS, float64)
    buf = cuda.local.array(LOCAL_COORDS, float64)
    t = int64(cuda.threadIdx.x)
    nt = int64(cuda.blockDim.x)
    bid = int64(cuda.blockIdx.x)
    local_sample = bid // nslices
    sl = bid - local_sample * nslices
    sample = sample0 + local_sample
    fast = model_id == GAUSSIAN_ID and generic == 0
    s1 = 0.0
    s2 = 0.0
    st = 0.0
    g0 = sl * nt * iters + t
    for j in range(iters):
        coord0 = (g0 + j * nt) * group
        if coord0 < dim:
            n = dim - coord0
            if n > group:
                n = group
            if fast:
                # The Gaussian in registers: the same coordinates, added in
                # the same order, as the fill_coords path below.
                for b in range(group // 4):
                    m = n - 4 * b
                    if m > 0:
                        z0, z1, z2, z3 = gaussian_block(k0, k1, sample, coord0 // 4 + b)
                        s1, s2, st = _add_coordinate(s1, s2, st, z0)
                        if m > 1:
                            s1, s2, st = _add_coordinate(s1, s2, st, z1)
                        if m > 2:
                            s1, s2, st = _add_coordinate(s1, s2, st, z2)
                        if m > 3:
                            s1, s2, st = _add_coordinate(s1, s2, st, z3)
            else:
                fill_coords(model_id, p0, p1, k0, k1, sample, coord0, n, buf)
                for q in range(n):
                    s1, s2, st = _add_coordinate(s1, s2, st, buf[q])
    sh1[t] = s1
    sh2[t] = s2
    sht[t] = st
    cuda.syncthreads()
    stride = nt // 2
    while stride > 0:
        if t < stride:
            sh1[t] += sh1[t + stride]
            sh2[t] += sh2[t + stride]
            sht[t] += sht[t + stride]
        cuda.syncthreads()
        stride //= 2
    if t == 0:
        parts[bid, 0] = sh1[0]
        parts[bid, 1] = sh2[0]
        parts[bid, 2] = sht[0]


@cuda.jit
def add_slices_kernel(parts, nslices, nsamples, out):
    i = int64(cuda.grid(1))
    if i < nsamples:
        s1 = 0.0
        s2 = 0.0
        st = 0.0
        r0 = i * nslices
        for c in range(nslices):
            s1 += parts[r0 + c, 0]
            s2 += parts[r0 + c, 1]
            st += parts[r0 + c, 2]
        out[i, 0] = s1
        out[i, 1] = s2
        out[i, 2] = st


@cuda.jit
def coords_kernel(model_id, p0, p1, k0, k1, group, sample0, dim, ngroups, nsamples, out):
    buf = cuda.local.array(LOCAL_COORDS, float64)
    i = int64(cuda.grid(1))
    if i < ngroups * nsamples:
        s = i // ngroups
        coord0 = (i - s * ngroups) * group
        n = dim - coord0
        if n > group:
            n = group
        fill_coords(model_id, p0, p1, k0, k1, sample0 + s, coord0, n, buf)
        for q in range(n):
            out[s, coord0 + q] = buf[q]


@cuda.jit
def words_kernel(k0, k1, samples, blocks, draw, out):
    i = int64(cuda.grid(1))
    if i < samples.shape[0]:
        w0, w1, w2, w3 = rng.stream_words(k0, k1, samples[i], blocks[i], draw)
        out[i, 0] = w0
        out[i, 1] = w1
        out[i, 2] = w2
        out[i, 3] = w3


@cuda.jit
def normals_at_kernel(k0, k1, first, samples, starts, lengths, offsets, out):
    """Gaussian coordinates of runs into ``out`` (Enim's ``z``, one thread per block of four).

    Run ``r``: coordinates ``starts[r] .. starts[r] + lengths[r] - 1`` of
    sample ``samples[r]`` into ``out[offsets[r]:]``; its threads are
    ``first[r] .. first[r + 1] - 1`` (``first``: prefix sums of the runs'
    blocks of four, from the block of ``starts[r]``), each drawing one block
    with :func:`~lni_geometry.models.gaussian_block` and writing the
    coordinates that fall in its run: the numbers of
    :func:`lni_geometry.optim_kernels.fill_normals` with ``start``.
    """
    i = int64(cuda.grid(1))
    nruns = samples.shape[0]
    if i >= first[nruns]:
        return
    lo = 0
    hi = nruns
    while hi - lo > 1:  # the run of thread i: first[lo] <= i < first[lo + 1]
        mid = (lo + hi) // 2
        if first[mid] <= i:
            lo = mid
        else:
            hi = mid
    start = starts[lo]
    end = start + lengths[lo]
    block = start // 4 + (i - first[lo])
    z0, z1, z2, z3 = gaussian_block(k0, k1, samples[lo], block)
    j = 4 * block
    base = offsets[lo] - start
    if start <= j < end:
        out[base + j] = z0
    if start <= j + 1 < end:
        out[base + j + 1] = z1
    if start <= j + 2 < end:
        out[base + j + 2] = z2
    if start <= j + 3 < end:
        out[base + j + 3] = z3


# --- the torch optimizers' step on a GPU (built and tested under the simulator; not yet the
# default: torch's foreach operations stay it until a GPU measurement shows these faster) ---


@njit(cache=True)
def _fma(a, b, c):
    """``a * b + c`` rounded once: a device function on a GPU, the CPU's under the simulator."""
    return fma(a, b, c)


@cuda.jit
def lion_kernel(p, m, g, consts):
    """Lion's step on one tensor, as :func:`lni_geometry.optim_kernels.lion_update` computes it.

    ``consts`` (in the arrays' dtype): ``beta1, 1 - beta1, beta2, 1 - beta2,
    -lr, 1 - lr * weight_decay, 1``.  One thread per entry.
    """
    i = int64(cuda.grid(1))
    if i < p.shape[0]:
        one = consts[6]
        zero = one - one
        mj = m[i]
        gj = g[i]
        c = _fma(gj, consts[1], mj * consts[0])
        sign = one if c > zero else (-one if c < zero else zero)  # sign(0) = sign(nan) = 0, as torch
        p[i] = _fma(sign, consts[4], p[i] * consts[5])
        m[i] = _fma(gj, consts[3], mj * consts[2])


@cuda.jit
def momentum_sums_kernel(m, g, consts, threshold, parts):
    """Lion's telemetry sums of one tensor, per thread block into ``parts[block]``.

    ``c = fma(g, 1 - beta1, m * beta1)`` in the arrays' dtype (as Lion's step
    forms it), then ``||c||_1``, ``||c||_2^2``, ``nnz(c)``, the zero
    gradients, the tracing and the revived entries (``|m| < threshold[0]``,
    the threshold in the arrays' dtype): the first six
    :data:`~lni_geometry.optim_kernels.SUMS`, each thread over a stride of the
    entries, then a tree over the block (float64).
    """
    sh = cuda.shared.array((6, MAX_THREADS), float64)
    t = int64(cuda.threadIdx.x)
    nt = int64(cuda.blockDim.x)
    i = int64(cuda.blockIdx.x) * nt + t
    step = nt * int64(cuda.gridDim.x)
    zero = consts[0] - consts[0]
    s1 = 0.0
    s2 = 0.0
    nz = 0.0
    zg = 0.0
    tr = 0.0
    rv = 0.0
    while i < m.shape[0]:
        mj = m[i]
        gj = g[i]
        c = float64(_fma(gj, consts[1], mj * consts[0]))
        s1 += abs(c)
        s2 += c * c
        nz += c != 0.0
        gz = gj == zero
        zg += gz
        tr += gz and mj != zero
        rv += (not gz) and abs(mj) < threshold[0]
        i += step
    sh[0, t] = s1
    sh[1, t] = s2
    sh[2, t] = nz
    sh[3, t] = zg
    sh[4, t] = tr
    sh[5, t] = rv
    cuda.syncthreads()
    stride = nt // 2
    while stride > 0:
        if t < stride:
            for k in range(6):
                sh[k, t] += sh[k, t + stride]
        cuda.syncthreads()
        stride //= 2
    if t == 0:
        for k in range(6):
            parts[int64(cuda.blockIdx.x), k] = sh[k, 0]
