"""The seed paper's decomposition of the bisector-angle density, ``p_n = f_n * g_n``.

``p_n(a) = 2**n sin(a)**(n-2) / B_n * g_n(a)``: the sphere factor
(:func:`log_sphere_factor`) times the orthant fraction
(:func:`log_orthant_fraction`, estimated directly by
:func:`estimate_orthant_fraction`).
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import ANGLE, check_dim, check_int
from .bisector import BisectorAngle
from .numerics import LOG2, log_b, log_sin, out

__all__ = ["estimate_orthant_fraction", "log_orthant_fraction", "log_sphere_factor"]


def log_sphere_factor(dim, angle):
    """The sphere factor of the seed paper's decomposition, in log space.

    ``log(2**n sin(a)**(n-2) / B_n)``, ``B_n = sqrt(pi) Gamma((n-1)/2)/Gamma(n/2)``:
    ``2**n`` orthants times the fixed-axis density of the angle.  The
    bisector-angle density is ``p_n(a) = 2**n sin(a)**(n-2) / B_n * g_n(a)``
    (seed paper, Section 2), with ``g_n`` the orthant fraction
    (:func:`log_orthant_fraction`).  NaN for angles outside ``[0, pi]``.

    Examples
    --------
    >>> import math
    >>> round(log_sphere_factor(2, 0.3), 12) == round(math.log(4 / math.pi), 12)
    True
    """
    n = check_dim(dim)
    a = np.asarray(angle, dtype=np.float64)
    inside = (a >= 0) & (a <= math.pi)
    const = n * LOG2 - log_b(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        if n == 2:
            val = np.full(a.shape, const)
        else:
            val = (n - 2) * log_sin(np.where(inside, a, 1.0)) + const
    return out(np.where(inside, val, np.nan))


def log_orthant_fraction(dim, angle):
    """``log g_n(a)``: the orthant fraction of the seed paper's decomposition.

    ``g_n(a)`` is the fraction of the (n-2)-sphere at angle ``a`` from the
    bisector ``e = (1, ..., 1)/sqrt n`` that lies in the positive orthant, so
    that the bisector-angle density is
    ``p_n(a) = 2**n sin(a)**(n-2) / B_n * g_n(a)`` (seed paper, Sec. 2).

    - ``0`` exactly on ``[0, arcsin(1/sqrt n)]`` (the whole small sphere is in
      the orthant), ``-inf`` beyond ``arccos(1/sqrt n)``, NaN outside
      ``[0, pi]``;
    - in between it is *defined* by the default law:
      ``BisectorAngle(dim).logpdf(a) - log_sphere_factor(dim, a)``, so that
      ``BisectorAngle(dim).logpdf == log_sphere_factor + log_orthant_fraction``
      holds for the default (``method="auto"``) law.  That is exact for
      n = 2, 3 (closed forms), numerically exact for n <= 48 (recursion), and
      the saddlepoint approximation above (relative error ``O(1/n)`` in
      ``g``, i.e. an error ``O(1/n**2)`` in ``(1/n) log g``).

    Where the mass is, ``g_n`` is astronomically small:
    ``(1/n) log g_n(a*) -> -log 2 - log(1 - 2/pi)/2 = -0.18699`` at
    ``a* = arccos(sqrt(2/pi))``, cancelling the growth of the sphere factor.

    Examples
    --------
    >>> import math
    >>> log_orthant_fraction(100, 0.05)
    0.0
    >>> a = math.acos(math.sqrt(2 / math.pi))
    >>> round(log_orthant_fraction(10**6, a) / 10**6, 4)
    -0.187
    """
    n = check_dim(dim)
    a = np.asarray(angle, dtype=np.float64)
    flat = a.ravel()
    res = np.full(flat.shape, np.nan)
    a0 = math.asin(1 / math.sqrt(n))
    a1 = math.atan(math.sqrt(n - 1.0))
    res[(flat >= 0) & (flat <= a0)] = 0.0
    res[(flat > a1) & (flat <= math.pi)] = -np.inf
    mid = (flat > a0) & (flat <= a1)
    if np.any(mid):
        law = BisectorAngle(n)
        res[mid] = np.asarray(law.logpdf(flat[mid])) - np.asarray(log_sphere_factor(n, flat[mid]))
    return out(res.reshape(a.shape))


def estimate_orthant_fraction(dim, angle, samples, seed=0):
    """Monte Carlo estimate of the orthant fraction ``g_n(a)``.

    Draws ``u`` uniform on the unit sphere of the orthogonal complement of
    ``e = (1, ..., 1)/sqrt n`` (a Gaussian vector of the package's stream,
    :func:`lni_geometry.sample_vectors`, centred and normalised) and counts
    how often ``cos(a) e + sin(a) u`` lies in the positive orthant, i.e.
    ``min_i u_i > -cot(a)/sqrt n``.  The same ``u`` serve every angle.
    The standard error is ``sqrt(g (1 - g) / samples)``.

    Parameters
    ----------
    dim : int
        ``n >= 2``.
    angle : float or array_like
        Angles in ``[0, pi]`` (radians).
    samples : int
        Number of directions ``u``.
    seed : int, default 0

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> estimate_orthant_fraction(5, 0.2, 1000)
    1.0
    >>> estimate_orthant_fraction(5, 1.2, 1000)
    0.0
    """
    from ..sampling import sample_vectors

    n = check_dim(dim)
    samples = check_int("samples", samples, 1)
    a = ANGLE.check_array(angle)
    chunk = max(1, (1 << 24) // n)
    mins = np.empty(samples)
    for start in range(0, samples, chunk):
        k = min(chunk, samples - start)
        z = sample_vectors(n, k, seed=seed, start=start)
        z -= z.mean(axis=1, keepdims=True)
        mins[start : start + k] = z.min(axis=1) / np.linalg.norm(z, axis=1)
    mins.sort()
    flat = a.ravel()
    # positive orthant: cos(a)/sqrt(n) + sin(a) m > 0 for m = min_i u_i, i.e.
    # m > -cot(a)/sqrt(n) (every m when a = 0, none when a = pi)
    s, c = np.sin(flat), np.cos(flat)
    with np.errstate(divide="ignore", invalid="ignore"):
        thr = np.where(s > 0, -c / (math.sqrt(n) * s), np.where(c > 0, -np.inf, np.inf))
    res = (samples - np.searchsorted(mins, thr, side="right")) / samples
    return out(res.reshape(a.shape))
