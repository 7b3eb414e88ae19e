"""sample_angles: exact laws, exact moments, invariances and input checks.

Power (smallest errors detected; the power checks themselves are in
tests/test_theory.py, on the same kinds of statistics): KS of the fixed-axis angle,
a cdf error of about ``1.95/sqrt(N)`` (0.014 at 2e4 draws, 0.08 at 600); the
cosine's mean within 5 standard errors, a relative bias in ``l1`` of
``5 sd(cos)/(sqrt(N) E cos)`` (9.4e-4 at n = 100 and 2e4 draws, 3e-4 at n = 1e4
and 2000); its variance, ``5 sqrt((kurtosis - 1)/N)`` relative (3.5% at 4e4).
The invariances are bit for bit.
"""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import special, stats

from lni_geometry import AngleSample, Gaussian, bisector_angle, fixed_axis_angle, sample_angles, sample_vectors
from lni_geometry import kernels

# A KS test at a fixed seed "fails" with probability 1e-3 under the null: a
# deterministic outcome, but a threshold set by the test's own law, not tuned.
P_MIN = 1e-3


def fixed_axis_cdf(angle, dim):
    """Exact cdf of the angle to a fixed axis: (1 + cos a)/2 ~ Beta((n-1)/2, (n-1)/2)."""
    h = (dim - 1) / 2
    return special.betainc(h, h, (1 - np.cos(angle)) / 2)


@pytest.mark.parametrize("dim, samples", [(3, 20_000), (1000, 5_000), (10**6, 600)])
def test_fixed_axis_angle_exact_law(dim, samples):
    s = sample_angles(dim, samples, seed=dim, backend="cpu")
    res = stats.kstest(s.fixed_axis, lambda a: fixed_axis_cdf(a, dim))
    assert res.pvalue > P_MIN, res


def exact_cos_moments(dim):
    """E cos and Var cos of the bisector angle of a uniform point (exact)."""
    log_an = math.log(dim) + special.gammaln(dim / 2) - 0.5 * math.log(math.pi) - special.gammaln((dim + 1) / 2)
    mean = math.exp(log_an) / math.sqrt(dim)
    second = (1 + 2 * (dim - 1) / math.pi) / dim
    return mean, second - mean**2


@pytest.mark.parametrize("dim, samples", [(2, 40_000), (5, 40_000), (100, 20_000), (10_000, 2_000)])
def test_bisector_cosine_mean_and_variance(dim, samples):
    """Sample mean and variance of cos within 5 standard errors of the exact values."""
    c = np.cos(sample_angles(dim, samples, seed=17, backend="cpu").bisector)
    mean, var = exact_cos_moments(dim)
    assert abs(c.mean() - mean) < 5 * math.sqrt(var / samples)
    # standard error of the sample variance: sqrt((mu4 - var**2) / n), mu4 estimated
    mu4 = np.mean((c - c.mean()) ** 4)
    assert abs(c.var(ddof=1) - var) < 5 * math.sqrt((mu4 - var**2) / samples)


def test_dim2_bisector_angle_is_uniform_on_quarter_pi():
    s = sample_angles(2, 50_000, seed=2, backend="cpu")
    assert s.bisector.max() <= math.pi / 4
    assert stats.kstest(s.bisector, stats.uniform(0, math.pi / 4).cdf).pvalue > P_MIN


def test_concentration_at_large_dim():
    """At dim 4e6 the angle sits at arccos(sqrt(2/pi)) within its exact spread."""
    s = sample_angles(4 * 10**6, 8, seed=1, backend="cpu")
    mean, var = exact_cos_moments(4 * 10**6)
    c = np.cos(s.bisector)
    assert np.all(np.abs(c - mean) < 6 * math.sqrt(var))


@given(
    dim=st.integers(2, 300),
    cuts=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    start=st.integers(0, 2**40),
)
def test_chunk_invariance(dim, cuts, start):
    """Any split of a sample range into start/samples pieces equals the whole, bit for bit."""
    total = sum(cuts)
    whole = sample_angles(dim, total, seed=9, start=start, backend="cpu")
    pieces, pos = [], start
    for n in cuts:
        pieces.append(sample_angles(dim, n, seed=9, start=pos, backend="cpu"))
        pos += n
    joined = AngleSample.concatenate(pieces)
    np.testing.assert_array_equal(joined.sums, whole.sums)
    np.testing.assert_array_equal(joined.bisector, whole.bisector)


def test_chunk_invariance_across_kernel_chunks():
    """Dims spanning several kernel chunks: sample pieces equal the whole."""
    dim = 2 * kernels.CHUNK + 13
    whole = sample_angles(dim, 9, seed=4, backend="cpu")
    pieces = [sample_angles(dim, 1, seed=4, start=i, backend="cpu") for i in range(9)]
    np.testing.assert_array_equal(AngleSample.concatenate(pieces).sums, whole.sums)


@pytest.mark.parametrize("dim, samples", [(3 * kernels.CHUNK + 5, 3), (1001, 40)])
def test_thread_count_invariance(two_thread_runs, dim, samples):
    """One and two numba threads (forced in a subprocess: tests/conftest.py) give the
    same bits, and the same bits as this process with its own thread count."""
    assert kernels.CHUNK == 65536  # the case list in conftest.py assumes it
    one, two = two_thread_runs[(dim, samples, "gaussian", 5, 3)]
    assert one == two
    here = sample_angles(dim, samples, seed=5, start=3, backend="cpu").sums
    assert [float(x).hex() for x in here.ravel()] == one


def test_launch_shapes_agree():
    """Thread-per-sample and chunks-of-one-sample kernels give the same bits."""
    dim, samples, start = 2 * kernels.CHUNK + 777, 3, 11
    key = np.random.SeedSequence(0).generate_state(2, np.uint32)
    a = np.empty((samples, 3))
    kernels.sums_over_samples(0, 0.0, 0.0, key[0], key[1], start, samples, dim, a)
    nch = kernels.n_chunks(dim)
    for i in range(samples):
        parts = np.empty((nch, 3))
        kernels.chunk_sums_of_sample(0, 0.0, 0.0, key[0], key[1], start + i, dim, 0, nch, parts)
        assert kernels.add_rows_in_order(parts) == tuple(a[i])


@pytest.mark.parametrize("dim", [2, 3, 7, 513, 5000])
def test_sample_vectors_against_sample_angles(dim):
    s = sample_angles(dim, 6, seed=8, start=2, backend="cpu")
    v = sample_vectors(dim, 6, seed=8, start=2)
    np.testing.assert_allclose(np.abs(v).sum(axis=1), s.l1, rtol=1e-13)
    np.testing.assert_allclose((v * v).sum(axis=1), s.l2sq, rtol=1e-13)
    np.testing.assert_allclose(v.sum(axis=1), s.total, rtol=1e-12, atol=1e-12 * math.sqrt(dim))
    np.testing.assert_allclose(bisector_angle(v), s.bisector, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(fixed_axis_angle(v), s.fixed_axis, rtol=1e-11, atol=1e-12)


def test_sample_vectors_rows_are_samples():
    v = sample_vectors(9, 5, seed=1)
    np.testing.assert_array_equal(sample_vectors(9, 2, seed=1, start=3), v[3:5])


def test_seed_sequence_and_int_seed():
    a = sample_angles(50, 4, seed=np.random.SeedSequence(3), backend="cpu")
    b = sample_angles(50, 4, seed=3, backend="cpu")
    c = sample_angles(50, 4, seed=4, backend="cpu")
    np.testing.assert_array_equal(a.sums, b.sums)
    assert not np.array_equal(b.sums, c.sums)


def test_angle_sample_fields_and_save_load(tmp_path):
    s = sample_angles(100, 7, seed=np.random.SeedSequence(5, spawn_key=(2,)), start=4, backend="cpu")
    assert len(s) == 7 and s.dim == 100 and s.start == 4 and s.backend == "cpu"
    assert s.model == Gaussian()
    for name in ("bisector", "fixed_axis", "l1", "l2sq", "total"):
        arr = getattr(s, name)
        assert arr.dtype == np.float64 and arr.shape == (7,)
    assert np.all((s.bisector >= 0) & (s.bisector <= math.acos(1 / 10)))
    path = tmp_path / "s.npz"
    s.save(path)
    t = AngleSample.load(path)
    for name in ("bisector", "fixed_axis", "l1", "l2sq", "total"):
        np.testing.assert_array_equal(getattr(t, name), getattr(s, name))
    assert (t.dim, t.model, t.start, t.backend) == (s.dim, s.model, s.start, s.backend)
    assert t.seed.entropy == 5 and t.seed.spawn_key == (2,)
    assert "dim=100" in repr(s)


def test_load_rejects_foreign_and_corrupt_files(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    with pytest.raises(ValueError, match="not an AngleSample file"):
        AngleSample.load(foreign)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cannot read"):
        AngleSample.load(corrupt)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(dim=1, samples=1), ValueError, r"dim must be an integer in \[2, 2\*\*40\], got 1$"),
        (dict(dim=-5, samples=1), ValueError, "dim must be"),
        (dict(dim=2**41, samples=1), ValueError, "dim must be"),
        (dict(dim=10, samples=0), ValueError, r"samples must be an integer in \[1, inf\), got 0$"),
        (dict(dim=10, samples=1, start=-1), ValueError, r"start must be an integer in \[0, inf\), got -1$"),
        (dict(dim=10.0, samples=1), TypeError, r"dim must be an integer in \[2, 2\*\*40\], got float 10\.0 \(pass 10\)$"),
        (dict(dim=10, samples=2.5), TypeError, r"samples must be an integer in \[1, inf\), got float 2\.5$"),
        (dict(dim=10, samples="3"), TypeError, r"samples must be an integer in \[1, inf\), got str '3'$"),
        (dict(dim=True, samples=1), TypeError, r"dim must be an integer in \[2, 2\*\*40\], got bool True$"),
        (dict(dim=10, samples=1, seed=1.5), TypeError, "seed"),
        (dict(dim=10, samples=1, seed=-3), ValueError, "seed must be a non-negative integer, got -3"),
        (dict(dim=10, samples=1, backend="gpu"), ValueError, "backend must be one of"),
        (dict(dim=10, samples=1, model="cauchy!"), ValueError, "unknown model"),
        (dict(dim=10, samples=1, model=3), TypeError, "model must be"),
        (dict(dim=10, samples=2, start=2**48 - 1), ValueError, "start \\+ samples"),
    ],
)
def test_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        sample_angles(**kwargs)


def test_sample_vectors_bad_input():
    with pytest.raises(ValueError, match=r"dim must be an integer in \[2, 2\*\*40\], got 1$"):
        sample_vectors(1, 3)
    with pytest.raises(ValueError, match="materialise"):
        sample_vectors(2**20, 2**12)


def test_progress_runs(capsys):
    s = sample_angles(1000, 50, seed=1, backend="cpu", progress=True)
    assert len(s) == 50
    assert "sample" in capsys.readouterr().err
