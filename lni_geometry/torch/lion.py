"""Lion (Chen et al. 2023) as a torch optimizer, bit for bit lion-pytorch's, with telemetry."""

from __future__ import annotations

import torch

from .. import optim_kernels
from .base import SignOptimizer, flat_numpy, fused_step_path, mark_written, momentum_sums

__all__ = ["Lion"]


class Lion(SignOptimizer):
    r"""Lion (Chen et al. 2023) with the sign-angle and momentum-tracing telemetry.

    ::

        c = beta1 * m + (1 - beta1) * g
        w <- w * (1 - lr * weight_decay) - lr * sign(c)        # sign(0) = 0
        m <- beta2 * m + (1 - beta2) * g

    Bit for bit lucidrains/lion-pytorch's ``Lion`` (``lion_pytorch.Lion``,
    whose ``mul_``/``add_`` operations round ``beta1 m + (1 - beta1) g`` and
    the momentum update once each, as a fused multiply-add, on CPUs with
    FMA; its ``foreach`` variant uses ``lerp_`` for the momentum and differs
    in the last bits), and :func:`lni_geometry.optim.lion_step` up to
    rounding.  On the CPU (float32/float64) one fused kernel,
    :func:`lni_geometry.optim_kernels.lion_update`, computes those same
    roundings in one pass over the weights, gradient and momentum (with the
    telemetry in the same pass); elsewhere (CUDA, bfloat16, a torch without
    FMA kernels) the step runs torch's operations.  The paper's eq. (2)
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
        ``None`` (default): the fused kernel where it applies, torch's
        ``_foreach`` operations on CUDA.  ``True`` / ``False``: step with
        torch's operations, ``_foreach`` (one call per group) or per tensor.
        The same numbers every way.
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
          (the paper's Fig. 4, center left; 0 while the RMS is 0; the RMS is
          kept from the step that wrote the momenta, see
          :meth:`forget_momentum_norms`);
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
        telemetry = self.telemetry_enabled and bool(entries)
        threshold = self._thresholds(entries) if telemetry else {}
        sums = [None] * len(entries)
        for gi, group in enumerate(self.param_groups):
            mine = [i for i, e in enumerate(entries) if e.group == gi]
            if not mine:
                continue
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            fused = [i for i in mine if self.foreach is None and fused_step_path(entries[i])]
            for i in fused:  # one pass: the step and its telemetry
                e = entries[i]
                out = optim_kernels.lion_update(
                    flat_numpy(e.param), flat_numpy(e.momentum), flat_numpy(e.grad), beta1, beta2, lr, wd,
                    threshold[gi] if telemetry else None)
                mark_written(e.param, e.momentum)
                if telemetry:
                    sums[i] = out[:6]
                    self._remember_momentum_sq(e, out[8])
            rest = [entries[i] for i in mine if i not in fused]
            if not rest:
                continue
            if telemetry:  # measured before anything moves
                for i in mine:
                    if i not in fused:
                        sums[i] = momentum_sums(entries[i], beta1, threshold[gi], rounded=True)
            self._torch_step(rest, lr, wd, beta1, beta2)
        if telemetry:
            self._record(entries, sums)
        return loss

    def _torch_step(self, entries, lr, wd, beta1, beta2):
        """Lion's step with torch's operations (lion-pytorch's, in order), ``_foreach`` or per tensor."""
        params = [e.param for e in entries]
        grads = [e.grad for e in entries]
        moms = [e.momentum for e in entries]
        if self._use_foreach(params):
            cs = torch._foreach_mul(moms, beta1)
            torch._foreach_add_(cs, grads, alpha=1.0 - beta1)
            torch._foreach_sign_(cs)
            if wd != 0.0:  # lion-pytorch multiplies by 1.0 here: the same bits
                torch._foreach_mul_(params, 1.0 - lr * wd)
            torch._foreach_add_(params, cs, alpha=-lr)
            torch._foreach_mul_(moms, beta2)
            torch._foreach_add_(moms, grads, alpha=1.0 - beta2)
            return
        for e in entries:
            c = torch.mul(e.momentum, beta1).add_(e.grad, alpha=1.0 - beta1)
            c.sign_()
            if wd != 0.0:
                e.param.mul_(1.0 - lr * wd)
            e.param.add_(c, alpha=-lr)
            e.momentum.mul_(beta2).add_(e.grad, alpha=1.0 - beta2)
