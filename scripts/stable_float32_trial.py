"""A trial, not adopted: the stable transform with float32 polynomial pieces.

    python scripts/stable_float32_trial.py

Issue 16 asks for twice the stable draws per second.  The package's transform
(``models.stable_from_words``) evaluates three sines, two logarithms and an
exponential in float64 to about ``1e-16``.  This script tries the cheapest
variant that keeps the documented tails (both 53-bit uniforms, so ``pi/2 - |V|``
and ``W`` stay exact down to probabilities near ``1e-16``) and the float64
range (single draws up to ``1e300`` at small alpha): every *magnitude* stays
float64 (the uniforms, the folded sine arguments, the exponents of the
logarithms, ``W``, ``1/(W cos V)``, the power of two of the result); only the
bounded factors are float32 polynomials:

- ``sin(pi y) = y S(y**2)``, ``S`` the Taylor polynomial to ``y**13`` in float32;
- ``log(1 + f) = f G(f)`` for ``f`` in ``[sqrt(1/2) - 1, sqrt(2) - 1]`` with
  ``G = 2/(2 + f) (1 + z/3 + ... + z**5/11)``, ``z = (f/(2 + f))**2``;
- ``2**r`` for ``|r| <= 1/2`` by its Taylor polynomial to ``r**7``.

It prints, for several alpha, the largest relative difference from the float64
transform over 2e6 draws (extreme words included) and the cycles per draw of
both in one process (Philox words into planes, then the transform, one thread,
tiles of 512 in cache, thread CPU time x the clock of ``/proc/cpuinfo``, best
of 9 interleaved rounds), with Philox alone and Philox plus the two uniforms.

Measured on 2026-12-01 (AMD EPYC Zen 4, AVX-512, 2.6 GHz): relative
difference at most 9e-7 (alpha 0.3) and 2.3e-7 (alpha 1.5); cycles per draw
18.8 to 19.1 (trial) against 19.8 to 20.8 (package), 4.1 for Philox alone and
5.4 with the uniforms.  The compiler runs a loop that mixes float64 and float32
8 lanes wide, so float32 saves only the shorter polynomials: 1.04 to 1.10x, not
the 2x asked, and not worth a new stream version.
"""

import math
import time

import numpy as np
from numba import float32, float64, int64, njit, uint64

from lni_geometry.elementary import CONTRACT, bits_f64, f64_bits
from lni_geometry.models import philox_planes, signed_half_uniform, stable_from_words
from lni_geometry.runs import cpu_frequency_hz

_F = np.float32
_S0, _S1, _S2, _S3, _S4, _S5, _S6 = (_F((-1) ** k * math.pi ** (2 * k + 1) / math.factorial(2 * k + 1))
                                     for k in range(7))
_A1, _A2, _A3, _A4, _A5 = (_F(1.0 / (2 * k + 1)) for k in range(1, 6))
_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7 = (_F(math.log(2.0) ** k / math.factorial(k)) for k in range(8))
_LN2 = math.log(2.0)
_INV_LN2 = 1.0 / math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_EXP = np.uint64(0x7FF0000000000000)
_MANT = np.uint64(0x000FFFFFFFFFFFFF)
_ONE = np.uint64(0x3FF0000000000000)
_MAGIC = 6755399441055744.0  # 1.5 * 2**52: y + magic - magic rounds y to an integer


@njit(inline="always", error_model="numpy")
def _sinpi_factor(y):
    """``sin(pi y)/y`` for ``y`` in ``[0, 1/2]``, in float32."""
    y32 = float32(y)
    z = y32 * y32
    p = _S6
    p = p * z + _S5
    p = p * z + _S4
    p = p * z + _S3
    p = p * z + _S2
    p = p * z + _S1
    p = p * z + _S0
    return float64(p)


@njit(inline="always", error_model="numpy")
def _log1p_factor(f):
    """``log(1 + f)/f`` for ``f`` in ``[sqrt(1/2) - 1, sqrt(2) - 1]``, in float32."""
    f32 = float32(f)
    t = float32(1.0) / (float32(2.0) + f32)
    s = f32 * t
    z = s * s
    a = _A5
    a = a * z + _A4
    a = a * z + _A3
    a = a * z + _A2
    a = a * z + _A1
    return float64((float32(2.0) * t) * (float32(1.0) + z * a))


@njit(inline="always", error_model="numpy")
def _log_parts(x):
    """``x = (1 + f) 2**k`` with ``1 + f`` in ``[sqrt(1/2), sqrt(2))``: ``(k, f)``, exact."""
    bits = f64_bits(x)
    k = int64((bits & _EXP) >> uint64(52)) - 1023
    m = bits_f64((bits & _MANT) | _ONE)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    k = k + 1 if big else k
    return float64(k), m - 1.0


@njit(inline="always", error_model="numpy")
def _pow2(y):
    """``2**y`` as ``(a, e, b)`` with ``a b = 2**round(y)`` (two halves) and ``e = 2**(y - round(y))``."""
    y = min(max(y, -2200.0), 2200.0)
    kf = (y + _MAGIC) - _MAGIC
    r = float32(y - kf)
    e = _E7
    e = e * r + _E6
    e = e * r + _E5
    e = e * r + _E4
    e = e * r + _E3
    e = e * r + _E2
    e = e * r + _E1
    e = e * r + _E0
    k = int64(kf)
    ka = k >> int64(1)
    a = bits_f64(uint64(ka + int64(1023)) << uint64(52))
    b = bits_f64(uint64(k - ka + int64(1023)) << uint64(52))
    return a, float64(e), b


@njit(inline="always", error_model="numpy")
def stable_trial(w0, w1, w2, w3, alpha, power, one_minus_alpha):
    """Chambers-Mallows-Stuck as ``models.stable_from_words``, float32 factors."""
    sv, a = signed_half_uniform(w0, w1)
    su, p = signed_half_uniform(w2, w3)
    # W = -log U: U = p (su < 0), or 1 - p with log(1 - p) = log1p(-p) (p < 1 - sqrt(1/2))
    # or log(2 (1 - p)) - log 2 with 2 (1 - p) = 1 + (1 - 2p), 1 - 2p exact
    kl, fl = _log_parts(p)
    near = p < 0.2928932188134524
    k = kl if su < 0.0 else (0.0 if near else -1.0)
    f = fl if su < 0.0 else (-p if near else 1.0 - 2.0 * p)
    w = -(k * _LN2 + f * _log1p_factor(f))
    b = 0.5 - a  # exact
    cos_v = b * _sinpi_factor(b)
    t = alpha * a
    y1 = min(t, 1.0 - t)
    sin_av = y1 * _sinpi_factor(y1)
    y2 = 0.5 - one_minus_alpha * a
    cos_1mav = y2 * _sinpi_factor(y2)
    q = 1.0 / (w * cos_v)
    k2, f2 = _log_parts(cos_1mav * q)
    a2, e, b2 = _pow2(power * (k2 + f2 * _log1p_factor(f2) * _INV_LN2))
    return sv * (((sin_av * w * q) * e) * a2) * b2


@njit(fastmath=CONTRACT, error_model="numpy")
def _fill(kind, wa, wb, wc, wd, alpha, out):
    power = (1.0 - alpha) / alpha
    oma = abs(1.0 - alpha)
    for j in range(out.shape[0]):
        if kind == 0:
            out[j] = stable_from_words(wa[j], wb[j], wc[j], wd[j], alpha, power)
        elif kind == 1:
            out[j] = stable_trial(wa[j], wb[j], wc[j], wd[j], alpha, power, oma)
        else:
            sv, a = signed_half_uniform(wa[j], wb[j])
            su, p = signed_half_uniform(wc[j], wd[j])
            out[j] = sv * a + su * p


@njit(fastmath=CONTRACT, error_model="numpy")
def _tiles(kind, ntiles, alpha, words, out):
    n = out.shape[0]
    for t in range(ntiles):
        philox_planes(1, 2, 0, t * n, n, 0, words)
        if kind == 3:
            out[0] = words[5]  # Philox alone
        else:
            _fill(kind, words[:n], words[n:2 * n], words[2 * n:3 * n], words[3 * n:], alpha, out)


def main():
    gen = np.random.default_rng(1)
    n = 2_000_000
    w = gen.integers(0, 2**32, size=(4, n), dtype=np.uint64).astype(np.uint32)
    w[0, :1000], w[1, :1000] = 0x7FFFFFFF, np.arange(1000) + 0xFFFFF000  # |V| at pi/2
    w[2, 1000:2000], w[3, 1000:2000] = 0, np.arange(1000)  # U = p near 0
    w[2, 2000:3000], w[3, 2000:3000] = 0x80000000, np.arange(1000)  # U = 1 - p near 1
    for alpha in (0.3, 0.5, 1.0, 1.2, 1.5, 1.9, 2.0):
        ref, trial = np.empty(n), np.empty(n)
        _fill(0, *w, alpha, ref)
        _fill(1, *w, alpha, trial)
        print(f"alpha {alpha}: largest relative difference {np.max(np.abs(trial / ref - 1)):.2e}")
    freq = cpu_frequency_hz()
    tile, ntiles = 512, 4096
    words, out = np.empty(4 * tile, np.uint32), np.empty(tile)
    names = ("package (float64)", "trial (float32 factors)", "Philox + uniforms", "Philox alone")
    for kind in range(4):
        _tiles(kind, 2, 1.5, words, out)
    best = [np.inf] * 4
    for _ in range(9):
        for kind in range(4):
            t0 = time.thread_time()
            _tiles(kind, ntiles, 1.5, words, out)
            best[kind] = min(best[kind], time.thread_time() - t0)
    for name, b in zip(names, best):
        print(f"alpha 1.5, {name}: {b * freq / (ntiles * tile):.2f} cycles per draw")


if __name__ == "__main__":
    main()
