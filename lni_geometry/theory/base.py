"""The base of every law: the scipy.stats surface, with NaN and the support handled once.

A law defines, on angles inside its support ``[lo, hi]`` only (1-d float64
arrays without NaN), the hooks ``_logpdf``, ``_cdf`` and ``_sf``.  The public
``logpdf``, ``cdf`` and ``sf`` validate nothing else: they take any array
(or scalar) of angles, give NaN for NaN, ``-inf`` / 0 / 1 outside the support,
call the hook on the rest and return a float for a scalar.  ``pdf`` is
``exp(logpdf)``, ``std`` is ``sqrt(var)``; ``mean``, ``var`` come from a
quadrature of the density and ``ppf`` from a cdf table polished by Newton
steps, unless a law knows them exactly.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .numerics import leggauss, out

__all__ = ["AngleLaw"]


class AngleLaw:
    """Shared surface: support and NaN handling, pdf from logpdf, std from var, ppf by Newton."""

    _lo = 0.0
    _hi = math.pi

    def support(self):
        """The interval ``(lo, hi)`` (radians) outside which the density is 0."""
        return (self._lo, self._hi)

    # --- hooks: angles inside the support -------------------------------------
    def _logpdf(self, a):
        raise NotImplementedError

    def _cdf(self, a):
        raise NotImplementedError

    def _sf(self, a):
        raise NotImplementedError

    # --- the public surface ---------------------------------------------------------
    def _split(self, x):
        a = np.asarray(x, dtype=np.float64)
        flat = a.ravel()
        inside = (flat >= self._lo) & (flat <= self._hi)
        return a.shape, flat, inside

    def logpdf(self, x):
        """Log density at angles ``x`` (radians); ``-inf`` outside the support, NaN for NaN."""
        shape, a, inside = self._split(x)
        res = np.full(a.shape, -np.inf)
        if inside.any():
            res[inside] = self._logpdf(a[inside])
        res[np.isnan(a)] = np.nan
        return out(res.reshape(shape))

    def pdf(self, x):
        """Density at angles ``x`` (radians): ``exp(logpdf(x))``."""
        return out(np.exp(self.logpdf(x)))

    def _probability(self, x, inner, below, above):
        """``inner`` inside the support, ``below``/``above`` outside it, NaN for NaN."""
        shape, a, inside = self._split(x)
        res = np.where(a < self._lo, below, above)
        if inside.any():
            res[inside] = inner(a[inside])
        res[np.isnan(a)] = np.nan
        return out(res.reshape(shape))

    def cdf(self, x):
        """``P(angle <= x)``."""
        return self._probability(x, self._cdf, 0.0, 1.0)

    def sf(self, x):
        """``P(angle > x)``, computed from the upper tail (not as ``1 - cdf``)."""
        return self._probability(x, self._sf, 1.0, 0.0)

    def std(self):
        """Standard deviation of the angle, ``sqrt(var())``."""
        return math.sqrt(self.var())

    # --- quadrature helpers -------------------------------------------------
    def _window(self):
        """An interval holding all but ~1e-300 of the mass (for tables and moments)."""
        return self.support()

    @functools.cached_property
    def _moments(self):
        lo, hi = self._window()
        edges = np.linspace(lo, hi, 65)
        xg, wg = leggauss(40)
        a = (edges[:-1, None] + edges[1:, None]) / 2 + (edges[1:, None] - edges[:-1, None]) / 2 * xg
        w = (edges[1:, None] - edges[:-1, None]) / 2 * wg
        a, w = a.ravel(), w.ravel()
        p = np.exp(self.logpdf(a)) * w
        mass = p.sum()
        mu = (p * a).sum() / mass
        var = (p * (a - mu) ** 2).sum() / mass
        return (float(mu), float(var))

    def mean(self):
        """Mean angle (radians)."""
        return self._moments[0]

    def var(self):
        """Variance of the angle (radians squared)."""
        return self._moments[1]

    # --- ppf --------------------------------------------------------------
    @functools.cached_property
    def _ppf_table(self):
        lo, hi = self._window()
        t = np.linspace(lo, hi, 4097)
        c = np.maximum.accumulate(np.asarray(self.cdf(t), float))
        return (t, c)

    def ppf(self, q):
        """Quantile function: the angle ``a`` with ``cdf(a) = q``.

        A table of the cdf gives the bracket and a first guess; five Newton
        steps (clipped to the bracket) polish it.
        """
        q = np.asarray(q, dtype=np.float64)
        t, c = self._ppf_table
        flat = q.ravel()
        res = np.full(flat.shape, np.nan)
        ok = (flat >= 0) & (flat <= 1)
        qq = flat[ok]
        j = np.clip(np.searchsorted(c, qq, side="left"), 1, len(t) - 1)
        a_lo, a_hi = t[j - 1], t[j]
        c_lo, c_hi = c[j - 1], c[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(c_hi > c_lo, (qq - c_lo) / (c_hi - c_lo), 0.5)
        a = a_lo + np.clip(frac, 0, 1) * (a_hi - a_lo)
        for _ in range(5):
            f = np.asarray(self.cdf(a), float) - qq
            d = np.asarray(self.pdf(a), float)
            with np.errstate(invalid="ignore", divide="ignore"):
                step = np.where(d > 0, f / d, 0.0)
            a = np.clip(a - step, a_lo, a_hi)
        a = np.where(qq <= 0, self._lo, np.where(qq >= 1, self._hi, a))
        res[ok] = a
        return out(res.reshape(q.shape))
