"""Lion and Enim under torch.distributed (gloo on localhost, CPU): the numbers of one process.

The ranks run ``tests/distributed_worker.py`` as processes: 2 ranks (FSDP2 with
``Shard(0)`` uneven shards and with a ``Shard(1)`` weight, ZeRO-1, DDP seeds, the
collective faults, and a DCP checkpoint after 20 steps), then 3 ranks (the same,
with empty shards, resuming from the 2-rank checkpoint), then one plain process
(the references, and a resume from the same checkpoint).  Every launch has a
timeout: a rank that hangs fails the test instead of blocking CI.

What is compared, per optimizer (Lion; Enim with angle ``"lni"``, ``"lion"``, a
float, a callable, and ``scope="tensor"``), after 50 steps fed the same full
gradients: momenta bit for bit; Lion's weights bit for bit; Enim's weights within
the bound of :mod:`lni_geometry.torch.distributed` (its coefficients come from
sums added in another order: at most one rounding of the float32 weight per step,
``50 * 2**-24 * max|w|``; measured: equal); telemetry to ``1e-12`` relative,
counts exactly.  A deliberately wrong variant (each shard's ``z`` drawn from its
own coordinate 0) is shown to fail the same comparison.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "distributed_worker.py")
STEPS = 50
SAVE_AT = 20
#: Seconds a launch may take (about 15 s at 2 ranks, 25 s at 3 on 2 cores).
TIMEOUT = 300


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(world, out, ckpt, mode):
    """Run ``world`` ranks of the worker; fail (killing them) if any fails or runs past TIMEOUT."""
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   PYTHONWARNINGS="ignore")
        log = open(os.path.join(out, f"rank{rank}.log"), "w")
        procs.append((subprocess.Popen([sys.executable, WORKER, out, ckpt, mode], env=env, stdout=log,
                                       stderr=subprocess.STDOUT), log))
    try:
        for proc, _ in procs:
            proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        for proc, _ in procs:
            proc.kill()
        pytest.fail(f"a rank of {world} did not finish in {TIMEOUT} s (a hang?); logs in {out}")
    finally:
        for _, log in procs:
            log.close()
    bad = [r for r, (proc, _) in enumerate(procs) if proc.returncode != 0]
    if bad:
        with open(os.path.join(out, f"rank{bad[0]}.log")) as f:
            tail = f.read()[-3000:]
        pytest.fail(f"rank(s) {bad} of {world} failed:\n{tail}")
    return torch.load(os.path.join(out, "results.pt"), weights_only=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("distributed")
    ckpt = str(base / "checkpoint")
    results = {}
    for world, mode in ((2, "save"), (3, "load"), (1, "load")):
        out = base / f"world{world}"
        out.mkdir()
        results[world] = _launch(world, str(out), ckpt, mode)
    return results


OPTIMIZERS = ("lion", "enim_lni", "enim_lion", "enim_float", "enim_callable", "enim_tensor")


def _differences(got, ref):
    """(largest |weight difference|, momenta equal, largest telemetry relative difference, counts equal)."""
    w, m, tel = got
    w1, m1, tel1 = ref
    dw = max(float((a.double() - b.double()).abs().max()) for a, b in zip(w, w1))
    moms = m is None or all(torch.equal(a, b) for a, b in zip(m, m1))
    rel, counts = 0.0, len(tel) == len(tel1)
    for h, h1 in zip(tel, tel1):
        for k in ("angle", "sign_angle", "budget_T", "budget_H"):
            if not (math.isnan(h[k]) and math.isnan(h1[k])):
                rel = max(rel, abs(h[k] - h1[k]) / abs(h1[k]))
        counts &= all(h[k] == h1[k] for k in ("n", "zero_grad", "tracing", "revived"))
        keys = ("index", "n", "shape", "zero_grad", "tracing", "revived")
        counts &= [[t[k] for k in keys] for t in h["per_tensor"]] == [[t[k] for k in keys] for t in h1["per_tensor"]]
    return dw, moms, rel, counts


def _check(got, ref, name):
    dw, moms, rel, counts = _differences(got, ref)
    wmax = max(float(b.abs().max()) for b in ref[0])
    bound = 0.0 if name == "lion" else STEPS * 2.0**-24 * wmax  # Lion's step uses no sum: bit for bit
    assert dw <= bound, f"weights differ from one process by {dw:.3g} > {bound:.3g}"
    assert moms, "momenta differ from one process"
    assert rel <= 1e-12, f"telemetry differs from one process by {rel:.3g} relative"
    assert counts, "counts or per-tensor telemetry differ from one process"


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("setting", ["fsdp", "fsdp_shard1"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fsdp2_gives_the_numbers_of_one_process(runs, world, setting, name):
    _check(runs[world][f"{setting}/{name}"], runs[1][f"one/{name}"], name)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("name", ["lion", "enim_lni", "enim_float"])
def test_zero1_gives_the_numbers_of_one_process(runs, world, name):
    _check(runs[world][f"zero/{name}"], runs[1][f"one/{name}"], name)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("name", ["lion", "enim_lni"])
def test_replicated_dtensors_are_counted_once(runs, world, name):
    _check(runs[world][f"replicate/{name}"], runs[1][f"one/{name}"], name)


def test_the_comparison_finds_z_drawn_at_shard_coordinates(runs):
    """The same comparison on a deliberately wrong Enim (each shard's z from its own coordinate 0) fails."""
    with pytest.raises(AssertionError, match="weights differ"):
        _check(runs[2]["fsdp/enim_float_locally_keyed"], runs[1]["one/enim_float"], "enim_float")


@pytest.mark.parametrize("where", ["world3", "one_process"])
def test_a_checkpoint_saved_at_two_ranks_resumes_with_the_numbers_of_the_uninterrupted_run(runs, where):
    got = runs[3]["resumed/enim_lni"] if where == "world3" else runs[1]["resumed_one/enim_lni"]
    w, m, tel = runs[1]["one/enim_lni"]
    _check(got, (w, m, tel[SAVE_AT:]), "enim_lni")
    if where == "world3":  # the key of the z drawn ahead came through the checkpoint
        assert runs[3]["resumed/pending"].key == runs[1]["one/pending"].key


@pytest.mark.parametrize("world", [2, 3])
def test_seed_none_is_rank_zeros_on_every_rank(runs, world):
    seeds = runs[world]["ddp/seeds"]
    assert len(seeds) == world and len(set(seeds)) == 1


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_replicas_stay_equal_with_seed_none(runs, world):
    """Enim(seed=None, angle="lni") on a DDP model, each rank its own batches, 10 steps."""
    every = runs[world]["ddp/replicas"]
    assert all(torch.equal(w, every[0][0]) and angle == every[0][1] for w, angle in every)


FAULTS = ["fault/lion/nan_on_last_rank", "fault/enim_lni/nan_on_last_rank", "fault/lion/lr_on_last_rank",
          "fault/enim_lni/lr_on_last_rank", "fault/lion/steps_on_last_rank", "fault/enim_lni/steps_on_last_rank",
          "fault/lion/telemetry_on_first_rank_only", "fault/enim_lni/telemetry_on_first_rank_only",
          "fault/enim_lni/local_error_on_last_rank", "fault/zero/sparse_on_last_rank", "fault/ddp/seed_differs"]


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_on_one_rank_is_the_same_error_on_every_rank_and_changes_nothing(runs, world, fault):
    every = runs[world][fault]
    assert len(every) == world
    errors = [e for e, _ in every]
    twice = "telemetry" in fault or "seed" in fault  # (first step, next step): both refused
    firsts = [e[0] for e in errors] if twice else errors
    assert firsts[0] is not None, "the step was not refused"
    assert all(e == errors[0] for e in errors), f"the ranks raised different errors: {errors}"
    if twice:
        assert errors[0][1] is not None and errors[0][1][0] == "DistributedError", "the next step was let through"
    expected = "NonFiniteError" if "nan" in fault else "DistributedError"
    assert firsts[0][0] == expected
    assert all(unchanged for _, unchanged in every), \
        "a refused step changed weights, momenta, steps, the state's entries or Enim's generator"
    if "nan" in fault:
        assert "gradient 1 nan" in firsts[0][1]
    if "lr" in fault:
        assert f"rank {world - 1}" in firsts[0][1]
    if "seed" in fault:
        assert "disagree on 'seed'" in firsts[0][1]
    if "local_error" in fault:
        assert f"rank {world - 1}: MemoryError: out of memory (planted)" in firsts[0][1]


@pytest.mark.parametrize("world", [2, 3])
def test_an_error_inside_the_update_reaches_every_rank_and_says_the_others_stepped(runs, world):
    """The one failure a step cannot undo: the last rank's update raises after the others wrote.
    Sharded with telemetry, the update's counts are gathered next, so every rank raises the same
    DistributedError (none waits for ever), which says the ranks no longer hold one model; no
    rank counts the step."""
    every = runs[world]["fault/lion/update_error_on_last_rank"]
    assert len(every) == world
    errors = [e for e, _ in every]
    assert all(e == errors[0] for e in errors) and errors[0][0] == "DistributedError"
    assert f"rank {world - 1}: RuntimeError: the update failed (planted)" in errors[0][1]
    assert "after the other ranks had written" in errors[0][1] and "nothing was changed" not in errors[0][1]
    assert [steps for _, steps in every] == [2] * world


@pytest.mark.parametrize("world", [2, 3])
def test_copies_find_their_group_again_or_are_refused(runs, world):
    assert "cannot be copied or pickled" in runs[world]["copy/named_group"]
    assert runs[world]["copy/found_group"] == world


def test_shard_runs_of_a_plain_tensor_and_fill_at_global_coordinates():
    """A shard's z is the slice of the whole tensor's z (any start, not only multiples of 4)."""
    from lni_geometry import optim_kernels
    from lni_geometry.torch.distributed import shard_runs

    runs, counted = shard_runs(torch.zeros(3, 4))
    assert runs.tolist() == [[0, 0, 12]] and counted
    whole = np.empty(1000, np.float32)
    optim_kernels.fill_normals(whole, (1, 2), sample=3)
    for start, length in [(1, 5), (7, 0), (333, 600), (998, 2)]:
        part = np.empty(length, np.float32)
        optim_kernels.fill_normals(part, (1, 2), sample=3, start=start)
        assert np.array_equal(part, whole[start:start + length])


def test_process_group_false_and_bad_arguments():
    from lni_geometry.torch import Enim, Lion

    w = torch.nn.Parameter(torch.zeros(3))
    assert Lion([w], process_group=False)._topology is None
    assert Lion([w])._topology is None  # torch.distributed is not initialised here
    with pytest.raises(ValueError, match="all_params"):
        Enim([w], angle=0.1, all_params=[w])
    with pytest.raises(TypeError, match="process_group"):
        Lion([w], process_group="world")


def test_enim_takes_the_same_z_on_every_path():
    """The fused CPU path and the path of torch's operations (the path a GPU, shards and other dtypes
    take, here on the CPU) draw the same keys in the same order: the same LNI angles, and weights equal
    to rounding."""
    from lni_geometry.torch import Enim

    gen = torch.Generator().manual_seed(0)
    shapes = [(40, 30), (30,), (7,)]
    base = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    runs = {}
    for foreach in (None, True):
        params = [torch.nn.Parameter(b.clone()) for b in base]
        opt = Enim(params, lr=0.01, angle="lni", seed=3, foreach=foreach, telemetry=True)
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
            opt.step()
        runs[foreach] = ([p.detach() for p in params], [h["angle"] for h in opt.history])
    assert runs[None][1] == runs[True][1]  # the same keys, in the same order
    for a, b in zip(runs[None][0], runs[True][0]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


def test_the_device_fill_without_numba_cuda_copies_the_cpus_draw():
    from lni_geometry.torch.enim import _fill_cpu, _fill_device

    from lni_geometry import optim_kernels

    args = ((9, 4), np.array([5, 5]), np.array([3, 100]), np.array([10, 6]), np.array([0, 10]))
    b = torch.empty(16)
    _fill_device(b, *args)  # no GPU here: the copy path
    want = np.empty(16, np.float32)
    for s, start, n, o in zip(*args[1:]):  # each run: its coordinates of its sample, drawn whole
        optim_kernels.fill_normals(want[o:o + n], (9, 4), sample=int(s), start=int(start))
    assert np.array_equal(b.numpy(), want)


def test_bench_world_two_times_every_row_and_the_collective():
    from lni_geometry.bench.distributed import ROWS, bench_distributed, format_distributed

    res = bench_distributed(world=2, n=4000, tensors=4, repeat=2, threads=2, timeout=TIMEOUT)
    assert set(res["rows"]) == {1, 2} and all(set(r) == set(ROWS) for r in res["rows"].values())
    assert all(t > 0 for r in res["rows"].values() for t in r.values()) and res["collective_ms"] > 0
    assert "collective / step" in format_distributed(res)
    with pytest.raises(ValueError, match="world must be >= 2"):
        bench_distributed(world=1)


def test_world_without_torch_is_a_usage_error(capsys):
    from lni_geometry.cli import main

    assert main(["bench", "--world", "2"]) != 0
    assert "--world goes with --torch" in capsys.readouterr().err


def test_the_readme_example_runs_under_fsdp2_with_two_processes(tmp_path):
    """docs/examples/fsdp2_enim.py, as torchrun runs it: the whole model's telemetry printed once."""
    script = os.path.join(os.path.dirname(HERE), "docs", "examples", "fsdp2_enim.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--master-port", str(_free_port()), script, str(tmp_path / "ckpt")],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env=dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 5", "step 10", "step 15", "step 20"]
    assert "n = 19,210" in lines[0] and (tmp_path / "ckpt").is_dir()
