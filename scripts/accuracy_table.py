#!/usr/bin/env python
"""The accuracy table of docs/accuracy.md: how good is each law of the bisector angle, at which n.

For each dim and method it prints

- the Kolmogorov distance ``D = sup |F_N - F|`` between N Monte Carlo angles
  (``lni_geometry.sample_angles``, seed 0) and the law's cdf, beside the noise
  level of D for a perfect law, ``0.87 / sqrt(N)`` (the mean of the Kolmogorov
  law over sqrt(N));
- the worst relative density error in the central 99.9%: the Monte Carlo
  frequencies of 20 bins of equal probability (by the law itself) over its
  0.05% .. 99.95% quantiles against the law's bin probabilities,
  ``max |observed/expected - 1|``, beside its noise level (the expected worst of 20
  binomial errors, about ``2.2 / sqrt(N * 0.999 / 20)``);
- where the recursion (numerically exact, n <= 1000) exists, the worst relative
  difference of the method's density from the recursion's on 2001 angles over the
  same central 99.9%, and the largest difference of their cdfs on the support:
  errors without Monte Carlo noise.

The fixed-axis law ``sin^(n-2)(a)/B_n`` (``FixedAxisAngle``, the sphere factor alone,
the seed paper's starting point) is listed too, to show how far it is from the
bisector angle.

Rerun::

    python scripts/accuracy_table.py > /tmp/accuracy_rows.md
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import stats

from lni_geometry import sample_angles
from lni_geometry.theory import RECURSION_MAX_DIM, BisectorAngle, FixedAxisAngle

DIMS = [4, 10, 100, 10**3, 10**4, 10**6]
SAMPLES = {4: 10**6, 10: 10**6, 100: 10**6, 10**3: 10**6, 10**4: 10**6, 10**6: 20_000}
BINS = 20


def _laws(dim):
    out = []
    for method in ("auto", "recursion", "saddlepoint", "normal"):
        if method == "recursion" and dim > RECURSION_MAX_DIM:
            continue
        law = BisectorAngle(dim, method=method)
        label = f"auto = {law.method}" if method == "auto" else method
        out.append((label, law))
    out.append(("sin^(n-2) alone (FixedAxisAngle)", FixedAxisAngle(dim)))
    return out


def _binned_error(angles, law, ref):
    q = np.linspace(0.0005, 0.9995, BINS + 1)
    edges = ref.ppf(q)
    counts, _ = np.histogram(angles, bins=edges)
    expected = np.diff(law.cdf(edges)) * angles.size
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(counts / expected - 1.0)
    return float(np.max(np.where(expected > 0, rel, np.inf)))


def _density_error(law, exact, ref):
    x = ref.ppf(np.linspace(0.0005, 0.9995, 2001))
    return float(np.max(np.abs(np.exp(law.logpdf(x) - exact.logpdf(x)) - 1.0)))


def _cdf_error(law, exact):
    lo, hi = exact.support()
    x = np.linspace(lo, hi, 20001)
    return float(np.max(np.abs(law.cdf(x) - exact.cdf(x))))


def main():
    print("| dim | N (Monte Carlo) | method | Kolmogorov distance D | D noise 0.87/sqrt(N) "
          "| worst rel. density error (MC, 20 bins) | its noise | vs recursion: worst rel. density error "
          "| vs recursion: sup cdf error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dim in DIMS:
        n = SAMPLES[dim]
        t0 = time.perf_counter()
        angles = np.sort(sample_angles(dim, n, seed=0, backend="cpu").bisector)
        ref = BisectorAngle(dim)
        exact = BisectorAngle(dim, method="recursion") if 3 <= dim <= RECURSION_MAX_DIM else None
        noise_d = 0.87 / math.sqrt(n)
        noise_bins = 2.2 / math.sqrt(n * 0.999 / BINS)
        for label, law in _laws(dim):
            d = stats.kstest(angles, law.cdf).statistic
            if isinstance(law, FixedAxisAngle):
                binned, dens, cdf = "-", "-", "-"
            else:
                binned = f"{_binned_error(angles, law, ref):.2e}"
                dens = f"{_density_error(law, exact, ref):.1e}" if exact is not None else "n/a"
                cdf = f"{_cdf_error(law, exact):.1e}" if exact is not None else "n/a"
            print(f"| {dim:g} | {n:.0e} | {label} | {d:.2e} | {noise_d:.1e} | {binned} | {noise_bins:.1e} "
                  f"| {dens} | {cdf} |", flush=True)
        print(f"<!-- dim {dim}: {time.perf_counter() - t0:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
