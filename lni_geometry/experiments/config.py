"""A training run's configuration and its cache key.

:class:`RunConfig` names everything a run depends on (task, network, optimizer,
learning rate, betas, weight decay, Enim's angle, seed, steps, batch size,
device, data); :meth:`RunConfig.key` adds what else decides its numbers: the
package version, :data:`ENGINE_VERSION`, the random-stream version, the torch
version, the identity of the data files and a fingerprint of the sources that
compute the recorded numbers (:func:`code_fingerprint`).  The training itself is
:func:`lni_geometry.experiments.engine.train`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os

from ..validation import BETA1, BETA2, LR, WEIGHT_DECAY, Domain, check_int
from .networks import DEFAULT_WIDTHS, NETWORKS
from .tasks import CIFAR_TASKS, TASKS

__all__ = ["ENGINE_VERSION", "EVAL_FIELDS", "FINGERPRINT_SOURCES", "RunConfig", "STEP_FIELDS", "code_fingerprint"]

#: Version of the engine's numbers: bump it when a change alters any recorded
#: value for a given configuration (it is part of the cache key).
ENGINE_VERSION = "1"

OPTIMIZERS = ("lion", "enim")
DEVICES = ("cpu", "cuda")
#: Learning-rate schedules: ``"constant"``, or ``"cosine"``: ``lr_t = lr (1 + cos(pi t / steps)) / 2``
#: at step ``t`` (no warmup), set before each optimizer step.
SCHEDULES = ("constant", "cosine")
#: Training sets larger than this are evaluated on a fixed subset of this many images
#: (``train_loss``, ``train_acc``), so that a per-epoch evaluation stays cheap.
EVAL_TRAIN_MAX = 10_000

#: Scalars of the optimizer's telemetry recorded at every step.
TELEMETRY_FIELDS = (
    "angle", "sign_angle", "isotropic_mean", "budget_T", "budget_H",
    "angle_tails", "angle_heterogeneity", "zero_grad_fraction", "tracing", "revived",
)

#: Per-step arrays of a :class:`RunResult` (``result.steps[name]``, one value per step).
STEP_FIELDS = ("loss",) + TELEMETRY_FIELDS + (
    "norm_bias_zero_grad",   # normalisation-layer bias coordinates with gradient exactly 0
    "norm_bias_tracing",     # ... with gradient 0 and momentum nonzero (Lion keeps moving them)
    "norm_bias_revived",     # ... with a nonzero gradient while their momentum is near zero
    "w_abs_q95",             # 95% quantile of |w| over all parameters after the step (ceil(0.95 n)-th smallest)
    "cos_top5",              # cosine between the 5% largest |w| (before the step) and their update
    "grad_l1_ratio",         # ||g||_1 / (sqrt(n) ||g||_2) of the step's raw gradient g, all n parameters
)

#: Arrays of the evaluations (``result.evals[name]``), every ``eval_every`` steps and at the end.
EVAL_FIELDS = ("step", "train_loss", "train_acc", "test_loss", "test_acc", "tail_index_c")


#: Enim's angle in a run: radians up to the right angle, or a name.
RUN_ANGLE = Domain("angle", "real", 0.0, math.pi / 2, high_text="pi/2")
RUN_ANGLE_NAMES = ("lion", "lni")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on (validated at construction).

    Parameters
    ----------
    optimizer : {"lion", "enim"}
        :class:`lni_geometry.torch.Lion` or :class:`lni_geometry.torch.Enim`.
    lr : float
        Learning rate, ``> 0``.
    betas : (float, float)
        Lion's ``(beta1, beta2)``, each in ``[0, 1)``.
    weight_decay : float
        Decoupled weight decay ``lambda >= 0`` (Lion's rule: ``w *= 1 - lr lambda``).
    angle : float, "lion", "lni" or None
        Enim's turn angle (radians, in ``[0, pi/2]``), ``"lion"`` (Lion's own
        sign angle at each step) or ``"lni"``; must be None for Lion.
    seed : int
        Network initialisation, minibatch order and Enim's noise.
    steps : int
        Optimizer steps, ``>= 1``.
    batch_size : int
        Minibatch size; 0 for full-batch gradient descent.
    network : {"cnn_bn", "cnn_ln", "mlp_bn", "resnet9", "resnet9_gn", "resnet18"}
        See :func:`lni_geometry.experiments.networks.build_network`.
    width : int, optional
        Width of the network; default the network's own
        (:data:`~lni_geometry.experiments.networks.DEFAULT_WIDTHS`: 16, 64
        for the ResNets).
    task : {"digits", "cifar10", "cifar100"}
    eval_every : int
        Steps between evaluations (train and test loss and accuracy); the last
        step is always evaluated.
    device : {"cpu", "cuda"}
        Part of the cache key: a GPU's numbers differ in the last bits.  On
        CUDA the ResNets run in the channels-last memory format.
    data_dir : str, optional
        The CIFAR tasks' data folder (default: the environment variable
        ``LNI_GEOMETRY_DATA`` at construction), stored as an absolute path.
        Not part of the cache key: the identity of the data is
        (:func:`lni_geometry.experiments.cifar.data_identity`: the files'
        sizes and SHA-256), so a copy moved elsewhere still serves its runs
        and a different copy never does.  None for ``"digits"``.
    augment : bool
        The CIFAR tasks' standard augmentation: a random crop of the image
        padded by 4 pixels (zeros after normalisation) and a random
        horizontal flip, per image and epoch, drawn from the seed.
    schedule : {"constant", "cosine"}
        The learning rate's schedule (:data:`SCHEDULES`).
    bf16 : bool
        Forward pass and loss under ``torch.autocast`` in bfloat16 (the
        parameters, gradients and optimizer stay float32).

    Examples
    --------
    >>> RunConfig(lr=1e-3, steps=10).digest() == RunConfig(lr=1e-3, steps=10).digest()
    True
    >>> RunConfig(lr=1e-3).digest() == RunConfig(lr=2e-3).digest()
    False
    """

    optimizer: str = "lion"
    lr: float = 1e-3
    betas: tuple = (0.9, 0.99)
    weight_decay: float = 0.0
    angle: object = None
    seed: int = 0
    steps: int = 600
    batch_size: int = 64
    network: str = "cnn_bn"
    width: int = None
    task: str = "digits"
    eval_every: int = 50
    device: str = "cpu"
    data_dir: str = None
    augment: bool = False
    schedule: str = "constant"
    bf16: bool = False

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        set_("lr", LR.check(self.lr))
        try:
            b1, b2 = self.betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}") from None
        set_("betas", (BETA1.check(b1), BETA2.check(b2)))
        set_("weight_decay", WEIGHT_DECAY.check(self.weight_decay))
        if self.optimizer == "lion":
            if self.angle is not None:
                raise ValueError(f"angle is Enim's; Lion takes angle=None, got {self.angle!r}")
        else:
            if self.angle is None:
                raise ValueError("Enim needs an angle: radians in [0, pi/2], 'lion' or 'lni'")
            set_("angle", RUN_ANGLE.check(self.angle, names=RUN_ANGLE_NAMES))
        set_("seed", check_int("seed", self.seed, 0))
        set_("steps", check_int("steps", self.steps, 1))
        set_("batch_size", check_int("batch_size", self.batch_size, 0))
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {self.network!r}")
        set_("width", check_int("width", DEFAULT_WIDTHS[self.network] if self.width is None else self.width, 1))
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        set_("eval_every", check_int("eval_every", self.eval_every, 1))
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.task in CIFAR_TASKS:
            from .cifar import DATA_ENV

            data_dir = self.data_dir if self.data_dir is not None else (os.environ.get(DATA_ENV) or None)
            set_("data_dir", None if data_dir is None else os.path.abspath(os.fspath(data_dir)))
        else:
            if self.data_dir is not None:
                raise ValueError(f"data_dir is for the CIFAR tasks {CIFAR_TASKS}; task {self.task!r} takes None, "
                                 f"got {self.data_dir!r}")
            if self.augment:
                raise ValueError(f"augment (crops and flips of 32x32 images) is for the CIFAR tasks {CIFAR_TASKS}, "
                                 f"not {self.task!r}")
        for name in ("augment", "bf16"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    def as_dict(self):
        """The configuration as a JSON-able dict."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`as_dict`."""
        d = dict(d)
        d["betas"] = tuple(d["betas"])
        return cls(**d)

    def key(self):
        """What the cache is keyed by.

        The configuration (without ``data_dir``), the package version, the
        random-stream version (:data:`lni_geometry.rng.STREAM_VERSION`),
        :data:`ENGINE_VERSION`, the torch version, a fingerprint of the
        sources that compute the recorded numbers (:func:`code_fingerprint`)
        and, for the CIFAR tasks, the identity of the data (its files' names,
        sizes and SHA-256, :func:`lni_geometry.experiments.cifar.data_identity`):
        a cached result is only served to the code and data that would
        compute it again.

        Raises
        ------
        FileNotFoundError, lni_geometry.experiments.cifar.CifarError
            A CIFAR task whose data folder is missing or incomplete.
        """
        from .. import __version__
        from ..rng import STREAM_VERSION

        config = self.as_dict()
        del config["data_dir"]
        key = {"config": config, "package": __version__, "stream": STREAM_VERSION,
               "engine": ENGINE_VERSION, "code": code_fingerprint(), "torch": _torch_version()}
        if self.task in CIFAR_TASKS:
            from .cifar import data_identity

            key["data"] = data_identity(self.task, self.data_dir)
        return key

    def digest(self):
        """SHA-256 (24 hex digits) of :meth:`key`."""
        import hashlib

        return hashlib.sha256(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()[:24]

    def label(self):
        """A short readable name (file prefix, progress bar)."""
        if self.optimizer == "enim":
            a = self.angle if isinstance(self.angle, str) else f"{math.degrees(self.angle):.4g}deg"
            opt = f"enim-{a}"
        else:
            opt = "lion"
        wd = f"_wd{self.weight_decay:.3g}" if self.weight_decay else ""
        task = "" if self.task == "digits" else f"{self.task}_"
        return f"{opt}_{task}{self.network}_lr{self.lr:.3g}{wd}_s{self.seed}"


#: Sources whose code decides the numbers of a run (relative to the package): the
#: optimizers and their kernels (with what those import: the lane sums, the Gaussian
#: stream, the elementary functions), the telemetry's geometry, laws (isotropic mean)
#: and tail index, the engine, networks, task.
FINGERPRINT_SOURCES = ("torch", "optim_kernels.py", "optim_loops.py", "kernels.py", "models", "rng.py",
                       "elementary.py", "geometry.py", "theory", "tails.py", "experiments/config.py",
                       "experiments/engine.py", "experiments/networks.py", "experiments/tasks.py",
                       "experiments/cifar.py")


@functools.lru_cache(maxsize=None)
def code_fingerprint():
    """SHA-256 (16 hex digits) of the sources in :data:`FINGERPRINT_SOURCES` (files of a
    folder in name order): part of the cache key, so that a change of the optimizers,
    their telemetry, the engine, the networks or the task is never served stale results."""
    import hashlib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for name in FINGERPRINT_SOURCES:
        path = os.path.join(root, name)
        files = ([os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".py")]
                 if os.path.isdir(path) else [path])
        for f in files:
            h.update(os.path.relpath(f, root).encode())
            with open(f, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _torch_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:  # pragma: no cover
        return None
