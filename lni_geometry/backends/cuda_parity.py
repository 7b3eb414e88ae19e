"""Correctness checks of the CUDA backend against the CPU backend, at any size.

- :func:`validate_parity`: CUDA sums against the CPU backend's (and the raw
  Philox words), within the tolerance of the stream promise
  (:mod:`lni_geometry.rng`, layer 5);
- :func:`validate_fixed_axis_law`: the fixed-axis angle of CUDA samples
  against its exact law by a Kolmogorov-Smirnov test.

Both run on a GPU at full size (``docs/cuda.md``) and under numba's simulator
at small sizes (``tests/cuda_sim_cases.py``).
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["PARITY_RTOL", "validate_fixed_axis_law", "validate_parity"]

#: Figure 1 of the seed paper: S^6000000 at 1e5 samples (the full-size checks' default).
FIGURE1_DIM = 6_000_000
FIGURE1_SAMPLES = 100_000
#: Relative tolerance of the CPU/GPU parity check (see lni_geometry.backends.cuda).
PARITY_RTOL = 1e-9


def _cuda_module():
    from . import get_backend

    try:
        return get_backend("cuda")
    except RuntimeError as exc:
        raise RuntimeError(f"the CUDA check cannot run: {exc}") from None


def validate_parity(dim=FIGURE1_DIM, samples=16, start=0, seed=0, model="gaussian", rtol=PARITY_RTOL):
    """Compare CUDA sums with the CPU backend's for the same seed and samples.

    The deviation of a column is ``max |cuda - cpu| / scale`` with ``scale = l1``
    for ``l1`` and ``total`` (``|total| <= l1``, and ``total`` itself can be
    near 0) and ``scale = l2sq`` for ``l2sq``.

    Returns
    -------
    dict
        ``deviation`` (per column), ``rtol``, ``ok`` (every deviation
        ``<= rtol``), ``words_equal`` (the raw Philox words of a few blocks of
        each sample equal the CPU's), the sizes and the device.
    """
    cb = _cuda_module()
    from .. import rng
    from ..models import model_from_spec
    from . import cpu

    mod = model_from_spec(model)
    key = rng.key_from_seed(seed)
    g = cb.sample_sums(key, mod, dim, start, samples)
    c = cpu.sample_sums(key, mod, dim, start, samples)
    scale = np.stack([c[:, 0], c[:, 1], c[:, 0]], axis=1)
    dev = np.max(np.abs(g - c) / scale, axis=0)
    s_idx = np.repeat(np.arange(start, start + samples, dtype=np.int64), 3)
    b_idx = np.tile(np.array([0, 1, max(0, (dim - 1) // mod.coords_per_block)], dtype=np.uint64), samples)
    words = cb.philox_words(key, s_idx, b_idx)
    counters = np.stack(
        [b_idx & 0xFFFFFFFF, b_idx >> np.uint64(32),
         s_idx.astype(np.uint64) & 0xFFFFFFFF, s_idx.astype(np.uint64) >> np.uint64(32)], axis=1
    ).astype(np.uint32)
    return {
        "dim": int(dim), "samples": int(samples), "start": int(start), "model": mod.spec,
        "deviation": {"l1": float(dev[0]), "l2sq": float(dev[1]), "total": float(dev[2])},
        "rtol": rtol,
        "ok": bool(np.all(dev <= rtol)),
        "words_equal": bool(np.array_equal(words, rng.philox4x32_10(counters, key))),
    }


def validate_fixed_axis_law(dim=FIGURE1_DIM, samples=FIGURE1_SAMPLES, seed=0, alpha=1e-3, threads=None):
    """KS test of the fixed-axis angle of Gaussian CUDA samples against its exact law.

    For ``g`` uniform on the sphere ``S^(n-1)`` the angle ``a`` to a fixed unit
    vector has density ``sin(a)**(n-2) / B((n-1)/2, 1/2)`` on ``[0, pi]``
    (Cai, Fan and Jiang, "Distributions of angles in random packing on
    spheres", JMLR 14, 2013), i.e. ``(1 + cos a) / 2 ~ Beta((n-1)/2, (n-1)/2)``.
    ``cos a = total / sqrt(n * l2sq)`` is taken from the sums directly (no
    ``arccos`` round trip).  Under the law the p-value is uniform, so a correct
    sampler fails with probability ``alpha``.  ``threads`` overrides the CUDA
    block size (:func:`lni_geometry.backends.cuda.layout`; small under the
    simulator).

    Returns
    -------
    dict
        ``statistic``, ``pvalue``, ``alpha``, ``ok`` (``pvalue >= alpha``),
        ``seconds`` (of the sampling), the sizes.
    """
    from scipy import stats

    cb = _cuda_module()
    from .. import rng
    from ..models import Gaussian

    t0 = time.perf_counter()
    sums = cb.sample_sums(rng.key_from_seed(seed), Gaussian(), dim, 0, samples, threads=threads)
    seconds = time.perf_counter() - t0
    cos_a = sums[:, 2] / np.sqrt(dim * sums[:, 1])
    a = (dim - 1) / 2.0
    res = stats.kstest((1.0 + cos_a) / 2.0, stats.beta(a, a).cdf)
    return {
        "dim": int(dim), "samples": int(samples), "seed": seed,
        "statistic": float(res.statistic), "pvalue": float(res.pvalue),
        "alpha": alpha, "ok": bool(res.pvalue >= alpha), "seconds": seconds,
    }
