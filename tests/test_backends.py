"""The written backend interface (lni_geometry.backends): one resolver, keys, options, progress.

The numbers of each backend are tested in test_sampling.py, test_stream_pins.py,
test_dask.py and test_cuda_sim.py; this file tests the contract they share.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import lni_geometry as lg
from lni_geometry import kernels, rng
from lni_geometry.backends import (
    BACKENDS,
    REGISTRY,
    Backend,
    DaskOptions,
    backend_options,
    get_backend,
)
from lni_geometry.models import Gaussian

KEY = rng.key_from_seed(7)


def _module(name):
    # the CUDA module imports without a GPU; get_backend("cuda") would refuse
    return importlib.import_module(REGISTRY[name], "lni_geometry.backends")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_backend_declares_the_interface(name):
    mod = _module(name)
    assert isinstance(mod, Backend)
    assert mod.NAME == name
    assert mod.Options is None or isinstance(mod.Options(), mod.Options)


@pytest.mark.parametrize("name", ["cpu", "cuda", "dask_backend", "cuda_parity"])
def test_backends_launch_kernels_compute(name):
    """No backend module defines a numba function: its kernels live in kernels.py / cuda_kernels.py."""
    mod = importlib.import_module(f"lni_geometry.backends.{name}")
    for attr, obj in vars(mod).items():
        py_func = getattr(obj, "py_func", None)
        if py_func is not None:
            assert py_func.__module__ != mod.__name__, f"{mod.__name__}.{attr} is a kernel"


def test_get_backend_is_the_one_resolver():
    assert BACKENDS == ("auto", "cpu", "cuda", "dask")
    assert get_backend("cpu").NAME == "cpu"
    assert get_backend("dask").NAME == "dask"
    assert get_backend("auto").NAME in ("cpu", "cuda")
    assert lg.sampling.resolve_backend("auto") == get_backend("auto").NAME
    with pytest.raises(ValueError, match="backend must be one of"):
        get_backend("gpu")


def test_a_seed_is_not_a_key():
    cpu = get_backend("cpu")
    with pytest.raises(TypeError, match=r"key must be two uint32 words .*key_from_seed"):
        cpu.sample_sums(5, Gaussian(), 10, 0, 2)
    with pytest.raises(TypeError, match="key must be"):
        get_backend("dask").sample_sums(np.random.SeedSequence(5), Gaussian(), 10, 0, 2)
    with pytest.raises(TypeError, match="model must be a GradientModel"):
        cpu.sample_sums(KEY, "gaussian", 10, 0, 2)


@pytest.mark.parametrize("dim, samples", [(100, 64), (3 * kernels.CHUNK + 5, 2)])
def test_cpu_progress_is_in_samples(dim, samples):
    # both launch shapes: one thread per sample, and chunks of one sample over threads
    ticks = []
    got = get_backend("cpu").sample_sums(KEY, Gaussian(), dim, 3, samples, progress=ticks.append)
    assert sum(ticks) == pytest.approx(samples)
    assert np.array_equal(got, get_backend("cpu").sample_sums(KEY, Gaussian(), dim, 3, samples))


def test_options_objects():
    dask = get_backend("dask")
    assert dask.Options is DaskOptions
    assert DaskOptions() == DaskOptions(client=None, chunk_samples=None, worker_backend="auto")
    with pytest.raises(ValueError, match="worker_backend must be"):
        DaskOptions(worker_backend="gpu")
    with pytest.raises(ValueError, match="chunk_samples"):
        DaskOptions(chunk_samples=0)
    with pytest.raises(TypeError, match="client must be"):
        DaskOptions(client=42)
    # the older keywords build the same options object
    assert backend_options(dask, client="tcp://h:1", chunk_samples=3) == DaskOptions("tcp://h:1", 3)
    assert backend_options(dask) == DaskOptions()
    assert backend_options(get_backend("cpu"), client=None, worker_backend="auto") is None
    with pytest.raises(ValueError, match="not both"):
        backend_options(dask, DaskOptions(), chunk_samples=3)
    with pytest.raises(ValueError, match=r"\['worker_backend'\] apply to backend='dask' only"):
        backend_options(get_backend("cpu"), worker_backend="cpu")


def test_sample_angles_checks_options():
    with pytest.raises(ValueError, match="backend 'cpu' takes no options"):
        lg.sample_angles(10, 2, backend="cpu", options=DaskOptions())
    with pytest.raises(TypeError, match="options of backend 'dask' must be a DaskOptions"):
        lg.sample_angles(10, 2, backend="dask", options={"chunk_samples": 1})


# --- the fixed order of the additions (found by planting bugs) -----------------------


def test_chunk_rows_are_added_first_to_last():
    """((0 + 1) + 1e16) - 1e16 is 0 in float64 (1e16 + 1 rounds to 1e16); last to first
    gives ((0 - 1e16) + 1e16) + 1 = 1."""
    parts = np.array([[1.0] * 3, [1e16] * 3, [-1e16] * 3])
    assert kernels.add_rows_in_order(parts) == (0.0, 0.0, 0.0)
    assert kernels.add_rows_in_order(parts[::-1].copy()) == (1.0, 1.0, 1.0)


def test_tile_lanes_are_folded_pairwise():
    """Entry j goes into lane j mod 16 and the 16 lanes are folded (0+1), (2+3), ...
    then their pairs: a buffer whose sums depend on the order gives the tree's value."""
    buf = np.zeros(16)
    buf[:4] = [1e16, 1.0, -1e16, 1.0]  # tree: (1e16 + 1) + (-1e16 + 1) = 0; in order: 1
    s1, s2, st = kernels._tile_sums(buf, 16)
    lanes = list(buf)
    while len(lanes) > 1:
        lanes = [lanes[i] + lanes[i + 1] for i in range(0, len(lanes), 2)]
    assert st == lanes[0] == 0.0
    assert sum(buf) == 1.0  # the order matters here


def test_chunks_spread_over_threads_equal_one_thread_per_sample():
    """Three chunks per sample: 3 samples (chunks over threads) give the bits of the same
    samples among 11 (one thread per sample)."""
    dim = 3 * kernels.CHUNK + 5
    whole = lg.sample_angles(dim, 11, "stable:1.2", seed=4, backend="cpu")
    few = lg.sample_angles(dim, 3, "stable:1.2", seed=4, start=2, backend="cpu")
    assert few.sums.tobytes() == whole.sums[2:5].tobytes()
