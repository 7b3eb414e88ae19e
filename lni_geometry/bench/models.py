"""Benchmarks of the heavy-tailed models: stable draws per second against scipy."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["bench_stable", "format_stable", "stable_draws_per_second"]


def stable_draws_per_second(alpha=1.5, dim=2**20, samples=32, repeat=3, scipy_size=2 * 10**5, seed=0):
    """Stable draws per second: ``sample_angles`` against ``scipy.stats.levy_stable.rvs``.

    Measured, never asserted.  Our figure: ``dim * samples`` stable
    coordinates drawn *and* reduced to the three sums, on all numba threads,
    best of ``repeat`` runs after a warm-up.  scipy's: ``levy_stable.rvs`` of
    ``scipy_size`` draws (one thread, draws only), best of ``repeat``.

    Returns
    -------
    dict
        ``{"alpha", "dim", "samples", "threads", "lni_geometry", "scipy", "ratio"}``
        with draws per second.
    """
    import numba
    from scipy import stats

    from ..models import SymmetricStable
    from ..sampling import sample_angles

    model = SymmetricStable(alpha)
    sample_angles(min(dim, 4096), 8, model, seed=seed, backend="cpu")  # compile / load
    ours = 0.0
    for r in range(repeat):
        t0 = time.perf_counter()
        sample_angles(dim, samples, model, seed=seed, start=r * samples, backend="cpu")
        ours = max(ours, dim * samples / (time.perf_counter() - t0))
    law = stats.levy_stable(alpha, 0.0)
    gen = np.random.default_rng(seed)
    theirs = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        law.rvs(size=scipy_size, random_state=gen)
        theirs = max(theirs, scipy_size / (time.perf_counter() - t0))
    return {
        "alpha": alpha,
        "dim": dim,
        "samples": samples,
        "threads": numba.get_num_threads(),
        "lni_geometry": ours,
        "scipy": theirs,
        "ratio": ours / theirs,
    }


def bench_stable(alphas=(1.5, 1.0, 0.5), dim=2**20, samples=32, repeat=3):
    """Stable draws per second of ``sample_angles`` against ``scipy.stats.levy_stable.rvs``.

    One row per alpha, from :func:`stable_draws_per_second`
    (ours: drawn by Chambers-Mallows-Stuck and reduced to the three sums on all
    numba threads; scipy: draws only, one thread, same run).
    """
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
