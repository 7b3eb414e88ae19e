"""Long runs that lose nothing when interrupted: batches, partial saves, resume.

A run of ``samples`` samples is computed in batches of consecutive sample
indices.  Because every sample is a pure function of (seed, index), a run
interrupted after ``k`` samples and resumed from sample ``k`` gives exactly the
numbers of an uninterrupted run.  On Ctrl-C (SIGINT) or SIGTERM (what ``kill``,
``timeout`` and batch schedulers send) the samples done so far are saved (with
``"complete": false`` in the metadata) and :class:`RunInterrupted` is raised;
``resume=True`` continues from the saved file.  A signal is acted on between
batches (about a second of work each), as Python delivers signals.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import threading
import time

from .models import model_from_spec
from .rng import STREAM_VERSION, seed_metadata
from .backends import get_backend
from .sampling import AngleSample, check_range, sample_angles

#: Coordinates per batch: about a second of work on 2 CPU cores.
BATCH_COORDS = 1 << 29


class RunInterrupted(Exception):
    """A run stopped by a signal; ``done`` samples of ``target`` are saved at ``path``.

    ``signal_name`` is ``"SIGINT"`` (Ctrl-C) or ``"SIGTERM"``.
    """

    def __init__(self, path, done, target, signal_name="SIGINT"):
        how = "interrupted" if signal_name == "SIGINT" else f"stopped by {signal_name}"
        if done:
            text = f"{how}: {done} of {target} samples saved to {path}; rerun with --resume to continue"
        else:
            text = f"{how} before the first batch finished; nothing was saved"
        super().__init__(text)
        self.path, self.done, self.target, self.signal_name = path, done, target, signal_name


class DataMismatch(ValueError):
    """An existing data file belongs to a different run."""


class RunExists(FileExistsError):
    """``path`` already holds this run, finished (``complete``) or not, and neither
    ``resume``, ``reuse`` nor ``force`` says what to do with it."""

    def __init__(self, path, complete, done, target):
        super().__init__(17, "exists", path)
        self.complete, self.done, self.target = complete, done, target


class NothingToResume(FileNotFoundError):
    """``resume=True`` but ``path`` does not exist."""


class _Terminated(KeyboardInterrupt):
    """Raised in the main thread by the SIGTERM handler of :func:`_terminate_as_interrupt`."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Within the block, SIGTERM raises :class:`_Terminated` (a KeyboardInterrupt), once.

    Only the main thread can install handlers; elsewhere the block runs as is.
    After the first SIGTERM further ones are ignored until the block ends (so
    that saving is not cut short); the previous handler is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _same_run(meta, dim, model, seed, target):
    want = {"dim": dim, "model": model.spec, "seed": seed_metadata(seed), "target_samples": target}
    got = {k: meta.get(k) for k in want}
    return got == want, want, got


def run_resumable(path, dim, samples, model, seed, backend="auto", *, resume=False, reuse=False,
                  force=False, progress=True, provenance=None, batch=None):
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
    force : bool
        Start afresh over whatever ``path`` holds (another run, a finished or
        unfinished one, a file that is not a data file), unless ``reuse``
        applies; the old file is replaced at the first save.  Not with
        ``resume``.
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
        resumed runs).

    Raises
    ------
    RunExists
        ``path`` holds this run and neither ``resume``, a matching ``reuse``
        nor ``force`` applies (its ``complete`` says whether it is finished).
    NothingToResume
        ``resume`` and no file at ``path``.
    DataMismatch
        The file at ``path`` is a run with other parameters (without ``force``).
    ValueError
        ``path`` is not a readable data file (without ``force``), or the model
        is too heavy-tailed for float64 sums at this size
        (:func:`lni_geometry.sampling.check_range`, checked before any work).
    RunInterrupted
        On Ctrl-C or SIGTERM, after saving what was done.
    """
    model = model_from_spec(model)
    name = get_backend(backend).NAME
    if resume and force:
        raise ValueError("resume and force contradict each other: resume keeps the file, force replaces it")
    check_range(model, dim, samples)
    done = None
    wall = 0.0
    if os.path.exists(path):
        try:
            meta = AngleSample.read_metadata(path)
        except ValueError:
            if not force:
                raise
            meta = None
        if meta is not None:
            same, want, got = _same_run(meta, dim, model, seed, samples)
            if not same and not force:
                raise DataMismatch(f"{path} holds a different run ({got}) than asked ({want}); "
                                   "choose another path (or --force to replace it)")
            if same and meta.get("complete") and (reuse or resume):
                return AngleSample.load(path), meta
            if same and not resume and not force:
                raise RunExists(path, bool(meta.get("complete")), meta.get("samples"), samples)
        if resume:
            if meta.get("stream_version", 1) != STREAM_VERSION:
                raise DataMismatch(f"{path} was computed with random-stream version {meta.get('stream_version', 1)} "
                                   f"and this package draws version {STREAM_VERSION} (lni_geometry/rng.py): "
                                   "its samples cannot be continued; start a new file (or --force)")
            done = AngleSample.load(path)
            if meta.get("backend") != name:
                raise DataMismatch(f"{path} was computed with backend {meta.get('backend')!r}; resume it with that backend, not {name!r}")
            wall = float(meta.get("wall_time_s", 0.0))
    elif resume:
        raise NothingToResume(2, "nothing to resume", path)

    parts = [done] if done is not None and len(done) else []
    pos = len(done) if done is not None else 0
    batch = batch or max(1, BATCH_COORDS // dim)
    meta_extra = {"target_samples": samples, "stream_version": STREAM_VERSION, **(provenance or {})}

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
    with _terminate_as_interrupt():
        try:
            while pos < samples:
                n = min(batch, samples - pos)
                parts.append(sample_angles(dim, n, model, seed=seed, start=pos, backend=name))
                pos += n
                if bar is not None:
                    bar.update(n)
        except KeyboardInterrupt as exc:
            if bar is not None:
                bar.close()
            if parts:
                save(False, time.perf_counter() - t0)
            how = "SIGTERM" if isinstance(exc, _Terminated) else "SIGINT"
            raise RunInterrupted(path, pos, samples, how) from None
        if bar is not None:
            bar.close()
        return save(True, time.perf_counter() - t0)


# --- the machine a run ran on -------------------------------------------------------


def cpu_frequency_hz():
    """Nominal clock of this machine (from /proc/cpuinfo), or None."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) * 1e6
    except OSError:
        pass
    return None


def machine_description():
    """A one-line description of the CPU, cores and software."""
    import numba
    import numpy as np

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    freq = cpu_frequency_hz()
    ghz = f" @ {freq / 1e9:.2f} GHz" if freq else ""
    return (
        f"{model}{ghz}, {os.cpu_count()} cores, numba {numba.__version__} "
        f"({numba.get_num_threads()} threads), numpy {np.__version__}, Python {platform.python_version()}"
    )
