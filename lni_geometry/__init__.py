"""lni_geometry: geometry and statistics of sign-based optimizers.

The angle between a vector and its sign (the rotation Lion's sign applies to an
update) concentrates sharply in high dimension; this package samples it exactly
at millions of dimensions, gives its analytic laws and reference Lion/Enim steps.

Data flow: seed -> counter-based bits (:mod:`.rng`) -> model (:mod:`.models`)
-> fused sums (:mod:`.kernels`, launched by :mod:`.backends`) -> angles
(:mod:`.sampling`) -> laws and plots.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("lni-geometry")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .geometry import bisector_angle, fixed_axis_angle, max_bisector_angle, sign_angle
from .models import Gaussian, GradientModel, model_from_spec
from .sampling import AngleSample, sample_angles, sample_vectors

__all__ = [
    "__version__",
    "AngleSample",
    "Gaussian",
    "GradientModel",
    "bisector_angle",
    "fixed_axis_angle",
    "max_bisector_angle",
    "model_from_spec",
    "sample_angles",
    "sample_vectors",
    "sign_angle",
]
