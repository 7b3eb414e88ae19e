"""Reference Lion and Enim steps: pure functions on numpy arrays.

Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms",
Algorithm 2 and its reference code), for parameters ``w``, gradient ``g`` and
momentum ``m``::

    c = beta1 * m + (1 - beta1) * g
    w <- w - lr * (sign(c) + weight_decay * w)      # sign(0) = 0
    m <- beta2 * m + (1 - beta2) * g

Enim (S. Elistratov, A. Podivilov, T. Iuzhakov, D. Vetrov, "Lion's sign noise
can make training more stable", NeurIPS 2024 OPT workshop, Def. 2) replaces
``sign(c)`` by ``LNI(c) = B sign(B^T c)`` (``B`` Haar-random orthogonal),
drawn exactly by :func:`lni_geometry.lni`; the paper's experiments replace LNI by a rotation of
``c/|c|`` by a fixed angle, calibrated to the angle Lion's sign produces,
scaled to ``sqrt(n)``: :func:`enim_step` with a float ``angle``.

The functions never modify their inputs and return arrays of the input dtypes.

Whole-model steps
-----------------
``param``, ``grad`` and ``momentum`` may be single arrays or a *model*: a list,
tuple or dict of arrays of matching shapes.  A step acts on the concatenation
of all the entries (flattened, in list order or in the key order of
``param``) as one update vector of dimension ``n``, and returns the same
structure.  For Lion this changes nothing but the angle reported (the sign is
element-wise), but for Enim it is the definition: ``B`` and the rotation act on
the whole-model vector, as Lion's sign does, with one angle and one ``sqrt(n)``
norm.  Stepping each tensor on its own would rotate each by the angle (or by
its own LNI draw of dimension ``n_i``) and scale each to ``sqrt(n_i)``: a
different, block-diagonal noise.

Reading the angle
-----------------
With ``return_angle=True`` both steps return ``(param, momentum, angle)``,
the angle in radians by which the step turned the direction of ``c``: for
Lion the sign angle of ``c`` (between ``c`` and ``sign(c)``, see
:func:`lni_geometry.sign_angle`), for Enim the rotation it applied (``angle``,
or the angle drawn for LNI).  Recording Lion's angle along a run and passing a
summary of it (e.g. the median) as Enim's ``angle`` is the seed paper's
calibration.  When ``c`` is exactly zero there is no direction: the sign
part of the update is zero (Lion: ``sign(0) = 0``; Enim: nothing to rotate),
weight decay and the momentum update still apply, and the angle reported is
``nan``.
"""

from __future__ import annotations

import math

import numpy as np

from . import geometry
from .validation import ANGLE, check_hyperparameters

__all__ = ["lion_step", "enim_step"]

ENIM_ANGLES = ("lni",)


# --- models: flatten and rebuild ------------------------------------------------


def _leaves(name, tree):
    """(kind, keys, arrays) of a single array, a list/tuple or a dict of arrays."""
    if isinstance(tree, dict):
        keys = list(tree)
        return "dict", keys, [tree[k] for k in keys]
    if isinstance(tree, (list, tuple)):
        return type(tree).__name__, list(range(len(tree))), list(tree)
    return "array", [None], [tree]


def _as_float_array(name, key, leaf):
    arr = np.asarray(leaf)
    if arr.dtype.kind != "f":
        where = name if key is None else f"{name}[{key!r}]"
        raise TypeError(f"{where} must be a floating-point array, got dtype {arr.dtype}")
    return arr


class _Flat:
    """Concatenated parameters, gradients and momenta of a model, and how to rebuild it."""

    def __init__(self, param, grad, momentum):
        kind, keys, p_leaves = _leaves("param", param)
        self.kind, self.keys = kind, keys
        leaves = {"param": p_leaves}
        for name, tree in (("grad", grad), ("momentum", momentum)):
            kind2, keys2, leaves2 = _leaves(name, tree)
            if (kind2 == "dict") != (kind == "dict") or (kind2 == "array") != (kind == "array"):
                raise ValueError(f"{name} must have the structure of param ({kind}), got {kind2}")
            if kind == "dict":
                if set(keys2) != set(keys):
                    raise ValueError(
                        f"{name} must have the keys of param {sorted(map(str, keys))}, "
                        f"got {sorted(map(str, keys2))}"
                    )
                leaves2 = [tree[k] for k in keys]
            elif len(leaves2) != len(keys):
                raise ValueError(f"{name} must have {len(keys)} arrays like param, got {len(leaves2)}")
            leaves[name] = leaves2
        self.shapes, self.p_dtypes, self.m_dtypes = [], [], []
        parts = {"param": [], "grad": [], "momentum": []}
        for i, key in enumerate(keys):
            shown = None if kind == "array" else key
            arrays = {n: _as_float_array(n, shown, leaves[n][i]) for n in parts}
            shape = arrays["param"].shape
            for n in ("grad", "momentum"):
                if arrays[n].shape != shape:
                    where = "" if shown is None else f"[{shown!r}]"
                    raise ValueError(
                        f"{n}{where} must have the shape of param{where} {shape}, got {arrays[n].shape}"
                    )
            for n, a in arrays.items():
                if not np.isfinite(a).all():
                    where = "" if shown is None else f"[{shown!r}]"
                    raise ValueError(f"{n}{where} has non-finite entries; a step needs finite numbers")
                parts[n].append(a.reshape(-1))
            self.shapes.append(shape)
            self.p_dtypes.append(arrays["param"].dtype)
            self.m_dtypes.append(arrays["momentum"].dtype)
        if kind == "array":
            self.p, self.g, self.m = parts["param"][0], parts["grad"][0], parts["momentum"][0]
        else:
            cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
            self.p, self.g, self.m = cat(parts["param"]), cat(parts["grad"]), cat(parts["momentum"])
        self.n = self.p.shape[0]
        if self.n == 0:
            raise ValueError("param has no entries: a step needs n >= 1 parameters")

    def rebuild(self, flat, dtypes):
        pieces, start = [], 0
        for shape, dtype in zip(self.shapes, dtypes):
            size = math.prod(shape)
            pieces.append(flat[start : start + size].reshape(shape).astype(dtype, copy=False))
            start += size
        if self.kind == "array":
            return pieces[0]
        if self.kind == "dict":
            return dict(zip(self.keys, pieces))
        return tuple(pieces) if self.kind == "tuple" else list(pieces)


def _finish(flat, update, lr, beta2, wd, angle, return_angle):
    """Apply ``w - lr (update + wd w)`` and ``m <- beta2 m + (1 - beta2) g``; rebuild."""
    p_new = flat.p - lr * (update + wd * flat.p)
    m_new = beta2 * flat.m + (1 - beta2) * flat.g
    out = (flat.rebuild(p_new, flat.p_dtypes), flat.rebuild(m_new, flat.m_dtypes))
    return out + (angle,) if return_angle else out


# --- the steps --------------------------------------------------------------------


def lion_step(param, grad, momentum, *, lr, beta1=0.9, beta2=0.99, weight_decay=0.0, return_angle=False):
    """One Lion step (Chen et al. 2023), as a pure function.

    ::

        c = beta1 * m + (1 - beta1) * g
        w <- w - lr * (sign(c) + weight_decay * w)
        m <- beta2 * m + (1 - beta2) * g

    with ``sign(0) = 0``, as in Chen et al., "Symbolic Discovery of
    Optimization Algorithms" (2023), Algorithm 2, and their reference code:
    weight decay is scaled by ``lr`` and uses the weights before the step,
    ``c`` uses the old momentum, and the momentum is updated after the step.
    The seed paper (Elistratov et al. 2024, "Lion's sign noise can make
    training more stable") writes Lion in its eq. (2) as
    ``w <- w + lr * sign(beta1 * m - (1 - beta1) * grad)``, a sign typo: that
    is ``w - lr * sign((1 - beta1) * grad - beta1 * m)``, the momentum with the
    wrong sign (it steps against the momentum).  This function follows Chen et al.

    Parameters
    ----------
    param, grad, momentum : ndarray, or list, tuple or dict of ndarrays
        Floating-point arrays of matching structure and shapes.  A model
        (list/tuple/dict) is stepped as the concatenation of its entries (see
        the module notes); a list of numbers is a list of 0-d arrays.
    lr : float
        Learning rate, ``> 0``.
    beta1, beta2 : float
        Interpolation and momentum decay factors in ``[0, 1)``.
    weight_decay : float
        ``>= 0``.
    return_angle : bool
        Also return the sign angle of ``c``: the angle between ``c`` and
        ``sign(c)``, ``arccos(||c||_1 / (sqrt(nnz(c)) ||c||_2))``, in
        radians, over the whole model (``nan`` if ``c = 0``).

    Returns
    -------
    param, momentum
        New arrays in the structure of ``param`` and the dtypes of ``param``
        and ``momentum`` (leaf by leaf); the inputs are not modified.  The
        update ``sign(c)`` has norm ``sqrt(nnz(c))``.
    angle : float
        Only with ``return_angle=True``.

    Raises
    ------
    ValueError
        ``lr <= 0``, a beta outside ``[0, 1)``, ``weight_decay < 0``,
        mismatched structures or shapes, non-finite entries.
    TypeError
        Non-floating arrays or non-real hyperparameters.

    Examples
    --------
    >>> import numpy as np
    >>> w, m = lion_step(np.array([1.0, 1.0, 1.0]), np.array([0.5, -2.0, 0.0]),
    ...                  np.zeros(3), lr=0.1)
    >>> w
    array([0.9, 1.1, 1. ])
    >>> m
    array([ 0.005, -0.02 ,  0.   ])
    """
    lr, beta1, beta2, wd = check_hyperparameters(lr, beta1, beta2, weight_decay)
    flat = _Flat(param, grad, momentum)
    c = beta1 * flat.m + (1 - beta1) * flat.g
    update = np.sign(c)
    angle = None
    if return_angle:
        angle = geometry.sign_angle(c) if np.any(c) else math.nan
    return _finish(flat, update, lr, beta2, wd, angle, return_angle)


def enim_step(
    param,
    grad,
    momentum,
    *,
    lr,
    angle,
    beta1=0.9,
    beta2=0.99,
    weight_decay=0.0,
    rng=None,
    return_angle=False,
):
    """One Enim step: Lion with ``sign(c)`` replaced by a random rotation of ``c``.

    ::

        c = beta1 * m + (1 - beta1) * g
        u = sqrt(n) * rotate(c/|c|, angle)      (float angle)
        u = LNI(c) = B sign(B^T c)               (angle = "lni")
        w <- w - lr * (u + weight_decay * w)
        m <- beta2 * m + (1 - beta2) * g

    Enim is defined with LNI in Elistratov et al. 2024, "Lion's sign noise
    can make training more stable", Def. 2; its experiments use the fixed-angle rotation, with the angle
    calibrated to Lion's observed sign angle (read it with
    ``lion_step(..., return_angle=True)``).  ``u`` has norm ``sqrt(n)``
    exactly in both cases (Lion's ``sign(c)`` has ``sqrt(nnz(c))``: the same
    when ``c`` has no zero entry).  Lion's rule is that of :func:`lion_step`
    (Chen et al. 2023).

    Parameters
    ----------
    param, grad, momentum : ndarray, or list, tuple or dict of ndarrays
        As in :func:`lion_step`.  The rotation acts on the concatenation of a
        model's entries, one vector of dimension ``n``.
    lr : float
        ``> 0``.
    angle : float or "lni"
        The rotation in radians, ``0 <= angle <= pi``, towards a uniformly
        random direction orthogonal to ``c`` (:func:`lni_geometry.rotate`);
        or ``"lni"`` for an exact LNI draw (:func:`lni_geometry.lni`: the
        angle then has the bisector-angle law of dimension ``n``).
    beta1, beta2 : float
        In ``[0, 1)``.
    weight_decay : float
        ``>= 0``.
    rng : numpy.random.Generator, int, SeedSequence or None
        Passed to ``numpy.random.default_rng``.  Pass one Generator along a
        run: an int seed repeats the same draw at every step.
    return_angle : bool
        Also return the rotation applied, in radians (``angle``, or the angle
        drawn for ``"lni"``; ``nan`` if ``c = 0``).

    Returns
    -------
    param, momentum
        As in :func:`lion_step`.  The rotation is computed in float64; the
        update is then rounded to the parameters' dtype.
    angle : float
        Only with ``return_angle=True``.

    Raises
    ------
    ValueError
        As :func:`lion_step`, and for an angle outside ``[0, pi]``, an
        unknown angle string, or (for ``n = 1``, which has no orthogonal
        direction) an angle other than 0 or pi.

    Examples
    --------
    >>> import numpy as np
    >>> w, m, a = enim_step(np.zeros(4), np.ones(4), np.zeros(4), lr=0.5,
    ...                     angle=0.3, rng=0, return_angle=True)
    >>> bool(np.isclose(np.linalg.norm(w), 0.5 * 2.0)), a
    (True, 0.3)
    """
    lr, beta1, beta2, wd = check_hyperparameters(lr, beta1, beta2, weight_decay)
    angle = ANGLE.check(angle, names=ENIM_ANGLES)
    flat = _Flat(param, grad, momentum)
    c = beta1 * flat.m + (1 - beta1) * flat.g
    if not np.any(c):
        update, turned = np.zeros_like(c), math.nan
    else:
        u, _, _ = geometry._direction(c, name="c")
        gen = geometry._generator(rng)
        if angle == "lni":
            d, turned = geometry._lni_unit(u, gen)
        elif flat.n == 1:
            d = geometry.rotate(u, angle)  # 0 or pi, else a ValueError naming the angle
            turned = angle
        else:
            d, turned = geometry._turn(u, angle, gen), angle
        update = (math.sqrt(flat.n) * d).astype(c.dtype, copy=False)
    return _finish(flat, update, lr, beta2, wd, turned if return_angle else None, return_angle)
