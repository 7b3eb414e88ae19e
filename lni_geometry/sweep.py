"""Grids of runs: :func:`sweep` over dimensions x gradient models, with an on-disk cache.

Each cell ``(dim, model)`` is ``sample_angles(dim, samples, model, seed=seed)``
summarised by the mean, standard deviation and quantiles of its bisector angle
``theta = arccos(|g|_1 / (sqrt(n) |g|_2))`` (the angle between ``g`` and
``sign(g)``).  With ``backend="dask"`` the tasks of every cell are submitted at
once, so the cluster stays busy across cells; with ``cache=DIR`` each finished
cell is written to ``DIR`` (keyed by its parameters) as soon as it is done, and a
rerun reads it back instead of computing it.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import uuid

import numpy as np

from . import rng
from .models import GradientModel
from .backends import BACKENDS, backend_options, get_backend
from .sampling import AngleSample, check_model
from .validation import check_choice, check_dim, check_int

__all__ = ["sweep", "SweepTable", "stream_version", "QUANTILES"]

#: Quantiles reported for each cell (the ``q05``, ``q50``, ``q95`` columns).
QUANTILES = (0.05, 0.5, 0.95)

#: Columns of a sweep table, in order.
COLUMNS = (
    "dim", "model", "samples", "seed",
    "mean", "std", "sem", "q05", "q50", "q95",
    "mean_deg", "std_deg", "q05_deg", "q50_deg", "q95_deg",
    "backend", "cached",
)


def stream_version():
    """The version of the random stream that cached cells are keyed by:
    :data:`lni_geometry.rng.STREAM_VERSION` (the compatibility policy of
    :mod:`lni_geometry.rng`), not the package version."""
    return rng.STREAM_VERSION


class SweepTable(list):
    """A tidy table: a list of rows (dicts with the keys of ``COLUMNS``).

    One row per (dim, model) cell, in grid order (dims outer, models inner).
    ``pandas.DataFrame(table)`` or :meth:`to_pandas` gives a DataFrame (pandas
    is not a dependency of lni_geometry).
    """

    columns = COLUMNS

    def column(self, name):
        """One column as a numpy array (object dtype for ``model`` and ``seed``)."""
        if name not in COLUMNS:
            raise KeyError(f"unknown column {name!r}; columns are {COLUMNS}")
        values = [row[name] for row in self]
        if name in ("model", "seed", "backend"):
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out
        return np.asarray(values)

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (needs pandas installed)."""
        import pandas as pd

        return pd.DataFrame(list(self), columns=list(COLUMNS))

    def __str__(self):
        shown = ("dim", "model", "samples", "mean_deg", "std_deg", "q05_deg", "q50_deg", "q95_deg", "cached")
        lines = ["  ".join(f"{c:>10}" for c in shown)]
        for row in self:
            cells = []
            for c in shown:
                v = row[c]
                cells.append(f"{v:>10.5f}" if isinstance(v, float) else f"{str(v):>10}")
            lines.append("  ".join(cells))
        return "\n".join(lines)


def summarize(sample, cached=False):
    """The table row of one cell from its :class:`AngleSample`.

    ``std`` is the sample standard deviation (``ddof=1``), ``sem = std/sqrt(N)``
    the standard error of ``mean``; quantiles are numpy's default (linear)
    estimator.  Angles in radians; the ``_deg`` columns in degrees.
    """
    theta = sample.bisector
    n = theta.shape[0]
    mean = float(theta.mean())
    std = float(theta.std(ddof=1))
    q = np.quantile(theta, QUANTILES)
    row = {
        "dim": int(sample.dim),
        "model": sample.model.spec,
        "samples": int(n),
        "seed": rng.seed_metadata(sample.seed),
        "mean": mean,
        "std": std,
        "sem": std / float(np.sqrt(n)),
        "q05": float(q[0]),
        "q50": float(q[1]),
        "q95": float(q[2]),
    }
    for c in ("mean", "std", "q05", "q50", "q95"):
        row[c + "_deg"] = float(np.degrees(row[c]))
    row["backend"] = sample.backend
    row["cached"] = bool(cached)
    return {c: row[c] for c in COLUMNS}


# --- cache ---------------------------------------------------------------------


def cell_params(dim, model, samples, seed):
    """The parameters a cached cell is keyed by (JSON-able)."""
    return {
        "dim": int(dim),
        "model": model.spec,
        "samples": int(samples),
        "seed": rng.seed_metadata(seed),
        "start": 0,
        "stream": stream_version(),
    }


def cell_path(cache, params):
    """File of a cell in the cache directory: readable prefix + SHA-256 of its parameters."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:24]
    spec = "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in params["model"])
    return os.path.join(cache, f"d{params['dim']}_{spec}_n{params['samples']}_{digest}.npz")


def _load_cell(path, params):
    """The cached sample of a cell, or None when absent, unreadable or not this cell."""
    if not os.path.exists(path):
        return None
    try:
        sample = AngleSample.load(path)
    except ValueError:
        return None
    found = {
        "dim": sample.dim,
        "model": sample.model.spec,
        "samples": len(sample),
        "seed": rng.seed_metadata(sample.seed),
        "start": sample.start,
    }
    if any(found[k] != params[k] for k in found):
        return None
    return sample


def _store_cell(path, sample):
    """Write atomically: a reader never sees a half-written cell."""
    tmp = f"{path}.{os.getpid()}-{uuid.uuid4().hex}.tmp"
    try:
        sample.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _compute_cell(dim, model, samples, seed, backend):
    """One cell computed here (the local path of :func:`sweep`)."""
    from .sampling import sample_angles

    return sample_angles(dim, samples, model, seed=seed, backend=backend)


# --- sweep -----------------------------------------------------------------------


def _as_list(value, name, single):
    if isinstance(value, single):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name} must be one value or an iterable of them, got {type(value).__name__}")
    if not items:
        raise ValueError(f"{name} must not be empty")
    return items


def sweep(dims, models, samples, *, seed=0, backend="auto", client=None, cache=None, progress=True,
          options=None):
    """Sample the bisector angle on a grid of dimensions x gradient models.

    Cell ``(n, model)`` is ``sample_angles(n, samples, model, seed=seed)``:
    ``samples`` vectors ``g`` of dimension ``n``, and for each the angle
    ``theta = arccos(|g|_1 / (sqrt(n) |g|_2))`` between ``g`` and its sign
    vector (the rotation a sign-based optimizer such as Lion applies to the
    update; Chen et al., "Symbolic Discovery of Optimization Algorithms",
    NeurIPS 2023).  For Gaussian ``g`` the angle concentrates at
    ``arccos(sqrt(2/pi)) = 0.6472`` rad (37.08 deg) as ``n`` grows.

    Every cell uses the same ``seed``, so each row is reproduced alone by
    ``sample_angles(dim, samples, model, seed=seed)``; cells of one model at
    different dimensions share their leading coordinates (common random
    numbers): each cell's statistics are exact Monte Carlo estimates, but the
    rows are not independent of each other.

    Parameters
    ----------
    dims : int or iterable of int
        Dimensions, each in ``[2, 2**40]``.
    models : GradientModel, str or iterable of them
        Models or model strings (``"gaussian"``, ...; see
        :func:`lni_geometry.model_from_spec`).
    samples : int
        Samples per cell, ``>= 2``.
    seed : int or numpy.random.SeedSequence, default 0
    backend : {"auto", "cpu", "cuda", "dask"}
        "dask" submits the tasks of all cells at once to a dask cluster; the
        others compute the cells here one by one.
    client : distributed.Client, str or None
        Only with ``backend="dask"``: a client, a scheduler address, or None
        (the active dask client, else an embedded LocalCluster); the short
        form of ``options=DaskOptions(client=...)``.
    cache : str or os.PathLike or None
        Directory of finished cells (created if needed).  A cell is stored as
        soon as it is done, keyed by (dim, model spec, samples, seed, stream
        version; see :func:`stream_version`); a rerun reads it back instead of
        computing it, so an interrupted sweep loses no finished cell.
    progress : bool, default True
        A tqdm bar over cells (local backends) or samples (dask).
    options : object, optional
        The backend's options (:func:`lni_geometry.sample_angles`); with
        ``backend="dask"`` a ``DaskOptions`` (client, chunk_samples,
        worker_backend) for every cell.

    Returns
    -------
    SweepTable
        One row (dict) per cell, dims outer and models inner, with columns
        ``dim, model, samples, seed, mean, std, sem, q05, q50, q95`` (radians;
        ``std`` with ``ddof=1``, ``sem = std/sqrt(samples)``), the same in
        degrees (``mean_deg`` ...), ``backend`` (that computed the cell:
        "cpu", "cuda", "dask:cpu" or "dask:cuda") and ``cached`` (read from
        the cache).  The cache key holds no backend: a cell computed on a GPU
        is reused by a CPU sweep (their sums agree to about ``1e-12``
        relative; the ``backend`` column says which it was).

    Examples
    --------
    >>> t = sweep([16, 256], "gaussian", 400, seed=1, backend="cpu", progress=False)
    >>> [row["dim"] for row in t]
    [16, 256]
    >>> import math
    >>> from lni_geometry.theory import BisectorAngle
    >>> row = t[1]                   # n = 256: the law's mean is 36.98 deg (37.07 as n grows)
    >>> law_deg = math.degrees(BisectorAngle(256).mean())
    >>> bool(abs(row["mean_deg"] - law_deg) < 5 * row["std_deg"] / row["samples"] ** 0.5)
    True
    """
    dims = [check_dim(d) for d in _as_list(dims, "dims", numbers.Real)]
    models = [check_model(m) for m in _as_list(models, "models", (str, GradientModel))]
    samples = check_int("samples", samples, 2)
    rng.key_from_seed(seed)  # validates the seed
    check_choice("backend", backend, BACKENDS)
    if client is not None and backend != "dask":
        raise ValueError(f"client is only used with backend='dask', got backend={backend!r}")
    if cache is not None:
        cache = os.fspath(cache)
        os.makedirs(cache, exist_ok=True)

    cells = [(d, m) for d in dims for m in models]
    rows = [None] * len(cells)
    paths = [None] * len(cells)
    for i, (d, m) in enumerate(cells):
        if cache is not None:
            params = cell_params(d, m, samples, seed)
            paths[i] = cell_path(cache, params)
            sample = _load_cell(paths[i], params)
            if sample is not None:
                rows[i] = summarize(sample, cached=True)
    todo = [i for i, row in enumerate(rows) if row is None]
    if not todo:
        return SweepTable(rows)

    def finish(i, sample):
        if paths[i] is not None:
            _store_cell(paths[i], sample)
        rows[i] = summarize(sample)

    impl = get_backend(backend)  # only now: a cached sweep needs no backend
    options = backend_options(impl, options, client=client)
    if impl.NAME == "dask":  # all cells' tasks at once, so that the cluster stays busy
        _sweep_dask(cells, todo, samples, seed, options, progress, finish)
    else:
        name = impl.NAME
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), unit="cell", desc="sweep")
        try:
            for i in todo:
                d, m = cells[i]
                if bar is not None:
                    bar.set_postfix_str(f"dim {d}, {m.spec}")
                finish(i, _compute_cell(d, m, samples, seed, name))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    return SweepTable(rows)


def _sweep_dask(cells, todo, samples, seed, options, progress, finish):
    """Submit every missing cell's tasks at once; store each cell as it completes."""
    from .backends import dask_backend

    key = rng.key_from_seed(seed)
    client, owned = dask_backend.get_client(options.client)
    try:
        info = dask_backend.cluster_info(client, options.worker_backend)
        label = f"dask:{info[1]}"
        entries = [
            dask_backend.submit_sums(client, key, cells[i][1], cells[i][0], 0, samples,
                                     chunk_samples=options.chunk_samples, info=info)
            for i in todo
        ]

        def on_done(j, sums):
            i = todo[j]
            d, m = cells[i]
            finish(i, AngleSample(
                l1=sums[:, 0], l2sq=sums[:, 1], total=sums[:, 2],
                dim=d, model=m, seed=seed, start=0, backend=label,
            ))

        dask_backend.wait_jobs(client, entries, progress=progress, on_done=on_done, desc="sweep")
    finally:
        if owned:
            client.close()
