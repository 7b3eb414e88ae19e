"""Backends: where the kernels run.  Backends launch, kernels compute.

The kernels (:mod:`lni_geometry.kernels` for the CPU,
:mod:`lni_geometry.cuda_kernels` for CUDA) compute the per-sample sums; a
backend chooses the launch shape, moves memory, splits work and reports
progress, and computes nothing itself:

- :mod:`.cpu`: numba threads on this machine (always available);
- :mod:`.cuda`: numba.cuda kernels on an NVIDIA GPU (the ``cuda`` extra);
- :mod:`.dask_backend`: sample ranges spread over dask.distributed workers,
  each range computed there by the CPU (or CUDA) backend.

The interface
-------------
A backend is a module (or any object) with the attributes of :class:`Backend`,
and :func:`get_backend` is the one place that turns a name into one.  Every
caller (``sample_angles``, ``sweep``, the commands, resumable runs) resolves
names through it and calls every backend the same way::

    sums = get_backend(name).sample_sums(key, model, dim, start, samples,
                                         progress=callback, options=options)

- It receives a **key**, never a seed: two uint32 words,
  ``rng.key_from_seed(seed)`` (:func:`lni_geometry.validation.check_key`
  refuses a seed); a ``GradientModel``; ``dim >= 1``; the first sample
  ``start`` and the count ``samples`` (``start + samples <= 2**48``).
- It returns float64 ``(samples, 3)``: row ``r`` is ``(l1, l2sq, total) =
  (sum |g_i|, sum g_i**2, sum g_i)`` of sample ``start + r`` of the stream.
  What a backend promises about the bits (the CPU's exactly, or a tolerance)
  is stated in the compatibility policy of :mod:`lni_geometry.rng`.
- It reports progress in **samples**: ``progress(n)`` (when not None), from
  the calling thread, with the samples finished since the last call; ``n`` is
  a fraction when one sample spans several launches or tasks.  The calls of
  one ``sample_sums`` add up to ``samples``.
- It takes its **options** as one object of its own type ``Options`` (a
  frozen dataclass that checks its fields), or None for the defaults;
  backends without options have ``Options = None`` and refuse any.
  ``DaskOptions(client, chunk_samples, worker_backend)`` is the Dask
  backend's.  This module imports no backend: :func:`options_type` looks a
  registered backend's ``Options`` up when asked, and
  ``lni_geometry.backends.DaskOptions`` is resolved that way on first use.
- It checks its arguments with :func:`check_sums_args` and
  :func:`check_options` (this module, on :mod:`lni_geometry.validation`'s
  domains) before any work.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Optional, Protocol, runtime_checkable

import numpy as np

from ..rng import MAX_SAMPLE_INDEX
from ..validation import MAX_DIM, check_choice, check_int, check_key

__all__ = [
    "BACKENDS",
    "Backend",
    "DaskOptions",
    "backend_options",
    "check_options",
    "check_sums_args",
    "cuda_available",
    "cuda_unavailable_reason",
    "get_backend",
    "options_type",
    "require_cuda",
]

#: The backends by name: the module (relative to this package) that implements each.
REGISTRY = {"cpu": ".cpu", "cuda": ".cuda", "dask": ".dask_backend"}
#: The names :func:`get_backend` accepts ("auto": CUDA when a real GPU is usable, else CPU).
BACKENDS = ("auto", *REGISTRY)
#: Options classes importable from this module, by name: the backend that declares each.
OPTIONS_EXPORTS = {"DaskOptions": "dask"}
#: The backend whose options the keywords of :func:`backend_options` spell.
KEYWORD_OPTIONS_BACKEND = "dask"


@runtime_checkable
class Backend(Protocol):
    """What a backend provides (a module satisfies it: PEP 544, modules as implementations).

    Attributes
    ----------
    NAME : str
        Its name in :data:`BACKENDS` (what ``AngleSample.backend`` records).
    Options : type or None
        The type of its options object (a frozen dataclass whose defaults are
        the backend's defaults), or None when it takes none.
    """

    NAME: str
    Options: Optional[type]

    def sample_sums(
        self,
        key: np.ndarray,
        model,
        dim: int,
        start: int,
        samples: int,
        progress: Optional[Callable[[float], object]] = None,
        options=None,
    ) -> np.ndarray:
        """Sums ``(l1, l2sq, total)`` of samples ``start .. start + samples - 1``,
        float64 of shape ``(samples, 3)`` (see the module docstring)."""


def cuda_unavailable_reason():
    """Why the CUDA backend cannot run here, or None when it can."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba is a dependency
        return f"numba.cuda cannot be imported ({exc})"
    try:
        if not cuda.is_available():
            return (
                "no usable CUDA GPU was found (no NVIDIA driver, no device, or the "
                "numba-cuda bindings are missing)"
            )
    except Exception as exc:  # pragma: no cover - depends on the driver
        return f"CUDA initialisation failed: {exc}"
    return None


def cuda_available():
    """True when a real CUDA GPU is usable here (the simulator does not count)."""
    from numba import config

    return not config.ENABLE_CUDASIM and cuda_unavailable_reason() is None


def require_cuda():
    """The CUDA backend module, or a RuntimeError that says why not and how to fix it."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(
            f"backend='cuda' is not usable: {reason}. Install the GPU extra with "
            "`pip install \"lni-geometry[cuda]\"` (numba-cuda) on a machine with an "
            "NVIDIA GPU and driver, or use backend='cpu'."
        )
    try:
        return importlib.import_module(REGISTRY["cuda"], __name__)
    except ImportError as exc:
        raise RuntimeError(f"backend='cuda' is not available in this build: {exc}") from exc


def get_backend(name="auto"):
    """The backend called ``name``: a module with the attributes of :class:`Backend`.

    ``"auto"`` is CUDA when a real GPU is usable (never the simulator), else
    the CPU; the module's ``NAME`` says which.

    Raises
    ------
    ValueError
        For a name not in :data:`BACKENDS`.
    RuntimeError
        For ``"cuda"`` where no GPU is usable, saying why and how to fix it.

    Examples
    --------
    >>> get_backend("cpu").NAME
    'cpu'
    """
    check_choice("backend", name, BACKENDS)
    if name == "auto":
        name = "cuda" if cuda_available() else "cpu"
    if name == "cuda":
        return require_cuda()
    return importlib.import_module(REGISTRY[name], __name__)


def options_type(name):
    """The options class backend ``name`` declares (its ``Options``), or None when it takes none.

    Read from the backend's module, which this imports on first use (the
    Dask backend's module imports no dask; dask comes when a client is
    needed), without checking that the backend can run here.

    Examples
    --------
    >>> options_type("dask").__name__
    'DaskOptions'
    >>> options_type("cpu") is None
    True
    """
    check_choice("backend", name, tuple(REGISTRY))
    return importlib.import_module(REGISTRY[name], __name__).Options


def __getattr__(name):
    """The options classes of :data:`OPTIONS_EXPORTS` (``DaskOptions``), resolved on first use."""
    if name in OPTIONS_EXPORTS:
        kind = options_type(OPTIONS_EXPORTS[name])
        globals()[name] = kind
        return kind
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    """The module's names, with the options classes :func:`__getattr__` resolves."""
    return sorted(set(globals()) | set(OPTIONS_EXPORTS))


def check_sums_args(key, model, dim, start, samples):
    """The common arguments of ``sample_sums``, checked: ``(key, dim, start, samples)``.

    ``key`` comes back as a uint32 array of shape (2,) and the integers as
    Python ints (:mod:`lni_geometry.validation`); ``model`` must be a
    ``GradientModel``.
    """
    from ..models import GradientModel

    key = check_key(key)
    if not isinstance(model, GradientModel):
        raise TypeError(f"model must be a GradientModel, got {type(model).__name__}")
    dim = check_int("dim", dim, 1, MAX_DIM)
    start = check_int("start", start, 0, MAX_SAMPLE_INDEX)
    samples = check_int("samples", samples, 0, MAX_SAMPLE_INDEX - start)
    return key, dim, start, samples


def check_options(name, kind, options):
    """``options`` of backend ``name``, whose options type is ``kind`` (None: it takes none).

    Returns the options object (``kind()``, the defaults, for None), or None
    for a backend that takes no options.
    """
    if kind is None:
        if options is not None:
            raise ValueError(f"backend {name!r} takes no options, got {options!r}")
        return None
    if options is None:
        return kind()
    if not isinstance(options, kind):
        raise TypeError(f"options of backend {name!r} must be a {kind.__name__}, got {type(options).__name__}")
    return options


def backend_options(backend, options=None, **keywords):
    """The options object ``backend`` is called with: from ``options`` or from keywords.

    The keywords are the older spelling of the Dask options
    (``sample_angles(..., client=..., chunk_samples=..., worker_backend=...)``),
    kept as a compatibility layer: each is a field of the options class of
    :data:`KEYWORD_OPTIONS_BACKEND` (:class:`DaskOptions`, looked up by
    :func:`options_type` when keywords are passed), and one left at that
    field's default counts as not given, so every backend accepts
    ``client=None``.  Given ones build ``DaskOptions(**given)``; they are
    refused for other backends and together with ``options``.
    """
    if not keywords:
        return check_options(backend.NAME, backend.Options, options)
    kind = options_type(KEYWORD_OPTIONS_BACKEND)
    defaults = {f.name: f.default for f in dataclasses.fields(kind)}
    unknown = sorted(set(keywords) - set(defaults))
    if unknown:
        raise TypeError(f"unknown backend options {unknown}")
    given = {k: v for k, v in keywords.items() if not (v is defaults[k] or v == defaults[k])}
    if not given:
        return check_options(backend.NAME, backend.Options, options)
    if backend.Options is not kind:
        raise ValueError(f"{sorted(given)} apply to backend={KEYWORD_OPTIONS_BACKEND!r} only, "
                         f"got backend={backend.NAME!r}")
    if options is not None:
        raise ValueError(f"pass the Dask options either as options= or as keywords {sorted(given)}, not both")
    return kind(**given)
