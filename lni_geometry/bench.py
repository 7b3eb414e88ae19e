"""Throughput and memory benchmarks behind ``lni-geometry bench``.

Measured, never asserted: the figures go in the README with the machine.

Rows of the CPU benchmark (all at the same ``dim``, best of ``repeat`` runs):

- ``lni_geometry cpu``: :func:`lni_geometry.sample_angles` on all numba threads;
- ``numpy``: what a user writes, one thread:
  ``x = rng.standard_normal(dim); x.__abs__().sum(); (x * x).sum()``;
- ``numba + Generator``: one ``numpy.random.Generator`` per thread inside
  ``numba.njit(nogil=True)`` with the three sums fused, run on as many Python
  threads as numba uses;
- the breakdown of our kernel: Philox words alone, Philox + Box-Muller written
  to a buffer (no sums), and the full fused kernel, so one sees where the time
  goes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange, uint32

from . import kernels, models, rng
from .sampling import sample_angles


# --- peers ------------------------------------------------------------------


def numpy_peer(dim, repeat, seed=0):
    """Normals per second of numpy as a user writes it (one thread)."""
    gen = np.random.default_rng(seed)
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        x = gen.standard_normal(dim)
        l1 = np.abs(x).sum()
        l2 = (x * x).sum()
        dt = time.perf_counter() - t0
        best = max(best, dim / dt)
    del l1, l2
    return best


@njit(nogil=True, cache=True)
def _generator_sums(gen, dim):
    l1 = 0.0
    l2 = 0.0
    t = 0.0
    for _ in range(dim):
        z = gen.standard_normal()
        l1 += abs(z)
        l2 += z * z
        t += z
    return l1, l2, t


def numba_generator_peer(dim, samples, threads, seed=0):
    """Normals per second of numba with one numpy Generator per thread (nogil, fused sums)."""
    gens = [np.random.default_rng([seed, t]) for t in range(threads)]
    _generator_sums(gens[0], 16)  # compile
    per_thread = max(1, samples // threads)

    def work(gen):
        for _ in range(per_thread):
            _generator_sums(gen, dim)

    with ThreadPoolExecutor(threads) as ex:
        t0 = time.perf_counter()
        list(ex.map(work, gens))
        dt = time.perf_counter() - t0
    return threads * per_thread * dim / dt


# --- breakdown of our kernel ----------------------------------------------------


@njit(parallel=True, cache=True, error_model="numpy")
def _philox_only(k0, k1, samples, blocks):
    acc = np.zeros(samples, dtype=np.uint32)
    for s in prange(samples):
        a = uint32(0)
        for b in range(blocks):
            w0, w1, w2, w3 = rng.stream_words(k0, k1, s, b, 0)
            a ^= w0 ^ w1 ^ w2 ^ w3
        acc[s] = a
    return acc


@njit(parallel=True, cache=True, error_model="numpy")
def _transform_only(k0, k1, samples, dim):
    """Philox + Box-Muller into a tile buffer, no sums (the buffer's last value kept)."""
    out = np.empty(samples)
    for s in prange(samples):
        buf = np.empty(kernels.TILE)
        for t0 in range(0, dim, kernels.TILE):
            models.fill_tile(0, 0.0, 0.0, k0, k1, s, t0, kernels.TILE, buf)
        out[s] = buf[0]
    return out


def _rate(fn, count, repeat):
    fn()  # compile / warm
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = max(best, count / (time.perf_counter() - t0))
    return best


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


def bench_cpu(dim=1 << 20, samples=None, repeat=3):
    """Normals per second of the CPU backend and its two peers, and the breakdown.

    Returns
    -------
    dict
        Keys ``ours``, ``numpy``, ``numba_generator`` (normals/s), ``philox_words``
        (words/s), ``transform`` (normals/s without sums), ratios, and
        ``cycles_per_normal`` (all threads together, at the nominal clock).
    """
    threads = numba.get_num_threads()
    if samples is None:
        samples = max(8 * threads, (1 << 26) // dim)
    key = rng.key_from_seed(0)
    n = dim * samples
    ours = _rate(lambda: sample_angles(dim, samples, seed=1, backend="cpu"), n, repeat)
    philox = _rate(lambda: _philox_only(key[0], key[1], samples, dim // 4), 4 * (dim // 4) * samples, repeat)
    transform = _rate(lambda: _transform_only(key[0], key[1], samples, dim), n, repeat)
    npy = numpy_peer(dim, max(repeat, 8))
    gen = max(numba_generator_peer(dim, max(threads, samples // 4), threads) for _ in range(repeat))
    freq = cpu_frequency_hz()
    res = {
        "dim": dim,
        "samples": samples,
        "threads": threads,
        "ours": ours,
        "numpy": npy,
        "numba_generator": gen,
        "ratio_numpy": ours / npy,
        "ratio_numba_generator": ours / gen,
        "philox_words": philox,
        "transform": transform,
        "machine": machine_description(),
    }
    if freq:
        res["cycles_per_normal"] = threads * freq / ours
        res["cycles_per_philox_word"] = threads * freq / philox
        res["cycles_per_transform_normal"] = threads * freq / transform
    return res


_MEMORY_CHILD = """
import json, resource, sys
import lni_geometry
from lni_geometry import sample_angles

def rss_mb():
    with open('/proc/self/status') as fh:
        d = dict(l.split(':', 1) for l in fh)
    return int(d['VmRSS'].split()[0]) / 1024, int(d['VmHWM'].split()[0]) / 1024

dim, samples = int(sys.argv[1]), int(sys.argv[2])
sample_angles(1000, 4, backend='cpu')          # compile / load the kernels
sample_angles(2 * 65536 + 5, 1, backend='cpu')
base, _ = rss_mb()
s = sample_angles(dim, samples, backend='cpu')
_, peak = rss_mb()
print(json.dumps({'baseline_mb': base, 'peak_mb': peak, 'mean_deg': float(s.bisector.mean() * 57.29577951308232)}))
"""


def bench_memory(dim=10**8, samples=4):
    """Peak resident memory of ``sample_angles(dim, samples)`` above the interpreter.

    Runs in a fresh process: the baseline is the RSS after importing the package
    and loading the compiled kernels; the peak is VmHWM after the run.
    """
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(dim), str(samples)],
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(dim=dim, samples=samples, above_baseline_mb=res["peak_mb"] - res["baseline_mb"])
    return res


def format_cpu(res):
    """The CPU benchmark as a markdown table."""
    lines = [
        f"machine: {res['machine']}",
        f"dim = {res['dim']}, samples = {res['samples']}, threads = {res['threads']}",
        "",
        "| implementation | normals/s | vs ours |",
        "| --- | ---: | ---: |",
        f"| lni_geometry cpu ({res['threads']} threads) | {res['ours']:.3e} | 1.00 |",
        f"| numpy, 1 thread (standard_normal, abs().sum(), (x*x).sum()) | {res['numpy']:.3e} | {res['numpy'] / res['ours']:.2f} |",
        f"| numba + numpy Generator, {res['threads']} threads, nogil, fused | {res['numba_generator']:.3e} | {res['numba_generator'] / res['ours']:.2f} |",
        "",
        f"ours / numpy = {res['ratio_numpy']:.1f}x, ours / numba+Generator = {res['ratio_numba_generator']:.2f}x",
        "",
        "where the time goes (all threads):",
        f"  Philox4x32-10 words alone:        {res['philox_words']:.3e} words/s",
        f"  Philox + Box-Muller (no sums):    {res['transform']:.3e} normals/s",
        f"  full fused kernel (sums):         {res['ours']:.3e} normals/s",
    ]
    if "cycles_per_normal" in res:
        lines += [
            f"  cycles per normal (threads x clock / rate): {res['cycles_per_normal']:.2f} "
            f"(Philox {res['cycles_per_philox_word']:.2f} per word, transform {res['cycles_per_transform_normal']:.2f})",
        ]
    return "\n".join(lines)


def format_memory(res):
    return (
        f"memory: dim = {res['dim']}, samples = {res['samples']}: peak RSS {res['peak_mb']:.1f} MB, "
        f"{res['above_baseline_mb']:.1f} MB above the interpreter with the package loaded "
        f"({res['baseline_mb']:.1f} MB)"
    )


def bench_stable(alphas=(1.5, 1.0, 0.5), dim=2**20, samples=32, repeat=3):
    """Stable draws per second of ``sample_angles`` against ``scipy.stats.levy_stable.rvs``.

    One row per alpha, from :func:`lni_geometry.tails.stable_draws_per_second`
    (ours: drawn by Chambers-Mallows-Stuck and reduced to the three sums on all
    numba threads; scipy: draws only, one thread, same run).
    """
    from .tails import stable_draws_per_second

    return [stable_draws_per_second(alpha=a, dim=dim, samples=samples, repeat=repeat) for a in alphas]


def format_stable(rows):
    """Markdown table of :func:`bench_stable`."""
    lines = [
        "",
        f"SymmetricStable(alpha): dim = {rows[0]['dim']}, samples = {rows[0]['samples']}, "
        f"threads = {rows[0]['threads']}",
        "",
        "| alpha | lni_geometry sample_angles (draws/s) | scipy levy_stable.rvs (draws/s) | ours / scipy |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['alpha']} | {r['lni_geometry']:.3e} | {r['scipy']:.3e} | {r['ratio']:.0f}x |")
    return "\n".join(lines)


def bench_laws(dims=(4, 1000, 6_000_000, 10**9), methods=("auto", "saddlepoint", "normal"), points=10**5, repeat=5):
    """Time of ``pdf`` plus ``cdf`` of the bisector-angle laws at ``points`` angles.

    Per (dim, method): the construction time in this process (tables shared with earlier
    rows are not rebuilt: cold figures are in docs/accuracy.md)
    and the best of ``repeat`` evaluations of ``pdf(x)`` and ``cdf(x)``
    together, ``x`` spread over the law's central 99.99%.  The issue's target
    is under 50 ms at any dim.
    """
    from .theory import BisectorAngle, FixedAxisAngle

    rows = []
    for dim in dims:
        for method in methods + ("fixed-axis",):
            if method == "saddlepoint" and dim < 4:
                continue
            t0 = time.perf_counter()
            law = FixedAxisAngle(dim) if method == "fixed-axis" else BisectorAngle(dim, method=method)
            build = time.perf_counter() - t0
            x = law.ppf(np.linspace(5e-5, 1 - 5e-5, points))
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                law.pdf(x)
                law.cdf(x)
                best = min(best, time.perf_counter() - t0)
            name = method if method in ("fixed-axis", "normal") else getattr(law, "method", method)
            label = f"auto = {name}" if method == "auto" else name
            rows.append({"dim": dim, "law": label, "build_s": build, "pdf_cdf_s": best, "points": points})
    return rows


def format_laws(rows):
    """Markdown table of :func:`bench_laws`."""
    lines = [
        "",
        f"Laws: pdf + cdf at {rows[0]['points']} angles (best of repeats), and the construction time",
        "",
        "| dim | law | pdf + cdf | construction |",
        "| ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['dim']:g} | {r['law']} | {1e3 * r['pdf_cdf_s']:.1f} ms | {1e3 * r['build_s']:.0f} ms |")
    return "\n".join(lines)


# --- one optimizer step in PyTorch (lni-geometry bench --torch) ----------------------


#: Parameter shapes of the benchmark model: 10,001,408 parameters in 8 tensors, the
#: shapes of two wide linear layers with biases, a narrower one and a normalisation layer.
TORCH_BENCH_SHAPES = ((2048, 2048), (2048,), (2048, 2048), (2048,), (1024, 1568), (1024,), (1024,), (1024,))


def bench_torch(repeat=15, seed=0, shapes=TORCH_BENCH_SHAPES):
    """Seconds per optimizer step on a model of 10^7 parameters (float32, CPU).

    Every row steps its own copy of the same parameters with the same fixed
    gradients (Gaussian, with 10% exact zeros as behind dead units); rows are
    timed in turn, one step each, ``repeat`` times (so a drifting machine
    affects every row alike), after two warm-up steps; the median is reported.

    Rows: ours ``Lion`` (per-tensor and ``foreach``), ours ``Lion`` with
    telemetry, lucidrains/lion-pytorch's ``Lion`` and its ``foreach`` variant
    (when installed), ``Enim`` with a float angle, with ``"lni"`` and with
    ``"lion"``.

    Returns
    -------
    dict
        ``rows``: ``{name: median seconds}``, ``params``, ``threads``, ``torch``,
        ``machine``, and the ratios the issue's targets are about.
    """
    import torch

    from .torch import Enim, Lion

    gen = torch.Generator().manual_seed(seed)
    base = [torch.randn(s, generator=gen) for s in shapes]
    grads = [torch.randn(s, generator=gen) * (torch.rand(s, generator=gen) > 0.1) for s in shapes]

    def params():
        ps = [torch.nn.Parameter(b.clone()) for b in base]
        for p, g in zip(ps, grads):
            p.grad = g
        return ps

    makers = {
        "lni_geometry Lion": lambda: Lion(params(), lr=1e-4, foreach=False),
        "lni_geometry Lion, foreach": lambda: Lion(params(), lr=1e-4, foreach=True),
        "lni_geometry Lion, telemetry": lambda: Lion(params(), lr=1e-4, foreach=False, telemetry=True),
    }
    try:
        import lion_pytorch
        from lion_pytorch.foreach import Lion as ForeachLion

        makers["lion-pytorch Lion"] = lambda: lion_pytorch.Lion(params(), lr=1e-4)
        makers["lion-pytorch Lion, foreach"] = lambda: ForeachLion(params(), lr=1e-4)
    except ImportError:
        pass
    makers["lni_geometry Enim, angle=0.65"] = lambda: Enim(params(), lr=1e-4, angle=0.65, seed=0)
    makers["lni_geometry Enim, angle='lni'"] = lambda: Enim(params(), lr=1e-4, angle="lni", seed=0)
    makers["lni_geometry Enim, angle='lion'"] = lambda: Enim(params(), lr=1e-4, angle="lion", seed=0)

    optimizers = {name: make() for name, make in makers.items()}
    times = {name: [] for name in optimizers}
    for r in range(repeat + 2):
        for name, opt in optimizers.items():
            t0 = time.perf_counter()
            opt.step()
            if r >= 2:
                times[name].append(time.perf_counter() - t0)
            opt.history.clear() if hasattr(opt, "history") else None
    rows = {name: float(np.median(t)) for name, t in times.items()}
    lion = rows["lni_geometry Lion"]
    res = {
        "rows": rows,
        "params": sum(int(np.prod(s)) for s in shapes),
        "tensors": len(shapes),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": machine_description(),
        "repeat": repeat,
        "telemetry_overhead": rows["lni_geometry Lion, telemetry"] / lion,
        "enim_over_lion": rows["lni_geometry Enim, angle=0.65"] / lion,
        "enim_lni_over_lion": rows["lni_geometry Enim, angle='lni'"] / lion,
    }
    if "lion-pytorch Lion" in rows:
        res["ours_over_lion_pytorch"] = lion / rows["lion-pytorch Lion"]
    return res


def format_torch(res):
    """The optimizer-step benchmark as a markdown table."""
    lion = res["rows"]["lni_geometry Lion"]
    lines = [
        f"machine: {res['machine']}, torch {res['torch']} ({res['threads']} threads)",
        f"one step on {res['params']:,} float32 parameters ({res['tensors']} tensors), median of {res['repeat']}",
        "",
        "| optimizer | ms per step | vs our Lion |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {t * 1e3:.1f} | {t / lion:.2f} |" for name, t in res["rows"].items()]
    lines += ["", f"telemetry on / off: {res['telemetry_overhead']:.2f}x (target <= 1.5x); "
              f"Enim (float angle) / Lion: {res['enim_over_lion']:.2f}x (target <= 2x); "
              f"Enim ('lni') / Lion: {res['enim_lni_over_lion']:.2f}x"]
    if "ours_over_lion_pytorch" in res:
        lines[-1] += f"; our Lion / lion-pytorch: {res['ours_over_lion_pytorch']:.2f}x (target <= 1)"
    return "\n".join(lines)
