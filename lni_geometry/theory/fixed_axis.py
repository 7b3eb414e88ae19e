"""The exact law of the angle between a uniform point and a fixed axis."""

from __future__ import annotations

import math

import numpy as np
from scipy import special as sc

from ..validation import check_dim
from .base import AngleLaw
from .numerics import log_b, log_sin, out

__all__ = ["FixedAxisAngle"]


class FixedAxisAngle(AngleLaw):
    """Exact law of the angle between a uniform point of S^(n-1) and a fixed axis.

    Density ``sin(a)**(n-2) / B_n`` on ``[0, pi]`` with
    ``B_n = sqrt(pi) Gamma((n-1)/2) / Gamma(n/2)``; equivalently
    ``cos(a)**2 ~ Beta(1/2, (n-1)/2)`` with a symmetric sign, so that for
    ``a <= pi/2``

    ``P(A <= a) = I(sin(a)**2; (n-1)/2, 1/2) / 2 = Q(cos(a)**2; 1/2, (n-1)/2) / 2``

    (``I`` the regularised incomplete beta function, ``Q = 1 - I``), evaluated
    as the Student-t cdf ``stdtr(n - 1, -sqrt(n - 1) cot(a))`` (the same
    function, faster; right to a relative 1e-9 eight standard deviations out
    at every n up to 1e9, checked against mpmath).  The mean is ``pi/2`` and the variance
    ``psi'(n/2)/2`` (from the Fourier transform of ``cos**(n-2)``).  Classical;
    see e.g. the seed paper [1]_, Section 2.

    Parameters
    ----------
    dim : int
        Dimension ``n`` of the space, ``2 <= n <= 2**40``.

    References
    ----------
    .. [1] Elistratov, Podivilov, Iuzhakov and Vetrov, "Lion's sign noise can
       make training more stable" (the seed paper of this package).

    Examples
    --------
    >>> law = FixedAxisAngle(3)
    >>> round(law.cdf(1.0), 12) == round((1 - 0.5403023058681398) / 2, 12)
    True
    >>> law.mean()
    1.5707963267948966
    >>> big = FixedAxisAngle(10**9)
    >>> bool(abs(big.std() * 10**4.5 - 1) < 1e-6)
    True
    """

    def __init__(self, dim):
        self.dim = check_dim(dim)
        n = self.dim
        self._log_norm = -log_b(n)
        self._a = (n - 1) / 2.0

    def __repr__(self):
        return f"FixedAxisAngle(dim={self.dim})"

    def _logpdf(self, a):
        """Log density ``(n-2) log sin(a) - log B_n`` on ``[0, pi]``."""
        if self.dim == 2:
            return np.full(a.shape, self._log_norm)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.dim - 2) * log_sin(a) + self._log_norm

    def _lower(self, a):
        """``P(A <= a)`` for ``a`` in ``[0, pi/2]``.

        ``cos(A)**2 ~ Beta(1/2, (n-1)/2)``, which is the law of ``T**2/(nu + T**2)``
        for ``T`` Student-t with ``nu = n - 1`` degrees of freedom; so
        ``T = sqrt(nu) cot(A)`` and ``P(A <= a) = P(T >= sqrt(nu) cot a)
        = stdtr(nu, -sqrt(nu) cot a)``: the regularised incomplete beta function
        ``I_x((n-1)/2, 1/2)`` through scipy's Student-t cdf, about 25 times
        faster than ``betaincc`` at these parameters and equal to it within
        4e-15 relative.
        """
        a = np.asarray(a, dtype=np.float64)
        nu = self.dim - 1.0
        with np.errstate(divide="ignore"):
            return sc.stdtr(nu, -math.sqrt(nu) * np.cos(a) / np.sin(a))

    def _cdf(self, a):
        """``P(A <= a)``, through the regularised incomplete beta function."""
        left = a <= math.pi / 2
        t = self._lower(np.where(left, a, math.pi - a))
        return np.where(left, t, 1.0 - t)

    def _sf(self, a):
        """``P(A > a) = P(A <= pi - a)`` (by symmetry), accurate in the upper tail."""
        return self._cdf(math.pi - a)

    def ppf(self, q):
        """Quantiles through ``betaincinv`` / ``betainccinv``."""
        q = np.asarray(q, dtype=np.float64)
        p = np.where(q <= 0.5, q, 1.0 - q)
        s2 = sc.betaincinv(self._a, 0.5, 2 * p)
        c2 = sc.betainccinv(0.5, self._a, 2 * p)
        with np.errstate(invalid="ignore"):
            low = np.where(s2 < 0.5, np.arcsin(np.sqrt(s2)), np.arccos(np.sqrt(c2)))
        val = np.where(q <= 0.5, low, math.pi - low)
        val = np.where((q < 0) | (q > 1), np.nan, val)
        return out(val)

    def mean(self):
        """``pi/2`` (the law is symmetric about ``pi/2``)."""
        return math.pi / 2

    def var(self):
        """``psi'(n/2) / 2`` (trigamma), exact."""
        return float(sc.polygamma(1, self.dim / 2.0)) / 2.0
