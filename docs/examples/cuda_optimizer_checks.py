"""The torch optimizers on a GPU: the checks to run when one is available.

    python docs/examples/cuda_optimizer_checks.py

1. Enim on CUDA takes the CPU's ``z``: the same seed, 10 steps on the CPU and on the
   GPU (float64, angle "lni" and a float angle): the LNI angles equal, the weights
   within 1e-9 (the GPU's Gaussian may differ in its last bits: NVVM contracts
   a * b + c into FMAs; the update itself is torch's operations on both).
2. Lion on CUDA equals lion-pytorch bit for bit (float32, bfloat16; its foreach path).
3. Step times (ms, median of 20, synchronised) of Lion, Lion with telemetry, Enim,
   lion-pytorch's Lion (and its Triton kernel) and the package's numba.cuda Lion kernel
   (lni_geometry.backends.cuda.lion_update_at: Lion's default on CUDA once it is
   measured faster than torch's foreach operations) on 10^7 float32 parameters in 8 tensors.

Prints one line per check and exits 1 if a check fails.
"""

import statistics
import sys
import time

import torch

from lni_geometry.torch import Enim, Lion

if not torch.cuda.is_available():
    sys.exit("cuda_optimizer_checks: torch sees no GPU (torch.cuda.is_available() is False)")
ok = True


def run(device, angle, dtype=torch.float64, steps=10):
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype).to(device))
              for s in [(300, 200), (200,), (1000,)]]
    opt = Enim(params, lr=0.01, angle=angle, seed=4, telemetry=True)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=dtype).to(device)
        opt.step()
    return [p.detach().cpu() for p in params], [h["angle"] for h in opt.history]


for angle in ("lni", 0.7):
    (wc, ac), (wg, ag) = run("cpu", angle), run("cuda", angle)
    diff = max(float((a - b).abs().max()) for a, b in zip(wc, wg))
    good = diff <= 1e-9 and all(abs(x - y) <= 1e-12 for x, y in zip(ac, ag))
    ok &= good
    print(f"1. Enim angle={angle!r}: CPU vs GPU max |dw| = {diff:.3g}, angles equal: {ac == ag} -> "
          f"{'ok' if good else 'FAILED'}")

try:
    from lion_pytorch import Lion as LionPytorch
except ImportError:
    LionPytorch = None
    print("2. lion-pytorch is not installed: pip install lion-pytorch")
if LionPytorch is not None:
    for dtype in (torch.float32, torch.bfloat16):
        gen = torch.Generator().manual_seed(2)
        base = [torch.randn(s, generator=gen).to("cuda", dtype) for s in [(512, 256), (256,)]]
        ours = [torch.nn.Parameter(b.clone()) for b in base]
        theirs = [torch.nn.Parameter(b.clone()) for b in base]
        a = Lion(ours, lr=1e-3, weight_decay=0.1)
        b = LionPytorch(theirs, lr=1e-3, weight_decay=0.1)
        for _ in range(10):
            for p, q in zip(ours, theirs):
                p.grad = torch.randn(p.shape, generator=gen).to("cuda", dtype)
                q.grad = p.grad.clone()
            a.step()
            b.step()
        good = all(torch.equal(p, q) for p, q in zip(ours, theirs))
        ok &= good
        print(f"2. Lion {dtype} on CUDA equals lion-pytorch: {'ok' if good else 'FAILED'}")


def timed(opt, repeat=20):
    times = []
    for r in range(repeat + 2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.step()
        torch.cuda.synchronize()
        if r >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


gen = torch.Generator().manual_seed(3)
base = [torch.randn(10**7 // 8, generator=gen).cuda() for _ in range(8)]


def params():
    ps = [torch.nn.Parameter(b.clone()) for b in base]
    for p in ps:
        p.grad = torch.randn_like(p)
    return ps


rows = {"Lion": lambda: Lion(params(), lr=1e-4), "Lion, telemetry": lambda: Lion(params(), lr=1e-4, telemetry=True,
                                                                                  history=False),
        "Enim, angle=0.65": lambda: Enim(params(), lr=1e-4, angle=0.65, seed=0)}
if LionPytorch is not None:
    rows["lion-pytorch Lion"] = lambda: LionPytorch(params(), lr=1e-4)
    rows["lion-pytorch Lion, Triton"] = lambda: LionPytorch(params(), lr=1e-4, use_triton=True)


class KernelLion:
    """The package's numba.cuda Lion kernel, one launch per tensor (not yet Lion's default on CUDA)."""

    def __init__(self, ps):
        from numba import cuda

        from lni_geometry.backends.cuda import lion_update_at

        self._arrays = [(cuda.as_cuda_array(p.detach()), cuda.as_cuda_array(torch.zeros_like(p)),
                         cuda.as_cuda_array(p.grad)) for p in ps]
        self._update = lion_update_at
        self._stream = cuda.external_stream(torch.cuda.current_stream().cuda_stream)

    def step(self):
        for p, m, g in self._arrays:
            self._update(p, m, g, 0.9, 0.99, 1e-4, 0.0, stream=self._stream)


rows["package numba.cuda Lion kernel"] = lambda: KernelLion(params())
for name, make in rows.items():
    try:
        print(f"3. {name}: {timed(make()):.3f} ms per step on 10^7 parameters ({torch.cuda.get_device_name()})")
    except Exception as exc:  # e.g. Triton missing
        print(f"3. {name}: not timed ({type(exc).__name__}: {exc})")
sys.exit(0 if ok else 1)
