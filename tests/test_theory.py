"""lni_geometry.theory: the laws of the angles against quadrature, closed forms and the sampler.

Statistical thresholds: a Kolmogorov-Smirnov p-value below ``P_MIN = 1e-3`` fails
(a correct law fails once in a thousand seeds; seeds are fixed); binomial
estimates are compared within 5 standard errors.
"""

import math

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
@settings(max_examples=40, deadline=None)
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


@pytest.mark.parametrize("dim,samples", [(4, 100_000), (10, 400_000), (49, 100_000), (100, 400_000),
                                         (1000, 400_000), (10**5, 4000)])
def test_default_law_against_the_sampler(dim, samples):
    """KS at N samples resolves cdf errors of about 1.95/sqrt(N) (0.003 at 4e5):
    passing at dims 10, 100 and 1000 shows the issue's 0.005 sup-norm target."""
    law = T.BisectorAngle(dim)
    s = lg.sample_angles(dim, samples, seed=100 + dim % 97, backend="cpu")
    res = stats.kstest(s.bisector, law.cdf)
    assert res.pvalue > P_MIN, (law, res)


def test_normal_law_is_poor_at_small_dim():
    """The normal law of the cosine misses the skew at n = 10: the sampler rejects it."""
    s = lg.sample_angles(10, 400_000, seed=7, backend="cpu")
    assert stats.kstest(s.bisector, T.BisectorAngle(10, method="normal").cdf).pvalue < 1e-6


@pytest.mark.parametrize("dim", [2, 3, 10, 1000, 6 * 10**6])
def test_exact_cosine_moments(dim):
    m, v = T.bisector_cos_mean(dim), T.bisector_cos_var(dim)
    if dim == 2:
        assert m == pytest.approx(2 * math.sqrt(2) / math.pi, rel=1e-14)
    # E cos = sqrt(2/pi) (1 + 1/(4n) + O(1/n^2)), n Var cos -> 1 - 3/pi
    if dim >= 1000:
        assert m / math.sqrt(2 / math.pi) - 1 == pytest.approx(1 / (4 * dim), rel=1e-2)
        assert dim * v == pytest.approx(1 - 3 / math.pi, rel=1e-2)
    samples = min(10**6, max(300, 4 * 10**7 // dim))
    c = np.cos(lg.sample_angles(dim, samples, seed=9, backend="cpu").bisector)
    assert abs(c.mean() - m) < 5 * math.sqrt(v / samples)
    # sample variance: standard error sqrt((mu4 - v^2)/N) <= sqrt(3 v^2 / N) for these light tails
    assert abs(c.var(ddof=1) - v) < 5 * v * math.sqrt(3 / samples)


# --- the decomposition -----------------------------------------------------------


@pytest.mark.parametrize("dim", [3, 10, 100, 10**4, 10**6])
def test_decomposition_adds_up_to_the_default_law(dim):
    law = T.BisectorAngle(dim)
    lo, hi = law.support()
    a = np.linspace(lo, hi, 203)[1:-1]
    np.testing.assert_allclose(
        T.log_sphere_factor(dim, a) + T.log_orthant_fraction(dim, a), law.logpdf(a), rtol=1e-12, atol=1e-9
    )


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


def test_stable_limit_law_converges_to_the_sampler():
    """alpha = 1.5: the Kolmogorov distance between the sampler and the limit law
    shrinks with n; at n = 1e5 it is the 0.036 known for this limit (science
    reference), within 3 x the KS noise 0.5/sqrt(N) = 0.0065 (so neither 0, an
    exact law, nor twice the reference passes)."""
    d = {}
    for n, samples in ((10**3, 20_000), (10**4, 20_000), (10**5, 6000)):
        s = lg.sample_angles(n, samples, lg.SymmetricStable(1.5), seed=5, backend="cpu")
        d[n] = stats.kstest(s.bisector, T.StableBisectorAngle(n, 1.5).cdf).statistic
    noise = 0.5 / math.sqrt(20_000)
    assert d[10**3] > d[10**4] + 5 * noise
    assert abs(d[10**5] - 0.036) < 3 * 0.5 / math.sqrt(6000)
    # the Gaussian law is nowhere near: heavy tails move the angle towards 90 deg
    s = lg.sample_angles(10**4, 2000, lg.SymmetricStable(1.5), seed=6, backend="cpu")
    assert stats.kstest(s.bisector, T.BisectorAngle(10**4).cdf).statistic > 0.99


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


def test_stable_law_at_alpha_2_is_the_gaussian_law():
    law, ref = T.StableBisectorAngle(1000, 2.0), T.BisectorAngle(1000)
    x = ref.ppf(np.array([0.1, 0.5, 0.9]))
    np.testing.assert_allclose(law.cdf(x), ref.cdf(x), rtol=1e-12)


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
        with pytest.raises(ValueError, match=r"dim must be an integer in \[2, 2\*\*40\]"):
            make(dim)


@pytest.mark.parametrize("dim", ["10", None, True])
def test_dim_of_wrong_type(dim):
    with pytest.raises(TypeError, match="dim must be an integer"):
        T.BisectorAngle(dim)


@pytest.mark.parametrize("alpha", [0.0, -1.0, 2.5, float("nan")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 2\]"):
        T.StableBisectorAngle(100, alpha)


@pytest.mark.parametrize("angle", [-0.1, 3.5, float("nan")])
def test_estimate_orthant_fraction_bad_angle(angle):
    with pytest.raises(ValueError, match=r"angle must lie in \[0, pi\]"):
        T.estimate_orthant_fraction(5, angle, 10)


def test_bad_method_and_scale():
    with pytest.raises(ValueError, match="method must be one of"):
        T.BisectorAngle(10, method="edgeworth-ish")
    with pytest.raises(ValueError, match=r"needs dim in \[2, 3\]"):
        T.BisectorAngle(10, method="exact")
    with pytest.raises(ValueError, match="scale"):
        T.StableBisectorAngle(100, 1.5, scale=0.0)
