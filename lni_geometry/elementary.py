"""Branch-free elementary functions of the hot loops: log, expm1, 2**r, sin and cos in turns.

One home for the float64 and float32 functions that the coordinate transforms of
:mod:`lni_geometry.rng` (Box-Muller) and :mod:`lni_geometry.models` (stable,
Student-t) call millions of times per second.  They are numba device functions
(``inline="always"``), compiled for the CPU by ``numba.njit`` and unchanged for
CUDA, written without data-dependent branches so that numba vectorises the
loops that call them.  Each is tested against numpy (``tests/test_rng.py``,
``tests/test_models_heavy.py`` through :func:`elementary`).

- :func:`log_positive`: ``log x`` of a positive normal float64 (fdlibm e_log.c);
- :func:`neg2_log_word32`, :func:`cos_sin_turn32`: Box-Muller's ``-2 log u`` and
  ``(cos t, sin t)`` of a 32-bit word in float32 lanes (stream version 2);
- float32 pieces of the stable transform (stream version 3), each keeping
  float32's relative precision on its reduced range: :func:`mantissa_split32`
  and :func:`log_reduced32` (``k log 2 + log(1 + f)``, fdlibm's ``logf``, also
  Box-Muller's), :func:`sin_half_turns32` (``sin(pi y)``, ``y <= 1/2``),
  :func:`exp2_reduced32` (``2**r``, ``|r| <= 1/2``), :func:`round32`;
- :func:`expm1_finite`: ``exp - 1`` (Cody-Waite; Student-t);
- :func:`sqrt_nonneg`, :func:`f64_bits`, :func:`bits_f64`: the LLVM square root
  and bit casts they are built from;
- :func:`fma`: ``a * b + c`` rounded once (LLVM ``fma``), in float32 or float64:
  what torch's ``add(x, alpha=)`` computes on FMA-capable CPUs, so that the fused
  Lion kernel of :mod:`lni_geometry.optim_kernels` reproduces it bit for bit.

The constants of the split of ``log 2`` (``_LN2_HI``, ``_LN2_LO``) are defined here
once.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import float32, float64, int32, int64, njit, types, uint32, uint64
from numba.extending import intrinsic

__all__ = [
    "CONTRACT",
    "bits_f32",
    "bits_f64",
    "cos_sin_turn32",
    "elementary",
    "exp2_reduced32",
    "expm1_finite",
    "fma",
    "f32_bits",
    "f64_bits",
    "log_positive",
    "log_reduced32",
    "mantissa_split32",
    "neg2_log_word32",
    "pow2_halves",
    "round32",
    "sin_half_turns32",
    "sqrt_nonneg",
]

_LN2_HI = 6.93147180369123816490e-01  # fdlibm split of log(2): k * _LN2_HI exact for |k| < 2**11
_LN2_LO = 1.90821492927058770002e-10

# --- bit casts (LLVM bitcast; valid on the CPU and CUDA targets) ------------


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM ``llvm.fma``); three float32 or three float64."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        name = "llvm.fma.f32" if signature.return_type.bitwidth == 32 else "llvm.fma.f64"
        fn = builder.module.declare_intrinsic(name, fnty=ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, list(args))

    return sig, codegen



@intrinsic
def f64_bits(typingctx, x):
    """Reinterpret a float64 as uint64."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@intrinsic
def bits_f64(typingctx, x):
    """Reinterpret a uint64 as float64."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


@intrinsic
def f32_bits(typingctx, x):
    """Reinterpret a float32 as uint32."""
    if not isinstance(x, types.Float) or x.bitwidth != 32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, x):
    """Reinterpret the low 32 bits of an integer as float32."""
    if not isinstance(x, types.Integer) or x.bitwidth < 32:
        return None
    wide = x.bitwidth > 32

    def codegen(context, builder, signature, args):
        v = builder.trunc(args[0], ir.IntType(32)) if wide else args[0]
        return builder.bitcast(v, ir.FloatType())

    return types.float32(x), codegen


@intrinsic
def sqrt_nonneg(typingctx, x):
    """IEEE square root of a float64 (or float32) as the ``llvm.sqrt`` intrinsic.

    Unlike ``math.sqrt`` (a libm call that may set errno) the intrinsic lets the
    compiler vectorise loops; the result is the same correctly rounded value.
    """
    if not isinstance(x, types.Float) or x.bitwidth not in (32, 64):
        return None
    lltype = ir.DoubleType() if x.bitwidth == 64 else ir.FloatType()

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [lltype])
        return builder.call(fn, [args[0]])

    return x(x), codegen


# --- 32-bit integer arithmetic (numba promotes uint32 op uint32 to 64 bits) ---
# The float32 transforms below compute their range reductions in 32-bit lanes;
# numba's typing widens every integer operation to 64 bits, which LLVM then
# keeps in 64-bit vector lanes (half as many per register, ``vpmovzxdq`` and
# ``vcvtqq2ps`` in the assembly).  These intrinsics emit the 32-bit operation
# itself: the same values (the inputs and results fit in 32 bits), 16 lanes
# per AVX-512 register.


def _int32_binop(name, signed):
    def decorator(fn):
        @intrinsic
        def op(typingctx, a, b):
            if not (isinstance(a, types.Integer) and isinstance(b, types.Integer)):
                return None
            res = types.int32 if signed else types.uint32

            def codegen(context, builder, signature, args):
                x = context.cast(builder, args[0], signature.args[0], res)
                y = context.cast(builder, args[1], signature.args[1], res)
                return getattr(builder, name)(x, y)

            return res(a, b), codegen

        op.__doc__ = fn.__doc__
        op.__name__ = fn.__name__
        return op

    return decorator


@_int32_binop("and_", False)
def and32(a, b):
    """``a & b`` as uint32 (32-bit lanes)."""


@_int32_binop("or_", False)
def or32(a, b):
    """``a | b`` as uint32."""


@_int32_binop("xor", False)
def xor32(a, b):
    """``a ^ b`` as uint32."""


@_int32_binop("lshr", False)
def shr32(a, b):
    """``a >> b`` (logical) as uint32, ``b < 32``."""


@_int32_binop("shl", False)
def shl32(a, b):
    """``(a << b) mod 2**32`` as uint32, ``b < 32``."""


@_int32_binop("add", False)
def add32(a, b):
    """``(a + b) mod 2**32`` as uint32."""


@_int32_binop("sub", False)
def sub32(a, b):
    """``(a - b) mod 2**32`` as uint32."""


@_int32_binop("sub", True)
def isub32(a, b):
    """``a - b`` as int32 (no overflow in its uses)."""


# --- log (fdlibm; float64: Student-t) ------------------------------------------

_SQRT2 = 1.4142135623730951
_EXP_MASK = np.uint64(0x7FF0000000000000)
_MANT_MASK = np.uint64(0x000FFFFFFFFFFFFF)
_ONE_BITS = np.uint64(0x3FF0000000000000)


# Minimax coefficients of fdlibm (Sun Microsystems, 1993: e_log.c), accurate to
# about 2**-58 on the reduced range.
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01


@njit(inline="always", cache=True, error_model="numpy")
def log_positive(x):
    """Natural log of a positive normal float64, branch-free.

    ``x = (1 + f) 2**k`` with ``1 + f`` in ``[sqrt(1/2), sqrt(2))``;
    ``log(1 + f) = 2 atanh(s) = f - s (f - R(s**2))``, ``s = f / (2 + f)``, with
    fdlibm's minimax ``R`` (e_log.c).  Relative error below ``2e-16`` in tests.
    """
    bits = f64_bits(x)
    k = int64((bits & _EXP_MASK) >> uint64(52)) - 1023
    m = bits_f64((bits & _MANT_MASK) | _ONE_BITS)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    k = k + 1 if big else k
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    dk = float64(k)
    return dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)




# --- float32 pieces: Box-Muller (stream version 2), the stable transform (3) ------
# Both functions take a raw 32-bit word and work in float32 lanes (16 per AVX-512
# register, 8 per AVX2 one), with the range reductions done exactly in integer
# arithmetic, so that every result carries float32's *relative* precision: no
# absolute error floor near u = 1 (small radii) or near the axes (small sines).
# Polynomials: truncated Taylor series whose truncation error is below 2e-9
# relative, so what is left is float32 rounding, which averages out (the biases
# of the moments are computed exactly over all 2**32 words in tests/test_rng.py
# and stated in lni_geometry/rng.py).

_F32 = np.float32
_MASK30 = np.uint32(0x3FFFFFFF)
_HALF30 = np.uint32(0x20000000)
_TWO_M32_F = _F32(2.0**-32)
_TWO_M33_F = _F32(2.0**-33)
_NEG_TWO_M32_F = _F32(-(2.0**-32))
_HALF_F = _F32(0.5)
_ONE_F = _F32(1.0)
_TWO_F = _F32(2.0)
_NEG_TWO_F = _F32(-2.0)
_SQRT2_F = _F32(1.4142135)
_LN2_HI_F = _F32(6.9313812256e-01)  # fdlibm logf: 16 significant bits, k * hi exact for |k| < 2**8
_LN2_LO_F = _F32(9.0580006145e-06)
# 2 atanh(s) = 2 s + s * z * (2/3 + 2/5 z + 2/7 z**2 + 2/9 z**3 + 2/11 z**4), z = s**2,
# |s| <= 3 - 2 sqrt(2) = 0.1716: truncation error below 5e-11 relative
_A1 = _F32(2.0 / 3.0)
_A2 = _F32(2.0 / 5.0)
_A3 = _F32(2.0 / 7.0)
_A4 = _F32(2.0 / 9.0)
_A5 = _F32(2.0 / 11.0)
_EXP_MASK_F = np.uint32(0x7F800000)
_MANT_MASK_F = np.uint32(0x007FFFFF)
_ONE_BITS_F = np.uint32(0x3F800000)
_ALL32 = np.uint32(0xFFFFFFFF)
_BIAS_F = np.uint32(127)


@njit(inline="always", cache=True, error_model="numpy")
def mantissa_split32(x):
    """``x = m 2**(kb - 127)`` with ``m`` in ``[sqrt(1/2), sqrt(2))``: ``(kb, m)``, exact.

    ``x`` a positive normal float32; ``kb`` the biased exponent (uint32), plus
    one where the mantissa was halved.
    """
    bits = f32_bits(x)
    m = bits_f32(or32(and32(bits, _MANT_MASK_F), _ONE_BITS_F))
    big = m > _SQRT2_F
    m = m * _HALF_F if big else m
    kb = shr32(and32(bits, _EXP_MASK_F), uint32(23))
    kb = add32(kb, uint32(1)) if big else kb
    return kb, m


@njit(inline="always", cache=True, error_model="numpy")
def log_reduced32(dk, f):
    """``dk log 2 + log(1 + f)`` in float32, ``f`` in ``[sqrt(1/2) - 1, sqrt(2) - 1]``.

    ``dk`` an integer (as float32, ``|dk| < 2**8``).  fdlibm's ``logf``:
    ``log(1 + f) = f - s (f - R)``, ``s = f / (2 + f)``, ``R`` the atanh series
    to ``s**10`` (truncation below ``5e-11`` relative), ``log 2`` split in two
    so that ``dk`` times its head is exact.  Relative precision for small ``f``
    (``log(1 + f) = f (1 - f/2 + ...)``).
    """
    s = f / (_TWO_F + f)
    z = s * s
    r = z * (_A1 + z * (_A2 + z * (_A3 + z * (_A4 + z * _A5))))
    return dk * _LN2_HI_F - ((s * (f - r) - dk * _LN2_LO_F) - f)


@njit(inline="always", cache=True, error_model="numpy")
def neg2_log_word32(w):
    """``-2 log u`` in float32 for ``u = (w + 1/2) 2**-32`` of a word ``w`` (branch-free).

    ``u`` rounded to float32 (exact for ``w < 2**23``, where the tail of the
    normal lives) gives ``u = (1 + f) 2**k`` with ``1 + f`` in
    ``[sqrt(1/2), sqrt(2))`` (:func:`mantissa_split32`); for ``k = 0``
    (``u >= sqrt(1/2)``) ``f = u - 1`` is taken instead from the word itself,
    ``f = -(~w + 1/2) 2**-32`` (``~w = 2**32 - 1 - w`` exact), so small radii
    keep their relative precision; then :func:`log_reduced32`.  Relative error
    below ``4e-7`` (tested over every word below 2**20 and 2**20 others).
    """
    w = uint32(w)
    uf = _F32(w) * _TWO_M32_F + _TWO_M33_F
    kb, m = mantissa_split32(uf)
    k = isub32(kb, _BIAS_F)
    # ~w < 2**31 wherever f_top is used (u >= sqrt(1/2)): a signed conversion suffices
    f_top = (_F32(int32(xor32(w, _ALL32))) + _HALF_F) * _NEG_TWO_M32_F
    f = f_top if kb == _BIAS_F else m - _ONE_F
    return _NEG_TWO_F * log_reduced32(_F32(k), f)


# sin(pi/2 y) = y (P0 + P1 y**2 + ... + P5 y**10), cos(pi/2 y) = 1 + Q1 y**2 + ... + Q5 y**10
# on [0, 1/2] (Taylor; truncation below 2e-9 and 2e-10).  P0 = pi/2 is split into
# a float32 head and tail so that the leading term carries no systematic error.
_P0_HI = _F32(1.5707963705062866)
_P0_LO = _F32(math.pi / 2.0 - 1.5707963705062866)
_P1 = _F32(-0.6459640975062462)
_P2 = _F32(0.07969262624616703)
_P3 = _F32(-0.004681754135318687)
_P4 = _F32(0.00016044118478735975)
_P5 = _F32(-3.598843235212084e-06)
_Q1_HI = _F32(-1.2337005501361697)
_Q1_LO = _F32(-1.2337005501361697 - float(np.float32(-1.2337005501361697)))
_Q2 = _F32(0.253669507901048)
_Q3 = _F32(-0.020863480763352957)
_Q4 = _F32(0.0009192602748394263)
_Q5 = _F32(-2.5202042373060596e-05)
_TWO_M30_F = _F32(2.0**-30)


@njit(inline="always", cache=True, error_model="numpy")
def cos_sin_turn32(w):
    """``(cos t, sin t)`` in float32, ``t = 2 pi (w + 1/2) 2**-32``, branch-free.

    The top two bits of ``w`` pick the quadrant, the angle is folded exactly
    in integers to ``y`` quarter turns, ``y`` in ``[0, 1/2]``;
    then Taylor polynomials in ``y`` (``pi/2`` and ``pi**2/8`` split in two
    float32 parts).  Error below ``2e-7`` relative to the larger of the two.
    """
    w = uint32(w)
    q = shr32(w, uint32(30))
    t = and32(w, _MASK30)
    mirror = t >= _HALF30
    t = sub32(_MASK30, t) if mirror else t
    y = (_F32(int32(t)) + _HALF_F) * _TWO_M30_F
    z = y * y
    ps = z * (_P1 + z * (_P2 + z * (_P3 + z * (_P4 + z * _P5))))
    s0 = y * _P0_HI + y * (_P0_LO + ps)
    qc = z * (_Q2 + z * (_Q3 + z * (_Q4 + z * _Q5)))
    c0 = _ONE_F + z * (_Q1_HI + (_Q1_LO + qc))
    swap = mirror != (and32(q, uint32(1)) == uint32(1))
    a = s0 if swap else c0
    b = c0 if swap else s0
    # signs by flipping the sign bit: cos < 0 in quadrants 1, 2 (bit 0 xor bit 1
    # of q); sin < 0 in 2, 3 (bit 1)
    neg_c = shl32(xor32(q, shr32(q, uint32(1))), uint32(31))
    neg_s = shl32(shr32(q, uint32(1)), uint32(31))
    return bits_f32(xor32(f32_bits(a), neg_c)), bits_f32(xor32(f32_bits(b), neg_s))


# sin(pi y) = y (S0 + S1 y**2 + ... + S6 y**12) on [0, 1/2] (Taylor; truncation below
# 7e-10 relative), S0 = pi split into a float32 head and tail; 2**r = sum (r log 2)**k / k!
# to k = 7 on |r| <= 1/2 (truncation below 6e-9).
_S0_HI = _F32(math.pi)
_S0_LO = _F32(math.pi - float(np.float32(math.pi)))
_S1 = _F32(-(math.pi**3) / 6.0)
_S2 = _F32(math.pi**5 / 120.0)
_S3 = _F32(-(math.pi**7) / 5040.0)
_S4 = _F32(math.pi**9 / 362880.0)
_S5 = _F32(-(math.pi**11) / 39916800.0)
_S6 = _F32(math.pi**13 / 6227020800.0)
_X0, _X1, _X2, _X3, _X4, _X5, _X6, _X7 = (_F32(math.log(2.0) ** k / math.factorial(k)) for k in range(8))
_ROUND_MAGIC_F = _F32(12582912.0)  # 1.5 * 2**23: x + magic - magic rounds to an integer (|x| < 2**22)


@njit(inline="always", cache=True, error_model="numpy")
def sin_half_turns32(y):
    """``sin(pi y)`` in float32 for ``y`` in ``[0, 1/2]`` (branch-free).

    ``y (pi + S(y**2))``: the Taylor polynomial to ``y**13`` (truncation below
    ``7e-10`` relative), ``pi`` in two float32 parts so that small arguments
    carry no systematic error.  Relative precision for every ``y``, however
    small: the callers fold their arguments exactly so that the sine never
    comes from a difference of nearby numbers.
    """
    z = y * y
    p = _S6
    p = p * z + _S5
    p = p * z + _S4
    p = p * z + _S3
    p = p * z + _S2
    p = p * z + _S1
    return y * _S0_HI + y * (_S0_LO + p * z)


@njit(inline="always", cache=True, error_model="numpy")
def exp2_reduced32(r):
    """``2**r`` in float32 for ``|r| <= 1/2`` (Taylor to ``(r log 2)**7``, truncation below ``6e-9``)."""
    e = _X7
    e = e * r + _X6
    e = e * r + _X5
    e = e * r + _X4
    e = e * r + _X3
    e = e * r + _X2
    e = e * r + _X1
    return e * r + _X0


@njit(inline="always", cache=True, error_model="numpy")
def round32(x):
    """``x`` rounded to the nearest integer (ties to even), float32, ``|x| < 2**22``."""
    return (x + _ROUND_MAGIC_F) - _ROUND_MAGIC_F


# --- the fills' fast-math flags; expm1 (float64: Student-t) ----------------------

_INV_LN2 = 1.4426950408889634
_ROUND_MAGIC = 6755399441055744.0  # 1.5 * 2**52: x + magic - magic rounds to an integer
_EXP_MIN = -746.0  # exp below this is 0 in float64
_EXP_MAX = 710.0  # exp above this is inf in float64
#: LLVM fast-math flags of the coordinate fills (Gaussian, stable, Student-t): only
#: ``contract`` (``a * b + c`` may become one fused multiply-add, rounded once, as
#: NVVM does on GPUs); no reassociation, no approximate functions, NaN and inf kept.
#: A function compiled ``inline="always"`` takes the flags of the function it is
#: inlined into: the flags of the fills (``fill_gaussian``, ``fill_gaussian_tile``,
#: ``fill_stable``, ...) are the ones that fix the stream.
CONTRACT = {"contract"}


@njit(inline="always", cache=True, error_model="numpy")
def _expm1_reduced(r):
    # exp(r) - 1 on |r| <= log(2)/2 by its Taylor series to r**13 (truncation < 5e-18).
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    return r + r * r * p


@njit(inline="always", cache=True, error_model="numpy")
def pow2_halves(k):
    """``(2**(k >> 1), 2**(k - (k >> 1)))`` as float64 built from their bits, for an int64 ``k``
    in ``[-2044, 2046]``: ``x * a * b`` scales ``x`` by ``2**k`` with one rounding, even where
    the result is subnormal or ``2**k`` itself is not a float64."""
    ka = k >> int64(1)
    a = bits_f64(uint64(ka + int64(1023)) << uint64(52))
    b = bits_f64(uint64(k - ka + int64(1023)) << uint64(52))
    return a, b


@njit(inline="always", cache=True, error_model="numpy")
def _exp_parts(x):
    """``exp(x) = a * (1 + q) * b`` with ``a = 2**(k//2)``, ``b = 2**(k - k//2)``."""
    x = min(max(x, _EXP_MIN), _EXP_MAX)
    kf = (x * _INV_LN2 + _ROUND_MAGIC) - _ROUND_MAGIC
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    q = _expm1_reduced(r)
    k = int64(kf)
    a, b = pow2_halves(k)
    return a, q, b, k


@njit(inline="always", cache=True, error_model="numpy")
def expm1_finite(x):
    """``exp(x) - 1`` of a non-NaN float64, branch-free, accurate for small ``|x|``."""
    a, q, b, k = _exp_parts(x)
    e = (a * (1.0 + q)) * b - 1.0
    return q if k == int64(0) else e


# --- vectorised wrapper (for tests and tools) ---------------------------------


@njit(cache=True, error_model="numpy", fastmath=CONTRACT)
def _apply_unary(kind, x, out):
    for i in range(x.shape[0]):
        v = x[i]
        if kind == 0:
            out[i] = expm1_finite(v)
        elif kind == 1:
            out[i] = float64(sin_half_turns32(float32(v)))
        elif kind == 2:
            out[i] = float64(exp2_reduced32(float32(v)))
        else:
            out[i] = float64(log_reduced32(_F32(0.0), float32(v)))


_UNARY = {"expm1": 0, "sin_half_turns32": 1, "exp2_reduced32": 2, "log1p_reduced32": 3}


def elementary(name, x):
    """Apply a device function to an array (float64 in and out), for testing against numpy.

    ``name``: ``"expm1"`` (:func:`expm1_finite`), ``"sin_half_turns32"``,
    ``"exp2_reduced32"``, ``"log1p_reduced32"`` (:func:`log_reduced32` with
    ``dk = 0``); the float32 functions get ``x`` rounded to float32.
    """
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    out = np.empty_like(x)
    _apply_unary(_UNARY[name], x, out)
    return out
