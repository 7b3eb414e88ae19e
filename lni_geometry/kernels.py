"""Fused per-sample sums of the raw coordinates, shared by all backends.

For a sample ``g`` of dimension ``n`` the kernels compute, without ever holding
``g``, the three sums every angle needs::

    l1 = sum |g_i|,    l2sq = sum g_i**2,    total = sum g_i

Fixed reduction order (what makes results independent of threads and chunks):
coordinates are cut into *chunks* of ``CHUNK`` coordinates (the last one
shorter); inside a chunk, tiles of ``TILE`` coordinates are generated into a
small buffer and added into ``LANES`` running float64 accumulators (coordinate
``j`` of a tile into lane ``j mod LANES``); the lanes are added in order at the
end of the chunk, and the chunk sums are added in chunk order.  Whoever computes
a chunk, the result is the same bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, float64, int64

from .models import fill_coords

CHUNK = 1 << 16  # coordinates per chunk: the unit of parallel work in one sample
TILE = 512  # coordinates generated per tile (a multiple of every model's block)
LANES = 8  # float64 accumulators per sum (one AVX-512 register)


@njit(cache=True, error_model="numpy")
def chunk_sums(model_id, p0, p1, k0, k1, sample, dim, chunk, buf, out):
    """Sums ``(l1, l2sq, total)`` of chunk ``chunk`` of a sample, into ``out[0:3]``.

    ``buf`` is scratch of length ``TILE``.
    """
    a1 = np.zeros(LANES)
    a2 = np.zeros(LANES)
    at = np.zeros(LANES)
    first = chunk * CHUNK
    last = min(first + CHUNK, dim)
    for t0 in range(first, last, TILE):
        n = min(TILE, last - t0)
        fill_coords(model_id, p0, p1, k0, k1, sample, t0, n, buf)
        full = n - n % LANES
        for j in range(0, full, LANES):
            for q in range(LANES):
                z = buf[j + q]
                a1[q] += abs(z)
                a2[q] += z * z
                at[q] += z
        for q in range(n - full):
            z = buf[full + q]
            a1[q] += abs(z)
            a2[q] += z * z
            at[q] += z
    s1 = 0.0
    s2 = 0.0
    st = 0.0
    for q in range(LANES):
        s1 += a1[q]
        s2 += a2[q]
        st += at[q]
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
