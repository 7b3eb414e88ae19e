"""CPU throughput and memory benchmarks (``lni-geometry bench``).

Measured, never asserted: the figures go in ``docs/benchmarks.md`` with the machine and date.

Rows of the CPU benchmark (all at the same ``dim``, best of ``repeat`` runs):

- ``lni_geometry cpu``: :func:`lni_geometry.sample_angles` on all numba threads;
- ``numpy``: what a user writes, one thread:
  ``x = rng.standard_normal(dim); x.__abs__().sum(); (x * x).sum()``;
- ``numba + Generator``: one ``numpy.random.Generator`` per thread inside
  ``numba.njit(nogil=True)`` with the three sums fused, run on as many Python
  threads as numba uses;
- ``Intel MKL``: ``mkl_random`` (the ``[bench]`` extra) when installed, one
  thread, the fastest of its basic generators and normal methods in the run;
- the breakdown of our kernel: Philox words alone, Philox + Box-Muller written
  to a buffer (no sums), and the full fused kernel, so one sees where the time
  goes, for every model of ``models_for_breakdown`` (the Gaussian's rows are
  also the top rows), with the instruction set (:func:`instruction_set`) and
  the clock of ``/proc/cpuinfo`` beside the cycles per draw; and the same per
  model on one thread in cache, by the thread's CPU time
  (:func:`cycles_in_cache`), which a job on the other core hardly moves (the
  VM's host still does).  Our rows are timed interleaved (every one once per
  round, :func:`_rates`) and the fused/transform ratios are medians of
  per-round ratios, so that a load that comes and goes does not move them;
- ours / numba + Generator also as the median of rounds in which the two are
  timed back to back (:func:`_paired_ratios`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange, uint32

from .. import kernels, models, rng
from ..runs import cpu_frequency_hz, machine_description
from ..sampling import sample_angles

__all__ = ["bench_cpu", "bench_memory", "cycles_in_cache", "format_cpu", "format_memory", "instruction_set", "mkl_peer",
           "numba_generator_peer", "numpy_peer"]

#: The models of the per-model breakdown (the Gaussian first).
models_for_breakdown = ("gaussian", "stable:1.5", "t:3")


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
def _transform_only(model_id, p0, p1, k0, k1, samples, dim):
    """Philox + the model's transform into a tile buffer, no sums (the buffer's first value kept)."""
    out = np.empty(samples)
    for s in prange(samples):
        buf = np.empty(kernels.TILE)
        words = np.empty(models.TILE_SCRATCH * kernels.TILE, np.uint32)
        for t0 in range(0, dim, kernels.TILE):
            models.fill_tile(model_id, p0, p1, k0, k1, s, t0, kernels.TILE, words, buf)
        out[s] = buf[0]
    return out


def mkl_peer(dim, repeat, seed=0):
    """Normals per second of Intel MKL through ``mkl_random`` (one thread), or None.

    The fastest of its basic generators and normal methods in this run
    (``standard_normal`` then numpy's ``abs().sum()``, ``(x*x).sum()``);
    returns ``(rate, "BRNG/method")``.  ``pip install "lni-geometry[bench]"``.
    """
    try:
        import mkl_random
    except ImportError:
        return None
    # MKLRandomState since mkl_random 1.3.2 (RandomState is deprecated there)
    state_cls = getattr(mkl_random, "MKLRandomState", None) or mkl_random.RandomState
    best = (0.0, "")
    for brng in ("SFMT19937", "MT19937", "MCG59", "PHILOX4X32X10"):
        for method in ("ICDF", "BoxMuller2", "BoxMuller"):
            try:
                gen = state_cls(seed, brng=brng)
                gen.standard_normal(1024, method=method)
            except Exception:  # a generator or method this build lacks
                continue
            for _ in range(repeat):
                t0 = time.perf_counter()
                x = gen.standard_normal(dim, method=method)
                np.abs(x).sum()
                (x * x).sum()
                rate = dim / (time.perf_counter() - t0)
                if rate > best[0]:
                    best = (rate, f"{brng}/{method}")
    return best


def instruction_set():
    """The widest x86 vector extension of this CPU (from /proc/cpuinfo flags): "AVX-512", "AVX2", ..."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
            else:
                return "unknown"
    except OSError:
        return "unknown"
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2")):
        if flag in flags:
            return name
    return "SSE2"


def _breakdown_jobs(model, dim, samples):
    """The three timed jobs of one model's breakdown: ``{name: (fn, draws)}``."""
    model = models.model_from_spec(model)
    key = rng.key_from_seed(0)
    mid = model.kernel_id
    p0, p1 = (float(p) for p in model.kernel_params)
    n = dim * samples
    words_per_draw = 4 // model.coords_per_block
    blocks = dim // model.coords_per_block
    return {
        "bits_draws": (lambda: _philox_only(key[0], key[1], samples, blocks), 4 * blocks * samples / words_per_draw),
        "transform": (lambda: _transform_only(mid, p0, p1, key[0], key[1], samples, dim), n),
        "fused": (lambda: sample_angles(dim, samples, model, seed=1, backend="cpu"), n),
    }


@njit(cache=True, error_model="numpy")
def _chunk_generate(model_id, p0, p1, k0, k1, chunk, repeats, buf):
    """Generate one chunk of coordinates ``repeats`` times into tiles (no sums), on this thread."""
    words = np.empty(models.TILE_SCRATCH * kernels.TILE, np.uint32)
    for r in range(repeats):
        for t0 in range(0, chunk, kernels.TILE):
            models.fill_tile(model_id, p0, p1, k0, k1, r, t0, kernels.TILE, words, buf)


@njit(cache=True, error_model="numpy")
def _chunk_fused(model_id, p0, p1, k0, k1, chunk, repeats, buf):
    """The fused kernel (generate and sum) on one chunk ``repeats`` times, on this thread."""
    out = np.empty(3)
    for r in range(repeats):
        kernels.chunk_sums(model_id, p0, p1, k0, k1, r, chunk, 0, buf, out)


def cycles_in_cache(model, rounds=7, repeats=64):
    """Cycles per draw of one model on one thread, in cache: generating alone and fused.

    A view that a job on another core hardly moves (it slows memory, not the
    arithmetic of one core; a VM's host can still slow the core itself): the CPU
    time of the calling thread (``time.thread_time``) over ``repeats`` whole
    chunks of ``kernels.CHUNK`` coordinates (samples ``0 .. repeats - 1``;
    the tile buffers stay in cache), times the clock of
    :func:`lni_geometry.runs.cpu_frequency_hz` (``/proc/cpuinfo``), best of
    ``rounds`` interleaved rounds (generate, then fused, in each round).

    Parameters
    ----------
    model : str or GradientModel
        A model spec (``"gaussian"``, ``"stable:1.5"``, ...) or model.
    rounds : int
        Rounds; the best is kept.
    repeats : int
        Chunks per timing.

    Returns
    -------
    dict or None
        ``generate`` and ``fused`` (cycles per draw), their ratio ``fusion``
        (``generate / fused``: the fused rate over the generating rate) and
        ``rounds``; None without a known clock.
    """
    freq = cpu_frequency_hz()
    if not freq:
        return None
    model = models.model_from_spec(model)
    key = rng.key_from_seed(0)
    p0, p1 = (float(p) for p in model.kernel_params)
    args = (model.kernel_id, p0, p1, key[0], key[1], kernels.CHUNK)
    buf = np.empty(kernels.TILE)
    best = {"generate": np.inf, "fused": np.inf}
    fns = {"generate": _chunk_generate, "fused": _chunk_fused}
    for fn in fns.values():
        fn(*args, 1, buf)  # compile and warm
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.thread_time()
            fn(*args, repeats, buf)
            best[name] = min(best[name], time.thread_time() - t0)
    draws = repeats * kernels.CHUNK
    out = {k: v * freq / draws for k, v in best.items()}
    out["fusion"] = out["generate"] / out["fused"]
    out["rounds"] = rounds
    return out


def _rates(jobs, repeat, pairs=()):
    """Best rates of several jobs timed interleaved: each round runs every job once, in turn.

    ``jobs`` maps a name to ``(fn, count)``; returns ``({name: count/s},
    {(a, b): ratio})`` where the ratio of rates ``a/b`` is the median over
    rounds of the ratio measured within one round, so that a load that comes
    and goes moves the numerator and the denominator together.
    """
    for fn, _ in jobs.values():
        fn()  # compile / warm
    secs = {k: [] for k in jobs}
    for _ in range(repeat):
        for k, (fn, _) in jobs.items():
            t0 = time.perf_counter()
            fn()
            secs[k].append(time.perf_counter() - t0)
    rates = {k: jobs[k][1] / min(v) for k, v in secs.items()}
    ratios = {}
    for a, b in pairs:
        r = sorted((jobs[a][1] / ta) / (jobs[b][1] / tb) for ta, tb in zip(secs[a], secs[b]))
        ratios[(a, b)] = r[len(r) // 2]
    return rates, ratios


def _paired_ratios(dim, samples, threads, rounds):
    """Ours / numba + Generator per round, the two timed back to back on the same samples count.

    The VM's speed drifts by tens of percent within a minute; a ratio of two
    rates measured seconds apart moves with it, a ratio within one round much
    less.
    """
    n = dim * samples
    sample_angles(dim, samples, seed=1, backend="cpu")  # compiled and warm
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        sample_angles(dim, samples, seed=1, backend="cpu")
        ours = n / (time.perf_counter() - t0)
        out.append(ours / numba_generator_peer(dim, samples, threads))
    return out


def bench_cpu(dim=1 << 20, samples=None, repeat=3):
    """Normals per second of the CPU backend and its peers, and the breakdown.

    Our rows (every model's breakdown; the Gaussian's gives the top rows) are
    timed interleaved, round by round (:func:`_rates`), so that their ratios
    see the same load; the peers are timed after them.

    Returns
    -------
    dict
        Keys ``ours``, ``numpy``, ``numba_generator`` (normals/s), ``mkl`` and
        ``mkl_method`` (None without ``mkl_random``), ``philox_words``
        (words/s), ``transform`` (normals/s without sums), ``ratio_numpy``,
        ``ratio_numba_generator`` (of best rates),
        ``ratio_numba_generator_paired`` and ``..._paired_range`` (rounds
        timed back to back), ``fusion_ratio``, ``breakdown`` (per model),
        ``in_cache`` (:func:`cycles_in_cache` per model), and with a known
        clock ``cycles_per_normal`` and the breakdown's cycles (all threads
        together, at the clock of ``/proc/cpuinfo``).
    """
    threads = numba.get_num_threads()
    if samples is None:
        samples = max(8 * threads, (1 << 26) // dim)
    heavy_samples = max(2 * threads, samples // 8)
    jobs, pairs = {}, []
    for m in models_for_breakdown:
        sub = _breakdown_jobs(m, dim, samples if m == "gaussian" else heavy_samples)
        jobs.update({(m, k): v for k, v in sub.items()})
        pairs.append(((m, "fused"), (m, "transform")))
    rates, ratios = _rates(jobs, repeat, pairs)
    # the top rows are the Gaussian's breakdown: sample_angles, Philox words, Philox + transform
    ours, philox, transform = (rates[("gaussian", k)] for k in ("fused", "bits_draws", "transform"))
    rows = [{"model": models.model_from_spec(m).spec,
             **{k: rates[(m, k)] for k in ("bits_draws", "transform", "fused")},
             "fusion_ratio": ratios[((m, "fused"), (m, "transform"))]} for m in models_for_breakdown]
    in_cache = {m: cycles_in_cache(m) for m in models_for_breakdown}
    npy = numpy_peer(dim, max(repeat, 8))
    gen_samples = max(threads, samples // 4)
    gen = max(numba_generator_peer(dim, gen_samples, threads) for _ in range(repeat))
    paired = _paired_ratios(dim, gen_samples, threads, max(repeat, 5))
    mkl = mkl_peer(dim, max(repeat, 3))
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
        "ratio_numba_generator_paired": float(np.median(paired)),
        "ratio_numba_generator_paired_range": (float(min(paired)), float(max(paired))),
        "philox_words": philox,
        "transform": transform,
        "fusion_ratio": ratios[(("gaussian", "fused"), ("gaussian", "transform"))],
        "mkl": mkl[0] if mkl else None,
        "mkl_method": mkl[1] if mkl else None,
        "instruction_set": instruction_set(),
        "clock_ghz": freq / 1e9 if freq else None,
        "breakdown": rows,
        "in_cache": in_cache,
        "machine": machine_description(),
    }
    if freq:
        res["cycles_per_normal"] = threads * freq / ours
        res["cycles_per_philox_word"] = threads * freq / philox
        res["cycles_per_transform_normal"] = threads * freq / transform
        for row in rows:
            row["cycles"] = {k: threads * freq / row[k] for k in ("bits_draws", "transform", "fused")}
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
        (f"| Intel MKL (mkl_random {res['mkl_method']}), 1 thread, numpy sums | {res['mkl']:.3e} | {res['mkl'] / res['ours']:.2f} |"
         if res.get("mkl") else "| Intel MKL (mkl_random): not installed (pip install \"lni-geometry[bench]\") | | |"),
        "",
        f"ours / numpy = {res['ratio_numpy']:.1f}x, ours / numba+Generator = {res['ratio_numba_generator']:.2f}x "
        f"(best rates); {res['ratio_numba_generator_paired']:.2f}x (median of "
        f"{res['ratio_numba_generator_paired_range'][0]:.2f}..{res['ratio_numba_generator_paired_range'][1]:.2f}, "
        "ours and it timed back to back in each round)",
        "",
        "where the time goes (all threads):",
        f"  Philox4x32-10 words alone:        {res['philox_words']:.3e} words/s",
        f"  Philox + Box-Muller (no sums):    {res['transform']:.3e} normals/s",
        f"  full fused kernel (sums):         {res['ours']:.3e} normals/s",
    ]
    lines.append(f"  fused / generating alone:         {res['fusion_ratio']:.2f} (median of the ratios within each round)")
    if "cycles_per_normal" in res:
        lines += [
            f"  cycles per normal (threads x clock / rate, {res['instruction_set']}, {res['clock_ghz']:.2f} GHz): "
            f"{res['cycles_per_normal']:.2f} "
            f"(Philox {res['cycles_per_philox_word']:.2f} per word, transform {res['cycles_per_transform_normal']:.2f})",
        ]
    lines += ["", f"breakdown per model ({res['instruction_set']}; draws/s, all threads; cycles per draw in brackets):", "",
              "| model | bits (Philox) | bits + transform | fused (+ sums) | fused / transform |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for row in res.get("breakdown", []):
        cyc = row.get("cycles", {})

        def cell(k):
            return f"{row[k]:.3e}" + (f" ({cyc[k]:.1f})" if k in cyc else "")

        lines.append(f"| {row['model']} | {cell('bits_draws')} | {cell('transform')} | {cell('fused')} | {row.get('fusion_ratio', row['fused'] / row['transform']):.2f} |")
    cached = {m: c for m, c in res.get("in_cache", {}).items() if c}
    if cached:
        rounds = next(iter(cached.values()))["rounds"]
        lines += ["", "one thread, in cache (one cache-resident chunk per sample, thread CPU time x clock, "
                  f"best of {rounds} interleaved rounds; cycles per draw; blind to the other cores' load, not to "
                  "the host's speed):", "",
                  "| model | generating alone | fused (+ sums) | fused rate / generating rate |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {models.model_from_spec(m).spec} | {c['generate']:.2f} | {c['fused']:.2f} | {c['fusion']:.2f} |"
                  for m, c in cached.items()]
    return "\n".join(lines)


def format_memory(res):
    return (
        f"memory: dim = {res['dim']}, samples = {res['samples']}: peak RSS {res['peak_mb']:.1f} MB, "
        f"{res['above_baseline_mb']:.1f} MB above the interpreter with the package loaded "
        f"({res['baseline_mb']:.1f} MB)"
    )


