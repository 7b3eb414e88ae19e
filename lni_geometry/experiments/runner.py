"""Run many configurations through the cache: worker processes on one machine, or Dask.

:func:`run_many` reads finished runs from the cache and trains the others in
parallel, each worker process with one torch thread (so that results do not
depend on the number of workers), storing each run as soon as it finishes: an
interrupted grid loses at most the unfinished runs' last seconds (they keep a
checkpoint).  With ``client=`` (a ``dask.distributed`` client, as for
:func:`lni_geometry.sweep`) the runs are submitted to that cluster instead;
the workers must see the cache directory (one machine or a shared file system).
Runs on CUDA go one after the other on one GPU, and one per GPU in worker
processes when several are visible (each worker sees one through
``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import os

from .cache import load_result, result_path

__all__ = ["run_many"]


def _init_worker(gpus=None):
    if gpus is not None:  # before torch touches CUDA: this worker sees one GPU, as cuda:0
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()
    import numba
    import torch

    torch.set_num_threads(1)
    numba.set_num_threads(1)


def _run_one(config, cache):
    """Train one run in a worker (or read it back); return its cache file (None if interrupted)."""
    from .engine import train

    try:
        train(config, cache=cache, threads=1)
    except KeyboardInterrupt:
        return None
    return result_path(cache, config)


def _check_same_code(config, cache, path):
    """A worker finished a run under another cache key than this process expects: the
    package's sources changed while the grid ran (the key holds their fingerprint)."""
    if path is not None and path != result_path(cache, config):
        raise RuntimeError(f"the package's sources changed while the runs were going (run {config.label()} "
                           f"was stored as {os.path.basename(path)}); rerun the command")


def _gpu_ids():
    """The CUDA devices this process sees, as ``CUDA_VISIBLE_DEVICES`` names them."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(n)]
    return ids[:n]


def run_many(configs, cache, *, workers=None, client=None, progress=True, desc="runs"):
    """Results of many runs, from the cache or trained in parallel.

    Parameters
    ----------
    configs : sequence of RunConfig
    cache : str or os.PathLike
        Cache directory (created if needed).
    workers : int, optional
        Worker processes (default: the CPU count, at most the number of runs to
        train); 1 trains in this process.  Runs on a GPU (``device="cuda"``)
        are trained here one after the other, or, when several GPUs are
        visible, in one worker process per GPU (at most ``workers``).
    client : distributed.Client, optional
        Submit the runs to this Dask cluster instead of local processes.
    progress : bool
        A tqdm bar over steps of the runs to train, with an ETA.
    desc : str
        Label of the bar.

    Returns
    -------
    list of RunResult
        In the order of ``configs``; ``result.meta["cached"]`` says which were
        read back.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, after the workers have checkpointed their runs.
    """
    from .config import RunConfig
    from .engine import train

    configs = list(configs)
    for c in configs:
        if not isinstance(c, RunConfig):
            raise TypeError(f"configs must be RunConfig objects, got {type(c).__name__}")
    cache = os.fspath(cache)
    os.makedirs(cache, exist_ok=True)
    results = [load_result(result_path(cache, c), c) for c in configs]
    todo = []
    seen = set()
    for i, r in enumerate(results):
        if r is None and configs[i].digest() not in seen:
            todo.append(i)
            seen.add(configs[i].digest())
    if todo:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(configs[i].steps for i in todo), unit="step", desc=desc,
                       smoothing=0.05)
        try:
            nworkers = workers or os.cpu_count() or 1
            nworkers = max(1, min(nworkers, len(todo)))
            on_gpu = any(configs[i].device == "cuda" for i in todo)
            gpus = _gpu_ids() if on_gpu and client is None else []
            if client is not None:
                _run_dask(client, [configs[i] for i in todo], cache, bar)
            elif len(gpus) > 1 and len(todo) > 1 and workers != 1:
                _run_processes([configs[i] for i in todo], cache, min(workers or len(gpus), len(gpus), len(todo)),
                               bar, gpus=gpus)
            elif nworkers == 1 or on_gpu:
                for i in todo:
                    train(configs[i], cache=cache, threads=1)
                    if bar is not None:
                        bar.update(configs[i].steps)
            else:
                _run_processes([configs[i] for i in todo], cache, nworkers, bar)
        finally:
            if bar is not None:
                bar.close()
        results = [r if r is not None else load_result(result_path(cache, c), c)
                   for r, c in zip(results, configs)]
    missing = [c.label() for c, r in zip(configs, results) if r is None]
    if missing:
        raise KeyboardInterrupt(f"{len(missing)} runs unfinished (checkpointed): {missing[:3]}")
    return results


def _run_processes(configs, cache, nworkers, bar, gpus=None):
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    queue = None
    if gpus:  # each worker takes one GPU for its life
        queue = ctx.Queue()
        for g in gpus[:nworkers]:
            queue.put(g)
    pool = ProcessPoolExecutor(max_workers=nworkers, mp_context=ctx, initializer=_init_worker, initargs=(queue,))
    try:
        futures = {pool.submit(_run_one, c, cache): c for c in configs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                _check_same_code(futures[f], cache, f.result())  # a worker's exception is raised here
                if bar is not None:
                    bar.update(futures[f].steps)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_dask(client, configs, cache, bar):
    from distributed import as_completed

    futures = client.map(_run_one, configs, cache=cache, pure=False)
    by_key = {f.key: c for f, c in zip(futures, configs)}
    for f in as_completed(futures):
        _check_same_code(by_key[f.key], cache, f.result())
        if bar is not None:
            bar.update(by_key[f.key].steps)
