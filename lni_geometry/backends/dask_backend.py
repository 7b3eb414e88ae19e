"""Dask backend: sample ranges spread over ``dask.distributed`` workers.

Counter-based streams make the sampler embarrassingly parallel: coordinate
``i`` of sample ``s`` is a pure function of ``(key, s, i)`` (see
:mod:`lni_geometry.rng`), and the kernels add a sample's coordinates in a fixed
order (chunks of ``kernels.CHUNK`` coordinates, added in chunk order; see
:mod:`lni_geometry.kernels`).  So any range of samples, or any range of chunks
of one sample, can be computed on any worker and the gathered sums are the same
bits as ``backend="cpu"`` on one machine.

One backend runs every task of a run (:func:`cluster_info`): "cuda" when
every worker has a usable GPU (dask-cuda clusters), else "cpu".  CPU tasks give
the bits of ``backend="cpu"``; CUDA tasks those of ``backend="cuda"`` on one
GPU (whose sums differ from the CPU's in the last bits, by design of that
backend; see :mod:`lni_geometry.backends.cuda`).  Pass
``DaskOptions(worker_backend="cpu")`` to get the CPU's bits on any cluster.
A task runs the same launch as the backend it names (``sample_sums`` of that
backend, or the CPU backend's ``chunk_sums``); this module only plans, submits
and gathers.

Work is cut into *tasks* of two kinds:

- a range of whole samples;
- on CPU runs with fewer samples than task slots, a range of chunks of one
  sample (:func:`lni_geometry.backends.cpu.chunk_sums`); the client adds the chunk sums
  of a sample in chunk order (``kernels.add_rows_in_order``), exactly as the
  CPU backend does, so one sample at dimension ``1e9`` uses the whole cluster.

Threads: inside a worker process a lock lets one task at a time launch a
kernel, and that kernel runs on as many numba threads as the worker has dask
threads (``dask worker --nthreads``), so ``--nworkers``/``--nthreads`` say how
many cores lni_geometry uses and never oversubscribe them.

Faults: a task is a pure function of its arguments, so when a worker dies
the scheduler reruns only the tasks it held; results already gathered are
released at once and never recomputed.
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..validation import check_choice, check_count
from . import check_options, check_sums_args, get_backend

__all__ = [
    "DaskOptions",
    "sample_sums",
    "submit_sums",
    "wait_jobs",
    "get_client",
    "close_default_client",
    "worker_info",
    "cluster_info",
    "plan_tasks",
]

#: Fewest coordinates worth a task (about 0.05-0.2 s on one core): below this
#: the scheduler's per-task overhead (about 1 ms) starts to show.
MIN_TASK_COORDS = 1 << 23
#: Most coordinates in one task (about 10-40 s on one core), so that a lost
#: worker costs little and the progress bar moves.
MAX_TASK_COORDS = 1 << 32
#: Tasks per task slot (a worker thread) when the work allows: load balance.
TASKS_PER_SLOT = 4

#: The values of ``DaskOptions.worker_backend``.
WORKER_BACKENDS = ("auto", "cpu", "cuda")
#: The backend's name (:func:`lni_geometry.backends.get_backend`).
NAME = "dask"

_LAUNCH_LOCK = threading.Lock()
_DEFAULT = {"cluster": None, "client": None}
_DEFAULT_LOCK = threading.Lock()


def _require_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "backend='dask' needs dask.distributed: pip install \"lni-geometry[dask]\""
        ) from exc
    return distributed


def _check_client(client):
    """``client`` if it is None, a scheduler address or a ``distributed.Client``."""
    if client is None or isinstance(client, (str, os.PathLike)):
        return client
    if isinstance(client, _require_distributed().Client):
        return client
    raise TypeError(
        "client must be a distributed.Client, a scheduler address string or None, "
        f"got {type(client).__name__}"
    )


def _check_chunk_samples(chunk_samples):
    return check_count("chunk_samples", chunk_samples, optional=True)


@dataclass(frozen=True)
class DaskOptions:
    """The options of the Dask backend (its ``Options``), checked when made.

    ``sample_angles(..., backend="dask", options=DaskOptions(client=c))``;
    ``sample_angles(..., client=c, chunk_samples=k, worker_backend=w)`` is the
    older spelling of the same (:func:`lni_geometry.backends.backend_options`).

    Attributes
    ----------
    client : distributed.Client, str or None
        See :func:`get_client`: a client, a scheduler address such as
        ``"tcp://10.0.0.1:8786"``, or None for the active dask client or else
        an embedded LocalCluster of processes.
    chunk_samples : int or None
        Samples per task; None sizes tasks from the cluster (see
        :func:`plan_tasks`).
    worker_backend : {"auto", "cpu", "cuda"}
        Backend of every task; "auto": "cuda" when every worker has a usable
        GPU, else "cpu".
    """

    client: object = None
    chunk_samples: int | None = None
    worker_backend: str = "auto"

    def __post_init__(self):
        _check_client(self.client)
        object.__setattr__(self, "chunk_samples", _check_chunk_samples(self.chunk_samples))
        check_choice("worker_backend", self.worker_backend, WORKER_BACKENDS)


#: The options type of this backend (:class:`lni_geometry.backends.Backend`).
Options = DaskOptions


# --- on the workers ----------------------------------------------------------


def _worker_nthreads():
    """Dask threads of the worker running this task (1 outside a worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return 1
    state = getattr(worker, "state", None)
    n = getattr(state, "nthreads", None) or getattr(worker, "nthreads", None) or 1
    return int(n)


def _set_threads():
    import numba

    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, _worker_nthreads())))


def _samples_task(key, model, dim, start, samples, backend):
    """Sums of samples ``start .. start + samples - 1`` (one task)."""
    with _LAUNCH_LOCK:
        _set_threads()
        return get_backend(backend).sample_sums(key, model, dim, start, samples)


def _chunks_task(key, model, dim, sample, chunk0, nchunks):
    """Sums of chunks ``chunk0 .. chunk0 + nchunks - 1`` of one sample (one task)."""
    from . import cpu

    with _LAUNCH_LOCK:
        _set_threads()
        return cpu.chunk_sums(key, model, dim, sample, chunk0, nchunks)


def worker_info():
    """What a worker offers: lni_geometry version, best backend, numba threads.

    Run on every worker by :func:`submit_sums` (through ``Client.run``) to
    check that the workers run the same lni_geometry as the client.
    """
    import numba

    from .. import __version__, backends

    return {
        "version": __version__,
        "cuda": bool(backends.cuda_available()),
        "numba_threads": int(numba.config.NUMBA_NUM_THREADS),
        "pid": os.getpid(),
    }


# --- on the client -----------------------------------------------------------


def _embedded_shape():
    """(workers, threads per worker) of the embedded LocalCluster."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, int(cores or 1))
    workers = min(2, cores)
    return workers, max(1, cores // workers)


def _default_client():
    """The embedded LocalCluster's client, started on first use, closed at exit."""
    distributed = _require_distributed()
    with _DEFAULT_LOCK:
        client = _DEFAULT["client"]
        if client is not None and client.status == "running":
            return client
        import logging

        workers, threads = _embedded_shape()
        threads_env = str(threads)
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
            # numba's pool holds as many threads as the worker has dask threads
            env={
                "NUMBA_NUM_THREADS": threads_env,
                "OMP_NUM_THREADS": threads_env,
                "MKL_NUM_THREADS": threads_env,
                "OPENBLAS_NUM_THREADS": threads_env,
            },
        )
        client = distributed.Client(cluster, set_as_default=False)
        _DEFAULT["cluster"], _DEFAULT["client"] = cluster, client
        return client


def close_default_client():
    """Shut down the embedded LocalCluster (started by ``client=None``), if any."""
    with _DEFAULT_LOCK:
        client, cluster = _DEFAULT["client"], _DEFAULT["cluster"]
        _DEFAULT["client"] = _DEFAULT["cluster"] = None
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


atexit.register(close_default_client)


def get_client(client=None):
    """Resolve the ``client`` option to ``(Client, owned)``.

    ``owned`` is True when the caller must close the client after use.

    Parameters
    ----------
    client : distributed.Client, str or None
        A client; a scheduler address such as ``"tcp://10.0.0.1:8786"`` (a
        client is opened to it for the call); or None: the current dask client
        when one is active (dask's own convention), else an embedded
        LocalCluster of processes, started once and reused.
    """
    distributed = _require_distributed()
    client = _check_client(client)
    if client is None:
        try:
            return distributed.default_client(), False
        except ValueError:
            return _default_client(), False
    if isinstance(client, (str, os.PathLike)):
        return distributed.Client(os.fspath(client), set_as_default=False), True
    return client, False


def cluster_info(client, worker_backend="auto"):
    """``(slots, backend)``: task slots (dask threads) and the backend of every task.

    Checks that every worker runs this client's lni_geometry version.
    ``worker_backend="auto"`` resolves to "cuda" when *every* worker has a
    usable GPU, else "cpu": one backend for all tasks of a run, because the
    CUDA backend's sums differ from the CPU's in their last bits (see
    :mod:`lni_geometry.backends.cuda`), and a run must not depend on which
    worker took which task.
    """
    from .. import __version__

    check_choice("worker_backend", worker_backend, WORKER_BACKENDS)
    if not _scheduler_workers(client):
        client.wait_for_workers(1)
    info = client.run(worker_info)
    bad = {addr: i["version"] for addr, i in info.items() if i["version"] != __version__}
    if bad:
        raise RuntimeError(
            f"dask workers run other lni_geometry versions than this client ({__version__}): "
            f"{bad}; install the same version on every worker so that results are identical"
        )
    if worker_backend == "cuda":
        missing = sorted(addr for addr, i in info.items() if not i["cuda"])
        if missing:
            raise RuntimeError(
                f"worker_backend='cuda' but these dask workers have no usable CUDA GPU: {missing}"
            )
    if worker_backend == "auto":
        worker_backend = "cuda" if info and all(i["cuda"] for i in info.values()) else "cpu"
    workers = _scheduler_workers(client)
    slots = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
    return slots, worker_backend


def _accepts_n_workers(client):
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _scheduler_workers(client):
    if _accepts_n_workers(client):
        return client.scheduler_info(n_workers=-1)["workers"]
    return client.scheduler_info()["workers"]


def plan_tasks(dim, start, samples, slots, gpu, chunk_samples=None):
    """Cut samples ``start .. start + samples - 1`` into tasks.

    Returns a list of ``("samples", first, count)`` and
    ``("chunks", sample, chunk0, nchunks)`` items, in stream order.

    With ``chunk_samples`` given, tasks are ranges of exactly that many samples
    (the last shorter).  Otherwise the number of tasks aims at
    ``TASKS_PER_SLOT`` per slot, more when a task would exceed
    ``MAX_TASK_COORDS`` coordinates, fewer when it would fall below
    ``MIN_TASK_COORDS``; when that asks for more tasks than samples, and no
    worker has a GPU, samples are split into ranges of chunks.

    Examples
    --------
    >>> plan_tasks(1000, 0, 10, slots=2, gpu=False, chunk_samples=4)
    [('samples', 0, 4), ('samples', 4, 4), ('samples', 8, 2)]
    >>> plan_tasks(2**24, 5, 1, slots=2, gpu=False)   # 1 sample, 256 chunks, 2 tasks
    [('chunks', 5, 0, 128), ('chunks', 5, 128, 128)]
    """
    if chunk_samples is not None:
        return [
            ("samples", start + i, min(chunk_samples, samples - i))
            for i in range(0, samples, chunk_samples)
        ]
    work = samples * dim
    wanted = max(TASKS_PER_SLOT * slots, -(-work // MAX_TASK_COORDS))
    wanted = max(1, min(wanted, -(-work // MIN_TASK_COORDS)))
    if wanted <= samples or gpu:
        wanted = min(wanted, samples)
        per = -(-samples // wanted)
        return [("samples", start + i, min(per, samples - i)) for i in range(0, samples, per)]
    nch = kernels.n_chunks(dim)
    pieces = min(nch, -(-wanted // samples))
    per = -(-nch // pieces)
    return [
        ("chunks", start + s, c, min(per, nch - c))
        for s in range(samples)
        for c in range(0, nch, per)
    ]


class SumsJob:
    """Submitted tasks of one sample range; :meth:`add` collects, :meth:`result` assembles."""

    def __init__(self, plan, samples, start, dim):
        self.plan = plan
        self.samples = samples
        self.start = start
        self.results = [None] * len(plan)
        self.missing = len(plan)
        nch = kernels.n_chunks(dim)
        #: Samples each task computes (a fraction for a range of chunks): the progress units.
        self.task_samples = [item[2] if item[0] == "samples" else item[3] / nch for item in plan]

    def add(self, index, value):
        if self.results[index] is None:
            self.results[index] = value
            self.missing -= 1

    @property
    def done(self):
        return self.missing == 0

    def result(self):
        """The sums, shape ``(samples, 3)``, float64."""
        out = np.empty((self.samples, 3))
        chunk_parts = {}
        for item, value in zip(self.plan, self.results):
            if item[0] == "samples":
                i = item[1] - self.start
                out[i : i + item[2]] = value
            else:
                chunk_parts.setdefault(item[1], []).append((item[2], value))
        for sample, parts in chunk_parts.items():
            parts.sort(key=lambda p: p[0])
            out[sample - self.start] = kernels.add_rows_in_order(np.concatenate([p[1] for p in parts]))
        return out


def submit_sums(client, key, model, dim, start, samples, *, chunk_samples=None,
                worker_backend="auto", info=None):
    """Submit the tasks of one sample range; returns ``(SumsJob, futures)``.

    ``futures[i]`` computes ``job.plan[i]``.  ``info`` is ``(slots, backend)``
    from :func:`cluster_info`, to plan several jobs with one probe.
    """
    key, dim, start, samples = check_sums_args(key, model, dim, start, samples)
    chunk_samples = _check_chunk_samples(chunk_samples)
    slots, backend = info if info is not None else cluster_info(client, worker_backend)
    plan = plan_tasks(dim, start, samples, slots, backend == "cuda", chunk_samples)
    futures = []
    for item in plan:
        if item[0] == "samples":
            fut = client.submit(
                _samples_task, key, model, dim, item[1], item[2], backend, pure=True
            )
        else:
            fut = client.submit(_chunks_task, key, model, dim, item[1], item[2], item[3], pure=True)
        futures.append(fut)
    return SumsJob(plan, samples, start, dim), futures


def wait_jobs(client, entries, progress=False, on_done=None, desc="samples"):
    """Gather the results of several jobs as their tasks finish.

    Parameters
    ----------
    entries : list of (SumsJob, futures)
    progress : bool or callable
        In samples, as every backend: True shows a tqdm bar over the samples
        of all entries; a callable is called once per finished task with the
        samples it computed (a fraction for a range of chunks of one sample).
    on_done : callable or None
        Called as ``on_done(index_of_entry, sums)`` as soon as a job is complete.

    Returns
    -------
    list of ndarray: the sums of each job.
    """
    distributed = _require_distributed()
    owner = {}
    total = 0
    for j, (job, futures) in enumerate(entries):
        for i, fut in enumerate(futures):
            owner.setdefault(fut.key, []).append((j, i))
        total += job.samples
    out = [None] * len(entries)
    for j, (job, futures) in enumerate(entries):
        if not futures and out[j] is None:  # pragma: no cover - jobs always have tasks
            out[j] = job.result()
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="sample", desc=desc)
    step = bar.update if bar is not None else (progress if callable(progress) else None)
    unique = list({f.key: f for _, futures in entries for f in futures}.values())
    for entry in entries:
        entry[1].clear()  # drop our references: results leave the workers once gathered
    try:
        for fut, value in distributed.as_completed(unique, with_results=True, loop=client.loop):
            for j, i in owner[fut.key]:
                job = entries[j][0]
                job.add(i, value)
                if step is not None:
                    step(job.task_samples[i])
                if job.done and out[j] is None:
                    out[j] = job.result()
                    job.results = None
                    if on_done is not None:
                        on_done(j, out[j])
            fut.release()
    finally:
        if bar is not None:
            bar.close()
    return out


def sample_sums(key, model, dim, start, samples, progress=None, options=None):
    """Sums ``(l1, l2sq, total)`` of samples ``start .. start + samples - 1`` on Dask.

    The interface of every backend (:class:`lni_geometry.backends.Backend`).
    Identical, bit for bit, to the CPU backend for the same key and start; on
    a cluster where every worker has a GPU, identical to the CUDA backend
    instead (see the module docstring).

    Parameters
    ----------
    key : ndarray of uint32, shape (2,)
        ``rng.key_from_seed(seed)``.
    model : GradientModel
    dim, start, samples : int
    progress : callable or None
        Called once per finished task with the samples it computed (a
        fraction of a sample for a task of chunks).
    options : DaskOptions or None
        The cluster, the task size and the workers' backend; None for the
        defaults (the active dask client or an embedded LocalCluster, tasks
        sized from the cluster, "auto").

    Returns
    -------
    ndarray of float64, shape (samples, 3)
    """
    key, dim, start, samples = check_sums_args(key, model, dim, start, samples)
    options = check_options(NAME, Options, options)
    if samples == 0:
        return np.empty((0, 3))
    client, owned = get_client(options.client)
    try:
        entry = submit_sums(
            client, key, model, dim, start, samples,
            chunk_samples=options.chunk_samples, worker_backend=options.worker_backend,
        )
        return wait_jobs(client, [entry], progress=progress, desc=f"dim {dim}")[0]
    finally:
        if owned:
            client.close()
