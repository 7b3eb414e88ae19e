"""The machinery Lion and Enim share: validation, fused sums, momentum state, telemetry, state_dict.

See :mod:`lni_geometry.torch` for the update rules and the telemetry they record.
"""

from __future__ import annotations

import functools
import math
import weakref

import numpy as np
import torch

from .. import optim_kernels
from ..geometry import budget_from_block_sums
from ..validation import ANGLE, LR, check_hyperparameters

__all__ = ["SignOptimizer", "REVIVED_FRACTION", "ENIM_ANGLE_NAMES", "ENIM_SCOPES", "isotropic_mean"]


#: A coordinate is "revived" when it gets a non-zero gradient while its momentum
#: is below this fraction of its group's momentum RMS (the seed paper, Fig. 4).
REVIVED_FRACTION = 1e-3

ENIM_SCOPES = ("model", "tensor")
ENIM_ANGLE_NAMES = ("lni", "lion")


# --- validation ------------------------------------------------------------------


def check_group(group):
    """A parameter group's ``lr``, ``betas`` and ``weight_decay`` (:mod:`lni_geometry.validation`)."""
    LR.check(group["lr"])
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    check_hyperparameters(group["lr"], betas[0], betas[1], group["weight_decay"])


def check_angle(angle):
    """Enim's angle: radians in [0, pi] (:data:`~lni_geometry.validation.ANGLE`), a name or a callable."""
    if callable(angle) and not isinstance(angle, str):
        return angle
    return ANGLE.check(angle, names=ENIM_ANGLE_NAMES, more="a callable")


@functools.lru_cache(maxsize=64)
def isotropic_mean(n):
    """Mean of the bisector angle of a uniform point of ``S^(n-1)`` (radians; ``nan`` for n < 2)."""
    if n < 2:
        return math.nan
    from ..theory import BisectorAngle

    return float(BisectorAngle(n).mean())


# --- fused kernels: numba on CPU float32/float64, torch elsewhere ----------------------

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def fast_path(*tensors):
    """CPU float32/float64 tensors: the numba kernels of :mod:`lni_geometry.optim_kernels` can read them."""
    return all(t.device.type == "cpu" and t.dtype in _NUMPY_DTYPES for t in tensors)


@functools.lru_cache(maxsize=None)
def torch_uses_fma(dtype):
    """:func:`optim_kernels.torch_uses_fma` for a torch dtype, checked once."""
    return optim_kernels.torch_uses_fma(_NUMPY_DTYPES[dtype])


def fused_step_path(e):
    """Whether Lion's fused kernel can step this entry and give torch's bits.

    CPU, one float32/float64 dtype for weights, gradient and momentum,
    contiguous weights and momentum (written through numpy views), and a torch
    whose ``add(x, alpha=)`` rounds once (:func:`torch_uses_fma`).
    """
    p, g, m = e.param, e.grad, e.momentum
    return (fast_path(p, g, m) and p.dtype == g.dtype == m.dtype and p.is_contiguous()
            and m.is_contiguous() and torch_uses_fma(p.dtype))


def flat_numpy(t):
    """A 1-D numpy view of a contiguous CPU tensor (a copy if it is not contiguous: read-only use)."""
    return t.detach().reshape(-1).numpy()


def mark_written(*tensors):
    """Bump the version counters of tensors written through numpy views.

    Torch counts in-place writes of its own operations; the kernels write
    behind its back.  Bumping keeps autograd's check of saved tensors (and
    :meth:`SignOptimizer._thresholds`' cache) honest.  One tensor per call:
    torch before 2.5 takes no list.
    """
    for t in tensors:
        torch.autograd.graph.increment_version(t)


def c_sums(c):
    if fast_path(c):
        return optim_kernels.c_sums(flat_numpy(c))
    c64 = c.detach().double()
    return torch.stack([c64.abs().sum(), (c64 * c64).sum(), (c != 0).sum().double()])


def momentum_sums(e, beta1, threshold, z=None, rounded=False):
    """The telemetry sums of one tensor before its step (see :func:`optim_kernels.momentum_sums`).

    ``(l1, l2sq, nnz)`` of ``c = beta1 m + (1 - beta1) g``, the counts
    ``(zero_grad, tracing, revived)``, and with ``z`` Enim's ``(c . z, z . z)``.
    On the CPU (float32/float64, one dtype) the fused kernel, with ``c``
    formed in float64 (as :func:`optim_kernels.enim_update` forms it) or with
    ``rounded`` as Lion's fused kernel forms it (torch's own rounding on CPUs
    with FMA); elsewhere torch, with ``c`` formed in the parameter's dtype as
    the torch update forms it, then summed in float64.  Where an optimizer
    steps with torch's operations on the CPU its ``c`` may differ from the
    summed one in the last bit.
    """
    m, g = e.momentum, e.grad
    if fast_path(m, g, *(() if z is None else (z,))) and m.dtype == g.dtype:
        return optim_kernels.momentum_sums(flat_numpy(m), flat_numpy(g), beta1, threshold,
                                           None if z is None else flat_numpy(z), rounded=rounded)
    # c as the update will form it (in the parameter's dtype), summed in float64
    c = torch.mul(m, beta1).add_(g, alpha=1.0 - beta1).double()
    m64 = m.double()
    gz = g == 0
    sums = [c.abs().sum(), (c * c).sum(), (c != 0).sum(), gz.sum(), (gz & (m != 0)).sum(),
            (~gz & (m64.abs() < threshold)).sum()]
    if z is not None:
        z64 = z.double()
        sums += [(c * z64).sum(), (z64 * z64).sum()]
    values = torch.stack([x.double() for x in sums]).tolist()
    return tuple(int(v) if 2 <= i <= 5 else v for i, v in enumerate(values))


def as_numbers(x):
    """A tuple of Python numbers from a tuple or a (device) tensor of sums."""
    return tuple(x.tolist()) if isinstance(x, torch.Tensor) else tuple(x)


# --- the shared machinery --------------------------------------------------------------


class Entry:
    """One parameter with a gradient in one step: where it is and its tensors."""

    __slots__ = ("group", "index", "param", "grad", "momentum")

    def __init__(self, group, index, param, grad, momentum):
        self.group, self.index, self.param, self.grad, self.momentum = group, index, param, grad, momentum


class SignOptimizer(torch.optim.Optimizer):
    """Lion's shared machinery: groups, momentum state, telemetry, state_dict extras."""

    def __init__(self, params, defaults, foreach, telemetry):
        check_group(defaults)
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
        # id(momentum) -> (weak reference to it, version, ||m||^2): see _thresholds
        self._momentum_sq = {}

    def add_param_group(self, param_group):
        merged = dict(self.defaults)
        merged.update(param_group)
        check_group(merged)
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
                out.append(Entry(gi, i, p, p.grad, state["exp_avg"]))
        return out

    def _use_foreach(self, tensors):
        if self.foreach is not None:
            return self.foreach
        return all(t.device.type == "cuda" for t in tensors)

    # -- telemetry --

    def _thresholds(self, entries):
        """Per group: :data:`REVIVED_FRACTION` times the RMS of the momenta (before the step).

        A momentum's squared norm comes from the previous step's fused kernel
        when the momentum has not been written since (its version counter
        says so), else from one pass over it.  Writes that bypass the version
        counter (through ``.data`` or a numpy view of the state) are not seen:
        call :meth:`forget_momentum_norms` after them.
        """
        m2, count = {}, {}
        for e in entries:
            cached = self._momentum_sq.get(id(e.momentum))
            if cached is not None and cached[0]() is e.momentum and cached[1] == e.momentum._version:
                value = cached[2]
            else:
                value = as_numbers(c_sums(e.momentum))[1]
            m2[e.group] = m2.get(e.group, 0.0) + value
            count[e.group] = count.get(e.group, 0) + e.param.numel()
        return {gi: REVIVED_FRACTION * math.sqrt(m2[gi] / count[gi]) for gi in m2}

    def _remember_momentum_sq(self, e, value):
        """Keep ``||m||^2`` of a momentum just written by a kernel, for the next step's threshold."""
        self._momentum_sq[id(e.momentum)] = (weakref.ref(e.momentum), e.momentum._version, value)

    def forget_momentum_norms(self):
        """Drop the momenta's squared norms kept for the telemetry's ``revived`` threshold.

        Needed only after writing the optimizer's momenta in a way torch's
        version counter does not see (``state["exp_avg"].data[...] = ...``, a
        numpy view); the next step then measures them again.
        """
        self._momentum_sq.clear()

    def _record(self, entries, sums, angle=None):
        """Build and keep the step's telemetry from per-tensor :func:`momentum_sums`.

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
                "revived": int(s[5]),
            }
            for e, k, s in zip(entries, n_t, sums)
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
        self._momentum_sq.clear()
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
