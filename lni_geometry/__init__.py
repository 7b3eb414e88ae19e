"""lni_geometry: geometry and statistics of sign-based optimizers.

The angle between a vector and its sign (the rotation Lion's sign applies to an
update) concentrates sharply in high dimension; this package samples it exactly
at millions of dimensions, gives its analytic laws and reference Lion/Enim steps.

Data flow: seed -> counter-based bits (:mod:`.rng`) -> model (:mod:`.models`)
-> fused sums (kernels compute: :mod:`.kernels` on the CPU, :mod:`.cuda_kernels`
on a GPU; backends launch: :mod:`.backends`, one interface, ``get_backend``)
-> angles (:mod:`.sampling`) -> laws and plots.

Training (the extra ``[torch]``): :mod:`lni_geometry.torch` (Lion, Enim, telemetry)
-> :mod:`.experiments` (runs cached by configuration) -> the paper's Figures 2-6.
Importing this package never imports torch.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("lni-geometry")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from . import optim, theory
from .compare import Comparison, compare
from .geometry import (
    AngleBudget,
    angle_budget,
    bisector_angle,
    fixed_axis_angle,
    lni,
    lni_haar,
    max_bisector_angle,
    rotate,
    sign_angle,
)
from .models import Gaussian, GradientModel, StudentT, SymmetricStable, model_from_spec
from .sampling import AngleSample, sample_angles, sample_vectors
from .sweep import sweep
from .tails import alpha_for_angle, tail_index

__all__ = [
    "__version__",
    "AngleBudget",
    "AngleSample",
    "Comparison",
    "Gaussian",
    "GradientModel",
    "StudentT",
    "SymmetricStable",
    "alpha_for_angle",
    "angle_budget",
    "bisector_angle",
    "compare",
    "fixed_axis_angle",
    "lni",
    "lni_haar",
    "max_bisector_angle",
    "model_from_spec",
    "optim",
    "rotate",
    "sample_angles",
    "sample_vectors",
    "sign_angle",
    "sweep",
    "tail_index",
    "theory",
]
