"""The benchmarks behind ``lni-geometry bench``: measured, never asserted.

- :mod:`.cpu`: the CPU backend against numpy and numba + Generator, where the
  time goes, and the memory of a large-dimension run;
- :mod:`.models`: stable draws per second against scipy;
- :mod:`.laws`: pdf plus cdf of the analytic laws;
- :mod:`.torch`: one Lion / Enim step in PyTorch against lion-pytorch;
- :mod:`.cuda`: the CUDA backend on a real GPU (its correctness checks live in
  :mod:`lni_geometry.backends.cuda_parity`).

The machine description that goes with every figure is
:func:`lni_geometry.runs.machine_description`.
"""

from .cpu import bench_cpu, bench_memory, cycles_in_cache, format_cpu, format_memory, numba_generator_peer, numpy_peer
from .laws import bench_laws, format_laws
from .models import bench_stable, format_stable, stable_draws_per_second
from .torch import TORCH_BENCH_MODELS, TORCH_BENCH_SHAPES, bench_torch, format_torch

__all__ = [
    "TORCH_BENCH_MODELS",
    "TORCH_BENCH_SHAPES",
    "bench_cpu",
    "bench_laws",
    "bench_memory",
    "bench_stable",
    "bench_torch",
    "cycles_in_cache",
    "format_cpu",
    "format_laws",
    "format_memory",
    "format_stable",
    "format_torch",
    "numba_generator_peer",
    "numpy_peer",
    "stable_draws_per_second",
]
