"""The Gaussian model: four normal coordinates per Philox call, by Box-Muller.

:class:`Gaussian` (spec ``"gaussian"`` or ``"normal"``), its coordinate
functions (:func:`gaussian_block`, :func:`fill_gaussian`) and its planar tile
fill for the CPU kernels (:func:`fill_gaussian_tile`), on the Box-Muller
pairs of :mod:`lni_geometry.rng`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from numba import float64, njit

from ..elementary import CONTRACT, bits_f32, f32_bits
from ..rng import MAX_NORMAL, box_muller, box_muller_pieces, stream_words
from .registry import GradientModel, register_model
from .tiles import philox_planes

__all__ = ["GAUSSIAN_TILE_SCRATCH", "Gaussian", "fill_gaussian", "fill_gaussian_tile", "gaussian_block"]

#: uint32 scratch per Gaussian block of :func:`fill_gaussian_tile`: four planes of
#: Philox words and six of float32 pieces.
GAUSSIAN_TILE_SCRATCH = 10

# --- device functions -------------------------------------------------------


@njit(inline="always", cache=True, error_model="numpy", fastmath=CONTRACT)
def gaussian_block(k0, k1, sample, block):
    """The four Gaussian coordinates of block ``block`` of sample ``sample``."""
    w0, w1, w2, w3 = stream_words(k0, k1, sample, block, 0)
    z0, z1 = box_muller(w0, w1)
    z2, z3 = box_muller(w2, w3)
    return z0, z1, z2, z3


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_gaussian(k0, k1, sample, block0, nblocks, out):
    """Write the ``4 * nblocks`` coordinates of blocks ``block0 ..`` into ``out``."""
    for j in range(nblocks):
        z0, z1, z2, z3 = gaussian_block(k0, k1, sample, block0 + j)
        out[4 * j] = z0
        out[4 * j + 1] = z1
        out[4 * j + 2] = z2
        out[4 * j + 3] = z3


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_gaussian_tile(k0, k1, sample, coord0, n, words, out):
    """The ``n`` Gaussian coordinates from ``coord0`` (a multiple of 4), in tile order.

    Tile order: with ``B = n // 4`` whole blocks, coordinate ``coord0 + 4b + k``
    goes to ``out[k * B + b]`` (four planes, so the vectorised loop stores
    contiguously); the ``n mod 4`` coordinates of a last partial block follow
    at ``out[4B + k]``.  Values are those of :func:`gaussian_block` (the same
    operations in the same order: tested bit for bit).

    Three vectorised passes over planes of ``words`` (uint32 scratch of at
    least ``GAUSSIAN_TILE_SCRATCH * ceil(n/4)`` entries, which
    ``TILE_SCRATCH * max(n, 4)`` covers): the Philox words into four
    planes; the float32 pieces of Box-Muller (``r``, ``cos t``, ``sin t`` of
    both pairs) into six planes, a loop of 32-bit lanes only, so that it runs
    16 lanes wide on AVX-512 (in one loop with the float64 products the
    compiler took 8; on Zen 4 the two loops run at 0.96x to 1.12x the speed
    of one, median 1.08x, timed in one process); then the exact float64
    products ``r cos t``, ``r sin t``.
    """
    block0 = coord0 // 4
    nb = n // 4
    nw = (n + 3) // 4
    if words.shape[0] < GAUSSIAN_TILE_SCRATCH * nw:
        raise ValueError("fill_gaussian_tile: words holds fewer than 10 * ceil(n/4) entries")
    philox_planes(k0, k1, sample, block0, nw, 0, words)
    # planes as views, so that the loops' loads and stores are contiguous
    # vectors (indices nw + j would be gathers: numba's negative-index check)
    wa = words[:nw]
    wb = words[nw:2 * nw]
    wc = words[2 * nw:3 * nw]
    wd = words[3 * nw:4 * nw]
    # the float32 pieces, kept as their bits in the same scratch
    ra = words[4 * nw:5 * nw]
    ca = words[5 * nw:6 * nw]
    sa = words[6 * nw:7 * nw]
    rc = words[7 * nw:8 * nw]
    cc = words[8 * nw:9 * nw]
    sc = words[9 * nw:10 * nw]
    for j in range(nw):
        r, c, s = box_muller_pieces(wa[j], wb[j])
        ra[j] = f32_bits(r)
        ca[j] = f32_bits(c)
        sa[j] = f32_bits(s)
        r, c, s = box_muller_pieces(wc[j], wd[j])
        rc[j] = f32_bits(r)
        cc[j] = f32_bits(c)
        sc[j] = f32_bits(s)
    o0 = out[:nb]
    o1 = out[nb:2 * nb]
    o2 = out[2 * nb:3 * nb]
    o3 = out[3 * nb:4 * nb]
    for j in range(nb):
        r = float64(bits_f32(ra[j]))
        o0[j] = r * float64(bits_f32(ca[j]))
        o1[j] = r * float64(bits_f32(sa[j]))
        r = float64(bits_f32(rc[j]))
        o2[j] = r * float64(bits_f32(cc[j]))
        o3[j] = r * float64(bits_f32(sc[j]))
    rest = n - 4 * nb
    if rest > 0:
        r = float64(bits_f32(ra[nb]))
        out[4 * nb] = r * float64(bits_f32(ca[nb]))
        if rest > 1:
            out[4 * nb + 1] = r * float64(bits_f32(sa[nb]))
        if rest > 2:
            out[4 * nb + 2] = float64(bits_f32(rc[nb])) * float64(bits_f32(cc[nb]))


# --- the model ----------------------------------------------------------------


@register_model
@dataclass(frozen=True)
class Gaussian(GradientModel):
    """Isotropic Gaussian coordinates ``g_i ~ N(0, 1)`` iid.

    ``g/|g|`` is uniform on the sphere S^(dim-1), so the angles of a sample are
    those of a uniform point.  Four coordinates come from one Philox call, by
    two Box-Muller pairs (:func:`lni_geometry.rng.box_muller`):
    coordinate ``4b + j`` of a sample is normal ``j`` of block ``b``.

    Examples
    --------
    >>> Gaussian().spec
    'gaussian'
    """

    spec_name: ClassVar[str] = "gaussian"
    aliases: ClassVar[tuple] = ("normal",)
    fill: ClassVar[object] = fill_gaussian
    coords_per_block: ClassVar[int] = 4

    def coordinate_bounds(self, big, small):
        """``|g| <= 6.7637`` always (:func:`lni_geometry.rng.box_muller`), and the
        normal density is at most ``1/sqrt(2 pi)``: ``P(|g| < s) <= 2 s/sqrt(2 pi)``."""
        return (0.0 if big > MAX_NORMAL * (1 + 1e-12) else 1.0), min(1.0, 2.0 * small / math.sqrt(2.0 * math.pi))
