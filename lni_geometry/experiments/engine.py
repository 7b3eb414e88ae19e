"""One training run as a pure function of its configuration.

:class:`RunConfig` names everything a run depends on (task, network, optimizer,
learning rate, betas, weight decay, Enim's angle, seed, steps, batch size,
device); :func:`train` trains that network with :class:`lni_geometry.torch.Lion`
or :class:`lni_geometry.torch.Enim` and returns a :class:`RunResult`: the
optimizer's telemetry at every step and the metrics at regular evaluations.
With ``cache=DIR`` the result is stored on disk under a hash of the
configuration, the package version, :data:`ENGINE_VERSION`, the random-stream
version, the torch version and the code fingerprint (:func:`code_fingerprint`;
:mod:`lni_geometry.experiments.cache`), and an interrupted run continues from
its last checkpoint to exactly the numbers of an uninterrupted one.

Determinism: the network is initialised from ``torch.manual_seed(seed)``
(inside ``torch.random.fork_rng``, so the caller's generator is untouched);
the minibatches of epoch ``e`` are a permutation drawn from
``numpy.random.default_rng([seed, 1, e])``; the random crops and flips of
the CIFAR tasks' augmentation are drawn per epoch from a ``torch.Generator``
seeded by ``(seed, e)`` (:func:`.cifar.augmentation_draws`); Enim's noise is
seeded with ``seed``.  On the CPU with one thread (what the runner uses) the
numbers are bit-identical from run to run, and a run resumed from its
checkpoint gives exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import signal
import threading
import time

import numpy as np

from ..validation import BETA1, BETA2, LR, WEIGHT_DECAY, Domain, check_int
from .networks import DEFAULT_WIDTHS, NETWORKS, build_network, norm_bias_names
from .tasks import CIFAR_TASKS, TASKS, load_task

__all__ = ["ENGINE_VERSION", "RunConfig", "RunResult", "train", "STEP_FIELDS", "EVAL_FIELDS"]

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
                       "elementary.py", "geometry.py", "theory", "tails.py", "experiments/engine.py", "experiments/networks.py",
                       "experiments/tasks.py", "experiments/cifar.py")


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


class RunResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    config : RunConfig
    steps : dict of str to numpy.ndarray
        One float64 array of length ``config.steps`` per name in
        :data:`STEP_FIELDS` (NaN after a divergence).
    evals : dict of str to numpy.ndarray
        One array per name in :data:`EVAL_FIELDS` (``step`` counts steps done).
        ``tail_index_c``: :func:`lni_geometry.tail_index` of the nonzero
        coordinates of Lion's ``c = beta1 m + (1 - beta1) g`` in the largest
        parameter tensor, at the last step before the evaluation.
    final : dict of str to numpy.ndarray
        ``norm_biases`` (every normalisation-layer bias at the end,
        concatenated), ``c_largest`` (``c`` of the largest tensor at the last
        step, float32).
    meta : dict
        ``n`` (parameters), ``diverged`` (a non-finite loss stopped the run),
        ``diverged_at``, ``wall_time_s``, ``step_time_s`` (of it, in the
        training steps: loading, evaluations and checkpoints left out),
        ``eval_time_s`` (in the evaluations), ``largest_tensor``,
        ``norm_bias_names``, ``init_digest`` (of the initial weights and
        buffers: runs of one seed share it), ``key`` (what the cache is keyed
        by), and ``cached`` (read back from the cache by this call).
    """

    def __init__(self, config, steps, evals, final, meta):
        self.config, self.steps, self.evals, self.final, self.meta = config, steps, evals, final, meta

    @property
    def final_test_acc(self):
        """Test accuracy after the last step."""
        return float(self.evals["test_acc"][-1])

    def median_angle(self, field="sign_angle", skip=0.5):
        """Median of a per-step field over the steps after the first ``skip`` fraction."""
        x = self.steps[field]
        x = x[int(len(x) * skip):]
        x = x[np.isfinite(x)]
        return float(np.median(x)) if x.size else float("nan")

    def save(self, path):
        """Write to ``path`` (.npz) atomically (a temporary file, then ``os.replace``)."""
        arrays = {f"steps/{k}": v for k, v in self.steps.items()}
        arrays.update({f"evals/{k}": v for k, v in self.evals.items()})
        arrays.update({f"final/{k}": v for k, v in self.final.items()})
        meta = {k: v for k, v in self.meta.items() if k != "cached"}
        arrays["meta"] = np.array(json.dumps(meta))
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            parts = {"steps": {}, "evals": {}, "final": {}}
            for name in z.files:
                if "/" in name:
                    part, key = name.split("/", 1)
                    parts[part][key] = z[name]
        config = RunConfig.from_dict(meta["key"]["config"])
        return cls(config, parts["steps"], parts["evals"], parts["final"], meta)

    def __repr__(self):
        m = self.meta
        return (f"RunResult({self.config.label()}: n={m.get('n')}, test acc {self.final_test_acc:.3f}, "
                f"median sign angle {math.degrees(self.median_angle()):.2f} deg"
                f"{', diverged' if m.get('diverged') else ''}{', cached' if m.get('cached') else ''})")


class StopTraining(Exception):
    """Raised by :func:`train` when ``stop_after`` is reached (a checkpoint was written)."""


def _make_optimizer(config, params):
    from ..torch import Enim, Lion

    if config.optimizer == "lion":
        return Lion(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, telemetry=True)
    return Enim(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                angle=config.angle, seed=config.seed, telemetry=True)


def _accuracy(model, x, y, chunk=1024, forward=None):
    import torch
    import torch.nn.functional as F

    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            out = (forward or model)(x[i:i + chunk])
            ok = torch.isfinite(out).all(dim=1)
            correct += int(((out.argmax(dim=1) == y[i:i + chunk]) & ok).sum())
            loss += float(F.cross_entropy(out, y[i:i + chunk], reduction="sum"))
    model.train()
    return loss / len(x), correct / len(x)


def _l1_ratio(grads, n):
    r"""``||g||_1 / (sqrt(n) ||g||_2)`` of the gradient ``g`` over every parameter (None: zeros).

    Sums in float64; ``n`` counts every coordinate, exact zeros included, so
    that ``arccos`` of it is the bisector angle of ``g``
    (``sqrt(2/pi) = 0.798`` for a large isotropic Gaussian ``g``); ``nan``
    when ``g = 0``.
    """
    import torch

    parts = [g.detach().reshape(-1) for g in grads if g is not None]
    if not parts:
        return float("nan")
    g = torch.cat(parts).double()
    l1, l2sq = float(g.abs().sum()), float((g * g).sum())
    return l1 / math.sqrt(n * l2sq) if l2sq > 0 else float("nan")


def _weights_digest(model):
    """SHA-256 (16 hex digits) of a model's parameters and buffers in order: equal
    digests mean the same initial weights (runs paired by seed start alike)."""
    import hashlib

    h = hashlib.sha256()
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _tail_index(c):
    from ..tails import tail_index

    c = c[c != 0]
    if c.size < 16:
        return float("nan")
    try:
        return float(tail_index(c))
    except ValueError:
        return float("nan")


def _checkpoint_path(path):
    return None if path is None else path[: -len(".npz")] + ".ckpt.pt"


def _load_checkpoint(ckpt, device):
    """The checkpoint ``ckpt``, unpickled with ``torch.load(weights_only=True)``: tensors,
    numbers, strings and containers only, so that a crafted file cannot run code.

    Returns None for an unreadable file (a crash while writing cannot make one:
    writes are atomic); it is worth nothing, and the run starts over.

    Raises
    ------
    RuntimeError
        The file holds anything else (a class, a function): it was not written
        by :func:`train`, and is refused without running anything.
    """
    import pickle

    import torch

    try:
        return torch.load(ckpt, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln or "global" in ln]
        if not lines:  # not a pickle of anything: unreadable
            return None
        raise RuntimeError(f"refusing to load the checkpoint {ckpt}: it holds more than tensors, numbers, strings and "
                           f"containers ({lines[0]}); delete it to start that run over") from None
    except Exception:  # noqa: BLE001 - truncated or not a checkpoint at all: start the run over
        return None


def _save_checkpoint(ckpt, state):
    import torch

    tmp = f"{ckpt}.{os.getpid()}.tmp"
    try:
        torch.save(state, tmp)
        os.replace(tmp, ckpt)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def train(config, *, cache=None, progress=False, checkpoint_seconds=20.0, stop_after=None, threads=1):
    """Train the configured network; return its telemetry and metrics.

    Parameters
    ----------
    config : RunConfig
    cache : str or os.PathLike, optional
        Directory of finished runs (created if needed).  A finished run with
        the same key (:meth:`RunConfig.key`: configuration, versions, code
        fingerprint) is read back
        instead of trained; an unfinished one (a checkpoint from an interrupted
        call) is continued.  Without a cache the run is trained from scratch.
    progress : bool
        A tqdm bar over steps.
    checkpoint_seconds : float
        With a cache: write a checkpoint at the first step boundary after this
        many seconds since the last one (and on Ctrl-C).
    stop_after : int, optional
        Stop after this many steps of the run (counted from its start), write a
        checkpoint and raise :class:`StopTraining`: an interruption on purpose,
        for tests.
    threads : int or None
        torch and numba threads during the run (restored after); None leaves
        them as they are.  One thread is fastest for these small networks (the
        telemetry's parallel reductions only pay off on large tensors) and
        makes the numbers independent of the machine's core count.

    Returns
    -------
    RunResult

    Notes
    -----
    At each evaluation step, after ``loss.backward()`` and before
    ``optimizer.step()``, the engine reads ``c = beta1 m + (1 - beta1) g`` of
    the largest tensor from the optimizer's momentum ``m``
    (``state["exp_avg"]``, Lion's and Enim's) for its tail index, and after
    every step it records the optimizer's telemetry (:data:`STEP_FIELDS`).  A step whose loss is not
    finite ends the run: ``meta["diverged"]`` is True and the remaining steps
    are NaN; the final evaluation is still made (a non-finite output counts as
    a wrong answer).  A training set larger than :data:`EVAL_TRAIN_MAX`
    images is evaluated on a fixed subset of that many (the same for every
    run).  A checkpoint is read with ``torch.load(weights_only=True)``: one
    that holds anything but tensors, numbers, strings and containers is
    refused with a ``RuntimeError``, nothing in it run.
    """
    from .cache import load_result, result_path

    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    path = None
    if cache is not None:
        cache = os.fspath(cache)
        os.makedirs(cache, exist_ok=True)
        path = result_path(cache, config)
        found = load_result(path, config)
        if found is not None:
            return found
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked but torch sees no GPU")
    if threads is None:
        return _train(config, path, progress, checkpoint_seconds, stop_after)
    import numba

    threads = check_int("threads", threads, 1)
    saved = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return _train(config, path, progress, checkpoint_seconds, stop_after)
    finally:
        torch.set_num_threads(saved[0])
        numba.set_num_threads(saved[1])


def _train(config, path, progress, checkpoint_seconds, stop_after):
    import torch
    import torch.nn.functional as F

    t_start = time.perf_counter()
    device = torch.device(config.device)
    task = load_task(config.task, data_dir=config.data_dir)
    xtr = torch.from_numpy(task.x_train).to(device)
    ytr = torch.from_numpy(task.y_train).to(device)
    xte = torch.from_numpy(task.x_test).to(device)
    yte = torch.from_numpy(task.y_test).to(device)
    ntrain = len(xtr)
    bs = config.batch_size or ntrain
    if bs > ntrain:
        raise ValueError(f"batch_size {bs} exceeds the {ntrain} training examples of {config.task!r}")
    per_epoch = ntrain // bs
    xev, yev = xtr, ytr
    if ntrain > EVAL_TRAIN_MAX:  # a fixed subset of the training set, the same for every run
        sub = np.sort(np.random.default_rng(EVAL_TRAIN_MAX).permutation(ntrain)[:EVAL_TRAIN_MAX])
        xev, yev = xtr[torch.from_numpy(sub).to(device)], ytr[torch.from_numpy(sub).to(device)]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_network(config.network, config.width, task.classes, task.x_train.shape[1:])
    model.to(device)
    channels_last = device.type == "cuda" and config.network.startswith("resnet")
    if channels_last:
        model.to(memory_format=torch.channels_last)

    def forward(x):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            return model(x).float()
    init_digest = _weights_digest(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    sizes = [p.numel() for p in params]
    n_total = int(sum(sizes))
    largest = int(np.argmax(sizes))
    nb_names = set(norm_bias_names(model))
    k95 = max(1, math.ceil(0.95 * n_total))  # |w| at this rank: the 95% quantile
    nb_index = [i for i, (name, _) in enumerate(named) if name in nb_names]
    opt = _make_optimizer(config, params)
    b1 = config.betas[0]

    S = config.steps
    rec = {k: np.full(S, np.nan) for k in STEP_FIELDS}
    evals = {k: [] for k in EVAL_FIELDS}
    c_largest = np.zeros(sizes[largest], dtype=np.float32)
    tail_now = float("nan")
    step0, wall0, diverged, diverged_at = 0, 0.0, False, None

    ckpt = _checkpoint_path(path)
    state = None
    timing = {"step": 0.0, "eval": 0.0}
    if ckpt is not None and os.path.exists(ckpt):
        state = _load_checkpoint(ckpt, device)
        if state is not None and state.get("key") != config.key():
            state = None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for k in STEP_FIELDS:
            rec[k][:] = state["rec"][k].cpu().numpy()
        evals = {k: list(v) for k, v in state["evals"].items()}
        c_largest = state["c_largest"].cpu().numpy().copy()
        tail_now = state["tail_now"]
        step0, wall0 = state["step"], state["wall_time_s"]
        timing.update(state["timing"])

    def checkpoint(step):
        if ckpt is None:
            return
        _save_checkpoint(ckpt, {
            "key": config.key(), "step": step, "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "rec": {k: torch.from_numpy(v.copy()) for k, v in rec.items()}, "evals": evals,
            "c_largest": torch.from_numpy(c_largest.copy()), "tail_now": tail_now,
            "wall_time_s": wall0 + time.perf_counter() - t_start, "timing": dict(timing),
        })

    def evaluate(step):
        t0 = time.perf_counter()
        trl, tra = _accuracy(model, xev, yev, forward=forward)
        tel, tea = _accuracy(model, xte, yte, forward=forward)
        for k, v in zip(EVAL_FIELDS, (step, trl, tra, tel, tea, tail_now)):
            evals[k].append(v)
        timing["eval"] += time.perf_counter() - t0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=S, initial=step0, unit="step", desc=config.label())
    last_ckpt = time.perf_counter()
    perm, perm_epoch = None, -1
    step = step0
    # Ctrl-C is honoured at the next step boundary, so the checkpoint is consistent
    sigint = []
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGINT, lambda signum, frame: sigint.append(signum))
    try:
        model.train()
        while step < S:
            if sigint:
                checkpoint(step)
                raise KeyboardInterrupt
            if stop_after is not None and step >= stop_after:
                checkpoint(step)
                raise StopTraining(f"stopped after {step} steps; checkpoint written")
            epoch, pos = divmod(step, per_epoch)
            t_step = time.perf_counter()
            if epoch != perm_epoch:
                perm = torch.from_numpy(np.random.default_rng([config.seed, 1, epoch]).permutation(ntrain)).to(device)
                if config.augment:
                    from .cifar import augment_batch, augmentation_draws

                    shifts, flips = (t.to(device) for t in augmentation_draws(config.seed, epoch, per_epoch * bs))
                perm_epoch = epoch
            idx = perm[pos * bs:(pos + 1) * bs]
            xb = xtr[idx]
            if config.augment:
                xb = augment_batch(xb, shifts[pos * bs:(pos + 1) * bs], flips[pos * bs:(pos + 1) * bs])
            out = forward(xb)
            loss = F.cross_entropy(out, ytr[idx])
            lv = float(loss.detach())
            if not math.isfinite(lv):
                diverged, diverged_at = True, step
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                flat_before = torch.cat([p.detach().reshape(-1) for p in params])
                rec["grad_l1_ratio"][step] = _l1_ratio([p.grad for p in params], n_total)
                g = params[largest].grad
                if g is not None and (step == S - 1 or (step + 1) % config.eval_every == 0):
                    m = opt.state[params[largest]].get("exp_avg")  # the momentum before this step
                    c = (1 - b1) * g if m is None else b1 * m + (1 - b1) * g
                    c_largest = c.detach().reshape(-1).float().cpu().numpy().copy()
                    tail_now = _tail_index(c_largest.astype(np.float64))
            if config.schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = config.lr * 0.5 * (1.0 + math.cos(math.pi * step / S))
            opt.step()
            tel = opt.telemetry
            with torch.no_grad():
                flat_after = torch.cat([p.detach().reshape(-1) for p in params])
                absw = flat_before.abs()
                k = max(1, int(round(0.05 * n_total)))
                top = torch.topk(absw, k).indices
                wb, dw = flat_before[top], (flat_after - flat_before)[top]
                den = float(wb.norm() * dw.norm())
                cos = float((wb * dw).sum()) / den if den > 0 else float("nan")
                q95 = float(torch.kthvalue(flat_after.abs(), k95).values)
            rec["loss"][step] = lv
            for key in TELEMETRY_FIELDS:
                rec[key][step] = float(tel[key])
            pt = tel["per_tensor"]
            for key in ("zero_grad", "tracing", "revived"):
                rec[f"norm_bias_{key}"][step] = sum(pt[i][key] for i in nb_index)
            rec["w_abs_q95"][step] = q95
            rec["cos_top5"][step] = cos
            opt.history.clear()
            step += 1
            timing["step"] += time.perf_counter() - t_step
            if step % config.eval_every == 0 or step == S:
                evaluate(step)
            if bar is not None:
                bar.update(1)
            if ckpt is not None and time.perf_counter() - last_ckpt > checkpoint_seconds and step < S:
                checkpoint(step)
                last_ckpt = time.perf_counter()
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
        if bar is not None:
            bar.close()
    if diverged:
        evaluate(step)
    final_nb = [params[i].detach().reshape(-1).cpu().numpy() for i in nb_index]
    meta = {
        "key": config.key(),
        "n": n_total,
        "diverged": diverged,
        "diverged_at": diverged_at,
        "wall_time_s": round(wall0 + time.perf_counter() - t_start, 3),
        "step_time_s": round(timing["step"], 3),
        "eval_time_s": round(timing["eval"], 3),
        "largest_tensor": {"name": named[largest][0], "shape": list(params[largest].shape)},
        "norm_bias_names": [named[i][0] for i in nb_index],
        "norm_bias_sizes": [sizes[i] for i in nb_index],
        "torch": torch.__version__,
        "init_digest": init_digest,
    }
    result = RunResult(
        config, rec,
        {k: np.asarray(v, dtype=np.float64) for k, v in evals.items()},
        {"norm_biases": np.concatenate(final_nb).astype(np.float64) if final_nb else np.zeros(0),
         "c_largest": c_largest},
        dict(meta, cached=False),
    )
    if path is not None:
        result.save(path)
        if os.path.exists(ckpt):
            os.remove(ckpt)
    return result
