"""The symmetric alpha-stable model: the Chambers-Mallows-Stuck transform in float32 lanes.

:class:`SymmetricStable` (spec ``"stable:ALPHA"`` or ``"stable:ALPHA:SCALE"``),
its transform (:func:`stable_pieces` on the uniforms of
:func:`half_uniforms32`, scaled by :func:`scale_pow2`; stream version 3) and
its fills: :func:`fill_stable` for the kernels' dispatch, the planar tile
fill :func:`fill_stable_tile` of the CPU kernels and :func:`fill_stable_words`
(the transform of given words, for testing).  Its range bounds take the
tail law of :mod:`lni_geometry.stable_law`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import float32, float64, int32, int64, njit, uint32

from ..elementary import (
    _BIAS_F,
    _HALF_F,
    _ONE_F,
    _TWO_F,
    _TWO_M32_F,
    CONTRACT,
    and32,
    bits_f32,
    bits_f64,
    exp2_reduced32,
    f32_bits,
    f64_bits,
    isub32,
    log_reduced32,
    mantissa_split32,
    pow2_halves,
    round32,
    shr32,
    sin_half_turns32,
    sub32,
    xor32,
)
from ..rng import stream_words
from ..stable_law import stable_tail_probability
from ..validation import ALPHA, SCALE
from .registry import GradientModel, register_model
from .tiles import TILE_SCRATCH, philox_planes

__all__ = [
    "SymmetricStable",
    "fill_stable",
    "fill_stable_tile",
    "fill_stable_words",
    "half_uniforms32",
    "scale_pow2",
    "stable_constants",
    "stable_pieces",
]

_DBL_MAX = float(np.finfo(np.float64).max)
# float32 pieces of the stable transform (stream version 3)
_LOW31_32 = np.uint32(0x7FFFFFFF)
_LOW21_32 = np.uint32(0x1FFFFF)
_SIGN32 = np.uint32(0x80000000)
_TOP12 = np.uint64(0xFFFFFE0000000000)  # sign, exponent and 11 fraction bits: 12 significant bits
_TWO_M53_F = np.float32(2.0**-53)
_ZERO_F = np.float32(0.0)
_MINUS_ONE_F = np.float32(-1.0)
_ONE_MINUS_SQRT_HALF_F = np.float32(1.0 - math.sqrt(0.5))
_INV_LN2_F = np.float32(1.0 / math.log(2.0))
# |exponent parts| clamped here (round32 needs |x| < 2**22): 2**(+-2**20) is inf or 0 for any
# float32 mantissa, and a clamped head (|power k2| > 2**21, k2 != 0) outweighs a clamped rest,
# so the sign of the exponent stays that of the exact one
_HEAD_LIMIT_F = np.float32(2.0**21)
_REST_LIMIT_F = np.float32(2.0**20)
_POWER_MAX = 2.0**30

# --- device functions -------------------------------------------------------


@njit(inline="always", cache=True, error_model="numpy")
def half_uniforms32(wa, wb):
    """``(a, 1/2 - a, sign)`` in float32 from the bits of
    :func:`lni_geometry.models.student_t.signed_half_uniform`.

    ``a = (m + 1/2) 2**-53`` with the 52 bits ``m`` below the top bit of ``wa``
    (31 bits of ``wa``, the top 21 of ``wb``), and ``1/2 - a`` from the
    complemented bits, ``(~m + 1/2) 2**-53``: both carry float32's relative
    precision however close ``a`` is to 0 or to 1/2 (``>= 2**-54``; each
    within ``1.2e-7`` relative of the exact value).  ``sign`` is the top bit
    of ``wa`` (a uint32 mask).
    """
    hi = and32(wa, _LOW31_32)
    lo = shr32(wb, uint32(11))
    a = float32(int32(hi)) * _TWO_M32_F + (float32(int32(lo)) + _HALF_F) * _TWO_M53_F
    b = (float32(int32(sub32(_LOW31_32, hi))) * _TWO_M32_F
         + (float32(int32(sub32(_LOW21_32, lo))) + _HALF_F) * _TWO_M53_F)
    return a, b, and32(wa, _SIGN32)


@njit(inline="always", cache=True, error_model="numpy")
def stable_constants(alpha):
    """The float32 constants of :func:`stable_pieces` for ``alpha`` (computed in float64, then split).

    ``alpha`` and ``|1 - alpha|`` as float32 head and tail (so that the law
    is that of ``alpha`` itself, not of its float32 rounding);
    ``1 - alpha/2`` and ``(1 - |1 - alpha|)/2 = min(alpha, 2 - alpha)/2`` (exact); ``power = (1 - alpha)/alpha``
    and its head with 12 significant bits (its products with exponents
    ``|k| < 2**8`` exact in float32) and tail.
    """
    c1 = abs(1.0 - alpha)
    power = min((1.0 - alpha) / alpha, _POWER_MAX)  # finite for every alpha > 0
    head = bits_f64(f64_bits(power) & _TOP12)
    return (float32(alpha), float32(alpha - float64(float32(alpha))), float32(1.0 - 0.5 * alpha),
            float32(c1), float32(c1 - float64(float32(c1))), float32(0.5 * min(alpha, 2.0 - alpha)),
            float32(head), float32(power - head), float32(power))


@njit(inline="always", cache=True, error_model="numpy")
def stable_pieces(w0, w1, w2, w3, constants):
    """One standard symmetric alpha-stable draw as ``(mantissa, k)``: ``X = mantissa 2**k``.

    Chambers-Mallows-Stuck (:class:`SymmetricStable`) in float32 lanes
    (stream version 3), with every difference that could cancel taken
    exactly: ``|V| = pi a`` and ``pi/2 - |V| = pi b`` from
    :func:`half_uniforms32`; ``cos V = sin(pi b)``, ``sin(alpha |V|) = sin(pi y1)``
    with ``y1 = min(alpha a, (1 - alpha/2) + alpha b)``,
    ``cos((1 - alpha) V) = sin(pi y2)`` with ``y2 = (1 - |1 - alpha|)/2 + |1 - alpha| b``
    (sums of non-negative terms); ``W = -log U`` with ``U = p`` or
    ``1 - p = 1 + (-p)`` (``p < 1 - sqrt(1/2)``) or ``(1 + 2 (1/2 - p))/2``;
    then with ``q = 1/(W cos V)``

    ``X = sign sin(alpha |V|) W q 2**(power log2(cos((1 - alpha) V) q))``,

    the power of two split into an integer ``k`` (exact: ``power``'s head
    times the exponent of ``cos((1 - alpha) V) q``, rounded) and a remainder
    ``|r| <= 1/2`` taken by :func:`lni_geometry.elementary.exp2_reduced32`.
    Every float32 quantity is a magnitude within float32's range, so each
    step keeps float32's relative precision; ``2**k`` is applied in float64 by
    :func:`scale_pow2`.  Relative error against the exact transform of the
    same words below ``1e-6 (1 + |power|)`` for ``alpha >= 0.05`` (tested
    against numpy in float64, extreme words included: at most
    ``3.8e-7 (1 + |power|)``, at alpha 0.05; the same order holds against the
    float64 transform of stream version 2 down to ``alpha = 1e-4``).  For any alpha
    the draws are ``inf`` or 0 wherever the exact value is beyond float64's
    range (tested down to ``alpha = 1e-9``), never NaN; below
    ``alpha = 1e-9`` ``power`` is capped at ``2**30`` (the law is then not
    that of alpha), and below float32's range (``alpha < 1e-38``) every draw
    is 0.
    """
    al_hi, al_lo, t0, c1_hi, c1_lo, c0, p_hi, p_lo, power = constants
    a, b, sign = half_uniforms32(w0, w1)
    p, pc, u_is_p = half_uniforms32(w2, w3)
    # W = -log U: U = p (top bit of w2 set), else 1 - p
    kb, m = mantissa_split32(p)
    near = p < _ONE_MINUS_SQRT_HALF_F
    dk = float32(isub32(kb, _BIAS_F)) if u_is_p != uint32(0) else (_ZERO_F if near else _MINUS_ONE_F)
    f = m - _ONE_F if u_is_p != uint32(0) else (-p if near else _TWO_F * pc)
    w = -log_reduced32(dk, f)
    cos_v = sin_half_turns32(b)
    sin_av = sin_half_turns32(min(al_hi * a + al_lo * a, t0 + (al_hi * b + al_lo * b)))
    cos_1mav = sin_half_turns32(c0 + (c1_hi * b + c1_lo * b))
    q = _ONE_F / (w * cos_v)
    # log(cos((1 - alpha) V) q) = k2 log 2 + log(1 + f2)
    kb2, m2 = mantissa_split32(cos_1mav * q)
    k2 = float32(isub32(kb2, _BIAS_F))
    head = min(max(p_hi * k2, -_HEAD_LIMIT_F), _HEAD_LIMIT_F)  # exact (when not clamped)
    k_head = round32(head)
    rest = (head - k_head) + (p_lo * k2 + power * log_reduced32(_ZERO_F, m2 - _ONE_F) * _INV_LN2_F)
    rest = min(max(rest, -_REST_LIMIT_F), _REST_LIMIT_F)
    k_rest = round32(rest)
    mantissa = (sin_av * w * q) * exp2_reduced32(rest - k_rest)
    return bits_f32(xor32(f32_bits(mantissa), sign)), int32(k_head) + int32(k_rest)


@njit(inline="always", cache=True, error_model="numpy")
def scale_pow2(mantissa, k):
    """``mantissa 2**k`` in float64, rounded once: ``inf`` or 0 only where the exact value overflows or underflows.

    ``k`` is clamped to ``[-2044, 2046]`` (beyond, any float32 ``mantissa``
    gives inf or 0 anyway) and applied as two powers of two.
    """
    a, b = pow2_halves(int64(min(max(k, int32(-2044)), int32(2046))))
    return (float64(mantissa) * a) * b


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_stable(k0, k1, sample, block0, nblocks, alpha, scale, out):
    """Write the ``nblocks`` stable coordinates of blocks ``block0 ..`` into ``out``."""
    constants = stable_constants(alpha)
    for j in range(nblocks):
        w0, w1, w2, w3 = stream_words(k0, k1, sample, block0 + j, 0)
        mantissa, k = stable_pieces(w0, w1, w2, w3, constants)
        out[j] = scale * scale_pow2(mantissa, k)


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_stable_tile(k0, k1, sample, coord0, n, alpha, scale, words, out):
    """The ``n`` stable coordinates from ``coord0`` into ``out[:n]`` (natural order).

    Planar, in three vectorised passes over ``words`` (uint32 scratch of at
    least ``TILE_SCRATCH * n``): the Philox words of the ``n`` blocks into
    four planes; :func:`stable_pieces` into two more (the float32 mantissa's
    bits and the exponent), a loop of 32-bit lanes only, so that it runs 16
    lanes wide on AVX-512; then :func:`scale_pow2` in float64.  The values of
    :func:`fill_stable` (the same operations: tested bit for bit).
    """
    if words.shape[0] < TILE_SCRATCH * n:
        raise ValueError("fill_stable_tile: words holds fewer than 6 n entries")
    philox_planes(k0, k1, sample, coord0, n, 0, words)
    _stable_of_planes(words[:n], words[n:2 * n], words[2 * n:3 * n], words[3 * n:4 * n], alpha, scale,
                      words[4 * n:5 * n], words[5 * n:6 * n], out[:n])


@njit(inline="always", cache=True, error_model="numpy")
def _stable_of_planes(wa, wb, wc, wd, alpha, scale, mantissas, exponents, out):
    """``out[j] = scale X(wa[j], wb[j], wc[j], wd[j])`` in two loops (32-bit lanes, then float64)."""
    constants = stable_constants(alpha)
    for j in range(out.shape[0]):
        mantissa, k = stable_pieces(wa[j], wb[j], wc[j], wd[j], constants)
        mantissas[j] = f32_bits(mantissa)
        exponents[j] = uint32(k)
    for j in range(out.shape[0]):
        out[j] = scale * scale_pow2(bits_f32(mantissas[j]), int32(exponents[j]))


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_stable_words(wa, wb, wc, wd, alpha, out):
    """Standard stable draws (scale 1) of given word planes: the transform without the stream.

    ``out[j]`` is the draw of the words ``(wa[j], wb[j], wc[j], wd[j])``, as in
    :func:`fill_stable` (for testing the transform on chosen words, extremes
    included).
    """
    n = out.shape[0]
    scratch = np.empty(2 * n, np.uint32)
    _stable_of_planes(wa, wb, wc, wd, alpha, 1.0, scratch[:n], scratch[n:], out)


# --- the model ----------------------------------------------------------------


@register_model
@dataclass(frozen=True)
class SymmetricStable(GradientModel):
    """Symmetric alpha-stable coordinates: ``E exp(i t X) = exp(-|scale t|**alpha)``.

    The law of ``scipy.stats.levy_stable(alpha, 0, scale=scale)``.  ``alpha = 2``
    is the normal law with variance ``2 scale**2``; ``alpha = 1`` is the Cauchy
    law with scale ``scale``.  For ``alpha < 2`` the tail is a power law,
    ``P(|X| > x) ~ C_alpha (x/scale)**-alpha`` with
    ``C_alpha = (2/pi) Gamma(alpha) sin(pi alpha / 2)``
    (:func:`lni_geometry.stable_law.stable_tail_constant`), and the variance is
    infinite.

    Drawn by the Chambers-Mallows-Stuck transform: with ``V ~ U(-pi/2, pi/2)``
    and ``W ~ Exp(1)`` independent,

    ``X = scale * sin(alpha V) / cos(V)**(1/alpha) * (cos((1 - alpha) V) / W)**((1 - alpha)/alpha)``

    evaluated as ``sin(alpha V) W q 2**(p log2(cos((1 - alpha) V) q))`` with
    ``q = 1/(W cos V)`` and ``p = (1 - alpha)/alpha`` (two logarithms per
    draw, counting ``W = -log U``), which reduces to ``X = tan V`` at
    ``alpha = 1`` and ``X = 2 sqrt(W) sin V`` at ``alpha = 2`` without a
    special case.  Since stream version 3 in float32 lanes, every difference
    that could cancel taken exactly and the power of two split into an
    integer exponent applied in float64 (:func:`stable_pieces`,
    :func:`scale_pow2`): for ``alpha >= 0.05`` each draw is within
    ``1e-6 (1 + |p|)`` relative of the exact transform of its words (tested
    against numpy in float64 on a million words and the extreme ones;
    measured at most 0.38 of that bound for alpha from 0.05 to 2), a float32
    significand (24 bits) times a power of two, and ``inf`` only where the
    exact value exceeds float64's range (see :func:`stable_pieces` for
    smaller alpha).
    The fill is compiled with fused multiply-adds allowed
    (``fastmath={"contract"}``, nothing else), as GPUs compile it.

    Stream: one coordinate per Philox call (``coords_per_block = 1``).  Words
    ``(w0, w1)`` give ``V``: the top bit of ``w0`` its sign, the next 52 bits
    ``m`` its size ``|V| = pi (m + 1/2) 2**-53``; words ``(w2, w3)`` give
    ``U = 1 - e**-W`` the same way, ``p = (m' + 1/2) 2**-53`` and
    ``U = p`` or ``1 - p`` by the top bit of ``w2``.  Both uniforms carry 53
    bits, and ``pi/2 - |V|``, ``|V|``, ``p`` and ``1 - p`` are formed from
    their bits without cancellation (``W = -log1p(-p)`` for ``U`` near 1), so
    the extreme draws keep their relative precision: the tail is the
    formula's right down to probabilities near ``1e-16``.

    Parameters
    ----------
    alpha : float
        Stability index, ``0 < alpha <= 2``.
    scale : float, default 1.0
        Scale ``> 0``.

    Notes
    -----
    For ``alpha`` below about 0.1 single coordinates can exceed ``1e154``, so
    that their square (and the sum ``l2sq``) overflows to ``inf``: the largest
    of ``N`` draws is about ``N**(1/alpha)``.  :func:`lni_geometry.sample_angles`
    refuses such sizes before sampling (:func:`lni_geometry.sampling.range_risk`).

    References
    ----------
    J. M. Chambers, C. L. Mallows, B. W. Stuck, "A method for simulating stable
    random variables", J. Amer. Statist. Assoc. 71 (1976) 340-344.
    R. Weron, "On the Chambers-Mallows-Stuck method for simulating skewed
    stable random variables", Statist. Probab. Lett. 28 (1996) 165-171.

    Examples
    --------
    >>> from lni_geometry.models import model_from_spec
    >>> m = SymmetricStable(1.5)
    >>> m.spec
    'stable:1.5'
    >>> model_from_spec("stable:1.5:2.0") == SymmetricStable(1.5, scale=2.0)
    True
    """

    alpha: float
    scale: float = 1.0

    spec_name: ClassVar[str] = "stable"
    params: ClassVar[tuple] = (
        (ALPHA, None),
        (SCALE, 1.0),
    )
    fill: ClassVar[object] = fill_stable
    coords_per_block: ClassVar[int] = 1

    def coordinate_bounds(self, big, small):
        """Bounds of ``P(g non-finite or |g| > big)`` and ``P(|g| < small)``, ``g = scale X``.

        Big: the transform returns ``inf`` only where the exact ``|X|``
        exceeds ``DBL_MAX`` to within its relative error (below ``2e-5`` for
        alpha >= 0.05; stream version 2, in float64, overflowed already
        above ``alpha 2**-53 DBL_MAX``); the event is bounded by
        ``|X| > x`` with ``x = min(big/scale, alpha 2**-54 DBL_MAX)`` (the
        threshold of version 2: a larger event, so still a bound), whose
        probability is the Bergstrom tail series plus its first omitted term
        (:func:`lni_geometry.stable_law.stable_tail_probability`; ``erfc(x/2)`` at
        ``alpha = 2``).  Below ``x = 1000`` the series is not trusted and the
        bound is 1 (that needs ``scale`` near ``big/1000``, above ``1e139``).
        Small: the density is largest at 0, ``f(0) = Gamma(1 + 1/alpha)/pi``, so
        ``P(|X| < t) <= 2 t f(0)``.
        """
        x = min(big / self.scale, self.alpha * 2.0**-54 * _DBL_MAX)
        if x < 1e3:
            p_big = 1.0
        elif self.alpha == 2.0:
            p_big = math.erfc(x / 2.0)
        else:
            p, err = stable_tail_probability(x, self.alpha, return_error=True)
            p_big = min(1.0, float(p) + float(err))
        log_small = math.log(2.0) + math.log(small) - math.log(self.scale) + math.lgamma(1.0 + 1.0 / self.alpha) - math.log(math.pi)
        return p_big, math.exp(min(0.0, log_small))
