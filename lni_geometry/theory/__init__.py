"""Analytic laws of the angles of a uniform point on the sphere.

Every law is an object with the surface of a :mod:`scipy.stats` distribution:
``pdf, logpdf, cdf, sf, ppf, mean, var, std, support``.  Parameters are fixed
and validated at construction; angles are in radians; every method is
vectorised; densities are computed in log space first (``pdf = exp(logpdf)``)
and stay finite up to ``dim = 10**9`` and beyond.

Laws
----
:class:`FixedAxisAngle`
    The exact law of the angle between a uniform point of S^(n-1) and a fixed
    axis: density ``sin(a)**(n-2) / B_n`` on ``[0, pi]``.
:class:`BisectorAngle`
    The law of the bisector angle ``arccos(||x||_1 / sqrt(n))`` of a uniform
    point ``x``: exact forms (n = 2, 3), a numerically exact recursion over the
    dimension, a bivariate saddlepoint approximation valid at every ``n >= 4``,
    and a normal approximation (saddlepoint: [2]_); the methods are objects (:class:`Exact`,
    :class:`Recursion`, :class:`Saddlepoint`, :class:`Normal`) chosen by
    ``method=``.
:class:`StableBisectorAngle`
    The heavy-tailed limit laws of the bisector angle when the coordinates
    are symmetric alpha-stable (drawn as in [4]_; self-normalised limits [3]_,
    positive-stable densities by Kanter's integral [5]_).

Functions
---------
:func:`bisector_cos_mean`, :func:`bisector_cos_var`
    Exact mean and variance of the cosine of the bisector angle.
:func:`log_sphere_factor`, :func:`log_orthant_fraction`
    The two factors of the seed paper's decomposition [1]_
    ``p_n(a) = 2**n sin(a)**(n-2) / B_n * g_n(a)``.
:func:`estimate_orthant_fraction`
    A direct Monte Carlo estimate of ``g_n(a)``.

Layout
------
``numerics``: shared numerics and the exact cosine moments; ``base``: the law
base class (NaN and support handled once); ``fixed_axis``; ``bisector`` and
``bisector_methods``; ``decomposition`` (the ``f * g`` factors); ``stable``.
To add a law, subclass :class:`AngleLaw` and define ``_logpdf``, ``_cdf`` and
``_sf`` on angles inside the support.

References
----------
.. [1] Elistratov, Podivilov, Iuzhakov and Vetrov, "Lion's sign noise can make
   training more stable" (the seed paper of this package), Section 2: the
   decomposition of the bisector-angle density.
.. [2] H. E. Daniels, "Saddlepoint approximations in statistics",
   Ann. Math. Statist. 25 (1954) 631-650; O. E. Barndorff-Nielsen and
   D. R. Cox, "Asymptotic Techniques for Use in Statistics" (1989), ch. 4.
.. [3] B. F. Logan, C. L. Mallows, S. O. Rice and L. A. Shepp, "Limit
   distributions of self-normalized sums", Ann. Probab. 1 (1973) 788-809.
.. [4] J. M. Chambers, C. L. Mallows and B. W. Stuck, "A method for simulating
   stable random variables", JASA 71 (1976) 340-344.
.. [5] M. Kanter, "Stable densities under change of scale and total variation
   inequalities", Ann. Probab. 3 (1975) 697-707.
"""

from .base import AngleLaw
from .bisector import BisectorAngle
from .bisector_methods import (
    BISECTOR_METHODS,
    RECURSION_AUTO_MAX_DIM,
    RECURSION_MAX_DIM,
    BisectorMethod,
    Exact,
    Normal,
    Recursion,
    Saddlepoint,
)
from .decomposition import estimate_orthant_fraction, log_orthant_fraction, log_sphere_factor
from .fixed_axis import FixedAxisAngle
from .numerics import bisector_cos_mean, bisector_cos_var, leggauss  # noqa: F401
from .stable import LEPAGE_REALISATIONS, LEPAGE_TERMS, StableBisectorAngle  # noqa: F401

__all__ = [
    "FixedAxisAngle",
    "BisectorAngle",
    "StableBisectorAngle",
    "bisector_cos_mean",
    "bisector_cos_var",
    "log_sphere_factor",
    "log_orthant_fraction",
    "estimate_orthant_fraction",
    "BISECTOR_METHODS",
    "RECURSION_AUTO_MAX_DIM",
    "RECURSION_MAX_DIM",
    "AngleLaw",
    "BisectorMethod",
    "Exact",
    "Recursion",
    "Saddlepoint",
    "Normal",
]
