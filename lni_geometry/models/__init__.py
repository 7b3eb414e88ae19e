"""Gradient models: how the raw coordinates of a sample are drawn from the stream.

A model turns the Philox words of :mod:`lni_geometry.rng` into coordinates.  Each
model is a small immutable object (its parameters validated at construction)
whose class is registered in :data:`MODELS` by :func:`register_model` and
declares

- ``spec_name`` (``"stable"``) and ``params``: the parameters as declared
  domains (:class:`lni_geometry.validation.Domain`) with their defaults; from
  them the registry derives the validation, ``spec`` (``"stable:1.5"``),
  :func:`model_from_spec` and the help text (:func:`spec_help`);
- ``fill``: its coordinate function, a numba device function
  ``fill(k0, k1, sample, block0, nblocks, [p0, [p1,]] out)`` writing whole
  coordinate blocks; ``coords_per_block``: coordinates per Philox call;
- ``kernel_id`` (given by the registry, in registration order) and
  ``kernel_params``: what the compiled kernels dispatch on
  (:func:`fill_coords`, checked against the registry at import);
- ``coordinate_bounds``: the tail bounds behind ``sampling.range_risk``.

Models: :class:`Gaussian` (``"gaussian"``), :class:`SymmetricStable`
(``"stable:ALPHA"`` or ``"stable:ALPHA:SCALE"``) and :class:`StudentT`
(``"t:DF"``).  The steps to add one are in CONTRIBUTING.md ("Adding a model").

The coordinate transforms are device functions, compiled for the CPU by
``numba.njit`` and reused unchanged by the CUDA kernels.  They use the
branch-free elementary functions of :mod:`lni_geometry.elementary` so that
their loops vectorise: Student-t the float64 ones (``expm1_finite``,
``log_positive``, tested against numpy to ``1e-13`` relative), the stable
model float32 pieces (``sin_half_turns32``, ``log_reduced32``,
``exp2_reduced32``, to ``2e-7``) on exactly reduced arguments (stream version
3, :func:`stable_pieces`).

The package holds one module per part, and every name is importable from
here (``lni_geometry.models.X``, the same objects):

- :mod:`.registry`: :class:`GradientModel`, :data:`MODELS`,
  :func:`register_model`, :func:`model_from_spec`, :func:`spec_help`;
- :mod:`.tiles`: the scratch and Philox word planes the tile fills share
  (``TILE_SCRATCH``, ``philox_planes``);
- :mod:`.gaussian`, :mod:`.stable`, :mod:`.student_t`: one model family
  each, its class, coordinate functions and tile fill;
- :mod:`.dispatch`: the kernel ids and :func:`fill_coords`,
  :func:`fill_tile`, checked against the registry at import.

The models need nothing above them: the stable tail law of their range
bounds comes from :mod:`lni_geometry.stable_law`, not from the samplers.
"""

from __future__ import annotations

# helpers the models import, importable from here as before (``elementary``: the tests use it)
from ..elementary import (  # noqa: F401
    CONTRACT, and32, bits_f32, bits_f64, elementary, exp2_reduced32, expm1_finite, f32_bits, f64_bits,
    isub32, log_positive, log_reduced32, mantissa_split32, pow2_halves, round32, shr32, sin_half_turns32,
    sqrt_nonneg, sub32, xor32,
)
from ..rng import MAX_NORMAL, box_muller, box_muller_pieces, stream_words  # noqa: F401
from ..validation import ALPHA, SCALE, Domain  # noqa: F401

# the families register in this order, which gives their kernel ids
from .registry import MODELS, GradientModel, model_from_spec, register_model, spec_help
from .tiles import TILE_SCRATCH, philox_planes
from .gaussian import GAUSSIAN_TILE_SCRATCH, Gaussian, fill_gaussian, fill_gaussian_tile, gaussian_block
from .stable import (
    SymmetricStable,
    fill_stable,
    fill_stable_tile,
    fill_stable_words,
    half_uniforms32,
    scale_pow2,
    stable_constants,
    stable_pieces,
)
from .student_t import (
    STUDENT_T_MAX_DRAWS,
    StudentT,
    fill_student_t,
    fill_student_t_tile,
    signed_half_uniform,
    student_t_from_words,
)
from .dispatch import DISPATCH, GAUSSIAN_ID, STABLE_ID, STUDENT_T_ID, fill_coords, fill_tile

__all__ = [
    "MODELS",
    "Gaussian",
    "GradientModel",
    "StudentT",
    "SymmetricStable",
    "fill_coords",
    "fill_tile",
    "model_from_spec",
    "register_model",
    "spec_help",
]
