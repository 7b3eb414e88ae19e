"""The Dask backend and sweeps: identical to one machine, fault tolerant, cached.

Every dask test runs on a LocalCluster of 2 worker processes with 1 thread each
(closed by the fixtures), at small sizes.  Identity is tested bit for bit
(``numpy.array_equal``), never with a tolerance: the counter-based streams and
the kernels' fixed reduction order promise equal bits wherever a range of
samples, or of chunks of one sample, is computed.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import lni_geometry as lg
from lni_geometry import kernels, rng
from lni_geometry.backends import dask_backend
from lni_geometry.models import Gaussian

sweep_module = importlib.import_module("lni_geometry.sweep")
sweep = sweep_module.sweep


def _cluster(**kw):
    distributed = pytest.importorskip("distributed")
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
        env={"NUMBA_NUM_THREADS": "1"},
        **kw,
    )


def _warm(client):
    """Load the numba kernels of both CPU launch shapes in every worker."""
    client.run(lambda: [lg.sample_angles(64, n, seed=0, backend="cpu") for n in (1, 8)] and None)
    client.run(lambda: dask_backend._chunks_task(np.zeros(2, np.uint32), Gaussian(), 64, 0, 0, 1).sum() and None)


@pytest.fixture(scope="module")
def cluster():
    c = _cluster()
    yield c
    c.close()


@pytest.fixture(scope="module")
def client(cluster):
    distributed = pytest.importorskip("distributed")
    cl = distributed.Client(cluster, set_as_default=False)
    _warm(cl)
    yield cl
    cl.close()


def cpu_sums(dim, samples, seed=0, start=0, model=None):
    return lg.sample_angles(dim, samples, model, seed=seed, start=start, backend="cpu").sums


# --- task planning (pure, no cluster) ----------------------------------------


@settings(max_examples=max(60, settings.default.max_examples), deadline=None)
@given(
    dim=st.integers(2, 2**24),
    samples=st.integers(1, 300),
    start=st.integers(0, 10**6),
    slots=st.integers(1, 64),
    gpu=st.booleans(),
    chunk_samples=st.one_of(st.none(), st.integers(1, 50)),
)
def test_plan_covers_every_sample_once_in_order(dim, samples, start, slots, gpu, chunk_samples):
    plan = dask_backend.plan_tasks(dim, start, samples, slots, gpu, chunk_samples)
    covered = []  # (sample, first chunk, chunks) in plan order
    nch = kernels.n_chunks(dim)
    for item in plan:
        if item[0] == "samples":
            assert item[2] >= 1
            if chunk_samples is not None:
                assert item[2] <= chunk_samples
            covered += [(s, 0, nch) for s in range(item[1], item[1] + item[2])]
        else:
            assert not gpu and chunk_samples is None
            covered.append(item[1:])
    # consecutive chunk ranges of one sample are merged; the result must be
    # every sample, once, with all its chunks in order
    merged = []
    for s, c0, n in covered:
        if merged and merged[-1][0] == s and merged[-1][1] + merged[-1][2] == c0:
            merged[-1] = (s, merged[-1][1], merged[-1][2] + n)
        else:
            merged.append((s, c0, n))
    assert merged == [(s, 0, nch) for s in range(start, start + samples)]


def test_plan_sizes_tasks_from_the_cluster():
    # a big run: 4 tasks per slot
    assert len(dask_backend.plan_tasks(2**20, 0, 4000, slots=8, gpu=False)) == 32
    # a tiny run is not cut below MIN_TASK_COORDS per task
    assert len(dask_backend.plan_tasks(1000, 0, 100, slots=8, gpu=False)) == 1
    # one huge sample is cut into chunk ranges on CPU clusters, kept whole on GPU ones
    big = dask_backend.plan_tasks(2**30, 0, 1, slots=8, gpu=False)
    assert len(big) == 32 and all(p[0] == "chunks" for p in big)
    assert dask_backend.plan_tasks(2**30, 0, 1, slots=8, gpu=True) == [("samples", 0, 1)]


def test_option_errors():
    with pytest.raises(ValueError, match=r"chunk_samples must be an integer in \[1, inf\) or None, got 0$"):
        dask_backend.plan_tasks(10, 0, 5, 1, False, dask_backend._check_chunk_samples(0))
    with pytest.raises(TypeError, match=r"chunk_samples must be an integer in \[1, inf\) or None, got float 2\.5$"):
        dask_backend._check_chunk_samples(2.5)
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        dask_backend.get_client(42)
    with pytest.raises(ValueError, match=r"\['chunk_samples'\] apply to backend='dask' only"):
        lg.sample_angles(10, 2, backend="cpu", chunk_samples=1)
    # the documented defaults are accepted by every backend
    lg.sample_angles(10, 2, backend="cpu", client=None, chunk_samples=None, worker_backend="auto")


# --- identical to one machine --------------------------------------------------


@pytest.mark.parametrize(
    "dim, samples, seed, start, chunk_samples, model",
    [
        (1000, 257, 3, 0, None, "gaussian"),
        (1000, 257, 3, 0, 10, "gaussian"),
        (4097, 33, np.random.SeedSequence(12345, spawn_key=(2,)), 2**40, 7, "gaussian"),
        (2, 100, 0, 5, 1, "gaussian"),
        (999, 40, 6, 17, 9, "stable:1.5"),
        (999, 40, 6, 17, 9, "t:3"),
    ],
)
def test_dask_sums_identical_to_cpu(client, dim, samples, seed, start, chunk_samples, model):
    got = lg.sample_angles(
        dim, samples, model, seed=seed, start=start, backend="dask",
        client=client, chunk_samples=chunk_samples,
    )
    ref = lg.sample_angles(dim, samples, model, seed=seed, start=start, backend="cpu")
    assert got.backend == "dask" and got.start == start and got.dim == dim
    assert np.array_equal(got.sums, ref.sums)
    assert np.array_equal(got.bisector, ref.bisector)
    assert np.array_equal(got.fixed_axis, ref.fixed_axis)


def test_cluster_info_checks_workers(client, monkeypatch):
    assert dask_backend.cluster_info(client) == (2, "cpu")  # 2 workers x 1 thread, no GPU
    assert dask_backend.cluster_info(client, "cpu") == (2, "cpu")
    with pytest.raises(ValueError, match="worker_backend must be"):
        dask_backend.cluster_info(client, "gpu")
    if not any(i["cuda"] for i in client.run(dask_backend.worker_info).values()):
        with pytest.raises(RuntimeError, match="no usable CUDA GPU"):
            dask_backend.cluster_info(client, "cuda")
    monkeypatch.setattr(lg, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match="other lni_geometry versions"):
        lg.sample_angles(10, 2, backend="dask", client=client)


@pytest.mark.parametrize("model", ["gaussian", "stable:0.8", "t:2.5"])
def test_chunk_split_samples_identical_to_cpu(client, monkeypatch, model):
    # make a few samples at dim 2**18 worth splitting into chunk ranges
    monkeypatch.setattr(dask_backend, "MIN_TASK_COORDS", kernels.CHUNK)
    dim = 2**18 + 123  # a short last chunk
    plan = dask_backend.plan_tasks(dim, 9, 2, slots=2, gpu=False)
    assert sum(p[0] == "chunks" for p in plan) >= 4
    ticks = []
    got = dask_backend.sample_sums(rng.key_from_seed(5), lg.model_from_spec(model), dim, 9, 2,
                                   progress=ticks.append, options=dask_backend.DaskOptions(client=client))
    assert len(ticks) == len(plan)  # a callable progress hears of every task
    assert sum(ticks) == pytest.approx(2)  # in samples, as every backend
    assert np.array_equal(got, cpu_sums(dim, 2, seed=5, start=9, model=model))


def test_progress_bar_and_address(cluster, client, capsys):
    got = lg.sample_angles(300, 40, seed=8, backend="dask", client=cluster.scheduler_address,
                           chunk_samples=10, progress=True)
    assert np.array_equal(got.sums, cpu_sums(300, 40, seed=8))
    assert "40/40" in capsys.readouterr().err  # tqdm over the 40 samples (4 tasks)


def test_active_default_client_is_used(cluster):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(cluster) as active:  # becomes dask's default client
        assert dask_backend.get_client(None) == (active, False)
        got = lg.sample_angles(100, 10, seed=2, backend="dask")
    assert dask_backend._DEFAULT["client"] is None  # no embedded cluster was started
    assert np.array_equal(got.sums, cpu_sums(100, 10, seed=2))


def test_embedded_local_cluster():
    pytest.importorskip("distributed")
    try:
        got = lg.sample_angles(500, 64, seed=4, backend="dask", chunk_samples=16)
        client = dask_backend._DEFAULT["client"]
        assert client is not None
        workers = dask_backend._scheduler_workers(client)
        n_workers, threads = dask_backend._embedded_shape()
        assert len(workers) == n_workers
        assert all(w["nthreads"] == threads for w in workers.values())
        # numba's pool in each worker process holds the worker's threads only
        info = client.run(dask_backend.worker_info)
        assert all(i["numba_threads"] == threads for i in info.values())
        assert lg.sample_angles(500, 8, seed=4, backend="dask") is not None
        assert dask_backend._DEFAULT["client"] is client  # reused, not restarted
    finally:
        dask_backend.close_default_client()
    assert dask_backend._DEFAULT["client"] is None
    assert np.array_equal(got.sums, cpu_sums(500, 64, seed=4))


# --- faults ------------------------------------------------------------------------


def test_killed_worker_costs_only_its_tasks():
    distributed = pytest.importorskip("distributed")
    dim, samples, per, seed, start = 2**18, 1600, 400, 11, 3  # 4 tasks of 1e8 coords (~0.3 s)
    with _cluster() as cluster, distributed.Client(cluster, set_as_default=False) as client:
        _warm(client)
        pids = client.run(os.getpid)
        key = rng.key_from_seed(seed)
        job, futures = dask_backend.submit_sums(
            client, key, Gaussian(), dim, start, samples, chunk_samples=per
        )
        keys = [f.key for f in futures]
        # kill a worker as soon as it starts a task: that task is lost with it
        victim, lost = None, []
        deadline = time.monotonic() + 60
        while victim is None:
            assert time.monotonic() < deadline, "no task started within 60 s"
            for addr, running in client.processing().items():
                if running:
                    victim, lost = addr, list(running)
                    break
            else:
                time.sleep(0.002)
        os.kill(pids[victim], signal.SIGKILL)
        sums = dask_backend.wait_jobs(client, [(job, futures)])[0]
        story = client.story(*keys)
        assert pids[victim] not in client.run(os.getpid).values()  # it died (the nanny restarts one)
    # the scheduler took the lost tasks back from the dead worker and ran them again ...
    for k in lost:
        assert any(e[0] == "scheduler" and e[1] == k and e[2] == "processing" and e[3] == "released"
                   and str(e[5]).startswith("handle-worker-cleanup") for e in story)
    # ... every task finished exactly once (no finished result was recomputed) ...
    for k in keys:
        assert sum(e[0] == "scheduler" and e[1] == k and e[3] == "memory" for e in story) == 1
    # ... and the result is the same bits as one machine
    assert np.array_equal(sums, cpu_sums(dim, samples, seed=seed, start=start))


# --- sweeps ----------------------------------------------------------------------


def _stats(table):
    return [{k: v for k, v in row.items() if k not in ("backend", "cached")} for row in table]


def test_sweep_rows_reproduce_sample_angles():
    t = sweep([8, 300], ["gaussian", Gaussian()], 50, seed=7, backend="cpu", progress=False)
    assert [(r["dim"], r["model"]) for r in t] == [
        (8, "gaussian"), (8, "gaussian"), (300, "gaussian"), (300, "gaussian")
    ]
    for row in t:
        theta = lg.sample_angles(row["dim"], 50, row["model"], seed=7, backend="cpu").bisector
        assert row["mean"] == theta.mean() and row["std"] == theta.std(ddof=1)
        assert row["sem"] == row["std"] / np.sqrt(50)
        assert [row["q05"], row["q50"], row["q95"]] == list(np.quantile(theta, [0.05, 0.5, 0.95]))
        assert row["mean_deg"] == np.degrees(row["mean"])
        assert row["samples"] == 50 and row["seed"] == 7 and row["backend"] == "cpu"
        assert row["cached"] is False
        assert list(row) == list(sweep_module.COLUMNS)
    assert t.column("dim").tolist() == [8, 8, 300, 300]
    assert "mean_deg" in str(t)


def test_sweep_dask_identical_to_cpu(client, tmp_path):
    seed = np.random.SeedSequence(99)
    dims, models = [16, 1000], ["gaussian"]
    local = sweep(dims, models, 64, seed=seed, backend="cpu", progress=False)
    dist = sweep(dims, models, 64, seed=seed, backend="dask", client=client,
                 cache=tmp_path, progress=False)
    assert _stats(dist) == _stats(local)
    assert {r["backend"] for r in dist} == {"dask:cpu"}
    # cells stored by the dask sweep are read back by a local one
    again = sweep(dims, models, 64, seed=seed, backend="cpu", cache=tmp_path, progress=False)
    assert all(r["cached"] for r in again) and _stats(again) == _stats(local)


def test_sweep_cache_rerun_computes_nothing(tmp_path, monkeypatch):
    args = ([10, 20, 40], ["gaussian"], 30)
    first = sweep(*args, seed=3, backend="cpu", cache=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 3

    def boom(*a, **k):
        raise AssertionError("a cached cell was computed again")

    monkeypatch.setattr(sweep_module, "_compute_cell", boom)
    monkeypatch.setattr(dask_backend, "submit_sums", boom)
    for backend in ("cpu", "dask"):
        again = sweep(*args, seed=3, backend=backend, cache=tmp_path, progress=False)
        assert all(r["cached"] for r in again)
        assert _stats(again) == _stats(first)
    # other parameters are other cells
    with pytest.raises(AssertionError, match="computed again"):
        sweep(*args, seed=4, backend="cpu", cache=tmp_path, progress=False)
    with pytest.raises(AssertionError, match="computed again"):
        sweep([10], ["gaussian"], 31, seed=3, backend="cpu", cache=tmp_path, progress=False)


def test_interrupted_sweep_loses_nothing(tmp_path, monkeypatch):
    real = sweep_module._compute_cell
    calls = []

    def interrupted(*a):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(a[:2])
        return real(*a)

    monkeypatch.setattr(sweep_module, "_compute_cell", interrupted)
    dims = [12, 24, 48, 96]
    with pytest.raises(KeyboardInterrupt):
        sweep(dims, "gaussian", 20, seed=1, backend="cpu", cache=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2 and not list(tmp_path.glob("*.tmp"))

    calls.clear()
    monkeypatch.setattr(sweep_module, "_compute_cell", lambda *a: calls.append(a[:2]) or real(*a))
    resumed = sweep(dims, "gaussian", 20, seed=1, backend="cpu", cache=tmp_path, progress=False)
    assert [d for d, _ in calls] == [48, 96]  # only the cells the interruption lost
    assert [r["cached"] for r in resumed] == [True, True, False, False]
    monkeypatch.setattr(sweep_module, "_compute_cell", real)
    fresh = sweep(dims, "gaussian", 20, seed=1, backend="cpu", progress=False)
    assert _stats(resumed) == _stats(fresh)


def test_corrupt_cache_file_is_recomputed(tmp_path):
    first = sweep([10, 20], "gaussian", 30, seed=3, backend="cpu", cache=tmp_path, progress=False)
    victim = sorted(tmp_path.glob("d20_*.npz"))[0]
    victim.write_bytes(b"not an npz file")
    again = sweep([10, 20], "gaussian", 30, seed=3, backend="cpu", cache=tmp_path, progress=False)
    assert [r["cached"] for r in again] == [True, False]
    assert _stats(again) == _stats(first)
    assert lg.AngleSample.load(victim).dim == 20  # rewritten


def test_sweep_errors(tmp_path):
    with pytest.raises(ValueError, match="dims must not be empty"):
        sweep([], "gaussian", 10, backend="cpu")
    with pytest.raises(ValueError, match=r"samples must be an integer in \[2, inf\), got 1$"):
        sweep([10], "gaussian", 1, backend="cpu")
    with pytest.raises(ValueError, match=r"dim must be an integer in \[2, 2\*\*40\], got 1$"):
        sweep([1], "gaussian", 10, backend="cpu")
    with pytest.raises(ValueError, match="client is only used with backend='dask'"):
        sweep([10], "gaussian", 10, backend="cpu", client="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="backend must be one of"):
        sweep([10], "gaussian", 10, backend="gpu")
    with pytest.raises(TypeError, match="model must be"):
        sweep([10], [3.5], 10, backend="cpu")
    with pytest.raises(ValueError, match="seed must be a non-negative"):
        sweep([10], "gaussian", 10, seed=-1, backend="cpu")
