"""Lion (Chen et al. 2023) as a torch optimizer, bit for bit lion-pytorch's, with telemetry."""

from __future__ import annotations

import torch

from .base import SignOptimizer, momentum_sums

__all__ = ["Lion"]


class Lion(SignOptimizer):
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
        if self.telemetry_enabled and entries:  # measured before anything moves
            threshold = self._thresholds(entries)
            sums = [momentum_sums(e, self.param_groups[e.group]["betas"][0], threshold[e.group]) for e in entries]
            self._record(entries, sums)
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
                torch._foreach_sign_(cs)
                if wd != 0.0:  # lion-pytorch multiplies by 1.0 here: the same bits
                    torch._foreach_mul_(params, 1.0 - lr * wd)
                torch._foreach_add_(params, cs, alpha=-lr)
                torch._foreach_mul_(moms, beta2)
                torch._foreach_add_(moms, grads, alpha=1.0 - beta2)
            else:
                for e in mine:
                    c = torch.mul(e.momentum, beta1).add_(e.grad, alpha=1.0 - beta1)
                    c.sign_()
                    if wd != 0.0:
                        e.param.mul_(1.0 - lr * wd)
                    e.param.add_(c, alpha=-lr)
                    e.momentum.mul_(beta2).add_(e.grad, alpha=1.0 - beta2)
        return loss
