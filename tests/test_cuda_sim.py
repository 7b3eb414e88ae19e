"""The CUDA backend: simulator cases in a subprocess, and the no-GPU paths here.

``NUMBA_ENABLE_CUDASIM`` is read when numba is first imported, so the simulator
cases (``tests/cuda_sim_cases.py``) run in a fresh interpreter with the variable
set; this process, like the rest of the suite, runs without it.
"""

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import config

from lni_geometry import cuda_kernels
from lni_geometry.backends import cuda as cuda_backend
from lni_geometry.backends import cuda_available
from lni_geometry.sampling import resolve_backend, sample_angles

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cuda_sim_cases.py"
#: Cases that must pass (not skip) in the subprocess; the heavy-tailed models
#: add one each when lni_geometry.models has them.
MIN_PASSED = 28

no_real_gpu = pytest.mark.skipif(
    cuda_available() or config.ENABLE_CUDASIM, reason="a usable CUDA device (or the simulator) is present"
)


def test_simulator_cases():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-o", "addopts=", "-p", "no:cacheprovider", str(CASES)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    m = re.search(r"(\d+) passed", out)
    passed = int(m.group(1)) if m else 0
    assert passed >= MIN_PASSED, f"only {passed} simulator cases passed:\n{out[-4000:]}"
    assert "failed" not in out.splitlines()[-1], out[-4000:]
    assert "skipped" not in out.splitlines()[-1], out[-4000:]  # every case must run


# --- without a GPU ------------------------------------------------------------------


@no_real_gpu
def test_backend_cuda_without_gpu_says_why_and_how():
    with pytest.raises(RuntimeError) as info:
        sample_angles(10, 2, backend="cuda")
    msg = str(info.value)
    assert "backend='cuda' is not usable" in msg
    assert 'pip install "lni-geometry[cuda]"' in msg
    assert "backend='cpu'" in msg


@no_real_gpu
def test_auto_is_cpu_without_gpu():
    assert resolve_backend("auto") == "cpu"
    assert sample_angles(10, 2, seed=1, backend="auto").backend == "cpu"


@no_real_gpu
def test_bench_without_gpu_says_why():
    from lni_geometry.bench.cuda import bench_cuda

    with pytest.raises(RuntimeError, match=r"cannot run: .*lni-geometry\[cuda\]"):
        bench_cuda(dim=16)


# --- the layout (pure Python) -------------------------------------------------------


@given(
    dim=st.integers(1, 10**12),
    cpb=st.sampled_from([1, 2, 4, 8, 16]),
    threads=st.sampled_from([None, 1, 2, 8, 64, 256]),
    iters=st.one_of(st.none(), st.integers(1, 20)),
)
def test_layout_covers_dim_exactly(dim, cpb, threads, iters):
    lay = cuda_backend.layout(dim, cpb, threads, iters)
    assert lay.group % cpb == 0 and lay.group <= cuda_backend.LOCAL_COORDS
    assert lay.threads & (lay.threads - 1) == 0 and lay.threads <= cuda_backend.MAX_THREADS
    assert lay.slice_coords == lay.threads * lay.iters * lay.group
    assert (lay.nslices - 1) * lay.slice_coords < dim <= lay.nslices * lay.slice_coords
    if threads is None and iters is None:
        assert lay.iters <= cuda_backend.MAX_ITERS


def test_layout_depends_on_dim_and_model_only():
    assert cuda_backend.layout(6_000_000, 4) == cuda_backend.layout(6_000_000, 4)
    assert cuda_backend.layout(10**9, 1).nslices == -(-(10**9) // (256 * 16 * 16))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(dim=0, coords_per_block=4), r"dim must be an integer in \[1, inf\), got 0"),
        (dict(dim=10, coords_per_block=32), r"coords_per_block in \[1, 16\], got 32"),
        (dict(dim=10, coords_per_block=4, threads=48), r"power of two in \[1, 256\], got 48"),
        (dict(dim=10, coords_per_block=4, threads=512), r"power of two in \[1, 256\], got 512"),
        (dict(dim=10, coords_per_block=4, iters=0), r"iters must be an integer in \[1, inf\), got 0"),
    ],
)
def test_layout_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cuda_backend.layout(**kwargs)


def test_fp64_op_count_of_a_small_ptx():
    from lni_geometry.bench.cuda import fp64_ops_per_normal

    ptx = "\n".join(
        [
            "\tfma.rn.f64 \t%fd1, %fd2, %fd3, %fd4;",
            "\tmul.f64 \t%fd1, %fd2, %fd3;",
            "\t@%p1 bra $L1;",
            "\tsqrt.rn.f64 \t%fd1, %fd2;",
            "\tcvt.rn.f64.u32 \t%fd1, %r1;",
            "\tcvt.rzi.s64.f64 \t%rd1, %fd1;",
            "\tselp.f64 \t%fd1, %fd2, %fd3, %p1;",
            "\tld.param.f64 \t%fd1, [x];",
        ]
    )
    # fma + mul + sqrt (8) + cvt to f64 = 11 instructions for 4 normals.
    assert fp64_ops_per_normal(ptx) == 11 / 4


# --- compiling for a real GPU (where NVVM is installed) ------------------------------


def _cuda_toolkit_missing():
    """Why the CUDA toolkit's compiler cannot be used here (libNVVM or libdevice
    not found), or None when both load.  Only their absence is reported; any other
    error propagates."""
    from numba.cuda.cudadrv import libs, nvvm

    try:
        nvvm.NVVM()  # loads libNVVM
    except nvvm.NvvmSupportError as exc:
        return f"libNVVM: {exc}"
    try:
        try:
            path = libs.get_libdevice()  # numba-cuda: a path, or None when not found
        except TypeError:  # older releases take the architecture
            path = libs.get_libdevice(None)
    except Exception as exc:  # some releases raise when the toolkit has no libdevice
        if type(exc).__name__ in ("NvvmSupportError", "CudaSupportError", "FileNotFoundError"):
            return f"libdevice: {exc}"
        raise
    return None if path else "libdevice: not found"


def test_kernels_compile_to_ptx_for_hopper(monkeypatch):
    """The kernels compile to PTX for compute capability 9.0 (needs NVVM, no GPU).

    numba-cuda compiles the device functions a kernel calls for the current
    device's compute capability; without a GPU the test fakes one of 9.0.  It skips
    only when numba-cuda or the CUDA toolkit (libNVVM, libdevice) is not installed,
    and says which; once the compiler loads, any compile error fails the test.
    """
    if config.ENABLE_CUDASIM:
        pytest.skip("the simulator does not compile")
    from numba import cuda, float64, int64, uint32, uint64

    if getattr(cuda, "implementation", "Built-in") != "NVIDIA":
        pytest.skip("numba-cuda (the cuda extra) is not installed; numba's built-in target is deprecated")
    missing = _cuda_toolkit_missing()
    if missing:
        pytest.skip(f"the CUDA toolkit is not installed here ({missing[:200]}): PTX compilation not checked")

    import numba.cuda.dispatcher as disp

    fake = types.SimpleNamespace(compute_capability=(9, 0))
    if hasattr(disp, "get_current_device") and not cuda_available():
        monkeypatch.setattr(disp, "get_current_device", lambda: fake)
    arr2 = float64[:, :]
    sigs = {
        "slice_sums_kernel": (int64, float64, float64, uint32, uint32, int64, int64, int64, int64, int64, int64, arr2),
        "add_slices_kernel": (arr2, int64, int64, arr2),
        "coords_kernel": (int64, float64, float64, uint32, uint32, int64, int64, int64, int64, int64, arr2),
        "words_kernel": (uint32, uint32, int64[:], uint64[:], int64, uint32[:, :]),
    }
    for name, sig in sigs.items():
        ptx, _ = cuda.compile_ptx(getattr(cuda_kernels, name).py_func, sig, cc=(9, 0))
        assert ".target sm_90" in ptx
        assert ".entry" in ptx


def test_device_functions_take_cuda_local_arrays_on_cpu():
    # Under the simulator cuda.local.array is a numpy array handed to the
    # njit fill_coords; this is the same call in this process.
    from lni_geometry import rng
    from lni_geometry.backends import cpu
    from lni_geometry.models import Gaussian, fill_coords

    key = rng.key_from_seed(3)
    buf = np.empty(cuda_backend.LOCAL_COORDS)
    fill_coords(0, 0.0, 0.0, np.uint32(key[0]), np.uint32(key[1]), 2, 16, 16, buf)
    np.testing.assert_array_equal(buf, cpu.sample_coords(key, Gaussian(), 32, 2, 1)[0, 16:])


def test_builtin_numba_cuda_target_is_refused_with_the_fix(monkeypatch):
    """numba's deprecated built-in target is refused with the fix (faked when the test
    extra's numba-cuda is installed, as in CI)."""
    assert not config.ENABLE_CUDASIM  # the simulator runs in its own subprocess
    monkeypatch.setattr(cuda_backend.cuda, "implementation", "Built-in", raising=False)
    with pytest.raises(RuntimeError, match=r'needs the numba-cuda package.*pip install "lni-geometry\[cuda\]"'):
        cuda_backend.check_target()
