"""Benchmarks of the analytic laws: pdf plus cdf at 1e5 angles."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["bench_laws", "format_laws"]


def bench_laws(dims=(4, 1000, 6_000_000, 10**9), methods=("auto", "saddlepoint", "normal"), points=10**5, repeat=5):
    """Time of ``pdf`` plus ``cdf`` of the bisector-angle laws at ``points`` angles.

    Per (dim, method): the construction time in this process (tables shared with earlier
    rows are not rebuilt: cold figures are in docs/accuracy.md)
    and the best of ``repeat`` evaluations of ``pdf(x)`` and ``cdf(x)``
    together, ``x`` spread over the law's central 99.99%: 10 to 25 ms at any dim
    from 4 to ``10**9`` on the machine of ``docs/benchmarks.md``.
    """
    from ..theory import BisectorAngle, FixedAxisAngle

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
