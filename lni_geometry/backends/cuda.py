"""CUDA backend: launches the numba.cuda kernels of :mod:`lni_geometry.cuda_kernels`.

The kernels are built from the CPU's own device functions (one source; see
:mod:`lni_geometry.cuda_kernels`).  This module chooses the work layout,
allocates device memory, launches the kernels in batches of whole samples and
reports progress; it computes nothing itself.

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
its 16 lanes), so they are not bit-identical: under the simulator, where the
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
from numba import cuda

from .. import rng
from ..cuda_kernels import (
    LOCAL_COORDS,
    MAX_THREADS,
    add_slices_kernel,
    coords_kernel,
    lion_kernel,
    momentum_sums_kernel,
    normals_at_kernel,
    slice_sums_kernel,
    words_kernel,
)
from ..validation import Domain, check_int, check_key
from . import check_options, check_sums_args

__all__ = ["sample_sums", "sample_coords", "philox_words", "fill_normals_at", "lion_update_at", "momentum_sums_at",
           "layout", "Layout", "check_target"]

#: The backend's name (:func:`lni_geometry.backends.get_backend`).
NAME = "cuda"
#: The CUDA backend takes no options (its layout overrides are test keywords).
Options = None

#: Fewest threads of a block chosen by :func:`layout` (one warp).
MIN_THREADS = 32
#: Steps per thread at large dimensions (a slice is ``T * I * G`` coordinates).
MAX_ITERS = 16
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


#: The models the kernels take: at most LOCAL_COORDS coordinates per Philox block.
_COORDS_PER_BLOCK = Domain("coords_per_block", "int", 1, LOCAL_COORDS)
#: Threads per CUDA block (a power of two besides).
_THREADS = Domain("threads", "int", 1, MAX_THREADS)
#: The draw index of a Philox counter (:mod:`lni_geometry.rng`).
_DRAW = Domain("draw", "int", 0, rng.MAX_DRAW_INDEX, high_open=True, high_text="2**16")


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
    dim = check_int("dim", dim, 1)
    cpb = check_int("coords_per_block", coords_per_block, 1)
    if not _COORDS_PER_BLOCK.contains(cpb):
        raise ValueError(
            f"the CUDA backend supports models with coords_per_block in [1, {LOCAL_COORDS}], "
            f"got {cpb}"
        )
    group = (LOCAL_COORDS // cpb) * cpb
    ngroups = -(-dim // group)
    if threads is None:
        threads = min(MAX_THREADS, max(MIN_THREADS, _next_pow2(ngroups)))
    threads = check_int("threads", threads, 1)
    if not (_THREADS.contains(threads) and threads & (threads - 1) == 0):
        raise ValueError(f"threads must be a power of two in [1, {MAX_THREADS}], got {threads}")
    if iters is None:
        iters = min(MAX_ITERS, -(-ngroups // threads))
    iters = check_int("iters", iters, 1)
    slice_coords = threads * iters * group
    return Layout(threads, iters, group, slice_coords, -(-dim // slice_coords))


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
    key = check_key(key)
    return np.uint32(key[0]), np.uint32(key[1])


def _model_args(model):
    p0, p1 = (float(p) for p in model.kernel_params)
    return np.int64(model.kernel_id), np.float64(p0), np.float64(p1)


def _grid(n, threads):
    return max(1, -(-int(n) // threads)), threads


def sample_sums(key, model, dim, start, samples, progress=None, options=None, *,
                threads=None, iters=None, generic=False):
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
    options : None
        The CUDA backend takes no options.
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
    key, dim, start, samples = check_sums_args(key, model, dim, start, samples)
    check_options(NAME, Options, options)
    check_target()
    k0, k1 = _key_words(key)
    mid, p0, p1 = _model_args(model)
    lay = layout(dim, model.coords_per_block, threads, iters)
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
        slice_sums_kernel[n * lay.nslices, lay.threads](
            mid, p0, p1, k0, k1, np.int64(lay.group), np.int64(start + i), np.int64(dim),
            np.int64(lay.nslices), np.int64(lay.iters), gen, d_parts,
        )
        rt = min(128, n)
        add_slices_kernel[_grid(n, rt)](d_parts, np.int64(lay.nslices), np.int64(n), d_out[i : i + n])
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
    key, dim, start, samples = check_sums_args(key, model, dim, start, samples)
    check_target()
    k0, k1 = _key_words(key)
    mid, p0, p1 = _model_args(model)
    group = layout(dim, model.coords_per_block).group
    ngroups = -(-int(dim) // group)
    d_out = cuda.device_array((int(samples), int(dim)), dtype=np.float64)
    total = ngroups * int(samples)
    coords_kernel[_grid(total, min(128, total))](
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
    draw = _DRAW.check(draw)
    n = sample.shape[0]
    d_out = cuda.device_array((n, 4), dtype=np.uint32)
    if n:
        words_kernel[_grid(n, min(128, n))](
            k0, k1, cuda.to_device(sample), cuda.to_device(block), np.int64(draw), d_out
        )
    return d_out.copy_to_host()


def device_name():
    """A one-line description of the current CUDA device."""
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    cc = getattr(dev, "compute_capability", None)
    return f"{name} (compute capability {cc[0]}.{cc[1]})" if cc else name


def fill_normals_at(out, key, samples, starts, lengths, offsets, stream=0):
    """Gaussian coordinates of runs into the device array ``out`` (Enim's ``z`` on a GPU).

    Run ``r`` writes coordinates ``starts[r] ..`` (``lengths[r]`` of them) of
    sample ``samples[r]`` under the Philox ``key`` to ``out[offsets[r]:]``:
    the numbers of :func:`lni_geometry.optim_kernels.fill_normals` (bit for
    bit under the simulator; on a GPU up to NVVM's contraction, see the
    module docstring).

    Parameters
    ----------
    out : device array
        1-D float32 or float64 (a torch CUDA tensor through
        ``numba.cuda.as_cuda_array``).
    key : sequence of two ints in ``[0, 2**32)``
    samples, starts, lengths, offsets : array_like of int, one entry per run
    stream : numba CUDA stream or 0
        Where to launch (torch's current stream: ``numba.cuda.external_stream``).
    """
    samples, starts, lengths, offsets = (np.ascontiguousarray(x, dtype=np.int64).reshape(-1)
                                         for x in (samples, starts, lengths, offsets))
    if not len(samples) == len(starts) == len(lengths) == len(offsets):
        raise ValueError("samples, starts, lengths and offsets must have one entry per run")
    if len(samples) == 0:
        return
    if starts.min() < 0 or lengths.min() < 0 or offsets.min() < 0 or (offsets + lengths).max() > out.shape[0]:
        raise ValueError(f"runs outside out (length {out.shape[0]}) or negative starts/lengths")
    k0, k1 = _key_words(check_key(key))
    blocks = np.where(lengths > 0, (starts + lengths + 3) // 4 - starts // 4, 0)
    first = np.concatenate([[0], np.cumsum(blocks)]).astype(np.int64)
    total = int(first[-1])
    if total == 0:
        return
    threads = min(MAX_THREADS, total)
    normals_at_kernel[_grid(total, threads) + (stream,)](
        k0, k1, cuda.to_device(first, stream=stream), cuda.to_device(samples, stream=stream),
        cuda.to_device(starts, stream=stream), cuda.to_device(lengths, stream=stream),
        cuda.to_device(offsets, stream=stream), out)


def _threads_for(n):
    return min(MAX_THREADS, _next_pow2(max(1, int(n))))


def lion_update_at(p, m, g, beta1, beta2, lr, weight_decay, stream=0):
    """Lion's step on one tensor on the GPU (device arrays, float32 or float64, one length).

    The roundings of :func:`lni_geometry.optim_kernels.lion_update` (and so
    of torch's ``mul_``/``add_`` and lion-pytorch), in one pass; bit for bit
    the CPU's under the simulator.  Not yet what :class:`lni_geometry.torch.Lion`
    runs on CUDA (torch's ``foreach`` operations stay its default until a GPU
    measurement shows this faster: ``docs/examples/cuda_optimizer_checks.py``).
    """
    n = p.shape[0]
    if not (m.shape[0] == g.shape[0] == n):
        raise ValueError(f"p, m, g must have one length, got {p.shape[0]}, {m.shape[0]}, {g.shape[0]}")
    if n == 0:
        return
    dtype = np.dtype(p.dtype)
    consts = np.array([beta1, 1.0 - beta1, beta2, 1.0 - beta2, -lr, 1.0 - lr * weight_decay, 1.0], dtype=dtype)
    threads = _threads_for(n)
    lion_kernel[_grid(n, threads) + (stream,)](p, m, g, cuda.to_device(consts, stream=stream))


def momentum_sums_at(m, g, beta1, threshold=0.0, stream=0, blocks=None):
    """Lion's telemetry sums of one tensor on the GPU: the first six
    :data:`~lni_geometry.optim_kernels.SUMS` of ``c = beta1 m + (1 - beta1) g`` formed as Lion's
    step forms it (a float64 ndarray; the counts exact, the sums within ``1e-12`` relative of the
    CPU's: another order of addition)."""
    from ..optim_kernels import _threshold

    n = m.shape[0]
    dtype = np.dtype(m.dtype)
    consts = np.array([beta1, 1.0 - beta1], dtype=dtype)
    thr = np.asarray(_threshold(dtype, threshold), dtype=dtype).reshape(1)
    threads = _threads_for(n)
    blocks = blocks or max(1, min(1024, -(-n // threads)))
    parts = cuda.device_array((blocks, 6), dtype=np.float64, stream=stream)
    if n:
        momentum_sums_kernel[blocks, threads, stream](m, g, cuda.to_device(consts, stream=stream),
                                                      cuda.to_device(thr, stream=stream), parts)
        out = parts.copy_to_host(stream=stream)
    else:
        out = np.zeros((1, 6))
    total = np.zeros(6)
    for row in out:  # in block order
        total += row
    return total
