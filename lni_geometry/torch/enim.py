"""Enim (the seed paper's Definition 2) as a torch optimizer: Lion's sign replaced by a set turn."""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch

from .. import optim_kernels
from .base import (ENIM_SCOPES, SignOptimizer, as_numbers, c_sums, check_angle, fast_path, flat_numpy,
                   fused_step_path, mark_written, momentum_sums)

__all__ = ["Enim"]


class PendingDraw(NamedTuple):
    """The ``z`` an update drew ahead for the next step: its Philox key, the tensors it
    was drawn for (``Enim._layout``), and whether the buffer holds it (False after
    ``load_state_dict``: the buffer is not saved, the key is)."""

    key: tuple
    layout: tuple
    filled: bool


class Enim(SignOptimizer):
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
    params, lr, betas, weight_decay, telemetry
        As in :class:`Lion`.
    foreach : bool or None
        ``None`` (default): the fused kernels on the CPU (float32/float64).
        ``True`` / ``False``: torch's operations for the weight and momentum
        update, one tensor at a time either way (the sums over every tensor
        must precede any update); on the CPU the sums and ``z`` still come
        from the numba kernels (``momentum_sums``, ``fill_normals``).
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
        (kept in :attr:`seed`).  On the CPU each draw takes two 32-bit words
        from the generator as the Philox key of the package's Gaussian
        stream (:func:`lni_geometry.optim_kernels.fill_normals`: tensor
        ``i``'s slice of ``z`` is sample ``i`` of that key, the numbers of
        :func:`lni_geometry.sample_vectors`, ``|z| <= 6.7637``); elsewhere
        torch's ``normal_`` draws from the generator.  The generator's state
        is saved in ``state_dict()``, so a resumed run continues identically.
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
    :mod:`lni_geometry.optim_kernels` make the step: the first pass sums
    ``c`` (formed from ``m`` and ``g``) against ``z``, the second forms ``c``
    again, steps the weights, updates the momentum as Lion's kernel does and
    draws the next step's ``z`` into the buffer while each tile is in cache
    (its key is saved in ``state_dict()``); the first step draws its ``z``
    in the first pass.
    Elsewhere torch's operations, one tensor at a time.  The update is ``alpha c + beta z`` with
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
        angle = check_angle(angle)
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
        #: The z drawn ahead by the last update (see :meth:`_first_pass`), or None.
        self._pending = None
        if scope == "tensor" and isinstance(angle, float) and angle not in (0.0, math.pi):
            for i, p in enumerate(p for g in self.param_groups for p in g["params"]):
                if p.numel() == 1:
                    raise ValueError(
                        f"scope='tensor' cannot turn parameter {i} (one entry, no orthogonal direction) "
                        f"by angle {angle!r}: use scope='model', or an angle of 0 or pi"
                    )

    # -- random draws --------------------------------------------------------------------
    #
    # On the CPU every draw is keyed by two words from the optimizer's torch.Generator and
    # made by the package's counter-based Gaussian (lni_geometry.optim_kernels: fill_normals,
    # enim_draw, normal_sums): the same Philox stream as sample_vectors, several times
    # faster than torch's normal_.  Elsewhere torch's normal_ with the generator.

    #: Draw ``z`` in the fused first pass on the CPU.  A subclass that substitutes
    #: :meth:`_normal_` (a reference stream, in the tests) sets it to False.
    FUSED_DRAWS = True

    def _draw_key(self):
        """Two 32-bit words from the optimizer's generator: the Philox key of one draw."""
        k = torch.randint(0, 2**32, (2,), generator=self._generator, dtype=torch.int64, device=self.device)
        return tuple(int(x) for x in k.tolist())

    def _normal_(self, zs):
        """Fill the slices ``zs`` of the buffer (one per tensor) with independent standard normals.

        On the CPU slice ``i`` is Gaussian sample ``i`` under one key from the
        generator, as the fused first pass draws it; elsewhere torch's
        ``normal_`` on the whole buffer.
        """
        if self.device.type == "cpu":
            key = self._draw_key()
            for i, z in enumerate(zs):
                optim_kernels.fill_normals(flat_numpy(z), key, i)
        else:
            self._z.normal_(generator=self._generator)

    def _lni_angle(self, n):
        """Draw the turn of LNI in dimension ``n``.

        The bisector angle of a standard Gaussian vector ``x`` of dimension ``n``
        (``cos t = ||x||_1 / (sqrt(n) ||x||_2)``), drawn with the optimizer's
        generator: exactly the law of :class:`lni_geometry.theory.BisectorAngle`
        ``(n)`` and of the turn of :func:`lni_geometry.lni` (the law of
        ``B sign(B^T c)``), on any device.  On the CPU ``x`` is never stored
        (:func:`optim_kernels.normal_sums`); elsewhere it is drawn into the
        buffer of ``z``.
        """
        if n == 1:
            return 0.0
        if self.device.type == "cpu":
            l1, l2sq = optim_kernels.normal_sums(n, self._draw_key())
        else:
            buf = self._z[:n]
            buf.normal_(generator=self._generator)
            l1, l2sq, _ = as_numbers(c_sums(buf))
        return math.acos(min(1.0, l1 / math.sqrt(n * l2sq)))

    def _angle_for(self, l1, l2sq, nnz):
        angle = self.angle
        if angle == "lion":
            return math.acos(min(1.0, l1 / math.sqrt(nnz * l2sq))) if l2sq > 0 else math.nan
        if callable(angle):
            value = angle(self.steps)
            try:
                return check_angle(value if not (callable(value) or isinstance(value, str)) else None)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"angle({self.steps}) returned {value!r}: {exc}") from None
        return angle

    # -- state --

    def _extra_state(self):
        pending = None if self._pending is None else {"key": self._pending.key, "layout": self._pending.layout}
        return {"steps": self.steps, "seed": self.seed, "generator": self._generator.get_state(), "pending": pending}

    def _load_extra_state(self, extra):
        super()._load_extra_state(extra)
        self.seed = int(extra["seed"])
        self._generator.set_state(extra["generator"])
        pending = extra.get("pending")
        # the buffer is not saved: the next step draws it again from the key
        self._pending = None if pending is None else PendingDraw(tuple(pending["key"]), tuple(pending["layout"]), False)

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

    def _fused_update(self, e, z):
        """Whether the fused kernel steps this tensor (not with an explicit ``foreach``)."""
        return self.foreach is None and fused_step_path(e) and z.dtype == e.param.dtype

    def _update(self, e, z, beta1, beta2, alpha, beta, lr, wd, telemetry, next_key=None, sample=0):
        """Pass 2 for one tensor: ``w <- w (1 - lr wd) - lr (alpha c + beta z)``, then the momentum
        (and, fused, with ``next_key``, the next step's ``z``: sample ``sample`` of that key).

        Returns the new momentum's ``||m||^2`` when the fused kernel computed it
        (with ``telemetry``), else None.
        """
        if self._fused_update(e, z):
            out = optim_kernels.enim_update(flat_numpy(e.param), flat_numpy(e.momentum), flat_numpy(e.grad),
                                            flat_numpy(z), beta1, beta2, alpha, beta, lr, wd, telemetry,
                                            next_key, sample)
            mark_written(e.param, e.momentum)
            return out
        if wd != 0.0:
            e.param.mul_(1.0 - lr * wd)
        c = torch.mul(e.momentum, beta1).add_(e.grad, alpha=1.0 - beta1)
        e.param.add_(z.mul_(beta).add_(c, alpha=alpha), alpha=-lr)
        e.momentum.mul_(beta2).add_(e.grad, alpha=1.0 - beta2)
        return None

    def _fused_draws(self, entries):
        """Whether ``z`` is drawn by the fused kernels (CPU, momenta and gradients of one float dtype)."""
        return self.FUSED_DRAWS and self.foreach is None and self.device.type == "cpu" and all(
            fast_path(e.momentum, e.grad) and e.momentum.dtype == e.grad.dtype for e in entries)

    def _layout(self, entries):
        """What a z drawn ahead was drawn for: the tensors (position, size) and the buffer's dtype."""
        return tuple((e.index, e.param.numel()) for e in entries) + (str(self._z.dtype),)

    def _first_pass(self, entries, zs, betas, threshold, fresh=False):
        """Draw ``z`` (or take the one the last update drew ahead) and return per tensor the
        sums of :func:`momentum_sums` with ``z``.

        On the CPU the fused update of step ``k`` draws step ``k + 1``'s ``z``
        (key from the generator, tensor ``i``'s slice = sample ``i``); this
        pass then only reads it.  Without such a ``z``
        (the first step, a change of which tensors have gradients, ``fresh``)
        the fused draw makes ``z`` and the sums in one pass; elsewhere
        :meth:`_normal_`, then the sums.
        """
        thr = [threshold.get(e.group) for e in entries]  # None: no counts (telemetry off)
        pending, self._pending = self._pending, None
        if not self._fused_draws(entries):
            self._normal_(zs)
            return [momentum_sums(e, b[0], 0.0 if t is None else t, z) for e, z, b, t in zip(entries, zs, betas, thr)]
        if pending is not None and not fresh and pending.layout == self._layout(entries):
            key = pending.key
            if not pending.filled:  # after load_state_dict: the buffer is drawn again from its key
                for i, z in enumerate(zs):
                    optim_kernels.fill_normals(flat_numpy(z), key, i)
            return [optim_kernels.momentum_sums(flat_numpy(e.momentum), flat_numpy(e.grad), b[0],
                                                0.0 if t is None else t, flat_numpy(z), counts=t is not None)
                    for e, z, b, t in zip(entries, zs, betas, thr)]
        key = self._draw_key()
        return [optim_kernels.enim_draw(flat_numpy(z), flat_numpy(e.momentum), flat_numpy(e.grad), b[0], key, i, t)
                for i, (e, z, b, t) in enumerate(zip(entries, zs, betas, thr))]

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
                elif not w2 > 1e-8 * zz:  # |sin(z, c)| < 1e-4: u would lose digits
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
        if self.angle == "lni":  # drawn before the direction
            angles = [self._lni_angle(n) for n in sizes]
        telemetry = self.telemetry_enabled

        # Pass 1: draw z; the sums of c (formed from m and g) and of z against c.
        threshold = self._thresholds(entries) if telemetry else {}
        sums = self._first_pass(entries, zs, betas, threshold)
        csums, xsums = [s[:3] for s in sums], [s[6:8] for s in sums]

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
            xsums = [s[6:8] for s in self._first_pass(entries, zs, betas, {}, fresh=True)]
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

        # Pass 2: step the weights by u = alpha c + beta z, and the momenta; fused, draw the
        # next step's z on the way.
        ahead = self._fused_draws(entries) and all(self._fused_update(e, z) for e, z in zip(entries, zs))
        next_key = self._draw_key() if ahead else None
        for i, (e, z, (beta1, beta2), (alpha, beta)) in enumerate(zip(entries, zs, betas, coef)):
            group = self.param_groups[e.group]
            m2 = self._update(e, z, beta1, beta2, alpha, beta, group["lr"], group["weight_decay"], telemetry,
                              next_key, i)
            if m2 is not None:
                self._remember_momentum_sq(e, m2)
        if ahead:
            self._pending = PendingDraw(next_key, self._layout(entries), True)

        if telemetry:
            self._record(entries, [s[:6] for s in sums], applied)
        return loss
