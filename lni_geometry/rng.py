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

Compatibility policy (the stream promise, layer by layer)
---------------------------------------------------------
In the style of numpy's policy for its bit generators: what is promised is
stated per layer, and every change to a promised layer increments
:data:`STREAM_VERSION` (an integer, independent of the package version), which
keys every cache of computed samples (``lni_geometry.sweep`` and the experiment
cache).  ``tests/test_stream_pins.py`` pins literal values of every layer, so
that any change fails a test until ``STREAM_VERSION`` and the pins are updated
together, and the data in ``data/`` regenerated or labelled with the version
it was made with (run files record ``stream_version`` in their metadata, a
file without it is version 1, and ``--resume`` refuses a file of another
version).

1. **Keys** (``key_from_seed``): ``SeedSequence(seed).generate_state(2,
   uint32)``; bit-stable across versions, machines and backends.
2. **Philox words** (``philox4x32_10``, ``stream_words``): the counter layout
   above and Random123's Philox4x32-10; integer arithmetic, so bit-stable
   across versions, machines and backends (CPU, CUDA, Dask workers).
3. **CPU coordinates** (``lni_geometry.sample_vectors``, the CPU kernels): a
   pure function of ``(key, model, sample, coordinate)``, bit-stable across
   versions with the same ``STREAM_VERSION``, thread counts, chunkings and
   start offsets; across machines, bit-stable wherever numba/LLVM emit the same
   IEEE operations (the transforms use no libm calls and no fast-math beyond
   ``contract`` in the fills, which can differ between CPUs with and without
   FMA in the last bit).
4. **CPU sums** (``sample_angles(..., backend="cpu")`` and ``"dask"`` with CPU
   workers): added in the fixed order of :mod:`lni_geometry.kernels`, so
   bit-identical for any thread count, worker count and split of the sample
   range, on one machine (and across machines under the condition of 3).
5. **CUDA** (``backend="cuda"``): the same draws.  Philox words are
   bit-identical to the CPU's; coordinates are bit-identical under numba's
   simulator (tested in CI) and on a GPU may differ in their last bits (NVVM
   contracts ``a * b + c`` into FMAs); sums are added in another order, so they
   are promised within ``|cuda - cpu| <= 1e-9 * scale`` per column
   (``scale = l1`` for ``l1`` and ``total``, ``l2sq`` for ``l2sq``), the
   tolerance that ``lni_geometry.backends.cuda_parity.validate_parity``
   measures on a GPU (``docs/cuda.md``; no GPU measurement is recorded yet).
6. **Angles and laws** are computed from the sums in float64 by numpy and
   scipy; they follow the sums, within numpy's and scipy's own promises.

Versions of the stream, each with the package release that brought it
(``CHANGELOG.md`` says what else each release changed):

- **1** (0.1.0, 2026-11-22): float64 Box-Muller with fdlibm's polynomials; CPU
  sums in 8 lanes, ``l2sq`` lanes by a multiply then an add.
- **2** (0.2.0, 2026-12-01): float32 Box-Muller (layer 3 changed for the
  Gaussian model only; "Gaussian coordinates" below), and the CPU sums in 16
  lanes per sum (entry ``j`` into lane ``j mod 16``, folded pairwise,
  :mod:`lni_geometry.kernels`) with the ``l2sq`` lanes by a fused multiply-add
  (layer 4 changed for every model).  Keys, Philox words and the heavy-tailed
  coordinates are unchanged.  Later rewrites of the same version changed no
  value: the Student-t retries vectorised and then branch-free, the float32
  reductions in 32-bit integer lanes, the stable tile fill planar (the tile
  fills are tested bit for bit against ``fill_coords``).
- **3** (0.3.0, 2026-12-01): the symmetric alpha-stable transform in float32
  lanes (layer 3 changed for the stable model only: for ``alpha >= 0.05``
  each finite draw of version 2 moves by less than
  ``1e-6 (1 + |1 - alpha|/alpha)`` relative, the same words giving the same
  draw, and draws that version 2 let overflow to ``inf`` above
  ``alpha 2**-53 DBL_MAX`` are now finite up to ``DBL_MAX``;
  :func:`lni_geometry.models.stable_pieces`).  Gaussian and Student-t
  coordinates, keys, words and the order of the sums are unchanged, so a
  Gaussian file of version 2 (``data/figure1.npz``) holds exactly the numbers
  version 3 gives.  Releases after 0.3.0 draw version 3.

Gaussian coordinates
--------------------
Words ``(w0, w1)`` give two normals by the Box-Muller transform
``r = sqrt(-2 log u1)``, ``(z0, z1) = (r cos t, r sin t)`` with
``u1 = (w0 + 1/2) 2**-32`` and ``t = 2 pi (w1 + 1/2) 2**-32``.  Since stream
version 2, ``r``, ``cos t`` and ``sin t`` are computed in float32
(:func:`lni_geometry.elementary.neg2_log_word32`, ``cos_sin_turn32``:
branch-free, the range reductions exact in integer arithmetic so that every
value keeps float32's relative precision, polynomials whose truncation error
is below ``2e-9``) and multiplied in float64, exactly (24-bit by 24-bit
significands).  Each coordinate agrees with the exact Box-Muller value of its
words to ``4e-7`` relative (tested).  Resolution: the largest radius is
``sqrt(2 * 33 log 2) = 6.7637056`` rounded to float32, :data:`MAX_NORMAL`
``= 6.76370573``, so ``|z| <= 6.7637``; the truncated tail has probability
``P(|z| > 6.7637) = 1.3e-11`` (for one coordinate of the pair).

Bias, computed exactly rather than bounded: ``r`` and ``t`` come from
different words and the product is exact, so over the ``2**32`` equally likely
words ``E z**2 = E r**2 (E cos**2 + E sin**2)/2`` and
``E|z| = E r (E|cos| + E|sin|)/2`` exactly, and these means are sums over all
``2**32`` words of the float32 functions themselves
(:func:`lni_geometry.kernels.box_muller_moments`,
``scripts/transform_bias.py``, 30 s): ``E r**2 = 2 (1 + 4.8e-10)``,
``E cos**2 = E sin**2 = 1/2 (1 + 2.5e-10)``, so the bias of ``E z**2`` is
``+7.3e-10`` relative, and that of ``E|z|`` is ``+6.6e-11``.  The Monte Carlo
standard errors of these means at ``dim * samples = 1e12`` draws are
``1.4e-6`` and ``7.6e-7``: the biases are 1900 (``E z**2``) and 11000
(``E|z|``) times below them (the float64 transform of stream version 1 had
bounds of ``1e-9`` and ``3e-9``).
``tests/test_rng.py::test_transform_bias_below_monte_carlo_error_at_1e12``
recomputes them (every word of the tail, a stratified sample of the rest) and
checks them.

References
----------
J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as
easy as 1, 2, 3", SC'11 (2011).  G. E. P. Box, M. E. Muller, "A note on the
generation of random normal deviates", Ann. Math. Stat. 29 (1958).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint32, uint64, float64

# the Box-Muller transform's functions; their home is .elementary
from .elementary import CONTRACT, cos_sin_turn32, neg2_log_word32, sqrt_nonneg

__all__ = [
    "STREAM_VERSION",
    "MAX_DRAW_INDEX",
    "MAX_NORMAL",
    "MAX_SAMPLE_INDEX",
    "box_muller",
    "box_muller_pieces",
    "key_from_seed",
    "philox4x32_10",
    "seed_from_metadata",
    "seed_metadata",
    "stream_words",
    "uniform32",
]

#: Version of the random stream (layers 1-4 of the compatibility policy above).
#: Incremented by any change of a key, a Philox word, a CPU coordinate or the
#: order of the CPU sums; caches of samples and run files are keyed by it.
#: 1 (0.1.0): float64 Box-Muller (fdlibm polynomials), 8 lanes, ``l2sq`` ones by
#: multiply-then-add.  2 (0.2.0): float32 Box-Muller (:func:`box_muller`), CPU sums in
#: 16 lanes, ``l2sq`` lanes by fused multiply-add; keys, Philox words and the
#: heavy-tailed coordinates unchanged (data/figure1.npz).  3 (0.3.0): the stable
#: transform in float32 lanes; everything else unchanged.
STREAM_VERSION = 3

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
#: The largest |z| the Gaussian transform can return: its radius at word 0,
#: sqrt(-2 log 2**-33) = 6.76370563500 rounded to float32 (1.4e-8 above).
MAX_NORMAL = float.fromhex("0x1.b0e08ep+2")


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
    """A JSON-able description of a seed: the int, or a SeedSequence's state.

    A SeedSequence is described by what determines its state: ``entropy`` (an
    int, or a list of ints for list entropy such as ``SeedSequence([1, 2])``),
    ``spawn_key`` and (when not the default 4) ``pool_size``, so that
    :func:`seed_from_metadata` rebuilds a sequence with the same key.  How many
    children it has spawned is not part of it (it does not change the key).

    Examples
    --------
    >>> import numpy as np
    >>> meta = seed_metadata(np.random.SeedSequence([1, 2]))
    >>> meta["entropy"]
    [1, 2]
    >>> seed_from_metadata(meta).generate_state(2).tolist() == np.random.SeedSequence([1, 2]).generate_state(2).tolist()
    True
    """
    if isinstance(seed, np.random.SeedSequence):
        entropy = seed.entropy
        if isinstance(entropy, (list, tuple, np.ndarray)):
            entropy = [int(e) for e in entropy]
        else:
            entropy = int(entropy)
        meta = {"entropy": entropy, "spawn_key": [int(k) for k in seed.spawn_key]}
        if seed.pool_size != 4:
            meta["pool_size"] = int(seed.pool_size)
        return meta
    return int(seed)


def seed_from_metadata(meta):
    """Inverse of :func:`seed_metadata`."""
    if isinstance(meta, dict):
        return np.random.SeedSequence(
            meta["entropy"],
            spawn_key=tuple(meta["spawn_key"]),
            pool_size=int(meta.get("pool_size", 4)),
        )
    return int(meta)


# --- uniforms ---------------------------------------------------------------

_TWO_M32 = 2.0**-32


@njit(inline="always", cache=True, error_model="numpy")
def uniform32(w):
    """``(w + 1/2) 2**-32``: a uniform in (0, 1) from one word, never 0 or 1."""
    return (float64(w) + 0.5) * _TWO_M32


@njit(inline="always", cache=True, error_model="numpy", fastmath=CONTRACT)
def box_muller_pieces(wa, wb):
    """The float32 pieces ``(r, cos t, sin t)`` of :func:`box_muller`.

    Separate so that the CPU tile fill can compute them in a loop of 32-bit
    lanes only (:func:`lni_geometry.models.fill_gaussian_tile`) and form the
    float64 products in a second loop: the same operations, the same bits.
    """
    c, s = cos_sin_turn32(wb)
    return sqrt_nonneg(neg2_log_word32(wa)), c, s


@njit(inline="always", cache=True, error_model="numpy", fastmath=CONTRACT)
def box_muller(wa, wb):
    """Two independent standard normals from two words (Box-Muller).

    ``r = sqrt(-2 log u)``, ``u = (wa + 1/2) 2**-32``; ``t = 2 pi (wb + 1/2) 2**-32``;
    returns ``(r cos t, r sin t)``.  ``r``, ``cos t`` and ``sin t`` are float32
    (:func:`lni_geometry.elementary.neg2_log_word32`, ``cos_sin_turn32``; 16
    lanes per AVX-512 register), their products float64 and exact, so that
    ``E z**2 = E r**2 E cos**2`` holds exactly over the words.
    ``|z| <= MAX_NORMAL = 6.7637``.
    """
    r, c, s = box_muller_pieces(wa, wb)
    r = float64(r)
    return r * float64(c), r * float64(s)
