"""Gradient models: how the raw coordinates of a sample are drawn from the stream.

A model turns the Philox words of :mod:`lni_geometry.rng` into coordinates.  Each
model is a small immutable object (its parameters validated at construction)
whose class is registered in :data:`MODELS` by :func:`register_model` and
declares

- ``spec_name`` (``"stable"``) and ``params``: the parameters as declared
  domains (:class:`lni_geometry.validation.Domain`) with their defaults; from
  them the registry derives the validation, ``spec`` (``"stable:1.5"``),
  :func:`model_from_spec` and the help text (:func:`spec_help`);
- ``fill``: its coordinate function, a numba device function
  ``fill(k0, k1, sample, block0, nblocks, [p0, [p1,]] out)`` writing whole
  coordinate blocks; ``coords_per_block``: coordinates per Philox call;
- ``kernel_id`` (given by the registry, in registration order) and
  ``kernel_params``: what the compiled kernels dispatch on
  (:func:`fill_coords`, checked against the registry at import);
- ``coordinate_bounds``: the tail bounds behind ``sampling.range_risk``.

Models: :class:`Gaussian` (``"gaussian"``), :class:`SymmetricStable`
(``"stable:ALPHA"`` or ``"stable:ALPHA:SCALE"``) and :class:`StudentT`
(``"t:DF"``).  The steps to add one are in the README ("Adding a model").

The coordinate transforms are device functions, compiled for the CPU by
``numba.njit`` and reused unchanged by the CUDA kernels.  They use the
branch-free elementary functions of :mod:`lni_geometry.elementary` so that
their loops vectorise: Student-t the float64 ones (``expm1_finite``,
``log_positive``, tested against numpy to ``1e-13`` relative), the stable
model float32 pieces (``sin_half_turns32``, ``log_reduced32``,
``exp2_reduced32``, to ``2e-7``) on exactly reduced arguments (stream version
3, :func:`stable_pieces`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, float32, float64, int32, int64, uint32, uint64

from .elementary import (  # noqa: F401  (elementary: re-exported for the tests)
    _BIAS_F,
    _HALF_F,
    _ONE_F,
    _TWO_F,
    _TWO_M32_F,
    CONTRACT,
    and32,
    bits_f32,
    bits_f64,
    elementary,
    exp2_reduced32,
    expm1_finite,
    f32_bits,
    f64_bits,
    isub32,
    log_positive,
    log_reduced32,
    mantissa_split32,
    pow2_halves,
    round32,
    shr32,
    sin_half_turns32,
    sqrt_nonneg,
    sub32,
    xor32,
)
from .rng import MAX_NORMAL, box_muller, box_muller_pieces, stream_words
from .validation import ALPHA, SCALE, Domain

__all__ = [
    "MODELS",
    "Gaussian",
    "GradientModel",
    "StudentT",
    "SymmetricStable",
    "fill_coords",
    "fill_tile",
    "model_from_spec",
    "register_model",
    "spec_help",
]

#: Philox calls tried per Student-t coordinate before giving up (see StudentT).
STUDENT_T_MAX_DRAWS = 64
#: uint32 scratch per Gaussian block of :func:`fill_gaussian_tile`: four planes of
#: Philox words and six of float32 pieces.
GAUSSIAN_TILE_SCRATCH = 10
#: uint32 scratch per coordinate of :func:`fill_tile` (the stable fill's six planes:
#: four of Philox words, its mantissas and exponents); covers the Gaussian's
#: ``GAUSSIAN_TILE_SCRATCH * ceil(n/4)`` for ``n >= 4`` and Student-t's ``4 n``.
TILE_SCRATCH = 6
_DBL_MAX = float(np.finfo(np.float64).max)
_TWO_M53 = 2.0**-53
_LOW31 = np.uint64(0x7FFFFFFF)
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


@njit(inline="always", cache=True, error_model="numpy", fastmath=CONTRACT)
def gaussian_block(k0, k1, sample, block):
    """The four Gaussian coordinates of block ``block`` of sample ``sample``."""
    w0, w1, w2, w3 = stream_words(k0, k1, sample, block, 0)
    z0, z1 = box_muller(w0, w1)
    z2, z3 = box_muller(w2, w3)
    return z0, z1, z2, z3


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_gaussian(k0, k1, sample, block0, nblocks, out):
    """Write the ``4 * nblocks`` coordinates of blocks ``block0 ..`` into ``out``."""
    for j in range(nblocks):
        z0, z1, z2, z3 = gaussian_block(k0, k1, sample, block0 + j)
        out[4 * j] = z0
        out[4 * j + 1] = z1
        out[4 * j + 2] = z2
        out[4 * j + 3] = z3


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
def half_uniforms32(wa, wb):
    """``(a, 1/2 - a, sign)`` in float32 from the bits of :func:`signed_half_uniform`.

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
    ``3.8e-7 (1 + |power|)``, at alpha 0.05; a review found the same order
    against the float64 transform of stream version 2 down to ``alpha = 1e-4``).  For any alpha
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


# --- the registry -------------------------------------------------------------

#: The registered model classes by spec name, in kernel-id order.
MODELS = {}


def register_model(cls):
    """Class decorator: add a model class to :data:`MODELS` and give it its ``kernel_id``.

    The class declares ``spec_name``, ``params`` (a tuple of ``(Domain,
    default)`` pairs, ``default`` None for a required parameter; at most two,
    the kernels' ``p0, p1``), ``fill`` and ``coords_per_block``.  Its dispatch
    branch in :func:`fill_coords` is checked at import (numba compiles the
    dispatch statically, so the branch is one line written by hand).
    """
    name = cls.spec_name
    if not name or name in MODELS or any(name in c.aliases for c in MODELS.values()):
        raise ValueError(f"model spec name {name!r} is empty or already registered")
    if len(cls.params) > 2:
        raise ValueError(f"a model has at most 2 kernel parameters, {cls.__name__} declares {len(cls.params)}")
    cls.kernel_id = len(MODELS)
    MODELS[name] = cls
    return cls


class GradientModel:
    """Base class of gradient models (see the module docstring)."""

    spec_name: ClassVar[str] = ""
    aliases: ClassVar[tuple] = ()
    params: ClassVar[tuple] = ()
    fill: ClassVar[object] = None
    kernel_id: ClassVar[int] = -1
    coords_per_block: ClassVar[int] = 1

    def __post_init__(self):
        for domain, _ in self.params:
            object.__setattr__(self, domain.name, domain.check(getattr(self, domain.name)))

    @property
    def kernel_params(self) -> tuple[float, float]:
        """The parameters as the kernels' ``(p0, p1)`` (0.0 where a model has fewer)."""
        values = [float(getattr(self, d.name)) for d, _ in self.params]
        return tuple(values + [0.0] * (2 - len(values)))

    @property
    def spec(self) -> str:
        """The string form, read back by :func:`model_from_spec`; trailing defaults omitted."""
        values = [getattr(self, d.name) for d, _ in self.params]
        while values and self.params[len(values) - 1][1] is not None and values[-1] == self.params[len(values) - 1][1]:
            values.pop()
        return ":".join([self.spec_name] + [repr(v) for v in values])

    def coordinate_bounds(self, big, small):
        """Upper bounds of two probabilities for one coordinate ``g`` as drawn here.

        Returns ``(p_big, p_small)``: ``p_big >= P(g is inf or NaN, or |g| > big)``
        (counting overflow *inside* the transform, where the true value is finite)
        and ``p_small >= P(|g| < small)``.  They bound the chance that float64
        sums of ``g`` overflow or lose precision
        (:func:`lni_geometry.sampling.range_risk`); each model derives its own
        in its docstring.  The base class knows nothing: ``(1, 1)``.
        """
        return 1.0, 1.0


@register_model
@dataclass(frozen=True)
class Gaussian(GradientModel):
    """Isotropic Gaussian coordinates ``g_i ~ N(0, 1)`` iid.

    ``g/|g|`` is uniform on the sphere S^(dim-1), so the angles of a sample are
    those of a uniform point.  Four coordinates come from one Philox call, by
    two Box-Muller pairs (:func:`lni_geometry.rng.box_muller`):
    coordinate ``4b + j`` of a sample is normal ``j`` of block ``b``.

    Examples
    --------
    >>> Gaussian().spec
    'gaussian'
    """

    spec_name: ClassVar[str] = "gaussian"
    aliases: ClassVar[tuple] = ("normal",)
    fill: ClassVar[object] = fill_gaussian
    coords_per_block: ClassVar[int] = 4

    def coordinate_bounds(self, big, small):
        """``|g| <= 6.7637`` always (:func:`lni_geometry.rng.box_muller`), and the
        normal density is at most ``1/sqrt(2 pi)``: ``P(|g| < s) <= 2 s/sqrt(2 pi)``."""
        return (0.0 if big > MAX_NORMAL * (1 + 1e-12) else 1.0), min(1.0, 2.0 * small / math.sqrt(2.0 * math.pi))


@register_model
@dataclass(frozen=True)
class SymmetricStable(GradientModel):
    """Symmetric alpha-stable coordinates: ``E exp(i t X) = exp(-|scale t|**alpha)``.

    The law of ``scipy.stats.levy_stable(alpha, 0, scale=scale)``.  ``alpha = 2``
    is the normal law with variance ``2 scale**2``; ``alpha = 1`` is the Cauchy
    law with scale ``scale``.  For ``alpha < 2`` the tail is a power law,
    ``P(|X| > x) ~ C_alpha (x/scale)**-alpha`` with
    ``C_alpha = (2/pi) Gamma(alpha) sin(pi alpha / 2)``
    (:func:`lni_geometry.tails.stable_tail_constant`), and the variance is
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
        (:func:`lni_geometry.tails.stable_tail_probability`; ``erfc(x/2)`` at
        ``alpha = 2``).  Below ``x = 1000`` the series is not trusted and the
        bound is 1 (that needs ``scale`` near ``big/1000``, above ``1e139``).
        Small: the density is largest at 0, ``f(0) = Gamma(1 + 1/alpha)/pi``, so
        ``P(|X| < t) <= 2 t f(0)``.
        """
        from .tails import stable_tail_probability

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


# --- spec strings ---------------------------------------------------------------


def spec_help():
    """``"valid models: 'gaussian', 'stable:ALPHA', ..."``: every spec form of the registry."""
    forms = []
    for name, cls in MODELS.items():
        required = sum(1 for _, default in cls.params if default is None)
        for k in range(required, len(cls.params) + 1):
            forms.append(":".join([name] + [d.name.upper() for d, _ in cls.params[:k]]))
    return "valid models: " + ", ".join(repr(f) for f in forms)


def _spec_number(text, spec):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"malformed model string {spec!r}: {text!r} is not a number; {spec_help()}") from None


def model_from_spec(spec):
    """A model from its string form.

    ``"gaussian"`` (or ``"normal"``) -> :class:`Gaussian`;
    ``"stable:ALPHA"`` and ``"stable:ALPHA:SCALE"`` -> :class:`SymmetricStable`;
    ``"t:DF"`` -> :class:`StudentT`; in general ``"NAME:P0:P1"`` for any
    registered model (:data:`MODELS`), trailing parameters with defaults
    optional.  ``model_from_spec(m.spec) == m`` for every model ``m``.

    Raises
    ------
    ValueError
        For an unknown or malformed model string, or parameters out of range.

    Examples
    --------
    >>> model_from_spec("stable:0.8")
    SymmetricStable(alpha=0.8, scale=1.0)
    >>> model_from_spec("t:2.5")
    StudentT(df=2.5)
    """
    if isinstance(spec, GradientModel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"model must be a GradientModel or a model string, got {type(spec).__name__}")
    parts = [p.strip() for p in spec.strip().lower().split(":")]
    name, values = parts[0], parts[1:]
    cls = MODELS.get(name) or next((c for c in MODELS.values() if name in c.aliases), None)
    if cls is not None:
        required = sum(1 for _, default in cls.params if default is None)
        if required <= len(values) <= len(cls.params):
            return cls(*(_spec_number(v, spec) for v in values))
    raise ValueError(f"unknown model {spec!r}; {spec_help()}")


# --- dispatch -------------------------------------------------------------------

GAUSSIAN_ID = Gaussian.kernel_id
STABLE_ID = SymmetricStable.kernel_id
STUDENT_T_ID = StudentT.kernel_id
#: The fill of each kernel id, as :func:`fill_coords` calls it (checked against the registry).
DISPATCH = {GAUSSIAN_ID: fill_gaussian, STABLE_ID: fill_stable, STUDENT_T_ID: fill_student_t}
if DISPATCH != {cls.kernel_id: cls.fill for cls in MODELS.values()}:  # pragma: no cover - a developer slip
    raise ImportError("lni_geometry.models: the registry and the dispatch of fill_coords disagree; "
                      "add the new model's branch to fill_coords and DISPATCH")


@njit(cache=True, error_model="numpy")
def fill_coords(model_id, p0, p1, k0, k1, sample, coord0, ncoords, out):
    """Write coordinates ``coord0 .. coord0 + ncoords - 1`` of a sample into ``out``.

    ``coord0`` must be a multiple of the model's ``coords_per_block``; whole
    blocks are written, so ``out`` must hold ``ncoords`` rounded up to a block.
    ``(p0, p1)`` are the model's ``kernel_params``.  One branch per
    registered model (numba compiles the dispatch statically).
    """
    if model_id == GAUSSIAN_ID:
        fill_gaussian(k0, k1, sample, coord0 // 4, (ncoords + 3) // 4, out)
    elif model_id == STABLE_ID:
        fill_stable(k0, k1, sample, coord0, ncoords, p0, p1, out)
    elif model_id == STUDENT_T_ID:
        fill_student_t(k0, k1, sample, coord0, ncoords, p0, out)


# --- tile order of the CPU kernels ---------------------------------------------


@njit(inline="always", cache=True, error_model="numpy")
def philox_planes(k0, k1, sample, block0, nb, draw, words):
    """The Philox words of blocks ``block0 .. block0 + nb - 1`` in four planes.

    Word ``i`` of block ``block0 + j`` goes to ``words[i * nb + j]``: one loop of
    integer arithmetic that the compiler vectorises on its own, so that the
    transforms after it read contiguous words (planar tile fills).
    """
    for j in range(nb):
        w0, w1, w2, w3 = stream_words(k0, k1, sample, block0 + j, draw)
        words[j] = w0
        words[nb + j] = w1
        words[2 * nb + j] = w2
        words[3 * nb + j] = w3


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def fill_gaussian_tile(k0, k1, sample, coord0, n, words, out):
    """The ``n`` Gaussian coordinates from ``coord0`` (a multiple of 4), in tile order.

    Tile order: with ``B = n // 4`` whole blocks, coordinate ``coord0 + 4b + k``
    goes to ``out[k * B + b]`` (four planes, so the vectorised loop stores
    contiguously); the ``n mod 4`` coordinates of a last partial block follow
    at ``out[4B + k]``.  Values are those of :func:`gaussian_block` (the same
    operations in the same order: tested bit for bit).

    Three vectorised passes over planes of ``words`` (uint32 scratch of at
    least ``GAUSSIAN_TILE_SCRATCH * ceil(n/4)`` entries, which
    ``TILE_SCRATCH * max(n, 4)`` covers): the Philox words into four
    planes; the float32 pieces of Box-Muller (``r``, ``cos t``, ``sin t`` of
    both pairs) into six planes, a loop of 32-bit lanes only, so that it runs
    16 lanes wide on AVX-512 (in one loop with the float64 products the
    compiler took 8; on Zen 4 the two loops run at 0.96x to 1.12x the speed
    of one, median 1.08x, timed in one process); then the exact float64
    products ``r cos t``, ``r sin t``.
    """
    block0 = coord0 // 4
    nb = n // 4
    nw = (n + 3) // 4
    if words.shape[0] < GAUSSIAN_TILE_SCRATCH * nw:
        raise ValueError("fill_gaussian_tile: words holds fewer than 10 * ceil(n/4) entries")
    philox_planes(k0, k1, sample, block0, nw, 0, words)
    # planes as views, so that the loops' loads and stores are contiguous
    # vectors (indices nw + j would be gathers: numba's negative-index check)
    wa = words[:nw]
    wb = words[nw:2 * nw]
    wc = words[2 * nw:3 * nw]
    wd = words[3 * nw:4 * nw]
    # the float32 pieces, kept as their bits in the same scratch
    ra = words[4 * nw:5 * nw]
    ca = words[5 * nw:6 * nw]
    sa = words[6 * nw:7 * nw]
    rc = words[7 * nw:8 * nw]
    cc = words[8 * nw:9 * nw]
    sc = words[9 * nw:10 * nw]
    for j in range(nw):
        r, c, s = box_muller_pieces(wa[j], wb[j])
        ra[j] = f32_bits(r)
        ca[j] = f32_bits(c)
        sa[j] = f32_bits(s)
        r, c, s = box_muller_pieces(wc[j], wd[j])
        rc[j] = f32_bits(r)
        cc[j] = f32_bits(c)
        sc[j] = f32_bits(s)
    o0 = out[:nb]
    o1 = out[nb:2 * nb]
    o2 = out[2 * nb:3 * nb]
    o3 = out[3 * nb:4 * nb]
    for j in range(nb):
        r = float64(bits_f32(ra[j]))
        o0[j] = r * float64(bits_f32(ca[j]))
        o1[j] = r * float64(bits_f32(sa[j]))
        r = float64(bits_f32(rc[j]))
        o2[j] = r * float64(bits_f32(cc[j]))
        o3[j] = r * float64(bits_f32(sc[j]))
    rest = n - 4 * nb
    if rest > 0:
        r = float64(bits_f32(ra[nb]))
        out[4 * nb] = r * float64(bits_f32(ca[nb]))
        if rest > 1:
            out[4 * nb + 1] = r * float64(bits_f32(sa[nb]))
        if rest > 2:
            out[4 * nb + 2] = float64(bits_f32(rc[nb])) * float64(bits_f32(cc[nb]))


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


@njit(inline="always", cache=True, error_model="numpy")
def fill_tile(model_id, p0, p1, k0, k1, sample, coord0, n, words, out):
    """Coordinates ``coord0 .. coord0 + n - 1`` of a sample into ``out[:n]``, in tile order.

    ``words`` is uint32 scratch of at least ``TILE_SCRATCH * max(n, 4)``
    entries (``TILE_SCRATCH * TILE`` for every ``n <= TILE``).  The order inside
    a tile is fixed per model (it only fixes the order of the additions); the
    Gaussian model uses :func:`fill_gaussian_tile` (tile order), the stable
    and Student-t models :func:`fill_stable_tile` and
    :func:`fill_student_t_tile` (natural order, the values of
    :func:`fill_coords`: tested bit for bit).
    """
    if model_id == GAUSSIAN_ID:
        fill_gaussian_tile(k0, k1, sample, coord0, n, words, out)
    elif model_id == STABLE_ID:
        fill_stable_tile(k0, k1, sample, coord0, n, p0, p1, words, out)
    elif model_id == STUDENT_T_ID:
        fill_student_t_tile(k0, k1, sample, coord0, n, p0, words, out)
    else:
        fill_coords(model_id, p0, p1, k0, k1, sample, coord0, n, out)
