"""Lion (Chen et al. 2023) as a torch optimizer, bit for bit lion-pytorch's, with telemetry."""

from __future__ import annotations

import numpy as np
import torch

from .. import optim_kernels
from .base import REVIVED_FRACTION, SignOptimizer, mark_written, torch_counts, torch_momentum_sums

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
    rounding, in every dtype and with ``foreach`` ``None``, ``True`` or
    ``False``.  On the CPU (float32/float64, one process or replicated as
    under DDP) the step is one launch over every tensor
    (:class:`lni_geometry.optim_kernels.LionStep`):
    a pass that checks ``m`` and ``g`` (or sums the telemetry), then, if
    ``c`` is finite, one pass over the weights, gradients and momenta with
    those same roundings (making, with telemetry, its three counts); with mixed dtypes
    or sharded parameters the two passes are two launches; elsewhere (CUDA,
    bfloat16, float16, non-contiguous tensors, a torch without FMA kernels)
    the step runs torch's operations.  The paper's eq. (2) sign typo is
    documented in :mod:`lni_geometry.torch`.

    **Non-finite gradients.**  A step whose ``c`` has an inf or a nan (in a
    gradient or a momentum) raises :class:`~lni_geometry.torch.NonFiniteError` naming the
    parameters, before anything is written: weights, momenta and ``steps``
    are as they were.  lion-pytorch steps on silently there: ``sign(nan) =
    0`` freezes the coordinate while its momentum stays nan for every later
    step, and ``sign(inf)`` moves it by a full step; the error says so at
    once, where a skipped or clipped step is the caller's choice.
    ``torch.amp.GradScaler`` skips such steps before the optimizer sees them,
    so mixed-precision training is unaffected.

    Parameters
    ----------
    params : iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (parameter groups)
        Real floating tensors (float16, bfloat16, float32, float64; others
        are refused at construction).  With names (``model.named_parameters()``)
        the telemetry and the errors name the tensors.
    lr : float or tensor, default 1e-4
        ``>= 0`` (``0``, as torch's optimizers take it: a warm-up's first
        step moves the momenta only; a one-element tensor is read as a float
        each step).  Each group may set its own ``lr``, ``betas``,
        ``weight_decay``.
    betas : (float, float), default (0.9, 0.99)
        ``beta1`` (interpolation for the sign) and ``beta2`` (momentum decay), in ``[0, 1)``.
    weight_decay : float, default 0
        ``>= 0``, multiplied by ``lr`` and applied to the weights before the
        step: ``w <- w (1 - lr weight_decay)``.
    decoupled_weight_decay : bool, default False
        lion-pytorch's option: each group's ``weight_decay`` divided by the
        ``lr`` given at construction (:attr:`initial_lr`, which must then be
        ``> 0``), so that ``w <- w (1 - (lr / initial_lr) weight_decay)``: the
        decay follows a schedule's shape, not the lr's scale.
    foreach : bool or None
        ``None`` (default): the fused kernels where they apply, torch's
        ``_foreach`` operations on CUDA.  ``True`` / ``False``: step with
        torch's operations, ``_foreach`` (one call per group) or per tensor.
        The same numbers every way.
    telemetry : bool, default False
        Record after every step the dict :attr:`telemetry` (and keep it in
        :attr:`history`); off, it costs nothing.
    history : bool or int, default True
        The steps whose telemetry :attr:`history` keeps: all (``True``),
        none (``False``) or the last ``history``.
    callback : callable, optional
        Called with each step's telemetry dict (a logger's hook).
    process_group : ProcessGroup, None or False
        Under ``torch.distributed`` (:mod:`lni_geometry.torch.distributed`):
        ``None`` (default) finds it: the device mesh's group of DTensor
        parameters (FSDP2), else the default group once
        ``torch.distributed`` is initialised (the parameters then are
        replicated, as under DDP, or spread with ``all_params``), else one
        process; ``False``: this process alone.  Sharded, the telemetry is
        the whole model's, summed over the ranks, and a non-finite ``c`` on
        any rank is refused on every rank.  An optimizer given a group here
        (other than its DTensors' own) cannot be copied or pickled: process
        groups do not pickle.
    all_params : iterable of tensors or of (name, tensor) pairs, optional
        Every parameter of the model in one process's order, where each
        rank's optimizer steps some of them
        (``ZeroRedundancyOptimizer(model.parameters(), optimizer_class=Lion,
        all_params=list(model.named_parameters()))``): their global places.

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
          before the step (the paper's Fig. 4, center left; 0 while the RMS
          is 0);
        - ``"nonfinite"``: 0 (a step that finds non-finite coordinates is
          refused; its record has ``"refused": True``, ``"nonfinite"``, the
          count, and ``"nonfinite_per_tensor"``, the counts of
          :attr:`~lni_geometry.torch.NonFiniteError.counts`);
        - ``"per_tensor"``: per parameter, ``index`` (its position over all
          groups, as in ``state_dict``), ``name`` (or None), ``group``,
          ``shape``, ``n``, ``zero_grad``, ``tracing``, ``revived``.
    history : list or deque of dict
        The telemetry of the steps kept (see the ``history`` parameter).
    steps : int
        Steps taken; saved in ``state_dict()``.
    decoupled_weight_decay : bool
        The parameter of that name.
    initial_lr : float
        The ``lr`` given at construction, which ``decoupled_weight_decay``
        divides by (not the ``"initial_lr"`` of a group, which torch's
        schedulers set).

    Notes
    -----
    What torch users expect of an optimizer holds: ``copy.deepcopy``,
    ``pickle`` and ``torch.save`` give an optimizer that steps exactly like
    the original; ``torch.compile`` of a training step runs ``step()``
    outside the graph (it is marked ``torch.compiler.disable``: one graph
    break, eager's numbers); the state dict loads with
    ``torch.load(weights_only=True)``, its hooks see the package's entry
    ``"lni_geometry"`` (``steps``), and a :class:`~lni_geometry.torch.Enim` state dict loads
    into Lion (and the reverse).  The first step of each code path on an
    empty numba cache compiles its kernels (seconds, once; cached on disk
    after that).

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

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, foreach=None, telemetry=False,
                 history=True, callback=None, process_group=None, all_params=None, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, weight_decay=weight_decay)
        super().__init__(params, defaults, foreach, telemetry, history, callback, process_group, all_params,
                         decoupled_weight_decay)

    @torch.compiler.disable
    @torch.no_grad()
    def step(self, closure=None):
        """One Lion step over every parameter with a gradient; returns the closure's loss.

        Raises
        ------
        lni_geometry.torch.NonFiniteError
            If ``c`` has an inf or a nan; nothing is changed.
        """
        loss = self._closure(closure)
        st = self._step_tensors()
        sharded = self._sharded()
        telemetry = self.telemetry_enabled and (len(st) > 0 or sharded)
        whole = None if sharded or self.foreach is not None else st.whole()
        if whole is not None:
            self._step_in_one_launch(st, whole, telemetry)
            return loss
        summed, rest = st.fused, st.rest(st.fused)  # the kernels sum CPU float32/float64, whatever steps them

        # Before anything is written: the telemetry's sums, or the count of non-finite
        # entries of m and g; either finds a non-finite c (summed over the ranks when sharded).
        try:
            table = self._before_writing(st, telemetry, summed, rest)
        except BaseException:  # a refused step changes nothing: not even the momenta it created
            st.forget_created()
            raise

        fused = st.rounding() if self.foreach is None else {}  # where the kernel's step has torch's bits
        # the telemetry's counts are made by the update, from the m and g it reads (the revived
        # threshold from the momenta's norms summed before writing)
        threshold = self._thresholds_from(st, table, table.sums[:, 3]) if telemetry else None

        def update():
            counts = np.zeros((len(st), 3))
            for which in fused.values():
                made = optim_kernels.lion_update_many(st.arrays(which, ("p", "m", "g")), st.beta1[which],
                                                      st.beta2[which], st.lr[which], st.weight_decay[which],
                                                      None if threshold is None else threshold[which])
                mark_written(st.written(which))
                if made is not None:
                    counts[which] = made
            rest = st.rest(fused)
            for gi in sorted({st.groups[i] for i in rest}):
                mine = [i for i in rest if st.groups[i] == gi]
                if telemetry:
                    counts[mine] = torch.stack([torch_counts(st.moms[i], st.grads[i], float(threshold[i]))
                                                for i in mine]).cpu().numpy()
                i0 = mine[0]
                self._torch_step([st.params[i] for i in mine], [st.grads[i] for i in mine],
                                 [st.moms[i] for i in mine],
                                 *(float(x[i0]) for x in (st.lr, st.weight_decay, st.beta1, st.beta2)))
            return counts

        # sharded with telemetry, the counts are gathered next: a rank's error reaches the others there
        counts = self._local(st, update, 3, writing=True) if telemetry else update()
        gathered = self._gather(st, counts).sums if telemetry and table.index else None
        self.steps += 1
        if gathered is not None:
            self._record(table._replace(sums=np.concatenate([table.sums[:, :3], gathered], axis=1)))
        return loss

    def _step_in_one_launch(self, st, which, telemetry):
        """The step where the kernel takes every entry (one process, one dtype with torch's
        bits): :class:`optim_kernels.LionStep` (prepared once per layout and settings) checks
        ``c``, sums the telemetry and updates in one launch; a non-finite ``c`` is refused as in
        the other path."""
        launch = st.layout.latest("lion step", (telemetry, st.settings), lambda: optim_kernels.LionStep(
            st.arrays(which, ("p", "m", "g")), st.beta1, st.beta2, st.lr, st.weight_decay,
            groups=st.groups if telemetry else None, fraction=REVIVED_FRACTION))
        try:
            written, rows = launch(st.grad_addresses())
            if not written:
                table = self._gather(st, rows[:, :1] if telemetry else rows[:, :2].sum(axis=1, keepdims=True))
                column = table.sums[:, 0]
                self._refuse(st, table, np.flatnonzero(~np.isfinite(column) if telemetry else column).tolist())
        except BaseException:  # a refused step changes nothing: not even the momenta it created
            st.forget_created()
            raise
        mark_written(st.written(which))
        self.steps += 1
        if telemetry:
            self._record(self._gather(st, rows[:, :6]))

    def _before_writing(self, st, telemetry, summed, rest):
        """The step's :class:`~lni_geometry.torch.base.StepTable`, over the ranks when sharded: with
        telemetry, the sums of :data:`optim_kernels.SUMS` ``l1, l2sq, nnz`` and ``||m||_2^2`` (the
        revived threshold's; the update makes the counts); without, the non-finite counts of ``m``
        and ``g``.  Raises :class:`~lni_geometry.torch.NonFiniteError` if ``c`` is not finite."""
        if telemetry:
            def local():
                # z = m: the sums' c . z and z . z are then c . m and ||m||_2^2, in the same pass
                sums = np.zeros((len(st), len(optim_kernels.SUMS)))
                for which in summed.values():
                    sums[which] = optim_kernels.momentum_sums_many(st.arrays(which, ("m", "g", "m")),
                                                                   st.beta1[which], rounded=True, counts=False)
                if rest:
                    sums[rest] = torch.stack([torch_momentum_sums(st.moms[i], st.grads[i], float(st.beta1[i]), 0.0,
                                                                  z=st.moms[i], counts=False).cpu()
                                              for i in rest]).numpy()
                return sums[:, [0, 1, 2, 7]]

            table = self._gather(st, self._local(st, local, 4))
            l1 = table.sums[:, 0]
            bad = [] if np.isfinite(l1).all() else np.flatnonzero(~np.isfinite(l1)).tolist()
        else:
            def local():
                nonfinite = np.zeros(len(st))
                for which in summed.values():
                    nonfinite[which] = optim_kernels.finite_many(st.arrays(which, ("m", "g"))).sum(axis=1)
                if rest:
                    bad_m = [(~torch.isfinite(st.moms[i])).sum() for i in rest]
                    bad_g = [(~torch.isfinite(st.grads[i])).sum() for i in rest]
                    nonfinite[rest] = (torch.stack(bad_m) + torch.stack(bad_g)).cpu().numpy()
                return nonfinite[:, None]

            table = self._gather(st, self._local(st, local))
            nonfinite = table.sums[:, 0]
            bad = np.flatnonzero(nonfinite).tolist() if nonfinite.any() else []
        if bad:
            self._refuse(st, table, bad)
        return table

    def _torch_step(self, params, grads, moms, lr, wd, beta1, beta2):
        """Lion's step with torch's operations (lion-pytorch's, in order), ``_foreach`` or per tensor.

        The ``_foreach`` path multiplies out of place and copies back: torch's
        in-place ``_foreach_mul_`` rounds a scalar product differently from
        ``mul_`` in bfloat16 and float16 (measured: 4 in 10 entries differ in
        the last bit), and these are the bits of ``mul_``.
        """
        if self._use_foreach(params):
            cs = torch._foreach_mul(moms, beta1)
            torch._foreach_add_(cs, grads, alpha=1.0 - beta1)
            torch._foreach_sign_(cs)
            if wd != 0.0:  # lion-pytorch multiplies by 1.0 here: the same bits
                torch._foreach_copy_(params, torch._foreach_mul(params, 1.0 - lr * wd))
            torch._foreach_add_(params, cs, alpha=-lr)
            new = torch._foreach_mul(moms, beta2)
            torch._foreach_add_(new, grads, alpha=1.0 - beta2)
            torch._foreach_copy_(moms, new)
            return
        for p, g, m in zip(params, grads, moms):
            c = torch.mul(m, beta1).add_(g, alpha=1.0 - beta1)
            c.sign_()
            if wd != 0.0:
                p.mul_(1.0 - lr * wd)
            p.add_(c, alpha=-lr)
            m.mul_(beta2).add_(g, alpha=1.0 - beta2)
