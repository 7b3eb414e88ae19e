"""CUDA backend cases run under numba's CUDA simulator.

Not collected by a plain ``pytest`` run (the name does not match ``test_*.py``):
``tests/test_cuda_sim.py`` runs this file in a subprocess with
``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported.  Every case skips in a
process without the simulator.  To run it by hand::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -o addopts="" tests/cuda_sim_cases.py

Sizes are tiny: the simulator runs each CUDA thread as a Python thread.
"""

import numpy as np
import pytest
from numba import config

pytestmark = pytest.mark.skipif(
    not config.ENABLE_CUDASIM, reason="needs NUMBA_ENABLE_CUDASIM=1 set before numba is imported"
)

from lni_geometry import rng  # noqa: E402
from lni_geometry.backends import cpu  # noqa: E402
from lni_geometry.models import Gaussian, model_from_spec  # noqa: E402

#: |cuda - cpu| <= PARITY_RTOL * scale, scale = (l1, l2sq, l1) per column: the
#: coordinates are bit-identical under the simulator, only the order of the
#: float64 additions differs (a tree against eight lanes); the rounding error of
#: a sum of n terms is below n * 2**-53 * sum|terms| <= 1e-13 * scale at n <= 1000.
PARITY_RTOL = 1e-12

KEY = rng.key_from_seed(20240611)


def _cb():
    from lni_geometry.backends import require_cuda

    return require_cuda()


def _scaled_deviation(g, c):
    scale = np.stack([c[:, 0], c[:, 1], c[:, 0]], axis=1)
    return np.max(np.abs(g - c) / scale)


def _model(spec):
    return model_from_spec(spec)


# --- Philox words -------------------------------------------------------------


@pytest.mark.parametrize("draw", [0, 3])
def test_words_equal_cpu_philox(draw):
    samples = np.array([0, 1, 7, 2**32 - 1, 2**32 + 5, 2**48 - 1], dtype=np.int64)
    blocks = np.array([0, 3, 2**32 - 1, 2**32, 2**40 + 17, 2**64 - 1], dtype=np.uint64)
    words = _cb().philox_words(KEY, samples, blocks, draw)
    s = samples.astype(np.uint64)
    counters = np.stack(
        [
            blocks & np.uint64(0xFFFFFFFF),
            blocks >> np.uint64(32),
            s & np.uint64(0xFFFFFFFF),
            (s >> np.uint64(32)) | np.uint64(draw << 16),
        ],
        axis=1,
    ).astype(np.uint32)
    expected = rng.philox4x32_10(counters, KEY)
    assert words.dtype == np.uint32
    np.testing.assert_array_equal(words, expected)


def test_words_known_answer():
    # Random123's first known answer: counter 0, key 0.
    words = _cb().philox_words(np.zeros(2, np.uint32), [0], [0])
    assert [hex(w) for w in words[0]] == ["0x6627e8d5", "0xe169c58d", "0xbc57ac4c", "0x9b00dbd8"]


# --- coordinates and sums -------------------------------------------------------


@pytest.mark.parametrize("dim,start,samples", [(2, 0, 1), (37, 5, 2), (16, 2**40, 1)])
def test_coords_bit_identical(dim, start, samples):
    g = _cb().sample_coords(KEY, Gaussian(), dim, start, samples)
    c = cpu.sample_coords(KEY, Gaussian(), dim, start, samples)
    np.testing.assert_array_equal(g, c)


# (dim, start, samples, threads, iters): dim 2; dim not a multiple of the group
# (16) or of the slice; several slices per sample with a partial last one; a
# sample index above 2**32; one and several samples; the default layout.
AWKWARD = [
    (2, 0, 1, None, None),
    (3, 0, 2, 4, 1),
    (37, 5, 3, None, None),
    (300, 2**33 + 1, 2, 8, 2),
    (1001, 7, 1, 4, 3),
]


@pytest.mark.parametrize("dim,start,samples,threads,iters", AWKWARD)
def test_sums_match_cpu(dim, start, samples, threads, iters):
    g = _cb().sample_sums(KEY, Gaussian(), dim, start, samples, threads=threads, iters=iters)
    c = cpu.sample_sums(KEY, Gaussian(), dim, start, samples)
    assert g.shape == (samples, 3)
    assert _scaled_deviation(g, c) <= PARITY_RTOL


def test_sums_are_the_sums_of_the_coords():
    dim, start, samples = 45, 3, 2
    cb = _cb()
    x = cb.sample_coords(KEY, Gaussian(), dim, start, samples)
    g = cb.sample_sums(KEY, Gaussian(), dim, start, samples, threads=2, iters=1)
    ref = np.stack([np.abs(x).sum(1), (x * x).sum(1), x.sum(1)], axis=1)
    assert _scaled_deviation(g, ref) <= PARITY_RTOL


def test_chunk_invariance(monkeypatch):
    cb = _cb()
    dim, start = 70, 11
    whole = cb.sample_sums(KEY, Gaussian(), dim, start, 5, threads=4, iters=1)
    parts = np.concatenate(
        [
            cb.sample_sums(KEY, Gaussian(), dim, start, 2, threads=4, iters=1),
            cb.sample_sums(KEY, Gaussian(), dim, start + 2, 3, threads=4, iters=1),
        ]
    )
    monkeypatch.setattr(cb, "LAUNCH_COORDS", 1)  # one sample per launch
    calls = []
    one_per_launch = cb.sample_sums(KEY, Gaussian(), dim, start, 5, calls.append, threads=4, iters=1)
    assert calls == [1] * 5
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(whole, one_per_launch)


def test_register_path_equals_fill_coords_path():
    cb = _cb()
    for dim in (5, 83):
        a = cb.sample_sums(KEY, Gaussian(), dim, 1, 2, threads=4, iters=2)
        b = cb.sample_sums(KEY, Gaussian(), dim, 1, 2, threads=4, iters=2, generic=True)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spec", ["gaussian", "stable:1.5", "t:3"])
def test_every_model_matches_cpu(spec):
    model = _model(spec)
    cb = _cb()
    for dim, start, samples, threads, iters in [(2, 0, 1, 4, 1), (53, 9, 2, 4, 2)]:
        g = cb.sample_sums(KEY, model, dim, start, samples, threads=threads, iters=iters, generic=True)
        c = cpu.sample_sums(KEY, model, dim, start, samples)
        assert _scaled_deviation(g, c) <= PARITY_RTOL, (spec, dim)
        np.testing.assert_array_equal(
            cb.sample_coords(KEY, model, dim, start, samples),
            cpu.sample_coords(KEY, model, dim, start, samples),
        )


# --- the public paths -------------------------------------------------------------


def test_sample_angles_backend_cuda():
    from lni_geometry.sampling import sample_angles

    g = sample_angles(40, 3, seed=5, start=2, backend="cuda")
    c = sample_angles(40, 3, seed=5, start=2, backend="cpu")
    assert g.backend == "cuda"
    np.testing.assert_allclose(g.bisector, c.bisector, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.fixed_axis, c.fixed_axis, rtol=0, atol=1e-12)


def test_auto_never_picks_the_simulator():
    from lni_geometry.sampling import resolve_backend

    assert resolve_backend("auto") == "cpu"


def test_validate_parity_small():
    from lni_geometry.backends.cuda_parity import validate_parity

    res = validate_parity(dim=21, samples=2, start=4, seed=3)
    assert res["ok"] and res["words_equal"], res


def test_validate_fixed_axis_law_small():
    # The exact law at dim 8 by a KS test on 150 samples: p < 1e-3 has
    # probability 1e-3 for a correct sampler (fixed seed, so deterministic).
    from lni_geometry.backends.cuda_parity import validate_fixed_axis_law

    res = validate_fixed_axis_law(dim=8, samples=150, seed=1, threads=1)
    assert res["ok"], res


def test_bench_refuses_the_simulator():
    from lni_geometry.bench.cuda import bench_cuda

    with pytest.raises(RuntimeError, match="real GPU"):
        bench_cuda(dim=16)


# --- Enim's z at global coordinates (runs) ---------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normals_at_runs_equal_cpu_fill_normals(dtype):
    """Runs with starts that are not multiples of 4, an empty run, two samples: the CPU's numbers."""
    from numba import cuda

    from lni_geometry import optim_kernels

    key = (3, 5)
    samples = [2, 2, 7, 0]
    starts = [1, 13, 6, 4]
    lengths = [5, 7, 0, 9]
    offsets = [0, 5, 12, 12]
    d_out = cuda.to_device(np.full(21, np.nan, dtype=dtype))
    _cb().fill_normals_at(d_out, key, samples, starts, lengths, offsets)
    got = d_out.copy_to_host()
    want = np.full(21, np.nan, dtype=dtype)
    for s, a, n, o in zip(samples, starts, lengths, offsets):
        part = np.empty(n, dtype=dtype)
        optim_kernels.fill_normals(part, key, sample=s, start=a)
        want[o:o + n] = part
    assert np.array_equal(got, want, equal_nan=True)


# --- the torch optimizers' kernels (not yet their default on CUDA) ------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lion_kernel_is_the_cpu_kernel_bit_for_bit(dtype):
    from numba import cuda

    from lni_geometry import optim_kernels

    rng_ = np.random.default_rng(0)
    p, m, g = (rng_.standard_normal(37).astype(dtype) for _ in range(3))
    g[:5] = 0.0
    m[3] = 0.0
    dp, dm, dg = (cuda.to_device(x) for x in (p, m, g))
    _cb().lion_update_at(dp, dm, dg, 0.9, 0.99, 1e-3, 0.1)
    optim_kernels.lion_update(p, m, g, 0.9, 0.99, 1e-3, 0.1)
    assert np.array_equal(dp.copy_to_host(), p) and np.array_equal(dm.copy_to_host(), m)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_momentum_sums_kernel_equals_the_cpus(dtype):
    from numba import cuda

    from lni_geometry import optim_kernels

    rng_ = np.random.default_rng(1)
    m, g = (rng_.standard_normal(300).astype(dtype) for _ in range(2))
    g[::7] = 0.0
    m[::11] = 0.0
    m[1::13] = 1e-5
    got = _cb().momentum_sums_at(cuda.to_device(m), cuda.to_device(g), 0.9, threshold=1e-3, blocks=3)
    want = np.array(optim_kernels.momentum_sums(m, g, 0.9, threshold=1e-3, rounded=True)[:6], dtype=float)
    assert np.array_equal(got[2:], want[2:]) and want[5] > 0 and want[4] > 0  # counts exact, each kind seen
    np.testing.assert_allclose(got[:2], want[:2], rtol=1e-12)
