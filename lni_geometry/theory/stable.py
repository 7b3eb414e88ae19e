"""Heavy-tailed limit laws of the bisector angle: :class:`StableBisectorAngle`.

Each regime of alpha is its own law object (:class:`_SelfNormalisedLimit` for
``1 < alpha < 2``, :class:`_CauchyLimit` for ``alpha = 1``,
:class:`_LePageLimit` for ``alpha < 1``, :class:`BisectorAngle` for
``alpha = 2``); :class:`StableBisectorAngle` picks one at construction and
forwards to it.  The three limit regimes share :class:`_CosineLimit`: a law of
the cosine ``C``, truncated to ``[1/sqrt n, 1]`` and mapped to the angle.

References
----------
.. [3] B. F. Logan, C. L. Mallows, S. O. Rice and L. A. Shepp, "Limit
   distributions of self-normalized sums", Ann. Probab. 1 (1973) 788-809.
.. [4] J. M. Chambers, C. L. Mallows and B. W. Stuck, "A method for simulating
   stable random variables", JASA 71 (1976) 340-344.
.. [5] M. Kanter, "Stable densities under change of scale and total variation
   inequalities", Ann. Probab. 3 (1975) 697-707.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special as sc
from scipy.interpolate import CubicHermiteSpline, CubicSpline

from ..validation import SCALE, check_alpha, check_dim
from .base import AngleLaw
from .bisector import BisectorAngle
from .numerics import LOG2, SQRT2, leggauss, out

__all__ = ["LEPAGE_REALISATIONS", "LEPAGE_TERMS", "StableBisectorAngle"]

#: Monte Carlo size of the LePage tables (alpha < 1): realisations, terms kept.
LEPAGE_REALISATIONS = 200_000
LEPAGE_TERMS = 400


class StableBisectorAngle(AngleLaw):
    """Heavy-tailed limit law of the bisector angle for symmetric alpha-stable coordinates.

    Coordinates ``X_i`` iid symmetric alpha-stable, ``E exp(itX) =
    exp(-|scale t|**alpha)`` (Chambers, Mallows and Stuck 1976, [1]_).  The
    cosine of the bisector angle, ``C = sum|X_i| / sqrt(n sum X_i**2)``, has the
    self-normalised limits of Logan, Mallows, Rice and Shepp (1973, [2]_):

    - ``1 < alpha < 2``: ``n**(1/alpha - 1/2) C => E|X| / sqrt(Z)``,
      ``E|X| = (2/pi) Gamma(1 - 1/alpha) scale``, ``Z`` positive
      ``(alpha/2)``-stable with ``E exp(-sZ) = exp(-c s**(alpha/2))``,
      ``c = C_alpha Gamma(1 - alpha/2) scale**alpha``,
      ``C_alpha = (1 - alpha)/(Gamma(2 - alpha) cos(pi alpha/2))``
      (tail ``P(|X| > x) ~ C_alpha x**-alpha``).  So the angle tends to 90
      degrees, like ``arccos(K n**(1/2 - 1/alpha))``.
    - ``alpha = 1``: ``sqrt(n) C / log n => sqrt(2/pi) |N(0, 1)|``.
    - ``alpha = 2``: Gaussian coordinates; the law is :class:`BisectorAngle`
      (default method).
    - ``0 < alpha < 1``: ``sqrt(n) C => R_alpha = sum G_k**(-1/alpha) /
      sqrt(sum G_k**(-2/alpha))`` (LePage series, ``G_k`` the arrival times of a
      unit Poisson process); ``R_alpha`` has no closed form and is tabulated
      once per alpha by Monte Carlo of the series (about 2 s; table error about
      0.002 in the cdf; see ``_LePage``).

    The angle law is ``arccos`` of the limit law of ``C``, conditioned on
    ``C`` lying in ``[1/sqrt n, 1]`` (its range at dimension ``n``).  The
    angle is scale-invariant, so ``scale`` does not change the law (it is
    validated and kept for symmetry with the model).

    Validity: these are limits as ``n -> infinity`` and convergence is slow:
    at alpha = 1.5 the Kolmogorov distance between the law at n = 1e5 and the
    limit is about 0.04, decreasing like a power of ``n``; at alpha = 1 the
    corrections are of relative order ``1/log n``.  Use the law for shapes
    and trends at large ``n``, not as a precise finite-``n`` law.

    Parameters
    ----------
    dim : int
        ``n >= 2``.
    alpha : float
        Stability index in ``(0, 2]``.
    scale : float, default 1.0

    Attributes
    ----------
    regime : str
        ``"alpha<1"``, ``"alpha=1"``, ``"1<alpha<2"`` or ``"gaussian"``.

    References
    ----------
    .. [1] J. M. Chambers, C. L. Mallows and B. W. Stuck, "A method for simulating
       stable random variables", JASA 71 (1976) 340-344.
    .. [2] B. F. Logan, C. L. Mallows, S. O. Rice and L. A. Shepp, "Limit
       distributions of self-normalized sums", Ann. Probab. 1 (1973) 788-809.

    Examples
    --------
    >>> law = StableBisectorAngle(10**6, 1.5)
    >>> bool(law.mean() > 1.2)   # far above the Gaussian 0.647 rad
    True
    """

    def __init__(self, dim, alpha, scale=1.0):
        self.dim = check_dim(dim)
        self.alpha = check_alpha(alpha)
        self.scale = SCALE.check(scale)
        n, al = self.dim, self.alpha
        if al < 1.0:
            self.regime, self._law = "alpha<1", _LePageLimit(n, al)
        elif al == 1.0:
            self.regime, self._law = "alpha=1", _CauchyLimit(n)
        elif al < 2.0:
            self.regime, self._law = "1<alpha<2", _SelfNormalisedLimit(n, al)
        else:
            self.regime, self._law = "gaussian", BisectorAngle(n)
        self._hi = self._law._hi

    def __repr__(self):
        return f"StableBisectorAngle(dim={self.dim}, alpha={self.alpha}, scale={self.scale})"

    def _logpdf(self, a):
        return self._law._logpdf(a)

    def _cdf(self, a):
        """``P(angle <= a) = P(C >= cos a)`` under the truncated limit law."""
        return self._law._cdf(a)

    def _sf(self, a):
        return self._law._sf(a)

    def _window(self):
        return self._law._window()

    def ppf(self, q):
        """Quantiles; for alpha < 1 directly from the LePage table's quantile function
        (the mass piles up within ~1e-6 rad of the upper end, too close for a grid)."""
        return self._law.ppf(q)

    def mean(self):
        return self._law.mean()

    def var(self):
        return self._law.var()


# --- the regimes ------------------------------------------------------------------------


class _CosineLimit(AngleLaw):
    """A limit law of the cosine ``C``, truncated to ``[1/sqrt n, 1]``, as a law of the angle.

    Subclasses give the raw (untruncated) ``_cos_cdf_raw`` and ``_cos_logpdf_raw``.
    """

    def __init__(self, n):
        self.dim = n
        self._hi = math.atan(math.sqrt(n - 1.0))
        self._clo = 1.0 / math.sqrt(n)
        self._mass = self._cos_cdf_raw(1.0) - self._cos_cdf_raw(self._clo)
        self._lmass = math.log(self._mass)

    def _cos_cdf_raw(self, c):
        raise NotImplementedError

    def _cos_logpdf_raw(self, c):
        raise NotImplementedError

    def _logpdf(self, a):
        with np.errstate(divide="ignore"):
            return self._cos_logpdf_raw(np.cos(a)) + np.log(np.sin(a)) - self._lmass

    def _cdf(self, a):
        return np.clip((self._cos_cdf_raw(1.0) - self._cos_cdf_raw(np.cos(a))) / self._mass, 0.0, 1.0)

    def _sf(self, a):
        return np.clip((self._cos_cdf_raw(np.cos(a)) - self._cos_cdf_raw(self._clo)) / self._mass, 0.0, 1.0)


class _CauchyLimit(_CosineLimit):
    """alpha = 1: ``C = k |N(0, 1)|``, ``k = sqrt(2/pi) log(n) / sqrt(n)``."""

    def __init__(self, n):
        self._k = math.sqrt(2 / math.pi) * math.log(n) / math.sqrt(n)
        super().__init__(n)

    def _cos_cdf_raw(self, c):
        return sc.erf(np.asarray(c, float) / self._k / SQRT2)

    def _cos_logpdf_raw(self, c):
        y = np.asarray(c, float) / self._k
        return 0.5 * math.log(2 / math.pi) - 0.5 * y * y - math.log(self._k)


class _SelfNormalisedLimit(_CosineLimit):
    """1 < alpha < 2: ``C = K / sqrt(Z0)``, ``Z0`` standard positive (alpha/2)-stable."""

    def __init__(self, n, alpha):
        beta = alpha / 2
        c_alpha = (1 - alpha) / (math.gamma(2 - alpha) * math.cos(math.pi * alpha / 2))
        c = c_alpha * math.gamma(1 - beta)  # at scale 1
        ex = (2 / math.pi) * math.gamma(1 - 1 / alpha)
        # Z = c**(1/beta) Z0 with Z0 standard; C = K / sqrt(Z0)
        self._K = ex * c ** (-1 / alpha) * n ** (0.5 - 1 / alpha)
        self._z0 = _stable_table(beta)
        super().__init__(n)

    def _cos_cdf_raw(self, c):
        c = np.asarray(c, float)
        # P(C <= c) = P(Z0 >= (K/c)**2)
        with np.errstate(divide="ignore"):
            lz = 2 * (math.log(self._K) - np.log(c))
        return 1.0 - self._z0.cdf_logx(lz)

    def _cos_logpdf_raw(self, c):
        c = np.asarray(c, float)
        # Z0 = (K/C)**2: f_C(c) = f_Z0(z) * 2 K**2 / c**3
        lz = 2 * (math.log(self._K) - np.log(c))
        return self._z0.logpdf_logx(lz) + LOG2 + 2 * math.log(self._K) - 3 * np.log(c)


class _LePageLimit(_CosineLimit):
    """0 < alpha < 1: ``sqrt(n) C => R_alpha``, tabulated (:class:`_LePage`)."""

    def __init__(self, n, alpha):
        self._lepage = _lepage_table(alpha)
        super().__init__(n)

    def _cos_cdf_raw(self, c):
        return self._lepage.cdf(np.asarray(c, float) * math.sqrt(self.dim))

    def _cos_logpdf_raw(self, c):
        with np.errstate(divide="ignore"):
            return np.log(self._lepage.pdf(np.asarray(c, float) * math.sqrt(self.dim))) + 0.5 * math.log(self.dim)

    def ppf(self, q):
        """Directly from the LePage table's quantile function."""
        q = np.asarray(q, dtype=np.float64)
        root_n = math.sqrt(self.dim)
        top = float(self._lepage.cdf(root_n))
        r = self._lepage.ppf(top - q * self._mass)
        with np.errstate(invalid="ignore"):
            val = np.arccos(np.clip(r / root_n, self._clo, 1.0))
        val = np.where((q < 0) | (q > 1), np.nan, val)
        return out(val)


# --- tables --------------------------------------------------------------------------


class _PositiveStable:
    """Standard positive ``beta``-stable law, ``E exp(-s Z) = exp(-s**beta)``, 0 < beta < 1.

    cdf by Kanter's (1975, [5]_) integral, ``P(Z <= x) = (1/pi) int_0^pi
    exp(-x**(-beta/(1-beta)) A(phi)) dphi`` with
    ``A(phi) = (sin(beta phi)/sin phi)**(1/(1-beta)) sin((1-beta) phi)/sin(beta phi)``,
    and its derivative for the density; tabulated on a log grid.
    """

    def __init__(self, beta):
        self.beta = beta
        xg, wg = leggauss(400)
        phi = (xg + 1) * math.pi / 2
        w = wg / 2
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            A = (np.sin(beta * phi) / np.sin(phi)) ** (1 / (1 - beta)) * np.sin((1 - beta) * phi) / np.sin(beta * phi)
        self._A, self._w = A, w
        self._k = beta / (1 - beta)
        lx = np.linspace(-12.0, 40.0 / beta, 3000)
        F, logf = self._eval(lx)
        self._lx = lx
        self._F = CubicHermiteSpline(lx, F, np.exp(logf + lx))  # dF/dlogx = x f
        self._logf = CubicSpline(lx, logf)

    def _eval(self, lx):
        y = np.exp(-self._k * lx)[:, None] * self._A[None, :]
        with np.errstate(under="ignore"):
            e = np.exp(-y)
            F = (e * self._w).sum(1)
            dens = (e * y * self._w).sum(1)  # = x f(x) / k
        with np.errstate(divide="ignore"):
            logf = np.log(np.maximum(dens, 1e-300)) + math.log(self._k) - lx
        return np.clip(F, 0, 1), logf

    def cdf_logx(self, lx):
        lx = np.asarray(lx, float)
        res = np.asarray(self._F(np.clip(lx, self._lx[0], self._lx[-1])), float)
        res = np.where(lx < self._lx[0], 0.0, np.where(lx > self._lx[-1], 1.0, res))
        return np.clip(res, 0, 1)

    def logpdf_logx(self, lx):
        lx = np.asarray(lx, float)
        val = np.asarray(self._logf(np.clip(lx, self._lx[0], self._lx[-1])), float)
        # beyond the table: the tails f ~ beta x**(-1-beta)/Gamma(1-beta) above
        hi = lx > self._lx[-1]
        tail = math.log(self.beta / math.gamma(1 - self.beta)) - (1 + self.beta) * lx
        return np.where(lx < self._lx[0], -np.inf, np.where(hi, tail, val))


@functools.lru_cache(maxsize=16)
def _stable_table(beta):
    return _PositiveStable(beta)


class _LePage:
    """Law of ``R = sum G_k**(-1/alpha) / sqrt(sum G_k**(-2/alpha))``, 0 < alpha < 1.

    ``G_k`` are the arrival times of a unit Poisson process (LePage, Woodroofe
    and Zinn 1981); ``sqrt(n) cos(angle) => R`` for iid symmetric alpha-stable
    coordinates (Logan et al. 1973, [3]_).  ``R`` has no closed form: it is
    tabulated from ``LEPAGE_REALISATIONS`` draws (a fixed seed, so the law is
    deterministic), each with the first ``LEPAGE_TERMS`` arrivals exact and the
    rest of both series replaced by their expectation given ``G_K``,
    ``int_{G_K}^inf x**-p dx = G_K**(1-p)/(p-1)`` (``p = 1/alpha`` and
    ``2/alpha``; the neglected fluctuation is of relative order
    ``K**(1/2 - 1/alpha)``).  The cdf is the monotone (PCHIP) interpolant of
    the empirical quantiles at 2001 levels, the density its derivative; the
    table's own error is about ``1/sqrt(LEPAGE_REALISATIONS) = 0.0022`` in the
    cdf, small beside the limit law's distance from any finite ``n``.
    """

    def __init__(self, alpha):
        from scipy.interpolate import PchipInterpolator

        rng = np.random.default_rng(20260517)
        p1, p2 = 1.0 / alpha, 2.0 / alpha
        draws = []
        rows = 20_000
        for _ in range(LEPAGE_REALISATIONS // rows):
            g = np.cumsum(rng.standard_exponential((rows, LEPAGE_TERMS)), axis=1)
            gk = g[:, -1]
            num = (g**-p1).sum(axis=1) + gk ** (1 - p1) / (p1 - 1)
            den = (g**-p2).sum(axis=1) + gk ** (1 - p2) / (p2 - 1)
            draws.append(num / np.sqrt(den))
        r = np.sort(np.concatenate(draws))
        q = np.linspace(0.0, 1.0, 2001)
        x = np.quantile(r, q)
        keep = np.concatenate(([True], np.diff(x) > 0))
        self._lo, self._hi = float(x[0]), float(x[-1])
        self._F = PchipInterpolator(x[keep], q[keep], extrapolate=False)
        self._f = self._F.derivative()
        self._Q = PchipInterpolator(q[keep], x[keep], extrapolate=False)

    def ppf(self, p):
        return self._Q(np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0))

    def cdf(self, r):
        r = np.asarray(r, dtype=np.float64)
        v = self._F(np.clip(r, self._lo, self._hi))
        return np.where(r <= self._lo, 0.0, np.where(r >= self._hi, 1.0, v))

    def pdf(self, r):
        r = np.asarray(r, dtype=np.float64)
        v = np.maximum(self._f(np.clip(r, self._lo, self._hi)), 0.0)
        return np.where((r < self._lo) | (r > self._hi), 0.0, v)


@functools.lru_cache(maxsize=16)
def _lepage_table(alpha):
    return _LePage(alpha)
