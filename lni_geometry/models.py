"""Gradient models: how the raw coordinates of a sample are drawn from the stream.

A model turns the Philox words of :mod:`lni_geometry.rng` into coordinates.  Each
model is a small immutable object (its parameters validated at construction)
with

- ``kernel_id`` and ``kernel_params``: what the compiled kernels dispatch on;
- ``coords_per_block``: coordinates drawn from one Philox call (one block);
- ``spec``: a string such as ``"gaussian"`` that :func:`model_from_spec` reads
  back (used by the command line and saved files).

The coordinate transforms themselves are device functions (``fill_*`` below),
compiled for the CPU by ``numba.njit`` and reused unchanged by the CUDA kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba import njit

from .rng import box_muller, stream_words

__all__ = ["Gaussian", "GradientModel", "model_from_spec"]

#: kernel ids (dispatch in :func:`fill_block`)
GAUSSIAN_ID = 0


class GradientModel:
    """Base class of gradient models (see the module docstring)."""

    kernel_id: int = -1
    coords_per_block: int = 1

    @property
    def kernel_params(self) -> tuple[float, float]:
        return (0.0, 0.0)

    @property
    def spec(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


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

    kernel_id = GAUSSIAN_ID
    coords_per_block = 4

    @property
    def spec(self) -> str:
        return "gaussian"


def model_from_spec(spec):
    """A model from its string form: ``gaussian`` (more models: see the README).

    Raises
    ------
    ValueError
        For an unknown or malformed model string.
    """
    if isinstance(spec, GradientModel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"model must be a GradientModel or a model string, got {type(spec).__name__}")
    text = spec.strip().lower()
    if text in ("gaussian", "normal"):
        return Gaussian()
    raise ValueError(f"unknown model {spec!r}; valid models: 'gaussian'")


# --- device functions -------------------------------------------------------


@njit(inline="always", cache=True, error_model="numpy")
def gaussian_block(k0, k1, sample, block):
    """The four Gaussian coordinates of block ``block`` of sample ``sample``."""
    w0, w1, w2, w3 = stream_words(k0, k1, sample, block, 0)
    z0, z1 = box_muller(w0, w1)
    z2, z3 = box_muller(w2, w3)
    return z0, z1, z2, z3


@njit(cache=True, error_model="numpy")
def fill_gaussian(k0, k1, sample, block0, nblocks, out):
    """Write the ``4 * nblocks`` coordinates of blocks ``block0 ..`` into ``out``."""
    for j in range(nblocks):
        z0, z1, z2, z3 = gaussian_block(k0, k1, sample, block0 + j)
        out[4 * j] = z0
        out[4 * j + 1] = z1
        out[4 * j + 2] = z2
        out[4 * j + 3] = z3


@njit(cache=True, error_model="numpy")
def fill_coords(model_id, p0, p1, k0, k1, sample, coord0, ncoords, out):
    """Write coordinates ``coord0 .. coord0 + ncoords - 1`` of a sample into ``out``.

    ``coord0`` must be a multiple of the model's ``coords_per_block``; whole
    blocks are written, so ``out`` must hold ``ncoords`` rounded up to a block.
    """
    if model_id == GAUSSIAN_ID:
        fill_gaussian(k0, k1, sample, coord0 // 4, (ncoords + 3) // 4, out)
