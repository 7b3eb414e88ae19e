"""Angles of user arrays: bisector, sign and fixed-axis angles.

For a vector ``v`` in R^n (rows of a 2-D array, or along ``axis``):

- bisector angle: between ``v`` and ``sign(v)/sqrt(n)``, the bisector of the
  hyperoctant holding ``v``: ``cos = ||v||_1 / (sqrt(n) ||v||_2)``;
- sign angle: between ``v`` and ``sign(v)`` with ``sign(0) = 0``:
  ``cos = ||v||_1 / (sqrt(nnz) ||v||_2)``, the angle by which Lion's sign
  rotates an update (Chen et al. 2023; Elistratov et al.);
- fixed-axis angle: between ``v`` and a fixed direction (default
  ``(1, ..., 1)/sqrt(n)``).

and the random maps of the seed paper (S. Elistratov, A. Podivilov, T. Iuzhakov,
D. Vetrov, "Lion's sign noise can make training more stable", NeurIPS 2024 OPT
workshop): :func:`lni` (LNI drawn exactly in O(n)), :func:`lni_haar` (its
O(n^3) definition ``B sign(B^T v)``) and :func:`rotate` (a turn by a fixed
angle towards a uniformly random orthogonal direction).

The angle between unit vectors ``a`` and ``b`` is computed as
``2 atan2(|a - b|, |a + b|)``, accurate to a few ulp at every angle (``arccos``
loses half the digits near 0), after scaling each row by its largest entry, so
entries from ``1e-300`` to ``1e300`` neither overflow nor underflow.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from .validation import ANGLE, check_int

__all__ = [
    "AngleBudget",
    "angle_budget",
    "bisector_angle",
    "sign_angle",
    "fixed_axis_angle",
    "max_bisector_angle",
    "lni",
    "lni_haar",
    "rotate",
]


def _rows(v, axis, name="v"):
    """Move ``axis`` last, check finiteness and non-zero rows, scale each row to max |v| = 1."""
    arr = np.asarray(v)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be a vector or an array of vectors, got a scalar ({arr.item()!r}); "
                         "an angle needs at least one axis")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis {axis} is out of range for {name} with {arr.ndim} dimension(s) "
                         f"(valid: {-arr.ndim} .. {arr.ndim - 1})")
    arr = np.moveaxis(arr.astype(np.float64, copy=False), axis, -1)
    if arr.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one entry along axis {axis}")
    finite = np.isfinite(arr).all(axis=-1)
    if not finite.all():
        if arr.ndim == 1:
            raise ValueError(f"{name} has non-finite entries; it has no angle")
        bad = np.argwhere(~finite)
        raise ValueError(f"{name} has non-finite entries in rows {_row_list(bad)}; they have no angle")
    peak = np.abs(arr).max(axis=-1, keepdims=True)
    zero = peak[..., 0] == 0
    if zero.any():
        if arr.ndim == 1:
            raise ValueError(f"{name} is the zero vector; it has no angle")
        raise ValueError(f"{name} has zero vectors in rows {_row_list(np.argwhere(zero))}; they have no angle")
    return arr / peak


def _row_list(idx, limit=10):
    rows = [tuple(int(i) for i in r) if len(r) > 1 else int(r[0]) if len(r) else () for r in idx]
    text = ", ".join(str(r) for r in rows[:limit])
    return f"[{text}{', ...' if len(rows) > limit else ''}]"


def _angle_between(a, b):
    """Angle between the rows of ``a`` and ``b`` (both non-zero), in [0, pi]."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return 2.0 * np.arctan2(np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1))


def _result(x):
    return float(x) if np.ndim(x) == 0 else x


def bisector_angle(v, axis=-1):
    """Angle between ``v`` and the bisector ``sign(v)/sqrt(n)`` of its hyperoctant.

    ``cos = ||v||_1 / (sqrt(n) ||v||_2)``; the range is
    ``[0, arccos(1/sqrt(n))]`` (0 iff all ``|v_i|`` are equal, the maximum at
    1-sparse vectors).  Zero entries count with ``sign = 0`` in the numerator
    but in ``n`` in the denominator: the bisector is that of the closed
    hyperoctant (compare :func:`sign_angle`).

    Parameters
    ----------
    v : array_like
        A vector, or an array of vectors along ``axis``.
    axis : int, default -1

    Returns
    -------
    float or ndarray of float64
        Radians, one value per vector.

    Raises
    ------
    ValueError
        For a zero vector or a non-finite entry, naming the rows.

    Examples
    --------
    >>> round(bisector_angle([3.0, -3.0, 3.0]), 12)
    0.0
    >>> import numpy as np
    >>> bool(np.isclose(bisector_angle([1.0, 0.0]), np.pi / 4))
    True
    """
    x = _rows(v, axis)
    # A bisector of a hyperoctant holding v: sign(v_i), with +1 for a zero entry
    # (any choice of sign there gives the same angle, since v_i = 0 adds nothing
    # to v . e while |e|**2 = n either way).
    e = np.where(x >= 0, 1.0, -1.0)
    return _result(_angle_between(x, e))


def sign_angle(v, axis=-1):
    """Angle between ``v`` and ``sign(v)`` with ``sign(0) = 0``.

    ``cos = ||v||_1 / (sqrt(nnz) ||v||_2)``: the angle by which Lion's sign
    operation rotates the update (Chen et al. 2023).  Equal to
    :func:`bisector_angle` when ``v`` has no zeros; smaller when it has some
    (dead units: the zeros do not count).

    Examples
    --------
    >>> round(sign_angle([2.0, 0.0, -2.0]), 12)
    0.0
    >>> round(bisector_angle([2.0, 0.0, -2.0]), 6)
    0.61548
    """
    x = _rows(v, axis)
    return _result(_angle_between(x, np.sign(x)))


def fixed_axis_angle(v, direction=None, axis=-1):
    """Angle between ``v`` and a fixed direction (default ``(1, ..., 1)/sqrt(n)``).

    For ``v`` uniform on the sphere the angle has density
    ``sin(a)**(n-2) / B_n`` on ``[0, pi]`` (see :class:`lni_geometry.theory.FixedAxisAngle`).

    Parameters
    ----------
    v : array_like
    direction : array_like, optional
        A non-zero vector of the same length as ``v`` along ``axis``.
    axis : int, default -1

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.isclose(fixed_axis_angle([1.0, 0.0], [0.0, 1.0]), np.pi / 2))
    True
    """
    x = _rows(v, axis)
    n = x.shape[-1]
    if direction is None:
        d = np.ones(n)
    else:
        d = _rows(direction, -1, name="direction")
        if d.ndim != 1 or d.shape[0] != n:
            raise ValueError(f"direction must be a vector of length {n}, got shape {np.shape(direction)}")
    return _result(_angle_between(x, np.broadcast_to(d, x.shape)))


def max_bisector_angle(dim):
    """The largest bisector angle in dimension ``dim``: ``arccos(1/sqrt(dim))``.

    Reached by the 1-sparse vectors (a coordinate axis).

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.isclose(max_bisector_angle(2), np.pi / 4))
    True
    """
    dim = check_int("dim", dim, 1)
    return float(np.arctan(np.sqrt(dim - 1.0)))


# --- the angle budget ------------------------------------------------------------

#: ``sqrt(2/pi)``: ``E|z| / sqrt(E z^2)`` for a Gaussian coordinate.
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class AngleBudget(NamedTuple):
    """The sign angle of a blocked vector and its two factors (see :func:`angle_budget`).

    Angles are in radians.
    """

    angle: float  #: the sign angle, ``arccos(sqrt(2/pi) T H)``
    isotropic: float  #: ``arccos(sqrt(2/pi))``, the large-``n`` angle of an isotropic vector
    T: float  #: tails and shape within blocks
    H: float  #: scale heterogeneity across blocks, ``<= 1``
    angle_tails: float  #: ``arccos(sqrt(2/pi) T)``, the angle with ``H = 1``
    angle_heterogeneity: float  #: ``arccos(sqrt(2/pi) H)``, the angle with ``T = 1``
    n: int  #: coordinates
    nnz: int  #: non-zero coordinates (the ones the budget counts)


def _arccos(x):
    return math.acos(min(1.0, max(-1.0, x)))


def budget_from_block_sums(l1, l2sq, nnz, n=None):
    """The angle budget from per-block sums: ``l1_k = sum|c|``, ``l2sq_k = sum c^2``, ``nnz_k``.

    The sums may be of ``c`` scaled by any common positive factor (the budget
    is scale invariant).  Blocks with ``nnz_k = 0`` carry no weight.  With
    ``W = sum nnz_k``, ``L1 = sum l1_k``, ``L2 = sum l2sq_k`` and
    ``S = sum_k sqrt(nnz_k l2sq_k)`` (``= W sum w_k s_k``):

    ``H = S / sqrt(W L2)``, ``T = L1 / (sqrt(2/pi) S)``,
    ``cos(angle) = L1 / sqrt(W L2) = sqrt(2/pi) T H``.

    This is the computation behind :func:`angle_budget` and the telemetry of
    :mod:`lni_geometry.torch`, which gets the sums from its fused kernels.

    Parameters
    ----------
    l1, l2sq, nnz : array_like, one entry per block
    n : int, optional
        All coordinates, zeros included (default ``sum nnz``).

    Returns
    -------
    AngleBudget
        All angles ``nan`` (and ``T``, ``H`` too) when every block is zero.
    """
    l1 = np.asarray(l1, dtype=np.float64).reshape(-1)
    l2sq = np.asarray(l2sq, dtype=np.float64).reshape(-1)
    nnz = np.asarray(nnz, dtype=np.float64).reshape(-1)
    w_total = float(nnz.sum())
    n = int(w_total) if n is None else int(n)
    iso = _arccos(SQRT_2_OVER_PI)
    if w_total == 0.0:
        nan = math.nan
        return AngleBudget(nan, iso, nan, nan, nan, nan, n, 0)
    big_l1, big_l2 = float(l1.sum()), float(l2sq.sum())
    s = float(np.sqrt(nnz * l2sq).sum())
    h = s / math.sqrt(w_total * big_l2)
    t = big_l1 / (SQRT_2_OVER_PI * s)
    angle = _arccos(big_l1 / math.sqrt(w_total * big_l2))
    return AngleBudget(
        angle=angle,
        isotropic=iso,
        T=t,
        H=h,
        angle_tails=_arccos(SQRT_2_OVER_PI * t),
        angle_heterogeneity=_arccos(SQRT_2_OVER_PI * h),
        n=n,
        nnz=int(w_total),
    )


def _blocks(c, blocks):
    """Return the list of 1-D float64 blocks of ``c`` (see :func:`angle_budget`)."""
    if isinstance(c, (list, tuple)):
        if blocks is not None:
            raise ValueError("give the blocks either as a list c of arrays or as blocks=, not both")
        parts = [np.asarray(b) for b in c]
    else:
        arr = np.asarray(c)
        if arr.ndim != 1:
            raise ValueError(f"c must be a 1-D vector or a list of arrays, got shape {arr.shape}")
        if blocks is None:
            parts = [arr]
        else:
            sizes = []
            for i, b in enumerate(blocks):
                if isinstance(b, numbers.Integral) and not isinstance(b, (bool, np.bool_)):
                    size = int(b)
                else:
                    size = int(np.size(b))
                if size < 0:
                    raise ValueError(f"blocks[{i}] must be a size >= 0, got {size}")
                sizes.append(size)
            if sum(sizes) != arr.shape[0]:
                raise ValueError(
                    f"the block sizes must add up to len(c) = {arr.shape[0]}, got {sum(sizes)} "
                    f"from {len(sizes)} blocks"
                )
            parts = np.split(arr, np.cumsum(sizes)[:-1]) if sizes else []
    out = []
    for i, b in enumerate(parts):
        if b.dtype.kind not in "biuf":
            raise TypeError(f"block {i} must be a real array, got dtype {b.dtype}")
        b = b.astype(np.float64, copy=False).reshape(-1)
        if not np.isfinite(b).all():
            raise ValueError(f"block {i} has non-finite entries; the budget needs finite numbers")
        out.append(b)
    if not out or sum(b.shape[0] for b in out) == 0:
        raise ValueError("c has no entries: the budget needs at least one coordinate")
    return out


def angle_budget(c, blocks=None):
    """Why the sign angle of ``c`` differs from the isotropic 37.07 deg: tails or scales.

    For ``c`` cut into blocks ``k`` (a network's parameter tensors) with
    weights ``w_k = n_k/n``, RMS ``s_k`` and shape ratios
    ``rho_k = mean|c| / RMS`` within block ``k``, the sign angle (between
    ``c`` and ``sign(c)``, :func:`sign_angle`) factors exactly as

    ``cos(angle) = ||c||_1 / (sqrt(n) ||c||_2) = sqrt(2/pi) * T * H``,

    ``H = sum w_k s_k / sqrt(sum w_k s_k^2)`` (scale heterogeneity across
    blocks; ``H <= 1`` by Cauchy-Schwarz, ``= 1`` iff all blocks have one
    RMS) and ``T = sum w_k rho_k s_k / (sqrt(2/pi) sum w_k s_k)`` (tails and
    shape within blocks: ``rho = sqrt(2/pi)`` for a large Gaussian block,
    smaller for heavier tails, so ``T -> 1`` for Gaussian blocks, ``T < 1``
    for heavy-tailed ones).  ``H < 1`` alone lifts the angle above
    ``arccos(sqrt(2/pi)) = 37.07 deg`` even when every block is Gaussian; a
    single stable law fitted to the whole of ``c`` mixes both effects.  This is
    how the package answers the question the seed paper (Elistratov et al.
    2024, "Lion's sign noise can make training more stable", Fig. 2) leaves
    open: why Lion's observed angle exceeds the isotropic estimate.

    Exact zeros: the sign angle uses ``nnz(c)`` in place of ``n`` (``sign(0)
    = 0``, :func:`sign_angle`), and so does the budget: ``n_k``, ``s_k`` and
    ``rho_k`` are those of the non-zero entries of block ``k`` (a block of
    zeros has weight 0), so the identity holds with zeros too.  The bisector
    angle (zeros counted in ``n``) is ``arccos(sqrt(2/pi) T H sqrt(nnz/n))``.

    Parameters
    ----------
    c : array_like, shape (n,), or list of arrays
        The vector (e.g. Lion's ``c = beta1 m + (1 - beta1) g`` over a
        model), or its blocks as a list of arrays (flattened).
    blocks : sequence of int or sequence of arrays, optional
        With a 1-D ``c``: the block sizes in order (adding up to ``n``), or
        arrays whose sizes are the block sizes (e.g. the parameter tensors).
        Default: one block (then ``H = 1``).

    Returns
    -------
    AngleBudget
        ``(angle, isotropic, T, H, angle_tails, angle_heterogeneity, n,
        nnz)``; angles in radians; ``angle_tails = arccos(sqrt(2/pi) T)`` and
        ``angle_heterogeneity = arccos(sqrt(2/pi) H)`` are the angles each
        factor alone would give.

    Raises
    ------
    ValueError
        For an empty, all-zero or non-finite ``c``, block sizes that do not
        add up to ``n``, or a 2-D ``c``.

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> c = np.concatenate([np.ones(50), 10 * np.ones(50)])   # two flat blocks
    >>> b = angle_budget(c, blocks=[50, 50])
    >>> round(b.T * math.sqrt(2 / math.pi), 12), round(b.H, 6)  # rho = 1 in each block
    (1.0, 0.773957)
    >>> bool(np.isclose(np.cos(b.angle), np.sqrt(2 / np.pi) * b.T * b.H))
    True
    """
    parts = _blocks(c, blocks)
    peak = max((float(np.abs(b).max()) for b in parts if b.size), default=0.0)
    if peak == 0.0:
        raise ValueError("c is the zero vector: it has no sign angle")
    parts = [b / peak for b in parts]  # scale invariant; avoids overflow of sum c^2
    l1 = [float(np.abs(b).sum()) for b in parts]
    l2sq = [float(b @ b) for b in parts]
    nnz = [int(np.count_nonzero(b)) for b in parts]
    return budget_from_block_sums(l1, l2sq, nnz, n=sum(b.shape[0] for b in parts))


# --- LNI and rotations ------------------------------------------------------
#
# Seed paper: Lion Noise Injection (Def. 1) and Enim (Def. 2).  The O(n) draw
# of LNI rests on the Haar invariance of B: for v = |v| u, the law of
# B sign(B^T v) is that of sqrt(n) (cos t u + sin t w) with t the bisector angle
# of a uniform point of S^(n-1) and w uniform on the unit sphere of u's
# orthogonal complement, independent of t.


def _direction(v, name="v"):
    """Check a 1-D real vector; return (unit float64 direction, norm, output dtype)."""
    arr = np.asarray(v)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must have at least one entry, got shape {arr.shape}")
    out_dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)
    x = arr.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has non-finite entries at {_row_list(np.argwhere(~np.isfinite(x)))}")
    peak = float(np.abs(x).max())
    if peak == 0.0:
        raise ValueError(f"{name} is the zero vector: it has no direction to rotate")
    scaled = x / peak
    length = float(np.linalg.norm(scaled))
    return scaled / length, peak * length, out_dtype


def _generator(rng):
    """``numpy.random.default_rng(rng)``, with a message naming what is accepted."""
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "rng must be a numpy.random.Generator, a BitGenerator, a SeedSequence, "
            f"a non-negative int seed or None, got {type(rng).__name__} {rng!r}"
        ) from exc


def _orthogonal_unit(u, gen):
    """A unit vector uniform on the sphere of the orthogonal complement of unit ``u``.

    A standard Gaussian projected on the complement, ``g - (g . u) u``, is an
    isotropic Gaussian there; normalised it is uniform on that sphere.  The
    projection is applied twice (classical Gram-Schmidt with
    re-orthogonalisation) so ``|w . u|`` is at the rounding level.  Needs
    ``len(u) >= 2``.
    """
    while True:
        g = gen.standard_normal(u.shape[0])
        g -= (g @ u) * u
        g -= (g @ u) * u
        norm = np.linalg.norm(g)
        if norm > 0.0:  # zero with probability 0
            return g / norm


def _turn(u, angle, gen):
    """Unit vector at ``angle`` from unit ``u``: ``cos(angle) u + sin(angle) w``, renormalised."""
    w = _orthogonal_unit(u, gen)
    d = np.cos(angle) * u + np.sin(angle) * w
    return d / np.linalg.norm(d)


def rotate(v, angle, rng=None):
    """Rotate ``v`` by exactly ``angle`` towards a uniformly random orthogonal direction.

    Returns ``|v| (cos(angle) u + sin(angle) w)`` with ``u = v/|v|`` and ``w``
    uniform on the unit sphere of the orthogonal complement of ``v`` (a
    standard Gaussian projected on the complement and normalised).  This is
    the fixed-angle surrogate of LNI that the seed paper's Enim experiments
    use (Elistratov et al. 2024, "Lion's sign noise can make training more
    stable", Def. 2): the update direction is turned by the angle Lion's sign
    is observed to produce.

    Parameters
    ----------
    v : array_like, shape (n,)
        A non-zero, finite real vector.
    angle : float
        Radians, ``0 <= angle <= pi``.  For ``n = 1`` there is no orthogonal
        direction: only ``0`` (returns ``v``) and ``pi`` (returns ``-v``) are
        allowed.
    rng : numpy.random.Generator, int, SeedSequence or None
        Passed to ``numpy.random.default_rng``; ``n`` standard normals are
        drawn from it (none when ``n = 1``).

    Returns
    -------
    ndarray, shape (n,)
        The dtype of ``v`` if floating, else float64.  In float64 the angle to
        ``v`` (measured as ``2 atan2(|a - b|, |a + b|)`` of the unit vectors)
        equals ``angle`` to about ``1e-15`` and the norm equals ``|v|`` to a
        few ulp.

    Raises
    ------
    ValueError
        For a zero, empty, non-finite or not 1-D ``v``, or ``angle`` outside
        ``[0, pi]``.

    Examples
    --------
    >>> import numpy as np
    >>> r = rotate([3.0, 4.0, 0.0], 0.5, rng=1)
    >>> bool(np.isclose(np.linalg.norm(r), 5.0))
    True
    >>> u, r_unit = np.array([0.6, 0.8, 0.0]), r / 5.0
    >>> bool(abs(2 * np.arctan2(np.linalg.norm(u - r_unit), np.linalg.norm(u + r_unit)) - 0.5) < 1e-12)
    True
    """
    angle = ANGLE.check(angle)
    u, norm, dtype = _direction(v)
    n = u.shape[0]
    if n == 1:
        if angle not in (0.0, np.pi):
            raise ValueError(
                f"a vector of length 1 has no orthogonal direction: angle must be 0 or pi, got {angle!r}"
            )
        d = u if angle == 0.0 else -u
    else:
        d = _turn(u, angle, _generator(rng))
    return (norm * d).astype(dtype, copy=False)


def _lni_unit(u, gen):
    """Draw ``(LNI(u)/sqrt(n), t)`` for a unit vector ``u``; see :func:`lni`."""
    n = u.shape[0]
    if n == 1:
        return np.sign(u), 0.0
    seed = int(gen.integers(0, 2**63))
    from .sampling import sample_angles  # geometry is imported by sampling's package first

    t = float(sample_angles(n, 1, seed=seed, backend="cpu").bisector[0])
    return _turn(u, t, gen), t


def lni(v, rng=None):
    """Lion Noise Injection of ``v``, drawn exactly in O(n).

    LNI is defined (Elistratov et al. 2024, "Lion's sign noise can make
    training more stable", Def. 1) as ``LNI(v) = B sign(B^T v)`` with ``B`` a Haar-random orthogonal matrix
    (see :func:`lni_haar`).  By the Haar invariance of ``B`` its law is that of

    ``sqrt(n) (cos(t) v/|v| + sin(t) w)``,

    with ``t`` the bisector angle of a uniform point of the sphere
    ``S^(n-1)`` (``cos t = ||x||_1 / sqrt(n)``, ``x`` uniform) and ``w``
    uniform on the unit sphere of the orthogonal complement of ``v``,
    independent of ``t``.  This function draws ``t`` with the package's
    counter-based sampler, ``sample_angles(n, 1, seed=s, backend="cpu")``, with
    ``s`` an integer drawn from ``rng``, then ``w`` from ``n`` standard normals of
    ``rng`` projected on the complement: O(n) time and memory instead of the
    O(n^3) of the definition.  ``rng`` determines the result fully.

    Parameters
    ----------
    v : array_like, shape (n,)
        A non-zero, finite real vector.  LNI depends on ``v`` only through its
        direction.
    rng : numpy.random.Generator, int, SeedSequence or None
        Passed to ``numpy.random.default_rng``.  Pass one Generator across
        calls for independent draws (an int seed gives the same draw each call).

    Returns
    -------
    ndarray, shape (n,)
        The dtype of ``v`` if floating, else float64.  Its norm is ``sqrt(n)``
        to rounding.  For ``n = 1``, ``B = +-1`` and ``LNI(v) = sign(v)``
        exactly (nothing is drawn).

    Raises
    ------
    ValueError
        For a zero vector (``B sign(B^T 0) = 0`` has no direction; LNI of the
        zero vector is left undefined rather than silently zero), or an empty,
        non-finite or not 1-D ``v``.

    See Also
    --------
    lni_haar : the definition, O(n^3), for validation at small n.
    rotate : the same rotation with a fixed angle.

    Examples
    --------
    >>> import numpy as np
    >>> x = lni(np.arange(1.0, 9.0), rng=np.random.default_rng(0))
    >>> bool(np.isclose(np.linalg.norm(x), np.sqrt(8)))
    True
    >>> lni([-2.5])
    array([-1.])
    """
    u, _, dtype = _direction(v)
    d, _ = _lni_unit(u, _generator(rng))
    return (np.sqrt(u.shape[0]) * d).astype(dtype, copy=False)


def lni_haar(v, rng=None):
    """Lion Noise Injection by its definition: ``B sign(B^T v)``, B Haar-random.

    ``B = scipy.stats.ortho_group.rvs(n, random_state=rng)`` (Elistratov et
    al. 2024, "Lion's sign noise can make training more stable", Def. 1).
    O(n^3): a reference for :func:`lni`, which draws the same law in O(n).  ``B^T v`` has no zero
    entry with probability 1, so the norm of the result is ``sqrt(n)``.

    Parameters
    ----------
    v : array_like, shape (n,)
        A non-zero, finite real vector.
    rng : numpy.random.Generator, int, SeedSequence or None
        Passed to ``numpy.random.default_rng``.  For ``n = 1``, ``B = +-1`` is
        drawn as a random sign and the result is ``sign(v)``.

    Returns
    -------
    ndarray, shape (n,)
        The dtype of ``v`` if floating, else float64.

    Raises
    ------
    ValueError
        For a zero, empty, non-finite or not 1-D ``v``.

    Examples
    --------
    >>> import numpy as np
    >>> x = lni_haar([1.0, 2.0, 3.0], rng=0)
    >>> bool(np.isclose(np.linalg.norm(x), np.sqrt(3)))
    True
    """
    u, _, dtype = _direction(v)
    gen = _generator(rng)
    n = u.shape[0]
    if n == 1:
        b = np.array([[1.0 if gen.random() < 0.5 else -1.0]])
    else:
        from scipy.stats import ortho_group

        b = ortho_group.rvs(n, random_state=gen)
    return (b @ np.sign(b.T @ u)).astype(dtype, copy=False)
