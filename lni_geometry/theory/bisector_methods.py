"""The methods of :class:`~lni_geometry.theory.BisectorAngle`, as objects.

A method is a small frozen (hashable) object with a ``name``, a ``check(n)``
that refuses dimensions it cannot serve, a ``resolve(n)`` (the method that
actually runs at ``n``: the recursion is exact at n = 3) and a ``build(n)``
that returns the *computation* at dimension ``n``: an object with ``logpdf``,
``cdf`` and ``sf`` on angles inside ``[0, arccos(1/sqrt n)]`` (1-d arrays, no
NaN), and optionally exact ``ppf``, ``mean`` and ``var``.  Pass a method object
(``BisectorAngle(100, method=Recursion(points=4801))``) or its name.

- :class:`Exact` (n = 2, 3): closed forms.
- :class:`Recursion` (3 <= n <= 1000): numerically exact, over the dimension;
  its grid (``points`` in ``t``, ``nodes`` in ``u``) is a parameter.
- :class:`Saddlepoint` (n >= 4): the bivariate saddlepoint density.
- :class:`Normal`: the cosine as a truncated normal with the exact moments.

The recursion and the saddlepoint give a raw density on ``(a0, amax]`` with
``a0 = arcsin(1/sqrt n)``: raw log density, raw cumulative mass from ``a0``, raw
mass above an angle, and the raw total; :class:`_Tabulated` normalises it so
that the exact mass on ``[0, a0]`` (where ``g_n = 1``) plus the rest is 1.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special as sc
from scipy.interpolate import CubicHermiteSpline, CubicSpline

from ..validation import check_int
from .numerics import (
    LOG2,
    LOG2PI,
    R_STAR,
    SQRT2,
    bisector_cos_mean,
    bisector_cos_var,
    dim3_cdf,
    dim3_log_g,
    exact_mass_below,
    interp_uniform_cubic,
    leggauss,
    log_b,
    log_diff_ndtr,
    log_sin,
    out,
    stirling_rest,
)

__all__ = [
    "BISECTOR_METHODS",
    "RECURSION_AUTO_MAX_DIM",
    "RECURSION_MAX_DIM",
    "BisectorMethod",
    "Exact",
    "Normal",
    "Recursion",
    "Saddlepoint",
    "method_from_name",
]

#: Methods of :class:`BisectorAngle`, by name.
BISECTOR_METHODS = ("auto", "exact", "recursion", "saddlepoint", "normal")
#: ``method="auto"`` uses the recursion up to this dimension, the saddlepoint above.
RECURSION_AUTO_MAX_DIM = 48
#: Largest dimension for ``method="recursion"`` (its cost grows like dim).
RECURSION_MAX_DIM = 1000


class BisectorMethod:
    """A way to compute the bisector-angle law; see the module docstring."""

    name: ClassVar[str] = ""

    def check(self, n):
        """Raise ValueError if this method cannot serve dimension ``n``."""

    def resolve(self, n):
        """The method that runs at dimension ``n`` (``self`` unless it hands over)."""
        return self

    def build(self, n):
        """The computation at dimension ``n`` (cached for the tabulated methods)."""
        raise NotImplementedError


# --- exact -----------------------------------------------------------------------


class _ExactComputation:
    """Closed forms at n = 2 (uniform on ``[0, pi/4]``) and n = 3."""

    def __init__(self, n):
        self.n = n
        if n == 2:
            self.ppf, self.mean, self.var = self._ppf2, self._mean2, self._var2
        else:
            self.ppf = self.mean = self.var = None

    def logpdf(self, a):
        if self.n == 2:
            return np.full(a.shape, math.log(4 / math.pi))
        with np.errstate(divide="ignore", invalid="ignore"):
            return math.log(4.0) + np.log(np.sin(a)) + dim3_log_g(a)

    def cdf(self, a):
        return a / (math.pi / 4) if self.n == 2 else dim3_cdf(a)

    def sf(self, a):
        return 1.0 - self.cdf(a)

    @staticmethod
    def _ppf2(q):
        q = np.asarray(q, float)
        return out(np.where((q < 0) | (q > 1), np.nan, q * math.pi / 4))

    @staticmethod
    def _mean2():
        return math.pi / 8

    @staticmethod
    def _var2():
        return (math.pi / 4) ** 2 / 12


@dataclass(frozen=True)
class Exact(BisectorMethod):
    """Closed forms, n = 2 and 3.

    n = 2: uniform on ``[0, pi/4]``.  n = 3: ``g_3(a) = 1 - (3/pi) arccos(cot(a)/sqrt 2)``
    on ``[a0, arccos(1/sqrt 3)]``, whose cdf integrates in closed form to
    ``4(1 - cos a) + (12/pi)(cos(a) arccos(cot(a)/sqrt 2) - arccos(1/(sqrt(3) sin a)))``.
    """

    name: ClassVar[str] = "exact"

    def check(self, n):
        if n > 3:
            raise ValueError(f"method='exact' needs dim in [2, 3], got {n}; use 'auto', 'recursion' or 'saddlepoint'")

    def build(self, n):
        return _ExactComputation(n)


# --- normal ----------------------------------------------------------------------


class _NormalComputation:
    ppf = mean = var = None

    def __init__(self, n):
        self._m = bisector_cos_mean(n)
        self._s = math.sqrt(bisector_cos_var(n))
        self._z1 = (1.0 - self._m) / self._s
        self._zlo = (1.0 / math.sqrt(n) - self._m) / self._s
        self._lz = float(log_diff_ndtr(self._zlo, self._z1))

    def logpdf(self, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.cos(a) - self._m) / self._s
            return -0.5 * z * z - math.log(self._s) - 0.5 * LOG2PI + np.log(np.sin(a)) - self._lz

    def cdf(self, a):
        z = (np.cos(a) - self._m) / self._s
        with np.errstate(under="ignore"):
            return np.exp(log_diff_ndtr(z, self._z1) - self._lz)

    def sf(self, a):
        z = (np.cos(a) - self._m) / self._s
        with np.errstate(under="ignore"):
            return np.exp(log_diff_ndtr(self._zlo, z) - self._lz)


@dataclass(frozen=True)
class Normal(BisectorMethod):
    """``cos(angle) ~ N(m, s**2)`` with the exact mean and variance of the cosine,
    truncated to ``[1/sqrt n, 1]`` and mapped to the angle."""

    name: ClassVar[str] = "normal"

    def build(self, n):
        return _NormalComputation(n)


# --- the tabulated methods: normalisation shared by the recursion and the saddlepoint ---


class _Tabulated:
    """The exact law on ``[0, a0]`` joined to a raw tabulated law on ``(a0, amax]``."""

    ppf = mean = var = None

    def __init__(self, n, core):
        self.n = n
        self._core = core
        self._a0 = math.asin(1 / math.sqrt(n))
        self._sf_const = n * LOG2 - log_b(n)
        self._p0 = float(exact_mass_below(n, self._a0))
        self._logw = math.log1p(-self._p0) - math.log(core.total)

    def logpdf(self, a):
        n = self.n
        res = np.empty(a.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            low = a <= self._a0
            res[low] = (n - 2) * log_sin(a[low]) + self._sf_const
            up = ~low
            # g_n <= 1: the density never exceeds the sphere factor (the
            # tables' interpolation error could otherwise lift it ~1e-5 above
            # just past a0)
            res[up] = np.minimum(self._core.logpdf_raw(a[up]) + self._logw,
                                 (n - 2) * log_sin(a[up]) + self._sf_const)
        return res

    def _cdf_sf(self, a):
        low = a <= self._a0
        c = np.empty(a.shape)
        s = np.empty(a.shape)
        c[low] = exact_mass_below(self.n, a[low])
        s[low] = 1.0 - c[low]
        w = math.exp(self._logw)
        c[~low] = self._p0 + w * self._core.cum_raw(a[~low])
        s[~low] = w * self._core.tail_raw(a[~low])
        return np.clip(c, 0, 1), np.clip(s, 0, 1)

    def cdf(self, a):
        return self._cdf_sf(a)[0]

    def sf(self, a):
        return self._cdf_sf(a)[1]


# --- recursion -------------------------------------------------------------------


class _RecursionChain:
    """The chain of cdfs ``F_k`` of ``T_k = ||x||_1`` for one grid, grown on demand.

    Split ``x = (sqrt(1 - u**2) x', u)`` with ``x'`` uniform on S^(n-2),
    independent of the last coordinate ``u`` (density ``prop. to
    (1 - u**2)**((n-3)/2)``).  Then ``T_n = sqrt(1 - u**2) T_{n-1} + |u|``, so

    ``F_n(t) = E F_{n-1}((t - |u|) / sqrt(1 - u**2))``,

    a one-dimensional integral per point, started from the exact ``F_3``.
    Integrating the cdf (continuous) rather than the density keeps the
    trapezoid rule second order; the density comes from the last step.
    """

    def __init__(self, points, nodes):
        self.M = points  # grid points in t
        self.K = nodes  # quadrature nodes in u = sin(beta)
        self._lock = threading.Lock()
        self._chain = {}  # k -> (t grid, F_k)

    def _step(self, k, tg, F, density=False, f=None):
        bmax = min(math.pi / 2, math.sqrt(2 * 45.0 / max(k - 2, 1)))
        xg, wg = leggauss(self.K)
        b = (xg + 1) * (bmax / 2)
        w = wg * np.cos(b) ** (k - 2)
        w /= w.sum()
        tn = np.linspace(1.0, math.sqrt(k), self.M)
        s, c = np.sin(b), np.cos(b)
        arg = (tn[:, None] - s[None, :]) / c[None, :]
        Fn = interp_uniform_cubic(arg, tg[0], tg[1] - tg[0], F, 0.0, 1.0) @ w
        Fn[0], Fn[-1] = 0.0, 1.0
        if not density:
            return tn, Fn, None
        fn = (interp_uniform_cubic(arg, tg[0], tg[1] - tg[0], f, 0.0, 0.0) / c[None, :]) @ w
        return tn, Fn, fn

    def table(self, n):
        """Grid ``t``, cdf ``F_n`` and density ``f_n`` of ``T_n`` (n >= 4)."""
        with self._lock:
            if not self._chain:
                t3 = np.linspace(1.0, math.sqrt(3.0), self.M)
                a3 = np.arccos(np.clip(t3 / math.sqrt(3.0), -1, 1))
                self._chain[3] = (t3, 1.0 - dim3_cdf(a3))
            k0 = max(k for k in self._chain if k <= n - 1)
            tg, F = self._chain[k0]
            for k in range(k0 + 1, n):
                tg, F, _ = self._step(k, tg, F)
                if k <= RECURSION_AUTO_MAX_DIM or k % 8 == 0:
                    self._chain[k] = (tg, F)
            tgm, Fm = tg, F
        if n - 1 == 3:
            a = np.arccos(np.clip(tgm / math.sqrt(3.0), -1, 1))
            with np.errstate(divide="ignore", invalid="ignore"):
                f3 = np.exp(math.log(4.0) + dim3_log_g(a)) / math.sqrt(3.0)
            fm = np.where(np.isfinite(f3), f3, 0.0)
        else:
            # the derivative of the cubic spline of F: O(h**3), where np.gradient's
            # O(h**2) left a relative density error of 5e-4 at n = 100 (4e-3 at n = 1000)
            fm = CubicSpline(tgm, Fm)(tgm, 1)
            fm[0] = fm[-1] = 0.0
            fm = np.maximum(fm, 0.0)
        return self._step(n, tgm, Fm, density=True, f=fm)


@functools.lru_cache(maxsize=None)
def _recursion_chain(points, nodes):
    return _RecursionChain(points, nodes)


class _RecursionCore:
    """The raw law of the recursion on ``(a0, amax]``."""

    def __init__(self, n, points, nodes):
        self.n = n
        t, F, f = _recursion_chain(points, nodes).table(n)
        f = np.maximum(f, 0.0)
        self._t = t
        self._f = CubicSpline(t, f)
        self._F = CubicHermiteSpline(t, F, f)
        self.a0 = math.asin(1 / math.sqrt(n))
        ta0 = math.sqrt(n) * math.cos(self.a0)
        self._Fa0 = float(self._F(ta0))
        self.total = self._Fa0  # P(T < t(a0)) = mass on (a0, amax]

    def _t_of(self, a):
        return math.sqrt(self.n) * np.cos(a)

    def logpdf_raw(self, a):
        t = self._t_of(a)
        f = np.maximum(self._f(np.clip(t, 1.0, math.sqrt(self.n))), 0.0)
        with np.errstate(divide="ignore"):
            return np.log(f) + 0.5 * math.log(self.n) + np.log(np.sin(a))

    def cum_raw(self, a):
        """Mass on ``(a0, a]``."""
        t = np.clip(self._t_of(a), 1.0, math.sqrt(self.n))
        return np.clip(self._F(np.full_like(t, math.sqrt(self.n) * math.cos(self.a0))) - self._F(t), 0, None)

    def tail_raw(self, a):
        """Mass on ``(a, amax]``."""
        t = np.clip(self._t_of(a), 1.0, math.sqrt(self.n))
        return np.clip(self._F(t), 0.0, 1.0)


@dataclass(frozen=True)
class Recursion(BisectorMethod):
    """Numerically exact, from ``||x||_1 = sqrt(1 - u**2) ||x'||_1 + |u|`` (3 <= n <= 1000).

    ``u`` is the last coordinate and ``x'`` the others normalised, independent
    of ``u``; cost and set-up time grow like ``n`` (7 s at n = 100, 2 minutes
    at n = 1000, cold, on 2 cores).

    Parameters
    ----------
    points : int, default 2401
        Grid points in ``t = ||x||_1`` at every step.
    nodes : int, default 481
        Gauss-Legendre nodes of the integral over ``u`` at every step.
    """

    points: int = 2401
    nodes: int = 481
    name: ClassVar[str] = "recursion"

    def __post_init__(self):
        check_int("points", self.points, 16)
        check_int("nodes", self.nodes, 8)

    def check(self, n):
        if not 3 <= n <= RECURSION_MAX_DIM:
            raise ValueError(f"method='recursion' needs dim in [3, {RECURSION_MAX_DIM}], got {n}")

    def resolve(self, n):
        return Exact() if n == 3 else self

    def build(self, n):
        return _tabulated(self, n)


# --- saddlepoint -----------------------------------------------------------------


class _SaddlepointTables:
    """Dimension-free tables of the ray-integrated bivariate saddlepoint density.

    For ``(S1, S2) = (sum |g_i|, sum g_i**2)`` with cumulant generating
    function ``n K(a, b)``, ``K(a, b) = -log(1-2b)/2 + a**2/(2(1-2b)) +
    log(2 Phi(a/sqrt(1-2b)))``, the saddlepoint density of the means
    (Daniels 1954) integrated along the ray ``S1/sqrt(S2) = r`` has a
    closed form: on that ray the tilt ``lam = a/sqrt(1-2b)`` is constant and
    the remaining integral is a Gamma integral.  With ``m1, m2`` the first two
    moments and ``C`` the covariance matrix of ``(w, w**2)`` for ``w`` a
    ``N(lam, 1)`` variable truncated to ``w > 0``:

    ``log f(r) = lnGamma(n/2) - (n/2) ln(n/2) + n/2 + ln n - ln(2 pi)
    + 1.5 ln m2 - 0.5 ln det C + n J(lam)``,
    ``J = -lam rho/2 + ln(2 Phi(lam)) - ln(m2)/2``, ``rho = phi(lam)/Phi(lam)``,
    ``r = m1/sqrt(m2)``.

    ``r(lam)`` only covers ``(1/sqrt 2, 1)``: the tilted family of ``|g|`` is
    log-concave, so its ratio ``E w / sqrt(E w**2)`` never drops below that of
    the exponential law.  Angles above 45 degrees need a continuation.
    """

    def __init__(self):
        u = np.linspace(math.asinh(-40.0 / 0.5), math.asinh(4.0e6 / 0.5), 12001)
        lam = 0.5 * np.sinh(u)
        m1, mu2, mu3, mu4 = self.moments(lam)
        m2 = mu2 + m1**2
        detc = mu2 * (mu4 - mu2**2) - mu3**2
        rho = math.sqrt(2 / math.pi) / sc.erfcx(-lam / SQRT2)
        J = -lam * rho / 2 + LOG2 + sc.log_ndtr(lam) - 0.5 * np.log(m2)
        B = 1.5 * np.log(m2) - 0.5 * np.log(detc)
        r = m1 / np.sqrt(m2)
        # 1 - r without cancellation: 1 - r = (m2 - m1**2)/(sqrt(m2)(sqrt(m2)+m1))
        one_minus_r = mu2 / (np.sqrt(m2) * (np.sqrt(m2) + m1))
        v = np.log(one_minus_r)
        order = np.argsort(v)
        v, r, J, B = v[order], r[order], J[order], B[order]
        keep = np.abs(r - R_STAR) > 1e-4
        self.r_min = float(r.min())  # lam = -40: just above 1/sqrt 2
        self.v_max = float(v.max())
        self.B = CubicSpline(v, B)
        self.Jt = CubicSpline(v[keep], J[keep] / (r[keep] - R_STAR) ** 2)

    @staticmethod
    def moments(lam):
        """``E w`` and central moments 2-4 of ``w ~ N(lam, 1)`` truncated to ``w > 0``."""
        xg, wg = leggauss(96)
        lam = np.asarray(lam, float)[:, None]
        x = np.maximum(-lam, 0.0)
        lo = np.where(lam > 10, lam - 10, 0.0)
        hi = np.where(lam > 0, lam + 10, -x + np.sqrt(x**2 + 90.0))
        w = lo + (hi - lo) * (xg + 1) / 2
        lw = lam * w - w**2 / 2
        p = wg * np.exp(lw - lw.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        m1 = (p * w).sum(1)
        d = w - m1[:, None]
        d2 = d * d
        return m1, (p * d2).sum(1), (p * d2 * d).sum(1), (p * d2 * d2).sum(1)


@functools.lru_cache(maxsize=None)
def _saddlepoint_tables():
    return _SaddlepointTables()


class _SaddlepointCore:
    """Bivariate saddlepoint law on ``(a0, 45 deg)``, normal-shaped continuation above.

    Above ``theta_c = arccos(r_min)`` (just under 45 degrees) the saddlepoint
    does not exist; the density there is continued by the shape of the
    normal approximation of the cosine, matched in value at ``theta_c``.
    """

    def __init__(self, n):
        self.n = n
        self.tab = _saddlepoint_tables()
        self.a0 = math.asin(1 / math.sqrt(n))
        self.amax = math.atan(math.sqrt(n - 1.0))
        self.ac = math.acos(self.tab.r_min)
        self.const = stirling_rest(n / 2.0) + math.log(n) - LOG2PI
        self.m = bisector_cos_mean(n)
        self.s = math.sqrt(bisector_cos_var(n))
        # a grid over (a0, ac) dense in the bulk, for the cumulative mass
        bulk = math.acos(R_STAR)
        sig = math.sqrt((1 - 3 / math.pi) / (1 - 2 / math.pi) / n)
        lo, hi = self.a0, min(self.ac, self.amax)
        pieces = []
        wlo, whi = max(lo, bulk - 45 * sig), min(hi, bulk + 45 * sig)
        if wlo > lo:
            pieces.append(np.linspace(lo, wlo, 200, endpoint=False))
        pieces.append(np.linspace(wlo, whi, 1601, endpoint=whi >= hi))
        if whi < hi:
            pieces.append(np.linspace(whi, hi, 200))
        self._grid = np.concatenate(pieces)
        # g_n <= 1: the normalised density never exceeds the sphere factor
        # 2**n sin(a)**(n-2)/B_n.  The saddlepoint does, just past a0, by up to
        # 6% at n = 10 (0.9% at n = 49, 0.04% at n = 1000), so it is capped
        # there, in the tables as in the density, so that pdf and cdf agree.
        # The cap in raw units depends on the normalisation through
        # log w = log(1 - p0) - log(total): a fixed point, reached in a few
        # passes (the capped mass is < 1e-3 of the total).
        self._cap = math.inf
        self._tabulate()
        p0 = float(exact_mass_below(n, self.a0))
        sphere_const = n * LOG2 - log_b(n)
        for _ in range(8):
            cap = sphere_const - (math.log1p(-p0) - math.log(self.total))
            if abs(cap - self._cap) <= 1e-14 * abs(cap):
                break
            self._cap = cap
            self._tabulate()

    def _tabulate(self):
        """Cumulative and tail mass on the grid over ``(a0, ac)``, and the continuation."""
        g = self._grid
        xg, wg = leggauss(8)
        mid, half = (g[1:] + g[:-1]) / 2, (g[1:] - g[:-1]) / 2
        nodes = mid[:, None] + half[:, None] * xg
        with np.errstate(under="ignore"):
            seg = (np.exp(self._logpdf_sp(nodes)) * wg).sum(1) * half
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        self.mass_sp = float(cum[-1])
        tail = np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])
        with np.errstate(under="ignore"):
            dens = np.exp(self._logpdf_sp(g))
        self._cum = CubicHermiteSpline(g, cum, dens)
        self._tail = CubicHermiteSpline(g, tail, -dens)
        # continuation above ac (only when ac < amax)
        self.has_cont = self.ac < self.amax
        if self.has_cont:
            self.lc = float(self._logpdf_sp(np.array(self.ac)))
            self.zc = (math.cos(self.ac) - self.m) / self.s
            zmax = (math.cos(self.amax) - self.m) / self.s
            self._lcont_scale = self.lc + 0.5 * self.zc**2 - math.log(math.sin(self.ac))
            self.mass_cont = float(
                np.exp(self._lcont_scale + math.log(self.s) + 0.5 * LOG2PI + log_diff_ndtr(zmax, self.zc))
            )
        else:
            self.mass_cont = 0.0
        self.total = self.mass_sp + self.mass_cont

    def _logpdf_sp(self, a):
        a = np.asarray(a, float)
        r = np.cos(a)
        v = np.log(2.0 * np.sin(a / 2) ** 2)
        v = np.minimum(v, self.tab.v_max)
        sp = self.const + self.tab.B(v) + self.n * (r - R_STAR) ** 2 * self.tab.Jt(v) + np.log(np.sin(a))
        if self._cap == math.inf:
            return sp
        return np.minimum(sp, (self.n - 2) * log_sin(a) + self._cap)

    def _logpdf_cont(self, a):
        z = (np.cos(a) - self.m) / self.s
        return self._lcont_scale - 0.5 * z**2 + np.log(np.sin(a))

    def logpdf_raw(self, a):
        a = np.asarray(a, float)
        if not self.has_cont:
            return self._logpdf_sp(a)
        sp = a <= self.ac
        res = np.empty(a.shape)
        res[sp] = self._logpdf_sp(a[sp])
        res[~sp] = self._logpdf_cont(a[~sp])
        return res

    def _cont_mass_above(self, a):
        z = (np.cos(a) - self.m) / self.s
        zmax = (math.cos(self.amax) - self.m) / self.s
        with np.errstate(under="ignore"):
            return np.exp(self._lcont_scale + math.log(self.s) + 0.5 * LOG2PI + log_diff_ndtr(zmax, z))

    def cum_raw(self, a):
        a = np.asarray(a, float)
        g = self._grid
        inner = np.clip(a, g[0], g[-1])
        val = np.asarray(self._cum(inner), float)
        if self.has_cont:
            above = a > self.ac
            if np.any(above):
                val = np.where(above, self.mass_sp + self.mass_cont - self._cont_mass_above(np.clip(a, self.ac, self.amax)), val)
        return np.clip(val, 0.0, None)

    def tail_raw(self, a):
        a = np.asarray(a, float)
        g = self._grid
        inner = np.clip(a, g[0], g[-1])
        val = np.asarray(self._tail(inner), float) + self.mass_cont
        if self.has_cont:
            above = a > self.ac
            if np.any(above):
                val = np.where(above, self._cont_mass_above(np.clip(a, self.ac, self.amax)), val)
        return np.clip(val, 0.0, None)


@dataclass(frozen=True)
class Saddlepoint(BisectorMethod):
    """The bivariate saddlepoint density (Daniels 1954) of ``(sum|g_i|, sum g_i**2)``, n >= 4.

    Its cumulant generating function is ``n K(a, b)``,
    ``K(a, b) = -log(1 - 2b)/2 + a**2/(2(1 - 2b)) + log(2 Phi(a/sqrt(1 - 2b)))``,
    integrated in closed form along the ray ``cos = const`` and renormalised.
    It does not exist above 45 degrees (the tilted law of ``|g|`` stays
    log-concave, so ``cos >= 1/sqrt 2``); there the density is continued by
    the normal shape, matched in value at 45 degrees.  Relative error
    ``O(1/n)``; see ``docs/accuracy.md``.
    """

    name: ClassVar[str] = "saddlepoint"

    def check(self, n):
        if n < 4:
            raise ValueError(f"method='saddlepoint' needs dim >= 4, got {n}; use method='exact'")

    def build(self, n):
        return _tabulated(self, n)


@functools.lru_cache(maxsize=64)
def _tabulated(method, n):
    if isinstance(method, Recursion):
        core = _RecursionCore(n, method.points, method.nodes)
    else:
        core = _SaddlepointCore(n)
    return _Tabulated(n, core)


# --- names ----------------------------------------------------------------------------


def method_from_name(method, n):
    """The method object that ``method`` (a name or an object) means at dimension ``n``."""
    if isinstance(method, BisectorMethod):
        chosen = method
    elif not isinstance(method, str) or method not in BISECTOR_METHODS:
        raise ValueError(f"method must be one of {BISECTOR_METHODS} or a BisectorMethod, got {method!r}")
    elif method == "auto":
        return Exact() if n <= 3 else (Recursion() if n <= RECURSION_AUTO_MAX_DIM else Saddlepoint())
    else:
        chosen = {"exact": Exact, "recursion": Recursion, "saddlepoint": Saddlepoint, "normal": Normal}[method]()
    chosen.check(n)
    return chosen.resolve(n)
