"""Benchmark of one optimizer step under torch.distributed (``lni-geometry bench --torch --world W``).

The same ``n`` float32 parameters in ``T`` tensors are stepped by one process,
and by ``W`` processes (gloo on localhost, CPU), each stepping every ``W``-th
tensor (the parameters given with ``all_params``, as under ZeRO-1: the step
then gathers its sums over the ranks).  Each process gets ``threads / W``
threads, so that one machine's cores are shared alike.  The collective of a
step (one ``all_gather`` of the per-tensor table) is timed alone too.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ["bench_distributed", "format_distributed"]

ROWS = ("Lion", "Lion, telemetry", "Enim, angle=0.65")
#: The gathers of one step of each row.
COLLECTIVES = {"Lion": 1, "Lion, telemetry": 2, "Enim, angle=0.65": 1}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_distributed(world=2, n=10**7, tensors=8, repeat=15, threads=None, timeout=600):
    """Milliseconds per step at world size 1 and ``world`` (median of ``repeat``), and the collective's.

    Parameters
    ----------
    world : int
        Processes of the distributed run (``>= 2``).
    n, tensors : int
        Parameters, in ``tensors`` equal tensors.
    repeat : int
        Timed steps per row (after two warm-up steps; a barrier before each).
    threads : int, optional
        Threads in all (default: the CPUs this process may use); each of
        ``world`` processes gets ``threads // world`` (at least 1).
    timeout : float
        Seconds the runs may take; then they are killed and an error raised.

    Returns
    -------
    dict
        ``{"rows": {world size: {row: ms}}, "collective_ms", "n", "tensors", "threads", "repeat"}``.
    """
    if world < 2:
        raise ValueError(f"world must be >= 2, got {world}")
    if n < tensors or tensors < world:
        raise ValueError(f"need n >= tensors >= world, got n={n}, tensors={tensors}, world={world}")
    threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    out = {"rows": {}, "n": n, "tensors": tensors, "threads": threads, "repeat": repeat}
    for w in (1, world):
        res = _launch(w, n, tensors, repeat, max(1, threads // w), timeout)
        out["rows"][w] = res["rows"]
        if w > 1:
            out["collective_ms"] = res["collective_ms"]
    return out


def _launch(world, n, tensors, repeat, threads, timeout):
    port = str(_free_port())
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "result.json")
        procs = []
        for rank in range(world):
            env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=port, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            args = [sys.executable, "-m", "lni_geometry.bench.distributed", result, str(n), str(tensors), str(repeat)]
            procs.append(subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True))
        try:
            errors = [p.communicate(timeout=timeout)[1] for p in procs]
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise RuntimeError(f"the {world}-process benchmark ran past {timeout} s and was stopped") from None
        failed = [r for r, p in enumerate(procs) if p.returncode != 0]
        if failed:
            raise RuntimeError(f"rank {failed[0]} of {world} failed:\n{errors[failed[0]][-2000:]}")
        with open(result) as f:
            return json.load(f)


def _rank_main(result, n, tensors, repeat):
    """One rank: time each row's step, rank 0 writes the medians."""
    import numpy as np
    import torch

    from ..torch import Enim, Lion

    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    gen = torch.Generator().manual_seed(0)
    size = n // tensors
    params = [torch.nn.Parameter(torch.randn(size, generator=gen)) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(size, generator=gen) * (torch.rand(size, generator=gen) > 0.1)
    dist = None
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    mine = params[rank::world]
    kw = {"process_group": False} if world == 1 else {"all_params": params}
    makers = {"Lion": lambda: Lion(mine, lr=1e-4, **kw),
              "Lion, telemetry": lambda: Lion(mine, lr=1e-4, telemetry=True, history=False, **kw),
              "Enim, angle=0.65": lambda: Enim(mine, lr=1e-4, angle=0.65, seed=1, **kw)}
    rows = {}

    def timed(fn):
        times = []
        for r in range(repeat + 2):
            if dist is not None:
                dist.barrier()
            t0 = time.perf_counter()
            fn()
            if r >= 2:
                times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    for name, make in makers.items():
        rows[name] = timed(make().step)
    out = {"rows": rows}
    if dist is not None:
        opt = Lion(mine, lr=1e-4, **kw)
        topo = opt._topology
        flat = np.zeros(2 + 5 + tensors * (8 + 2))  # the header, one group's settings, the table
        out["collective_ms"] = timed(lambda: topo.gather(flat))
        dist.destroy_process_group()
    if rank == 0:
        with open(result, "w") as f:
            json.dump(out, f)


def format_distributed(res):
    """The benchmark as markdown: per world size the step of each row, and the collective's share."""
    world = max(res["rows"], key=int)
    lines = [f"{res['n']:,} float32 parameters in {res['tensors']} tensors; {res['threads']} threads in all "
             f"(each of {world} processes: {max(1, res['threads'] // int(world))}); median of {res['repeat']} "
             "steps", "", f"| row | world size 1 (ms) | world size {world} (ms) | collective / step at {world} |",
             "| --- | ---: | ---: | ---: |"]
    coll = res["collective_ms"]
    for row in ROWS:
        one, many = res["rows"][1][row], res["rows"][world][row]
        lines.append(f"| {row} | {one:.2f} | {many:.2f} | {COLLECTIVES[row] * coll / many:.1%} |")
    lines += ["", f"one all_gather of the step's table: {coll:.3f} ms; a step makes one, two with the telemetry "
              "(the sums and momentum norms before the update, then the counts it made)"]
    return "\n".join(lines)


if __name__ == "__main__":
    _rank_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
