"""Monte Carlo sampling of the angles of random vectors: ``sample_angles``.

The data flow (``CONTRIBUTING.md``, "The data flow")::

    seed -> key -> Philox words -> model coordinates -> fused sums per sample
         -> angles -> AngleSample

For a sample ``g`` of dimension ``n`` with sums ``l1 = sum|g_i|``,
``l2sq = sum g_i**2`` and ``total = sum g_i``:

- bisector angle: ``arccos(l1 / sqrt(n * l2sq))``, the angle between ``g`` and
  ``sign(g)`` (the bisector of the hyperoctant holding ``g``);
- fixed-axis angle: ``arccos(total / sqrt(n * l2sq))``, the angle between ``g``
  and ``e = (1, ..., 1)/sqrt(n)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import rng
from .backends import BACKENDS, backend_options, get_backend
from .models import Gaussian, GradientModel, model_from_spec
from .validation import check_dim, check_int

__all__ = ["AngleSample", "sample_angles", "sample_vectors", "BACKENDS"]

#: The largest accepted probability that one call's float64 sums leave their safe
#: range (see :func:`range_risk`); calls above it are refused before sampling.
MAX_RANGE_RISK = 1e-6
_DBL_MAX = float(np.finfo(np.float64).max)
_DBL_MIN = float(np.finfo(np.float64).tiny)  # 2**-1022, the smallest normal float64


def smallest_peak(dim):
    """``sqrt(dim * 2**-1022)`` (about ``1.5e-154 sqrt(dim)``): the float64 floor of a sample.

    Squares below ``2**-1022`` are subnormal and rounded to ``2**-1074``, an
    absolute error of at most ``2**-1075`` each, ``dim 2**-1075`` in ``l2sq``;
    when ``l2sq >= dim 2**-1022`` (as when the largest ``|g_i|`` reaches this
    value) that is below ``2**-53 l2sq``, the rounding of one addition.
    """
    return math.sqrt(dim * _DBL_MIN)


def coordinate_limit(dim):
    """``sqrt(DBL_MAX)/dim`` (about ``1.34e154/dim``): the float64 range of one coordinate.

    If every ``|g_i| <= sqrt(DBL_MAX)/dim`` then ``dim * l2sq <= dim**2 max g_i**2
    <= DBL_MAX``, so ``l2sq``, ``dim * l2sq`` (inside the angles), ``l1`` and
    ``total`` are all finite.
    """
    return math.sqrt(_DBL_MAX) / dim


def range_risk(model, dim, samples):
    """An upper bound of the probability that the sums of a call overflow or lose precision.

    Every sum the kernels add is finite and the angles exact to rounding when,
    in every sample, all ``|g_i| <= coordinate_limit(dim)`` (``sqrt(DBL_MAX)/dim``)
    and the largest ``|g_i| >= smallest_peak(dim)`` (``sqrt(dim DBL_MIN)``).  By the union bound the
    probability that this fails somewhere in ``samples`` samples is at most

    ``dim * samples * p_big + samples * p_small**dim``

    with ``(p_big, p_small) = model.coordinate_bounds(coordinate_limit(dim), smallest_peak(dim))``
    (each model derives its bounds: :meth:`GradientModel.coordinate_bounds`).
    The Gaussian model's is 0 (its coordinates are bounded by 6.7637).  For
    ``SymmetricStable(alpha)`` ``p_big`` is about ``C_alpha (1.34e154/dim)**-alpha``
    with ``C_alpha <= 1``: one coordinate beyond ``1e154`` has probability
    ``e**-7`` at ``alpha = 0.02`` (every dimension is refused) and ``e**-35`` at
    ``alpha = 0.1``; with ``dim * samples = 10**12`` a call needs
    ``alpha >= 0.13``, with ``10**6`` ``alpha >= 0.08``, and even one sample
    at ``dim = 2`` needs ``alpha >= 0.041``.  For ``StudentT(df)`` ``p_big`` is
    about ``(1.8e308/dim**2)**(-df/2)``: ``df = 0.01`` is refused everywhere,
    ``df >= 0.083`` passes at ``10**6`` draws and ``df >= 0.13`` at ``10**12``.
    :func:`sample_angles` refuses calls whose bound exceeds
    ``MAX_RANGE_RISK = 1e-6`` (:func:`check_range`), and raises
    ``FloatingPointError`` if a sum overflows all the same.

    Examples
    --------
    >>> from lni_geometry.models import SymmetricStable
    >>> range_risk(SymmetricStable(1.5), 10**6, 1000) < 1e-200
    True
    >>> range_risk(SymmetricStable(0.02), 1000, 10) > 0.01
    True
    """
    big, small = model.coordinate_bounds(coordinate_limit(dim), smallest_peak(dim))
    per_sample = dim * big + (math.exp(dim * math.log(small)) if small > 0 else 0.0)
    return min(1.0, samples * per_sample)


def _smallest_safe_parameter(model, dim, samples):
    """The smallest alpha (stable) or df (Student-t) with ``range_risk <= MAX_RANGE_RISK``
    at this size (rounded up to 2 digits), or None."""
    from .models import StudentT, SymmetricStable

    if isinstance(model, SymmetricStable):
        make, lo, hi = (lambda a: SymmetricStable(a, model.scale)), 1e-3, 2.0
    elif isinstance(model, StudentT):
        make, lo, hi = StudentT, 1e-3, 1e3
    else:
        return None
    if range_risk(make(hi), dim, samples) > MAX_RANGE_RISK:
        return None
    for _ in range(60):  # bisection in log space; the risk decreases with the parameter
        mid = math.sqrt(lo * hi)
        if range_risk(make(mid), dim, samples) > MAX_RANGE_RISK:
            lo = mid
        else:
            hi = mid
    digits = 1 - math.floor(math.log10(hi))
    return math.ceil(hi * 10**digits) / 10**digits


def check_range(model, dim, samples):
    """Refuse (ValueError) a call whose :func:`range_risk` exceeds ``MAX_RANGE_RISK``.

    The message names the risk, the largest number of samples at this
    dimension and the smallest alpha or df at this size that pass.
    """
    model = check_model(model)
    risk = range_risk(model, dim, samples)
    if risk <= MAX_RANGE_RISK:
        return risk
    per_sample = range_risk(model, dim, 1)
    most = int(MAX_RANGE_RISK / per_sample) if per_sample > 0 else None
    hints = []
    if most:
        hints.append(f"at most {most} samples at dim {dim}")
    param = _smallest_safe_parameter(model, dim, samples)
    from .models import SymmetricStable

    name = "alpha" if isinstance(model, SymmetricStable) else "df"
    if param is not None:
        hints.append(f"{name} >= {param:g} for dim {dim} x {samples} samples")
    elif isinstance(model, SymmetricStable):
        hints.append("a scale nearer 1 (angles do not depend on the scale)")
    raise ValueError(
        f"model {model.spec!r} at dim {dim} x {samples} samples: float64 sums would overflow or "
        f"lose precision with probability up to {risk:.2g} (a coordinate beyond "
        f"sqrt(DBL_MAX)/dim = {coordinate_limit(dim):.3g}, or a whole sample below "
        f"{smallest_peak(dim):.2g}); the limit is {MAX_RANGE_RISK:g}"
        + ("; use " + ", or ".join(hints) if hints else "")
    )


def _check_sums(sums, model, dim, start):
    """Raise FloatingPointError if any sample's sums left the safe float64 range."""
    l2sq = sums[:, 1]
    bad = ~(np.isfinite(sums).all(axis=1) & (l2sq >= dim * _DBL_MIN))
    if bad.any():
        idx = np.flatnonzero(bad) + start
        shown = ", ".join(str(int(i)) for i in idx[:5]) + (", ..." if idx.size > 5 else "")
        raise FloatingPointError(
            f"{idx.size} of {len(sums)} samples of model {model.spec!r} at dim {dim} have sums that "
            f"overflowed or underflowed float64 (samples {shown}); their angles would be wrong. "
            f"This had probability up to {range_risk(model, dim, len(sums)):.2g}: an unlucky draw"
        )


def check_model(model):
    """``model`` as a GradientModel: None -> Gaussian, a string -> :func:`model_from_spec`."""
    if model is None:
        return Gaussian()
    if isinstance(model, str):
        return model_from_spec(model)
    if not isinstance(model, GradientModel):
        raise TypeError(
            f"model must be a GradientModel (e.g. lni_geometry.Gaussian()) or a model string, "
            f"got {type(model).__name__}"
        )
    return model


def resolve_backend(backend):
    """The name of the backend that ``backend`` means here: ``get_backend(backend).NAME``.

    "auto" -> "cuda" or "cpu"; "cuda" raises where no GPU is usable
    (:func:`lni_geometry.backends.get_backend`, the one resolver).
    """
    return get_backend(backend).NAME


_ZIP_MAGIC = b"PK\x03\x04"


@contextlib.contextmanager
def _npz(path):
    """``np.load(path)`` of an .npz file, every failure a one-line ValueError saying what is wrong.

    A file that is not a zip archive (a text file, a PNG) is named as such
    rather than reported by numpy as pickled data; a damaged or truncated
    archive is called that, whatever zipfile, zlib or numpy raised.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head != _ZIP_MAGIC:
        kind = "an empty file" if not head else "not an .npz archive (no zip signature at its start)"
        raise ValueError(f"cannot read {path} as an AngleSample file: it is {kind}")
    try:
        with np.load(path, allow_pickle=False) as data:
            yield data
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"cannot read {path} as an AngleSample file: it is a damaged or truncated "
                         f".npz archive ({type(exc).__name__}: {exc})") from exc


@dataclass(eq=False)
class AngleSample:
    """Angles and sums of the samples ``start`` to ``start + len - 1`` of a stream.

    Attributes
    ----------
    bisector : ndarray of float64
        Angle between each sample and its sign vector, in radians,
        ``arccos(l1 / sqrt(dim * l2sq))``, in ``[0, arccos(1/sqrt(dim))]``.
    fixed_axis : ndarray of float64
        Angle to ``e = (1, ..., 1)/sqrt(dim)``, ``arccos(total / sqrt(dim * l2sq))``,
        in ``[0, pi]``.
    l1, l2sq, total : ndarray of float64
        ``sum |g_i|``, ``sum g_i**2``, ``sum g_i`` of the raw coordinates.
    dim : int
    model : GradientModel
    seed : int or numpy.random.SeedSequence
    start : int
        Index of the first sample.
    backend : str
        The backend that computed the sums.
    """

    l1: np.ndarray
    l2sq: np.ndarray
    total: np.ndarray
    dim: int
    model: GradientModel
    seed: object = 0
    start: int = 0
    backend: str = "cpu"
    bisector: np.ndarray = field(init=False, repr=False)
    fixed_axis: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.l1 = np.asarray(self.l1, dtype=np.float64)
        self.l2sq = np.asarray(self.l2sq, dtype=np.float64)
        self.total = np.asarray(self.total, dtype=np.float64)
        shapes = {self.l1.shape, self.l2sq.shape, self.total.shape}
        if len(shapes) != 1 or self.l1.ndim != 1:
            raise ValueError(f"l1, l2sq and total must be 1-D arrays of one length, got shapes {sorted(shapes)}")
        self.bisector = angles_from_sums(self.l1, self.l2sq, self.dim, bisector=True)
        self.fixed_axis = angles_from_sums(self.total, self.l2sq, self.dim)

    def __len__(self):
        return self.l1.shape[0]

    def __repr__(self):
        deg = np.degrees(self.bisector)
        stats = f"bisector mean {deg.mean():.4f} deg, std {deg.std():.4f} deg" if len(self) else "empty"
        return (
            f"AngleSample(dim={self.dim}, samples={len(self)}, model={self.model.spec!r}, "
            f"seed={self.seed!r}, start={self.start}, backend={self.backend!r}; {stats})"
        )

    @property
    def sums(self):
        """The sums as one array of shape ``(samples, 3)``: columns l1, l2sq, total."""
        return np.stack([self.l1, self.l2sq, self.total], axis=1)

    def metadata(self):
        """JSON-able provenance: dim, model, seed, start, samples, backend, version."""
        from . import __version__

        return {
            "dim": self.dim,
            "model": self.model.spec,
            "seed": rng.seed_metadata(self.seed),
            "start": self.start,
            "samples": len(self),
            "backend": self.backend,
            "version": __version__,
        }

    def save(self, path, metadata=None, **arrays):
        """Write the sums and metadata to ``path`` (.npz); ``load`` reads it back exactly.

        Parameters
        ----------
        path : str or path-like
        metadata : dict, optional
            Extra JSON-able entries merged into the stored metadata (e.g. provenance).
        **arrays
            Extra arrays stored beside the sums (e.g. a histogram); ``load`` ignores them.

        The file is written to a temporary name and renamed into place, so an
        interruption never leaves a half-written file at ``path``.
        """
        path = os.fspath(path)
        meta = self.metadata()
        if metadata:
            meta.update(metadata)
        tmp = f"{path}.partial-write"
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                l1=self.l1,
                l2sq=self.l2sq,
                total=self.total,
                metadata=np.array(json.dumps(meta)),
                **arrays,
            )
        os.replace(tmp, path)

    @staticmethod
    def read_metadata(path):
        """The metadata dict stored in an AngleSample file (ValueError if there is none)."""
        path = os.fspath(path)
        with _npz(path) as data:
            files = data.files
            meta_text = str(data["metadata"]) if "metadata" in files else None
        if meta_text is None:
            raise ValueError(f"{path} is not an AngleSample file: it has no metadata")
        try:
            return json.loads(meta_text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} has corrupt AngleSample metadata: {exc}") from exc

    @classmethod
    def load(cls, path):
        """Read an AngleSample written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not an AngleSample file (missing arrays or metadata).
        """
        path = os.fspath(path)
        with _npz(path) as data:
            files = set(data.files)
            missing = {"l1", "l2sq", "total", "metadata"} - files
            if not missing:
                meta_text = str(data["metadata"])
                arrays = {k: data[k] for k in ("l1", "l2sq", "total")}
        if missing:
            raise ValueError(f"{path} is not an AngleSample file: missing {sorted(missing)}")
        try:
            meta = json.loads(meta_text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} has corrupt AngleSample metadata: {exc}") from exc
        try:
            fields = dict(
                dim=int(meta["dim"]),
                model=model_from_spec(meta["model"]),
                seed=rng.seed_from_metadata(meta["seed"]),
                start=int(meta["start"]),
                backend=str(meta["backend"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} has incomplete or invalid AngleSample metadata: {exc}") from exc
        try:
            return cls(**arrays, **fields)
        except ValueError as exc:
            raise ValueError(f"{path} holds invalid sums: {exc}") from exc

    @classmethod
    def concatenate(cls, parts):
        """Join consecutive pieces of one stream (same dim, model, seed) into one sample."""
        parts = list(parts)
        if not parts:
            raise ValueError("need at least one AngleSample to concatenate")
        first = parts[0]
        pos = first.start
        for p in parts:
            if (p.dim, p.model, rng.seed_metadata(p.seed)) != (
                first.dim,
                first.model,
                rng.seed_metadata(first.seed),
            ):
                raise ValueError("pieces differ in dim, model or seed")
            if p.start != pos:
                raise ValueError(f"pieces are not consecutive: expected start {pos}, got {p.start}")
            pos += len(p)
        return cls(
            l1=np.concatenate([p.l1 for p in parts]),
            l2sq=np.concatenate([p.l2sq for p in parts]),
            total=np.concatenate([p.total for p in parts]),
            dim=first.dim,
            model=first.model,
            seed=first.seed,
            start=first.start,
            backend=first.backend,
        )


def angles_from_sums(numerator, l2sq, dim, bisector=False):
    """``arccos(numerator / sqrt(dim * l2sq))`` in radians.

    Rounding can push the ratio past 1 by a few ulp when all ``|g_i|`` are
    equal; only such excursions (below ``1e-12``) are rounded back to 1.  With
    ``bisector=True`` (``numerator = l1``) the ratio is also at least
    ``1/sqrt(dim)`` (Cauchy-Schwarz: ``l1**2 >= l2sq``), reached by 1-sparse
    vectors, and excursions below it by rounding are rounded back the same way,
    so the angle never exceeds ``arccos(1/sqrt(dim))``.

    Raises
    ------
    ValueError
        For non-finite sums, ``l2sq <= 0``, or a cosine out of range beyond
        rounding: such sums have no angle, and none is invented.
    """
    num = np.asarray(numerator, dtype=np.float64)
    l2sq = np.asarray(l2sq, np.float64)
    bad = ~(np.isfinite(num) & np.isfinite(l2sq) & (l2sq > 0))
    if np.any(bad):
        raise ValueError(
            f"{int(np.count_nonzero(bad))} of {bad.size} samples have non-finite sums or l2sq <= 0 "
            "(overflowed or corrupt data); they have no angle"
        )
    ratio = num / np.sqrt(dim * l2sq)
    if np.any(~np.isfinite(ratio)):
        raise ValueError("dim * l2sq overflows float64: these sums have no angle in double precision")
    low = 1.0 / math.sqrt(dim) if bisector else -1.0
    if np.any(np.abs(ratio) > 1.0 + 1e-12) or np.any(ratio < low - 1e-12 * abs(low)):
        raise ValueError(
            f"cosine outside [{low:.6g}, 1] beyond rounding (sums that no vector of dim {dim} has): corrupt sums"
        )
    return np.arccos(np.clip(ratio, low, 1.0))


def sample_angles(dim, samples, model=None, *, seed=0, start=0, backend="auto", progress=False,
                  options=None, client=None, chunk_samples=None, worker_backend="auto"):
    """Sample the bisector and fixed-axis angles of random vectors.

    Sample ``s`` (for ``s = start .. start + samples - 1``) is the vector
    ``g`` of ``dim`` coordinates drawn by ``model`` from the counter-based
    stream of ``seed`` (coordinate ``i`` a pure function of (key, s, i); see
    :mod:`lni_geometry.rng`).  The vector is never stored: the kernels add up
    ``l1 = sum|g_i|``, ``l2sq = sum g_i**2`` and ``total = sum g_i`` in float64,
    so memory is O(samples) at any dimension.

    Parameters
    ----------
    dim : int
        Dimension ``n >= 2`` (the sphere is S^(n-1)).
    samples : int
        Number of samples, ``>= 1``.
    model : GradientModel or str, optional
        Coordinate model; default :class:`lni_geometry.Gaussian` (uniform
        direction on the sphere).
    seed : int or numpy.random.SeedSequence, default 0
    start : int, default 0
        Index of the first sample; ``sample_angles(d, a + b, start=0)`` equals
        ``sample_angles(d, a)`` followed by ``sample_angles(d, b, start=a)``,
        bit for bit.
    backend : {"auto", "cpu", "cuda", "dask"}
        "auto" uses a CUDA GPU when one is usable, else the CPU
        (:func:`lni_geometry.backends.get_backend`).
    progress : bool
        Show a progress bar (tqdm) over the samples, with an ETA.
    options : object, optional
        The backend's options object (its ``Options`` type), e.g.
        ``lni_geometry.backends.DaskOptions(client="tcp://host:8786",
        chunk_samples=100)`` for ``backend="dask"`` (``docs/dask.md``); the
        CPU and CUDA backends take none.
    client, chunk_samples, worker_backend
        The older spelling of ``options=DaskOptions(client=...,
        chunk_samples=..., worker_backend=...)``, kept for compatibility
        (``backend="dask"`` only; their defaults are accepted by every
        backend).

    Returns
    -------
    AngleSample

    Raises
    ------
    ValueError
        For arguments out of range, and for a model so heavy-tailed at this
        size that its float64 sums could overflow (:func:`check_range`: the
        message names the smallest alpha or df and the most samples that pass).
    FloatingPointError
        If a sum overflowed or underflowed anyway (probability below
        ``MAX_RANGE_RISK``): no NaN, inf or impossible angle is returned.

    Examples
    --------
    >>> s = sample_angles(1000, 200, seed=1, backend="cpu")
    >>> from lni_geometry.theory import BisectorAngle
    >>> law = BisectorAngle(1000)       # mean 0.64661 rad -> arccos(sqrt(2/pi)) = 0.64702
    >>> se = law.std() / 200**0.5       # standard error of the mean of 200 angles
    >>> bool(abs(s.bisector.mean() - law.mean()) < 5 * se)
    True
    """
    dim = check_dim(dim)
    samples = check_int("samples", samples, 1)
    start = check_int("start", start, 0)
    if start + samples > rng.MAX_SAMPLE_INDEX:
        raise ValueError(
            f"start + samples must be <= 2**48 = {rng.MAX_SAMPLE_INDEX}, got {start + samples}"
        )
    model = check_model(model)
    check_range(model, dim, samples)
    key = rng.key_from_seed(seed)
    impl = get_backend(backend)
    options = backend_options(
        impl, options, client=client, chunk_samples=chunk_samples, worker_backend=worker_backend
    )
    if progress:
        from tqdm.auto import tqdm

        with tqdm(total=samples, unit="sample", desc=f"dim {dim}") as bar:
            sums = impl.sample_sums(key, model, dim, start, samples, progress=bar.update, options=options)
    else:
        sums = impl.sample_sums(key, model, dim, start, samples, options=options)
    _check_sums(sums, model, dim, start)
    return AngleSample(
        l1=sums[:, 0],
        l2sq=sums[:, 1],
        total=sums[:, 2],
        dim=dim,
        model=model,
        seed=seed,
        start=start,
        backend=impl.NAME,
    )


def sample_vectors(dim, samples, model=None, *, seed=0, start=0):
    """The raw coordinates behind :func:`sample_angles`, materialised.

    Row ``r`` is sample ``start + r``: exactly the numbers whose sums
    ``sample_angles`` reports.  Memory is ``8 * dim * samples`` bytes: for small
    dimensions, tests and notebooks.

    Returns
    -------
    ndarray of float64, shape (samples, dim)

    Examples
    --------
    >>> v = sample_vectors(5, 2, seed=3)
    >>> v.shape
    (2, 5)
    """
    dim = check_dim(dim)
    samples = check_int("samples", samples, 1)
    start = check_int("start", start, 0)
    if start + samples > rng.MAX_SAMPLE_INDEX:
        raise ValueError(
            f"start + samples must be <= 2**48 = {rng.MAX_SAMPLE_INDEX}, got {start + samples}"
        )
    if dim * samples > 2**31:
        raise ValueError(
            f"dim * samples must be <= 2**31 coordinates to materialise, got {dim * samples}; "
            "use sample_angles for large sizes"
        )
    model = check_model(model)
    key = rng.key_from_seed(seed)
    from .backends import cpu

    out = cpu.sample_coords(key, model, dim, start, samples)
    bad = ~np.isfinite(out)
    if bad.any():
        raise FloatingPointError(
            f"{int(bad.sum())} coordinates of model {model.spec!r} are inf or NaN: they overflowed float64 inside the "
            "transform (their true values are finite but beyond 1.8e308); use a larger alpha or df"
        )
    return out
