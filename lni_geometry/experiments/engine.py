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

import json
import math
import os
import signal
import threading
import time

import numpy as np

from ..validation import check_int
from .config import ENGINE_VERSION, EVAL_FIELDS, EVAL_TRAIN_MAX, STEP_FIELDS, TELEMETRY_FIELDS, RunConfig
from .networks import build_network, norm_bias_names
from .tasks import load_task

__all__ = ["ENGINE_VERSION", "RunConfig", "RunResult", "train", "STEP_FIELDS", "EVAL_FIELDS"]

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
