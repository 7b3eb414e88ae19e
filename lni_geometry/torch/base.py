"""The machinery Lion and Enim share: validation, the step's tensors, fused sums, telemetry, state.

See :mod:`lni_geometry.torch` for the update rules and the telemetry they record.

A step gathers every parameter of every group that has a gradient
(:class:`StepTensors`; what does not change between steps, the
:class:`StepLayout`, is kept from the last step while it holds), and hands
the CPU float32/float64 ones to the multi-tensor kernels of
:mod:`lni_geometry.optim_kernels` by address: Lion's whole step in one
launch where the kernel takes every tensor, else one launch per pass and
dtype (:meth:`StepTensors.arrays`); the others (CUDA, bfloat16,
non-contiguous tensors, or an explicit ``foreach``) step with torch's
operations.  Before anything is written, the step checks that
``c = beta1 m + (1 - beta1) g`` is finite, from sums it computes anyway
(Enim's first pass, the telemetry) or from a count of the non-finite entries
of ``m`` and ``g`` (Lion without telemetry), and refuses a non-finite one
with :class:`NonFiniteError`, leaving everything as it was.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import numbers
import operator
from typing import NamedTuple

import numpy as np
import torch

from .. import optim_kernels
from ..geometry import budget_from_block_sums
from ..validation import ANGLE, BETA1, BETA2, TORCH_LR, WEIGHT_DECAY

__all__ = ["SignOptimizer", "NonFiniteError", "REVIVED_FRACTION", "ENIM_ANGLE_NAMES", "ENIM_SCOPES",
           "isotropic_mean"]


#: A coordinate is "revived" when it gets a non-zero gradient while its momentum
#: is below this fraction of its group's momentum RMS (the seed paper, Fig. 4).
REVIVED_FRACTION = 1e-3

ENIM_SCOPES = ("model", "tensor")
ENIM_ANGLE_NAMES = ("lni", "lion")

#: The key of the package's own entry in ``state_dict()``.
STATE_KEY = "lni_geometry"

_NUMPY_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
_DTYPE = operator.attrgetter("dtype")
_IS_CPU = operator.attrgetter("is_cpu")
_IS_SPARSE = operator.attrgetter("is_sparse")
_GRAD = operator.attrgetter("grad")
_SHAPE = operator.attrgetter("shape")
_CONTIGUOUS = torch.Tensor.is_contiguous


class NonFiniteError(FloatingPointError):
    """A step refused because ``c = beta1 m + (1 - beta1) g`` has an inf or a nan.

    Raised before anything is written: weights, momenta, ``steps`` and Enim's
    generator are as they were before the call.

    Attributes
    ----------
    counts : dict
        Per offending parameter (its name, or ``"parameter <i>"`` with ``i``
        its position over all groups), the counts ``{"grad_nan", "grad_inf",
        "exp_avg_nan", "exp_avg_inf"}``.
    """

    def __init__(self, message, counts):
        super().__init__(message)
        self.counts = counts


# --- validation ------------------------------------------------------------------


def lr_value(lr):
    """A group's ``lr`` as a Python float: a number, or a one-element real tensor (as torch's optimizers take)."""
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1:
            raise ValueError(f"Tensor lr must be 1-element, got {lr!r}")  # torch's optimizers' words
        if not lr.is_floating_point():
            raise ValueError(f"lr as a tensor must hold a real floating value, got {lr!r}")
        return float(lr)
    return lr


def check_group(group):
    """A parameter group's ``lr``, ``betas`` and ``weight_decay`` (:mod:`lni_geometry.validation`)."""
    TORCH_LR.check(lr_value(group["lr"]))
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    BETA1.check(betas[0])
    BETA2.check(betas[1])
    WEIGHT_DECAY.check(group["weight_decay"])


def check_params(group, first):
    """Every tensor of a group real and floating (``first``: the position of its first tensor)."""
    names = group.get("param_names")
    for j, p in enumerate(group["params"]):
        if not p.is_floating_point() or p.is_complex():
            name = repr(names[j]) if names else f"parameter {first + j}"
            raise TypeError(
                f"Lion and Enim step real floating tensors (float16, bfloat16, float32, float64); "
                f"{name} of shape {tuple(p.shape)} is {p.dtype}"
            )


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


@functools.lru_cache(maxsize=None)
def torch_uses_fma(dtype):
    """:func:`optim_kernels.torch_uses_fma` for a torch dtype, checked once."""
    return optim_kernels.torch_uses_fma(_NUMPY_DTYPES[dtype].type)


# --- the tensors of one step ------------------------------------------------------------


def mark_written(tensors):
    """Bump the version counters of tensors the kernels wrote behind torch's back.

    Torch counts in-place writes of its own operations; bumping keeps
    autograd's check of saved tensors honest.
    """
    try:
        torch.autograd.graph.increment_version(tensors)  # a list: torch >= 2.5
    except TypeError:  # pragma: no cover - older torch takes one tensor per call
        for t in tensors:
            torch.autograd.graph.increment_version(t)


def _addresses(tensors):
    return np.fromiter(map(torch.Tensor.data_ptr, tensors), np.int64, len(tensors))


def _signature(params, moms):
    """What the kernels rely on of the weights and momenta beyond their identity: the addresses,
    shapes and contiguity of both (a ``.data`` assignment or an in-place ``resize_`` may change them)."""
    return (_addresses(params).tobytes(), _addresses(moms).tobytes(), list(map(_SHAPE, params)),
            list(map(_SHAPE, moms)), list(map(_CONTIGUOUS, params)), list(map(_CONTIGUOUS, moms)))


class StepLayout:
    """Which tensors a step takes and how: everything of :class:`StepTensors` but the gradients and the settings.

    Built by a step and kept by the optimizer; the next step takes it again
    while it holds (:meth:`gradients`): the same parameters with a
    gradient, in the same groups, with the same momenta (the same state
    entries), at the same addresses, of the same shapes and contiguity, with
    contiguous dense gradients where they were, of the same dtypes.  Anything else (a parameter
    that gains or loses its gradient, a new group, ``load_state_dict``, a
    momentum set or deleted by hand, a ``.data`` assignment) builds it anew.
    The checks are a few C-level passes over the tensors (25 us for 29
    tensors, against 70 us to build, measured on a warm cache).  Under
    torch.distributed with sharded parameters it is built every step.  It
    holds no gradient: a gradient is freed by ``zero_grad()`` as usual.
    """

    __slots__ = ("state", "entries", "param_states", "every", "group_sizes", "has_grad", "params", "moms", "groups",
                 "index", "names", "shapes", "sizes", "runs", "counted", "fused", "address", "signature",
                 "g_contiguous", "g_dtypes", "memo")

    @classmethod
    def build(cls, optimizer, positions=None):
        """A new layout of ``optimizer``'s parameters with a gradient: ``(layout, grads, created)``,
        ``created`` the parameters whose momenta this call created (zeros).

        ``positions`` (under torch.distributed): each group's global indices;
        DTensors are then taken as their local shards.
        """
        self = cls()
        self.params, self.moms, self.groups, self.index, self.names = [], [], [], [], []
        self.memo = {}
        grads, created = [], []
        self.state = state = optimizer.state
        self.every = [p for group in optimizer.param_groups for p in group["params"]]
        self.group_sizes = [len(group["params"]) for group in optimizer.param_groups]
        self.has_grad = [p.grad is not None for p in self.every]
        first = 0
        for gi, group in enumerate(optimizer.param_groups):
            params = group["params"]
            names = group.get("param_names")
            where = positions[gi] if positions is not None else range(first, first + len(params))
            for j, p in enumerate(params):
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    for q in created:
                        state.pop(q, None)
                    raise RuntimeError(
                        f"{type(optimizer).__name__} does not support sparse gradients "
                        f"(parameter {first + j}, shape {tuple(p.shape)}); use a dense gradient"
                    )
                s = state[p]
                m = s.get("exp_avg")
                if m is None:
                    m = s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    created.append(p)
                self.params.append(p)
                grads.append(g)
                self.moms.append(m)
                self.groups.append(gi)
                self.index.append(where[j])
                self.names.append(names[j] if names else None)
            first += len(params)
        self.signature = _signature(self.params, self.moms)
        self.param_states = [state[p] for p in self.params]
        self.entries = list(state.values())
        self.g_contiguous = list(map(_CONTIGUOUS, grads))
        self.g_dtypes = list(map(_DTYPE, grads))
        self.shapes = [tuple(p.shape) for p in self.params]
        self.runs = self.counted = None
        if positions is not None:  # under torch.distributed: DTensors step their local shards
            grads = self._localise(grads)
        self.address = {"p": _addresses(self.params), "m": _addresses(self.moms)}
        self._classify(grads)
        return self, grads, created

    def _localise(self, grads):
        """DTensors to their local shards, with each one's place in the whole tensor
        (:attr:`runs`, :attr:`counted`; :func:`~lni_geometry.torch.distributed.shard_runs`)."""
        from .distributed import local_tensor, shard_runs

        self.runs, self.counted = [], []
        for p in self.params:
            runs, counted = shard_runs(p)
            self.runs.append(runs)
            self.counted.append(counted)
        self.params = list(map(local_tensor, self.params))
        self.moms = list(map(local_tensor, self.moms))
        return list(map(local_tensor, grads))

    def _classify(self, grads):
        """:attr:`fused` and :attr:`sizes` (every property read through ``map``: C loops, not Python ones).

        The kernels read and write ``numel`` entries of each role: the weight,
        momentum and gradient must have one shape and dtype (a state dict may
        load a momentum of another shape; torch may give a gradient its own
        dtype); others step with torch's operations, which check them.
        """
        self.sizes = list(map(torch.Tensor.numel, self.params))
        shapes = list(map(_SHAPE, self.params))
        dtypes = list(map(_DTYPE, self.params))
        ok = map(all, zip(map(_IS_CPU, self.params), map(_NUMPY_DTYPES.__contains__, dtypes),
                          map(operator.eq, dtypes, map(_DTYPE, self.moms)), map(operator.eq, dtypes, map(_DTYPE, grads)),
                          map(operator.eq, shapes, map(_SHAPE, self.moms)), map(operator.eq, shapes, map(_SHAPE, grads)),
                          map(_CONTIGUOUS, self.params), map(_CONTIGUOUS, self.moms), map(_CONTIGUOUS, grads)))
        by_dtype = {}
        for i, good in enumerate(ok):
            if good:
                by_dtype.setdefault(self.params[i].dtype, []).append(i)
        self.fused = {dt: np.array(w, dtype=np.int64) for dt, w in by_dtype.items()}

    def gradients(self, optimizer):
        """This step's gradients (one per entry) if the layout still holds for ``optimizer``, else None."""
        if optimizer.state is not self.state or self.runs is not None:
            return None
        every = [p for group in optimizer.param_groups for p in group["params"]]
        if len(every) != len(self.every) or not all(map(operator.is_, every, self.every)):
            return None
        if [len(group["params"]) for group in optimizer.param_groups] != self.group_sizes:
            return None
        grads = list(map(_GRAD, every))
        if list(map(operator.is_not, grads, itertools.repeat(None))) != self.has_grad:
            return None
        grads = list(itertools.compress(grads, self.has_grad))
        state = self.state  # the same entries (no tensor hashed: torch hashes in Python), and momenta
        if len(state) != len(self.entries) or not all(map(operator.is_, state.values(), self.entries)):
            return None
        moms = list(map(dict.get, self.param_states, itertools.repeat("exp_avg")))
        if not all(map(operator.is_, moms, self.moms)) or _signature(self.params, moms) != self.signature:
            return None
        contiguous = list(map(_CONTIGUOUS, grads))
        if contiguous != self.g_contiguous or (not all(contiguous) and any(map(_IS_SPARSE, grads))):
            return None
        if list(map(_DTYPE, grads)) != self.g_dtypes:  # torch lets a parameter's gradient have its own dtype
            return None
        return grads

    def remembered(self, key, make):
        """``make()``, computed once per layout and ``key``."""
        value = self.memo.get(key)
        if value is None:
            value = self.memo[key] = make()
        return value

    def latest(self, name, key, make):
        """``make()`` for ``key``, kept while the next calls under ``name`` have the same key (one per name)."""
        kept = self.memo.get(name)
        if kept is None or kept[0] != key:
            kept = self.memo[name] = (key, make())
        return kept[1]


class StepTensors:
    """The parameters of one step that have a gradient, in group order, and their tensors.

    Everything but the gradients and the settings comes from the step's
    :class:`StepLayout` (kept from the last step while it holds).

    Attributes
    ----------
    params, grads, moms : list of Tensor
        Weights, gradients and momenta (``state["exp_avg"]``, created as zeros
        on first use; :meth:`forget_created` removes those of a refused step);
        of a DTensor, its local shard.
    groups : list of int
        Each one's parameter group.
    index : list of int
        Each one's global index: its position over all groups (as in
        ``state_dict``), or ``positions`` (under ZeRO-1, its place in the model).
    shapes : list of tuple
        Each one's shape (of the whole tensor for a DTensor).
    runs, counted : list or None
        Under torch.distributed, each one's place in the whole tensor and
        whether this rank counts its sums (:func:`~lni_geometry.torch.distributed.shard_runs`).
    names : list of str or None
        Each one's name where the parameters were given with names
        (``model.named_parameters()``).
    sizes : list of int
        Each one's number of entries.
    settings : tuple
        Each group's ``(beta1, beta2, lr, weight_decay)`` (``lr`` as a float even where a group holds a tensor).
    beta1, beta2, lr, weight_decay : ndarray
        Each one's group settings.
    fused : dict
        torch dtype -> ndarray of the entries the kernels can take: CPU
        float32/float64, contiguous, one dtype for weight, gradient and
        momentum.
    layout : StepLayout
    """

    __slots__ = ("layout", "params", "grads", "moms", "groups", "index", "names", "sizes", "settings", "beta1",
                 "beta2", "lr", "weight_decay", "fused", "created", "shapes", "runs", "counted", "_g_address")

    def __init__(self, optimizer, positions=None, layout=None):
        grads = layout.gradients(optimizer) if layout is not None and positions is None else None
        if grads is None:
            layout, grads, self.created = StepLayout.build(optimizer, positions)
        else:
            self.created = []
        self.layout = layout
        self.grads = grads
        self.params, self.moms, self.groups, self.index, self.names = (layout.params, layout.moms, layout.groups,
                                                                      layout.index, layout.names)
        self.shapes, self.sizes, self.runs, self.counted, self.fused = (layout.shapes, layout.sizes, layout.runs,
                                                                       layout.counted, layout.fused)
        self.settings = settings = tuple((group["betas"][0], group["betas"][1], float(lr_value(group["lr"])),
                                          optimizer.weight_decay_of(group)) for group in optimizer.param_groups)
        self.beta1, self.beta2, self.lr, self.weight_decay = layout.latest("settings", settings, lambda: tuple(
            np.ascontiguousarray(np.array(settings, dtype=np.float64).reshape(-1, 4)[layout.groups].T)))
        self._g_address = None

    def __len__(self):
        return len(self.params)

    def forget_created(self):
        """Remove the momenta created by this step (a refused step changes nothing)."""
        for p in self.created:
            self.layout.state.pop(p, None)
        self.created = []

    def rest(self, fused):
        """The entries not in ``fused`` (a dict like :attr:`fused`), in order."""
        def make():
            taken = np.zeros(len(self), dtype=bool)
            for which in fused.values():
                taken[which] = True
            return np.flatnonzero(~taken).tolist()

        return self.layout.remembered(("rest",) + tuple((dt, w.tobytes()) for dt, w in fused.items()), make)

    def rounding(self):
        """:attr:`fused` less the dtypes whose torch ``add(alpha=)`` rounds twice: the entries whose
        Lion step the kernel makes with torch's bits (:func:`torch_uses_fma`)."""
        return self.layout.remembered("rounding", lambda: {dt: w for dt, w in self.fused.items()
                                                           if torch_uses_fma(dt)})

    def whole(self):
        """Every entry, in order, where the kernel's Lion step takes them all in one launch (one
        dtype, with torch's bits: :meth:`rounding`); else None."""
        def make():
            fused = self.rounding()
            if len(fused) != 1:
                return False
            (which,) = fused.values()
            return which if len(which) == len(self) else False

        which = self.layout.remembered("whole", make)
        return which if which is not False else None

    def everything(self):
        """Every entry, in order (int64), once per layout."""
        return self.layout.remembered("everything", lambda: np.arange(len(self)))

    def written(self, which):
        """The weights and momenta of the entries ``which``: the tensors a kernel's update writes
        (for :func:`mark_written`)."""
        return self.layout.remembered(("written", which.tobytes()), lambda: [self.params[i] for i in which]
                                      + [self.moms[i] for i in which])

    def grad_addresses(self):
        """The gradients' addresses (int64, one per entry)."""
        if self._g_address is None:
            self._g_address = _addresses(self.grads)
        return self._g_address

    def arrays(self, which, roles, z=None):
        """An :class:`optim_kernels.Arrays` of the entries ``which`` (one dtype) in the given roles.

        Roles: ``"p"``, ``"m"``, ``"g"``, and ``"z"``: each entry's slice of
        the flat buffer ``z`` (entry ``i``'s slice follows those of entries
        ``0 .. i - 1``).  Everything but the gradients' and ``z``'s addresses
        is computed once per layout.
        """
        which = np.asarray(which, dtype=np.int64)
        template, dtype, lay, z_offsets = self.layout.remembered(("arrays", which.tobytes(), roles),
                                                                 lambda: self._template(which, roles))
        address = template.copy()
        if "g" in roles:
            address[:, roles.index("g")] = self.grad_addresses()[which]
        z_dtype = None
        if "z" in roles:
            address[:, roles.index("z")] = z.data_ptr() + z_offsets * z.element_size()
            z_dtype = _NUMPY_DTYPES[z.dtype]
        dtype = dtype or z_dtype
        return optim_kernels.Arrays(address, dtype, z_dtype or dtype, lay, (self, z))

    def _template(self, which, roles):
        """What :meth:`arrays` keeps per layout: the weights' and momenta's addresses, the dtype
        (None for ``z`` alone), the :func:`optim_kernels.layout`, each entry's offset in ``z``."""
        address = np.zeros((len(which), len(roles)), dtype=np.int64)
        for r, role in enumerate(roles):
            if role in ("p", "m"):
                address[:, r] = self.layout.address[role][which]
        dtype = _NUMPY_DTYPES[self.params[which[0]].dtype] if len(which) and roles != ("z",) else None
        z_offsets = np.cumsum([0] + self.sizes[:-1], dtype=np.int64)[which]
        return address, dtype, optim_kernels.layout(tuple(self.sizes[i] for i in which)), z_offsets


class StepTable(NamedTuple):
    """Per-tensor sums of a step over the whole model: one row per tensor with a gradient.

    In one process (or replicated over ranks, DDP) the rows are the step's
    entries; sharded (FSDP2, ZeRO-1) the rows are every rank's tensors,
    their sums added over the ranks (:meth:`Topology.table`).

    Attributes
    ----------
    index, groups, sizes, names, shapes : list
        Each row's global index, group, number of entries, name (or None)
        and shape (of the whole tensor).
    sums : ndarray, shape (rows, K)
    entry_row : ndarray of int
        The row of each entry of the step (:class:`StepTensors`).
    """

    index: list
    groups: list
    sizes: list
    names: list
    shapes: list
    sums: np.ndarray
    entry_row: np.ndarray

    def label(self, r):
        """Row ``r`` as an error message names it."""
        name = self.names[r]
        return repr(name) if name is not None else f"parameter {self.index[r]}"


# --- sums with torch's operations (tensors the kernels do not take) ---------------------


def torch_momentum_sums(m, g, beta1, threshold, z=None, counts=True):
    """The sums of :func:`optim_kernels.momentum_sums` with torch's operations, ``c`` formed in the parameter's dtype.

    Returns a float64 tensor of the 8 :data:`~optim_kernels.SUMS` (on the tensors' device); without
    ``counts``, the counts of ``g`` and ``m`` are 0 (``nnz(c)`` is kept).
    """
    c = torch.mul(m, beta1).add_(g, alpha=1.0 - beta1).double()
    sums = [c.abs().sum(), (c * c).sum(), (c != 0).sum()]
    sums += list(torch_counts(m, g, threshold)) if counts else [c.new_zeros(())] * 3
    if z is not None:
        z64 = z.double()
        sums += [(c * z64).sum(), (z64 * z64).sum()]
    else:
        sums += [c.new_zeros(()), c.new_zeros(())]
    return torch.stack([x.double() for x in sums])


def torch_counts(m, g, threshold):
    """The telemetry's counts ``#{g = 0}``, ``#{g = 0, m != 0}``, ``#{g != 0, |m| < threshold}``
    (compared in float64) with torch's operations: an int64 tensor of three."""
    gz = g == 0
    return torch.stack([gz.sum(), (gz & (m != 0)).sum(), (~gz & (m.double().abs() < threshold)).sum()])


def torch_square_norm(x):
    """``||x||_2^2`` in float64, with torch's operations."""
    x64 = x.detach().double()
    return (x64 * x64).sum()


# --- the shared machinery --------------------------------------------------------------


def _check_history(history):
    if isinstance(history, bool):
        return history
    if isinstance(history, numbers.Integral) and history >= 0:
        return int(history)
    raise ValueError(f"history must be True, False or an integer >= 0 (the steps kept), got {history!r}")


class SignOptimizer(torch.optim.Optimizer):
    """Lion's shared machinery: groups, momentum state, checks, telemetry, state_dict extras, pickling."""

    #: Attributes beyond torch's ``defaults``, ``state`` and ``param_groups`` that a copy
    #: (``copy.deepcopy``, ``pickle``, ``torch.save``) carries.
    _COPIED = ("foreach", "telemetry_enabled", "steps", "telemetry", "history", "callback", "all_params",
               "decoupled_weight_decay", "initial_lr")

    def __init__(self, params, defaults, foreach, telemetry, history, callback, process_group=None,
                 all_params=None, decoupled_weight_decay=False):
        check_group(defaults)
        if foreach is not None and not isinstance(foreach, bool):
            raise TypeError(f"foreach must be None, True or False, got {foreach!r}")
        if not isinstance(decoupled_weight_decay, bool):
            raise TypeError(f"decoupled_weight_decay must be True or False, got {decoupled_weight_decay!r}")
        initial_lr = float(lr_value(defaults["lr"]))
        if decoupled_weight_decay and initial_lr == 0.0:
            raise ValueError("decoupled_weight_decay=True divides the weight decay by the lr given at construction: "
                             "it must be > 0, got 0.0")
        if not isinstance(telemetry, bool):
            raise TypeError(f"telemetry must be True or False, got {telemetry!r}")
        history = _check_history(history)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be None or a callable taking the step's telemetry, got {callback!r}")
        super().__init__(params, defaults)
        self.foreach = foreach
        self.telemetry_enabled = telemetry
        #: Whether each group's ``weight_decay`` is divided by :attr:`initial_lr` (lion-pytorch's option).
        self.decoupled_weight_decay = decoupled_weight_decay
        #: The ``lr`` given at construction (a float).
        self.initial_lr = initial_lr
        #: Steps taken (1 after the first ``step()``).
        self.steps = 0
        #: The last step's telemetry (a dict), or None.
        self.telemetry = None
        #: The telemetry of the steps kept (all, the last ``history``, or none).
        self.history = [] if history is True else collections.deque(maxlen=0 if history is False else history)
        #: Called with each step's telemetry, after it is recorded.
        self.callback = callback
        from .distributed import topology_of

        #: Every parameter of the model in one process's order, when this optimizer steps some of them (ZeRO-1).
        self.all_params = None if all_params is None else list(all_params)
        #: Where the parameters live (:class:`~lni_geometry.torch.distributed.Topology`; None: one process).
        self._topology = topology_of(process_group, self.param_groups, self.all_params)
        # a process group named here cannot be found again by a copy (process groups do not pickle)
        self._named_group = self._topology is not None and process_group is not None
        #: The last step's :class:`StepLayout` (taken again by the next step while it holds).
        self._step_layout = None

    def add_param_group(self, param_group):
        merged = dict(self.defaults)
        merged.update(param_group)
        check_group(merged)
        first = sum(len(g["params"]) for g in self.param_groups)
        super().add_param_group(param_group)
        try:
            check_params(self.param_groups[-1], first)
        except TypeError:
            self.param_groups.pop()
            raise

    def weight_decay_of(self, group):
        """The weight decay a step applies in ``group``: its ``weight_decay``, divided by
        :attr:`initial_lr` with ``decoupled_weight_decay`` (the weights then shrink by the factor
        ``1 - (lr / initial_lr) weight_decay`` per step, as lion-pytorch's option does)."""
        wd = group["weight_decay"]
        return wd / self.initial_lr if self.decoupled_weight_decay else wd

    # -- one step --

    def _use_foreach(self, tensors):
        if self.foreach is not None:
            return self.foreach
        return all(t.device.type == "cuda" for t in tensors)

    def _thresholds(self, st, fused):
        """Per entry: :data:`REVIVED_FRACTION` times the RMS of its group's momenta (before the step;
        over every rank's shards under torch.distributed)."""
        def local():
            m2 = np.zeros(len(st))
            for which in fused.values():
                m2[which] = optim_kernels.c_sums_many(st.arrays(which, ("m",)))[:, 1]
            rest = st.rest(fused)
            if rest:
                m2[rest] = torch.stack([torch_square_norm(st.moms[i]).cpu() for i in rest]).numpy()
            return m2

        table = self._gather(st, self._local(st, local).reshape(-1, 1))
        return self._thresholds_from(st, table, table.sums[:, 0])

    def _thresholds_from(self, st, table, m2):
        """Per entry of ``st``: :data:`REVIVED_FRACTION` times the RMS of its group's momenta, from
        ``m2``, each row's ``||m||_2^2`` in ``table`` (a :class:`StepTable`)."""
        groups = np.asarray(table.groups, dtype=np.int64)
        width = len(self.param_groups)
        total = np.bincount(groups, weights=m2, minlength=width)  # added in row order
        count = np.bincount(groups, weights=np.asarray(table.sizes, dtype=np.float64), minlength=width)
        rms = np.sqrt(np.divide(total, count, out=np.zeros(width), where=count > 0))
        return REVIVED_FRACTION * rms[np.asarray(st.groups, dtype=np.int64)]

    # -- under torch.distributed --

    def _sharded(self):
        """Whether the parameters are spread over ranks (FSDP2 DTensors, ZeRO-1)."""
        return self._topology is not None and self._topology.sharded is not None

    def _local(self, st, work, width=1, writing=False):
        """``work()``, this rank's part of a step before a gather.  Sharded, an error in it reaches
        every rank through the gather (the others would wait for ever), and every rank raises it
        (``writing``: the work writes the weights, so the others may have stepped)."""
        if not self._sharded():
            return work()
        try:
            return work()
        except Exception as exc:
            self._gather(st, np.zeros((len(st), width)), failed=f"{type(exc).__name__}: {exc}", writing=writing)
            raise

    def _step_tensors(self):
        """The step's :class:`StepTensors`, after (under torch.distributed, at the first step) the
        ranks' agreement.  Sharded, a local error reaches every rank through the gather, and
        every rank raises it."""
        self._agree()
        if not self._sharded():
            st = StepTensors(self, layout=self._step_layout)
            self._step_layout = st.layout
            return st
        try:
            return StepTensors(self, self._topology.positions(self.param_groups))
        except Exception as exc:
            self._gather(None, np.zeros((0, 1)), failed=f"{type(exc).__name__}: {exc}")
            raise

    def _settings(self):
        """Each group's lr, beta1, beta2 and weight_decay, in one list."""
        values = []
        for g in self.param_groups:
            values += [float(lr_value(g["lr"])), g["betas"][0], g["betas"][1], self.weight_decay_of(g)]
        return values

    def _check_values(self, st=None):
        """What every rank must agree on at every step: steps, whether the telemetry is on (it adds a
        gather), then each group's settings."""
        return [self.steps, float(self.telemetry_enabled)] + self._settings()

    def _description(self):
        """What every rank must agree on before the first step (see :meth:`Topology.agree`)."""
        return {"optimizer": type(self).__name__, "steps": self.steps, "settings": self._settings(),
                "telemetry": self.telemetry_enabled, "foreach": self.foreach,
                "parameters": self._topology.described(self.param_groups)}

    def _agree(self):
        """Before the first step under torch.distributed: every rank's settings, seed and shapes equal."""
        topo = self._topology
        if topo is not None and not topo.agreed:
            topo.agree(self._description())

    def _gather(self, st, columns, failed=None, writing=False):
        """The :class:`StepTable` of per-entry ``columns`` (shape (entries, K)): summed over the ranks when sharded.

        ``st`` is None, with ``failed`` a message, where this rank failed
        before the gather: the others learn of it there, and every rank raises
        (``writing``: it failed while writing, see :meth:`Topology.table`).
        """
        topo = self._topology
        columns = np.asarray(columns, dtype=np.float64)
        if topo is None or topo.sharded is None:
            return StepTable(st.index, st.groups, st.sizes, st.names, st.shapes, columns, st.everything())
        index, groups, counted = (st.index, st.groups, st.counted) if st is not None else ([], [], [])
        present, row_groups, total = topo.table(topo.count(self.param_groups), index, groups, columns, counted,
                                                self._check_values(st), failed, writing)
        described = topo.described(self.param_groups)
        shapes = [described[r][1] for r in present]
        return StepTable(present.tolist(), row_groups.tolist(), [math.prod(x) for x in shapes],
                         [described[r][0] for r in present], shapes, total, np.searchsorted(present, index))

    def _refuse(self, st, table, bad):
        """Raise :class:`NonFiniteError` for the rows ``bad`` of ``table`` (nothing was written).

        Under torch.distributed every rank gets here together (the rows are
        the gathered ones), counts its shards' non-finite entries, and the
        counts are gathered: every rank raises the same error.
        """
        st.forget_created()
        bad_rows = set(bad)
        local = np.zeros((len(st), 4))
        for i in range(len(st)):
            if int(table.entry_row[i]) in bad_rows:
                g, m = st.grads[i], st.moms[i]
                local[i] = [int(torch.isnan(g).sum()), int(torch.isinf(g).sum()), int(torch.isnan(m).sum()),
                            int(torch.isinf(m).sum())]
        found = self._gather(st, local).sums
        counts = {}
        for r in bad:
            c = found[r].astype(np.int64).tolist()
            counts[table.names[r] or f"parameter {table.index[r]}"] = {
                "grad_nan": c[0], "grad_inf": c[1], "exp_avg_nan": c[2], "exp_avg_inf": c[3]}
        if self.telemetry_enabled:
            self._keep({"step": self.steps + 1, "refused": True,
                        "nonfinite": sum(sum(c.values()) for c in counts.values()), "nonfinite_per_tensor": counts})
        parts = [f"{table.label(r)} (shape {table.shapes[r]}: gradient {c['grad_nan']} nan, "
                 f"{c['grad_inf']} inf; momentum {c['exp_avg_nan']} nan, {c['exp_avg_inf']} inf)"
                 for r, c in zip(bad, counts.values())]
        raise NonFiniteError(
            f"{type(self).__name__}.step() refused step {self.steps + 1}: c = beta1 m + (1 - beta1) g is not "
            f"finite in {len(bad)} parameter(s): {'; '.join(parts)}.  Nothing was changed (weights, momenta, "
            f"steps{', generator' if hasattr(self, 'seed') else ''}); skip the step (zero the gradients) or "
            f"find the source (torch.autograd.detect_anomaly); torch.amp.GradScaler skips such steps itself.",
            counts,
        )

    # -- telemetry --

    def _record(self, table, angle=None):
        """Build and keep the step's telemetry from a :class:`StepTable` of the :data:`optim_kernels.SUMS`
        (its first six columns).

        ``angle`` is the turn applied; ``None`` means the sign angle (Lion).
        """
        sums = table.sums
        n_t = table.sizes
        n = sum(n_t)
        nnz = sums[:, 2]
        budget = budget_from_block_sums(sums[:, 0], sums[:, 1], nnz, n=n)
        counts = sums[:, 3:6].astype(np.int64).tolist()
        per_tensor = [
            {"index": index, "name": name, "group": group, "shape": shape, "n": k, "zero_grad": c[0],
             "tracing": c[1], "revived": c[2]}
            for index, name, group, shape, k, c in zip(table.index, table.names, table.groups, table.shapes, n_t,
                                                        counts)
        ]
        zero, tracing, revived = (sum(column) for column in zip(*counts)) if counts else (0, 0, 0)
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
            "tracing": tracing,
            "revived": revived,
            "nonfinite": 0,
            "per_tensor": per_tensor,
        }
        self._keep(record)
        return record

    def _keep(self, record):
        self.telemetry = record
        self.history.append(record)
        if self.callback is not None:
            self.callback(record)

    # -- state --

    def _extra_state(self):
        return {"steps": self.steps}

    def _load_extra_state(self, extra):
        """Apply a validated extra state (see :meth:`_parse_extra_state`)."""
        self.steps = extra["steps"]

    def _parse_extra_state(self, extra):
        """The package's entry of a state dict, checked, without applying it (None: keep the current)."""
        if extra is None:
            return None
        steps = extra.get("steps") if isinstance(extra, dict) else None
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ValueError(f"state_dict()[{STATE_KEY!r}] must hold 'steps', an integer >= 0, got {extra!r}")
        return {"steps": int(steps)}

    def state_dict(self):
        """The state of :class:`torch.optim.Optimizer` plus ``"lni_geometry"``: steps (and Enim's generator).

        The entry is added before the state-dict post-hooks run, so they see it.
        """
        handle = self.register_state_dict_post_hook(
            lambda opt, sd: {**sd, STATE_KEY: opt._extra_state()}, prepend=True)
        try:
            return super().state_dict()
        finally:
            handle.remove()

    def load_state_dict(self, state_dict):
        """Load a state dict of this class or of the other sign optimizer (a Lion state warm-starts Enim).

        The load-state-dict pre-hooks see the whole dict (the package's entry
        included); the groups' settings and the package's entry are checked
        before anything is loaded, and the entry is applied before the
        post-hooks run.
        """
        parsed = {}

        def take(opt, sd):  # after the user's pre-hooks: the dict as it will be loaded
            for group in sd["param_groups"]:
                check_group(group)
            parsed["extra"] = self._parse_extra_state(sd.get(STATE_KEY))

        def apply(opt):
            if parsed.get("extra") is not None:
                self._load_extra_state(parsed["extra"])

        pre = self.register_load_state_dict_pre_hook(take)
        post = self.register_load_state_dict_post_hook(apply, prepend=True)
        try:
            super().load_state_dict(state_dict)
        finally:
            pre.remove()
            post.remove()

    def __getstate__(self):
        if getattr(self, "_named_group", False) and self._topology.sharded != "dtensor":
            raise TypeError(f"{type(self).__name__} steps on the process group given as process_group=, which "
                            "cannot be copied or pickled; save and load its state_dict() instead")
        state = super().__getstate__()
        state.update({k: getattr(self, k) for k in self._COPIED})
        state["_alone"] = self._topology is None  # a process group is not copied: found again
        return state

    def __setstate__(self, state):
        # torch's load_state_dict calls this too, with only "state" and "param_groups"
        copied = "_alone" in state
        alone = state.pop("_alone", True)
        super().__setstate__(state)
        self._step_layout = None
        if copied:
            if "decoupled_weight_decay" not in state:  # pickled before the option existed
                self.decoupled_weight_decay, self.initial_lr = False, float(lr_value(self.defaults["lr"]))
            from .distributed import topology_of

            self._topology = None if alone else topology_of(None, self.param_groups, self.all_params)

    @staticmethod
    def _closure(closure):
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()
