"""The kernels' dispatch: kernel ids and the fills the compiled kernels call.

:func:`fill_coords` (natural order, every backend) and :func:`fill_tile`
(tile order, the CPU kernels) branch on a model's ``kernel_id``
(:data:`GAUSSIAN_ID`, :data:`STABLE_ID`, :data:`STUDENT_T_ID`) to the fills
of :mod:`.gaussian`, :mod:`.stable` and :mod:`.student_t`; numba compiles the
dispatch statically, so each branch is written by hand and :data:`DISPATCH`
is checked against the registry (:data:`lni_geometry.models.MODELS`) at import.
"""

from __future__ import annotations

from numba import njit

from .gaussian import Gaussian, fill_gaussian, fill_gaussian_tile
from .registry import MODELS
from .stable import SymmetricStable, fill_stable, fill_stable_tile
from .student_t import StudentT, fill_student_t, fill_student_t_tile

__all__ = ["DISPATCH", "GAUSSIAN_ID", "STABLE_ID", "STUDENT_T_ID", "fill_coords", "fill_tile"]

GAUSSIAN_ID = Gaussian.kernel_id
STABLE_ID = SymmetricStable.kernel_id
STUDENT_T_ID = StudentT.kernel_id
#: The fill of each kernel id, as :func:`fill_coords` calls it (checked against the registry).
DISPATCH = {GAUSSIAN_ID: fill_gaussian, STABLE_ID: fill_stable, STUDENT_T_ID: fill_student_t}
if DISPATCH != {cls.kernel_id: cls.fill for cls in MODELS.values()}:  # pragma: no cover - a developer slip
    raise ImportError("lni_geometry.models: the registry and the dispatch of fill_coords disagree; "
                      "add the new model's branch to fill_coords and DISPATCH")


@njit(cache=True, error_model="numpy")
def fill_coords(model_id, p0, p1, k0, k1, sample, coord0, ncoords, out):
    """Write coordinates ``coord0 .. coord0 + ncoords - 1`` of a sample into ``out``.

    ``coord0`` must be a multiple of the model's ``coords_per_block``; whole
    blocks are written, so ``out`` must hold ``ncoords`` rounded up to a block.
    ``(p0, p1)`` are the model's ``kernel_params``.  One branch per
    registered model (numba compiles the dispatch statically).
    """
    if model_id == GAUSSIAN_ID:
        fill_gaussian(k0, k1, sample, coord0 // 4, (ncoords + 3) // 4, out)
    elif model_id == STABLE_ID:
        fill_stable(k0, k1, sample, coord0, ncoords, p0, p1, out)
    elif model_id == STUDENT_T_ID:
        fill_student_t(k0, k1, sample, coord0, ncoords, p0, out)


@njit(inline="always", cache=True, error_model="numpy")
def fill_tile(model_id, p0, p1, k0, k1, sample, coord0, n, words, out):
    """Coordinates ``coord0 .. coord0 + n - 1`` of a sample into ``out[:n]``, in tile order.

    ``words`` is uint32 scratch of at least ``TILE_SCRATCH * max(n, 4)``
    entries (``TILE_SCRATCH * TILE`` for every ``n <= TILE``).  The order inside
    a tile is fixed per model (it only fixes the order of the additions); the
    Gaussian model uses :func:`fill_gaussian_tile` (tile order), the stable
    and Student-t models :func:`fill_stable_tile` and
    :func:`fill_student_t_tile` (natural order, the values of
    :func:`fill_coords`: tested bit for bit).
    """
    if model_id == GAUSSIAN_ID:
        fill_gaussian_tile(k0, k1, sample, coord0, n, words, out)
    elif model_id == STABLE_ID:
        fill_stable_tile(k0, k1, sample, coord0, n, p0, p1, words, out)
    elif model_id == STUDENT_T_ID:
        fill_student_t_tile(k0, k1, sample, coord0, n, p0, words, out)
    else:
        fill_coords(model_id, p0, p1, k0, k1, sample, coord0, n, out)
