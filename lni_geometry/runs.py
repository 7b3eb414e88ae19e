"""Long runs that lose nothing when interrupted: batches, partial saves, resume.

A run of ``samples`` samples is computed in batches of consecutive sample
indices.  Because every sample is a pure function of (seed, index), a run
interrupted after ``k`` samples and resumed from sample ``k`` gives exactly the
numbers of an uninterrupted run.  On Ctrl-C the samples done so far are saved
(with ``"complete": false`` in the metadata) and :class:`RunInterrupted` is
raised; ``resume=True`` continues from the saved file.
"""

from __future__ import annotations

import os
import time

from .models import model_from_spec
from .rng import seed_metadata
from .sampling import AngleSample, resolve_backend, sample_angles

#: Coordinates per batch: about a second of work on 2 CPU cores.
BATCH_COORDS = 1 << 29


class RunInterrupted(Exception):
    """A run stopped by Ctrl-C; ``done`` samples of ``target`` are saved at ``path``."""

    def __init__(self, path, done, target):
        if done:
            text = f"interrupted: {done} of {target} samples saved to {path}; rerun with --resume to continue"
        else:
            text = "interrupted before the first batch finished; nothing was saved"
        super().__init__(text)
        self.path, self.done, self.target = path, done, target


class DataMismatch(ValueError):
    """An existing data file belongs to a different run."""


def _same_run(meta, dim, model, seed, target):
    want = {"dim": dim, "model": model.spec, "seed": seed_metadata(seed), "target_samples": target}
    got = {k: meta.get(k) for k in want}
    return got == want, want, got


def run_resumable(path, dim, samples, model, seed, backend="auto", *, resume=False, reuse=False,
                  progress=True, provenance=None, batch=None):
    """Sample ``samples`` angles into ``path``, in batches, saving on interruption.

    Parameters
    ----------
    path : str
        The .npz data file (an AngleSample file with run metadata).
    dim, samples : int
    model : GradientModel or str
    seed : int or SeedSequence
    backend : str
    resume : bool
        Continue the partial run saved at ``path``.
    reuse : bool
        If ``path`` already holds the complete run with these parameters, return
        it without sampling.
    progress : bool
        A tqdm bar with an ETA.
    provenance : dict, optional
        Extra metadata stored with the data (the command line, say).
    batch : int, optional
        Samples per batch (default: about ``2**29`` coordinates).

    Returns
    -------
    (AngleSample, dict)
        The samples and the stored metadata (with ``wall_time_s`` summed over
        resumed sessions).

    Raises
    ------
    FileExistsError
        ``path`` exists and neither ``resume`` nor a matching ``reuse`` applies.
    DataMismatch
        The file at ``path`` is a run with other parameters.
    RunInterrupted
        On Ctrl-C, after saving what was done.
    """
    model = model_from_spec(model)
    name = resolve_backend(backend)
    done = None
    wall = 0.0
    if os.path.exists(path):
        meta = AngleSample.read_metadata(path)
        same, want, got = _same_run(meta, dim, model, seed, samples)
        if not same:
            raise DataMismatch(f"{path} holds a different run ({got}) than asked ({want}); choose another path")
        if meta.get("complete") and (reuse or resume):
            return AngleSample.load(path), meta
        if not resume:
            raise FileExistsError(0, "exists", path)
        done = AngleSample.load(path)
        if meta.get("backend") != name:
            raise DataMismatch(f"{path} was computed with backend {meta.get('backend')!r}; resume it with that backend, not {name!r}")
        wall = float(meta.get("wall_time_s", 0.0))
    elif resume:
        raise FileNotFoundError(0, "nothing to resume", path)

    parts = [done] if done is not None and len(done) else []
    pos = len(done) if done is not None else 0
    batch = batch or max(1, BATCH_COORDS // dim)
    meta_extra = {"target_samples": samples, **(provenance or {})}

    def save(complete, elapsed):
        sample = AngleSample.concatenate(parts)
        meta = dict(meta_extra, complete=complete, wall_time_s=round(wall + elapsed, 3))
        sample.save(path, metadata=meta)
        return sample, AngleSample.read_metadata(path)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=samples, initial=pos, unit="sample", desc=f"S^{dim - 1}", smoothing=0.1)
    t0 = time.perf_counter()
    try:
        while pos < samples:
            n = min(batch, samples - pos)
            parts.append(sample_angles(dim, n, model, seed=seed, start=pos, backend=name))
            pos += n
            if bar is not None:
                bar.update(n)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if parts:
            save(False, time.perf_counter() - t0)
        raise RunInterrupted(path, pos, samples) from None
    if bar is not None:
        bar.close()
    return save(True, time.perf_counter() - t0)
