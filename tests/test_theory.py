"""lni_geometry.theory: the laws of the angles against quadrature, closed forms and the sampler.

Statistical thresholds: a Kolmogorov-Smirnov p-value below ``P_MIN = 1e-3`` fails
(a correct law fails once in a thousand seeds; seeds are fixed); binomial
estimates and moments are compared within 5 standard errors.

Power (the smallest error each family detects; the ``*_rejects_*`` tests run the
same checks on deliberately wrong inputs and require them to fail):

- sampler against a law (:func:`check_sample_against_law`: KS, mean and spread):
  with N draws the spread check fails when the law's standard deviation is off by
  more than ``5 sqrt((kurtosis - 1)/(4N))`` relative (0.56% at N = 4e5, 1.6% at
  N = 5e4); the mean check at ``5/sqrt(N)`` standard deviations (0.008 sd at
  N = 4e5); KS at a cdf error of about ``1.95/sqrt(N)`` (0.003 at N = 4e5), so on
  its own it is marginal for a law 1% too wide (a cdf error of 0.0024);
- laws against the exact cosine moments (mpmath, n = 1e4 to 6e6): a mean off by
  1e-4 sd, a variance off by 1e-5 relative, the angle's sd off by 1e-4 relative;
- sampled cosine moments against the exact ones: a relative bias in the sum
  ``l1`` of ``5 sd(cos)/(sqrt(N) E cos)`` (2.1e-4 at n = 1000 and 4e4 draws,
  1.9e-5 at n = 1e5 and 5e4 draws);
- heavy-tailed angles at n = 1e5 against an independent numpy simulation: a cdf
  difference of 0.032 (two-sample KS, 6000 and 10000 draws);
- the limit laws of heavy-tailed angles (alpha >= 1) against a direct simulation
  of the limit variable (4e5 draws): a width error of 0.6%, a cdf error of 0.003;
  against the sampler only the trend of the KS distance with n (a noise of 0.0035
  per distance) and the distance at n = 1e5 to 0.024.
"""

import functools
import math
import re
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import lni_geometry as lg
from lni_geometry import theory as T

P_MIN = 1e-3
BULK = -math.log(2) - 0.5 * math.log(1 - 2 / math.pi)  # -0.18699


def _quad_mass(law, a, b, points=()):
    """Adaptive quadrature of the pdf over [a, b], piece by piece between the
    given break points (kinks of the density) and m + k s, k = -10..10."""
    m, s = law.mean(), law.std()
    cuts = {a, b, *points, *(m + k * s for k in range(-10, 11))}
    cuts = sorted(c for c in cuts if a <= c <= b)
    return sum(
        integrate.quad(law.pdf, lo, hi, limit=200, epsabs=1e-15, epsrel=1e-12)[0]
        for lo, hi in zip(cuts[:-1], cuts[1:])
    )


# --- normalisation and round trips ------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3, 10, 1000, 6 * 10**6, 10**9])
def test_fixed_axis_pdf_integrates_to_one(dim):
    law = T.FixedAxisAngle(dim)
    m, s = law.mean(), law.std()
    a, b = max(0.0, m - 40 * s), min(math.pi, m + 40 * s)  # the rest is < e^-800
    assert abs(_quad_mass(law, a, b, points=[m]) - 1.0) < 1e-10


@pytest.mark.parametrize(
    "dim,tol",
    [(2, 1e-12), (3, 1e-9), (10, 1e-5), (48, 1e-5), (49, 1e-9), (1000, 1e-9), (6 * 10**6, 1e-9)],
)
def test_bisector_pdf_integrates_to_one(dim, tol):
    """Exact and saddlepoint laws to 1e-9; the recursion's spline density (n <= 48)
    agrees with its own cdf to its interpolation error (1e-5)."""
    law = T.BisectorAngle(dim)
    lo, hi = law.support()
    m, s = law.mean(), law.std()
    a, b = max(lo, m - 40 * s), min(hi, m + 40 * s)
    a0 = math.asin(1 / math.sqrt(dim))
    assert abs(_quad_mass(law, a, b, points=[a0, m, math.pi / 4]) - 1.0) < tol


@pytest.mark.parametrize("dim", [4, 10, 100, 10**4, 6 * 10**6, 10**9])
@pytest.mark.parametrize("method", ["auto", "saddlepoint", "normal"])
def test_cdf_ppf_round_trip(dim, method):
    law = T.BisectorAngle(dim, method=method)
    q = np.array([1e-6, 1e-3, 0.05, 0.3, 0.5, 0.9, 0.999, 1 - 1e-6])
    np.testing.assert_allclose(law.cdf(law.ppf(q)), q, rtol=1e-7, atol=1e-12)
    x = law.ppf(q)
    np.testing.assert_allclose(law.cdf(x) + law.sf(x), 1.0, atol=1e-12)
    assert np.all(np.diff(x) > 0)


@given(dim=st.integers(2, 10**9), q=st.floats(1e-9, 1 - 1e-9))
@settings(max_examples=max(40, settings.default.max_examples), deadline=None)
def test_fixed_axis_round_trip_property(dim, q):
    law = T.FixedAxisAngle(dim)
    assert law.cdf(law.ppf(q)) == pytest.approx(q, rel=1e-8, abs=1e-14)


def test_finite_log_densities_at_dim_1e9():
    for law in (T.FixedAxisAngle(10**9), T.BisectorAngle(10**9), T.BisectorAngle(10**9, method="normal")):
        x = law.ppf(np.linspace(1e-6, 1 - 1e-6, 101))
        lp = law.logpdf(x)
        assert np.all(np.isfinite(lp)), law
        assert np.all(np.isfinite(law.cdf(x))) and np.all(np.isfinite(law.sf(x)))
    lp = T.log_sphere_factor(10**9, np.array([0.6, 0.647, 0.7]))
    assert np.all(np.isfinite(lp))


# --- the fixed-axis law's far tails ---------------------------------------------


@pytest.mark.parametrize("dim", [1000, 10**5, 6 * 10**6, 10**9])
def test_fixed_axis_tails_eight_sd_out(dim):
    """sf(m + 8 s) and cdf(m - 8 s) from the incomplete beta function against a
    direct quadrature of the density sin^(n-2)/B_n, relative 1e-6."""
    law = T.FixedAxisAngle(dim)
    m, s = law.mean(), law.std()
    for a, upper in ((m + 8 * s, True), (m - 8 * s, False)):
        lpa = float(law.logpdf(a))
        lo, hi = (a, a + 40 * s) if upper else (a - 40 * s, a)

        def ratio(x):
            return math.exp(float(law.logpdf(x)) - lpa)

        rel, _ = integrate.quad(ratio, lo, hi, epsabs=0, epsrel=1e-12, limit=400)
        ref = math.exp(lpa) * rel
        got = float(law.sf(a) if upper else law.cdf(a))
        assert got == pytest.approx(ref, rel=1e-6)
        assert 1e-17 < got < 1e-14  # 8 sd of a near-normal law: ~6e-16


@pytest.mark.parametrize("dim", [3, 10, 1000, 10**5, 6 * 10**6, 10**9])
def test_fixed_axis_tails_against_mpmath(dim):
    """cdf(pi/2 - 8 sd) and sf(pi/2 + 8 sd) against an independent reference:
    mpmath's regularised incomplete beta function at 30 digits (and its own
    quadrature of sin^(n-2)/B_n), P(A <= a) = I(sin^2 a; (n-1)/2, 1/2) / 2.
    The issue asks for a relative 1e-6; the implementation holds 1e-9."""
    mp = pytest.importorskip("mpmath")
    law = T.FixedAxisAngle(dim)
    s = law.std()
    a = max(math.pi / 2 - 8 * s, 0.05)  # dim 3: 8 sd reaches below 0
    with mp.workdps(30):
        n, x = mp.mpf(dim), mp.mpf(a)
        ref = 0.5 * mp.betainc((n - 1) / 2, mp.mpf(1) / 2, 0, mp.sin(x) ** 2, regularized=True)
        log_b = 0.5 * mp.log(mp.pi) + mp.loggamma((n - 1) / 2) - mp.loggamma(n / 2)
        quad = mp.quad(lambda t: mp.exp((n - 2) * mp.log(mp.sin(t)) - log_b), [max(0, x - 60 * s), x - 10 * s, x])
        assert abs(quad / ref - 1) < 1e-20  # the two references agree
        ref = float(ref)
    assert float(law.cdf(a)) == pytest.approx(ref, rel=1e-9)
    assert float(law.sf(math.pi - a)) == pytest.approx(ref, rel=1e-9)
    assert float(law.ppf(ref)) == pytest.approx(a, rel=1e-9)


_CONSISTENCY = [(2, "exact"), (3, "exact"), (4, "recursion"), (10, "recursion"), (48, "recursion")] + [
    (n, m) for n in (4, 5, 10, 20, 49, 1000, 10**6, 10**9) for m in ("saddlepoint", "normal")
]


@pytest.mark.parametrize("dim,method", _CONSISTENCY)
def test_pdf_is_the_derivative_of_the_cdf(dim, method):
    """The density integrated (Gauss-Legendre, 20 nodes) between the 999 quantiles
    q = 0.001 .. 0.999 matches the cdf differences, so pdf, cdf, sf and ppf describe
    one law.  The recursion's density and cdf are separate splines: they agree to
    their interpolation error (measured 2e-5 cumulative at n = 4, 1e-9 at n = 10 and 48); the others to 1e-7."""
    law = T.BisectorAngle(dim, method=method)
    x = law.ppf(np.linspace(0.001, 0.999, 999))
    xg, wg = np.polynomial.legendre.leggauss(20)
    mid, half = (x[1:] + x[:-1]) / 2, (x[1:] - x[:-1]) / 2
    mass = (law.pdf(mid[:, None] + half[:, None] * xg) * wg).sum(1) * half
    tol = 1e-4 if method == "recursion" else 1e-7
    np.testing.assert_allclose(np.cumsum(mass), law.cdf(x[1:]) - law.cdf(x[0]), atol=tol)
    np.testing.assert_allclose(law.cdf(x) + law.sf(x), 1.0, atol=1e-12)


@pytest.mark.parametrize("dim", [1000, 10**6])
def test_bisector_far_tails_are_the_integrals_of_the_density(dim):
    """sf and cdf 8 sd out (probabilities ~1e-15 and below, where 1 - cdf would
    be all rounding) equal the quadrature of the law's own density there."""
    law = T.BisectorAngle(dim)
    m, s = law.mean(), law.std()
    lo, hi = law.support()
    for a, upper in ((m + 8 * s, True), (m - 8 * s, False)):
        lpa = float(law.logpdf(a))
        end = min(hi, a + 40 * s) if upper else max(lo, a - 40 * s)
        rel, _ = integrate.quad(lambda t: math.exp(float(law.logpdf(t)) - lpa), *sorted((a, end)),
                                epsabs=0, epsrel=1e-10, limit=200)
        got = float(law.sf(a) if upper else law.cdf(a))
        assert 0 < got < 1e-12
        assert got == pytest.approx(math.exp(lpa) * rel, rel=1e-6)


def test_scalars_arrays_and_outside_the_support():
    for law in (T.FixedAxisAngle(7), T.BisectorAngle(7), T.BisectorAngle(7, method="normal"),
                T.BisectorAngle(3), T.StableBisectorAngle(100, 1.5)):
        lo, hi = law.support()
        assert isinstance(law.pdf(0.5 * (lo + hi)), float) and isinstance(law.cdf(0.3), float)
        x = np.linspace(lo, hi, 12).reshape(3, 4)
        for f in (law.pdf, law.logpdf, law.cdf, law.sf):
            assert np.shape(f(x)) == (3, 4)
        assert law.pdf(hi + 0.1) == 0.0 and law.logpdf(-0.1) == -np.inf
        assert law.cdf(-0.1) == 0.0 and law.cdf(hi + 0.1) == 1.0 and law.sf(hi + 0.1) == 0.0
        assert np.isnan(law.cdf(np.nan)) and np.isnan(law.logpdf(np.nan))
        assert np.isnan(law.ppf(1.5)) and np.isnan(law.ppf(-0.1))
        assert law.ppf(0.0) == pytest.approx(lo, abs=1e-12) and law.ppf(1.0) == pytest.approx(hi, abs=1e-9)


# --- exact laws and the sampler -------------------------------------------------------


def test_dim2_exact_law_is_uniform_and_matches_the_sampler():
    law = T.BisectorAngle(2)
    x = np.linspace(0, math.pi / 4, 9)
    np.testing.assert_allclose(law.cdf(x), x / (math.pi / 4), atol=1e-15)
    s = lg.sample_angles(2, 100_000, seed=11, backend="cpu")
    assert stats.kstest(s.bisector, law.cdf).pvalue > P_MIN


def test_dim3_exact_law_matches_the_sampler_and_its_orthant_fraction():
    law = T.BisectorAngle(3)
    s = lg.sample_angles(3, 100_000, seed=12, backend="cpu")
    assert stats.kstest(s.bisector, law.cdf).pvalue > P_MIN
    angles = np.array([0.65, 0.75, 0.85])
    g = np.exp(T.log_orthant_fraction(3, angles))
    np.testing.assert_allclose(g, 1 - 3 / math.pi * np.arccos(1 / (np.tan(angles) * math.sqrt(2))), rtol=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_exact_laws_against_histograms(dim):
    """Pearson's chi-square of a 60-bin histogram of 2e5 sampled angles against
    the exact law's bin probabilities (lni_geometry.compare); p > P_MIN."""
    from lni_geometry.compare import compare

    s = lg.sample_angles(dim, 200_000, seed=20 + dim, backend="cpu")
    c = compare(s.bisector, T.BisectorAngle(dim), bins=60)
    assert c.chi2_dof >= 50
    assert c.chi2_pvalue > P_MIN, c


@functools.lru_cache(maxsize=None)
def _sample(dim, samples, seed):
    """Sampled angles, kept for the power checks that rerun a check on the same draws."""
    return lg.sample_angles(dim, samples, seed=seed, backend="cpu")


class _Perturbed:
    """A law made deliberately wrong: ``scale`` times wider about its mean, shifted by ``shift`` sd."""

    def __init__(self, law, scale=1.0, shift=0.0):
        self.law, self.k = law, scale
        self.m, self.d = law.mean(), shift * law.std()

    def _back(self, x):
        return self.m + (np.asarray(x, dtype=float) - self.m - self.d) / self.k

    def cdf(self, x):
        return self.law.cdf(self._back(x))

    def pdf(self, x):
        return self.law.pdf(self._back(x)) / self.k

    def mean(self):
        return self.m + self.d

    def std(self):
        return self.k * self.law.std()


def check_sample_against_law(x, law, z=5.0, ks=True):
    """Sampled angles ``x`` against ``law``: KS p-value above P_MIN, the sample mean
    within ``z`` standard errors ``sd/sqrt(N)`` of the law's mean, and the sample
    standard deviation within ``z`` standard errors of the law's, relative standard
    error ``sqrt((kurtosis - 1)/(4N))`` (kurtosis from the sample).  KS alone is
    marginal for a law 1% too wide (a cdf error of 0.0024 for a near-normal law,
    against 0.0031 at N = 4e5); the spread check sees it at 9 standard errors."""
    n = x.size
    if ks:
        res = stats.kstest(x, law.cdf)
        assert res.pvalue > P_MIN, ("KS", law, res)
    sd = law.std()
    assert abs(x.mean() - law.mean()) < z * sd / math.sqrt(n), ("mean", x.mean(), law.mean(), sd)
    c = x - x.mean()
    kurt = np.mean(c**4) / np.mean(c**2) ** 2
    rel = x.std(ddof=1) / sd - 1
    assert abs(rel) < z * math.sqrt((kurt - 1) / (4 * n)), ("spread", rel, kurt)


@pytest.mark.parametrize("dim,samples", [(4, 100_000), (10, 400_000), (49, 100_000), (100, 400_000),
                                         (1000, 400_000)])
def test_default_law_against_the_sampler(dim, samples):
    """KS at N samples resolves cdf errors of about 1.95/sqrt(N) (0.003 at 4e5):
    passing at dims 10, 100 and 1000 shows the issue's 0.005 sup-norm target.  The
    spread check resolves a 0.56% error in the law's sd at N = 4e5 and 1.1% at 1e5.
    (The saddlepoint law's sd is 0.46% low at n = 49, against the recursion: 2 of
    that case's 0.22% standard errors, inside the 5.)"""
    s = _sample(dim, samples, 100 + dim % 97)
    check_sample_against_law(s.bisector, T.BisectorAngle(dim))
    check_sample_against_law(s.fixed_axis, T.FixedAxisAngle(dim))  # exact law, same draws


@pytest.mark.parametrize("bias", [1.01, 0.99])
def test_sampler_check_rejects_a_biased_total(bias):
    """Power: the fixed-axis angle from a sum ``total`` 1% too large or too small
    (its cosine scaled by 1.01 or 0.99) fails the check at n = 1000, 4e5 draws."""
    s = _sample(1000, 400_000, 130)
    with pytest.raises(AssertionError):
        check_sample_against_law(np.arccos(s.total * bias / np.sqrt(1000 * s.l2sq)), T.FixedAxisAngle(1000))


@pytest.mark.parametrize("scale,shift", [(1.01, 0.0), (0.99, 0.0), (1.0, 0.02)])
def test_sampler_check_rejects_a_law_1pct_too_wide(scale, shift):
    """Power: the check above, on the same 4e5 draws at n = 1000, fails for a law 1%
    too wide or too narrow (the spread check: 1% is 9 standard errors) or shifted by
    0.02 sd (the mean check: 0.02 sd is 12 standard errors)."""
    law = _Perturbed(T.BisectorAngle(1000), scale, shift)
    x = _sample(1000, 400_000, 130).bisector
    with pytest.raises(AssertionError):
        check_sample_against_law(x, law)
    with pytest.raises(AssertionError, match="spread" if scale != 1 else "mean"):
        check_sample_against_law(x, law, ks=False)  # without KS too


def test_normal_law_is_poor_at_small_dim():
    """The normal law of the cosine misses the skew at n = 10: the sampler rejects it."""
    s = lg.sample_angles(10, 400_000, seed=7, backend="cpu")
    assert stats.kstest(s.bisector, T.BisectorAngle(10, method="normal").cdf).pvalue < 1e-6


def exact_cos_moments_mp(dim, dps=50):
    """Exact ``E cos`` and ``Var cos`` of the bisector angle at dimension ``dim``, in mpmath.

    Derived here, not from lni_geometry.theory: for ``z ~ N(0, I_n)``,
    ``cos = |z|_1 / (sqrt(n) |z|_2)``, and ``|z|_2`` is independent of the direction
    ``z/|z|_2``, so ``E |z|_1^k = E |z|_2^k E (|z|_1/|z|_2)^k`` and

        ``E cos^k = E |z|_1^k / (n^(k/2) E |z|_2^k)``,
        ``E |z|_2^k = 2^(k/2) Gamma((n + k)/2) / Gamma(n/2)``,
        ``E |z|_1 = n sqrt(2/pi)``, ``E |z|_1^2 = n + n(n - 1) 2/pi``.

    ``Var cos = E cos^2 - (E cos)^2`` is a difference of two numbers near 2/pi that
    agree to 7 digits at n = 6e6, and ``E cos`` needs ``lnGamma`` differences of
    numbers near 4e7: 50 digits leave more than 30.  Returns two mpmath numbers.
    """
    with mp.workdps(dps):
        n = mp.mpf(dim)

        def norm_moment(k):
            return 2 ** (mp.mpf(k) / 2) * mp.exp(mp.loggamma((n + k) / 2) - mp.loggamma(n / 2))

        m1 = n * mp.sqrt(2 / mp.pi) / (mp.sqrt(n) * norm_moment(1))
        m2 = (n + n * (n - 1) * 2 / mp.pi) / (n * norm_moment(2))
        return +m1, m2 - m1**2


def check_cos_moments(c, dim, z=5.0):
    """Sampled cosines ``c`` against the exact moments (mpmath): the mean within ``z``
    standard errors ``sqrt(v/N)``, the sample variance within ``z`` standard errors
    ``v sqrt((kurtosis - 1)/N)`` (kurtosis from the sample)."""
    m, v = (float(t) for t in exact_cos_moments_mp(dim))
    n = c.size
    assert abs(c.mean() - m) < z * math.sqrt(v / n), ("mean", c.mean(), m, v)
    d = c - c.mean()
    kurt = np.mean(d**4) / np.mean(d**2) ** 2
    assert abs(c.var(ddof=1) - v) < z * v * math.sqrt((kurt - 1) / n), ("variance", c.var(ddof=1), v, kurt)


def _moment_samples(dim):
    return min(10**6, max(300, 4 * 10**7 // dim))


@pytest.mark.parametrize("dim", [2, 3, 10, 1000, 6 * 10**6])
def test_exact_cosine_moments(dim):
    m, v = T.bisector_cos_mean(dim), T.bisector_cos_var(dim)
    if dim == 2:
        assert m == pytest.approx(2 * math.sqrt(2) / math.pi, rel=1e-14)
    # E cos = sqrt(2/pi) (1 + 1/(4n) + O(1/n^2)), n Var cos -> 1 - 3/pi
    if dim >= 1000:
        assert m / math.sqrt(2 / math.pi) - 1 == pytest.approx(1 / (4 * dim), rel=1e-2)
        assert dim * v == pytest.approx(1 - 3 / math.pi, rel=1e-2)
    check_cos_moments(np.cos(_sample(dim, _moment_samples(dim), 9).bisector), dim)


@pytest.mark.parametrize("l1_bias,l2sq_bias", [(1e-3, 0.0), (0.0, 2e-3), (0.01, 0.0)])
def test_cosine_moment_check_rejects_a_biased_sum(l1_bias, l2sq_bias):
    """Power: the same check on the same 4e4 draws at n = 1000, with the sum ``l1``
    0.1% or 1% too large or ``l2sq`` 0.2% too large, fails.  It detects a relative
    bias in ``cos`` of ``5 sd(cos) / (sqrt(N) E cos)``: 2.1e-4 here."""
    dim = 1000
    s = _sample(dim, _moment_samples(dim), 9)
    c = s.l1 * (1 + l1_bias) / np.sqrt(dim * s.l2sq * (1 + l2sq_bias))
    np.testing.assert_allclose(s.l1 / np.sqrt(dim * s.l2sq), np.cos(s.bisector), rtol=1e-12)
    with pytest.raises(AssertionError):
        check_cos_moments(c, dim)


# --- large dimensions against the exact moments and the sampler -----------------

LARGE_DIMS = [10**4, 10**6, 6 * 10**6]


def _law_cos_moments(law, center):
    """Mass, ``E cos A`` and ``Var cos A`` under ``law`` by Gauss-Legendre quadrature of
    its pdf over its mean +- 14 sd (56 panels of 30 nodes), centred at ``center``."""
    mu, sd = law.mean(), law.std()
    edges = np.linspace(mu - 14 * sd, mu + 14 * sd, 57)
    xg, wg = np.polynomial.legendre.leggauss(30)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    a = (mid[:, None] + half[:, None] * xg).ravel()
    w = (half[:, None] * wg).ravel() * law.pdf(a)
    mass = w.sum()
    d = np.cos(a) - center
    e1 = (w * d).sum() / mass
    return mass, center + e1, (w * d * d).sum() / mass - e1 * e1


def check_law_against_exact_moments(law, dim):
    """A law of the bisector angle against the exact cosine moments (mpmath):
    ``E cos A`` within 1e-4 sd, ``Var cos A`` within 1e-5 relative; and the law's
    angle mean and sd against the delta method on the exact moments,
    ``E A = arccos(m) - m v / (2 (1 - m^2)^(3/2))``, ``sd A = sqrt(v / (1 - m^2))``,
    whose remainders are O(1/n) relative (below 3e-6 at n = 1e4) within 1e-4 sd and
    1e-4 relative.  (The saddlepoint law holds 1e-6 sd and 1e-7.)"""
    m_mp, v_mp = exact_cos_moments_mp(dim)
    m, v = float(m_mp), float(v_mp)
    sd = math.sqrt(v)
    mass, lm, lv = _law_cos_moments(law, m)
    assert abs(mass - 1) < 1e-9, mass
    assert abs(lm - m) < 1e-4 * sd, ("cos mean", (lm - m) / sd)
    assert abs(lv / v - 1) < 1e-5, ("cos variance", lv / v - 1)
    with mp.workdps(50):
        s2 = 1 - m_mp**2
        mean_a = float(mp.acos(m_mp) - m_mp * v_mp / (2 * s2**1.5))
        sd_a = float(mp.sqrt(v_mp / s2))
    assert abs(law.mean() - mean_a) < 1e-4 * sd_a, ("angle mean", (law.mean() - mean_a) / sd_a)
    assert abs(law.std() / sd_a - 1) < 1e-4, ("angle sd", law.std() / sd_a - 1)


@pytest.mark.parametrize("dim", LARGE_DIMS)
def test_cos_moment_formulas_against_mpmath(dim):
    """bisector_cos_mean and bisector_cos_var against the independent derivation in
    50 digits (in double precision the variance formula would cancel catastrophically)."""
    m, v = exact_cos_moments_mp(dim)
    assert T.bisector_cos_mean(dim) == pytest.approx(float(m), rel=1e-13)
    assert T.bisector_cos_var(dim) == pytest.approx(float(v), rel=1e-11)


@pytest.mark.parametrize("dim", LARGE_DIMS)
@pytest.mark.parametrize("method", ["auto", "normal"])
def test_laws_against_exact_moments_at_large_dim(dim, method):
    check_law_against_exact_moments(T.BisectorAngle(dim, method=method), dim)


@pytest.mark.parametrize("scale,shift", [(1.01, 0.0), (0.999, 0.0), (1.0, 1e-3)])
def test_law_moment_check_rejects_a_wrong_law(scale, shift):
    """Power: the same check fails for the n = 1e6 law made 1% too wide, 0.1% too
    narrow, or shifted by 1e-3 sd."""
    law = _Perturbed(T.BisectorAngle(10**6), scale, shift)
    with pytest.raises(AssertionError):
        check_law_against_exact_moments(law, 10**6)


LARGE_N, LARGE_SAMPLES = 10**5, 50_000  # 5e9 normals: about 15 s on 2 cores


@pytest.mark.slow
def test_sampler_against_the_law_at_large_dim():
    """n = 1e5, 5e4 draws: the bisector angle against the default (saddlepoint) law
    (KS, mean, spread) and its cosine against the exact moments; the fixed-axis
    angle of the same draws against its exact law.  Smallest errors detected: the
    law's sd off by 1.6% (5 standard errors of 0.32%; reliably, at 7, by 2.2%), its
    mean by 0.022 sd, a relative bias of 1.9e-5 in ``l1``."""
    s = _sample(LARGE_N, LARGE_SAMPLES, 31)
    check_sample_against_law(s.bisector, T.BisectorAngle(LARGE_N))
    check_cos_moments(np.cos(s.bisector), LARGE_N)
    check_sample_against_law(s.fixed_axis, T.FixedAxisAngle(LARGE_N))


@pytest.mark.slow
def test_large_dim_checks_reject_a_wrong_law_and_a_biased_sum():
    """Power, on the same draws: a law 2.5% too wide or too narrow, and ``l1``
    1e-4 relative too large, fail."""
    s = _sample(LARGE_N, LARGE_SAMPLES, 31)
    for scale in (1.025, 1 / 1.025):
        with pytest.raises(AssertionError, match="spread"):
            check_sample_against_law(s.bisector, _Perturbed(T.BisectorAngle(LARGE_N), scale), ks=False)
    with pytest.raises(AssertionError):
        check_cos_moments(s.l1 * (1 + 1e-4) / np.sqrt(LARGE_N * s.l2sq), LARGE_N)


# --- the decomposition -----------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3, 10, 100, 10**4, 10**6, 10**9])
def test_sphere_factor_against_mpmath(dim):
    """The sphere factor ``2**n sin(a)**(n-2) / B_n``, ``B_n = sqrt(pi) Gamma((n-1)/2) / Gamma(n/2)``,
    evaluated in mpmath at 30 digits.  (The orthant fraction, defined as the density
    less this factor, is checked independently: the closed form at n = 3, direct
    Monte Carlo at n = 5 and 10, g = 1 near the bisector, the rate at the bulk.)"""
    law = T.BisectorAngle(dim)
    a = law.ppf(np.array([1e-6, 0.01, 0.5, 0.99, 1 - 1e-6]))
    got = T.log_sphere_factor(dim, a)
    with mp.workdps(30):
        n = mp.mpf(dim)
        log_b = 0.5 * mp.log(mp.pi) + mp.loggamma((n - 1) / 2) - mp.loggamma(n / 2)
        ref = [n * mp.log(2) + (n - 2) * mp.log(mp.sin(mp.mpf(float(x)))) - log_b for x in a]
    # the angle carries a relative rounding of 1e-16, i.e. (n - 2) cot(a) a 1e-16 in the log
    tol = 1e-12 * np.abs(np.array([float(r) for r in ref])) + 1e-13 + (dim - 2) * 2e-16 / np.tan(a) * a
    np.testing.assert_array_less(np.abs(got - np.array([float(r) for r in ref])), tol)


def test_orthant_fraction_is_exactly_one_near_the_bisector():
    for dim in (3, 10, 10**6):
        a0 = math.asin(1 / math.sqrt(dim))
        assert np.all(T.log_orthant_fraction(dim, np.array([0.0, a0 / 2, a0])) == 0.0)
        law = T.BisectorAngle(dim)
        a = np.linspace(a0, law.support()[1], 500)
        assert np.all(T.log_orthant_fraction(dim, a) <= 0.0)  # g <= 1
        assert T.log_orthant_fraction(dim, (a0 + law.support()[1]) / 2) < 0


def test_orthant_fraction_rate_at_the_bulk():
    """(1/n) log g_n(a*) -> -log 2 - log(1 - 2/pi)/2 = -0.18699 at a* = arccos(sqrt(2/pi))."""
    a_star = math.acos(math.sqrt(2 / math.pi))
    rates = [float(T.log_orthant_fraction(n, a_star)) / n for n in (10**4, 10**6, 10**9)]
    assert abs(rates[-1] - BULK) < 1e-6
    gaps = np.abs(np.array(rates) - BULK)
    assert gaps[0] > gaps[1] > gaps[2]  # converging, like log(n)/n


@pytest.mark.parametrize("dim", [5, 10])
def test_orthant_fraction_against_direct_monte_carlo(dim):
    law = T.BisectorAngle(dim)
    angles = law.ppf(np.array([0.1, 0.5, 0.9]))
    samples = 100_000
    est = T.estimate_orthant_fraction(dim, angles, samples, seed=4)
    g = np.exp(T.log_orthant_fraction(dim, angles))
    se = np.sqrt(g * (1 - g) / samples)
    assert np.all(np.abs(est - g) <= 5 * se), (est, g, se)


# --- heavy tails -------------------------------------------------------------------


STABLE_REFERENCE = Path(__file__).parent / "data" / "stable_angles.npz"


def test_stable_limit_law_converges_to_the_sampler():
    """alpha = 1.5: the Kolmogorov distance between the sampler and the limit law
    shrinks with n.  At n = 1e5 the sampler's 6000 angles are compared with 10000
    angles drawn independently (numpy's generator and the Chambers-Mallows-Stuck
    formula, ``tests/data/stable_reference.py``): a two-sample KS test, and the two
    distances to the limit law (the reference's: 0.031, the science reference's 0.036),
    whose standard errors are at most ``0.5/sqrt(N)`` each, agree within 3.29 of
    them (the two-sided 1e-3 level: 0.024).  The Gaussian law is nowhere near."""
    d = {}
    for n, samples in ((10**3, 20_000), (10**4, 20_000), (10**5, 6000)):
        s = lg.sample_angles(n, samples, lg.SymmetricStable(1.5), seed=5, backend="cpu")
        d[n] = stats.kstest(s.bisector, T.StableBisectorAngle(n, 1.5).cdf).statistic
    noise = 0.5 / math.sqrt(20_000)
    assert d[10**3] > d[10**4] + 5 * noise
    ref = np.load(STABLE_REFERENCE)
    assert (float(ref["alpha"]), int(ref["dim"])) == (1.5, 10**5)
    ref = ref["angles"]
    assert stats.ks_2samp(s.bisector, ref).pvalue > P_MIN
    d_ref = stats.kstest(ref, T.StableBisectorAngle(10**5, 1.5).cdf).statistic
    assert abs(d[10**5] - d_ref) < 3.29 * 0.5 * math.sqrt(1 / 6000 + 1 / ref.size), (d[10**5], d_ref)
    # the Gaussian law is nowhere near: heavy tails move the angle towards 90 deg
    s = lg.sample_angles(10**4, 2000, lg.SymmetricStable(1.5), seed=6, backend="cpu")
    assert stats.kstest(s.bisector, T.BisectorAngle(10**4).cdf).statistic > 0.99


def limit_angles(dim, alpha, size, seed):
    """Angles drawn from the limit law of StableBisectorAngle(dim, alpha), simulated
    here from its definition (numpy only): ``cos = n**(1/2 - 1/alpha) E|X| / sqrt(Z)``
    with ``Z`` positive (alpha/2)-stable, ``E exp(-sZ) = exp(-c s**(alpha/2))``, drawn
    by Kanter's formula (Z = c**(2/alpha) sin(a U)/sin(U)**(1/a) (sin((1 - a) U)/W)**((1 - a)/a),
    a = alpha/2, U ~ U(0, pi), W ~ Exp(1)); at alpha = 1, ``cos = log(n)/sqrt(n)
    sqrt(2/pi) |N(0, 1)|``; then kept in the cosine's range ``[1/sqrt n, 1]``."""
    g = np.random.default_rng(seed)
    if alpha == 1.0:
        c = math.log(dim) / math.sqrt(dim) * math.sqrt(2 / math.pi) * np.abs(g.standard_normal(size))
    else:
        a = alpha / 2
        u, w = g.uniform(0, math.pi, size), g.standard_exponential(size)
        z = np.sin(a * u) / np.sin(u) ** (1 / a) * (np.sin((1 - a) * u) / w) ** ((1 - a) / a)
        c_alpha = (1 - alpha) / (math.gamma(2 - alpha) * math.cos(math.pi * alpha / 2))
        z *= (c_alpha * math.gamma(1 - alpha / 2)) ** (1 / a)
        c = dim ** (0.5 - 1 / alpha) * (2 / math.pi) * math.gamma(1 - 1 / alpha) / np.sqrt(z)
    return np.arccos(c[(c >= 1 / math.sqrt(dim)) & (c <= 1)])


@pytest.mark.parametrize("alpha", [1.0, 1.2, 1.5, 1.8])
def test_stable_limit_laws_against_a_direct_simulation(alpha):
    """The limit laws (alpha >= 1) against 4e5 draws of the limit variable simulated
    independently: KS, mean and spread (a width error of 0.6% fails)."""
    check_sample_against_law(limit_angles(10**6, alpha, 400_000, seed=int(alpha * 10)),
                             T.StableBisectorAngle(10**6, alpha))


def test_limit_law_check_rejects_a_law_1pct_too_wide():
    """Power: the same check fails for the alpha = 1.5 limit law made 1% too wide."""
    law = _Perturbed(T.StableBisectorAngle(10**6, 1.5), 1.01)
    with pytest.raises(AssertionError, match="spread"):
        check_sample_against_law(limit_angles(10**6, 1.5, 400_000, seed=15), law, ks=False)


def test_cauchy_limit_law_converges_to_the_sampler():
    d = []
    for n in (10**3, 10**4):
        s = lg.sample_angles(n, 20_000, lg.SymmetricStable(1.0), seed=8, backend="cpu")
        d.append(stats.kstest(s.bisector, T.StableBisectorAngle(n, 1.0).cdf).statistic)
    assert d[0] > d[1] + 5 * 0.5 / math.sqrt(20_000)


def test_lepage_limit_law_below_alpha_1():
    """alpha < 1: the tabulated LePage law.  At alpha = 0.5 the limit is reached
    early: D stays under the KS 0.999 critical value 1.95/sqrt(N) plus the
    table's own cdf error (2 x 0.0022); at alpha = 0.8 D shrinks with n."""
    n_mc = 5000
    s = lg.sample_angles(10**4, n_mc, lg.SymmetricStable(0.5), seed=13, backend="cpu")
    d = stats.kstest(s.bisector, T.StableBisectorAngle(10**4, 0.5).cdf).statistic
    assert d < 1.95 / math.sqrt(n_mc) + 2 * 0.0022
    d = []
    for n in (10**3, 10**4):
        s = lg.sample_angles(n, n_mc, lg.SymmetricStable(0.8), seed=14, backend="cpu")
        d.append(stats.kstest(s.bisector, T.StableBisectorAngle(n, 0.8).cdf).statistic)
    assert d[0] > d[1] + 5 * 0.5 / math.sqrt(n_mc)


def test_stable_law_at_alpha_2_against_the_stable_sampler():
    """alpha = 2: the stable sampler (Chambers-Mallows-Stuck, not Box-Muller) draws
    N(0, 2 scale**2) coordinates, so its angles follow the Gaussian law, which
    StableBisectorAngle(n, 2) returns."""
    law = T.StableBisectorAngle(1000, 2.0)
    s = lg.sample_angles(1000, 20_000, lg.SymmetricStable(2.0), seed=15, backend="cpu")
    check_sample_against_law(s.bisector, law)


@pytest.mark.parametrize("alpha", [0.6, 1.0, 1.3, 1.7])
def test_stable_law_is_a_distribution(alpha):
    law = T.StableBisectorAngle(10**5, alpha)
    lo, hi = law.support()
    q = np.array([0.01, 0.5, 0.99])
    np.testing.assert_allclose(law.cdf(law.ppf(q)), q, rtol=1e-6)
    x = law.ppf(np.linspace(0.001, 0.999, 51))
    assert np.all((x >= lo) & (x <= hi)) and np.all(np.diff(x) > 0)
    assert lo <= law.mean() <= hi


# --- speed (a sanity bound only; the figures come from the closing note) -----------


# --- invalid parameters ------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 0, -5, 2.5, float("nan"), float("inf"), 2**41])
def test_bad_dim(dim):
    for make in (T.FixedAxisAngle, T.BisectorAngle, T.bisector_cos_mean, T.bisector_cos_var,
                 lambda d: T.StableBisectorAngle(d, 1.5), lambda d: T.log_sphere_factor(d, 0.5),
                 lambda d: T.log_orthant_fraction(d, 0.5), lambda d: T.estimate_orthant_fraction(d, 0.5, 10)):
        with pytest.raises(ValueError, match=r"dim must be an integer in \[2, 2\*\*40\], got (float )?" + re.escape(repr(dim))):
            make(dim)


@pytest.mark.parametrize("dim", ["10", None, True])
def test_dim_of_wrong_type(dim):
    with pytest.raises(TypeError, match=r"dim must be an integer in \[2, 2\*\*40\], got " + re.escape(f"{type(dim).__name__} {dim!r}")):
        T.BisectorAngle(dim)


@pytest.mark.parametrize("alpha", [0.0, -1.0, 2.5, float("nan")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \(0, 2\], got " + re.escape(repr(alpha))):
        T.StableBisectorAngle(100, alpha)


@pytest.mark.parametrize("angle", [-0.1, 3.5, float("nan")])
def test_estimate_orthant_fraction_bad_angle(angle):
    with pytest.raises(ValueError, match=r"angle must be a finite number in \[0, pi\], got " + re.escape(repr(angle))):
        T.estimate_orthant_fraction(5, angle, 10)


def test_bad_method_and_scale():
    with pytest.raises(ValueError, match="method must be one of"):
        T.BisectorAngle(10, method="edgeworth-ish")
    with pytest.raises(ValueError, match=r"needs dim in \[2, 3\]"):
        T.BisectorAngle(10, method="exact")
    with pytest.raises(ValueError, match="scale"):
        T.StableBisectorAngle(100, 1.5, scale=0.0)
