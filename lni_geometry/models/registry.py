"""The model registry: the base class, :data:`MODELS`, and models from spec strings.

:class:`GradientModel` is the base of every model; :func:`register_model`
adds a model class to :data:`MODELS` and gives it its ``kernel_id`` (the
registration order); :func:`model_from_spec` and :func:`spec_help` read and
describe the spec strings (``"stable:1.5"``) of every registered model.  The
model families (:mod:`.gaussian`, :mod:`.stable`, :mod:`.student_t`) register
themselves here, and :mod:`.dispatch` checks the kernels' dispatch against
the registry.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["MODELS", "GradientModel", "model_from_spec", "register_model", "spec_help"]

#: The registered model classes by spec name, in kernel-id order.
MODELS = {}


def register_model(cls):
    """Class decorator: add a model class to :data:`MODELS` and give it its ``kernel_id``.

    The class declares ``spec_name``, ``params`` (a tuple of ``(Domain,
    default)`` pairs, ``default`` None for a required parameter; at most two,
    the kernels' ``p0, p1``), ``fill`` and ``coords_per_block``.  Its dispatch
    branch in :func:`fill_coords` is checked at import (numba compiles the
    dispatch statically, so the branch is one line written by hand).
    """
    name = cls.spec_name
    if not name or name in MODELS or any(name in c.aliases for c in MODELS.values()):
        raise ValueError(f"model spec name {name!r} is empty or already registered")
    if len(cls.params) > 2:
        raise ValueError(f"a model has at most 2 kernel parameters, {cls.__name__} declares {len(cls.params)}")
    cls.kernel_id = len(MODELS)
    MODELS[name] = cls
    return cls


class GradientModel:
    """Base class of gradient models (see :mod:`lni_geometry.models`)."""

    spec_name: ClassVar[str] = ""
    aliases: ClassVar[tuple] = ()
    params: ClassVar[tuple] = ()
    fill: ClassVar[object] = None
    kernel_id: ClassVar[int] = -1
    coords_per_block: ClassVar[int] = 1

    def __post_init__(self):
        for domain, _ in self.params:
            object.__setattr__(self, domain.name, domain.check(getattr(self, domain.name)))

    @property
    def kernel_params(self) -> tuple[float, float]:
        """The parameters as the kernels' ``(p0, p1)`` (0.0 where a model has fewer)."""
        values = [float(getattr(self, d.name)) for d, _ in self.params]
        return tuple(values + [0.0] * (2 - len(values)))

    @property
    def spec(self) -> str:
        """The string form, read back by :func:`model_from_spec`; trailing defaults omitted."""
        values = [getattr(self, d.name) for d, _ in self.params]
        while values and self.params[len(values) - 1][1] is not None and values[-1] == self.params[len(values) - 1][1]:
            values.pop()
        return ":".join([self.spec_name] + [repr(v) for v in values])

    def coordinate_bounds(self, big, small):
        """Upper bounds of two probabilities for one coordinate ``g`` as drawn here.

        Returns ``(p_big, p_small)``: ``p_big >= P(g is inf or NaN, or |g| > big)``
        (counting overflow *inside* the transform, where the true value is finite)
        and ``p_small >= P(|g| < small)``.  They bound the chance that float64
        sums of ``g`` overflow or lose precision
        (:func:`lni_geometry.sampling.range_risk`); each model derives its own
        in its docstring.  The base class knows nothing: ``(1, 1)``.
        """
        return 1.0, 1.0


def spec_help():
    """``"valid models: 'gaussian', 'stable:ALPHA', ..."``: every spec form of the registry."""
    forms = []
    for name, cls in MODELS.items():
        required = sum(1 for _, default in cls.params if default is None)
        for k in range(required, len(cls.params) + 1):
            forms.append(":".join([name] + [d.name.upper() for d, _ in cls.params[:k]]))
    return "valid models: " + ", ".join(repr(f) for f in forms)


def _spec_number(text, spec):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"malformed model string {spec!r}: {text!r} is not a number; {spec_help()}") from None


def model_from_spec(spec):
    """A model from its string form.

    ``"gaussian"`` (or ``"normal"``) -> :class:`Gaussian`;
    ``"stable:ALPHA"`` and ``"stable:ALPHA:SCALE"`` -> :class:`SymmetricStable`;
    ``"t:DF"`` -> :class:`StudentT`; in general ``"NAME:P0:P1"`` for any
    registered model (:data:`MODELS`), trailing parameters with defaults
    optional.  ``model_from_spec(m.spec) == m`` for every model ``m``.

    Raises
    ------
    ValueError
        For an unknown or malformed model string, or parameters out of range.

    Examples
    --------
    >>> model_from_spec("stable:0.8")
    SymmetricStable(alpha=0.8, scale=1.0)
    >>> model_from_spec("t:2.5")
    StudentT(df=2.5)
    """
    if isinstance(spec, GradientModel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"model must be a GradientModel or a model string, got {type(spec).__name__}")
    parts = [p.strip() for p in spec.strip().lower().split(":")]
    name, values = parts[0], parts[1:]
    cls = MODELS.get(name) or next((c for c in MODELS.values() if name in c.aliases), None)
    if cls is not None:
        required = sum(1 for _, default in cls.params if default is None)
        if required <= len(values) <= len(cls.params):
            return cls(*(_spec_number(v, spec) for v in values))
    raise ValueError(f"unknown model {spec!r}; {spec_help()}")
