"""Lion and Enim over many processes (``torch.distributed``): the numbers of one process.

Enim turns the **whole model's** ``c`` and the telemetry measures whole-model
quantities, so a rank that holds part of the model must know the sums of the
rest.  Three settings, found from the parameters (:func:`topology_of`):

- **replicated** (DDP: plain tensors, ``torch.distributed`` initialised):
  every rank holds the whole model and, after DDP's all-reduce, the same
  gradients, so every rank computes the same step with no collective.  What
  can differ is checked once, at the first step (one ``all_gather_object``):
  the seed (``seed=None`` is drawn on rank 0 and broadcast at construction),
  the hyperparameters, the telemetry switch and the parameters' shapes
  (checked again at every step until the ranks agree).
- **sharded, DTensors** (FSDP2 ``fully_shard``: each parameter a DTensor on
  a one-dimensional mesh, placement ``Shard(d)`` with uneven or empty shards,
  or ``Replicate()``): each rank steps its local shard.
- **sharded, whole tensors** (ZeRO-1, ``ZeroRedundancyOptimizer(params,
  optimizer_class=Lion or Enim, all_params=...)``): each rank steps some
  whole parameters; ``all_params`` (every parameter of the model, in one
  process's order) gives each its global place.

In the sharded settings a step makes **one small collective** per kind of sum
(:meth:`Topology.table`): every rank puts, at the row of each global tensor
it holds part of, its sums of that part (float64 sums, counts as float64:
exact below ``2**53``), plus its settings; an ``all_gather`` gives every rank
every rank's rows, which each adds **in rank order** -- the same bits on
every rank.  The checks (a non-finite ``c``, a rank whose settings or step
count disagree, a local error) are made on the gathered rows, so every rank
raises the same error and none waits on a collective another skipped.  With
the telemetry a second collective follows: Lion's counts, which its update
makes (the momenta's norms, for the ``revived`` threshold, come with the
sums); Enim's momentum RMS of each group, before its sums.

**What equals one process.**  Global index ``t`` of a tensor: its position
over all parameter groups (``all_params`` under ZeRO).  Enim's ``z`` of
coordinate ``j`` of tensor ``t`` (its flat index in the whole tensor) is
coordinate ``j`` of Gaussian sample ``t`` of the package's stream
(:func:`lni_geometry.optim_kernels.fill_normals` with ``start``): the same
number whichever rank draws it, for any world size and sharding.  Counts are
exact; Lion's weights and momenta are bit for bit those of one process (its
step uses no sum).  The float64 sums of one tensor are added in another
order when the tensor is split (each shard's tiles, then the shards in rank
order): with ``u = 2**-53``, a sum of ``N`` terms computed in tiles of 512
entries in fixed order is within ``(N/512 + 9 + W) u`` of the exact sum,
relative to the sum of the terms' sizes (at ``N = 10**7``, ``W = 2``:
``2.2e-12``; a relative error for the sums of one sign, a fraction of
``sum |c_i z_i|`` for ``c . z``), so the telemetry and Enim's coefficients
``alpha``, ``beta`` move by amounts of that order; a float32 weight then
rounds differently only where its float64 value lies that close to a
rounding boundary (a 1-ulp difference in about ``1e-12 / 2**-24 = 2e-5`` of
the entries per step, for the same gradients).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["WIDTH", "DistributedError", "Topology", "get_state_dict", "is_dtensor", "local_tensor", "set_state_dict",
           "shard_runs", "topology_of"]

#: Columns of every gathered table (the most a step sums per tensor: the 8 of
#: :data:`lni_geometry.optim_kernels.SUMS`).
WIDTH = 8


class DistributedError(RuntimeError):
    """A step refused on every rank: a rank failed, or the ranks disagree; nothing was changed."""


def _dist():
    import torch.distributed as dist

    return dist


def _dtensor_type():
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without DTensor
        return None
    return DTensor


def is_dtensor(t):
    """Whether ``t`` is a ``torch.distributed.tensor.DTensor``."""
    cls = _dtensor_type()
    return cls is not None and isinstance(t, cls)


def local_tensor(t):
    """A DTensor's local shard (a view of its storage), or ``t`` itself."""
    return t.to_local() if is_dtensor(t) else t


def _named(all_params):
    """``all_params`` as (names or None, tensors)."""
    items = list(all_params)
    if items and all(isinstance(x, (tuple, list)) and len(x) == 2 and isinstance(x[0], str) for x in items):
        return [x[0] for x in items], [x[1] for x in items]
    if not all(isinstance(x, torch.Tensor) for x in items):
        raise TypeError("all_params must be the model's parameters (tensors, or (name, tensor) pairs)")
    return None, items


class Topology:
    """Where an optimizer's parameters live: a process group, and whether they are sharded.

    Parameters
    ----------
    group : ProcessGroup
    sharded : {"dtensor", "whole", None}
        ``"dtensor"``: DTensor parameters (FSDP2); ``"whole"``: whole
        tensors spread over the ranks (ZeRO-1, ``all_params``); ``None``:
        replicated (DDP).
    all_params : list of Tensor, optional
        Every parameter of the model in one process's order (``"whole"``).
    names : list of str, optional
        Their names, when ``all_params`` came as ``(name, tensor)`` pairs.
    """

    def __init__(self, group, sharded, all_params=None, names=None):
        dist = _dist()
        self.group = group
        self.sharded = sharded
        self.world = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.all_params = all_params
        self.names = names
        self.agreed = False
        backend = dist.get_backend(group)
        self.device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")

    def __repr__(self):
        return f"Topology(world={self.world}, rank={self.rank}, sharded={self.sharded!r})"

    # -- global places --

    def positions(self, param_groups):
        """Per group, the global index of each of its parameters."""
        if self.sharded != "whole":
            out, first = [], 0
            for g in param_groups:
                out.append(list(range(first, first + len(g["params"]))))
                first += len(g["params"])
            return out
        where = {id(p): i for i, p in enumerate(self.all_params)}
        out = []
        for g in param_groups:
            rows = []
            for p in g["params"]:
                if id(p) not in where:
                    raise ValueError(f"a parameter of shape {tuple(p.shape)} is not in all_params: pass every "
                                     "parameter of the model, in one process's order")
                rows.append(where[id(p)])
            out.append(rows)
        return out

    def count(self, param_groups):
        """The number of global tensors (rows of the gathered tables)."""
        if self.sharded == "whole":
            return len(self.all_params)
        return sum(len(g["params"]) for g in param_groups)

    def described(self, param_groups):
        """Per global tensor: (name, shape, dtype) (the whole tensor's shape)."""
        if self.sharded == "whole":
            names = self.names or [None] * len(self.all_params)
            return [(n, tuple(p.shape), str(p.dtype)) for n, p in zip(names, self.all_params)]
        out = []
        for g in param_groups:
            names = g.get("param_names")
            out += [(names[j] if names else None, tuple(p.shape), str(p.dtype)) for j, p in enumerate(g["params"])]
        return out

    # -- collectives --

    def gather(self, flat):
        """Every rank's ``flat`` (a 1-D float64 array of one length on every rank): shape (world, len)."""
        dist = _dist()
        t = torch.as_tensor(np.ascontiguousarray(flat, dtype=np.float64), device=self.device)
        out = torch.empty(self.world * t.numel(), dtype=torch.float64, device=self.device)
        gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.13
        gather(out, t, group=self.group)
        return out.cpu().numpy().reshape(self.world, -1)

    def gather_objects(self, obj):
        """Every rank's ``obj`` (picklable), in rank order."""
        dist = _dist()
        out = [None] * self.world
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def broadcast_seed(self, seed):
        """Rank 0's ``seed`` on every rank."""
        return self.gather_objects(seed)[0]

    def agree(self, description):
        """Raise :class:`DistributedError` on every rank unless every rank's ``description`` is equal.

        ``description``: a dict of what must agree (hyperparameters, seed,
        shapes); the first differing key (in the dict's order) is named with
        each rank's value.  Until every rank agrees, every step checks again.
        """
        every = self.gather_objects(description)
        first = every[0]
        for rank, d in enumerate(every[1:], 1):
            if d != first:
                keys = [k for k in list(first) + [k for k in d if k not in first] if first.get(k) != d.get(k)]
                k = keys[0]
                raise DistributedError(
                    f"the ranks disagree on {k!r}: rank 0 has {_short(first.get(k))}, rank {rank} has "
                    f"{_short(d.get(k))} "
                    f"(also differing: {keys[1:] or 'nothing else'}); every rank must build the optimizer with "
                    "the same settings, seed and parameters.  Nothing was changed.")
        self.agreed = True

    def table(self, rows, entry_index, groups, columns, counted, check, failed=None, writing=False):
        """Gather per-tensor columns over the ranks: one ``all_gather``.

        Parameters
        ----------
        rows : int
            The number of global tensors.
        entry_index, groups : sequence of int
            The global index and the parameter group of each local entry.
        columns : ndarray, shape (entries, K)
            Each local entry's sums of its local part.
        counted : sequence of bool
            Whether this rank adds the entry (False for a replicated shard on
            a rank other than the mesh's first: counted once).
        check : sequence of float
            What every rank must agree on this step (its settings, its step
            count): compared after the gather.
        failed : str, optional
            A local error: every rank then raises :class:`DistributedError`.
        writing : bool
            Whether ``failed`` arose while this rank wrote its weights (the
            update): the others have then stepped, and the error says so.

        Returns
        -------
        present : ndarray of int64
            The global tensors some rank holds an entry of, in order.
        groups : ndarray of int64
            Their parameter groups.
        total : ndarray, shape (present, K)
            Every rank's columns added in rank order.
        """
        k = columns.shape[1]
        if k > WIDTH:
            raise ValueError(f"at most {WIDTH} columns, got {k}")
        # every table has WIDTH columns, so that a rank that failed before its sums (and does
        # not know how many there are) still sends a message of the others' length
        columns = np.pad(columns, ((0, 0), (0, WIDTH - k)))
        local = np.zeros((rows, WIDTH + 2))
        idx = np.asarray(entry_index, dtype=np.int64)
        local[idx, 0] = 1.0
        local[idx, 1] = np.asarray(groups, dtype=np.float64) + 1.0
        keep = np.asarray(counted, dtype=bool)
        local[idx[keep], 2:] = columns[keep]
        check = np.asarray(check, dtype=np.float64).reshape(-1)
        flag = 0.0 if failed is None else (2.0 if writing else 1.0)
        flat = np.concatenate([[flag, check.size], check, local.ravel()])
        every = self.gather(flat)
        bad = np.flatnonzero(every[:, 0] != 0.0).tolist()
        if bad:
            messages = self.gather_objects(failed)
            text = "; ".join(f"rank {r}: {messages[r]}" for r in bad)
            if (every[bad, 0] == 2.0).any():
                raise DistributedError(text + ".  It failed in the update, after the other ranks had written "
                                       "their weights and momenta: the ranks no longer hold one model; load "
                                       "the last checkpoint.")
            raise DistributedError(text + ".  The step was refused on every rank; nothing was changed.")
        checks = every[:, 2:2 + check.size]
        for r in range(1, self.world):
            if not np.array_equal(checks[r], checks[0], equal_nan=True):
                raise DistributedError(
                    f"rank {r} disagrees with rank 0 on its step count or settings ({checks[r].tolist()} against "
                    f"{checks[0].tolist()}: steps, then lr, beta1, beta2, weight_decay per group, then Enim's seed).  "
                    "The step was refused on every rank; nothing was changed.")
        tables = every[:, 2 + check.size:].reshape(self.world, rows, WIDTH + 2)
        total = tables[0].copy()
        for r in range(1, self.world):
            total += tables[r]
        present = np.flatnonzero(total[:, 0] > 0)
        group = tables[:, present, 1].max(axis=0).astype(np.int64) - 1
        return present, group, total[present, 2:2 + k]


def _short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def topology_of(process_group, param_groups, all_params=None):
    """The :class:`Topology` of an optimizer's parameters, or None for one process.

    ``process_group``: ``None`` (found: the DTensors' mesh, else the default
    group when ``torch.distributed`` is initialised, else one process),
    ``False`` (one process, even under ``torch.distributed``), or a process group.
    """
    params = [p for g in param_groups for p in g["params"]]
    dtensors = [p for p in params if is_dtensor(p)]
    if process_group is False:
        if dtensors or all_params is not None:
            raise ValueError("process_group=False steps this process alone; DTensor parameters and all_params "
                             "need a process group")
        return None
    if process_group is not None and not _is_group(process_group):
        raise TypeError(f"process_group must be None, False or a torch.distributed process group, got "
                        f"{process_group!r}")
    dist = _dist() if dist_available() else None
    if dtensors:
        if len(dtensors) != len(params):
            raise ValueError("the parameters mix DTensors and plain tensors: pass the DTensor parameters of one "
                             "fully_shard model")
        if all_params is not None:
            raise ValueError("all_params is for whole tensors spread over the ranks (ZeRO-1); DTensor parameters "
                             "carry their global places")
        meshes = {id(p.device_mesh): p.device_mesh for p in dtensors}
        if len(meshes) != 1:
            raise ValueError(f"the DTensor parameters live on {len(meshes)} device meshes; Lion and Enim take one")
        mesh = next(iter(meshes.values()))
        if mesh.ndim != 1:
            raise ValueError(f"Lion and Enim take DTensors on a one-dimensional device mesh (FSDP2's); got a mesh "
                             f"of shape {tuple(mesh.shape)} (HSDP is not supported)")
        for p in dtensors:
            place = p.placements[0]
            if not (place.is_shard() or place.is_replicate()):
                raise ValueError(f"a DTensor parameter of shape {tuple(p.shape)} has placement {place}: Lion and "
                                 "Enim take Shard(d) or Replicate()")
        group = mesh.get_group()
        if process_group is not None and process_group is not group:
            raise ValueError("process_group differs from the DTensor parameters' mesh group")
        return Topology(group, "dtensor")
    if process_group is None:
        if dist is None or not dist.is_initialized():
            if all_params is not None:
                raise ValueError("all_params (ZeRO-1) needs torch.distributed to be initialised")
            return None
        process_group = dist.group.WORLD
    if all_params is not None:
        names, tensors = _named(all_params)
        return Topology(process_group, "whole", tensors, names)
    return Topology(process_group, None)


def dist_available():
    return torch.distributed.is_available()


def _is_group(x):
    return dist_available() and isinstance(x, torch.distributed.ProcessGroup)


# --- shards: the global coordinates of a local tensor ------------------------------


def shard_runs(p):
    """A parameter's local part and its place in the whole tensor.

    Returns
    -------
    runs : ndarray of int64, shape (k, 3)
        ``(local start, global start, length)`` of each stretch of the local
        tensor (in its row-major order) that is contiguous in the whole
        tensor's flat order: one for a plain tensor or a ``Shard(0)`` shard,
        one per index of the leading dimensions for ``Shard(d)``.
    counted : bool
        Whether this rank's sums of the tensor count (a ``Replicate()``
        DTensor is counted on the mesh's first rank only).
    """
    if not is_dtensor(p):
        return np.array([[0, 0, p.numel()]], dtype=np.int64), True
    place = p.placements[0]
    n = p.numel()
    if place.is_replicate():
        return np.array([[0, 0, n]], dtype=np.int64), p.device_mesh.get_local_rank() == 0
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    shape = tuple(p.shape)
    local_shape, offset = compute_local_shape_and_global_offset(p.shape, p.device_mesh, p.placements)
    d = place.dim % len(shape)
    inner = math.prod(shape[d + 1:])
    outer = math.prod(shape[:d])
    length = local_shape[d] * inner
    if length == 0 or outer == 0:
        return np.zeros((0, 3), dtype=np.int64), True
    lead = np.arange(outer, dtype=np.int64)
    runs = np.stack([lead * length, lead * shape[d] * inner + offset[d] * inner, np.full(outer, length)], axis=1)
    return runs, True


# --- checkpoints that reshard (torch.distributed.checkpoint) --------------------------


def get_state_dict(model, optimizer):
    """The model's and the optimizer's state for ``torch.distributed.checkpoint`` (DCP), resharded on load.

    ``{"model": ..., "optim": ..., "lni_geometry": ...}``: torch's
    ``get_model_state_dict`` and ``get_optimizer_state_dict`` (parameters
    and momenta keyed by name, DTensors where the model is sharded), and the
    package's entry (``steps``; Enim's seed, generator state and the key of
    the ``z`` drawn ahead), which ``get_optimizer_state_dict`` would drop.
    Save it with ``torch.distributed.checkpoint.save``; to resume at any
    world size, build the model and the optimizer, take this dict as the
    template, ``torch.distributed.checkpoint.load`` into it, and pass it to
    :func:`set_state_dict`.  The stream is keyed by global index, so the
    resumed run continues with the numbers of the uninterrupted one.

    The momenta are created as zeros first where the optimizer has none (as
    its first step would), so that torch's helpers do not run their
    initialising ``step()`` on it.
    """
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    from .base import STATE_KEY

    _create_momenta(optimizer)
    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer),
            STATE_KEY: _flat_extra(optimizer)}


def set_state_dict(model, optimizer, state):
    """Load a dict of :func:`get_state_dict` (after ``torch.distributed.checkpoint.load``) into the model
    and the optimizer."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

    from .base import STATE_KEY

    extra = optimizer._parse_extra_state(_unflat_extra(state[STATE_KEY]))
    _create_momenta(optimizer)
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optim"])
    optimizer._load_extra_state(extra)


def _create_momenta(optimizer):
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.requires_grad and "exp_avg" not in optimizer.state[p]:
                optimizer.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def _flat_extra(optimizer):
    """The package's entry with leaves DCP stores: numbers, a uint8 tensor, a JSON string."""
    import json

    extra = dict(optimizer._extra_state())
    if "pending" in extra:
        extra["pending"] = json.dumps(extra["pending"])
    return extra


def _unflat_extra(extra):
    import json

    extra = dict(extra)
    if isinstance(extra.get("pending"), str):
        extra["pending"] = json.loads(extra["pending"])
    return extra
