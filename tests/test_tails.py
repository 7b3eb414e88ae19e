"""tail_index, the stable tail series, alpha_for_angle and the speed probe.

Power (smallest errors detected): the estimator's arithmetic, any change beyond
1e-12 relative (test_estimator_check_rejects_a_wrong_scale: 1% and log(m + 1));
alpha recovered from 1e6 stable draws within 5 standard errors, an error of 0.066
at alpha = 1.5; Student-t(3) against 20 independent numpy data sets, a shift of
0.08; alpha_for_angle, 5 of its reported standard errors (about 0.1 at 300
samples); the tail series, 1e-13 relative against the Cauchy closed form.
"""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from lni_geometry import sample_vectors
from lni_geometry.bench.models import stable_draws_per_second
from lni_geometry.models import StudentT, SymmetricStable
from lni_geometry.tails import (
    alpha_for_angle,
    stable_mean_angle,
    stable_tail_constant,
    stable_tail_probability,
    tail_index,
)

Z_MAX = 5.0


def tail_index_se_bound(alpha, n, m):
    """An upper bound on the standard error of alpha_hat (delta method).

    1/alpha_hat = (mean_K log|Y| - mean_N log|X|)/log m with Var log|X| = v =
    pi**2/6 (1/alpha**2 + 1/2) for any stable law, the same for log|Y|;
    sd(difference) <= sqrt(v/K) + sqrt(v/N); d alpha = alpha**2 d(1/alpha).
    """
    v = math.pi**2 / 6 * (1 / alpha**2 + 0.5)
    k = n // m
    return alpha**2 * (math.sqrt(v / k) + math.sqrt(v / n)) / math.log(m)


@pytest.mark.parametrize("alpha", [0.7, 1.2, 1.5, 2.0])
def test_tail_index_recovers_alpha(alpha):
    """Within 5 standard errors (the bound above): an error in alpha of 0.024 at
    alpha = 0.7, 0.066 at 1.5 and 0.105 at 2 would fail.  The estimator's arithmetic
    is checked exactly by test_tail_index_is_the_mohammadi_estimator."""
    n = 10**6
    x = sample_vectors(n, 1, SymmetricStable(alpha, 3.0), seed=21)
    m = math.isqrt(n)
    est = tail_index(x)
    assert abs(est - alpha) < Z_MAX * tail_index_se_bound(alpha, n, m), est


def test_tail_index_block_argument():
    x = sample_vectors(10**5, 1, SymmetricStable(1.2), seed=22).ravel()
    assert tail_index(x, block=316) == tail_index(x)  # isqrt(1e5) = 316
    assert tail_index(x, block=50) != tail_index(x)


@given(c=st.floats(min_value=1e-6, max_value=1e6))
def test_tail_index_scale_invariant(c):
    x = sample_vectors(4000, 1, SymmetricStable(1.1), seed=23).ravel()
    assert math.isclose(tail_index(c * x), tail_index(x), rel_tol=1e-9)


def mohammadi(x, m):
    """The estimator written out from its definition (Mohammadi et al. 2015; Simsekli
    et al. 2019), independently of tails.tail_index: K = N // m blocks of m entries,
    Y_i the block sums, 1/alpha = (mean log|Y_i| - mean log|X_j|)/log m over the m K
    entries used."""
    x = np.ravel(np.asarray(x, dtype=np.float64))
    k = x.size // m
    x = x[: k * m]
    y = x.reshape(k, m).sum(axis=1)
    return math.log(m) / (np.mean(np.log(np.abs(y))) - np.mean(np.log(np.abs(x))))


def check_estimator(estimate):
    """``estimate(x, block)`` equals the definition above to 1e-12 on Cauchy data with
    a ragged end, for the default and explicit block sizes."""
    x = np.random.default_rng(5).standard_cauchy(100_003)
    for block in (None, 2, 37, 316):
        m = block or math.isqrt(x.size)
        assert estimate(x, block) == pytest.approx(mohammadi(x, m), rel=1e-12), block


def test_tail_index_is_the_mohammadi_estimator():
    check_estimator(lambda x, block: tail_index(x, block=block))


def test_estimator_check_rejects_a_wrong_scale():
    """Power: an estimate 1% too large, or with log(m + 1) for log(m), fails."""
    with pytest.raises(AssertionError):
        check_estimator(lambda x, block: 1.01 * tail_index(x, block=block))
    with pytest.raises(AssertionError):
        check_estimator(lambda x, block: tail_index(x, block=block) * math.log((block or 316) + 1)
                        / math.log(block or 316))


def test_tail_index_misleads_on_finite_variance():
    """Student-t with df = 3 has tail index 3, but the estimator reads its block
    sums' slow approach to the normal law: about 1.82 at N = 1e6.  Reference,
    independent of the package: the definition above on 20 data sets of numpy's
    ``standard_t(3)`` (mean 1.818, sd 0.016).  The package's estimate on its own
    draws (1.824) must lie within 5 sd sqrt(1 + 1/20) of their mean (the smallest
    shift it detects: 0.08), and far from 3."""
    gen = np.random.default_rng(2026)
    ref = np.array([mohammadi(gen.standard_t(3.0, 10**6), 1000) for _ in range(20)])
    mean, sd = ref.mean(), ref.std(ddof=1)
    assert 0.005 < sd < 0.05 and mean < 2
    x = sample_vectors(10**6, 1, StudentT(3.0), seed=24)
    assert abs(tail_index(x) - mean) < 5 * sd * math.sqrt(1 + 1 / 20), (tail_index(x), mean, sd)


def test_tail_index_bad_input():
    with pytest.raises(ValueError, match="zeros"):
        tail_index(np.array([1.0, 0.0, 2.0, -1.0, 3.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        tail_index(np.array([1.0, np.nan, 2.0, -1.0, 3.0]))
    with pytest.raises(ValueError, match="at least 4"):
        tail_index([1.0, 2.0])
    with pytest.raises(ValueError, match=r"block must be an integer in \[2, 50\], got 51$"):
        tail_index(np.arange(1.0, 101.0), block=51)
    with pytest.raises(TypeError, match=r"block must be an integer in \[2, 50\], got float 2\.5$"):
        tail_index(np.arange(1.0, 101.0), block=2.5)
    with pytest.raises(TypeError, match="real numbers"):
        tail_index(np.array(["a", "b", "c", "d"]))


def test_tail_constant_two_forms():
    for a in (0.3, 0.5, 1.5, 1.9):
        other = (1 - a) / (math.gamma(2 - a) * math.cos(math.pi * a / 2))
        assert math.isclose(stable_tail_constant(a), other, rel_tol=1e-13)
    assert math.isclose(stable_tail_constant(1.0), 2 / math.pi, rel_tol=1e-15)
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \(0, 2\), got 2\.0$"):
        stable_tail_constant(2.0)


def test_tail_series_cauchy_exact():
    x = np.logspace(0.5, 8, 50)
    p, err = stable_tail_probability(x, 1.0, return_error=True)
    np.testing.assert_allclose(p, 2 / np.pi * np.arctan(1 / x), rtol=1e-13)
    assert np.all(err < 1e-12 * p)
    # scale: P(|X| > x) at scale s is the standard law at x/s
    np.testing.assert_allclose(stable_tail_probability(3 * x, 1.0, scale=3.0), p, rtol=1e-14)


def test_tail_series_against_scipy_in_the_bulk():
    # alpha < 1: the series converges everywhere; scipy's sf is reliable at moderate x
    x = np.array([0.5, 1.0, 10.0])
    np.testing.assert_allclose(stable_tail_probability(x, 0.5), 2 * stats.levy_stable(0.5, 0).sf(x), rtol=1e-6)


def test_tail_series_reports_its_error():
    # near alpha = 2 and at moderate x the asymptotic series is useless, and says so
    p, err = stable_tail_probability(3.0, 1.9, return_error=True)
    assert err > 0.1 * p


def test_alpha_for_angle_inverts_the_mean():
    dim, samples = 1000, 300
    target, _ = stable_mean_angle(1.5, dim, samples, seed=7)
    r = alpha_for_angle(target, dim, samples=samples, seed=7)
    # same random numbers: the inverse is exact up to the root tolerance
    assert abs(r.alpha - 1.5) < 5e-3
    # other random numbers: within the reported Monte Carlo uncertainty
    r2 = alpha_for_angle(target, dim, samples=samples, seed=8)
    assert 0 < r2.stderr < 0.1
    assert abs(r2.alpha - 1.5) < Z_MAX * math.hypot(r.stderr, r2.stderr)


def test_alpha_for_angle_out_of_range():
    with pytest.raises(ValueError, match="Gaussian"):
        alpha_for_angle(math.radians(30), 1000, samples=50)
    with pytest.raises(ValueError, match=r"angle must be a finite number in \(0, pi/2\), got 1\.658"):
        alpha_for_angle(math.radians(95), 1000, samples=50)
    with pytest.raises(ValueError, match="alpha_min"):
        alpha_for_angle(math.radians(88.1), 1000, samples=50)


def test_draws_per_second_probe():
    r = stable_draws_per_second(dim=4096, samples=16, repeat=1, scipy_size=2000)
    assert r["lni_geometry"] > 0 and r["scipy"] > 0 and r["ratio"] == r["lni_geometry"] / r["scipy"]
