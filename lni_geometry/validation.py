"""Argument validation for the whole package: declared domains, one message style.

Every public function checks its arguments here, before any work, and names the
bad value and the valid range in the error (``TypeError`` for a wrong type,
``ValueError`` for a value outside the domain).  A domain is declared once, as a
:class:`Domain` (name, kind, interval, open or closed ends), next to the code
that owns the parameter; the common ones are declared below.

Integers
    An integer parameter (a dimension, a sample count, a start index, a seed)
    takes a Python or numpy integer.  Floats are refused, integral ones too:
    ``sample_angles(1e6, ...)`` and ``BisectorAngle(1e6)`` both raise
    ``TypeError`` naming the integer to pass (``pass 1000000``), so that a
    computed dimension that is silently not an integer (``1e6 + 0.5``, ``2**0.5``)
    never turns into a different law or stream.  A float that is not integral
    at all (``2.5``, NaN, inf) is a value outside the domain (``ValueError``).
    ``bool`` is not an integer here.
Reals
    A real parameter takes any real number (Python, numpy) that is finite and
    inside its interval; it is returned as a Python float.  NaN is never inside.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DIM",
    "MAX_DIM",
    "Domain",
    "check_alpha",
    "check_law_alpha",
    "check_dim",
    "check_int",
    "check_positive",
    "check_real",
]

#: Largest dimension: coordinate blocks stay far below 2**64 and float64 sums exact enough.
MAX_DIM = 2**40


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Domain:
    """A declared parameter domain: ``name``, ``kind`` ("int" or "real"), an interval.

    ``low``/``high`` are the ends (``None`` or ``math.inf`` for none);
    ``low_open``/``high_open`` say whether an end is excluded; ``high_text``
    writes the upper end in messages (``"2**40"``).  :meth:`check` returns the
    value as a Python int or float, or raises ``TypeError``/``ValueError``.

    Examples
    --------
    >>> Domain("alpha", "real", 0.0, 2.0, low_open=True).check(1.5)
    1.5
    >>> Domain("samples", "int", 1).check(0)
    Traceback (most recent call last):
    ...
    ValueError: samples must be >= 1, got 0
    """

    name: str
    kind: str = "real"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    high_text: str | None = None

    def interval(self):
        """The interval as text, ``(0.0, 2.0]`` or ``[2, 2**40]``."""
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        if self.high is None or self.high == math.inf:
            high = "inf"
        else:
            high = self.high_text or repr(self.high)
        return f"{lo}{self.low!r}, {high}{hi}"

    def contains(self, v):
        """Whether the number ``v`` (already of the right type) lies in the interval."""
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        if self.high is not None and (v >= self.high if self.high_open else v > self.high):
            return False
        return True

    def check(self, value):
        if self.kind == "int":
            return self._check_int(value)
        if _is_bool(value) or not isinstance(value, numbers.Real):
            raise TypeError(f"{self.name} must be a real number in {self.interval()}, "
                            f"got {type(value).__name__} {value!r}")
        v = float(value)
        if not self.contains(v):
            raise ValueError(f"{self.name} must be a finite number in {self.interval()}, got {value!r}")
        return v

    def _check_int(self, value):
        name = self.name
        if _is_bool(value) or not isinstance(value, numbers.Integral):
            if isinstance(value, numbers.Real) and not _is_bool(value) and float(value).is_integer():
                raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r} "
                                f"(pass {int(value)})")
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        v = int(value)
        if not self.contains(v):
            if self.high is None:
                raise ValueError(f"{name} must be >= {self.low}, got {v}")
            raise ValueError(f"{name} must be [{self.low}, {self.high}], got {v}")
        return v


def check_int(name, value, low, high=None):
    """An integer in ``[low, high]`` (``high=None``: no upper end), as a Python int."""
    return Domain(name, "int", low, high).check(value)


def check_real(name, value, low, high, low_open=True, high_open=False):
    """A finite real in an interval (open at ``low`` by default), as a float."""
    return Domain(name, "real", low, high, low_open, high_open).check(value)


def check_positive(name, value):
    """A finite real ``> 0``, as a float."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


#: The dimension of the laws of :mod:`lni_geometry.theory`.
DIM = Domain("dim", "int", 2, MAX_DIM, high_text="2**40")


def check_dim(dim, low=2):
    """A dimension in ``[low, 2**40]`` as a Python int (the laws' wording).

    Integral floats such as ``1e6`` are refused (``TypeError``, as everywhere:
    see the module docstring); other floats, NaN and inf are out of the domain
    (``ValueError``).
    """
    text = f"dim must be an integer in [{low}, 2**40]"
    if _is_bool(dim) or not isinstance(dim, numbers.Real):
        raise TypeError(f"{text}, got {type(dim).__name__} {dim!r}")
    if not isinstance(dim, numbers.Integral):
        value = float(dim)
        if math.isfinite(value) and value.is_integer():
            raise TypeError(f"{text}, got {type(dim).__name__} {dim!r} (pass {int(value)})")
        raise ValueError(f"{text}, got {dim!r}")
    value = int(dim)
    if value < low or value > MAX_DIM:
        raise ValueError(f"{text}, got {dim!r}")
    return value


#: The stability index of a symmetric alpha-stable law.
ALPHA = Domain("alpha", "real", 0.0, 2.0, low_open=True)


def check_alpha(alpha, high_open=False):
    """A stability index in ``(0, 2]`` (``(0, 2)`` with ``high_open``), as a float."""
    if high_open:
        return Domain("alpha", "real", 0.0, 2.0, low_open=True, high_open=True).check(alpha)
    return ALPHA.check(alpha)


def check_law_alpha(alpha):
    """``alpha`` in ``(0, 2]`` in the wording of the laws (``alpha must be in (0, 2]``).

    The same domain as :data:`ALPHA`; only the message differs, because the
    tests of :mod:`lni_geometry.theory` pin it.  To merge into
    :func:`check_alpha` once those tests match ``alpha must be``.
    """
    if _is_bool(alpha) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a real number in (0, 2], got {type(alpha).__name__} {alpha!r}")
    a = float(alpha)
    if not ALPHA.contains(a):
        raise ValueError(f"alpha must be in (0, 2], got {alpha!r}")
    return a
