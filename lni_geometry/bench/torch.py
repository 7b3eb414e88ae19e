"""Benchmark of one optimizer step in PyTorch (``lni-geometry bench --torch``)."""

from __future__ import annotations

import time

import numpy as np

from ..runs import machine_description

__all__ = ["TORCH_BENCH_SHAPES", "bench_torch", "format_torch"]


#: Parameter shapes of the benchmark model: 10,001,408 parameters in 8 tensors, the
#: shapes of two wide linear layers with biases, a narrower one and a normalisation layer.
TORCH_BENCH_SHAPES = ((2048, 2048), (2048,), (2048, 2048), (2048,), (1024, 1568), (1024,), (1024,), (1024,))


def bench_torch(repeat=15, seed=0, shapes=TORCH_BENCH_SHAPES):
    """Seconds per optimizer step on a model of 10^7 parameters (float32, CPU).

    Every row steps its own copy of the same parameters with the same fixed
    gradients (Gaussian, with 10% exact zeros as behind dead units); rows are
    timed in turn, one step each, ``repeat`` times (so a drifting machine
    affects every row alike), after two warm-up steps; the median is reported.
    Each timed step follows one torch operation on ``4 * 10^6`` entries, as a
    backward pass precedes the step in training: every row meets torch's
    worker threads (still spinning after their last parallel loop) as it
    would in a training loop, whatever row ran before it.

    Rows: ours ``Lion`` (the default: the fused kernel on the CPU), with
    telemetry, and stepping with torch's ``_foreach`` operations instead;
    lucidrains/lion-pytorch's ``Lion`` and its ``foreach`` variant (when
    installed; the faster of the two is the peer of the target); ``Enim``
    with a float angle, with ``"lni"`` and with ``"lion"``.

    Returns
    -------
    dict
        ``rows``: ``{name: median seconds}``, ``params``, ``threads``, ``torch``,
        ``machine``, and the ratios the issue's targets are about.
    """
    import torch

    from ..torch import Enim, Lion

    gen = torch.Generator().manual_seed(seed)
    base = [torch.randn(s, generator=gen) for s in shapes]
    grads = [torch.randn(s, generator=gen) * (torch.rand(s, generator=gen) > 0.1) for s in shapes]

    def params():
        ps = [torch.nn.Parameter(b.clone()) for b in base]
        for p, g in zip(ps, grads):
            p.grad = g
        return ps

    makers = {
        "lni_geometry Lion": lambda: Lion(params(), lr=1e-4),
        "lni_geometry Lion, telemetry": lambda: Lion(params(), lr=1e-4, telemetry=True),
        "lni_geometry Lion, torch foreach": lambda: Lion(params(), lr=1e-4, foreach=True),
    }
    try:
        import lion_pytorch
        from lion_pytorch.foreach import Lion as ForeachLion

        makers["lion-pytorch Lion"] = lambda: lion_pytorch.Lion(params(), lr=1e-4)
        makers["lion-pytorch Lion, foreach"] = lambda: ForeachLion(params(), lr=1e-4)
    except ImportError:
        pass
    makers["lni_geometry Enim, angle=0.65"] = lambda: Enim(params(), lr=1e-4, angle=0.65, seed=0)
    makers["lni_geometry Enim, angle='lni'"] = lambda: Enim(params(), lr=1e-4, angle="lni", seed=0)
    makers["lni_geometry Enim, angle='lion'"] = lambda: Enim(params(), lr=1e-4, angle="lion", seed=0)

    optimizers = {name: make() for name, make in makers.items()}
    times = {name: [] for name in optimizers}
    backward_like = torch.randn(4_000_000, generator=gen)
    for r in range(repeat + 2):
        for name, opt in optimizers.items():
            torch.mul(backward_like, 1.0, out=backward_like)
            t0 = time.perf_counter()
            opt.step()
            if r >= 2:
                times[name].append(time.perf_counter() - t0)
            if hasattr(opt, "history"):  # ours keep telemetry; lion-pytorch's have none
                opt.history.clear()
    rows = {name: float(np.median(t)) for name, t in times.items()}
    lion = rows["lni_geometry Lion"]
    res = {
        "rows": rows,
        "params": sum(int(np.prod(s)) for s in shapes),
        "tensors": len(shapes),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": machine_description(),
        "repeat": repeat,
        "telemetry_overhead": rows["lni_geometry Lion, telemetry"] / lion,
        "enim_over_lion": rows["lni_geometry Enim, angle=0.65"] / lion,
        "enim_lni_over_lion": rows["lni_geometry Enim, angle='lni'"] / lion,
    }
    peers = [rows[k] for k in ("lion-pytorch Lion", "lion-pytorch Lion, foreach") if k in rows]
    if peers:
        res["ours_over_lion_pytorch"] = lion / min(peers)
    return res


def format_torch(res):
    """The optimizer-step benchmark as a markdown table."""
    lion = res["rows"]["lni_geometry Lion"]
    lines = [
        f"machine: {res['machine']}, torch {res['torch']} ({res['threads']} threads)",
        f"one step on {res['params']:,} float32 parameters ({res['tensors']} tensors), median of {res['repeat']}, "
        "each step after a torch operation (as after a backward pass)",
        "",
        "| optimizer | ms per step | vs our Lion |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {t * 1e3:.1f} | {t / lion:.2f} |" for name, t in res["rows"].items()]
    lines += ["", f"telemetry on / off: {res['telemetry_overhead']:.2f}x (target <= 1.5x); "
              f"Enim (float angle) / Lion: {res['enim_over_lion']:.2f}x (target <= 2x); "
              f"Enim ('lni') / Lion: {res['enim_lni_over_lion']:.2f}x"]
    if "ours_over_lion_pytorch" in res:
        lines[-1] += (f"; our Lion / lion-pytorch's faster Lion: {res['ours_over_lion_pytorch']:.2f}x "
                      "(target <= 1)")
    return "\n".join(lines)
