"""Angles of user arrays: bisector, sign and fixed-axis angles.

For a vector ``v`` in R^n (rows of a 2-D array, or along ``axis``):

- bisector angle: between ``v`` and ``sign(v)/sqrt(n)``, the bisector of the
  hyperoctant holding ``v``: ``cos = ||v||_1 / (sqrt(n) ||v||_2)``;
- sign angle: between ``v`` and ``sign(v)`` with ``sign(0) = 0``:
  ``cos = ||v||_1 / (sqrt(nnz) ||v||_2)``, the angle by which Lion's sign
  rotates an update (Chen et al. 2023; Elistratov et al.);
- fixed-axis angle: between ``v`` and a fixed direction (default
  ``(1, ..., 1)/sqrt(n)``).

The angle between unit vectors ``a`` and ``b`` is computed as
``2 atan2(|a - b|, |a + b|)``, accurate to a few ulp at every angle (``arccos``
loses half the digits near 0), after scaling each row by its largest entry, so
entries from ``1e-300`` to ``1e300`` neither overflow nor underflow.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["bisector_angle", "sign_angle", "fixed_axis_angle", "max_bisector_angle"]


def _rows(v, axis, name="v"):
    """Move ``axis`` last, check finiteness and non-zero rows, scale each row to max |v| = 1."""
    arr = np.asarray(v)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    arr = np.moveaxis(arr.astype(np.float64, copy=False), axis, -1)
    if arr.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one entry along axis {axis}")
    finite = np.isfinite(arr).all(axis=-1)
    if not finite.all():
        bad = np.argwhere(~finite)
        raise ValueError(f"{name} has non-finite entries in rows {_row_list(bad)}; they have no angle")
    peak = np.abs(arr).max(axis=-1, keepdims=True)
    zero = peak[..., 0] == 0
    if zero.any():
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
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim must be an integer, got {type(dim).__name__} {dim!r}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return float(np.arctan(np.sqrt(dim - 1.0)))
