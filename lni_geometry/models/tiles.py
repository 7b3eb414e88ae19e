"""The tile machinery shared by the models' fills: Philox word planes and scratch sizes.

The CPU kernels fill a tile of coordinates at a time
(:func:`lni_geometry.models.fill_tile`), with uint32 scratch of
:data:`TILE_SCRATCH` words per coordinate; :func:`philox_planes` writes the
Philox words of a run of blocks into four planes of that scratch, so that the
models' planar tile fills
(:func:`lni_geometry.models.gaussian.fill_gaussian_tile`,
:func:`lni_geometry.models.stable.fill_stable_tile`) read contiguous words.
"""

from __future__ import annotations

from numba import njit

from ..rng import stream_words

__all__ = ["TILE_SCRATCH", "philox_planes"]

#: uint32 scratch per coordinate of :func:`lni_geometry.models.fill_tile` (the stable fill's
#: six planes: four of Philox words, its mantissas and exponents); covers the Gaussian's
#: ``GAUSSIAN_TILE_SCRATCH * ceil(n/4)`` for ``n >= 4`` and Student-t's ``4 n``.
TILE_SCRATCH = 6


@njit(inline="always", cache=True, error_model="numpy")
def philox_planes(k0, k1, sample, block0, nb, draw, words):
    """The Philox words of blocks ``block0 .. block0 + nb - 1`` in four planes.

    Word ``i`` of block ``block0 + j`` goes to ``words[i * nb + j]``: one loop of
    integer arithmetic that the compiler vectorises on its own, so that the
    transforms after it read contiguous words (planar tile fills).
    """
    for j in range(nb):
        w0, w1, w2, w3 = stream_words(k0, k1, sample, block0 + j, draw)
        words[j] = w0
        words[nb + j] = w1
        words[2 * nb + j] = w2
        words[3 * nb + j] = w3
