"""GPU benchmark behind ``lni-geometry bench --backend cuda``.

Measured, never asserted; the figures go in ``docs/benchmarks.md`` with the GPU and date.

- :func:`bench_cuda`: normals per second of the CUDA backend (fused
  Philox + Box-Muller + three float64 sums, nothing materialised) against CuPy
  as a user writes it (``cupy.random.standard_normal`` then ``abs``, square and
  the three sums: generate-then-reduce), against an estimated limit from the
  GPU's float64 throughput, and Figure 1's size (dim ``6e6``, ``1e5`` samples).

The benchmark needs a real GPU and fails with a clear message without one.  The
full-size correctness checks (parity with the CPU, the fixed-axis law) live
beside the backend they check, in :mod:`lni_geometry.backends.cuda_parity`.
"""

from __future__ import annotations

import datetime
import math
import re
import time

from numba import cuda, int64

from ..backends.cuda_parity import FIGURE1_DIM, FIGURE1_SAMPLES
from ..models import gaussian_block

__all__ = ["bench_cuda", "estimate_limit", "format_cuda", "fp64_ops_per_normal"]

#: Float64 lanes per SM per clock by compute capability (CUDA C Programming
#: Guide, "Arithmetic Instructions" throughput table); other GPUs have 2.
FP64_LANES = {(6, 0): 32, (7, 0): 32, (8, 0): 32, (9, 0): 64, (10, 0): 64}
#: Float64 pipe instructions a ``div.rn.f64`` / ``sqrt.rn.f64`` expands to in
#: SASS (a reciprocal or rsqrt seed, Newton steps and a rounding fix): an
#: assumption of the estimate, stated in docs/cuda.md.
FP64_DIV_SQRT_COST = 8


def _cuda_module(real_gpu):
    """The CUDA backend, or RuntimeError saying why not (``real_gpu``: refuse the simulator)."""
    from numba import config

    from ..backends import get_backend

    if real_gpu and config.ENABLE_CUDASIM:
        raise RuntimeError(
            "the CUDA benchmark needs a real GPU: NUMBA_ENABLE_CUDASIM=1 is set, and the "
            "simulator runs kernels as Python (unset it on a machine with an NVIDIA GPU)"
        )
    try:
        return get_backend("cuda")
    except RuntimeError as exc:
        raise RuntimeError(f"the CUDA benchmark cannot run: {exc}") from None


def _sync():
    cuda.synchronize()


def _best_rate(fn, normals, repeat):
    best = 0.0
    seconds = math.inf
    for _ in range(repeat):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        dt = time.perf_counter() - t0
        if normals / dt > best:
            best = normals / dt
            seconds = dt
    return best, seconds


# --- the limit --------------------------------------------------------------


def _one_block(k0, k1, out):  # pragma: no cover - compiled for the GPU only
    i = int64(cuda.grid(1))
    z0, z1, z2, z3 = gaussian_block(k0, k1, i, i)
    out[i, 0] = abs(z0) + abs(z1) + abs(z2) + abs(z3)
    out[i, 1] = z0 * z0 + z1 * z1 + z2 * z2 + z3 * z3
    out[i, 2] = z0 + z1 + z2 + z3


def fp64_ops_per_normal(ptx):
    """Float64 pipe instructions per normal in the PTX of one Gaussian block.

    Counts PTX instructions whose type is ``.f64`` (add, sub, mul, fma, setp,
    conversions to float64), not moves, loads, stores or selects; ``div`` and
    ``sqrt`` count ``FP64_DIV_SQRT_COST`` each.  One block makes four normals.

    Examples
    --------
    >>> fp64_ops_per_normal("fma.rn.f64 a, b, c, d;\\n div.rn.f64 a, b, c;\\n mov.f64 a, b;")
    2.25
    """
    cost = 0
    for m in re.finditer(r"^\s*(?:@!?%p\d+\s+)?([a-z]+)((?:\.[a-z0-9]+)*)\s", ptx, re.M):
        op, suffix = m.group(1), m.group(2)
        if ".f64" not in suffix or op in ("mov", "ld", "st", "selp", "abs", "neg"):
            continue
        if op == "cvt" and not suffix.split(".")[-2:-1] == ["f64"]:
            continue  # only conversions *to* float64 run on the float64 pipe
        cost += FP64_DIV_SQRT_COST if op in ("div", "sqrt", "rcp") else 1
    return cost / 4.0


def estimate_limit(device=None):
    """Estimated normals/s limit of the fused Gaussian kernel on a GPU.

    ``limit = SMs * float64 lanes per SM * clock / (float64 instructions per
    normal)``, with the instruction count read from the PTX of one Gaussian
    block (Philox4x32-10, two Box-Muller pairs and the three sums) compiled for
    the device's compute capability.  Integer work (Philox's 20 32-bit
    multiplies per four normals) runs on other pipes and is left out.

    Returns
    -------
    dict
        ``normals_per_s``, ``fp64_ops_per_normal``, ``sm_count``,
        ``fp64_lanes_per_sm``, ``clock_hz``, ``compute_capability``.
    """
    from numba import float64, uint32

    dev = device if device is not None else cuda.get_current_device()
    cc = tuple(dev.compute_capability)
    ptx, _ = cuda.compile_ptx(_one_block, (uint32, uint32, float64[:, :]), cc=cc)
    ops = fp64_ops_per_normal(ptx)
    sms = int(dev.MULTIPROCESSOR_COUNT)
    clock = float(dev.CLOCK_RATE) * 1e3  # kHz -> Hz
    lanes = FP64_LANES.get(cc, 2)
    return {
        "normals_per_s": sms * lanes * clock / ops,
        "fp64_ops_per_normal": ops,
        "sm_count": sms,
        "fp64_lanes_per_sm": lanes,
        "clock_hz": clock,
        "compute_capability": f"{cc[0]}.{cc[1]}",
    }


# --- peers ------------------------------------------------------------------


def cupy_peer(dim, repeat, seed=0):
    """Normals/s of CuPy generate-then-reduce, or a dict with the reason it did not run."""
    try:
        import cupy
    except ImportError as exc:
        return {"error": f"CuPy is not installed ({exc}); pip install cupy-cuda12x"}
    cupy.random.seed(seed)
    rows = max(1, (1 << 27) // dim)  # 1 GiB of float64 per call
    calls = max(1, (1 << 31) // (rows * dim))

    def run():
        for _ in range(calls):
            x = cupy.random.standard_normal((rows, dim), dtype=cupy.float64)
            l1 = cupy.abs(x).sum(axis=1)
            l2 = (x * x).sum(axis=1)
            tot = x.sum(axis=1)
            del x, l1, l2, tot
        cupy.cuda.Device().synchronize()

    run()  # warm-up: kernels compiled, memory pool filled
    rate, seconds = _best_rate(run, rows * dim * calls, repeat)
    return {"normals_per_s": rate, "seconds": seconds, "normals": rows * dim * calls,
            "cupy": cupy.__version__}


# --- the benchmark ------------------------------------------------------------


def bench_cuda(dim=1 << 20, samples=None, repeat=3, seed=0, figure1=True, figure1_budget_s=120.0):
    """Normals per second of the CUDA backend, CuPy and the estimated limit.

    Parameters
    ----------
    dim : int
        Dimension of each sample (``>= 2``).
    samples : int, optional
        Samples per timed run; default ``2**34 // dim`` (about 1.7e10 normals).
    repeat : int
        Timed runs; the best is reported.
    seed : int
    figure1 : bool
        Also time Figure 1's size, ``sample_angles(6e6, 1e5, backend="cuda")``,
        when the measured rate predicts at most ``figure1_budget_s`` seconds.

    Returns
    -------
    dict
        ``device``, ``date``, ``dim``, ``samples``, ``rows`` (name ->
        ``normals_per_s``, ``seconds``), ``limit`` (:func:`estimate_limit`),
        ``speedup_vs_cupy``, ``fraction_of_limit``, ``figure1``.

    Raises
    ------
    RuntimeError
        Without a usable GPU (no driver, no device, numba-cuda missing, or the
        simulator), with the reason and the fix.
    """
    cb = _cuda_module(real_gpu=True)
    from .. import rng
    from ..models import Gaussian

    dim = int(dim)
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got {dim}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    if samples is None:
        samples = max(1, (1 << 34) // dim)
    samples = int(samples)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    key = rng.key_from_seed(seed)
    model = Gaussian()
    normals = dim * samples
    rows = {}
    for name, generic in (("lni_geometry cuda", False), ("lni_geometry cuda (fill_coords path)", True)):
        cb.sample_sums(key, model, dim, 0, min(samples, 2), generic=generic)  # compile
        rate, seconds = _best_rate(
            lambda g=generic: cb.sample_sums(key, model, dim, 0, samples, generic=g), normals, repeat
        )
        rows[name] = {"normals_per_s": rate, "seconds": seconds, "normals": normals}
    rows["cupy standard_normal + reductions"] = cupy_peer(dim, repeat, seed)
    limit = estimate_limit()
    ours = rows["lni_geometry cuda"]["normals_per_s"]
    cupy_rate = rows["cupy standard_normal + reductions"].get("normals_per_s")
    res = {
        "device": cb.device_name(),
        "date": datetime.date.today().isoformat(),
        "dim": dim,
        "samples": samples,
        "repeat": repeat,
        "rows": rows,
        "limit": limit,
        "speedup_vs_cupy": ours / cupy_rate if cupy_rate else None,
        "fraction_of_limit": ours / limit["normals_per_s"],
        "figure1": None,
    }
    if figure1:
        predicted = FIGURE1_DIM * FIGURE1_SAMPLES / ours
        if predicted <= figure1_budget_s:
            from ..sampling import sample_angles

            sample_angles(FIGURE1_DIM, 2, seed=seed, backend="cuda")  # warm
            t0 = time.perf_counter()
            sample_angles(FIGURE1_DIM, FIGURE1_SAMPLES, seed=seed, backend="cuda")
            res["figure1"] = {"dim": FIGURE1_DIM, "samples": FIGURE1_SAMPLES,
                              "seconds": time.perf_counter() - t0}
        else:
            res["figure1"] = {"skipped": f"predicted {predicted:.0f} s > budget {figure1_budget_s:.0f} s"}
    return res


def format_cuda(res):
    """A text table of :func:`bench_cuda`'s result."""
    lines = [
        f"lni-geometry bench --backend cuda: {res['device']}, {res['date']}",
        f"dim {res['dim']}, {res['samples']} samples per run, best of {res['repeat']}",
        f"{'':40s} {'normals/s':>12s} {'seconds':>9s}",
    ]
    for name, row in res["rows"].items():
        if "error" in row:
            lines.append(f"{name:40s} {'-':>12s}  ({row['error']})")
        else:
            lines.append(f"{name:40s} {row['normals_per_s']:12.3e} {row['seconds']:9.4f}")
    lim = res["limit"]
    lines.append(
        f"{'estimated float64 limit':40s} {lim['normals_per_s']:12.3e}   "
        f"({lim['sm_count']} SMs x {lim['fp64_lanes_per_sm']} lanes x {lim['clock_hz'] / 1e9:.2f} GHz"
        f" / {lim['fp64_ops_per_normal']:.1f} float64 ops per normal)"
    )
    if res["speedup_vs_cupy"] is not None:
        lines.append(f"speed-up over CuPy: {res['speedup_vs_cupy']:.2f}x")
    lines.append(f"fraction of the estimated limit: {res['fraction_of_limit']:.2f}")
    fig = res.get("figure1")
    if fig:
        if "seconds" in fig:
            lines.append(f"Figure 1 (dim {fig['dim']}, {fig['samples']} samples): {fig['seconds']:.2f} s")
        else:
            lines.append(f"Figure 1: {fig['skipped']}")
    return "\n".join(lines)
