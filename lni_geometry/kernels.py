"""Fused per-sample sums of the raw coordinates, shared by all backends.

For a sample ``g`` of dimension ``n`` the kernels compute, without ever holding
``g``, the three sums every angle needs::

    l1 = sum |g_i|,    l2sq = sum g_i**2,    total = sum g_i

Fixed reduction order (what makes results independent of threads and chunks):
coordinates are cut into *chunks* of ``CHUNK`` coordinates (the last one
shorter) and chunks into *tiles* of ``TILE`` coordinates.  A tile is generated
into a small buffer (in the model's tile order,
:func:`lni_geometry.models.fill_tile`) and reduced into ``LANES = 8`` float64
accumulators per sum (entry ``j`` into lane ``j mod 8``), the lanes folded pairwise
``((0+1)+(2+3))+((4+5)+(6+7))``, then the ragged end (< 8 entries) added in
order; tile sums are added in tile order within a chunk, chunk sums in chunk
order.  Whoever computes a chunk, the result is the same bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, int64

from .models import fill_coords, fill_tile

CHUNK = 1 << 16  # coordinates per chunk: the unit of parallel work in one sample
TILE = 512  # coordinates generated per tile (a multiple of every model's block)
LANES = 8  # float64 accumulators per sum (one AVX-512 register)


@njit(inline="always", cache=True, error_model="numpy")
def _tile_sums(buf, n):
    """Sums of ``buf[:n]`` into ``LANES = 8`` lanes each, lane ``j mod 8`` for entry ``j``.

    Written with scalar lanes so that the compiler packs them into one vector
    register without reordering any addition; returns three floats
    ``(sum |z|, sum z**2, sum z)``, each the pairwise fold of its 8 lanes
    ``((0+1)+(2+3))+((4+5)+(6+7))`` plus the ragged end added in entry order.
    """
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = 0.0
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = 0.0
    full = n - n % LANES
    for j in range(0, full, LANES):
        z0 = buf[j]
        z1 = buf[j + 1]
        z2 = buf[j + 2]
        z3 = buf[j + 3]
        z4 = buf[j + 4]
        z5 = buf[j + 5]
        z6 = buf[j + 6]
        z7 = buf[j + 7]
        a0 += abs(z0)
        a1 += abs(z1)
        a2 += abs(z2)
        a3 += abs(z3)
        a4 += abs(z4)
        a5 += abs(z5)
        a6 += abs(z6)
        a7 += abs(z7)
        b0 += z0 * z0
        b1 += z1 * z1
        b2 += z2 * z2
        b3 += z3 * z3
        b4 += z4 * z4
        b5 += z5 * z5
        b6 += z6 * z6
        b7 += z7 * z7
        c0 += z0
        c1 += z1
        c2 += z2
        c3 += z3
        c4 += z4
        c5 += z5
        c6 += z6
        c7 += z7
    # the ragged end of the last tile (fewer than 8 entries), in entry order
    s1 = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    s2 = ((b0 + b1) + (b2 + b3)) + ((b4 + b5) + (b6 + b7))
    st = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))
    for j in range(full, n):
        z = buf[j]
        s1 += abs(z)
        s2 += z * z
        st += z
    return s1, s2, st


@njit(cache=True, error_model="numpy")
def chunk_sums(model_id, p0, p1, k0, k1, sample, dim, chunk, buf, out):
    """Sums ``(l1, l2sq, total)`` of chunk ``chunk`` of a sample, into ``out[0:3]``.

    Each tile of ``TILE`` coordinates is generated into ``buf`` (scratch of
    length ``TILE``) by :func:`fill_tile` and reduced by :func:`_tile_sums`; tile sums are added in
    tile order.
    """
    first = chunk * CHUNK
    last = min(first + CHUNK, dim)
    s1 = 0.0
    s2 = 0.0
    st = 0.0
    for t0 in range(first, last, TILE):
        n = min(TILE, last - t0)
        fill_tile(model_id, p0, p1, k0, k1, sample, t0, n, buf)
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
