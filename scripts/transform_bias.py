"""Exact biases of the Gaussian transform (stream version 2): every one of the 2**32 words.

    python scripts/transform_bias.py

Prints the exact means of r, r**2, |cos|, cos**2, |sin|, sin**2 of
``lni_geometry.rng.box_muller`` over all words (``kernels.box_muller_moments``),
the biases of ``E z**2`` and ``E|z|`` they give, and the Monte Carlo standard
errors at 1e12 draws.  About 20 s on 2 idle cores; the figures are quoted in
``lni_geometry/rng.py`` ("Gaussian coordinates") and checked approximately by
``tests/test_rng.py``.
"""

import math
import time

from lni_geometry import kernels, rng

t0 = time.perf_counter()
m = kernels.box_muller_moments()
ez2 = m["r2"] * (m["cos2"] + m["sin2"]) / 2
eabs = m["r"] * (m["abs_cos"] + m["abs_sin"]) / 2 / math.sqrt(2 / math.pi)
se_z2 = math.sqrt(2.0) / 1e6
se_abs = math.sqrt(1 - 2 / math.pi) / 1e6 / math.sqrt(2 / math.pi)
print(f"stream version {rng.STREAM_VERSION}, all 2**32 words, {time.perf_counter() - t0:.1f} s")
for k, v in m.items():
    print(f"  E {k:8s} = {v!r}")
print(f"bias of E z**2: {ez2 - 1:+.3e} (Monte Carlo s.e. at 1e12 draws {se_z2:.2e}: {se_z2 / abs(ez2 - 1):.0f}x)")
print(f"bias of E|z| (relative): {eabs - 1:+.3e} (s.e. {se_abs:.2e}: {se_abs / abs(eabs - 1):.0f}x)")
print(f"largest |z|: {rng.MAX_NORMAL!r}")
