"""CUDA backend: numba.cuda kernels built from the CPU's own device functions.

One source.  The kernels call the ``numba.njit`` functions of
:mod:`lni_geometry.rng` and :mod:`lni_geometry.models` (``stream_words``,
``gaussian_block``, ``fill_coords``); numba.cuda compiles a CPU dispatcher
called from a kernel as a device function of the same Python source, so the
Philox words, the Box-Muller transform and every model (whatever
``fill_coords`` dispatches to) are one code for both targets.  Under the
simulator (``NUMBA_ENABLE_CUDASIM=1``) the kernels run as Python and call the
same functions compiled for the CPU.

Work layout
-----------
The coordinates of a sample are cut into *groups* of ``G`` coordinates, ``G``
the largest multiple of the model's ``coords_per_block`` not above
``LOCAL_COORDS = 16`` (``G = 16``, four Philox calls, for the Gaussian).  A
CUDA thread block of ``T`` threads (a power of two, at most 256) owns a
*slice* of ``T * I`` consecutive groups of one sample: in step ``j < I``
thread ``t`` makes group ``slice * T * I + j * T + t`` (into registers for
the Gaussian, through ``fill_coords`` into a thread-local array for every
other model) and adds its coordinates, in coordinate order, into three
float64 accumulators.  The block then adds its ``T`` partial sums by a
shared-memory tree in float64 (stride ``T/2, T/4, .., 1``) and writes one row
``(l1, l2sq, total)`` per slice; a second kernel adds a sample's slice rows
first to last.  The launch grid is one-dimensional over ``(sample, slice)``
pairs, so one sample at dim ``1e9`` spreads over ``15259`` blocks and a
million samples at dim ``100`` over a million blocks: both fill the GPU.

``T`` and ``I`` follow from ``dim`` and the model alone (:func:`layout`), and
launches only batch whole samples, so the sums of a sample are the same bits
whatever ``start``, ``samples`` or batch size (chunk invariance).

Parity with the CPU
-------------------
The Philox words are integer arithmetic and identical to the CPU's.  The sums
are added in a different order than :mod:`lni_geometry.kernels` (a tree, not
eight lanes), so they are not bit-identical: under the simulator, where the
coordinates are bit-identical, ``|cuda - cpu| <= 1e-12 * scale`` with
``scale = l1`` for ``l1`` and ``total`` and ``scale = l2sq`` for ``l2sq``
(tested).  On a GPU NVVM contracts ``a * b + c`` into fused multiply-adds
(numba.cuda exposes no switch to turn that off), so coordinates may differ
from the CPU's in their last bits as well; the bound stays far below ``1e-9``
(see ``docs/cuda.md`` for the full-size check).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import cuda, float64, int64

from .. import rng
from ..models import GAUSSIAN_ID, fill_coords, gaussian_block

__all__ = ["sample_sums", "sample_coords", "philox_words", "layout", "Layout", "check_target"]

#: Largest CUDA thread block (a power of two; also the shared array size).
MAX_THREADS = 256
#: Fewest threads of a block chosen by :func:`layout` (one warp).
MIN_THREADS = 32
#: Steps per thread at large dimensions (a slice is ``T * I * G`` coordinates).
MAX_ITERS = 16
#: Size of the thread-local coordinate buffer (an upper bound on ``G``).
LOCAL_COORDS = 16
#: Target number of coordinates per launch of the sums kernel.
LAUNCH_COORDS = 1 << 30
#: Most samples per launch (bounds the device buffers).
MAX_LAUNCH_SAMPLES = 1 << 20


@dataclass(frozen=True)
class Layout:
    """How a sample of dimension ``dim`` is spread over CUDA threads.

    Attributes
    ----------
    threads : int
        Threads per CUDA block ``T`` (a power of two).
    iters : int
        Groups made by each thread ``I``.
    group : int
        Coordinates per group ``G`` (a multiple of the model's block).
    slice_coords : int
        Coordinates per CUDA block, ``T * I * G``.
    nslices : int
        CUDA blocks per sample, ``ceil(dim / slice_coords)``.
    """

    threads: int
    iters: int
    group: int
    slice_coords: int
    nslices: int


def _next_pow2(n):
    return 1 << max(0, int(n - 1).bit_length())


def layout(dim, coords_per_block, threads=None, iters=None):
    """The work layout of a sample (see the module docstring).

    Parameters
    ----------
    dim : int
        Dimension of a sample, ``>= 1``.
    coords_per_block : int
        The model's coordinates per Philox block, in ``[1, LOCAL_COORDS]``.
    threads : int, optional
        Threads per CUDA block, a power of two in ``[1, MAX_THREADS]``; by
        default the next power of two above the number of groups, clipped to
        ``[MIN_THREADS, MAX_THREADS]``.
    iters : int, optional
        Groups per thread, ``>= 1``; by default just enough to cover ``dim``,
        at most ``MAX_ITERS``.

    Returns
    -------
    Layout

    Examples
    --------
    >>> layout(6_000_000, 4)
    Layout(threads=256, iters=16, group=16, slice_coords=65536, nslices=92)
    >>> layout(10, 4)
    Layout(threads=32, iters=1, group=16, slice_coords=512, nslices=1)
    """
    dim = int(dim)
    cpb = int(coords_per_block)
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not 1 <= cpb <= LOCAL_COORDS:
        raise ValueError(
            f"the CUDA backend supports models with coords_per_block in [1, {LOCAL_COORDS}], "
            f"got {cpb}"
        )
    group = (LOCAL_COORDS // cpb) * cpb
    ngroups = -(-dim // group)
    if threads is None:
        threads = min(MAX_THREADS, max(MIN_THREADS, _next_pow2(ngroups)))
    threads = int(threads)
    if not (1 <= threads <= MAX_THREADS and threads & (threads - 1) == 0):
        raise ValueError(f"threads must be a power of two in [1, {MAX_THREADS}], got {threads}")
    if iters is None:
        iters = min(MAX_ITERS, -(-ngroups // threads))
    iters = int(iters)
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    slice_coords = threads * iters * group
    return Layout(threads, iters, group, slice_coords, -(-dim // slice_coords))


# --- kernels ----------------------------------------------------------------
# Integer arguments arrive as int64 and thread indices are cast to int64 at
# once, so no uint64/int64 mix (which numba would promote to float64) occurs.


@cuda.jit
def _slice_sums_kernel(model_id, p0, p1, k0, k1, group, sample0, dim, nslices, iters, generic, parts):
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
                        s1 += abs(z0)
                        s2 += z0 * z0
                        st += z0
                        if m > 1:
                            s1 += abs(z1)
                            s2 += z1 * z1
                            st += z1
                        if m > 2:
                            s1 += abs(z2)
                            s2 += z2 * z2
                            st += z2
                        if m > 3:
                            s1 += abs(z3)
                            s2 += z3 * z3
                            st += z3
            else:
                fill_coords(model_id, p0, p1, k0, k1, sample, coord0, n, buf)
                for q in range(n):
                    z = buf[q]
                    s1 += abs(z)
                    s2 += z * z
                    st += z
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
def _add_slices_kernel(parts, nslices, nsamples, out):
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
def _coords_kernel(model_id, p0, p1, k0, k1, group, sample0, dim, ngroups, nsamples, out):
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
def _words_kernel(k0, k1, samples, blocks, draw, out):
    i = int64(cuda.grid(1))
    if i < samples.shape[0]:
        w0, w1, w2, w3 = rng.stream_words(k0, k1, samples[i], blocks[i], draw)
        out[i, 0] = w0
        out[i, 1] = w1
        out[i, 2] = w2
        out[i, 3] = w3


# --- host side --------------------------------------------------------------


def check_target():
    """RuntimeError unless numba.cuda is numba-cuda (or the simulator).

    numba's own built-in CUDA target (``numba.cuda.implementation ==
    "Built-in"``) is deprecated and does not type every device function the
    models use; the ``cuda`` extra installs NVIDIA's numba-cuda in its place.
    """
    from numba import config

    impl = getattr(cuda, "implementation", "Built-in")
    if not config.ENABLE_CUDASIM and impl != "NVIDIA":
        raise RuntimeError(
            f"backend='cuda' needs the numba-cuda package, but numba.cuda is numba's {impl!r} "
            "target; install it with `pip install \"lni-geometry[cuda]\"` (numba-cuda)"
        )


def _key_words(key):
    key = np.asarray(key)
    if key.shape != (2,):
        raise ValueError(f"key must have shape (2,), got {key.shape}")
    return np.uint32(key[0]), np.uint32(key[1])


def _model_args(model):
    p0, p1 = (float(p) for p in model.kernel_params)
    return np.int64(model.kernel_id), np.float64(p0), np.float64(p1)


def _grid(n, threads):
    return max(1, -(-int(n) // threads)), threads


def sample_sums(key, model, dim, start, samples, progress=None, *, threads=None, iters=None, generic=False):
    """Sums ``(l1, l2sq, total)`` of samples ``start .. start + samples - 1`` on the GPU.

    The same meaning as :func:`lni_geometry.backends.cpu.sample_sums`: row ``r``
    holds ``sum |g_i|``, ``sum g_i**2`` and ``sum g_i`` of the raw coordinates
    of sample ``start + r``, drawn from the Philox4x32-10 stream of ``key``
    (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).

    Parameters
    ----------
    key : ndarray of uint32, shape (2,)
    model : GradientModel
    dim, start, samples : int
    progress : callable or None
        Called with the number of samples finished after each launch.
    threads, iters : int, optional
        Override the work layout (:func:`layout`); the defaults depend on
        ``dim`` and the model only.  Tests use small values for the simulator.
    generic : bool
        Send the Gaussian through ``fill_coords`` as every other model
        (the same bits as its register path; for tests).

    Returns
    -------
    ndarray of float64, shape (samples, 3)
    """
    check_target()
    k0, k1 = _key_words(key)
    mid, p0, p1 = _model_args(model)
    lay = layout(dim, model.coords_per_block, threads, iters)
    dim = int(dim)
    start = int(start)
    samples = int(samples)
    out = np.empty((samples, 3))
    if samples == 0:
        return out
    per_sample = lay.nslices * lay.slice_coords
    batch = int(min(MAX_LAUNCH_SAMPLES, samples, max(1, LAUNCH_COORDS // per_sample)))
    d_parts = cuda.device_array((batch * lay.nslices, 3), dtype=np.float64)
    d_out = cuda.device_array((samples, 3), dtype=np.float64)
    gen = np.int64(1 if generic else 0)
    for i in range(0, samples, batch):
        n = min(batch, samples - i)
        _slice_sums_kernel[n * lay.nslices, lay.threads](
            mid, p0, p1, k0, k1, np.int64(lay.group), np.int64(start + i), np.int64(dim),
            np.int64(lay.nslices), np.int64(lay.iters), gen, d_parts,
        )
        rt = min(128, n)
        _add_slices_kernel[_grid(n, rt)](d_parts, np.int64(lay.nslices), np.int64(n), d_out[i : i + n])
        if progress is not None:
            cuda.synchronize()
            progress(n)
    d_out.copy_to_host(out)
    return out


def sample_coords(key, model, dim, start, samples):
    """Raw coordinates, shape ``(samples, dim)``, computed on the GPU.

    The same numbers as :func:`lni_geometry.backends.cpu.sample_coords` (bit for
    bit under the simulator; see the module docstring for a real GPU).
    """
    check_target()
    k0, k1 = _key_words(key)
    mid, p0, p1 = _model_args(model)
    group = layout(dim, model.coords_per_block).group
    ngroups = -(-int(dim) // group)
    d_out = cuda.device_array((int(samples), int(dim)), dtype=np.float64)
    total = ngroups * int(samples)
    _coords_kernel[_grid(total, min(128, total))](
        mid, p0, p1, k0, k1, np.int64(group), np.int64(start), np.int64(dim),
        np.int64(ngroups), np.int64(samples), d_out,
    )
    return d_out.copy_to_host()


def philox_words(key, sample, block, draw=0):
    """The Philox words ``stream_words(k0, k1, sample, block, draw)`` computed on the GPU.

    Parameters
    ----------
    key : ndarray of uint32, shape (2,)
    sample, block : array_like of int
        Sample indices (``[0, 2**48)``) and coordinate blocks (``[0, 2**64)``),
        broadcast together.
    draw : int
        Draw index in ``[0, 2**16)``.

    Returns
    -------
    ndarray of uint32, shape (n, 4)
        The words of each ``(sample, block)`` pair, the counter layout of
        :mod:`lni_geometry.rng`.
    """
    check_target()
    k0, k1 = _key_words(key)
    sample, block = np.broadcast_arrays(np.asarray(sample), np.asarray(block))
    sample = np.ascontiguousarray(sample.ravel(), dtype=np.int64)
    block = np.ascontiguousarray(block.ravel(), dtype=np.uint64)
    draw = int(draw)
    if not 0 <= draw < rng.MAX_DRAW_INDEX:
        raise ValueError(f"draw must lie in [0, {rng.MAX_DRAW_INDEX}), got {draw}")
    n = sample.shape[0]
    d_out = cuda.device_array((n, 4), dtype=np.uint32)
    if n:
        _words_kernel[_grid(n, min(128, n))](
            k0, k1, cuda.to_device(sample), cuda.to_device(block), np.int64(draw), d_out
        )
    return d_out.copy_to_host()


def device_name():
    """A one-line description of the current CUDA device."""
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    cc = getattr(dev, "compute_capability", None)
    return f"{name} (compute capability {cc[0]}.{cc[1]})" if cc else name
