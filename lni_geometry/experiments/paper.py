"""The seed paper's own setting as a preset of the figures: ResNets on CIFAR from a local folder.

``lni-geometry figureN --scale paper --data-dir DIR`` (``figure_spec(N,
scale="paper", data_dir=DIR)``) runs Figure N's grid on the paper's task and
network instead of the digits analogue.  What the paper states (Elistratov,
Podivilov, Iuzhakov, Vetrov, "Lion's sign noise can make training more
stable"):

- Figures 2, 3 and 5: ResNet-9 on CIFAR-100, 200 epochs;
- Figure 4: ResNet-18 on CIFAR-10 with weight decay ``1/lambda = 5``, i.e.
  ``weight_decay=0.2`` in Lion's decoupled rule ``w <- w - lr (sign(c) +
  lambda w)``, whose equilibrium is ``|w| = 1/lambda``.

What it does not state, and is chosen here (:data:`PAPER_PRESETS`):

- batch size 512 for ResNet-9 (the fast CIFAR training literature's) and 128
  for ResNet-18 (the common CIFAR ResNet-18 recipe);
- a cosine learning-rate schedule to 0 over the run, no warmup;
- the standard augmentation (random crop of the image padded by 4, horizontal
  flip), inputs normalised by the training set's channel means and standard
  deviations;
- Lion's learning rates 1e-5 to 3e-3 in half decades (Figures 2, 3, 7; 3e-5 to
  3e-3 for the Enim grids of Figures 5 and 6), Lion's betas (0.9, 0.99);
- Figure 4: learning rate 3e-4 and 200 epochs, weight decays 0 (the control)
  and 0.2;
- Figure 6: ResNet-9 on CIFAR-100 as Figures 2, 3 and 5, Enim's angles 0, 40,
  80 degrees, biases shown at learning rates 3e-4 and 1e-3; Figure 5's angles
  0 to 80 degrees by 20;
- one seed per point (three with ``full=True``);
- an evaluation every epoch (test set, and a fixed subset of 10,000 training
  images); on CUDA the forward pass in bfloat16 autocast and the ResNets in
  channels-last format, float32 on the CPU.

The number of steps is ``epochs x (training images // batch size)`` (the
last incomplete batch of each epoch is dropped), from the copy in the data
folder, so a small generated copy makes a short run of the same grid.
"""

from __future__ import annotations

import os

from ..validation import check_int

__all__ = ["PAPER_LRS", "PAPER_PRESETS", "paper_spec", "time_epoch"]

#: Lion's learning rates of the paper preset (half decades, too small to unstable).
PAPER_LRS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)

#: The base configuration of ResNet-9 on CIFAR-100 (Figures 2, 3, 5, 6, 7).
RESNET9_CIFAR100 = {"task": "cifar100", "network": "resnet9", "width": 64, "batch_size": 512,
                    "augment": True, "schedule": "cosine"}
#: ... and of ResNet-18 on CIFAR-10 (Figure 4).
RESNET18_CIFAR10 = {"task": "cifar10", "network": "resnet18", "width": 64, "batch_size": 128,
                    "augment": True, "schedule": "cosine"}

#: Per figure: the base configuration, epochs, seeds (default and ``full``) and the
#: grid entries that replace the small grid's (see the module's docstring for which
#: of these the paper states).  Figure 7 (not in the paper) runs on Figure 2's grid.
PAPER_PRESETS = {
    2: {"base": RESNET9_CIFAR100, "epochs": 200, "seeds": 1, "full_seeds": 3, "lrs": PAPER_LRS},
    3: {"base": RESNET9_CIFAR100, "epochs": 200, "seeds": 1, "full_seeds": 3, "lrs": PAPER_LRS},
    4: {"base": RESNET18_CIFAR10, "epochs": 200, "seeds": 1, "full_seeds": 3, "lr": 3e-4,
        "weight_decays": (0.0, 0.2)},
    5: {"base": RESNET9_CIFAR100, "epochs": 200, "seeds": 1, "full_seeds": 3, "lrs": PAPER_LRS[1:],
        "angles_deg": (0.0, 20.0, 40.0, 60.0, 80.0)},
    6: {"base": RESNET9_CIFAR100, "epochs": 200, "seeds": 1, "full_seeds": 3, "lrs": PAPER_LRS[1:],
        "angles_deg": (0.0, 40.0, 80.0), "hist_lrs": (3e-4, 1e-3)},
    7: {"base": RESNET9_CIFAR100, "epochs": 200, "seeds": 1, "full_seeds": 3, "lrs": PAPER_LRS},
}

#: The grid entries a preset may set.
_GRID_KEYS = ("lrs", "angles_deg", "hist_lrs", "lr", "weight_decays")


def paper_spec(number, *, full=False, seed=0, device="cpu", data_dir=None, epochs=None, max_steps=None,
               **overrides):
    """The grid of Figure ``number`` in the paper's setting (a JSON-able dict).

    The small grid's structure (:func:`.figures.figure_spec`) with the base
    configuration and grid of :data:`PAPER_PRESETS`; called by
    ``figure_spec(number, scale="paper", ...)``.

    Parameters
    ----------
    number : int
        A key of :data:`PAPER_PRESETS`.
    full : bool
        Three seeds instead of one.
    seed : int
        First seed.
    device : {"cpu", "cuda"}
        ``"cuda"`` turns on bfloat16 autocast.
    data_dir : str, optional
        The folder holding the unpacked CIFAR archive (default: the
        environment variable ``LNI_GEOMETRY_DATA``).
    epochs : int, optional
        Epochs of each run (default the preset's: 200).
    max_steps : int, optional
        At most this many steps per run (a short trial of the whole grid).
    **overrides
        As for :func:`.figures.figure_spec` (``lrs``, ``seeds``,
        ``batch_size``, ``width``, ``network``, ...); a ``batch_size`` changes
        the steps per epoch.

    Returns
    -------
    dict
        The spec, with ``scale="paper"``, ``epochs``, ``train_size`` (images of
        the copy read) and ``data`` (16 hex digits of its identity).

    Raises
    ------
    ValueError
        An unknown figure or setting, a batch larger than the training set.
    FileNotFoundError, lni_geometry.experiments.cifar.CifarError
        A missing, incomplete or corrupt data folder.
    """
    from .cifar import data_identity, resolve_data_dir
    from .figures import _override, figure_spec
    from .tasks import load_task

    if number not in PAPER_PRESETS:
        raise ValueError(f"figure {number!r} has no paper preset; presets exist for figures {sorted(PAPER_PRESETS)}")
    preset = PAPER_PRESETS[number]
    spec = figure_spec(number, full=full, seed=seed, device=device)  # the small grid: the figure's structure
    epochs = preset["epochs"] if epochs is None else check_int("epochs", epochs, 1)
    data_dir = resolve_data_dir(data_dir)
    k = preset["full_seeds" if full else "seeds"]
    spec.update(scale="paper", epochs=epochs, seeds=[int(seed) + i for i in range(k)],
                base=dict(preset["base"], data_dir=data_dir, device=device, bf16=device == "cuda"))
    for key in _GRID_KEYS:
        if key in preset:
            spec[key] = list(preset[key]) if isinstance(preset[key], tuple) else preset[key]
    _override(number, spec, {k: v for k, v in overrides.items() if k not in ("steps", "eval_every")})
    base = spec["base"]
    ntrain = len(load_task(base["task"], data_dir=data_dir).x_train)
    if base["batch_size"] > ntrain:
        raise ValueError(f"batch_size {base['batch_size']} exceeds the {ntrain} training images of {base['task']} "
                         f"in {data_dir}")
    per_epoch = ntrain // base["batch_size"] if base["batch_size"] else 1
    base["steps"], base["eval_every"] = epochs * per_epoch, per_epoch
    if max_steps is not None:
        base["steps"] = min(base["steps"], check_int("max_steps", max_steps, 1))
    _override(number, spec, {k: v for k, v in overrides.items() if k in ("steps", "eval_every")})
    spec.update(train_size=ntrain, data=data_identity(base["task"], data_dir)["sha256"][:16])
    return spec


def time_epoch(network="resnet9", *, task="cifar100", batch_size=512, batches=20, warmup=2, device="cpu",
               threads=None, optimizer="lion", train_size=50_000, width=None):
    """Time one epoch of the paper's training step on CIFAR-shaped synthetic data.

    Writes a synthetic copy (``train_size`` random 3x32x32 images and 1,000
    test images, binary format) to a temporary folder and times the engine's
    real step (augmentation, forward, backward, the optimizer with its
    telemetry, the per-step records): two runs of the same seed, of
    ``warmup`` and ``warmup + batches`` steps, whose difference is the time
    of ``batches`` steps after the warmup; the epoch is extrapolated from
    them (``train_size // batch_size`` steps).

    Parameters
    ----------
    network : str
    task : {"cifar10", "cifar100"}
    batch_size : int
    batches : int
        Steps timed.
    warmup : int
        Steps left out of the timing (allocations, cuDNN's choice of kernels).
    device : {"cpu", "cuda"}
        ``"cuda"``: bfloat16 autocast and channels-last, as the preset.
    threads : int, optional
        torch threads (default: all cores).
    optimizer : {"lion", "enim"}
        Enim at Lion's angle for ``"enim"``.
    train_size : int
    width : int, optional
        The network's width (default its own: the paper's).

    Returns
    -------
    dict
        ``step_s`` (mean seconds per step), ``epoch_s`` (``step_s`` times the
        steps of an epoch), ``eval_s`` (one evaluation: 10,000 training and
        1,000 test images), ``steps_per_epoch`` and the settings.
    """
    import tempfile

    from .cifar import synthetic_cifar, write_cifar
    from .config import RunConfig
    from .engine import train

    batches, warmup = check_int("batches", batches, 1), check_int("warmup", warmup, 1)
    threads = (os.cpu_count() or 1) if threads is None else check_int("threads", threads, 1)
    classes = 100 if task == "cifar100" else 10
    with tempfile.TemporaryDirectory() as tmp:
        write_cifar(tmp, task, *synthetic_cifar(train_size, 1000, classes, seed=0), formats=("binary",))
        times = []
        for steps in (warmup, warmup + batches):
            config = RunConfig(optimizer=optimizer, angle="lion" if optimizer == "enim" else None, lr=1e-4,
                               task=task, data_dir=tmp, network=network, width=width, batch_size=batch_size,
                               steps=steps,
                               eval_every=steps, augment=True, schedule="cosine", bf16=device == "cuda",
                               device=device)
            meta = train(config, threads=threads).meta
            times.append((meta["step_time_s"], meta["eval_time_s"]))
    step_s = (times[1][0] - times[0][0]) / batches
    per_epoch = train_size // batch_size
    return {"network": network, "width": config.width, "task": task, "batch_size": batch_size, "device": device,
            "threads": threads,
            "batches": batches, "step_s": step_s, "steps_per_epoch": per_epoch, "epoch_s": step_s * per_epoch,
            "eval_s": times[1][1]}
