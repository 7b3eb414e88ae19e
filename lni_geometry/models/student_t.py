"""The Student-t model: Bailey's polar method, one coordinate per Philox call.

:class:`StudentT` (spec ``"t:DF"``), its exact uniforms
(:func:`signed_half_uniform`), the polar candidate of one Philox call
(:func:`student_t_from_words`) and its fills: :func:`fill_student_t` for the
kernels' dispatch (retries one coordinate at a time, so that it compiles for
CUDA) and :func:`fill_student_t_tile` for the CPU kernels (retries through a
compacted index list, the same values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import float64, int64, njit, uint32, uint64

from ..elementary import CONTRACT, expm1_finite, log_positive, sqrt_nonneg
from ..rng import stream_words
from ..validation import Domain
from .registry import GradientModel, register_model

__all__ = [
    "STUDENT_T_MAX_DRAWS",
    "StudentT",
    "fill_student_t",
    "fill_student_t_tile",
    "signed_half_uniform",
    "student_t_from_words",
]

#: Philox calls tried per Student-t coordinate before giving up (see StudentT).
STUDENT_T_MAX_DRAWS = 64
_TWO_M53 = 2.0**-53
_LOW31 = np.uint64(0x7FFFFFFF)

# --- device functions -------------------------------------------------------


@njit(inline="always", cache=True, error_model="numpy")
def signed_half_uniform(wa, wb):
    """``(sign, a)`` from two words: ``sign = +-1`` from the top bit of ``wa``,
    ``a = (m + 1/2) 2**-53`` in ``(0, 1/2)`` from the next 52 bits ``m`` (exact).

    ``sign * a`` is a 53-bit uniform on ``(-1/2, 1/2)``, symmetric and exact,
    so ``1/2 - a`` is exact too.
    """
    wa = uint64(uint32(wa))
    wb = uint64(uint32(wb))
    sign = 1.0 - 2.0 * float64(wa >> uint64(31))
    m = ((wa & _LOW31) << uint64(21)) | (wb >> uint64(11))
    return sign, (float64(m) + 0.5) * _TWO_M53


@njit(inline="always", cache=True, error_model="numpy")
def student_t_from_words(w0, w1, w2, w3, df, two_over_df):
    """Bailey's polar candidate: ``(t, accepted)`` from one Philox call."""
    su, au = signed_half_uniform(w0, w1)
    sv, av = signed_half_uniform(w2, w3)
    u = su * (2.0 * au)  # (m + 1/2) 2**-52, exact
    v = 2.0 * av
    w = u * u + v * v
    ok = w <= 1.0
    wc = w if ok else 0.5
    em1 = expm1_finite(-two_over_df * log_positive(wc))
    t = u * sqrt_nonneg(df * em1 / wc)
    return t, ok


@njit(inline="always", cache=True, error_model="numpy")
def _student_t_first_draws(k0, k1, sample, block0, n, df, two_over_df, out):
    """Draw 0 of coordinates ``block0 .. block0 + n - 1`` into ``out[:n]`` (NaN where rejected)."""
    nan = np.nan
    for j in range(n):
        w0, w1, w2, w3 = stream_words(k0, k1, sample, block0 + j, 0)
        t, ok = student_t_from_words(w0, w1, w2, w3, df, two_over_df)
        out[j] = t if ok else nan


@njit(inline="always", cache=True, error_model="numpy", fastmath=CONTRACT)
def _student_t_retries(k0, k1, sample, block0, n, df, two_over_df, idx, cand, out):
    """Replace the NaN (rejected) entries of ``out[:n]`` by their retries.

    Branch-free: the rejected indices are listed in ``idx`` (uint32 scratch of
    ``n``), the candidates of draw ``d = 1, 2, ...`` computed for them in a
    vectorised loop into ``cand`` (float64 scratch of ``n``) and written out
    (a rejected candidate is NaN, like the entry it replaces), and the list
    compacted to the still rejected ones.
    """
    nan = np.nan
    nrej = 0
    for j in range(n):  # the rejected indices, in order
        idx[nrej] = j
        nrej += 1 if out[j] != out[j] else 0
    for d in range(1, STUDENT_T_MAX_DRAWS):
        if nrej == 0:
            break
        for k in range(nrej):  # vectorised: the candidates of draw d
            w0, w1, w2, w3 = stream_words(k0, k1, sample, block0 + int64(idx[k]), d)
            t, ok = student_t_from_words(w0, w1, w2, w3, df, two_over_df)
            cand[k] = t if ok else nan
        left = 0
        for k in range(nrej):
            i = idx[k]
            c = cand[k]
            out[i] = c
            idx[left] = i
            left += 1 if c != c else 0
        nrej = left


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_student_t(k0, k1, sample, block0, nblocks, df, out):
    """Write the ``nblocks`` Student-t coordinates of blocks ``block0 ..`` into ``out``.

    First pass: the draw-0 candidate of every coordinate (a branch-free,
    vectorised loop; rejected ones marked NaN).  Then each rejected one
    (``1 - pi/4 = 21%``) is retried on draw ``d = 1, 2, ...``: coordinate
    ``j`` gets the candidate of its first accepting draw, NaN after
    ``STUDENT_T_MAX_DRAWS`` rejections.  The CPU kernels' tile fill
    (:func:`fill_student_t_tile`) retries through a compacted list of
    indices in a vectorised loop, with the same values.
    """
    two_over_df = 2.0 / df
    _student_t_first_draws(k0, k1, sample, block0, nblocks, df, two_over_df, out)
    # The retries one coordinate at a time: no scratch array, so that this compiles
    # for CUDA too (a device function cannot allocate).
    for j in range(nblocks):
        if out[j] != out[j]:
            for d in range(1, STUDENT_T_MAX_DRAWS):
                w0, w1, w2, w3 = stream_words(k0, k1, sample, block0 + j, d)
                t, ok = student_t_from_words(w0, w1, w2, w3, df, two_over_df)
                if ok:
                    out[j] = t
                    break


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_student_t_tile(k0, k1, sample, coord0, n, df, words, out):
    """The values of :func:`fill_student_t` for ``n`` coordinates from ``coord0`` into
    ``out[:n]``: the same first draws, then the rejected ones retried through a
    compacted index list (:func:`_student_t_retries`, its scratch taken from
    ``words``: uint32, at least ``4 n``), with the same values (tested)."""
    two_over_df = 2.0 / df
    _student_t_first_draws(k0, k1, sample, coord0, n, df, two_over_df, out)
    _student_t_retries(k0, k1, sample, coord0, n, df, two_over_df,
                       words[:n], words[2 * n:4 * n].view(np.float64), out)


# --- the model ----------------------------------------------------------------


@register_model
@dataclass(frozen=True)
class StudentT(GradientModel):
    """Student-t coordinates with ``df`` degrees of freedom (``scipy.stats.t(df)``).

    Tail ``P(|T| > x) ~ c x**-df``: moments of order below ``df`` are finite,
    the others infinite (``df = 1`` is the Cauchy law, ``df -> inf`` the
    normal law).

    Drawn by Bailey's polar method, exact: ``U, V ~ U(-1, 1)``,
    ``W = U**2 + V**2``; if ``W <= 1`` then
    ``T = U sqrt(df (W**(-2/df) - 1) / W)`` (``W**(-2/df) - 1`` evaluated as
    ``expm1(-(2/df) log W)``), otherwise the pair is rejected (probability
    ``1 - pi/4``) and the next pair is drawn.

    Stream: one coordinate per Philox call (``coords_per_block = 1``); ``U``
    from words ``(w0, w1)`` and ``V`` from ``(w2, w3)``, each a sign bit and 52
    bits of size, ``|U| = (m + 1/2) 2**-52``.  Retries of coordinate ``i`` use
    the draw index (:func:`lni_geometry.rng.stream_words`): attempt ``d`` uses
    draw ``d``, so every coordinate stays a pure function of (key, sample, i).
    At most ``STUDENT_T_MAX_DRAWS = 64`` attempts are made; all 64 fail with
    probability ``(1 - pi/4)**64 = 1.7e-43`` per coordinate (never, in
    practice), and such a coordinate would be NaN, not a silent value.

    Parameters
    ----------
    df : float
        Degrees of freedom, ``df > 0`` (finite).

    References
    ----------
    R. W. Bailey, "Polar generation of random variates with the
    t-distribution", Math. Comp. 62 (1994) 779-781.

    Examples
    --------
    >>> from lni_geometry.models import model_from_spec
    >>> StudentT(3).spec
    't:3.0'
    >>> model_from_spec("t:3") == StudentT(3.0)
    True
    """

    df: float

    spec_name: ClassVar[str] = "t"
    params: ClassVar[tuple] = ((Domain("df", "real", 0.0, math.inf, low_open=True, high_open=True), None),)
    fill: ClassVar[object] = fill_student_t
    coords_per_block: ClassVar[int] = 1

    def coordinate_bounds(self, big, small):
        """Bounds of ``P(T non-finite or |T| > big)`` and ``P(|T| < small)``.

        Big: the transform computes ``T = U sqrt(df (W**(-2/df) - 1)/W)``; it
        overflows only where ``df (W**(-2/df) - 1)/W > DBL_MAX``, and
        ``T**2 <= df (W**(-2/df) - 1)/W`` (as ``U**2 <= W``).  With
        ``big**2 <= DBL_MAX`` both events lie in ``{df W**(-1 - 2/df) > big**2}``
        ``= {W < (df/big**2)**(df/(df + 2))}``, and ``W`` (given acceptance) is
        uniform on ``(0, 1)``: the bound is ``(df/big**2)**(df/(df + 2))``,
        about ``big**-df`` for small ``df``, like the tail ``c big**-df`` itself.
        Small: ``P(|T| < t) <= 2 t f(0)``, ``f(0) = Gamma((df+1)/2)/(sqrt(df pi) Gamma(df/2))``.
        """
        df = self.df
        log_big = df / (df + 2.0) * (math.log(df) - 2.0 * math.log(big))
        log_f0 = math.lgamma((df + 1.0) / 2.0) - 0.5 * math.log(df * math.pi) - math.lgamma(df / 2.0)
        log_small = math.log(2.0 * small) + log_f0
        return math.exp(min(0.0, log_big)), math.exp(min(0.0, log_small))
