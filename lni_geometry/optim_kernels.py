"""Fused kernels of the PyTorch optimizers: Lion's and Enim's steps, their sums, Enim's Gaussian.

The optimizers of :mod:`lni_geometry.torch` need, per step, the update itself
and a few sums over Lion's ``c = beta1 m + (1 - beta1) g``, the gradient ``g``
and the momentum ``m`` of every parameter tensor: ``||c||_1``, ``||c||_2^2``,
``nnz(c)`` (the sign angle, the angle budget, and whether ``c`` is finite),
counts of exact zeros and of small momenta (momentum tracing), and for Enim
``c . z`` and ``z . z`` with a Gaussian ``z``.  Separate torch operations
would read every array once per operation (a Lion step is six passes in
torch, and one launch per tensor and operation), and torch's float32
``vector_norm`` and ``dot`` accumulate in float32 (relative errors of 1e-3 at
10^7 entries).  These kernels take **every tensor of a step in one launch**
(the arrays given by address, as torch's multi-tensor ``_foreach`` operations
and apex's ``multi_tensor_apply`` take lists), read each array once per pass,
accumulate in float64, and run on all cores.

- :func:`lion_update`: Lion's step, bit for bit torch's operations (and so
  lucidrains/lion-pytorch's ``Lion``): ``c = fma(g, 1 - beta1, m * beta1)``,
  ``w <- fma(sign(c), -lr, w * (1 - lr wd))``, ``m <- fma(g, 1 - beta2, m * beta2)``
  in the parameters' dtype, with the constants rounded to it, as torch's
  ``mul_`` and ``add_(x, alpha=)`` compute them on a CPU with FMA
  (:func:`torch_uses_fma` checks).
- :func:`finite`: whether every entry of ``m`` and ``g`` is finite (Lion's
  check before it writes anything, when no telemetry sums are asked for).
- :func:`lion_step_many` (:class:`LionStep`, prepared once for many steps):
  Lion's whole step in one launch: the check or the telemetry sums, then,
  only if every ``c`` is finite, the update, which also makes the
  telemetry's counts.
- :func:`momentum_sums`: the sums of ``c`` (formed in float64, or rounded as
  Lion's step forms it), the counts, and with ``z`` the sums against it.
- :func:`enim_draw`: Enim's first pass: the Gaussian ``z`` of the step (from
  the package's Philox stream, :func:`fill_normals`) written to its buffer,
  and the sums of :func:`momentum_sums` with it.
- :func:`enim_update`: Enim's second pass: ``w <- (1 - lr wd) w - lr (alpha c + beta z)``
  (float64, rounded once) and Lion's momentum update; optionally the next
  step's ``z`` drawn into the buffer on the way.  :class:`EnimStep` prepares
  the two passes once for many steps; its :meth:`EnimStep.step` makes both
  in one launch with the turn's coefficients between them
  (:func:`turn_coefficients` of the exact sums of the rows, :func:`exact_sum`,
  the numbers of :func:`math.fsum`).
- :func:`c_sums`, :func:`fill_normals`, :func:`normal_sums`: the norms of
  arrays; Gaussian coordinates of the package's stream into arrays, or only
  their sums (Enim's ``"lni"`` angle).

Each takes a :class:`Arrays` (one launch over many arrays: their addresses,
lengths and dtype, made by :func:`arrays_of` from numpy arrays or by the
optimizers from tensors) or plain 1-D numpy arrays (one array each).  Sums
come back per array, as rows of the columns :data:`SUMS`.

Fixed reduction order (what makes every sum independent of the number of
threads and of which arrays share a launch): each array is cut into chunks of
:data:`CHUNK`, chunks into tiles of :data:`TILE`; a tile's values are formed
in float64 and summed by the lane kernels of :mod:`lni_geometry.kernels` (16
float64 lanes and a fixed pairwise fold, whatever the instruction set; the
values pass through a small float64 buffer where counts are made on the way,
counts being integer sums, exact in any order, and are read straight from the
arrays otherwise: the same bits); tile sums are added in tile order, an
array's chunk sums in chunk order.  Launches over fewer than
:data:`PARALLEL_MIN` entries in all run on the calling thread, in the same
order.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import njit

from .elementary import fma
from .kernels import add_rows_in_order, chunk_sums_of_sample, n_chunks
from .models import GAUSSIAN_ID
from .optim_loops import TILE  # noqa: F401 - the tile size, documented with the reduction order above
from .optim_loops import (_draw_kernel, _enim_step_kernel, _finite_kernel, _fold_rows, _lion_checked_kernel,
                          _lion_kernel, _lion_telemetry_kernel, _norm_kernel, _normals_kernel, _sums_kernel,
                          _update_kernel, exact_sum, turn_coefficients)

__all__ = [
    "SUMS",
    "Arrays",
    "arrays_of",
    "c_sums",
    "enim_draw",
    "enim_update",
    "exact_sum",
    "fill_normals",
    "finite",
    "EnimStep",
    "LionStep",
    "NormalsFill",
    "lion_step_many",
    "lion_update",
    "momentum_sums",
    "normal_sums",
    "torch_uses_fma",
    "turn_coefficients",
    "warm_up",
]

CHUNK = 1 << 15  # entries per chunk: the optimizers' unit of parallel work (the sampler's is kernels.CHUNK)
#: Launches over fewer entries than this (all arrays together), or of one chunk, run on
#: the calling thread: waking the thread pool costs more than it saves there.  Above it
#: two threads pay even on a model of 2.4e5 parameters right after a backward pass
#: (``lni-geometry bench --torch``: its Lion step 0.46 ms at 2**14, 0.61 ms at 2**20).
#: The serial and parallel loops sum the same chunks in the same order: the same bits.
PARALLEL_MIN = 1 << 14

#: The sums the kernels return, in order (a row per array):
#: ``l1 = ||c||_1``, ``l2sq = ||c||_2^2``, ``nnz = nnz(c)``, ``zero_grad = #{g = 0}``,
#: ``tracing = #{g = 0, m != 0}``, ``revived = #{g != 0, |m| < threshold}``,
#: ``cz = c . z``, ``zz = z . z``.
SUMS = ("l1", "l2sq", "nnz", "zero_grad", "tracing", "revived", "cz", "zz")
_WIDTH = len(SUMS)
_COUNTS = (2, 3, 4, 5)  # exact integers (float64 sums of integers below 2**53)


# --- arrays by address ---------------------------------------------------------------


class Arrays(NamedTuple):
    """Arrays of one launch, by address: what a multi-tensor kernel reads and writes.

    Attributes
    ----------
    address : ndarray of int64, shape (arrays, roles)
        ``address[i, r]``: the first entry of array ``i`` in role ``r`` (the
        roles of a kernel, e.g. ``(p, m, g)``; 0 for an array of no entries).
    dtype : numpy dtype
        The dtype of every array but ``z`` (float32 or float64).
    z_dtype : numpy dtype
        The dtype of the ``z`` role (Enim's Gaussian).
    layout : Layout
        Lengths and work items (:func:`layout`).
    keep : tuple
        The objects owning the memory, kept alive for the launch.
    """

    address: np.ndarray
    dtype: np.dtype
    z_dtype: np.dtype
    layout: "Layout"
    keep: tuple = ()


class Layout(NamedTuple):
    """Lengths of the arrays of a launch and its work items.

    ``items[k] = (array, first, end)``: the chunks of :data:`CHUNK` entries
    of every array, in array then chunk order; ``total``: the entries of all;
    ``runs``: boundaries ``0 = b_0 <= b_1 <= ... <= b_T = len(items)`` cutting
    the items into ``T`` runs of about ``total / T`` entries each (:func:`_runs`;
    ``T`` the size of numba's thread pool, ``NUMBA_NUM_THREADS``: with fewer
    threads set by ``numba.set_num_threads``, a thread takes several runs).
    """

    sizes: np.ndarray
    items: np.ndarray
    total: int
    runs: np.ndarray

    @property
    def parallel(self):
        """Whether a launch runs on the thread pool (at least :data:`PARALLEL_MIN` entries, two chunks)."""
        return self.total >= PARALLEL_MIN and len(self.items) > 1

    @property
    def parts(self):
        """What a launch takes: :attr:`runs` on the thread pool (one run per thread of the pool, so
        that the threads get equal work where items differ in size), or no runs (in order, on the
        calling thread) unless :attr:`parallel`."""
        return self.runs if self.parallel else _NO_RUNS


_NO_RUNS = np.zeros(0, dtype=np.int64)


@functools.lru_cache(maxsize=512)
def layout(sizes):
    """The :class:`Layout` of arrays of lengths ``sizes`` (a tuple of ints), cached."""
    items = [(i, lo, min(n, lo + CHUNK)) for i, n in enumerate(sizes) for lo in range(0, n, CHUNK)]
    items = np.array(items, dtype=np.int64).reshape(-1, 3)
    total = sum(sizes)
    return Layout(np.array(sizes, dtype=np.int64), items, total, _runs(items, numba.config.NUMBA_NUM_THREADS))


def _runs(items, threads):
    """Boundaries cutting ``items`` into ``threads`` runs in order, run ``q`` ending at the first item
    whose end reaches ``(q + 1) / threads`` of all entries (so each run is within one item of its share)."""
    threads = max(1, threads)
    ends = np.cumsum(items[:, 2] - items[:, 1])
    total = ends[-1] if len(ends) else 0
    cuts = np.searchsorted(ends, [total * q / threads for q in range(1, threads)], side="left") + 1
    return np.concatenate([[0], np.minimum(cuts, len(items)), [len(items)]]).astype(np.int64)


def _check(name, x):
    if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a 1-D float32 or float64 numpy array, got {type(x).__name__}"
                        f" {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be contiguous")
    return x


def arrays_of(**roles):
    """An :class:`Arrays` of one array per role, from 1-D contiguous numpy arrays.

    Every role but ``z`` must share one dtype (float32 or float64); all one length.

    Examples
    --------
    >>> import numpy as np
    >>> a = arrays_of(m=np.zeros(3, np.float32), g=np.ones(3, np.float32))
    >>> a.address.shape, a.dtype, a.layout.sizes.tolist()
    ((1, 2), dtype('float32'), [3])
    """
    arrays = {k: _check(k, v) for k, v in roles.items()}
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the arrays must have one length, got {lengths}")
    dtypes = {k: str(v.dtype) for k, v in arrays.items() if k != "z"}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"the arrays must have one dtype, got {dtypes}")
    first = next((v for k, v in arrays.items() if k != "z"), arrays.get("z"))
    z = arrays.get("z", first)
    address = np.array([[v.ctypes.data for v in arrays.values()]], dtype=np.int64)
    return Arrays(address, first.dtype, z.dtype, layout((first.shape[0],)), tuple(arrays.values()))


def _like(dtype):
    return np.empty(0, dtype)


def _fold(out, items, count):
    """Per array, its chunk rows added in chunk order (from 0): the module's fixed order."""
    total = np.zeros((count, out.shape[1]))
    _fold_rows(out, items, total)
    return total


def _rows(total):
    """Rows of sums as tuples of Python numbers (the counts as ints)."""
    return [tuple(int(v) if i in _COUNTS else float(v) for i, v in enumerate(row)) for row in total]


def _columns(dtype, *columns):
    """The constants of a launch: one row per array, ``columns`` (numbers or one per array)
    rounded to ``dtype`` (from float64: one rounding each)."""
    out = np.empty((len(columns), len(columns[0])))
    for r, x in enumerate(columns):
        out[r] = x
    return np.ascontiguousarray(out.T, dtype=dtype)


def _per_array(values, count, dtype=np.float64):
    """A per-array array from a scalar or a sequence (``count`` entries); a contiguous array already
    of that dtype and length is taken as it is (the launches only read it)."""
    if (isinstance(values, np.ndarray) and values.dtype == dtype and values.shape == (count,)
            and values.flags.c_contiguous):  # a strided view would make numba compile another kernel
        return values
    out = np.empty(count, dtype=dtype)
    out[:] = values
    return out


# --- the Python functions: over an Arrays (one launch), or over single numpy arrays ----


def _roles(a, count):
    if not isinstance(a, Arrays) or a.address.ndim != 2 or a.address.shape[1] < count:
        raise TypeError(f"expected an Arrays with {count} roles, got {type(a).__name__}")
    return a.layout


def _out(lay):
    return np.zeros((lay.items.shape[0], _WIDTH))


def _threshold(dtype, threshold):
    """Per entry, the smallest ``dtype`` value ``t >= threshold``: for ``x`` of that dtype,
    ``x < t`` iff ``x < threshold`` (nan stays nan)."""
    thr = np.asarray(threshold, dtype=np.float64)
    t = thr.astype(dtype)
    if dtype == np.float64 or not thr.any():
        return t
    low = t.astype(np.float64) < thr
    t[low] = np.nextafter(t[low], np.dtype(dtype).type(np.inf))
    return t


def _key(key):
    k0, k1 = (int(k) for k in key)
    if not (0 <= k0 < 2**32 and 0 <= k1 < 2**32):
        raise ValueError(f"key must be two integers in [0, 2**32), got {tuple(key)!r}")
    return np.uint32(k0), np.uint32(k1)  # numpy's scalars (numba's uint32() costs microseconds a call)


def _samples(samples, count):
    s = _per_array(np.arange(count) if samples is None else samples, count, np.int64)
    if count and (s.min() < 0 or s.max() >= 2**48):
        raise ValueError(f"sample indices must be in [0, 2**48), got {s.min()} .. {s.max()}")
    return s


def c_sums_many(a):
    """``(||c||_1, ||c||_2^2, nnz(c))`` of each array of ``a`` (role ``c``), in float64.

    Returns
    -------
    ndarray, shape (arrays, 3)
    """
    lay = _roles(a, 1)
    out = _out(lay)
    _norm_kernel(a.address, lay.sizes, lay.items, lay.parts, _like(a.dtype), out)
    return _fold(out, lay.items, len(lay.sizes))[:, :3]


def finite_many(a):
    """How many entries of each ``m`` and ``g`` of ``a`` (roles ``m, g``) are not finite.

    Returns
    -------
    ndarray of int64, shape (arrays, 2)
        Per array, the counts of inf and nan entries of ``m`` and of ``g``.
    """
    lay = _roles(a, 2)
    out = _out(lay)
    big = np.array([np.finfo(a.dtype).max], dtype=a.dtype)
    _finite_kernel(a.address, lay.sizes, lay.items, lay.parts, big, out)
    return _fold(out, lay.items, len(lay.sizes))[:, :2].astype(np.int64)


def momentum_sums_many(a, beta1, threshold=0.0, *, rounded=False, counts=True):
    """:func:`momentum_sums` of every array of ``a`` (roles ``m, g`` and optionally ``z``) in one launch.

    ``beta1`` and ``threshold``: a number or one per array.

    Returns
    -------
    ndarray, shape (arrays, 8)
        Rows of :data:`SUMS` (``cz``, ``zz`` are 0 without ``z``).
    """
    lay = _roles(a, 2)
    count = len(lay.sizes)
    b1 = _per_array(beta1, count)
    consts = _columns(a.dtype, b1, 1.0 - b1, _threshold(a.dtype, _per_array(threshold, count)))
    out = _out(lay)
    _sums_kernel(a.address, lay.sizes, lay.items, lay.parts, _like(a.z_dtype), a.address.shape[1] > 2, b1,
                 consts, bool(rounded), bool(counts), out)
    return _fold(out, lay.items, count)


def lion_update_many(a, beta1, beta2, lr, weight_decay, threshold=None):
    """:func:`lion_update` of every array of ``a`` (roles ``p, m, g``) in one launch.

    The hyperparameters: a number or one per array.  With ``threshold`` (a
    number or one per array), the same pass makes the telemetry's counts of
    :func:`momentum_sums` from the ``m`` and ``g`` it reads before writing:
    ``zero_grad`` (``g = 0``), ``tracing`` (``g = 0``, ``m != 0``) and
    ``revived`` (``g != 0``, ``|m| < threshold``, compared exactly).

    Returns
    -------
    None, or ndarray of int64, shape (arrays, 3)
        The counts ``(zero_grad, tracing, revived)``, where ``threshold`` is given.
    """
    lay = _roles(a, 3)
    count = len(lay.sizes)
    b1, b2, lr, wd = (_per_array(x, count) for x in (beta1, beta2, lr, weight_decay))
    consts = _columns(a.dtype, b1, 1.0 - b1, b2, 1.0 - b2, -lr, 1.0 - lr * wd, 1.0,
                      0.0 if threshold is None else _threshold(a.dtype, _per_array(threshold, count)))
    out = np.zeros((lay.items.shape[0], 3))
    _lion_kernel(a.address, lay.sizes, lay.items, lay.parts, consts, threshold is not None, out)
    if threshold is not None:
        return _fold(out, lay.items, count)[:, :3].astype(np.int64)
    return None


def lion_step_many(a, beta1, beta2, lr, weight_decay, groups=None, fraction=0.0):
    """Lion's whole step over every array of ``a`` (roles ``p, m, g``) in one launch, checked
    before anything is written.

    The first pass reads ``m`` and ``g``: without ``groups``, the counts of
    :func:`finite_many`; with ``groups`` (the telemetry: each array's group,
    integers from 0), the sums of :func:`momentum_sums_many` without the
    counts, with ``c`` formed as Lion's step forms it and ``z = m`` (so
    ``cz = c . m`` and ``zz = ||m||_2^2``).  If an entry of some ``m`` or
    ``g`` is not finite (``c`` is not), nothing is written.  Otherwise the
    second pass is :func:`lion_update_many`'s step, with ``groups`` making
    its counts, the revived against ``fraction`` times the RMS of the
    momenta of each array's group (before the step; 0 for a group of no
    entries).  The same numbers as those functions called in turn, in one
    launch.  :class:`LionStep` prepares it once for many steps.

    Returns
    -------
    written : bool
        False where some ``c`` is not finite (the arrays are untouched).
    rows : ndarray, shape (arrays, 8)
        Without ``groups``: columns 0 and 1, the non-finite counts of ``m``
        and ``g``.  With ``groups``: rows of :data:`SUMS`, the counts
        (columns 3 to 5) made by the update (0 when nothing was written).
    """
    return LionStep(a, beta1, beta2, lr, weight_decay, groups, fraction)(a.address[:, 2])


class LionStep:
    """:func:`lion_step_many` prepared once, for steps that differ only in the gradients.

    Built from an :class:`Arrays` (roles ``p, m, g``) and the settings; keeps
    the weights' and momenta's addresses (not the arrays: their owner keeps
    them alive), the constants in the arrays' dtype and the buffers of the
    sums.  Calling it with the gradients' addresses launches the step.
    """

    def __init__(self, a, beta1, beta2, lr, weight_decay, groups=None, fraction=0.0):
        lay = _roles(a, 3)
        count = len(lay.sizes)
        b1, b2, lr, wd = (_per_array(x, count) for x in (beta1, beta2, lr, weight_decay))
        group = _per_array(0 if groups is None else groups, count, np.int64)
        if count and group.min() < 0:
            raise ValueError(f"groups must be integers >= 0, got {group.min()}")
        self._layout, self._beta1, self._groups, self._fraction = lay, b1.copy(), group.copy(), float(fraction)
        self._telemetry = groups is not None
        self._consts = _columns(a.dtype, b1, 1.0 - b1, b2, 1.0 - b2, -lr, 1.0 - lr * wd, 1.0, 0.0)
        self._sums_consts = _columns(a.dtype, b1, 1.0 - b1, 0.0)
        self._address = np.empty((count, 4), dtype=np.int64)  # p, m, g, and m again (the sums' z)
        self._address[:, :3] = a.address[:, :3]
        self._address[:, 3] = a.address[:, 1]
        self._big = np.array([np.finfo(a.dtype).max], dtype=a.dtype)
        self._out, self._rows = _out(lay), np.zeros((count, _WIDTH))

    def __call__(self, grads):
        """Launch the step with ``grads``, the gradients' addresses (one per array): ``(written, rows)``
        as :func:`lion_step_many` returns them."""
        self._address[:, 2] = grads
        lay = self._layout
        if self._telemetry:  # two kernels: a first step compiles only the one it runs
            written = _lion_telemetry_kernel(self._address, lay.sizes, lay.items, lay.parts, self._beta1,
                                             self._sums_consts, self._consts, self._big, self._groups,
                                             self._fraction, self._out, self._rows)
        else:
            written = _lion_checked_kernel(self._address, lay.sizes, lay.items, lay.parts, self._consts,
                                           self._big, self._out, self._rows)
        return bool(written), self._rows.copy()


class EnimStep:
    """Enim's launches over a fixed set of arrays, prepared once for steps that differ only in
    the gradients, the coefficients (or the turn) and the key.

    Built from an :class:`Arrays` (roles ``p, m, g, z``) and the settings;
    keeps the addresses of the weights, momenta and ``z`` (not the arrays:
    their owner keeps them alive), the constants and the buffers of the
    sums.  :meth:`sums` is :func:`momentum_sums_many` over ``(m, g, z)`` (the
    same numbers); :func:`enim_update_many` is one :meth:`update` of a new one;
    :meth:`step` is both with the coefficients between them, in one launch.
    """

    def __init__(self, a, beta1, beta2, lr, weight_decay, samples=None):
        lay = _roles(a, 4)
        count = len(lay.sizes)
        b1, b2, lr, wd = (_per_array(x, count) for x in (beta1, beta2, lr, weight_decay))
        self._layout, self._dtype, self._like = lay, a.dtype, _like(a.z_dtype)
        self._address = np.array(a.address[:, :4], dtype=np.int64)  # p, m, g, z
        self._sums_address = np.array(a.address[:, 1:4], dtype=np.int64)  # m, g, z
        self._beta1 = b1.copy()
        self._sums_consts = _columns(a.dtype, b1, 1.0 - b1, 0.0)
        self._coef = _columns(np.float64, b1, 0.0, 0.0, lr, 1.0 - lr * wd)  # alpha, beta set by each update
        self._consts = _columns(a.dtype, b2, 1.0 - b2)
        self._samples = _samples(samples, count).copy()
        self._out = _out(lay)
        self._rows = np.zeros((count, _WIDTH))
        self._turn = np.zeros(2)

    def sums(self, grads, threshold=None):
        """:func:`momentum_sums_many` over ``(m, g, z)`` with the gradients' addresses ``grads``;
        the counts only where ``threshold`` (a number or one per array) is given."""
        lay = self._layout
        self._sums_address[:, 1] = grads
        self._sums_consts[:, 2] = 0.0 if threshold is None else _threshold(
            self._dtype, _per_array(threshold, len(lay.sizes)))
        self._out[:] = 0.0
        _sums_kernel(self._sums_address, lay.sizes, lay.items, lay.parts, self._like, True, self._beta1,
                     self._sums_consts, False, threshold is not None, self._out)
        return _fold(self._out, lay.items, len(lay.sizes))

    def update(self, grads, alpha, beta, next_key=None):
        """:func:`enim_update_many` with the gradients' addresses ``grads`` and the coefficients
        ``alpha``, ``beta`` (numbers or one per array); with ``next_key``, the next ``z``."""
        lay = self._layout
        self._address[:, 2] = grads
        self._coef[:, 1] = alpha
        self._coef[:, 2] = beta
        draw = next_key is not None
        k0, k1 = _key(next_key if draw else (0, 0))
        _update_kernel(self._address, lay.sizes, lay.items, lay.parts, self._like, self._coef, self._consts,
                       draw, k0, k1, self._samples)

    def step(self, grads, angle, next_key):
        """One turn by ``angle`` (radians) of every entry together, in one launch: :meth:`sums`
        (without counts), the coefficients of :func:`turn_coefficients` from the exact sums of
        the rows (:func:`exact_sum`, as :func:`math.fsum`), then :meth:`update` drawing the next
        ``z`` from ``next_key``: the numbers of those calls.

        Returns
        -------
        int
            0: stepped; 1: some ``c`` is not finite; 2: the coefficients
            are not to be had in the launch (``z`` almost parallel to ``c``,
            an overflow of the sums, a single entry).  Unless 0, nothing is
            written (the caller takes the slower road, which finds why).
        """
        lay = self._layout
        self._sums_address[:, 1] = grads
        self._address[:, 2] = grads
        self._sums_consts[:, 2] = 0.0
        self._turn[0], self._turn[1] = math.cos(angle), math.sin(angle)
        k0, k1 = _key(next_key)
        return int(_enim_step_kernel(self._sums_address, self._address, lay.sizes, lay.items, lay.parts,
                                     self._like, self._beta1, self._sums_consts, self._coef, self._consts,
                                     self._turn, k0, k1, self._samples, self._out, self._rows))


def enim_draw_many(a, beta1, key, samples=None, threshold=None):
    """:func:`enim_draw` of every array of ``a`` (roles ``z, m, g``) in one launch.

    Array ``i``'s ``z`` is Gaussian sample ``samples[i]`` (default ``i``) under ``key``.

    Returns
    -------
    ndarray, shape (arrays, 8)
    """
    lay = _roles(a, 3)
    count = len(lay.sizes)
    k0, k1 = _key(key)
    b1 = _per_array(beta1, count)
    consts = _columns(a.dtype, b1, _threshold(a.dtype, _per_array(0.0 if threshold is None else threshold, count)))
    out = _out(lay)
    _draw_kernel(a.address, lay.sizes, lay.items, lay.parts, _like(a.z_dtype), k0, k1, _samples(samples, count),
                 b1, consts, threshold is not None, out)
    return _fold(out, lay.items, count)


def enim_update_many(a, beta1, beta2, alpha, beta, lr, weight_decay, next_key=None, samples=None):
    """:func:`enim_update` of every array of ``a`` (roles ``p, m, g, z``) in one launch.

    The coefficients: a number or one per array; with ``next_key``, array
    ``i``'s ``z`` becomes Gaussian sample ``samples[i]`` (default ``i``) of it.
    """
    EnimStep(a, beta1, beta2, lr, weight_decay, samples).update(a.address[:, 2], alpha, beta, next_key)


class NormalsFill:
    """:func:`fill_normals_many` prepared once for fills that differ only in the key.

    Built from an :class:`Arrays` (role ``z``) and the samples and starts;
    keeps the addresses (not the arrays: their owner keeps them alive).
    Calling it with a key launches the kernel, nothing else.
    """

    def __init__(self, a, samples=None, starts=None):
        lay = _roles(a, 1)
        count = len(lay.sizes)
        first = _per_array(0 if starts is None else starts, count, np.int64).copy()
        if count and (first.min() < 0 or (first + lay.sizes).max() > 2**62):
            raise ValueError(f"coordinates must be in [0, 2**62), got starts {first.min()} .. {first.max()}")
        self._layout, self._like, self._starts = lay, _like(a.z_dtype), first
        self._address = np.array(a.address[:, :1], dtype=np.int64)
        self._samples = _samples(samples, count).copy()

    def __call__(self, key):
        """Fill every array with the normals of ``key`` (two integers in ``[0, 2**32)``)."""
        lay = self._layout
        k0, k1 = _key(key)
        _normals_kernel(self._address, lay.sizes, lay.items, lay.parts, self._like, k0, k1, self._samples,
                        self._starts)


def fill_normals_many(a, key, samples=None, starts=None):
    """:func:`fill_normals` of every array of ``a`` (role ``z``): array ``i`` gets coordinates
    ``starts[i] ..`` (default 0) of sample ``samples[i]`` (default ``i``); one call of a new
    :class:`NormalsFill`."""
    NormalsFill(a, samples, starts)(key)


def c_sums(c):
    """``(||c||_1, ||c||_2^2, nnz(c))`` accumulated in float64, in the fixed order of the module.

    Parameters
    ----------
    c : ndarray
        1-D contiguous float32 or float64.

    Returns
    -------
    tuple
        ``(float, float, int)``.

    Examples
    --------
    >>> import numpy as np
    >>> c_sums(np.array([3.0, 0.0, -4.0], dtype=np.float32))
    (7.0, 25.0, 2)
    """
    return _rows(c_sums_many(arrays_of(c=c)))[0]


def finite(m, g):
    """Whether every entry of ``m`` and of ``g`` is finite (no inf, no nan).

    Examples
    --------
    >>> import numpy as np
    >>> finite(np.ones(3), np.array([0.0, np.nan, 1.0]))
    False
    """
    return not finite_many(arrays_of(m=m, g=g)).any()


def momentum_sums(m, g, beta1, threshold=0.0, z=None, *, rounded=False, counts=True):
    """One pass over ``(m, g[, z])`` with ``c = beta1 m + (1 - beta1) g`` formed in float64 (or as Lion's step).

    What the telemetry of a step needs (before the momentum update), and for
    Enim the sums against its Gaussian ``z``.  A non-finite entry of ``m``
    or ``g`` makes ``||c||_1`` non-finite.

    Parameters
    ----------
    m, g : ndarray
        Momentum (before the step) and gradient, one dtype (float32 or float64).
    beta1 : float
        Lion's interpolation coefficient, in ``[0, 1)``.
    threshold : float
        A coordinate is *revived* when ``g != 0`` and ``|m| < threshold``
        (compared exactly, whatever the dtype).
    z : ndarray, optional
        Enim's Gaussian, same length (float32 or float64).
    rounded : bool
        Form ``c`` as :func:`lion_update` does, ``fma(g, T(1 - beta1), m * T(beta1))``
        in the arrays' dtype ``T`` (the ``c`` whose sign Lion takes), not in float64.
    counts : bool
        False: skip the counts of ``g`` and ``m`` (returned as 0; ``nnz(c)`` is kept).

    Returns
    -------
    tuple
        ``(||c||_1, ||c||_2^2, nnz(c), #{g = 0}, #{g = 0, m != 0},
        #{g != 0, |m| < threshold})``, then ``(c . z, z . z)`` when ``z`` is given.

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda *x: np.array(x, dtype=np.float32)
    >>> momentum_sums(f(0, 2, 0), f(1, 0, 0), 0.5, threshold=0.1)
    (1.5, 1.25, 2, 2, 1, 1)
    >>> momentum_sums(f(0, 2, 0), f(1, 0, 0), 0.5, z=f(1, 1, 1))[6:]
    (1.5, 3.0)
    """
    a = arrays_of(m=m, g=g) if z is None else arrays_of(m=m, g=g, z=z)
    out = _rows(momentum_sums_many(a, beta1, threshold, rounded=rounded, counts=counts))[0]
    return out[:6] if z is None else out


def torch_uses_fma(dtype):
    """Whether torch's ``a.add(b, alpha=w)`` rounds ``a + w b`` once (an FMA) for CPU tensors of ``dtype``.

    :func:`lion_update` reproduces torch's Lion operations bit for bit only if
    so (true where torch runs its AVX2 or AVX-512 kernels); the optimizers
    check once per dtype and otherwise step with torch's operations.  The
    probe: 4096 random pairs, among which one and two roundings differ in
    about one in ten.

    Parameters
    ----------
    dtype : numpy.float32 or numpy.float64

    Returns
    -------
    bool
    """
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal(4096).astype(dtype)
    b = rng.standard_normal(4096).astype(dtype)
    w = dtype(0.1)
    got = torch.from_numpy(a).add(torch.from_numpy(b), alpha=float(w)).numpy()
    return bool(np.array_equal(got, _fma_probe(a, b, w)))


@njit(cache=True, error_model="numpy")
def _fma_probe(a, b, w):
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        out[i] = fma(b[i], w, a[i])
    return out


def lion_update(p, m, g, beta1, beta2, lr, weight_decay):
    """Lion's step in place, in one pass: torch's operations bit for bit.

    In ``p``'s dtype ``T`` (float32 or float64; ``p``, ``m``, ``g`` alike),
    with ``T(x)`` the rounding of a constant to it, as torch's scalar
    operations round them::

        c = fma(g, T(1 - beta1), m * T(beta1))
        p <- fma(sign(c), T(-lr), p * T(1 - lr * weight_decay))     # sign(0) = sign(nan) = 0
        m <- fma(g, T(1 - beta2), m * T(beta2))

    which is what ``m.mul(beta1).add_(g, alpha=1 - beta1).sign_()``,
    ``p.mul_(1 - lr wd).add_(c, alpha=-lr)`` and
    ``m.mul_(beta2).add_(g, alpha=1 - beta2)`` compute where
    :func:`torch_uses_fma` holds.

    Parameters
    ----------
    p, m, g : ndarray
        Weights and momentum (both updated in place), gradient.
    beta1, beta2 : float
        Lion's interpolation and momentum coefficients, in ``[0, 1)``.
    lr, weight_decay : float
        Learning rate ``> 0`` and decoupled weight decay ``>= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> p, m = np.ones(3, np.float32), np.zeros(3, np.float32)
    >>> lion_update(p, m, np.array([0.5, -2.0, 0.0], np.float32), 0.9, 0.99, 0.1, 0.0)
    >>> p
    array([0.9, 1.1, 1. ], dtype=float32)
    """
    lion_update_many(arrays_of(p=p, m=m, g=g), beta1, beta2, lr, weight_decay)


def enim_draw(z, m, g, beta1, key, sample, threshold=None):
    """Enim's first pass: ``z`` <- Gaussian sample ``sample`` under ``key``; the sums of ``c`` and ``z``.

    ``z[i]`` is coordinate ``i`` of the sample, as :func:`fill_normals` draws
    it, rounded to ``z``'s dtype; the sums (those of :func:`momentum_sums`
    with ``z``, the same bits) are of the stored values.

    Parameters
    ----------
    z : ndarray
        The buffer to fill (float32 or float64).
    m, g : ndarray
        Momentum and gradient, one dtype; ``c = beta1 m + (1 - beta1) g`` in float64.
    beta1 : float
        Lion's interpolation coefficient.
    key : sequence of two ints in ``[0, 2**32)``
        The Philox key of the draw.
    sample : int
        The sample index, ``0 <= sample < 2**48``.
    threshold : float or None
        With a number, the counts of :func:`momentum_sums` too (the
        telemetry); without, they are returned as 0.

    Returns
    -------
    tuple
        The 8 sums of :data:`SUMS`.
    """
    return _rows(enim_draw_many(arrays_of(z=z, m=m, g=g), beta1, key, [sample], threshold))[0]


def enim_update(p, m, g, z, beta1, beta2, alpha, beta, lr, weight_decay, next_key=None, sample=0):
    """Enim's second pass, in place: the weights by ``u = alpha c + beta z``, Lion's momentum update,
    and optionally the next step's ``z``.

    ``p <- (1 - lr wd) p - lr (alpha c + beta z)`` with ``c = beta1 m + (1 - beta1) g``,
    computed in float64 per entry and stored in ``p``'s dtype; ``m`` as in
    :func:`lion_update` (so that Enim and Lion carry the same momentum on the
    same gradients).  With ``next_key``, each tile of ``z`` is then
    overwritten by Gaussian sample ``sample`` under that key (the numbers of
    :func:`fill_normals`), while the tile is in cache: the next first pass
    then only reads ``z``.

    Parameters
    ----------
    p : ndarray
        Weights, updated in place (the dtype of ``m`` and ``g``).
    m, g : ndarray
        Momentum (updated in place) and gradient, one dtype (float32 or float64).
    z : ndarray
        Enim's Gaussian (float32 or float64; overwritten with ``next_key``).
    beta1, beta2 : float
        Lion's coefficients.
    alpha, beta : float
        The coefficients of ``u`` (see :class:`lni_geometry.torch.Enim`).
    lr, weight_decay : float
        Learning rate and decoupled weight decay.
    next_key : sequence of two ints, optional
        The Philox key of the next step's ``z``.
    sample : int
        Its sample index.

    Examples
    --------
    >>> import numpy as np
    >>> p, m = np.ones(2), np.zeros(2)
    >>> enim_update(p, m, np.array([2.0, 4.0]), np.array([1.0, -1.0]), 0.5, 0.9, 1.0, 2.0, 0.1, 1.0)
    >>> p, m
    (array([0.6, 0.9]), array([0.2, 0.4]))
    """
    enim_update_many(arrays_of(p=p, m=m, g=g, z=z), beta1, beta2, alpha, beta, lr, weight_decay, next_key, [sample])


def fill_normals(out, key, sample=0, start=0):
    """Fill ``out`` with coordinates ``start .. start + len(out) - 1`` of a Gaussian sample of the package's stream.

    ``out[i]`` is coordinate ``start + i`` of sample ``sample`` of the
    :class:`~lni_geometry.models.Gaussian` model under the Philox ``key``
    (rounded to ``out``'s dtype): the numbers of
    :func:`lni_geometry.sample_vectors` for that key.  Standard normals with
    ``|z| <= MAX_NORMAL = 6.7637`` (:mod:`lni_geometry.rng`).

    Parameters
    ----------
    out : ndarray
        1-D contiguous float32 or float64, filled in place.
    key : sequence of two ints in ``[0, 2**32)``
    sample : int
        The sample index, ``0 <= sample < 2**48``.
    start : int
        The first coordinate (any integer ``>= 0``: a shard of a tensor draws
        the coordinates of its place in the whole tensor).

    Examples
    --------
    >>> import numpy as np
    >>> from lni_geometry.backends import cpu
    >>> from lni_geometry.models import Gaussian
    >>> z = np.empty(5)
    >>> fill_normals(z, (7, 9))
    >>> bool(np.array_equal(z, cpu.sample_coords(np.array([7, 9], np.uint32), Gaussian(), 5, 0, 1)[0]))
    True
    """
    fill_normals_many(arrays_of(z=out), key, [sample], [start])


def normal_sums(n, key, sample=0):
    """``(sum |z_i|, sum z_i^2)`` over coordinates ``0 .. n - 1`` of a Gaussian sample, never stored.

    The sampler's fused kernel (:func:`lni_geometry.kernels.chunk_sums_of_sample`,
    in its own chunk order): the sums behind :func:`lni_geometry.sample_angles`
    for that key and sample (summing :func:`fill_normals`' output in this
    module's order gives the same values up to the last bits).

    Parameters
    ----------
    n : int
        The dimension, ``>= 1``.
    key : sequence of two ints in ``[0, 2**32)``
    sample : int
        The sample index.

    Returns
    -------
    tuple of float
        ``(||z||_1, ||z||_2^2)``.
    """
    k0, k1 = _key(key)
    chunks = n_chunks(n)
    out = np.empty((chunks, 3))
    chunk_sums_of_sample(GAUSSIAN_ID, 0.0, 0.0, k0, k1, np.int64(sample), np.int64(n), np.int64(0),
                         np.int64(chunks), out)
    l1, l2sq, _ = add_rows_in_order(out)
    return float(l1), float(l2sq)


def warm_up(dtypes=(np.float32, np.float64)):
    """Compile every kernel of this module for ``dtypes`` now (``lni-geometry warmup``).

    numba compiles a kernel on its first call and keeps it in its on-disk
    cache; an optimizer's first step on an empty cache therefore takes
    seconds per code path.  Calling this once after installing moves that
    cost ahead of training.

    Parameters
    ----------
    dtypes : sequence of numpy dtypes
        The dtypes of the parameters to compile for (float32, float64).

    Returns
    -------
    int
        The number of kernel launches made (each compiles on first use).
    """
    launches = 0
    for dtype in dtypes:
        p, m, g, z = (np.zeros(3, dtype) for _ in range(4))
        c_sums(m)
        finite(m, g)
        momentum_sums(m, g, 0.9, 0.1, rounded=True)
        momentum_sums(m, g, 0.9, 0.1, z)
        lion_update(p, m, g, 0.9, 0.99, 0.1, 0.0)
        lion_step_many(arrays_of(p=p, m=m, g=g), 0.9, 0.99, 0.1, 0.0)
        lion_step_many(arrays_of(p=p, m=m, g=g), 0.9, 0.99, 0.1, 0.0, groups=[0], fraction=1e-3)
        enim_draw(z, m, g, 0.9, (0, 0), 0, threshold=0.1)
        enim_update(p, m, g, z, 0.9, 0.99, 0.0, 0.0, 0.1, 0.0, next_key=(0, 0))
        fill_normals(z, (0, 0))
        EnimStep(arrays_of(p=p, m=m, g=g, z=z), 0.9, 0.99, 0.1, 0.0).step(np.array([g.ctypes.data]), 0.5, (0, 0))
        launches += 11
    normal_sums(3, (0, 0))
    exact_sum(np.zeros(3))
    turn_coefficients(1.0, 0.0, 1.0, 2, 1.0, 0.0)
    return launches + 3
