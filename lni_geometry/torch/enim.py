"""Enim (the seed paper's Definition 2) as a torch optimizer: Lion's sign replaced by a set turn."""

from __future__ import annotations

import hashlib
import math
import numbers
import secrets
from typing import NamedTuple

import numpy as np
import torch

from .. import optim_kernels
from .base import ENIM_SCOPES, STATE_KEY, SignOptimizer, check_angle, mark_written, torch_momentum_sums

__all__ = ["Enim"]


class PendingDraw(NamedTuple):
    """The ``z`` an update drew ahead for the next step: its Philox key, the tensors it
    was drawn for (``Enim._layout``), and whether the buffer holds it (False after
    ``load_state_dict`` or a copy: the buffer is not saved, the key is)."""

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
    params, lr, betas, weight_decay, decoupled_weight_decay, telemetry, history, callback
        As in :class:`Lion`.
    foreach : bool or None
        ``None`` (default): the fused kernels on the CPU (float32/float64).
        ``True`` / ``False``: torch's operations for the weight and momentum
        update, one tensor at a time either way (the sums over every tensor
        must precede any update); on the CPU the sums and ``z`` still come
        from the numba kernels (``momentum_sums``, ``fill_normals``).  Those
        operations round ``c`` and ``u`` in the parameters' dtype, where the
        kernels form them in float64 and round the weight once: a step's
        weights agree to the dtype's precision, not bit for bit (its momenta
        do: the same update).
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
        Seeds the CPU ``torch.Generator`` from which the keys of the
        directions (and of the LNI angles) are drawn; ``None`` draws a seed
        from the operating system's entropy (kept in :attr:`seed`; torch's
        global random state is not touched; under ``torch.distributed``
        rank 0 draws it and the others take it).  Each draw takes two 32-bit
        words from the generator as the Philox key of the package's Gaussian
        stream (:func:`lni_geometry.optim_kernels.fill_normals`): coordinate
        ``j`` of tensor ``t`` (its position over all groups; ``j`` its flat
        index) is coordinate ``j`` of sample ``t`` of that key, the numbers of
        :func:`lni_geometry.sample_vectors` (``|z| <= 6.7637``), the same on
        any rank, for any sharding, and on a GPU (drawn there by the
        numba.cuda kernel of :func:`lni_geometry.backends.cuda.fill_normals_at`).
        The generator's state is saved in ``state_dict()``, so a resumed run
        continues identically.  A :class:`Lion` state dict loads into Enim as
        a warm start: its momenta and ``steps``; the seed and the generator
        stay Enim's own.
    scope : {"model", "tensor"}
        ``"model"`` (the paper's): one rotation of the concatenated ``c`` of
        every parameter of every group.  ``"tensor"``: each tensor is turned
        on its own (its own direction, norm ``sqrt(n_k)``, and with
        ``"lion"``/``"lni"`` its own angle), for comparison.
    process_group, all_params
        As in :class:`Lion`: under ``torch.distributed`` the turn is of the
        whole model's ``c``, from sums gathered over the ranks, and the
        numbers are those of one process (:mod:`lni_geometry.torch.distributed`).

    Notes
    -----
    Memory: one buffer of ``n`` entries (the Gaussian ``z``, in float32, or
    float64 when a parameter is float64) besides the momenta.  ``c`` is
    never stored: on the CPU (float32/float64) two passes of the kernels
    of :mod:`lni_geometry.optim_kernels` over every tensor make the step:
    the first sums ``c`` (formed from ``m`` and ``g``) against ``z``, the
    second forms ``c`` again, steps the weights, updates the momentum as
    Lion's kernel does and draws the next step's ``z`` into the buffer while
    each tile is in cache (its key is saved in ``state_dict()``); the first
    step draws its ``z`` in the first pass.  With a float angle, the default
    scope and ``foreach``, and no telemetry, both passes and the coefficients
    between them are one launch from the second step on
    (:meth:`optim_kernels.EnimStep.step`: the same numbers, the sums added
    exactly as :func:`math.fsum` adds them).
    Elsewhere (a GPU, shards under ``torch.distributed``, other dtypes)
    :meth:`_fill` draws ``z`` (the same numbers, from the key the previous
    update drew), then torch's operations or the kernels step, one tensor at
    a time for torch's.
    A non-finite ``c`` is found from the first pass's ``||c||_1`` and
    refused as :class:`Lion` refuses it (:class:`~lni_geometry.torch.NonFiniteError`),
    with the generator and the ``z`` drawn ahead restored: nothing changes.  The update is ``alpha c + beta z`` with
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

    _COPIED = SignOptimizer._COPIED + ("angle", "scope", "seed", "_pending")

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, angle, seed=None,
                 scope="model", foreach=None, telemetry=False, history=True, callback=None, process_group=None,
                 all_params=None, decoupled_weight_decay=False):
        angle = check_angle(angle)
        if scope not in ENIM_SCOPES:
            raise ValueError(f"scope must be one of {ENIM_SCOPES}, got {scope!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, weight_decay=weight_decay)
        self.angle = angle
        self.scope = scope
        super().__init__(params, defaults, foreach, telemetry, history, callback, process_group, all_params,
                         decoupled_weight_decay)
        self._device()  # one device, checked now
        if scope == "tensor" and angle == "lni" and all_params is not None:
            raise ValueError("scope='tensor' with angle='lni' is not available with all_params (ZeRO-1): a rank "
                             "does not know, before the step's gather, how many tensors draw an angle")
        #: The generator's seed (drawn from the operating system's entropy when not given:
        #: torch's global random state is not touched; under torch.distributed, rank 0's).
        self.seed = int(secrets.randbits(62) if seed is None else seed)
        if seed is None and self._topology is not None:
            self.seed = self._topology.broadcast_seed(self.seed)
        self._generator = None  # created when first needed
        self._z = None
        #: The z drawn ahead by the last update (see :meth:`_first_pass`), or None.
        self._pending = None

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._device()
            if self.scope == "tensor" and isinstance(self.angle, float) and self.angle not in (0.0, math.pi):
                first = sum(len(g["params"]) for g in self.param_groups[:-1])
                for j, p in enumerate(group["params"]):
                    if p.numel() == 1:
                        raise ValueError(
                            f"scope='tensor' cannot turn parameter {first + j} (one entry, no orthogonal "
                            f"direction) by angle {self.angle!r}: use scope='model', or an angle of 0 or pi"
                        )
        except ValueError:
            self.param_groups.pop()
            raise

    def _device(self):
        """The one device of every parameter (None before any)."""
        devices = {p.device for g in self.param_groups for p in g["params"]}
        if len(devices) > 1:
            raise ValueError(f"Enim needs every parameter on one device, got {sorted(map(str, devices))}")
        return next(iter(devices)) if devices else None

    def _gen(self):
        """The generator of the draws' keys (a CPU ``torch.Generator``, whatever the parameters' device,
        so that a GPU run draws the keys of a CPU run), seeded from :attr:`seed` when first made."""
        if self._generator is None:
            self._generator = torch.Generator()
            self._generator.manual_seed(self.seed)
        return self._generator

    # -- random draws --------------------------------------------------------------------
    #
    # Every draw is keyed by two words from the optimizer's (CPU) torch.Generator and made
    # by the package's counter-based Gaussian (lni_geometry.optim_kernels: fill_normals,
    # enim_draw, normal_sums; on a GPU backends.cuda.fill_normals_at): the same Philox
    # stream as sample_vectors, several times faster than torch's normal_ on the CPU.

    #: Draw ``z`` in the fused first pass on the CPU.  A subclass that substitutes
    #: :meth:`_normal_` (a reference stream, in the tests) sets it to False.
    FUSED_DRAWS = True

    def _draw_key(self):
        """Two 32-bit words from the optimizer's generator: the Philox key of one draw."""
        k = torch.randint(0, 2**32, (2,), generator=self._gen(), dtype=torch.int64)
        return tuple(int(x) for x in k.tolist())

    def _normal_(self, zs, samples=None):
        """Fill the slices ``zs`` of the buffer (one per tensor) with independent standard normals.

        A hook for a subclass that substitutes another stream (the tests'
        reference stream, with ``FUSED_DRAWS = False``); Enim's own draws
        never call it (:meth:`_fill`, and the fused kernels).
        """
        raise NotImplementedError("Enim draws z with _fill; _normal_ is for a subclass's own stream")

    def _fill(self, st, key):
        """``z`` of every entry from ``key``: coordinate ``j`` of tensor ``t`` (its global index; ``j`` its
        flat index in the whole tensor, :attr:`StepTensors.runs` for a shard) is coordinate ``j`` of
        Gaussian sample ``t`` of the package's stream, whichever rank or device draws it.

        On the CPU one launch of :func:`optim_kernels.fill_normals_many`; on a
        GPU the numba.cuda kernel of
        :func:`lni_geometry.backends.cuda.fill_normals_at` on torch's current
        stream, or without numba.cuda, the CPU's draw copied over.
        """
        sizes = st.sizes
        runs = st.runs if st.runs is not None else [np.array([[0, 0, n]], dtype=np.int64) for n in sizes]
        index = np.asarray(st.index, dtype=np.int64)
        if not runs or not sum(len(r) for r in runs):
            return
        every = np.concatenate(runs)
        owner = np.concatenate([np.full(len(r), i, dtype=np.int64) for i, r in enumerate(runs)])
        offsets = np.cumsum([0] + sizes[:-1], dtype=np.int64)[owner] + every[:, 0]
        samples, starts, lengths = index[owner], every[:, 1], every[:, 2]
        if self._z.device.type == "cpu":
            _fill_cpu(self._z, key, samples, starts, lengths, offsets)
        else:
            _fill_device(self._z, key, samples, starts, lengths, offsets)

    @staticmethod
    def _lni_angle_of(n, key):
        """The turn of LNI in dimension ``n``: the bisector angle of the ``n`` Gaussian coordinates of
        ``key`` (``cos t = ||x||_1 / (sqrt(n) ||x||_2)``).

        Exactly the law of :class:`lni_geometry.theory.BisectorAngle` ``(n)``
        and of the turn of :func:`lni_geometry.lni` (the law of ``B sign(B^T
        c)``); ``x`` is never stored (:func:`optim_kernels.normal_sums`, on
        the CPU, whatever the parameters' device).
        """
        if n <= 1:
            return 0.0
        l1, l2sq = optim_kernels.normal_sums(n, key)
        return math.acos(min(1.0, l1 / math.sqrt(n * l2sq)))

    def _angle_for(self, l1, l2sq, nnz):
        angle = self.angle
        if angle == "lion":
            return math.acos(min(1.0, l1 / math.sqrt(nnz * l2sq))) if l2sq > 0 else math.nan
        if callable(angle):
            value = angle(self.steps + 1)
            try:
                return check_angle(value if not (callable(value) or isinstance(value, str)) else None)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"angle({self.steps + 1}) returned {value!r}: {exc}") from None
        return angle

    # -- under torch.distributed --

    def _check_values(self, st=None):
        values = super()._check_values(st) + [self.seed >> 31, self.seed & (2**31 - 1)]
        if self.scope == "tensor" and self.angle == "lni" and st is not None:  # one LNI key per tensor
            values.append(len(st))
        return values

    def _description(self):
        angle = self.angle if not callable(self.angle) else getattr(self.angle, "__qualname__", "a callable")
        return {**super()._description(), "seed": self.seed, "angle": angle, "scope": self.scope,
                "generator state (SHA-256)": hashlib.sha256(self._gen().get_state().numpy().tobytes()).hexdigest()[:16]}

    # -- state --

    def _extra_state(self):
        pending = None if self._pending is None else {"key": self._pending.key, "layout": self._pending.layout}
        return {"steps": self.steps, "seed": self.seed, "generator": self._gen().get_state(), "pending": pending}

    def _parse_extra_state(self, extra):
        """Enim's entry, or Lion's (a warm start: the momenta and ``steps`` are Lion's, the seed and
        the generator stay this optimizer's)."""
        out = super()._parse_extra_state(extra)
        if out is None or "seed" not in extra:
            return out
        seed, gen, pending = extra["seed"], extra.get("generator"), extra.get("pending")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"state_dict()[{STATE_KEY!r}]['seed'] must be an integer >= 0, got {seed!r}")
        if gen is not None and not (isinstance(gen, torch.Tensor) and gen.dtype == torch.uint8):
            raise ValueError(f"state_dict()[{STATE_KEY!r}]['generator'] must be a uint8 tensor, got {gen!r}")
        if pending is not None:
            layout = tuple(tuple(x) if isinstance(x, list) else x for x in pending["layout"])  # lists: from JSON
            pending = PendingDraw(tuple(int(k) for k in pending["key"]), layout, False)
        out.update(seed=int(seed), generator=gen, pending=pending)
        return out

    def _load_extra_state(self, extra):
        super()._load_extra_state(extra)
        if "seed" not in extra:
            return
        self.seed = extra["seed"]
        self._generator = None
        if extra["generator"] is not None:
            self._gen().set_state(extra["generator"])
        # the buffer is not saved: the next step draws it again from the key
        self._pending = extra["pending"]

    def __getstate__(self):
        state = super().__getstate__()
        state["_generator_state"] = None if self._generator is None else self._generator.get_state()
        if self._pending is not None:  # the buffer is not copied: the copy draws it again from the key
            state["_pending"] = self._pending._replace(filled=False)
        return state

    def __setstate__(self, state):
        copied = "_generator_state" in state  # not a call of torch's load_state_dict
        gen = state.pop("_generator_state", None)
        super().__setstate__(state)
        if copied:
            self._generator, self._z = None, None
            if gen is not None:
                self._gen().set_state(gen)

    # -- the step --

    def _buffer(self, st):
        """The flat buffer of ``z`` for the step's tensors (float64 if a parameter is, else float32)."""
        n, dtype, device = st.layout.remembered("z buffer", lambda: (
            sum(st.sizes), torch.float64 if any(p.dtype == torch.float64 for p in st.params) else torch.float32,
            st.params[0].device if len(st) else (self._device() or torch.device("cpu"))))
        if self._z is None or self._z.numel() != n or self._z.dtype != dtype or self._z.device != device:
            self._z = torch.empty(n, dtype=dtype, device=device)
        return self._z

    def _views(self, st):
        """The buffer's slice of each tensor, shaped like it."""
        views, start = [], 0
        for p in st.params:
            k = p.numel()
            views.append(self._z[start:start + k].view(p.shape))
            start += k
        return views

    def _own_stream(self):
        """Whether ``z`` comes from the package's stream (not from a test's :meth:`_normal_`)."""
        return type(self)._normal_ is Enim._normal_

    def _fused_draws(self, st):
        """Whether ``z`` is drawn (and the step made) by the kernels alone: every tensor fused, one
        dtype, the buffer's."""
        if not (self.FUSED_DRAWS and self.foreach is None):  # settings a user may change between steps
            return False
        z = self._z

        def fused_draws():  # once per layout and buffer dtype: every entry fused, of the buffer's dtype
            fused = st.fused
            one_dtype = len(fused) == 1 and len(next(iter(fused.values()))) == len(st)
            return (not self._sharded() and z.device.type == "cpu" and one_dtype and next(iter(fused)) == z.dtype)

        return st.layout.remembered(("fused draws", z.dtype, z.device), fused_draws)

    def _launch(self, st):
        """The step's :class:`optim_kernels.EnimStep` over every entry and the buffer of ``z``
        (where the kernels take them all), prepared once per layout, settings and buffer."""
        z = self._z
        return st.layout.latest("enim step", (st.settings, z.data_ptr(), z.dtype), lambda: optim_kernels.EnimStep(
            st.arrays(st.everything(), ("p", "m", "g", "z"), z=z), st.beta1, st.beta2, st.lr, st.weight_decay,
            samples=_samples(st)))

    def _layout(self, st):
        """What a z drawn ahead was drawn for: the tensors (global index, size of the whole tensor) and
        the buffer's dtype."""
        dtype = self._z.dtype

        def layout():
            sizes = st.sizes if st.runs is None else [math.prod(shape) for shape in st.shapes]
            return tuple(zip(st.index, sizes)) + (str(dtype),)

        return st.layout.remembered(("drawn for", dtype), layout)

    def _first_pass(self, st, threshold, fresh=False):
        """Draw ``z`` (or take the one the last update drew ahead) and return per tensor the
        sums of :func:`optim_kernels.momentum_sums` with ``z`` (rows of :data:`optim_kernels.SUMS`).

        On the CPU the fused update of step ``k`` draws step ``k + 1``'s ``z``
        (key from the generator, tensor ``i``'s slice = sample ``i``); this
        pass then only reads it.  Without such a ``z`` (the first step, a
        change of which tensors have gradients, ``fresh``) the fused draw
        makes ``z`` and the sums in one pass.  Elsewhere (shards, a GPU,
        tensors torch's operations step) :meth:`_fill` draws ``z`` from the
        key the last update drew (or a new one), so the keys follow one
        another as on the fused path and the numbers are the same; then the
        sums.  ``threshold``: per tensor, or None (no counts).
        """
        counts = threshold is not None
        pending, self._pending = self._pending, None
        samples = _samples(st)
        if not self._fused_draws(st):
            thr = threshold if counts else np.zeros(len(st))
            views = self._views(st)
            if self._own_stream():  # the package's stream, with the keys in the fused path's order
                ahead = pending is not None and not fresh and pending.layout == self._layout(st)
                self._fill(st, pending.key if ahead else self._draw_key())
            else:
                self._normal_(views, samples)
            sums = np.zeros((len(st), len(optim_kernels.SUMS)))
            for which in st.fused.values():
                sums[which] = optim_kernels.momentum_sums_many(st.arrays(which, ("m", "g", "z"), z=self._z),
                                                               st.beta1[which], thr[which], counts=counts)
            for i in st.rest(st.fused):
                sums[i] = torch_momentum_sums(st.moms[i], st.grads[i], float(st.beta1[i]), float(thr[i]),
                                              views[i], counts=counts).cpu().numpy()
            return sums
        if pending is not None and not fresh and pending.layout == self._layout(st):
            if not pending.filled:  # after load_state_dict or a copy: the buffer is drawn again from its key
                self._fill(st, pending.key)
            return self._launch(st).sums(st.grad_addresses(), threshold)
        return optim_kernels.enim_draw_many(st.arrays(st.everything(), ("z", "m", "g"), z=self._z), st.beta1,
                                            self._draw_key(), samples=samples, threshold=threshold)

    @staticmethod
    def _coefficients(sizes, blocks, angles, columns):
        """``(alpha, beta)`` per block and ``u . c`` from the columns of the step's sums (lists over the
        rows, in the order of :data:`optim_kernels.SUMS`; :func:`optim_kernels.turn_coefficients`);
        None if ``z`` must be drawn again."""
        coef = []
        along = 0.0
        used = [columns[k] for k in (1, 6, 7)]  # l2sq, cz, zz
        for block, t in zip(blocks, angles):
            every = len(block) == len(sizes)  # scope "model": one block of every row
            n = sum(sizes) if every else sum(sizes[i] for i in block)
            c2, cz, zz = (math.fsum(column if every else [column[i] for i in block]) for column in used)
            alpha = beta = 0.0
            if c2 > 0.0 and n == 1:  # no orthogonal direction
                if math.sin(t) != 0.0 and t != math.pi:
                    raise ValueError(
                        f"a vector of dimension 1 has no orthogonal direction: Enim's angle must be "
                        f"0 or pi, got {t!r}"
                    )
                alpha = math.cos(t) / math.sqrt(c2)
            elif c2 > 0.0:
                alpha, beta, ok = optim_kernels.turn_coefficients(c2, cz, zz, n, math.cos(t), math.sin(t))
                if not ok:  # |sin(z, c)| < 1e-4: u would lose digits
                    return None
            along += alpha * c2 + beta * cz
            coef.append((alpha, beta))
        return coef, along

    @torch.compiler.disable
    @torch.no_grad()
    def step(self, closure=None):
        """One Enim step over every parameter with a gradient; returns the closure's loss.

        Raises
        ------
        lni_geometry.torch.NonFiniteError
            If ``c`` has an inf or a nan; nothing is changed (the generator included).
        """
        loss = self._closure(closure)
        st = self._step_tensors()
        if not len(st) and not self._sharded():
            self.steps += 1
            return loss
        self._local(st, lambda: self._buffer(st), 8)
        generator = self._gen().get_state()
        pending = self._pending
        if self._in_one_launch(st, pending):
            try:
                stepped = self._step_in_one_launch(st)
            except BaseException:  # nothing was written: the generator goes back
                self._gen().set_state(generator)
                raise
            if stepped:
                self.steps += 1
                return loss
            self._gen().set_state(generator)  # refused in the launch: the slower road finds why
        try:
            blocks, table, coef, applied = self._plan(st)
        except BaseException:  # nothing changed: the generator, the draw ahead, the momenta
            self._gen().set_state(generator)
            self._pending = None if pending is None else pending._replace(filled=False)
            st.forget_created()
            raise
        self._update(st, table, blocks, coef)
        self.steps += 1
        if self.telemetry_enabled and table.index:
            self._record(table._replace(sums=table.sums[:, :6]), applied)
        return loss

    def _in_one_launch(self, st, pending):
        """Whether the kernels may make the whole step in one launch: one turn by a float angle of
        every entry (``scope="model"``), no telemetry, ``foreach=None``, every entry fused (one
        process, the CPU, one dtype) and its ``z`` drawn ahead into the buffer by the last update
        (from the second step, and again from the second after a change of the tensors, a
        ``load_state_dict`` or a copy)."""
        return (isinstance(self.angle, float) and self.scope == "model" and not self.telemetry_enabled
                and pending is not None and pending.filled and self._fused_draws(st)
                and pending.layout == self._layout(st))

    def _step_in_one_launch(self, st):
        """The step in one launch (:meth:`optim_kernels.EnimStep.step`: the first pass, the
        coefficients, the update drawing the next ``z``): the numbers of :meth:`_plan` and
        :meth:`_update`.  Returns whether it stepped; if not (a non-finite ``c``, a ``z``
        almost parallel to ``c``, an overflow of the sums, fewer than two entries), nothing
        was written but the generator's state."""
        launch = self._launch(st)
        next_key = self._draw_key()
        if launch.step(st.grad_addresses(), self.angle, next_key) != 0:
            return False
        self._wrote_every_entry(st, next_key)
        return True

    def _wrote_every_entry(self, st, next_key):
        """After a launch that stepped every entry and drew the next ``z`` from ``next_key``: the
        tensors it wrote marked (:func:`mark_written`), the draw ahead kept for the next step."""
        mark_written(st.written(st.everything()))
        self._pending = PendingDraw(next_key, self._layout(st), True)

    def _plan(self, st):
        """Pass 1 and what follows from it: the sums (over the ranks when sharded), the checks, the
        angles and the coefficients.

        Nothing is written but the buffer of ``z`` and the generator's state.
        Returns the blocks (lists of rows of the table: the model, or each
        tensor), the :class:`~lni_geometry.torch.base.StepTable`, ``(alpha,
        beta)`` per block and the angle applied.
        """
        lni = self.angle == "lni"
        if lni:  # drawn before the direction: the keys now, the angles once the sizes are known
            keys = [self._draw_key() for _ in range(1 if self.scope == "model" else len(st))]

        # Pass 1: draw z; the sums of c (formed from m and g) and of z against c.
        threshold = self._thresholds(st, st.fused) if self.telemetry_enabled else None
        table = self._gather(st, self._local(st, lambda: self._first_pass(st, threshold), 8))
        columns = table.sums.T.tolist()  # per column of SUMS, Python floats over the rows
        if not math.isfinite(sum(columns[0])):  # an inf or a nan in some ||c||_1 (or the sum overflows)
            bad = [r for r, l1 in enumerate(columns[0]) if not math.isfinite(l1)]
            if bad:
                self._refuse(st, table, bad)

        # The angle of each block (the model, or each tensor), then the coefficients of
        # u = alpha c + beta z.  A z (almost) parallel to c (probability 0, but a seed
        # equal to the gradient's can do it) is drawn again.
        sizes, sums = table.sizes, table.sums
        rows = len(sizes)
        blocks = [list(range(rows))] if self.scope == "model" else [[r] for r in range(rows)]
        if lni:
            if len(keys) != len(blocks):
                raise RuntimeError(f"{len(blocks)} tensors have a gradient on some rank, {len(keys)} here: "
                                   "scope='tensor' with angle='lni' needs every rank to hold every tensor")
            angles = [self._lni_angle_of(sum(sizes[r] for r in block), key) for block, key in zip(blocks, keys)]
        elif isinstance(self.angle, float):
            angles = [self.angle] * len(blocks)
        else:
            angles = [self._angle_for(*(math.fsum([columns[k][r] for r in block]) for k in range(3)))
                      for block in blocks]
        for _ in range(100):
            coef = self._coefficients(sizes, blocks, angles, columns)
            if coef is not None:
                break
            again = self._local(st, lambda: self._first_pass(st, None, fresh=True), 8)
            sums[:, 6:8] = self._gather(st, again).sums[:, 6:8]
            columns = sums.T.tolist()
        else:  # pragma: no cover - would need 100 degenerate Gaussian draws
            raise RuntimeError("could not draw a direction orthogonal to c")
        coef, along = coef
        n_all = sum(sizes)
        c2_all = math.fsum(columns[1])
        if c2_all == 0.0:
            applied = math.nan
        elif self.scope == "model":
            applied = angles[0]
        else:
            applied = math.acos(max(-1.0, min(1.0, along / math.sqrt(n_all * c2_all))))
        return blocks, table, coef, applied

    def _update(self, st, table, blocks, coef):
        """Pass 2: step the weights by ``u = alpha c + beta z``, and the momenta; fused, draw the
        next step's ``z`` on the way (sharded: its key, for the next step's first pass)."""
        ahead = self._fused_draws(st)
        if ahead and len(coef) == 1:  # one block (the model): the launch takes the two numbers
            alpha, beta = coef[0]
        else:  # per entry
            row_alpha, row_beta = np.zeros(len(table.sizes)), np.zeros(len(table.sizes))
            for block, (a, b) in zip(blocks, coef):
                row_alpha[block], row_beta[block] = a, b
            alpha, beta = row_alpha[table.entry_row], row_beta[table.entry_row]
        if ahead:  # every entry in the kernels' one launch, prepared once per layout and settings
            next_key = self._draw_key()
            self._launch(st).update(st.grad_addresses(), alpha, beta, next_key)
            self._wrote_every_entry(st, next_key)
            return
        hyper = (st.beta1, st.beta2, alpha, beta, st.lr, st.weight_decay)
        fused = st.fused if self.foreach is None else {}
        samples = _samples(st)
        done = []
        for dtype, which in fused.items():
            if dtype != self._z.dtype:
                continue
            optim_kernels.enim_update_many(st.arrays(which, ("p", "m", "g", "z"), z=self._z),
                                           *(x[which] for x in hyper), samples=samples[which])
            mark_written(st.written(which))
            done += which.tolist()
        if self._own_stream():  # the key of the next step's z, in the fused path's order
            self._pending = PendingDraw(self._draw_key(), self._layout(st), False)
        if len(done) == len(st):
            return
        views = self._views(st)
        for i in sorted(set(range(len(st))) - set(done)):
            p, m, g, z = st.params[i], st.moms[i], st.grads[i], views[i]
            b1, b2, a_i, b_i, lr_i, wd_i = (float(x[i]) for x in hyper)
            if wd_i != 0.0:
                p.mul_(1.0 - lr_i * wd_i)
            c = torch.mul(m, b1).add_(g, alpha=1.0 - b1)
            p.add_(z.mul_(b_i).add_(c, alpha=a_i), alpha=-lr_i)
            m.mul_(b2).add_(g, alpha=1.0 - b2)


def _samples(st):
    """Each entry's Gaussian sample of ``z``: its global index (int64), once per layout."""
    return st.layout.remembered("samples", lambda: np.asarray(st.index, dtype=np.int64))


def _fill_cpu(z, key, samples, starts, lengths, offsets):
    """:meth:`Enim._fill` on the CPU: one launch of :func:`optim_kernels.fill_normals_many` over the runs."""
    dtype = np.dtype(np.float64 if z.dtype == torch.float64 else np.float32)
    address = (z.data_ptr() + offsets * dtype.itemsize).reshape(-1, 1)
    arrays = optim_kernels.Arrays(address, dtype, dtype, optim_kernels.layout(tuple(lengths.tolist())), (z,))
    optim_kernels.fill_normals_many(arrays, key, samples, starts)


def _fill_device(z, key, samples, starts, lengths, offsets):
    """:meth:`Enim._fill` on a GPU: the numba.cuda kernel on torch's current stream, zero-copy; without a
    usable numba.cuda, the CPU's draw copied over (the same numbers, slower)."""
    try:
        from numba import cuda

        from ..backends.cuda import fill_normals_at

        usable = cuda.is_available()
    except ImportError:
        usable = False
    if usable:
        stream = cuda.external_stream(torch.cuda.current_stream(z.device).cuda_stream)
        fill_normals_at(cuda.as_cuda_array(z), key, samples, starts, lengths, offsets, stream=stream)
        return
    host = torch.empty(z.shape, dtype=z.dtype)
    _fill_cpu(host, key, samples, starts, lengths, offsets)
    z.copy_(host)
