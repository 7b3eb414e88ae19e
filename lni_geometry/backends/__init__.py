"""Backends: where the kernels run.  They launch, they do not compute.

- :mod:`.cpu`: numba threads on this machine (always available);
- :mod:`.cuda`: numba.cuda kernels on an NVIDIA GPU (the ``cuda`` extra);
- :mod:`.dask_backend`: sample ranges spread over dask.distributed workers.
"""

from __future__ import annotations

import importlib


def cuda_unavailable_reason():
    """Why the CUDA backend cannot run here, or None when it can."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba is a dependency
        return f"numba.cuda cannot be imported ({exc})"
    try:
        if not cuda.is_available():
            return (
                "no usable CUDA GPU was found (no NVIDIA driver, no device, or the "
                "numba-cuda bindings are missing)"
            )
    except Exception as exc:  # pragma: no cover - depends on the driver
        return f"CUDA initialisation failed: {exc}"
    return None


def cuda_available():
    """True when a real CUDA GPU is usable here (the simulator does not count)."""
    from numba import config

    return not config.ENABLE_CUDASIM and cuda_unavailable_reason() is None


def require_cuda():
    """The CUDA backend module, or a RuntimeError that says why not and how to fix it."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(
            f"backend='cuda' is not usable: {reason}. Install the GPU extra with "
            "`pip install \"lni-geometry[cuda]\"` (numba-cuda) on a machine with an "
            "NVIDIA GPU and driver, or use backend='cpu'."
        )
    try:
        return importlib.import_module(".cuda", __name__)
    except ImportError as exc:
        raise RuntimeError(f"backend='cuda' is not available in this build: {exc}") from exc
