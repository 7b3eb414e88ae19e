"""CPU backend: launches the numba kernels of :mod:`lni_geometry.kernels`.

Two launch shapes, chosen for speed only (both give the same bits, because the
kernels fix the reduction order):

- many samples: one thread per sample (``kernels.sums_over_samples``), in
  batches of samples so that progress can be shown and Ctrl-C honoured;
- few samples (fewer than ``4 x`` the thread count): each sample's chunks are
  spread over the threads (``kernels.chunk_sums_of_sample``), so a single
  sample at dim 1e9 uses every core.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import kernels
from . import check_options, check_sums_args

#: The backend's name (:func:`lni_geometry.backends.get_backend`).
NAME = "cpu"
#: The CPU backend takes no options.
Options = None
#: Target number of coordinates per launch (progress granularity).
BATCH_COORDS = 1 << 26


def threads():
    """The number of numba threads in use."""
    return numba.get_num_threads()


def chunk_sums(key, model, dim, sample, chunk0, nchunks, out=None):
    """Sums of chunks ``chunk0 .. chunk0 + nchunks - 1`` of one sample: one launch.

    Row ``c`` holds ``(l1, l2sq, total)`` of chunk ``chunk0 + c`` (``kernels.CHUNK``
    coordinates, the last chunk shorter); ``kernels.add_rows_in_order`` of all
    the chunks of a sample gives its sums.  The Dask backend's chunk tasks run
    this launch on the workers.

    Returns
    -------
    ndarray of float64, shape (nchunks, 3) (``out`` when given)
    """
    if out is None:
        out = np.empty((nchunks, 3))
    p0, p1 = (float(p) for p in model.kernel_params)
    kernels.chunk_sums_of_sample(
        model.kernel_id, p0, p1, np.uint32(key[0]), np.uint32(key[1]),
        sample, dim, chunk0, nchunks, out,
    )
    return out


def sample_sums(key, model, dim, start, samples, progress=None, options=None):
    """Sums ``(l1, l2sq, total)`` of samples ``start .. start + samples - 1``.

    The interface of every backend (:class:`lni_geometry.backends.Backend`).

    Parameters
    ----------
    key : ndarray of uint32, shape (2,)
        ``rng.key_from_seed(seed)``.
    model : GradientModel
    dim, start, samples : int
    progress : callable or None
        Called with the number of samples finished after each launch (a
        fraction of a sample when one sample spans several launches).
    options : None
        The CPU backend takes no options.

    Returns
    -------
    ndarray of float64, shape (samples, 3)
    """
    key, dim, start, samples = check_sums_args(key, model, dim, start, samples)
    check_options(NAME, Options, options)
    out = np.empty((samples, 3))
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    mid = model.kernel_id
    p0, p1 = (float(p) for p in model.kernel_params)
    nthreads = threads()
    if samples >= 4 * nthreads:
        batch = max(4 * nthreads, BATCH_COORDS // dim)
        for i in range(0, samples, batch):
            n = min(batch, samples - i)
            kernels.sums_over_samples(mid, p0, p1, k0, k1, start + i, n, dim, out[i : i + n])
            if progress is not None:
                progress(n)
    else:
        nch = kernels.n_chunks(dim)
        chunks_per_launch = max(2 * nthreads, BATCH_COORDS // kernels.CHUNK)
        parts = np.empty((nch, 3))
        for i in range(samples):
            for c in range(0, nch, chunks_per_launch):
                n = min(chunks_per_launch, nch - c)
                chunk_sums(key, model, dim, start + i, c, n, parts[c : c + n])
                if progress is not None:
                    progress(n / nch)
            out[i] = kernels.add_rows_in_order(parts)
    return out


def sample_coords(key, model, dim, start, samples):
    """Raw coordinates, shape ``(samples, dim)`` (see ``sample_vectors``)."""
    key, dim, start, samples = check_sums_args(key, model, dim, start, samples)
    out = np.empty((samples, dim))
    p0, p1 = (float(p) for p in model.kernel_params)
    kernels.coords_of_samples(
        model.kernel_id, p0, p1, np.uint32(key[0]), np.uint32(key[1]),
        start, samples, dim, model.coords_per_block, out,
    )
    return out
