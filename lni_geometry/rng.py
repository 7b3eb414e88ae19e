"""Counter-based random bits (Philox4x32-10), seeds, uniforms and normals.

Every random number in lni_geometry is a pure function of a 64-bit key and a
128-bit counter::

    seed --SeedSequence--> key (2 x uint32)
    (key, counter) --Philox4x32-10--> 4 x uint32 words
    words --uniform / normal transforms--> model coordinates

Counter layout (the stream's compatibility promise)
---------------------------------------------------
For sample index ``s`` and a model that draws ``K`` coordinates from one Philox
call (``K = 4`` for the Gaussian model), coordinate ``i`` is drawn from the
call with the counter ::

    c0 = b mod 2**32          b = i // K    (the coordinate block)
    c1 = b >> 32
    c2 = s mod 2**32
    c3 = (s >> 32) | (d << 16) d = the draw index (0 unless the model
                                 needs several calls per coordinate block)

so sample indices below ``2**48``, coordinate blocks below ``2**64`` and draw
indices below ``2**16`` never share a counter.  The key is
``SeedSequence(seed).generate_state(2, numpy.uint32)``.

**Promise.**  For a given ``(seed, model, dim, sample index)`` the coordinates
and therefore the sums and angles are identical on every backend, thread count,
chunking and start offset, and stay so across releases of the same major
version; a change of the layout or of a transform bumps the major version and
is listed in the changelog.  The sums are reduced in a fixed order, so they are
bit-identical across thread counts and chunkings on one machine (and across
machines whose compiler emits the same floating-point operations).

Gaussian coordinates
--------------------
Words ``(w0, w1)`` give two normals by the Box-Muller transform
``r = sqrt(-2 log u1)``, ``(z0, z1) = (r cos t, r sin t)`` with
``u1 = (w0 + 1/2) 2**-32`` and ``t = 2 pi (w1 + 1/2) 2**-32``.  ``log``, ``sin``
and ``cos`` are fdlibm's minimax polynomials, written branch-free so the compiler
vectorises them; they agree with numpy to ``2e-15`` (tested).
Resolution: the largest radius is ``sqrt(2 * 33 log 2) = 6.7637``, so
``|z| <= 6.7637``.  The truncated tail has probability
``P(|z| > 6.7637) = 1.3e-11`` (for one coordinate of the pair) and shifts
``E z**2`` by ``6e-10`` relative, ``E|z|`` by ``1e-10`` relative; the Monte
Carlo standard error of these means at ``dim * samples = 1e12`` draws is
``1.4e-6`` and ``7.6e-7``: the bias is four orders of magnitude below it
(``lni-geometry bench`` does not compute this; ``tests/test_rng.py`` checks the
numbers above).

References
----------
J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as
easy as 1, 2, 3", SC'11 (2011).  G. E. P. Box, M. E. Muller, "A note on the
generation of random normal deviates", Ann. Math. Stat. 29 (1958).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types, uint32, uint64, float64, int64
from numba.extending import intrinsic

__all__ = [
    "philox4x32_10",
    "key_from_seed",
    "MAX_NORMAL",
    "MAX_SAMPLE_INDEX",
    "MAX_DRAW_INDEX",
]

# --- Philox4x32-10 constants (Salmon et al. 2011, Random123) -----------------
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint32(0x9E3779B9)
PHILOX_W1 = np.uint32(0xBB67AE85)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

#: Sample indices must stay below this bound (16 bits of ``c3`` hold the rest).
MAX_SAMPLE_INDEX = 2**48
#: Draw indices (several Philox calls per coordinate block) stay below this.
MAX_DRAW_INDEX = 2**16
#: The largest |z| the Gaussian transform can return: sqrt(-2 log 2**-33).
MAX_NORMAL = math.sqrt(2.0 * 33.0 * math.log(2.0))


@njit(inline="always", cache=True, error_model="numpy")
def _philox_round(c0, c1, c2, c3, k0, k1):
    p0 = PHILOX_M0 * uint64(c0)
    p1 = PHILOX_M1 * uint64(c2)
    hi0 = uint32(p0 >> _SHIFT32)
    lo0 = uint32(p0 & _LOW32)
    hi1 = uint32(p1 >> _SHIFT32)
    lo1 = uint32(p1 & _LOW32)
    return uint32(hi1 ^ c1 ^ k0), lo1, uint32(hi0 ^ c3 ^ k1), lo0


@njit(inline="always", cache=True, error_model="numpy")
def philox_device(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of one counter: four uint32 words (device function).

    Ten rounds of ``(hi0, lo0) = mulhilo(0xD2511F53, c0)``,
    ``(hi1, lo1) = mulhilo(0xCD9E8D57, c2)``,
    ``c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)`` with the key bumped by
    ``(0x9E3779B9, 0xBB67AE85)`` between rounds.  All arguments are uint32.
    """
    c0 = uint32(c0)
    c1 = uint32(c1)
    c2 = uint32(c2)
    c3 = uint32(c3)
    k0 = uint32(k0)
    k1 = uint32(k1)
    for _ in range(9):
        c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
        k0 = uint32(k0 + PHILOX_W0)
        k1 = uint32(k1 + PHILOX_W1)
    return _philox_round(c0, c1, c2, c3, k0, k1)


@njit(inline="always", cache=True, error_model="numpy")
def stream_words(k0, k1, sample, block, draw):
    """The four words of coordinate block ``block`` of sample ``sample``.

    Implements the counter layout of the module docstring: ``sample`` and
    ``block`` are int64/uint64, ``draw`` a small integer below 2**16.
    """
    b = uint64(block)
    s = uint64(sample)
    c0 = uint32(b & _LOW32)
    c1 = uint32(b >> _SHIFT32)
    c2 = uint32(s & _LOW32)
    c3 = uint32((s >> _SHIFT32) | (uint64(draw) << uint64(16)))
    return philox_device(c0, c1, c2, c3, k0, k1)


@njit(cache=True, error_model="numpy")
def _philox_many(counters, key, out):
    k0 = uint32(key[0])
    k1 = uint32(key[1])
    for j in range(counters.shape[0]):
        w0, w1, w2, w3 = philox_device(
            counters[j, 0], counters[j, 1], counters[j, 2], counters[j, 3], k0, k1
        )
        out[j, 0] = w0
        out[j, 1] = w1
        out[j, 2] = w2
        out[j, 3] = w3


def philox4x32_10(counter, key):
    """Philox4x32-10 block cipher, vectorised over counters.

    Parameters
    ----------
    counter : array_like of uint32, shape (..., 4)
        Counter words ``c0 .. c3`` (``c0`` least significant).
    key : array_like of uint32, shape (2,)
        Key words ``k0, k1``.

    Returns
    -------
    numpy.ndarray of uint32, shape (..., 4)
        The four output words of each counter.

    Examples
    --------
    The first Random123 known answer:

    >>> import numpy as np
    >>> out = philox4x32_10(np.zeros(4, np.uint32), np.zeros(2, np.uint32))
    >>> [hex(w) for w in out]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    counter = _as_uint32_words(counter, "counter", 4)
    key = _as_uint32_words(key, "key", 2)
    if key.ndim != 1:
        raise ValueError(f"key must have shape (2,), got shape {key.shape}")
    flat = np.ascontiguousarray(counter.reshape(-1, 4))
    out = np.empty_like(flat)
    _philox_many(flat, key, out)
    return out.reshape(counter.shape)


def _as_uint32_words(x, name, width):
    arr = np.asarray(x)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an array of uint32 words, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise ValueError(f"{name} words must lie in [0, 2**32 - 1]")
    if arr.ndim == 0 or arr.shape[-1] != width:
        raise ValueError(f"{name} must have a last axis of length {width}, got shape {arr.shape}")
    return arr.astype(np.uint32)


# --- seeds ------------------------------------------------------------------


def key_from_seed(seed):
    """The Philox key (two uint32 words) of a seed.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        A non-negative integer or a SeedSequence; the key is
        ``SeedSequence(seed).generate_state(2, numpy.uint32)``.

    Returns
    -------
    numpy.ndarray of uint32, shape (2,)
    """
    if isinstance(seed, np.random.SeedSequence):
        seq = seed
    elif isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be a non-negative int or numpy.random.SeedSequence, got {seed!r}")
    elif isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        seq = np.random.SeedSequence(int(seed))
    else:
        raise TypeError(
            "seed must be a non-negative int or numpy.random.SeedSequence, "
            f"got {type(seed).__name__} {seed!r}"
        )
    return seq.generate_state(2, np.uint32)


def seed_metadata(seed):
    """A JSON-able description of a seed (int, or SeedSequence entropy and spawn key)."""
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": int(seed.entropy), "spawn_key": [int(k) for k in seed.spawn_key]}
    return int(seed)


def seed_from_metadata(meta):
    """Inverse of :func:`seed_metadata`."""
    if isinstance(meta, dict):
        return np.random.SeedSequence(meta["entropy"], spawn_key=tuple(meta["spawn_key"]))
    return int(meta)


# --- bit casts (LLVM bitcast; valid on the CPU and CUDA targets) ------------


@intrinsic
def _f64_bits(typingctx, x):
    """Reinterpret a float64 as uint64."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    """Reinterpret a uint64 as float64."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


@intrinsic
def sqrt_nonneg(typingctx, x):
    """IEEE square root of a float64 as the ``llvm.sqrt`` intrinsic.

    Unlike ``math.sqrt`` (a libm call that may set errno) the intrinsic lets the
    compiler vectorise loops; the result is the same correctly rounded value.
    """
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.DoubleType()])
        return builder.call(fn, [args[0]])

    return types.float64(types.float64), codegen


# --- uniforms ---------------------------------------------------------------

_TWO_M32 = 2.0**-32
_TWO_M53 = 2.0**-53


@njit(inline="always", cache=True, error_model="numpy")
def uniform32(w):
    """``(w + 1/2) 2**-32``: a uniform in (0, 1) from one word, never 0 or 1."""
    return (float64(w) + 0.5) * _TWO_M32


@njit(inline="always", cache=True, error_model="numpy")
def uniform53(wa, wb):
    """``(k + 1/2) 2**-53`` with ``k`` the top 53 bits of ``(wa, wb)``: a uniform in (0, 1)."""
    k = (uint64(wa) << uint64(21)) | (uint64(wb) >> uint64(11))
    return (float64(k) + 0.5) * _TWO_M53


# --- branch-free elementary functions for the hot loops ----------------------

_LN2_HI = 6.93147180369123816490e-01  # fdlibm split of log(2)
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_EXP_MASK = np.uint64(0x7FF0000000000000)
_MANT_MASK = np.uint64(0x000FFFFFFFFFFFFF)
_ONE_BITS = np.uint64(0x3FF0000000000000)


# Minimax coefficients of fdlibm (Sun Microsystems, 1993: e_log.c, k_sin.c,
# k_cos.c), accurate to about 2**-58 on their reduced ranges.
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11


@njit(inline="always", cache=True, error_model="numpy")
def log_positive(x):
    """Natural log of a positive normal float64, branch-free.

    ``x = (1 + f) 2**k`` with ``1 + f`` in ``[sqrt(1/2), sqrt(2))``;
    ``log(1 + f) = 2 atanh(s) = f - s (f - R(s**2))``, ``s = f / (2 + f)``, with
    fdlibm's minimax ``R`` (e_log.c).  Relative error below ``2e-16`` in tests.
    """
    bits = _f64_bits(x)
    k = int64((bits & _EXP_MASK) >> uint64(52)) - 1023
    m = _bits_f64((bits & _MANT_MASK) | _ONE_BITS)
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


@njit(inline="always", cache=True, error_model="numpy")
def _sin_poly(x):
    # fdlibm __kernel_sin on [0, pi/4]
    z = x * x
    r = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    return x + x * z * (_S1 + z * r)


@njit(inline="always", cache=True, error_model="numpy")
def _cos_poly(x):
    # fdlibm __kernel_cos on [0, pi/4] (the |x| < 0.3 branch's form; on
    # [0.3, pi/4] it loses at most an ulp or two against fdlibm's split form)
    z = x * x
    r = z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    return 1.0 - (0.5 * z - z * r)


_QUARTER_TURN_STEP = (math.pi / 2.0) * 2.0**-30
_MASK30 = np.uint32(0x3FFFFFFF)
_HALF30 = np.uint32(0x20000000)


@njit(inline="always", cache=True, error_model="numpy")
def cos_sin_turn(w):
    """``(cos t, sin t)`` for ``t = 2 pi (w + 1/2) 2**-32``, branch-free.

    The top two bits of ``w`` pick the quadrant; the angle within the quadrant is
    folded to ``[0, pi/4]`` exactly in integer arithmetic, where the polynomials
    are accurate to ``1e-16``.
    """
    w = uint32(w)
    q = w >> uint32(30)
    t = w & _MASK30
    mirror = t >= _HALF30
    t = (_MASK30 - t) if mirror else t
    x = (float64(t) + 0.5) * _QUARTER_TURN_STEP
    s0 = _sin_poly(x)
    c0 = _cos_poly(x)
    # The folded angle is x (or pi/2 - x when mirrored: sin and cos swap); a
    # quarter turn swaps them again, so one swap flag and two signs suffice:
    # quadrant q -> (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c).
    swap = mirror != ((q & uint32(1)) == uint32(1))
    a = s0 if swap else c0
    b = c0 if swap else s0
    sign_c = 1.0 - 2.0 * float64(((q + uint32(1)) >> uint32(1)) & uint32(1))
    sign_s = 1.0 - 2.0 * float64(q >> uint32(1))
    cq = sign_c * a
    sq = sign_s * b
    return cq, sq


@njit(inline="always", cache=True, error_model="numpy")
def box_muller(wa, wb):
    """Two independent standard normals from two words (Box-Muller).

    ``r = sqrt(-2 log u)``, ``u = (wa + 1/2) 2**-32``; ``t = 2 pi (wb + 1/2) 2**-32``;
    returns ``(r cos t, r sin t)``.  ``|z| <= MAX_NORMAL = 6.7637``.
    """
    r = sqrt_nonneg(-2.0 * log_positive(uniform32(wa)))
    c, s = cos_sin_turn(wb)
    return r * c, r * s
