"""Throughput of ``sample_angles(backend="dask")`` with 1 and 2 workers on this machine.

Starts a LocalCluster of N worker processes (1 dask thread and 1 numba thread
each) for every N asked for, loads the kernels in the workers, then times
``sample_angles(dim, samples, backend="dask", options=DaskOptions(client=...))`` ``--repeats``
times and reports the best and median throughput in samples/s and
coordinates (normals) per second.  As a baseline without Dask it also times
the CPU backend in this process with the same numbers of numba threads.
The runs of all setups are interleaved (1, 2, 1, 2, ...) so that load from
other processes hits them alike.  Every result is checked, bit for bit,
against the CPU backend.

Run::

    python scripts/dask_scaling.py                      # dim 2**20, 1024 samples
    python scripts/dask_scaling.py --dim 1048576 --samples 512 --workers 1,2,4 --json out.json

The figures depend on what else runs on the machine: say so when you quote them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import time

import numpy as np


def _row(label, n, dim, samples, times):
    best, med = min(times), statistics.median(times)
    return {
        "setup": label,
        "n": n,
        "dim": dim,
        "samples": samples,
        "best_s": best,
        "median_s": med,
        "samples_per_s": samples / best,
        "coords_per_s": samples * dim / best,
        "median_coords_per_s": samples * dim / med,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=2**20)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",")]

    import numba
    from distributed import Client, LocalCluster

    import lni_geometry as lg
    from lni_geometry.backends import DaskOptions

    dim, samples = args.dim, args.samples
    run = lambda backend, **kw: lg.sample_angles(dim, samples, seed=args.seed, backend=backend, **kw)
    # one LocalCluster per worker count, all started (and their kernels loaded)
    # before timing; runs of every setup are interleaved, repeat by repeat, so
    # that a change of load on a shared machine hits every setup alike
    stack = contextlib.ExitStack()
    setups = []
    with stack:
        for n in counts:
            if n <= numba.config.NUMBA_NUM_THREADS:
                setups.append(("cpu backend, numba threads", n, None))
        for n in counts:
            cluster = stack.enter_context(LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.ERROR, env={"NUMBA_NUM_THREADS": "1"},
            ))
            client = stack.enter_context(Client(cluster, set_as_default=False))
            client.run(lambda: [lg.sample_angles(dim, k, backend="cpu") for k in (1, 4)] and None)
            setups.append(("dask LocalCluster, workers x 1 thread", n, client))
        lg.sample_angles(dim, 1, backend="cpu")
        lg.sample_angles(dim, 8, backend="cpu")
        ref = run("cpu").sums
        times = {i: [] for i in range(len(setups))}
        for _ in range(args.repeats):
            for i, (label, n, client) in enumerate(setups):
                if client is None:
                    numba.set_num_threads(n)
                    t0 = time.perf_counter()
                    s = run("cpu")
                else:
                    t0 = time.perf_counter()
                    s = run("dask", options=DaskOptions(client=client))
                times[i].append(time.perf_counter() - t0)
                if not np.array_equal(s.sums, ref):
                    raise SystemExit(f"{label} n={n}: result differs from the CPU backend: a bug")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    rows = [_row(label, n, dim, samples, times[i]) for i, (label, n, _) in enumerate(setups)]
    for r in rows:
        print(_fmt(r), flush=True)

    dask_rows = {r["n"]: r for r in rows if r["setup"].startswith("dask")}
    if 1 in dask_rows:
        for n, r in sorted(dask_rows.items()):
            print(f"dask speed-up {n} vs 1 worker: {r['coords_per_s'] / dask_rows[1]['coords_per_s']:.2f}x "
                  f"(best), {r['median_coords_per_s'] / dask_rows[1]['median_coords_per_s']:.2f}x (median)")
    machine = {
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "lni_geometry": lg.__version__,
    }
    print(f"machine: {machine}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "rows": rows}, fh, indent=2)


def _fmt(r):
    return (f"{r['setup']:<40} n={r['n']}: best {r['best_s']:.3f} s, median {r['median_s']:.3f} s, "
            f"{r['samples_per_s']:.1f} samples/s, {r['coords_per_s'] / 1e6:.1f} M coords/s")


if __name__ == "__main__":
    main()
