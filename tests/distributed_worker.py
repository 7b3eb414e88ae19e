"""One rank of the distributed tests (tests/test_torch_distributed.py): run as a process per rank.

``python tests/distributed_worker.py OUT CHECKPOINT save|load`` with ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` set.  Every scenario feeds each step's full
gradients (the same on every rank, and in the one-process reference) to the
sharded parameters, so that the sharded optimizer can be compared with one
process stepping the whole model.  Rank 0 writes the results to ``OUT/results.pt``.
A run at world size 1 (no process group) computes the one-process references.
"""

from __future__ import annotations

import os
import sys
import traceback

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lni_geometry.torch import Enim, Lion, NonFiniteError  # noqa: E402
from lni_geometry.torch.distributed import DistributedError, get_state_dict, set_state_dict  # noqa: E402

STEPS = 50
#: The checkpoint of the resharding scenario is written after this many steps.
SAVE_AT = 20
RESUMED = 30


def build():
    """Eight tensors: 7 rows (uneven over 2 and 3 ranks), 2 rows (an empty shard at 3 ranks), a (4, 6)
    weight (Shard(1) where asked: 6 columns split evenly over 2 and 3)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 4), nn.Linear(4, 2))


def full_grads(model, step):
    """The step's full gradient of each parameter (exact zeros in about a quarter of the entries)."""
    out = []
    for t, p in enumerate(model.parameters()):
        g = torch.randn(tuple(p.shape), generator=torch.Generator().manual_seed(1000 * step + t))
        g[g.abs() < 0.3] = 0.0
        out.append(g)
    return out


OPTIMIZERS = {
    "lion": lambda params, **kw: Lion(params, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, telemetry=True, **kw),
    "enim_lni": lambda params, **kw: Enim(params, lr=0.01, angle="lni", seed=5, weight_decay=0.1, telemetry=True,
                                          **kw),
    "enim_lion": lambda params, **kw: Enim(params, lr=0.01, angle="lion", seed=6, telemetry=True, **kw),
    "enim_float": lambda params, **kw: Enim(params, lr=0.01, angle=0.7, seed=7, telemetry=True, **kw),
    "enim_callable": lambda params, **kw: Enim(params, lr=0.01, angle=lambda k: 0.1 + 0.01 * k, seed=8, **kw),
    "enim_tensor": lambda params, **kw: Enim(params, lr=0.01, angle=0.5, scope="tensor", seed=9, telemetry=True,
                                             **kw),
}


class Parameters:
    """A list of parameters with a module's ``parameters()``."""

    def __init__(self, params):
        self.params = params

    def parameters(self):
        return iter(self.params)


class LocallyKeyed(Enim):
    """Enim drawing each shard's z from coordinate 0 of its tensor's sample (wrong on purpose)."""

    def _fill(self, st, key, **kw):
        runs = st.runs
        st.runs = [r - np.array([0, r[0, 1], 0]) if len(r) else r for r in runs]
        try:
            super()._fill(st, key, **kw)
        finally:
            st.runs = runs


def feed(model, step, mesh=None):
    from torch.distributed.tensor import distribute_tensor

    for p, g in zip(model.parameters(), full_grads(model, step)):
        p.grad = distribute_tensor(g, mesh, p.placements) if mesh is not None else g


def full(t):
    return t.full_tensor() if hasattr(t, "full_tensor") else t.detach().clone()


def state_of(model, opt):
    weights = [full(p).detach().clone() for p in model.parameters()]
    moms = [full(opt.state[p]["exp_avg"]).clone() if "exp_avg" in opt.state[p] else None for p in model.parameters()]
    return weights, moms


def telemetry_of(opt):
    keep = ("n", "angle", "sign_angle", "budget_T", "budget_H", "zero_grad", "tracing", "revived", "per_tensor")
    return [{k: h[k] for k in keep if k in h} for h in opt.history]


def sharded_model(world, mesh, shard1):
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard

    model = build()
    placement = (lambda p: Shard(1) if tuple(p.shape) == (4, 6) else None) if shard1 else None
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh, shard_placement_fn=placement)
    fully_shard(model, mesh=mesh, shard_placement_fn=placement)
    return model


def run(model, opt, steps, mesh=None, first=0):
    for k in range(first, first + steps):
        feed(model, k, mesh)
        opt.step()
        opt.zero_grad()


def caught(fn):
    """(error type name, message) or None."""
    try:
        fn()
    except (NonFiniteError, DistributedError, RuntimeError, ValueError, MemoryError) as exc:
        return type(exc).__name__, str(exc)
    return None


def one_process(results):
    """The references: every optimizer on the whole model, one process."""
    for name, make in OPTIMIZERS.items():
        model = build()
        opt = make(model.parameters(), process_group=False)
        run(model, opt, STEPS)
        results[f"one/{name}"] = state_of(model, opt) + (telemetry_of(opt),)
    model = build()
    opt = OPTIMIZERS["enim_lni"](model.parameters(), process_group=False)
    run(model, opt, SAVE_AT)
    results["one/pending"] = opt._pending


def sharded(results, world, mesh, ckpt, mode):
    import torch.distributed.checkpoint as dcp

    for shard1 in (False, True):
        for name, make in OPTIMIZERS.items():
            model = sharded_model(world, mesh, shard1)
            opt = make(model.parameters())
            run(model, opt, STEPS, mesh)
            results[f"fsdp{'_shard1' if shard1 else ''}/{name}"] = state_of(model, opt) + (telemetry_of(opt),)
    # DTensors replicated over the mesh (Replicate()): counted once, not once per rank
    from torch.distributed.tensor import Replicate, distribute_tensor

    for name in ("lion", "enim_lni"):
        model = Parameters([nn.Parameter(distribute_tensor(p.detach().clone(), mesh, [Replicate()]))
                            for p in build().parameters()])
        opt = OPTIMIZERS[name](model.parameters())
        run(model, opt, STEPS, mesh)
        results[f"replicate/{name}"] = state_of(model, opt) + (telemetry_of(opt),)
    # a deliberately wrong variant, to show that the comparison finds it: z keyed by the shard's own
    # coordinates (every shard draws from coordinate 0) instead of its place in the whole tensor
    model = sharded_model(world, mesh, False)
    opt = LocallyKeyed(model.parameters(), lr=0.01, angle=0.7, seed=7, telemetry=True)
    run(model, opt, STEPS, mesh)
    results["fsdp/enim_float_locally_keyed"] = state_of(model, opt) + (telemetry_of(opt),)
    # ZeRO-1: each rank steps whole parameters; all_params gives their places in the model
    from torch.distributed.optim import ZeroRedundancyOptimizer

    for name in ("lion", "enim_lni", "enim_float"):
        model = build()
        zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=Lion if name == "lion" else Enim,
                                       **ZERO_KWARGS[name], all_params=list(model.named_parameters()))
        run(model, zero, STEPS)
        index = {id(p): i for i, p in enumerate(model.parameters())}
        mine = {index[id(p)]: m["exp_avg"].clone() for p, m in zero.optim.state.items()}
        every = [None] * world
        torch.distributed.all_gather_object(every, mine)
        moms = {i: m for part in every for i, m in part.items()}
        results[f"zero/{name}"] = ([p.detach().clone() for p in model.parameters()],
                                   [moms[i] for i in range(len(index))], telemetry_of(zero.optim))
    # resharding: a run saved at SAVE_AT steps (this world size), resumed elsewhere
    model = sharded_model(world, mesh, False)
    opt = OPTIMIZERS["enim_lni"](model.parameters())
    if mode == "save":
        run(model, opt, SAVE_AT, mesh)
        dcp.save(get_state_dict(model, opt), checkpoint_id=ckpt)
    else:
        state = get_state_dict(model, opt)
        dcp.load(state, checkpoint_id=ckpt)
        set_state_dict(model, opt, state)
        results["resumed/pending"] = opt._pending
        run(model, opt, STEPS - SAVE_AT, mesh, first=SAVE_AT)
        results["resumed/enim_lni"] = state_of(model, opt) + (telemetry_of(opt),)
    faults(results, world, mesh)


#: The settings of OPTIMIZERS, as ZeroRedundancyOptimizer passes them on.
ZERO_KWARGS = {"lion": {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.1, "telemetry": True},
               "enim_lni": {"lr": 0.01, "angle": "lni", "seed": 5, "weight_decay": 0.1, "telemetry": True},
               "enim_float": {"lr": 0.01, "angle": 0.7, "seed": 7, "telemetry": True}}


def snapshot(model, opt):
    """Everything a refused step must leave as it was: weights, momenta, steps, the state's entries,
    and Enim's generator and pending draw."""
    weights, moms = state_of(model, opt)
    gen = opt._gen().get_state().clone() if hasattr(opt, "seed") else None
    return weights, moms, opt.steps, len(opt.state), gen, getattr(opt, "_pending", None)


def same(a, b):
    tensors = [(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1]) if x is not None or y is not None]
    gens = a[4] is None and b[4] is None or torch.equal(a[4], b[4])
    return all(x is not None and y is not None and torch.equal(x, y) for x, y in tensors) and a[2:4] == b[2:4] \
        and gens and a[5] == b[5]


class FailingEnim(Enim):
    """Enim whose first pass fails on the ranks given (a local error after the step's tensors are gathered)."""

    fail_here = False

    def _first_pass(self, st, threshold, fresh=False):
        if self.fail_here:
            raise MemoryError("out of memory (planted)")
        return super()._first_pass(st, threshold, fresh)


class FailingLion(Lion):
    """Lion (stepped by torch's operations) whose update fails on the ranks given, after the others
    have written: the one failure that cannot be undone."""

    fail_here = False

    def _torch_step(self, *args):
        if self.fail_here:
            raise RuntimeError("the update failed (planted)")
        return super()._torch_step(*args)


def faults(results, world, mesh):
    """Collective failures: every rank must raise the same error and change nothing."""
    rank = torch.distributed.get_rank()
    last = rank == world - 1
    for name in ("lion", "enim_lni"):
        for fault in ("nan_on_last_rank", "lr_on_last_rank", "steps_on_last_rank", "telemetry_on_first_rank_only",
                      "local_error_on_last_rank"):
            if fault == "local_error_on_last_rank" and name == "lion":
                continue
            model = sharded_model(world, mesh, False)
            if fault == "telemetry_on_first_rank_only":
                maker = {"lion": lambda ps: Lion(ps, lr=0.01, telemetry=rank == 0),
                         "enim_lni": lambda ps: Enim(ps, lr=0.01, angle="lni", seed=5, telemetry=rank == 0)}[name]
                opt = maker(model.parameters())
            elif fault == "local_error_on_last_rank":
                opt = FailingEnim(model.parameters(), lr=0.01, angle="lni", seed=5, telemetry=True)
            else:
                opt = OPTIMIZERS[name](model.parameters())
            if fault != "telemetry_on_first_rank_only":
                run(model, opt, 2, mesh)
            before = snapshot(model, opt)
            feed(model, 2, mesh)
            if last:
                if fault == "nan_on_last_rank":
                    local = next(p for p in model.parameters() if p.to_local().numel()).grad.to_local()
                    local.view(-1)[0] = float("nan")
                elif fault == "lr_on_last_rank":
                    opt.param_groups[0]["lr"] = 0.02
                elif fault == "steps_on_last_rank":
                    opt.steps += 1
                elif fault == "local_error_on_last_rank":
                    opt.fail_here = True
            error = caught(opt.step)
            if fault == "steps_on_last_rank" and last:
                opt.steps -= 1
            unchanged = same(before, snapshot(model, opt))
            if fault == "telemetry_on_first_rank_only":  # refused again, not let through, at the next step
                error = (error, caught(opt.step))
            every = [None] * world
            torch.distributed.all_gather_object(every, (error, unchanged))
            results[f"fault/{name}/{fault}"] = every
    # an error inside the last rank's update (sharded, telemetry on): every rank hears of it through
    # the gather of the update's counts, and the error says the others have stepped
    model = sharded_model(world, mesh, False)
    opt = FailingLion(model.parameters(), lr=0.01, foreach=True, telemetry=True)
    run(model, opt, 2, mesh)
    feed(model, 2, mesh)
    opt.fail_here = last
    error = caught(opt.step)
    every = [None] * world
    torch.distributed.all_gather_object(every, (error, opt.steps))
    results["fault/lion/update_error_on_last_rank"] = every
    # a local error before the sums (a sparse gradient on one rank, ZeRO-1): raised on every rank
    from torch.distributed.optim import ZeroRedundancyOptimizer

    model = build()
    zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=Lion, lr=0.01,
                                   all_params=list(model.named_parameters()))
    for p, g in zip(model.parameters(), full_grads(model, 0)):
        p.grad = g
    if last:
        mine = zero.optim.param_groups[0]["params"][0]
        mine.grad = mine.grad.to_sparse()
    before = [p.detach().clone() for p in model.parameters()], len(zero.optim.state), zero.optim.steps
    error = caught(zero.optim.step)
    after = [p.detach().clone() for p in model.parameters()], len(zero.optim.state), zero.optim.steps
    unchanged = all(torch.equal(a, b) for a, b in zip(before[0], after[0])) and before[1:] == after[1:]
    every = [None] * world
    torch.distributed.all_gather_object(every, (error, unchanged))
    results["fault/zero/sparse_on_last_rank"] = every
    # DDP: Enim with seed=None on a DDP model, each rank its own batches: the replicas stay equal
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(build())
    opt = Enim(ddp.parameters(), lr=0.05, angle="lni", telemetry=True)
    data = torch.Generator().manual_seed(100 + rank)
    for _ in range(10):
        opt.zero_grad()
        ddp(torch.randn(16, 5, generator=data)).square().mean().backward()
        opt.step()
    flat = torch.cat([p.detach().reshape(-1) for p in ddp.parameters()])
    every = [None] * world
    torch.distributed.all_gather_object(every, (flat, opt.history[-1]["angle"]))
    results["ddp/replicas"] = every
    # DDP: seeds drawn on rank 0 agree; a rank built with another seed is refused at the first step
    model = build()
    opt = Enim(model.parameters(), lr=0.01, angle=0.3)
    every = [None] * world
    torch.distributed.all_gather_object(every, opt.seed)
    results["ddp/seeds"] = every
    opt = Enim(model.parameters(), lr=0.01, angle=0.3, seed=rank)
    for p, g in zip(model.parameters(), full_grads(model, 0)):
        p.grad = g
    before = snapshot(model, opt)
    error = caught(opt.step)
    error = (error, caught(opt.step))  # refused again at the next step, not let through
    unchanged = same(before, snapshot(model, opt))
    every = [None] * world
    torch.distributed.all_gather_object(every, (error, unchanged))
    results["fault/ddp/seed_differs"] = every
    # a copy of an optimizer bound to a named process group is refused (the group cannot be copied)
    import copy

    try:
        copy.deepcopy(Lion(build().parameters(), lr=0.01, process_group=torch.distributed.group.WORLD))
        results["copy/named_group"] = None
    except TypeError as exc:
        results["copy/named_group"] = str(exc)
    opt = Lion(build().parameters(), lr=0.01)  # the default group is found again by a copy
    results["copy/found_group"] = copy.deepcopy(opt)._topology.world


def main():
    out, ckpt, mode = sys.argv[1:4]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(1)
    results = {}
    if world == 1:
        one_process(results)
        model = build()  # a run resumed from the sharded checkpoint by one plain process
        opt = OPTIMIZERS["enim_lni"](model.parameters(), process_group=False)
        import torch.distributed.checkpoint as dcp

        state = get_state_dict(model, opt)
        dcp.load(state, checkpoint_id=ckpt)
        set_state_dict(model, opt, state)
        run(model, opt, STEPS - SAVE_AT, first=SAVE_AT)
        results["resumed_one/enim_lni"] = state_of(model, opt) + (telemetry_of(opt),)
        torch.save(results, os.path.join(out, "results.pt"))
        return
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo")
    try:
        mesh = init_device_mesh("cpu", (world,))
        sharded(results, world, mesh, ckpt, mode)
        if dist.get_rank() == 0:
            torch.save(results, os.path.join(out, "results.pt"))
        dist.barrier()
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
