"""Lion and Enim as PyTorch optimizers, with the telemetry the seed paper measures.

Needs the ``[torch]`` extra (``pip install "lni-geometry[torch]"``); importing
:mod:`lni_geometry` itself never imports torch.

Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms",
Algorithm 2), for each parameter ``w`` with gradient ``g`` and momentum ``m``::

    c = beta1 * m + (1 - beta1) * g
    w <- w * (1 - lr * weight_decay) - lr * sign(c)        # sign(0) = 0
    m <- beta2 * m + (1 - beta2) * g

exactly as lucidrains/lion-pytorch's ``Lion`` computes it (the same torch
operations in the same order, so the same bits: decay on the old weights,
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
``c.c``, ``c.z``, ``z.z`` (one pass over the arrays), which is the same vector.

Telemetry (``telemetry=True``) records after every step, as Python numbers,
the quantities of the paper's Figs. 2, 4 and 6 (see :meth:`Lion.step`), and
the angle budget of :func:`lni_geometry.angle_budget` that says why the sign
angle exceeds the isotropic ``arccos(sqrt(2/pi)) = 37.07 deg``.
"""

from __future__ import annotations

import functools
import math
import numbers

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'lni_geometry.torch needs PyTorch: pip install "lni-geometry[torch]"'
    ) from exc

import numpy as np

from . import optim_kernels
from .geometry import budget_from_block_sums

__all__ = ["Lion", "Enim", "REVIVED_FRACTION"]

#: A coordinate is "revived" when it gets a non-zero gradient while its momentum
#: is below this fraction of its group's momentum RMS (the seed paper, Fig. 4).
REVIVED_FRACTION = 1e-3

ENIM_SCOPES = ("model", "tensor")
ENIM_ANGLE_NAMES = ("lni", "lion")


# --- validation ------------------------------------------------------------------


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    return value


def _check_group(group):
    lr = _real("lr", group["lr"])
    if not 0.0 < lr < math.inf:
        raise ValueError(f"lr must be in (0, inf), got {lr!r}")
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for name, b in zip(("beta1", "beta2"), betas):
        b = _real(name, b)
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {b!r}")
    wd = _real("weight_decay", group["weight_decay"])
    if not 0.0 <= wd < math.inf:
        raise ValueError(f"weight_decay must be in [0, inf), got {wd!r}")


def _check_angle(angle):
    if isinstance(angle, str):
        if angle not in ENIM_ANGLE_NAMES:
            raise ValueError(f"angle must be a float in [0, pi], 'lni', 'lion' or a callable, got {angle!r}")
        return angle
    if callable(angle):
        return angle
    value = _real("angle", angle)
    if not 0.0 <= value <= math.pi:
        raise ValueError(f"angle must be in [0, pi] = [0, {math.pi!r}] radians, got {value!r}")
    return value


@functools.lru_cache(maxsize=64)
def isotropic_mean(n):
    """Mean of the bisector angle of a uniform point of ``S^(n-1)`` (radians; ``nan`` for n < 2)."""
    if n < 2:
        return math.nan
    from .theory import BisectorAngle

    return float(BisectorAngle(n).mean())


# --- fused sums: numba on CPU float32/float64, torch elsewhere ----------------------


def _fast(*tensors):
    return all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) for t in tensors)


def _flat_numpy(t):
    return t.detach().reshape(-1).numpy()


def _c_sums(c):
    if _fast(c):
        return optim_kernels.c_sums(_flat_numpy(c))
    c64 = c.detach().double()
    return torch.stack([c64.abs().sum(), (c64 * c64).sum(), (c != 0).sum().double()])


def _step_sums(c, g, m):
    if _fast(c, g, m):
        return optim_kernels.step_sums(_flat_numpy(c), _flat_numpy(g), _flat_numpy(m))
    c64, m64, gz = c.double(), m.double(), g == 0
    return torch.stack([
        c64.abs().sum(), (c64 * c64).sum(), (c != 0).sum().double(),
        gz.sum().double(), (gz & (m != 0)).sum().double(), (m64 * m64).sum(),
    ])


def _cross_sums(c, z):
    if _fast(c, z):
        return optim_kernels.cross_sums(_flat_numpy(c), _flat_numpy(z))
    c64, z64 = c.double(), z.double()
    return torch.stack([(c64 * z64).sum(), (z64 * z64).sum()])


def _count_revived(g, m, threshold):
    if threshold <= 0.0:
        return 0
    if _fast(g, m):
        return optim_kernels.count_revived(_flat_numpy(g), _flat_numpy(m), threshold)
    return ((g != 0) & (m.double().abs() < threshold)).sum()


def _numbers(x):
    """A tuple of Python numbers from a tuple or a (device) tensor of sums."""
    return tuple(x.tolist()) if isinstance(x, torch.Tensor) else tuple(x)


# --- the shared machinery --------------------------------------------------------------


class _Entry:
    """One parameter with a gradient in one step: where it is and its tensors."""

    __slots__ = ("group", "index", "param", "grad", "momentum")

    def __init__(self, group, index, param, grad, momentum):
        self.group, self.index, self.param, self.grad, self.momentum = group, index, param, grad, momentum


class _SignOptimizer(torch.optim.Optimizer):
    """Lion's shared machinery: groups, momentum state, telemetry, state_dict extras."""

    def __init__(self, params, defaults, foreach, telemetry):
        _check_group(defaults)
        if foreach is not None and not isinstance(foreach, bool):
            raise TypeError(f"foreach must be None, True or False, got {foreach!r}")
        if not isinstance(telemetry, bool):
            raise TypeError(f"telemetry must be True or False, got {telemetry!r}")
        super().__init__(params, defaults)
        self.foreach = foreach
        self.telemetry_enabled = telemetry
        #: Steps taken (1 after the first ``step()``).
        self.steps = 0
        #: The last step's telemetry (a dict), or None.
        self.telemetry = None
        #: Every step's telemetry, in order (clear it at will).
        self.history = []

    def add_param_group(self, param_group):
        merged = dict(self.defaults)
        merged.update(param_group)
        _check_group(merged)
        super().add_param_group(param_group)

    # -- gathering --

    def _entries(self):
        """Every parameter with a gradient, in group order; momentum created on first use."""
        out, index = [], 0
        for gi, group in enumerate(self.param_groups):
            for p in group["params"]:
                i, index = index, index + 1
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support sparse gradients "
                        f"(parameter {i}, shape {tuple(p.shape)}); use a dense gradient"
                    )
                state = self.state[p]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                out.append(_Entry(gi, i, p, p.grad, state["exp_avg"]))
        return out

    def _use_foreach(self, tensors):
        if self.foreach is not None:
            return self.foreach
        return all(t.device.type == "cuda" for t in tensors)

    # -- telemetry --

    def _record(self, entries, sums, revived, angle=None):
        """Build and keep the step's telemetry from per-tensor ``step_sums`` and revived counts.

        ``angle`` is the turn applied; ``None`` means the sign angle (Lion).
        """
        n_t = [e.param.numel() for e in entries]
        l1 = [s[0] for s in sums]
        l2 = [s[1] for s in sums]
        nnz = [int(s[2]) for s in sums]
        n = sum(n_t)
        budget = budget_from_block_sums(l1, l2, nnz, n=n)
        zero = sum(int(s[3]) for s in sums)
        per_tensor = [
            {
                "index": e.index,
                "group": e.group,
                "shape": tuple(e.param.shape),
                "n": k,
                "zero_grad": int(s[3]),
                "tracing": int(s[4]),
                "revived": int(r),
            }
            for e, k, s, r in zip(entries, n_t, sums, revived)
        ]
        record = {
            "step": self.steps,
            "n": n,
            "angle": budget.angle if angle is None else float(angle),
            "sign_angle": budget.angle,
            "isotropic_mean": isotropic_mean(n),
            "budget_T": budget.T,
            "budget_H": budget.H,
            "angle_tails": budget.angle_tails,
            "angle_heterogeneity": budget.angle_heterogeneity,
            "zero_grad_fraction": zero / n if n else math.nan,
            "zero_grad": zero,
            "tracing": sum(p["tracing"] for p in per_tensor),
            "revived": sum(p["revived"] for p in per_tensor),
            "per_tensor": per_tensor,
        }
        self.telemetry = record
        self.history.append(record)
        return record

    def _telemetry_sums(self, entries, cs):
        """Per-tensor ``step_sums`` and, per group, the revived counts (before the momentum update)."""
        sums = [_numbers(_step_sums(c, e.grad, e.momentum)) for e, c in zip(entries, cs)]
        return sums, self._revived(entries, sums)

    def _revived(self, entries, sums):
        m2, count = {}, {}
        for e, s in zip(entries, sums):
            m2[e.group] = m2.get(e.group, 0.0) + s[5]
            count[e.group] = count.get(e.group, 0) + e.param.numel()
        threshold = {gi: REVIVED_FRACTION * math.sqrt(m2[gi] / count[gi]) for gi in m2}
        return [int(_numbers([_count_revived(e.grad, e.momentum, threshold[e.group])])[0]) for e in entries]

    # -- state --

    def _extra_state(self):
        return {"steps": self.steps}

    def _load_extra_state(self, extra):
        self.steps = int(extra["steps"])

    def state_dict(self):
        """The state of :class:`torch.optim.Optimizer` plus ``"lni_geometry"``: steps (and Enim's generator)."""
        out = super().state_dict()
        out["lni_geometry"] = self._extra_state()
        return out

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        extra = state_dict.pop("lni_geometry", None)
        super().load_state_dict(state_dict)
        if extra is not None:
            self._load_extra_state(extra)

    @staticmethod
    def _closure(closure):
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()


# --- Lion ----------------------------------------------------------------------------------


class Lion(_SignOptimizer):
    r"""Lion (Chen et al. 2023) with the sign-angle and momentum-tracing telemetry.

    ::

        c = beta1 * m + (1 - beta1) * g
        w <- w * (1 - lr * weight_decay) - lr * sign(c)        # sign(0) = 0
        m <- beta2 * m + (1 - beta2) * g

    Bit for bit lucidrains/lion-pytorch's ``Lion`` (``lion_pytorch.Lion``: the
    same operations, ``mul_``/``add_``; its ``foreach`` variant uses
    ``lerp_`` for the momentum and differs in the last bits), and
    :func:`lni_geometry.optim.lion_step` up to rounding.  The paper's eq. (2)
    sign typo is documented in :mod:`lni_geometry.torch`.

    Parameters
    ----------
    params : iterable of tensors or of dicts (parameter groups)
    lr : float, default 1e-4
        ``> 0``.  Each group may set its own ``lr``, ``betas``, ``weight_decay``.
    betas : (float, float), default (0.9, 0.99)
        ``beta1`` (interpolation for the sign) and ``beta2`` (momentum decay), in ``[0, 1)``.
    weight_decay : float, default 0
        ``>= 0``, multiplied by ``lr`` and applied to the weights before the step.
    foreach : bool or None
        Use torch's ``_foreach`` operations (one call per group).  Default:
        on when every parameter is on CUDA.  Same numbers either way on the CPU.
    telemetry : bool, default False
        Record after every step the dict :attr:`telemetry` (and append it to
        :attr:`history`); off, it costs nothing.

    Attributes
    ----------
    telemetry : dict or None
        After a step with telemetry on, Python numbers over the parameters
        that had a gradient (``n`` coordinates):

        - ``"step"``, ``"n"``;
        - ``"angle"``, ``"sign_angle"``: the angle between ``c`` and
          ``sign(c)`` over the whole model (radians), equal to
          :func:`lni_geometry.sign_angle` of the concatenated ``c``:
          ``arccos(||c||_1 / (sqrt(nnz(c)) ||c||_2))``;
        - ``"isotropic_mean"``: the mean of
          :class:`lni_geometry.theory.BisectorAngle` ``(n)``, the angle an
          isotropic ``c`` would give;
        - ``"budget_T"``, ``"budget_H"``, ``"angle_tails"``,
          ``"angle_heterogeneity"``: the angle budget of
          :func:`lni_geometry.angle_budget` with the parameter tensors as
          blocks (``cos(sign_angle) = sqrt(2/pi) T H``);
        - ``"zero_grad_fraction"``, ``"zero_grad"``: coordinates whose
          gradient is exactly 0;
        - ``"tracing"``: gradient exactly 0 and momentum non-zero (the step
          moves them along the momentum: momentum tracing, paper Sec. 3);
        - ``"revived"``: non-zero gradient while ``|m|`` was below
          :data:`REVIVED_FRACTION` ``= 1e-3`` of the group's momentum RMS
          (the paper's Fig. 4, center left; 0 while the RMS is 0);
        - ``"per_tensor"``: per parameter, ``index`` (its position over all
          groups, as in ``state_dict``), ``group``, ``shape``, ``n``,
          ``zero_grad``, ``tracing``, ``revived``.
    history : list of dict
        The telemetry of every step.
    steps : int
        Steps taken; saved in ``state_dict()``.

    Examples
    --------
    >>> import torch
    >>> from lni_geometry.torch import Lion
    >>> w = torch.nn.Parameter(torch.tensor([1.0, 1.0, 1.0]))
    >>> opt = Lion([w], lr=0.1, telemetry=True)
    >>> w.grad = torch.tensor([0.5, -2.0, 0.0])
    >>> opt.step()
    >>> w.data
    tensor([0.9000, 1.1000, 1.0000])
    >>> opt.telemetry["zero_grad"], opt.telemetry["tracing"]
    (1, 0)
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, foreach=None, telemetry=False):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, weight_decay=weight_decay)
        super().__init__(params, defaults, foreach, telemetry)

    @torch.no_grad()
    def step(self, closure=None):
        """One Lion step over every parameter with a gradient; returns the closure's loss."""
        loss = self._closure(closure)
        entries = self._entries()
        self.steps += 1
        telemetry = self.telemetry_enabled
        all_sums, all_revived, ordered = [], [], []
        for gi, group in enumerate(self.param_groups):
            mine = [e for e in entries if e.group == gi]
            if not mine:
                continue
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            params = [e.param for e in mine]
            grads = [e.grad for e in mine]
            moms = [e.momentum for e in mine]
            if self._use_foreach(params):
                cs = torch._foreach_mul(moms, beta1)
                torch._foreach_add_(cs, grads, alpha=1.0 - beta1)
                if telemetry:
                    sums, revived = self._telemetry_sums(mine, cs)
                torch._foreach_sign_(cs)
                if wd != 0.0:  # lion-pytorch multiplies by 1.0 here: the same bits
                    torch._foreach_mul_(params, 1.0 - lr * wd)
                torch._foreach_add_(params, cs, alpha=-lr)
                torch._foreach_mul_(moms, beta2)
                torch._foreach_add_(moms, grads, alpha=1.0 - beta2)
            else:
                sums = []
                for e in mine:
                    c = torch.mul(e.momentum, beta1).add_(e.grad, alpha=1.0 - beta1)
                    if telemetry:
                        sums.append(_numbers(_step_sums(c, e.grad, e.momentum)))
                    c.sign_()
                    if wd != 0.0:
                        e.param.mul_(1.0 - lr * wd)
                    e.param.add_(c, alpha=-lr)
                    if not telemetry:
                        e.momentum.mul_(beta2).add_(e.grad, alpha=1.0 - beta2)
                if telemetry:
                    revived = self._revived(mine, sums)
                    for e in mine:
                        e.momentum.mul_(beta2).add_(e.grad, alpha=1.0 - beta2)
            if telemetry:
                all_sums += sums
                all_revived += revived
                ordered += mine
        if telemetry and ordered:
            self._record(ordered, all_sums, all_revived)
        return loss


# --- Enim ------------------------------------------------------------------------------------


class Enim(_SignOptimizer):
    r"""Enim: Lion with ``sign(c)`` replaced by a random turn of ``c`` by a set angle.

    ::

        c = beta1 * m + (1 - beta1) * g                      (over the whole model: dimension n)
        u = sqrt(n) (cos(t) c/|c| + sin(t) w)                 w uniform on the unit sphere orthogonal to c
        w <- w * (1 - lr * weight_decay) - lr * u             (each group's slice with its own lr)
        m <- beta2 * m + (1 - beta2) * g

    The seed paper's Definition 2 (Elistratov et al. 2024, "Lion's sign noise
    can make training more stable") with ``LNI(c) = B sign(B^T c)``, and the
    fixed-angle form its experiments run, with the angle calibrated to Lion's
    observed sign angle.  Lion's rule and conventions are those of
    :class:`Lion` (Chen et al. 2023; the paper's eq. (2) sign typo is not
    followed).  The numpy reference is :func:`lni_geometry.optim.enim_step`.

    Parameters
    ----------
    params, lr, betas, weight_decay, foreach, telemetry
        As in :class:`Lion`.
    angle : float, "lni", "lion" or callable
        The turn ``t``: a float in ``[0, pi]`` radians (``0``: normalised SGD
        with Lion's momentum, the paper's Norm SGD); ``"lni"``: drawn every
        step from the exact law of the bisector angle of a uniform point of
        ``S^(n-1)`` (as the bisector angle of ``n`` fresh normals from the
        generator), so that ``u`` has exactly the law of LNI, as
        :func:`lni_geometry.lni`; ``"lion"``: the angle Lion's sign would
        give on this ``c`` (``arccos(||c||_1 / (sqrt(nnz) ||c||_2))``),
        measured each step: Lion's angle in a random direction; a callable
        ``step -> angle`` (``step`` counts from 1).
    seed : int or None
        Seeds the ``torch.Generator`` (on the parameters' device) from which
        the directions (and the LNI angles) are drawn; ``None`` draws a seed
        (kept in :attr:`seed`).  The generator's state is saved in
        ``state_dict()``, so a resumed run continues identically.
    scope : {"model", "tensor"}
        ``"model"`` (the paper's): one rotation of the concatenated ``c`` of
        every parameter of every group.  ``"tensor"``: each tensor is turned
        on its own (its own direction, norm ``sqrt(n_k)``, and with
        ``"lion"``/``"lni"`` its own angle), for comparison.

    Notes
    -----
    Memory: one buffer of ``n`` entries (the Gaussian ``z``, in float32, or
    float64 when a parameter is float64) besides the momenta.  ``c`` is
    never stored: on the CPU (float32/float64) two fused kernels of
    :mod:`lni_geometry.optim_kernels` form it from ``m`` and ``g`` for the
    sums and again for the update; elsewhere it is formed one tensor at a
    time.  The update is ``alpha c + beta z`` with
    ``alpha = sqrt(n) (cos t / |c| - sin t (c.z) / (|c|^2 |w'|))``,
    ``beta = sqrt(n) sin t / |w'|``, ``|w'|^2 = z.z - (c.z)^2 / |c|^2``
    (the norm of the projection of ``z`` on the complement of ``c``), all
    sums in float64: the angle to ``c`` is ``t`` to about 1e-7 in float32.
    When ``c = 0`` the step applies weight decay only and the angle is ``nan``.
    ``n = 1`` has no orthogonal direction: a float angle other than 0 or pi
    is then an error.

    Attributes
    ----------
    telemetry, history, steps
        As in :class:`Lion`; ``"angle"`` is the turn applied (for
        ``scope="tensor"``, the angle between the whole update and ``c``),
        ``"sign_angle"`` the angle Lion's sign would have given.
    seed : int
        The generator's seed.

    Examples
    --------
    >>> import math, torch
    >>> from lni_geometry.torch import Enim
    >>> w = torch.nn.Parameter(torch.zeros(1000, dtype=torch.float64))
    >>> opt = Enim([w], lr=0.5, angle=0.3, seed=0, telemetry=True)
    >>> w.grad = torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> opt.step()
    >>> round(float(w.detach().norm()) / (0.5 * math.sqrt(1000)), 12), round(opt.telemetry["angle"], 12)
    (1.0, 0.3)
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, angle, seed=None,
                 scope="model", foreach=None, telemetry=False):
        angle = _check_angle(angle)
        if scope not in ENIM_SCOPES:
            raise ValueError(f"scope must be one of {ENIM_SCOPES}, got {scope!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, weight_decay=weight_decay)
        super().__init__(params, defaults, foreach, telemetry)
        self.angle = angle
        self.scope = scope
        devices = {p.device for g in self.param_groups for p in g["params"]}
        if len(devices) != 1:
            raise ValueError(f"Enim needs every parameter on one device, got {sorted(map(str, devices))}")
        self.device = devices.pop()
        self._generator = torch.Generator(device=self.device)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.seed = int(seed)
        self._generator.manual_seed(self.seed)
        self._z = None
        if scope == "tensor" and isinstance(angle, float) and angle not in (0.0, math.pi):
            for i, p in enumerate(p for g in self.param_groups for p in g["params"]):
                if p.numel() == 1:
                    raise ValueError(
                        f"scope='tensor' cannot turn parameter {i} (one entry, no orthogonal direction) "
                        f"by angle {angle!r}: use scope='model', or an angle of 0 or pi"
                    )

    # -- random draws (a method, so that tests can substitute a reference stream) --

    def _normal_(self, z):
        """Fill ``z`` with independent standard normals from the optimizer's generator."""
        z.normal_(generator=self._generator)

    def _lni_angle(self, buf):
        """Draw the turn of LNI in dimension ``n = buf.numel()``, using ``buf`` as scratch.

        The bisector angle of a standard Gaussian vector ``x`` of dimension ``n``
        (``cos t = ||x||_1 / (sqrt(n) ||x||_2)``), drawn from the optimizer's
        generator into ``buf``: exactly the law of
        :class:`lni_geometry.theory.BisectorAngle` ``(n)`` and of the turn of
        :func:`lni_geometry.lni` (the law of ``B sign(B^T c)``), on any device.
        """
        n = buf.numel()
        if n == 1:
            return 0.0
        self._normal_(buf)
        l1, l2sq, _ = _numbers(_c_sums(buf))
        return math.acos(min(1.0, l1 / math.sqrt(n * l2sq)))

    def _angle_for(self, l1, l2sq, nnz):
        angle = self.angle
        if angle == "lion":
            return math.acos(min(1.0, l1 / math.sqrt(nnz * l2sq))) if l2sq > 0 else math.nan
        if callable(angle):
            value = angle(self.steps)
            try:
                return _check_angle(value if not (callable(value) or isinstance(value, str)) else None)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"angle({self.steps}) returned {value!r}: {exc}") from None
        return angle

    # -- state --

    def _extra_state(self):
        return {"steps": self.steps, "seed": self.seed, "generator": self._generator.get_state()}

    def _load_extra_state(self, extra):
        super()._load_extra_state(extra)
        self.seed = int(extra["seed"])
        self._generator.set_state(extra["generator"])

    # -- the step --

    def _buffer(self, entries):
        n = sum(e.param.numel() for e in entries)
        dtype = torch.float64 if any(e.param.dtype == torch.float64 for e in entries) else torch.float32
        if self._z is None or self._z.numel() != n or self._z.dtype != dtype:
            self._z = torch.empty(n, dtype=dtype, device=self.device)
        views, start = [], 0
        for e in entries:
            k = e.param.numel()
            views.append(self._z[start : start + k].view(e.param.shape))
            start += k
        return views

    @staticmethod
    def _sums(e, z, beta1):
        """Pass 1 for one tensor: ``step_sums`` of ``c`` (6 numbers), then ``c . z``, ``z . z``."""
        if _fast(e.param, e.grad, e.momentum, z):
            return optim_kernels.enim_sums(_flat_numpy(e.momentum), _flat_numpy(e.grad), _flat_numpy(z), beta1)
        c = torch.mul(e.momentum, beta1).add_(e.grad, alpha=1.0 - beta1)
        return _numbers(_step_sums(c, e.grad, e.momentum)) + _numbers(_cross_sums(c, z))

    @staticmethod
    def _update(e, z, beta1, alpha, beta, lr, wd):
        """Pass 2 for one tensor: ``w <- w (1 - lr wd) - lr (alpha c + beta z)``."""
        if _fast(e.param, e.grad, e.momentum, z) and e.param.is_contiguous():
            optim_kernels.enim_update(_flat_numpy(e.param), _flat_numpy(e.momentum), _flat_numpy(e.grad),
                                      _flat_numpy(z), beta1, alpha, beta, lr, 1.0 - lr * wd)
            return
        if wd != 0.0:
            e.param.mul_(1.0 - lr * wd)
        c = torch.mul(e.momentum, beta1).add_(e.grad, alpha=1.0 - beta1)
        e.param.add_(z.mul_(beta).add_(c, alpha=alpha), alpha=-lr)

    @staticmethod
    def _coefficients(entries, blocks, angles, csums, xsums):
        """``(alpha, beta)`` per entry and ``u . c``; None if ``z`` must be drawn again."""
        coef = [None] * len(entries)
        along = 0.0
        for block, t in zip(blocks, angles):
            n = sum(entries[i].param.numel() for i in block)
            c2 = sum(csums[i][1] for i in block)
            cz = sum(xsums[i][0] for i in block)
            zz = sum(xsums[i][1] for i in block)
            alpha = beta = 0.0
            if c2 > 0.0:
                w2 = zz - cz * cz / c2  # |z projected on the complement of c|^2
                sin_t, cos_t = math.sin(t), math.cos(t)
                if n == 1:  # no orthogonal direction
                    if sin_t != 0.0 and t != math.pi:
                        raise ValueError(
                            f"a vector of dimension 1 has no orthogonal direction: Enim's angle must be "
                            f"0 or pi, got {t!r}"
                        )
                    alpha = cos_t / math.sqrt(c2)
                elif not w2 > 1e-12 * zz:
                    return None
                else:
                    wn = math.sqrt(w2)
                    alpha = math.sqrt(n) * (cos_t / math.sqrt(c2) - sin_t * cz / (c2 * wn))
                    beta = math.sqrt(n) * sin_t / wn
            along += alpha * c2 + beta * cz
            for i in block:
                coef[i] = (alpha, beta)
        return coef, along

    @torch.no_grad()
    def step(self, closure=None):
        """One Enim step over every parameter with a gradient; returns the closure's loss."""
        loss = self._closure(closure)
        entries = self._entries()
        self.steps += 1
        if not entries:
            return loss
        betas = [self.param_groups[e.group]["betas"] for e in entries]
        zs = self._buffer(entries)
        blocks = [list(range(len(entries)))] if self.scope == "model" else [[i] for i in range(len(entries))]
        sizes = [sum(entries[i].param.numel() for i in block) for block in blocks]
        if self.angle == "lni":  # drawn before the direction, in the same buffer
            angles = [self._lni_angle(self._z[:n]) for n in sizes]
        self._normal_(self._z)
        telemetry = self.telemetry_enabled

        # Pass 1: the sums of c (formed from m and g) and of z against c, one tensor at a time.
        sums = [self._sums(e, z, b[0]) for e, z, b in zip(entries, zs, betas)]
        tsums, csums, xsums = [s[:6] for s in sums], [s[:3] for s in sums], [s[6:] for s in sums]
        revived = self._revived(entries, tsums) if telemetry else None

        # The angle of each block (the model, or each tensor), then the coefficients of
        # u = alpha c + beta z.  A z (almost) parallel to c (probability 0, but a seed
        # equal to the gradient's can do it) is drawn again.
        if self.angle != "lni":
            angles = [self._angle_for(*(sum(csums[i][k] for i in block) for k in range(3)))
                      for block in blocks]
        for _ in range(100):
            coef = self._coefficients(entries, blocks, angles, csums, xsums)
            if coef is not None:
                break
            self._normal_(self._z)
            xsums = [self._sums(e, z, b[0])[6:] for e, z, b in zip(entries, zs, betas)]
        else:  # pragma: no cover - would need 100 degenerate Gaussian draws
            raise RuntimeError("could not draw a direction orthogonal to c")
        coef, along = coef
        n_all = sum(e.param.numel() for e in entries)
        c2_all = sum(s[1] for s in csums)
        if c2_all == 0.0:
            applied = math.nan
        elif self.scope == "model":
            applied = angles[0]
        else:
            applied = math.acos(max(-1.0, min(1.0, along / math.sqrt(n_all * c2_all))))

        # Pass 2: step the weights by u = alpha c + beta z, then the momenta.
        for e, z, (beta1, _), (alpha, beta) in zip(entries, zs, betas, coef):
            group = self.param_groups[e.group]
            self._update(e, z, beta1, alpha, beta, group["lr"], group["weight_decay"])
        for e, (_, beta2) in zip(entries, betas):
            e.momentum.mul_(beta2).add_(e.grad, alpha=1.0 - beta2)

        if telemetry:
            self._record(entries, tsums, revived, applied)
        return loss
