"""The fused kernels of the torch optimizers against numpy, and serial against parallel."""

import math

import numpy as np
import pytest

from lni_geometry import optim_kernels as ok


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    n = ok.PARALLEL_MIN + 12345  # several chunks, a ragged end, the parallel path
    m = (rng.standard_normal(n) * (rng.random(n) < 0.8)).astype(np.float32)
    g = (rng.standard_normal(n) * (rng.random(n) < 0.7)).astype(np.float32)
    z = rng.standard_normal(n).astype(np.float32)
    return m, g, z


def test_momentum_sums_against_numpy(arrays):
    """Sums against math.fsum of the float64 values (correctly rounded): 1e-12 relative;
    counts exactly."""
    m, g, z = arrays
    beta1, thr = 0.9, 0.05
    c = beta1 * m.astype(np.float64) + (1 - beta1) * g.astype(np.float64)
    got = ok.momentum_sums(m, g, beta1, thr, z)
    want_sums = [math.fsum(np.abs(c)), math.fsum(c * c)]
    for a, b in zip(got[:2], want_sums):
        assert abs(a / b - 1) < 1e-12
    assert got[2:6] == (
        int(np.count_nonzero(c)),
        int(np.sum(g == 0)),
        int(np.sum((g == 0) & (m != 0))),
        int(np.sum((g != 0) & (np.abs(m.astype(np.float64)) < thr))),
    )
    zz = z.astype(np.float64)
    assert abs(got[6] - math.fsum(c * zz)) < 1e-12 * math.fsum(np.abs(c * zz))
    assert abs(got[7] / math.fsum(zz * zz) - 1) < 1e-12


def test_serial_and_parallel_give_the_same_bits(arrays):
    m, g, z = arrays
    chunks = (m.size + ok.CHUNK - 1) // ok.CHUNK
    a, b = np.zeros((chunks, 8)), np.zeros((chunks, 8))
    ok._momentum_sums_parallel(m, g, z, 0.9, 0.01, a)
    ok._momentum_sums_serial(m, g, z, 0.9, 0.01, b)
    assert np.array_equal(a, b)
    a, b = np.zeros((chunks, 3)), np.zeros((chunks, 3))
    ok._c_sums_parallel(m, a)
    ok._c_sums_serial(m, b)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("n", [1000, ok.PARALLEL_MIN + 7])
def test_enim_update_against_numpy(n):
    rng = np.random.default_rng(n)
    p, m, g, z = (rng.standard_normal(n) for _ in range(4))
    want = 0.99 * p - 0.1 * (2.0 * (0.8 * m + 0.2 * g) - 3.0 * z)
    ok.enim_update(p, m, g, z, 0.8, 2.0, -3.0, 0.1, 0.99)
    np.testing.assert_allclose(p, want, rtol=1e-13, atol=1e-13)


def test_bad_arrays_are_refused():
    x = np.zeros(4, dtype=np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        ok.c_sums(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="one length"):
        ok.momentum_sums(x, np.zeros(3, dtype=np.float32), 0.9)
    with pytest.raises(ValueError, match="contiguous"):
        ok.c_sums(np.zeros(8, dtype=np.float32)[::2])
