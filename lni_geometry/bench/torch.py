"""Benchmark of one optimizer step in PyTorch on real model shapes (``lni-geometry bench --torch``)."""

from __future__ import annotations

import time

import numpy as np

from ..runs import machine_description

__all__ = ["TORCH_BENCH_MODELS", "TORCH_BENCH_SHAPES", "bench_torch", "format_torch", "resnet18_shapes",
           "transformer_shapes"]


def resnet18_shapes(classes=10):
    """Parameter shapes of the CIFAR ResNet-18 (He et al. 2016; 3x3 stem, no max-pool): 62 tensors, 11,173,962 entries.

    The stem (conv, BatchNorm weight and bias), four stages of two basic
    blocks (two 3x3 convs, each with its BatchNorm; a 1x1 conv and BatchNorm
    where the width or stride changes), the linear head.
    """
    shapes = [(64, 3, 3, 3), (64,), (64,)]
    width = 64
    for out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            first = block == 0
            shapes += [(out, width if first else out, 3, 3), (out,), (out,), (out, out, 3, 3), (out,), (out,)]
            if first and (stride != 1 or width != out):
                shapes += [(out, width, 1, 1), (out,), (out,)]
        width = out
    return tuple(shapes + [(classes, 512), (classes,)])


def transformer_shapes(vocab, width, layers, context):
    """Parameter shapes of a GPT-style decoder (token and position embeddings; per layer two
    LayerNorms, the attention's fused query-key-value and output projections, the MLP's two
    linears, all with biases; a final LayerNorm and an untied head): ``12 layers + 5`` tensors."""
    shapes = [(vocab, width), (context, width)]
    for _ in range(layers):
        shapes += [(width,), (width,), (3 * width, width), (3 * width,), (width, width), (width,),
                   (width,), (width,), (4 * width, width), (4 * width,), (width, 4 * width), (width,)]
    return tuple(shapes + [(width,), (width,), (vocab, width)])


#: Parameter shapes of the benchmark's first model: 10,001,408 parameters in 8 tensors, the
#: shapes of two wide linear layers with biases, a narrower one and a normalisation layer.
TORCH_BENCH_SHAPES = ((2048, 2048), (2048,), (2048, 2048), (2048,), (1024, 1568), (1024,), (1024,), (1024,))

#: The models of ``lni-geometry bench --torch``: name -> parameter shapes.
TORCH_BENCH_MODELS = {
    "10^7 in 8 tensors": TORCH_BENCH_SHAPES,
    "ResNet-18 (CIFAR)": resnet18_shapes(),
    "small GPT (12 layers, width 256)": transformer_shapes(8192, 256, 12, 256),
    "transformer (2 layers, width 64)": transformer_shapes(1000, 64, 2, 128),
}


def _rows(params):
    """The optimizers of one model, by row name: constructors of fresh optimizers over ``params()``."""
    from ..torch import Enim, Lion

    makers = {
        "ours Lion": lambda: Lion(params(), lr=1e-4),
        "ours Lion, telemetry": lambda: Lion(params(), lr=1e-4, telemetry=True, history=False),
        "ours Enim, angle=0.65": lambda: Enim(params(), lr=1e-4, angle=0.65, seed=0),
        "ours Enim, 'lion', telemetry": lambda: Enim(params(), lr=1e-4, angle="lion", seed=0, telemetry=True,
                                                     history=False),
    }
    try:
        import lion_pytorch
        from lion_pytorch.foreach import Lion as ForeachLion

        makers["lion-pytorch Lion"] = lambda: lion_pytorch.Lion(params(), lr=1e-4)
        makers["lion-pytorch Lion, foreach"] = lambda: ForeachLion(params(), lr=1e-4)
    except ImportError:
        pass
    return makers


class _FillNormals:
    """The package's kernel filling ``n`` normals (the floor of Enim's extra work), timed as a row:
    the launch alone (:class:`~lni_geometry.optim_kernels.NormalsFill`, prepared once, as Enim's
    steps are), a new key each step."""

    def __init__(self, n):
        from .. import optim_kernels

        self._z = np.empty(n, dtype=np.float32)
        self._fill = optim_kernels.NormalsFill(optim_kernels.arrays_of(z=self._z))
        self._key = 0

    def step(self):
        self._key += 1
        self._fill((self._key, 7))


def bench_torch(repeat=15, seed=0, models=None):
    """Milliseconds per optimizer step on real model shapes (float32, CPU), ours against lion-pytorch.

    For each model every row steps its own copy of the same parameters with
    the same fixed gradients (Gaussian, with 10% exact zeros as behind dead
    units); rows are timed in turn, one step each, ``repeat`` times (so a
    drifting machine affects every row alike), after two warm-up steps; the
    median is reported.  Each timed step follows one torch operation on
    ``4 * 10^6`` entries, as a backward pass precedes the step in training:
    every row meets torch's worker threads (still spinning after their last
    parallel loop) as it would in a training loop.

    Rows: ours ``Lion`` (the default: the fused kernels on the CPU), with
    telemetry; ``Enim`` with a float angle, and with ``angle="lion"`` and
    telemetry; lucidrains/lion-pytorch's ``Lion`` and its ``foreach``
    variant (when installed); and the package's kernel filling the model's
    ``n`` normals alone (its launch prepared once: :class:`lni_geometry.optim_kernels.NormalsFill`),
    for Enim's bound: ``Enim <= Lion + 1.25 fill``.

    Parameters
    ----------
    repeat : int
        Timed steps per row (the median is reported).
    seed : int
        Seed of the parameters and gradients.
    models : dict, optional
        name -> parameter shapes (default :data:`TORCH_BENCH_MODELS`).

    Returns
    -------
    dict
        ``models``: per model ``{"rows": {name: median seconds}, "params", "tensors"}``;
        ``threads``, ``torch``, ``machine``, ``repeat``.
    """
    import torch

    models = TORCH_BENCH_MODELS if models is None else models
    out = {}
    backward_like = torch.randn(4_000_000, generator=torch.Generator().manual_seed(seed))
    for name, shapes in models.items():
        gen = torch.Generator().manual_seed(seed)
        base = [torch.randn(s, generator=gen) for s in shapes]
        grads = [torch.randn(s, generator=gen) * (torch.rand(s, generator=gen) > 0.1) for s in shapes]

        def params():
            ps = [torch.nn.Parameter(b.clone()) for b in base]
            for p, g in zip(ps, grads):
                p.grad = g
            return ps

        optimizers = {row: make() for row, make in _rows(params).items()}
        n = sum(int(np.prod(s)) for s in shapes)
        optimizers["fill n normals (kernel alone)"] = _FillNormals(n)
        times = {row: [] for row in optimizers}
        for r in range(repeat + 2):
            for row, opt in optimizers.items():
                torch.mul(backward_like, 1.0, out=backward_like)
                t0 = time.perf_counter()
                opt.step()
                if r >= 2:
                    times[row].append(time.perf_counter() - t0)
        out[name] = {"rows": {row: float(np.median(t)) for row, t in times.items()}, "params": n,
                     "tensors": len(shapes)}
    return {"models": out, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": machine_description(), "repeat": repeat}


def format_torch(res):
    """The optimizer-step benchmark as markdown: per model the rows, then the ratios to lion-pytorch's faster
    Lion and Enim against its bound."""
    lines = [f"machine: {res['machine']}, torch {res['torch']} ({res['threads']} threads); "
             f"median of {res['repeat']} steps per row, each after a torch operation (as after a backward pass)"]
    for name, model in res["models"].items():
        rows = model["rows"]
        lion = rows["ours Lion"]
        lines += ["", f"**{name}**: {model['params']:,} float32 parameters in {model['tensors']} tensors", "",
                  "| row | ms per step | vs our Lion |", "| --- | ---: | ---: |"]
        lines += [f"| {row} | {t * 1e3:.3f} | {t / lion:.2f} |" for row, t in rows.items()]
        notes = []
        peers = [rows[k] for k in ("lion-pytorch Lion", "lion-pytorch Lion, foreach") if k in rows]
        if peers:
            fastest = min(peers)
            notes.append(f"our Lion / lion-pytorch's faster: {lion / fastest:.2f}x; "
                         f"with telemetry: {rows['ours Lion, telemetry'] / fastest:.2f}x")
        bound = lion + 1.25 * rows["fill n normals (kernel alone)"]
        notes.append(f"Enim (float angle) {rows['ours Enim, angle=0.65'] * 1e3:.3f} ms against its bound "
                     f"Lion + 1.25 fill = {bound * 1e3:.3f} ms ({rows['ours Enim, angle=0.65'] / bound:.2f}x)")
        lines += [""] + notes
    return "\n".join(lines)
