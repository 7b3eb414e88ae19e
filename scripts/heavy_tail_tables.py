#!/usr/bin/env python
"""Tables of docs/heavy_tails.md: tail-index bias, the angle under heavy tails, the far tail.

Rerun::

    python scripts/heavy_tail_tables.py            # everything (a few minutes on 2 cores)
    python scripts/heavy_tail_tables.py --only angle --quick
    python scripts/heavy_tail_tables.py --write docs/heavy_tails.md   # refresh the page

Prints markdown.  Sections (``--only``, comma separated):

- ``index``: bias and spread of :func:`lni_geometry.tails.tail_index` on
  stable draws of known alpha (and on finite-variance data, where it misleads);
- ``angle``: mean and 5/50/95 % quantiles of the bisector angle (degrees) for
  alpha in {2, 1.9, 1.7, 1.5, 1.2, 1.0, 0.8, 0.5} and dim in {1e3 .. 1e6}, with
  ``lni_geometry.theory.StableBisectorAngle`` beside it when that class exists;
- ``tail``: P(|X| > x) from 1e8 stable draws against the tail series, down to
  probability 1e-6;
- ``inverse``: :func:`lni_geometry.tails.alpha_for_angle` examples;
- ``speed``: stable and Student-t draws per second against scipy.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import platform
import sys
import time

import numpy as np
from scipy import optimize

from lni_geometry import sample_angles, sample_vectors
from lni_geometry.bench.models import stable_draws_per_second
from lni_geometry.models import StudentT, SymmetricStable
from lni_geometry.tails import (
    alpha_for_angle,
    stable_tail_constant,
    stable_tail_probability,
    tail_index,
)

ALPHAS = [2.0, 1.9, 1.7, 1.5, 1.2, 1.0, 0.8, 0.5]
DIMS = [10**3, 10**4, 10**5, 10**6]


def index_table(quick):
    sizes = [10**3, 10**4, 10**5] + ([] if quick else [10**6])
    rows = [("stable", a) for a in (0.5, 1.0, 1.5, 1.8, 1.9, 2.0)] + [("t", 1.5), ("t", 3.0), ("t", 10.0)]
    print("### Bias and spread of tail_index (default block = floor(sqrt(N)))\n")
    print("mean of alpha_hat - alpha (standard deviation in brackets) over repeated samples;")
    print("rows `t(df)` are Student-t data of tail index df (the bias is against df): the estimator reads neither df nor 2 there.\n")
    print("| data | " + " | ".join(f"N = 1e{int(math.log10(n))}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for kind, par in rows:
        model = SymmetricStable(par) if kind == "stable" else StudentT(par)
        target = par if kind == "stable" else par
        cells = []
        for n in sizes:
            reps = (200 if n <= 10**5 else 50) // (4 if quick else 1)
            est = []
            for r0 in range(0, reps, 10):
                x = sample_vectors(n, min(10, reps - r0), model, seed=101, start=r0)
                est.extend(tail_index(row) for row in x)
            est = np.array(est)
            cells.append(f"{est.mean() - target:+.3f} ({est.std(ddof=1):.3f})")
        name = f"stable alpha={par}" if kind == "stable" else f"t(df={par:g})"
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def _theory():
    try:
        from lni_geometry.theory import StableBisectorAngle  # noqa: F401

        return StableBisectorAngle
    except Exception:
        return None


def angle_table(quick):
    law_cls = _theory()
    samples = {10**3: 2000, 10**4: 2000, 10**5: 1000, 10**6: 400}
    if quick:
        samples = {d: max(100, s // 10) for d, s in samples.items()}
    print("### Bisector angle of SymmetricStable(alpha) vectors (degrees)\n")
    print("Monte Carlo: mean +- standard error, then the 5 / 50 / 95 % quantiles; "
          "samples per cell: " + ", ".join(f"{s} at dim 1e{int(math.log10(d))}" for d, s in samples.items()) + ".")
    if law_cls is None:
        print("Limit law column: `lni_geometry.theory.StableBisectorAngle` was not available when this "
              "table was made (left for the lead to fill).\n")
    else:
        print("Limit law: `lni_geometry.theory.StableBisectorAngle(dim, alpha)` mean and "
              "5 / 50 / 95 % quantiles where it constructs.\n")
    print("| alpha | dim | MC mean | MC 5% | MC 50% | MC 95% | limit law mean | limit 5 / 50 / 95 % |")
    print("|---|---|---|---|---|---|---|---|")
    for a in ALPHAS:
        for d in DIMS:
            t0 = time.perf_counter()
            s = sample_angles(d, samples[d], SymmetricStable(a), seed=202, backend="cpu")
            deg = np.degrees(s.bisector)
            q = np.quantile(deg, [0.05, 0.5, 0.95])
            se = deg.std(ddof=1) / math.sqrt(deg.size)
            law_mean, law_q = "", ""
            if law_cls is not None:
                try:
                    law = law_cls(d, a)
                    law_mean = f"{math.degrees(float(law.mean())):.3f}"
                    law_q = " / ".join(f"{math.degrees(float(law.ppf(p))):.2f}" for p in (0.05, 0.5, 0.95))
                except Exception as exc:  # the law says where it is not valid
                    law_mean = "n/a"
                    law_q = type(exc).__name__
            print(f"| {a} | 1e{int(math.log10(d))} | {deg.mean():.3f} +- {se:.3f} | {q[0]:.2f} | {q[1]:.2f} | "
                  f"{q[2]:.2f} | {law_mean} | {law_q} |", flush=True)
            del t0
    print()


def _threshold(p, alpha):
    c = stable_tail_constant(alpha)
    guess = (c / p) ** (1 / alpha)
    return optimize.brentq(lambda x: stable_tail_probability(x, alpha) - p, guess / 4, guess * 4, xtol=1e-12 * guess)


def tail_table(quick):
    n_total = 10**7 if quick else 10**8
    probs = [1e-3, 1e-4, 1e-5, 1e-6]
    print(f"### Far tail of SymmetricStable(alpha): {n_total:.0e} draws against the tail series\n")
    print("x_p: P(|X| > x_p) = p by the series (leading term C_alpha x^-alpha plus corrections); "
          "z = (count - N p) / sqrt(N p (1 - p)); `lead/p - 1`: the leading term's own error at x_p.\n")
    print("| alpha | p | x_p | expected | count | z | lead/p - 1 |")
    print("|---|---|---|---|---|---|---|")
    chunk = 10**7
    for a in (0.5, 1.0, 1.5, 1.9):
        xs = [_threshold(p, a) for p in probs]
        counts = np.zeros(len(probs), dtype=np.int64)
        for start in range(0, n_total // chunk):
            x = np.abs(sample_vectors(chunk // 10, 10, SymmetricStable(a), seed=303, start=10 * start))
            for i, xp in enumerate(xs):
                counts[i] += np.count_nonzero(x > xp)
        for p, xp, c in zip(probs, xs, counts):
            z = (c - n_total * p) / math.sqrt(n_total * p * (1 - p))
            lead = stable_tail_constant(a) * xp**-a / p - 1
            print(f"| {a} | {p:.0e} | {xp:.6g} | {n_total * p:.0f} | {c} | {z:+.2f} | {lead:+.2e} |", flush=True)
    print()


def inverse_table(quick):
    print("### alpha_for_angle: the alpha whose mean bisector angle is the target\n")
    print("Default samples per evaluation (`max(64, min(2000, 2e8 // dim))`), seed 0; the last rows "
          "repeat the 10^7 case with seeds 1 .. 4, to see the seed-to-seed spread against the reported "
          "standard error.\n")
    print("| target angle | dim | seed | alpha | MC standard error | samples per evaluation | seconds |")
    print("|---|---|---|---|---|---|---|")
    cases = [(45, 10**4, 0), (50, 10**4, 0), (50, 10**6, 0), (60, 10**6, 0)] + [(50, 10**7, s) for s in range(5)]
    if quick:
        cases = cases[:3]
    reps = []
    for deg, dim, seed in cases:
        t0 = time.perf_counter()
        r = alpha_for_angle(math.radians(deg), dim, seed=seed)
        dt = time.perf_counter() - t0
        if dim == 10**7:
            reps.append(r)
        print(f"| {deg} deg | 1e{int(math.log10(dim))} | {seed} | {r.alpha:.4f} | {r.stderr:.4f} | {r.samples} | {dt:.1f} |",
              flush=True)
    if len(reps) > 1:
        a = np.array([r.alpha for r in reps])
        se = np.array([r.stderr for r in reps])
        print(f"\n50 deg at 1e7 over {len(reps)} seeds: alpha = {a.mean():.4f} +- {a.std(ddof=1) / math.sqrt(len(a)):.4f} "
              f"(mean +- standard error of the mean); seed-to-seed sd {a.std(ddof=1):.4f} against a "
              f"reported standard error of {se.min():.4f} .. {se.max():.4f} (rms {math.sqrt(np.mean(se**2)):.4f}).")
    print()


def speed_table(quick):
    import numba

    print(f"### Speed: draws per second ({numba.get_num_threads()} numba threads)\n")
    print("`sample_angles` draws and reduces (sums) the coordinates; scipy only draws (one thread).\n")
    print("| model | lni_geometry sample_angles | scipy rvs | ratio |")
    print("|---|---|---|---|")
    samples = 8 if quick else 32
    for a in (1.5, 0.8):
        r = stable_draws_per_second(alpha=a, samples=samples, repeat=3, scipy_size=2 * 10**5)
        print(f"| SymmetricStable({a}) | {r['lni_geometry']:.3e} | {r['scipy']:.3e} (levy_stable) | {r['ratio']:.0f} |", flush=True)
    from scipy import stats

    model = StudentT(3.0)
    sample_angles(4096, 8, model, backend="cpu")
    best = 0.0
    for r in range(3):
        t0 = time.perf_counter()
        sample_angles(2**20, samples, model, seed=1, start=r * samples, backend="cpu")
        best = max(best, 2**20 * samples / (time.perf_counter() - t0))
    gen = np.random.default_rng(0)
    t0 = time.perf_counter()
    stats.t(3.0).rvs(size=10**7, random_state=gen)
    sp = 10**7 / (time.perf_counter() - t0)
    print(f"| StudentT(3) | {best:.3e} | {sp:.3e} (t.rvs) | {best / sp:.1f} |")
    gauss = 0.0
    for r in range(3):
        t0 = time.perf_counter()
        sample_angles(2**20, samples, None, seed=1, start=r * samples, backend="cpu")
        gauss = max(gauss, 2**20 * samples / (time.perf_counter() - t0))
    print(f"| Gaussian (for reference) | {gauss:.3e} | | |")
    print()


SECTIONS = {"index": index_table, "angle": angle_table, "tail": tail_table, "inverse": inverse_table, "speed": speed_table}


BEGIN = "<!-- tables:begin (generated by scripts/heavy_tail_tables.py --write) -->"
END = "<!-- tables:end -->"


def write_tables(path, text):
    """Replace the text between the BEGIN and END markers of ``path`` by ``text``."""
    with open(path) as fh:
        doc = fh.read()
    i, j = doc.find(BEGIN), doc.find(END)
    if i < 0 or j < i:
        raise SystemExit(f"{path}: markers {BEGIN!r} ... {END!r} not found")
    with open(path, "w") as fh:
        fh.write(doc[: i + len(BEGIN)] + "\n\n" + text.rstrip() + "\n\n" + doc[j:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--write", metavar="PATH", help="also put the tables between the markers of PATH "
                    "(e.g. docs/heavy_tails.md); all sections, not with --quick")
    args = ap.parse_args(argv)
    if args.write and (args.quick or args.only != ",".join(SECTIONS)):
        ap.error("--write needs the full run (no --quick, no --only)")
    out = io.StringIO()
    with contextlib.redirect_stdout(Tee(sys.stdout, out)):
        t_all = time.perf_counter()
        for name in args.only.split(","):
            t0 = time.perf_counter()
            SECTIONS[name.strip()](args.quick)
            print(f"<!-- section {name}: {time.perf_counter() - t0:.0f} s -->\n", flush=True)
        print(f"<!-- all sections: {time.perf_counter() - t_all:.0f} s, {platform.node() or 'unknown host'}, "
              f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')} -->", flush=True)
    if args.write:
        write_tables(args.write, out.getvalue())


class Tee:
    """Write to several streams at once."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()


if __name__ == "__main__":
    main()
