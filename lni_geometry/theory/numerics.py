"""Shared numerics of the laws: constants, quadrature, log-space special functions,
the exact moments of the cosine of the bisector angle, and the exact pieces at
small dimension (the mass where ``g_n = 1``, the closed forms at n = 3).

Caching idiom of :mod:`lni_geometry.theory`: tables shared between laws are built
by module-level functions under ``functools.lru_cache`` (keyed by everything they
depend on: dimension, method, grid); quantities of one law object are
``functools.cached_property``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.polynomial.legendre import leggauss as _leggauss_uncached
from scipy import special as sc

from ..validation import check_dim

__all__ = ["bisector_cos_mean", "bisector_cos_var", "leggauss"]

SQRT2 = math.sqrt(2.0)
R_STAR = math.sqrt(2.0 / math.pi)  # limit of cos(bisector)
LOG2 = math.log(2.0)
LOG2PI = math.log(2.0 * math.pi)


@functools.lru_cache(maxsize=8)
def leggauss(k):
    """Gauss-Legendre nodes and weights on [-1, 1] (cached; read-only arrays)."""
    x, w = _leggauss_uncached(k)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def log_sin(a):
    """``log(sin(a))`` accurate near ``pi/2`` too: ``log1p(-cos(a)**2)/2`` there.

    At ``a = pi/2 - t`` with ``t ~ 1e-5`` (the fixed-axis angle at ``n = 1e9``)
    ``sin(a) = 1 - t**2/2`` keeps only ~7 significant digits of ``t**2/2``,
    an error that ``n - 2`` then multiplies; ``cos(a)`` keeps all of them.
    """
    a = np.asarray(a, dtype=np.float64)
    c = np.cos(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(c) < 0.5, 0.5 * np.log1p(-c * c), np.log(np.sin(a)))


def lgamma_ratio_half(x):
    """``lnGamma(x + 1/2) - lnGamma(x) - ln(x)/2`` accurately for every ``x > 0``.

    Direct differences of ``gammaln`` lose ``1e-6`` absolute at ``x = 5e8``;
    above ``x = 20`` the asymptotic series (error below ``1e-15``) is used.
    """
    x = float(x)
    if x < 20.0:
        return float(sc.gammaln(x + 0.5) - sc.gammaln(x) - 0.5 * math.log(x))
    y = 1.0 / x
    y2 = y * y
    return -y / 8.0 + y * y2 / 192.0 - y * y2 * y2 / 640.0 + 17.0 * y * y2**3 / 14336.0


def stirling_rest(x):
    """``lnGamma(x) - x ln(x) + x``, accurately for large ``x``."""
    x = float(x)
    if x < 10.0:
        return float(sc.gammaln(x) - x * math.log(x) + x)
    y = 1.0 / x
    y2 = y * y
    return (
        0.5 * LOG2PI
        - 0.5 * math.log(x)
        + y / 12.0
        - y * y2 / 360.0
        + y * y2**2 / 1260.0
        - y * y2**3 / 1680.0
    )


def log_b(n):
    """``ln B_n`` with ``B_n = sqrt(pi) Gamma((n-1)/2) / Gamma(n/2)``."""
    x = (n - 1) / 2.0
    # Gamma(n/2)/Gamma((n-1)/2) = Gamma(x + 1/2)/Gamma(x)
    return 0.5 * math.log(math.pi) - (lgamma_ratio_half(x) + 0.5 * math.log(x))


def out(x):
    """Return a Python float for 0-d results, else the array."""
    return float(x) if np.ndim(x) == 0 else x


def log_diff_ndtr(a, b):
    """``log(Phi(b) - Phi(a))`` for ``a <= b`` elementwise, stable in both tails."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    # in the upper tail use the survival side: Phi(b)-Phi(a) = Phi(-a)-Phi(-b)
    upper = a > 0
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    lhi = sc.log_ndtr(hi)
    llo = sc.log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lhi + np.log1p(-np.exp(llo - lhi))


def interp_uniform_cubic(x, x0, h, y, left, right):
    """Catmull-Rom cubic interpolation of ``y`` given on the uniform grid ``x0 + h j``.

    Third-order accurate; ``left``/``right`` are the constant values beyond the grid.
    """
    m = len(y)
    yp = np.concatenate([[left, left], y, [right, right]])
    pos = (x - x0) / h
    posc = np.clip(pos, -1.0, m - 1.0)
    i = np.floor(posc).astype(np.intp)
    u = posc - i
    i = i + 2  # index into the padded array
    y0, y1, y2, y3 = yp[i - 1], yp[i], yp[i + 1], yp[i + 2]
    u2 = u * u
    u3 = u2 * u
    val = 0.5 * (
        y0 * (-u3 + 2 * u2 - u) + y1 * (3 * u3 - 5 * u2 + 2) + y2 * (-3 * u3 + 4 * u2 + u) + y3 * (u3 - u2)
    )
    return np.where(pos < 0, left, np.where(pos > m - 1, right, val))


# --- moments of the cosine ------------------------------------------------------


def bisector_cos_mean(dim):
    """Exact mean of the cosine of the bisector angle of a uniform point.

    ``E cos = E||x||_1 / sqrt(n) = sqrt(n) Gamma(n/2) / (sqrt(pi) Gamma((n+1)/2))``,
    since ``E|x_1| = Gamma(n/2) / (sqrt(pi) Gamma((n+1)/2))`` for ``x`` uniform
    on S^(n-1).  Tends to ``sqrt(2/pi) (1 + 1/(4n) + O(n**-2))``.

    Parameters
    ----------
    dim : int
        Dimension ``n >= 2``.

    Returns
    -------
    float

    Examples
    --------
    >>> round(bisector_cos_mean(2), 12) == round(2 * 2**0.5 / 3.141592653589793, 12)
    True
    >>> round(bisector_cos_mean(10**9), 10)
    0.797884561
    """
    n = check_dim(dim)
    x = n / 2.0
    return R_STAR * math.exp(-lgamma_ratio_half(x))


def bisector_cos_var(dim):
    """Exact variance of the cosine of the bisector angle of a uniform point.

    ``E||x||_1**2 = 1 + 2(n-1)/pi`` gives
    ``Var cos = (1 + 2(n-1)/pi)/n - (E cos)**2``, evaluated without
    cancellation as ``(1 - 2/pi)/n - (2/pi) expm1(-2 r)`` with
    ``r = lnGamma(n/2 + 1/2) - lnGamma(n/2) - ln(n/2)/2``.  Tends to
    ``(1 - 3/pi)/n``.

    Examples
    --------
    >>> import math
    >>> v = bisector_cos_var(10**6)
    >>> abs(v * 10**6 - (1 - 3 / math.pi)) < 1e-5
    True
    """
    n = check_dim(dim)
    r = lgamma_ratio_half(n / 2.0)
    return (1.0 - 2.0 / math.pi) / n - (2.0 / math.pi) * math.expm1(-2.0 * r)


# --- exact pieces -------------------------------------------------------------------


def exact_mass_below(n, a):
    """``P(bisector <= a)`` for ``a <= arcsin(1/sqrt(n))``, where ``g_n = 1``: ``2**n P(fixed <= a)``."""
    s2 = np.sin(a) ** 2
    # 2**n * 0.5 * I(s2; (n-1)/2, 1/2), in log space
    with np.errstate(divide="ignore"):
        return np.exp(n * LOG2 + np.log(0.5 * sc.betainc((n - 1) / 2.0, 0.5, s2)))


def dim3_log_g(a):
    """``log g_3(a)``: ``log(1 - (3/pi) arccos(cot(a)/sqrt 2))`` between the exact ends."""
    a0 = math.asin(1 / math.sqrt(3))
    a1 = math.acos(1 / math.sqrt(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.clip(1.0 / np.tan(a) / SQRT2, -1.0, 1.0)
        mid = np.log1p(-(3.0 / math.pi) * np.arccos(c))
    return np.where(a <= a0, 0.0, np.where(a >= a1, -np.inf, mid))


def dim3_cdf(a):
    """The closed-form cdf of the bisector angle at n = 3."""
    a0 = math.asin(1 / math.sqrt(3))
    a1 = math.acos(1 / math.sqrt(3))
    ac = np.clip(a, 0.0, a1)
    base = 8.0 * np.sin(ac / 2) ** 2  # 4 (1 - cos a)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.clip(1.0 / np.tan(ac) / SQRT2, -1.0, 1.0)
        d = np.clip(1.0 / (math.sqrt(3) * np.sin(ac)), -1.0, 1.0)
        extra = (12.0 / math.pi) * (np.cos(ac) * np.arccos(c) - np.arccos(d))
    val = np.where(ac <= a0, base, base + extra)
    return np.where(a >= a1, 1.0, np.clip(val, 0.0, 1.0))
