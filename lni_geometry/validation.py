"""Argument validation for the whole package: declared domains, one message format.

Every public function checks its arguments here, before any work.  A domain
is declared once, as a :class:`Domain` (name, kind, interval, open or closed
ends), next to the code that owns the parameter; the ones several modules
share (:data:`DIM`, :data:`ALPHA`, :data:`SCALE`, :data:`ANGLE`, the
optimizers' :data:`LR`, :data:`BETA1`, :data:`BETA2`, :data:`WEIGHT_DECAY`)
are declared below, and each parameter kind has one check.

Messages
    Every refusal has one format, naming the parameter, the valid range with
    its open or closed ends, and the bad value::

        alpha must be a finite number in (0, 2], got 2.5
        dim must be an integer in [2, 2**40], got 1
        samples must be an integer in [1, inf), got 0
        lr must be a real number in (0, inf), got str '0.1'
        angle must be a finite number in [0, pi] or 'lni', got 'sign'

    ``ValueError`` for a value outside the domain (a real one says "a finite
    number": NaN and inf are outside every domain), ``TypeError`` for a wrong
    type (the type is named before the value).  Named alternatives (``'lni'``,
    ``None``) follow the interval.
Integers
    An integer parameter (a dimension, a sample count, a start index, a seed)
    takes a Python or numpy integer; ``bool`` is not an integer here.  A float
    is never an integer, integral ones included: ``sample_angles(1e6, ...)``
    and ``BisectorAngle(1e6)`` both raise :class:`NotAnIntegerError` naming
    the integer to pass (``(pass 1000000)``), so that a computed dimension
    that is silently not an integer (``1e6 + 0.5``, ``2**0.5``) never turns
    into a different law or stream.  :class:`NotAnIntegerError` is both a
    ``TypeError`` and a ``ValueError`` (as numpy's ``AxisError`` is both a
    ``ValueError`` and an ``IndexError``): a float is the wrong type for an
    integer and its value is outside the integer domain, and either
    ``except`` clause catches it.
Reals
    A real parameter takes any real number (Python, numpy; an integer too)
    that is finite and inside its interval; it is returned as a Python float.
    :meth:`Domain.check_array` checks an array of them, naming the first bad
    entry (``x[3] must be a finite number in (0, inf), got -1.0``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ALPHA",
    "ALPHA_TAIL",
    "ANGLE",
    "BETA1",
    "BETA2",
    "DIM",
    "LR",
    "TORCH_LR",
    "MAX_DIM",
    "SCALE",
    "WEIGHT_DECAY",
    "Domain",
    "NotAnIntegerError",
    "check_alpha",
    "check_choice",
    "check_count",
    "check_key",
    "check_dim",
    "check_hyperparameters",
    "check_int",
]

#: Largest dimension: coordinate blocks stay far below 2**64 and float64 sums exact enough.
MAX_DIM = 2**40


class NotAnIntegerError(TypeError, ValueError):
    """A float (``2.5``, ``1e6``, NaN) where an integer is required.

    Both a ``TypeError`` and a ``ValueError``: see the module docstring.
    """


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _end(x, text):
    """One end of an interval as text: ``text`` if given; ``0`` for 0.0, ``2**40``, ``inf``; else repr."""
    if text is not None:
        return text
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if isinstance(x, numbers.Integral):
        x = int(x)
        if x >= 2**20 and x & (x - 1) == 0:
            return f"2**{x.bit_length() - 1}"
        return str(x)
    return repr(x)


@dataclass(frozen=True)
class Domain:
    """A declared parameter domain: ``name``, ``kind`` ("int" or "real"), an interval.

    ``low``/``high`` are the ends (``None`` or ``math.inf`` for none; an
    infinite end is always open); ``low_open``/``high_open`` say whether a
    finite end is excluded; ``high_text``/``low_text`` write an end in
    messages (``"pi"``; a power of two from ``2**20`` up is written
    ``2**40`` anyway).  :meth:`check` returns the value as a Python int or
    float, or raises ``TypeError``/``ValueError`` (:class:`NotAnIntegerError`
    for a float in an int domain) in the format of the module docstring.

    Examples
    --------
    >>> Domain("alpha", "real", 0.0, 2.0, low_open=True).check(1.5)
    1.5
    >>> Domain("samples", "int", 1).check(0)
    Traceback (most recent call last):
    ...
    ValueError: samples must be an integer in [1, inf), got 0
    >>> DIM.check(1e6)
    Traceback (most recent call last):
    ...
    lni_geometry.validation.NotAnIntegerError: dim must be an integer in [2, 2**40], got float 1000000.0 (pass 1000000)
    >>> ANGLE.check("sign", names=("lni",))
    Traceback (most recent call last):
    ...
    ValueError: angle must be a finite number in [0, pi] or 'lni', got 'sign'
    """

    name: str
    kind: str = "real"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    high_text: str | None = None
    low_text: str | None = None

    def __post_init__(self):
        if self.kind not in ("int", "real"):
            raise ValueError(f"kind must be 'int' or 'real', got {self.kind!r}")

    def interval(self):
        """The interval as text, ``(0, 2]``, ``[2, 2**40]`` or ``[1, inf)``."""
        if self.low is None or self.low == -math.inf:
            lo = "(-inf"
        else:
            lo = ("(" if self.low_open else "[") + _end(self.low, self.low_text)
        if self.high is None or self.high == math.inf:
            hi = "inf)"
        else:
            hi = _end(self.high, self.high_text) + (")" if self.high_open else "]")
        return f"{lo}, {hi}"

    def contains(self, v):
        """Whether the number ``v`` (already of the right type) lies in the interval."""
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        if self.high is not None and (v >= self.high if self.high_open else v > self.high):
            return False
        return True

    def describe(self, phrase=None, names=(), more=None):
        """What the parameter must be: ``an integer in [2, 2**40]``, ``... or 'lni'``."""
        if phrase is None:
            phrase = "an integer" if self.kind == "int" else "a finite number"
        alternatives = [repr(n) for n in names] + ([more] if more else [])
        text = f"{phrase} in {self.interval()}"
        if alternatives:
            text += "".join(f", {a}" for a in alternatives[:-1]) + f" or {alternatives[-1]}"
        return text

    def _type_phrase(self):
        return "an integer" if self.kind == "int" else "a real number"

    def check(self, value, names=(), more=None):
        """``value`` as a Python int or float, if inside the domain; else raise.

        ``names`` are strings accepted as they are besides the interval
        (``'lni'``): a string among them is returned, another one is a
        ``ValueError``.  ``more`` only adds an alternative the caller accepts
        itself (``"None"``, ``"a callable"``) to the message.
        """
        name = self.name
        if names and isinstance(value, str):
            if value in names:
                return value
            raise ValueError(f"{name} must be {self.describe(None, names, more)}, got {value!r}")
        if _is_bool(value) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be {self.describe(self._type_phrase(), names, more)}, "
                            f"got {type(value).__name__} {value!r}")
        if self.kind == "int":
            if not isinstance(value, numbers.Integral):
                v = float(value)
                hint = f" (pass {int(v)})" if v.is_integer() and self.contains(int(v)) else ""
                raise NotAnIntegerError(f"{name} must be {self.describe(None, names, more)}, "
                                        f"got {type(value).__name__} {value!r}{hint}")
            v = int(value)
        else:
            try:
                v = float(value)
            except OverflowError:  # an int beyond the float range
                v = math.inf if value > 0 else -math.inf
        if not self.contains(v):
            raise ValueError(f"{name} must be {self.describe(None, names, more)}, got {v!r}")
        return v

    def check_array(self, values):
        """An array of reals in a real domain, as float64 (``np.asarray(values, float64)``).

        The first entry outside the domain is named by its index:
        ``x[3] must be a finite number in (0, inf), got -1.0`` (``ValueError``).
        """
        arr = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(arr)
        if self.low is not None:
            ok &= (arr > self.low) if self.low_open else (arr >= self.low)
        if self.high is not None:
            ok &= (arr < self.high) if self.high_open else (arr <= self.high)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            where = "" if arr.ndim == 0 else f"[{', '.join(map(str, np.unravel_index(i, arr.shape)))}]"
            raise ValueError(f"{self.name}{where} must be {self.describe()}, got {float(arr.flat[i])!r}")
        return arr


def check_int(name, value, low, high=None):
    """An integer in ``[low, high]`` (``high=None``: no upper end), as a Python int."""
    return Domain(name, "int", low, high).check(value)


def check_count(name, value, *, optional=False):
    """A positive integer (samples per task, threads, ...), as a Python int.

    With ``optional=True``, None passes through (meaning "choose for me").

    Examples
    --------
    >>> check_count("chunk_samples", None, optional=True) is None
    True
    >>> check_count("chunk_samples", 2.5, optional=True)
    Traceback (most recent call last):
    ...
    lni_geometry.validation.NotAnIntegerError: chunk_samples must be an integer in [1, inf) or None, got float 2.5
    """
    if optional and value is None:
        return None
    return Domain(name, "int", 1).check(value, more="None" if optional else None)


def check_choice(name, value, choices):
    """``value`` if it is one of the strings ``choices``, else ``ValueError`` naming them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_key(key):
    """A stream key: two 32-bit words (``rng.key_from_seed(seed)``), as uint32 array of shape (2,).

    A seed is not a key: ``5`` or a ``SeedSequence`` is refused with a
    ``TypeError`` that says to pass ``rng.key_from_seed(seed)``.

    Examples
    --------
    >>> check_key([1, 2])
    array([1, 2], dtype=uint32)
    """
    arr = np.asarray(key)
    if arr.shape != (2,) or arr.dtype.kind not in "ui":
        raise TypeError(
            "key must be two uint32 words (lni_geometry.rng.key_from_seed(seed)), got "
            f"{type(key).__name__} {key!r}"
        )
    if arr.min() < 0 or arr.max() > 0xFFFFFFFF:
        raise ValueError(f"key words must lie in [0, 2**32 - 1], got {key!r}")
    return arr.astype(np.uint32)


# --- the shared domains ------------------------------------------------------------

#: The dimension: of the laws, the samplers, the sweeps and the tail inversions.
DIM = Domain("dim", "int", 2, MAX_DIM, high_text="2**40")

#: The stability index of a symmetric alpha-stable law (2 is the Gaussian).
ALPHA = Domain("alpha", "real", 0.0, 2.0, low_open=True)

#: The stability index of a stable law with power tails (the Gaussian excluded).
ALPHA_TAIL = Domain("alpha", "real", 0.0, 2.0, low_open=True, high_open=True)

#: A scale parameter (of a stable law, a Student t).
SCALE = Domain("scale", "real", 0.0, math.inf, low_open=True, high_open=True)

#: An angle between two directions, in radians.
ANGLE = Domain("angle", "real", 0.0, math.pi, high_text="pi")

#: The optimizers' hyperparameters (:mod:`lni_geometry.optim`, :mod:`lni_geometry.torch`,
#: :mod:`lni_geometry.experiments`; the torch optimizers' ``lr`` is :data:`TORCH_LR`).
LR = Domain("lr", "real", 0.0, math.inf, low_open=True, high_open=True)
#: The torch optimizers' ``lr``: ``0`` too, as torch's optimizers take it (a warm-up schedule's
#: first step moves the momenta, not the weights).
TORCH_LR = Domain("lr", "real", 0.0, math.inf, high_open=True)
BETA1 = Domain("beta1", "real", 0.0, 1.0, high_open=True)
BETA2 = Domain("beta2", "real", 0.0, 1.0, high_open=True)
WEIGHT_DECAY = Domain("weight_decay", "real", 0.0, math.inf, high_open=True)


def check_hyperparameters(lr, beta1, beta2, weight_decay):
    """The sign optimizers' ``(lr, beta1, beta2, weight_decay)`` (:data:`LR`, ...), as floats.

    Examples
    --------
    >>> check_hyperparameters(0.1, 0.9, 0.99, 1)
    (0.1, 0.9, 0.99, 1.0)
    >>> check_hyperparameters(0.1, 1.0, 0.99, 0.0)
    Traceback (most recent call last):
    ...
    ValueError: beta1 must be a finite number in [0, 1), got 1.0
    """
    return LR.check(lr), BETA1.check(beta1), BETA2.check(beta2), WEIGHT_DECAY.check(weight_decay)


def check_dim(dim):
    """A dimension in ``[2, 2**40]`` (:data:`DIM`), as a Python int.

    Examples
    --------
    >>> check_dim(10**6)
    1000000
    >>> check_dim(1)
    Traceback (most recent call last):
    ...
    ValueError: dim must be an integer in [2, 2**40], got 1
    """
    return DIM.check(dim)


def check_alpha(alpha, high_open=False):
    """A stability index in ``(0, 2]`` (:data:`ALPHA`; ``(0, 2)``, :data:`ALPHA_TAIL`, with ``high_open``).

    Examples
    --------
    >>> check_alpha(2.5)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a finite number in (0, 2], got 2.5
    """
    return (ALPHA_TAIL if high_open else ALPHA).check(alpha)
