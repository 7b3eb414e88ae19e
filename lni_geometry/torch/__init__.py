"""Lion and Enim as PyTorch optimizers, with the telemetry the seed paper measures.

Needs the ``[torch]`` extra (``pip install "lni-geometry[torch]"``); importing
:mod:`lni_geometry` itself never imports torch.

Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms",
Algorithm 2), for each parameter ``w`` with gradient ``g`` and momentum ``m``::

    c = beta1 * m + (1 - beta1) * g
    w <- w * (1 - lr * weight_decay) - lr * sign(c)        # sign(0) = 0
    m <- beta2 * m + (1 - beta2) * g

exactly as lucidrains/lion-pytorch's ``Lion`` computes it (the same roundings,
so the same bits: on the CPU one kernel launch over every tensor that rounds as
torch's operations do, elsewhere those operations in the same order; decay on the old weights,
momentum in the parameter's dtype, created as zeros).  The seed paper
(S. Elistratov, A. Podivilov, T. Iuzhakov, D. Vetrov, "Lion's sign noise can
make training more stable", NeurIPS 2024 OPT workshop) writes Lion in its
eq. (2) with ``+ lr sign(beta1 m - (1 - beta1) g)``, a sign typo (it steps
against the momentum); its Definition 3 repeats it.  Both optimizers here
follow Chen et al., as :mod:`lni_geometry.optim` does.

Enim (the seed paper's Definition 2, as run in its experiments) replaces
``sign(c)`` by ``c`` turned by an angle ``t`` towards a uniformly random
direction orthogonal to ``c`` and scaled to Lion's step norm ``sqrt(n)``::

    u = sqrt(n) (cos(t) c/|c| + sin(t) w),    w uniform on the unit sphere of c's complement
    w <- w * (1 - lr * weight_decay) - lr * u

with ``c`` the concatenation over every parameter of every group
(``scope="model"``, dimension ``n``), each group's slice of ``u`` multiplied
by its own ``lr``.  With ``t`` drawn from the law of the bisector angle of a
uniform point of ``S^(n-1)`` (``angle="lni"``) this is exactly the paper's
LNI, ``B sign(B^T c)`` with ``B`` Haar-random (see :func:`lni_geometry.lni`);
with ``t = 0`` it is normalised SGD with Lion's momentum (the paper's Norm
SGD).  ``w`` is drawn as a Gaussian ``z`` projected on the complement of
``c``; the update is computed as ``alpha c + beta z`` from the sums
``c.c``, ``c.z``, ``z.z`` (a first pass over the arrays, then the update),
which is the same vector.
``z`` comes from the package's Philox stream (on the CPU and on a GPU), keyed
by the optimizer's ``torch.Generator``.

Under ``torch.distributed`` (DDP, FSDP2, ZeRO-1) both give the numbers of one
process stepping the whole model: :mod:`lni_geometry.torch.distributed`.

Telemetry (``telemetry=True``) records after every step, as Python numbers,
the quantities of the paper's Figs. 2, 4 and 6 (listed in :class:`Lion`), and
the angle budget of :func:`lni_geometry.angle_budget` that says why the sign
angle exceeds the isotropic ``arccos(sqrt(2/pi)) = 37.07 deg``.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'lni_geometry.torch needs PyTorch: pip install "lni-geometry[torch]"'
    ) from exc

from .base import REVIVED_FRACTION, NonFiniteError, isotropic_mean
from .distributed import DistributedError
from .enim import Enim
from .lion import Lion

__all__ = ["Lion", "Enim", "NonFiniteError", "DistributedError", "REVIVED_FRACTION", "isotropic_mean"]
