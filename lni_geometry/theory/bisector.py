"""The law of the bisector angle of a uniform point: :class:`BisectorAngle`."""

from __future__ import annotations

import math

from ..validation import check_dim
from .base import AngleLaw
from .bisector_methods import method_from_name
from .numerics import bisector_cos_mean, bisector_cos_var

__all__ = ["BisectorAngle"]


class BisectorAngle(AngleLaw):
    """Law of the bisector angle ``arccos(||x||_1 / sqrt(n))`` of a uniform point ``x``.

    The density is (seed paper [1]_, Section 2)

    ``p_n(a) = 2**n sin(a)**(n-2) / B_n * g_n(a)``  on ``[0, arccos(1/sqrt n)]``,

    with ``g_n(a)`` the fraction of the (n-2)-sphere at angle ``a`` from the
    bisector ``e`` that lies in the positive orthant; ``g_n = 1`` exactly on
    ``[0, a0]``, ``a0 = arcsin(1/sqrt n)``, and every method except
    ``"normal"`` uses the exact density there.

    Parameters
    ----------
    dim : int
        Dimension ``n``, ``2 <= n <= 2**40`` (an integer: ``1e6`` is refused,
        see :mod:`lni_geometry.validation`).
    method : {"auto", "exact", "recursion", "saddlepoint", "normal"} or a method object
        A name or an object of :mod:`lni_geometry.theory.bisector_methods`
        (:class:`Exact`, :class:`Recursion`, :class:`Saddlepoint`, :class:`Normal`;
        ``Recursion(points=..., nodes=...)`` sets the recursion's grid).

        - ``"exact"`` (n = 2, 3): closed forms.  n = 2: uniform on
          ``[0, pi/4]``.  n = 3: ``g_3(a) = 1 - (3/pi) arccos(cot(a)/sqrt 2)``
          on ``[a0, arccos(1/sqrt 3)]``, whose cdf integrates in closed form to
          ``4(1 - cos a) + (12/pi)(cos(a) arccos(cot(a)/sqrt 2) - arccos(1/(sqrt(3) sin a)))``.
        - ``"recursion"`` (3 <= n <= 1000): numerically exact, from
          ``||x||_1 = sqrt(1 - u**2) ||x'||_1 + |u|`` (``u`` the last
          coordinate, ``x'`` the others normalised, independent of ``u``); cost
          and set-up time grow like ``n`` (7 s at n = 100, 2 minutes at n = 1000, cold, on 2 cores).
        - ``"saddlepoint"`` (n >= 4): the bivariate saddlepoint density
          (Daniels 1954) of ``(sum|g_i|, sum g_i**2)``, whose cumulant
          generating function is ``n K(a, b)``,
          ``K(a, b) = -log(1 - 2b)/2 + a**2/(2(1 - 2b)) + log(2 Phi(a/sqrt(1 - 2b)))``,
          integrated in closed form along the ray ``cos = const`` and
          renormalised.  It does not exist above 45 degrees (the tilted law of
          ``|g|`` stays log-concave, so ``cos >= 1/sqrt 2``); there the density
          is continued by the normal shape, matched in value at 45 degrees.
          Relative error ``O(1/n)``; see ``docs/accuracy.md``.
        - ``"normal"``: ``cos(angle) ~ N(m, s**2)`` with the exact mean
          :func:`bisector_cos_mean` and variance :func:`bisector_cos_var`,
          truncated to ``[1/sqrt n, 1]`` and mapped to the angle.
        - ``"auto"`` (default): ``"exact"`` for n <= 3, ``"recursion"`` for
          n <= ``RECURSION_AUTO_MAX_DIM`` (48), ``"saddlepoint"`` above.  The
          recursion is the more accurate up to n = 1000 but its set-up time
          grows like n (minutes at n = 1000), while the saddlepoint's cdf error
          is already 1.6e-3 at n = 49 and falls like 1/n.  Its
          cdf is within 0.005 of the truth at every dimension (measured in
          ``docs/accuracy.md``: within 4e-4 at n = 100 and 3e-5 at n = 1000).

    Attributes
    ----------
    method : str
        The name of the method that runs (``"auto"`` resolved).
    method_object : BisectorMethod
        The method itself.

    Notes
    -----
    Tables are built once per (dim, method) and cached; evaluating pdf and cdf
    at 1e5 angles takes a few milliseconds at any dimension.

    References
    ----------
    .. [1] Elistratov, Podivilov, Iuzhakov and Vetrov, "Lion's sign noise can
       make training more stable" (the seed paper of this package), Section 2.

    Examples
    --------
    >>> law = BisectorAngle(2)
    >>> law.method, law.support()
    ('exact', (0.0, 0.7853981633974483))
    >>> round(law.cdf(0.5), 12) == round(0.5 / (3.141592653589793 / 4), 12)
    True
    >>> big = BisectorAngle(10**9)
    >>> round(big.mean(), 6)   # -> arccos(sqrt(2/pi)) = 0.647019
    0.647019
    >>> bool(abs(big.cdf(big.ppf(0.3)) - 0.3) < 1e-9)
    True
    """

    def __init__(self, dim, method="auto"):
        n = check_dim(dim)
        self.method_object = method_from_name(method, n)
        self.dim = n
        self.method = self.method_object.name
        self._hi = math.atan(math.sqrt(n - 1.0))  # arccos(1/sqrt n)
        self._computation = self.method_object.build(n)

    def __repr__(self):
        return f"BisectorAngle(dim={self.dim}, method={self.method!r})"

    def _window(self):
        if self.dim <= 1000:
            return self.support()
        m, s = bisector_cos_mean(self.dim), math.sqrt(bisector_cos_var(self.dim))
        lo = math.acos(min(1.0, m + 40 * s))
        hi = math.acos(max(1.0 / math.sqrt(self.dim), m - 40 * s))
        return (lo, hi)

    def _logpdf(self, a):
        return self._computation.logpdf(a)

    def _cdf(self, a):
        return self._computation.cdf(a)

    def _sf(self, a):
        return self._computation.sf(a)

    def ppf(self, q):
        """Quantile function (the exact inverse for n = 2)."""
        exact = self._computation.ppf
        return exact(q) if exact is not None else super().ppf(q)

    def mean(self):
        """Mean angle (radians): exact for n = 2, quadrature of the density otherwise."""
        exact = self._computation.mean
        return exact() if exact is not None else super().mean()

    def var(self):
        """Variance of the angle (radians squared)."""
        exact = self._computation.var
        return exact() if exact is not None else super().var()
