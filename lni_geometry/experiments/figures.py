"""The seed paper's training figures (2 to 6) as small offline experiments, and Figure 7.

Each figure has a *spec* (the grid of runs: learning rates, seeds, angles,
the base configuration; :func:`figure_spec`), a *builder* that gets its runs
through the cache (:func:`lni_geometry.experiments.run_many`) and reduces them
to arrays and a JSON summary, and a *drawing* from those arrays alone, so that
a rerun with a finished data file only redraws (:func:`make_figure`).

The paper (Elistratov, Podivilov, Iuzhakov, Vetrov, "Lion's sign noise can
make training more stable") trains ResNet9/18 on CIFAR; here every figure is an
analogue on scikit-learn's digits with a 9,850-parameter residual CNN with
BatchNorm and ReLU (:mod:`.networks`), minibatches of 64 and constant
learning rates.  What each figure tests, and whether the small task shows it,
is written into the figure's data and its title (``summary["checks"]``: per
claim "reproduced", "partly" or "not reproduced" with the numbers it rests on;
``summary["verdict"]``: more detail) from the numbers, never by hand, and
computed again from the arrays whenever a figure is redrawn.  Seeds are ``seed .. seed+k-1``, never chosen by outcome.

Figure 7 is not in the paper: it puts the paper's open hypothesis ("Lion
regularizes L1-norm of the gradient with a strength proportional to the
learning rate") to a paired test.  Lion, Enim at Lion's angle (the same
rotation of ``c``, no sign) and normalised SGD (Enim at angle 0) train from
the same initialisation and batch order for each seed, and the growth with the
learning rate of the sign angle of each optimizer's own ``c`` is compared seed
by seed (:func:`lni_geometry.experiments.verdicts.sign_effect`).
"""

from __future__ import annotations

import datetime
import json
import math
import os

import numpy as np

from .drawing import draw_figure
from .config import RunConfig
from .verdicts import CLAIMS, checks, report

__all__ = ["FIGURES", "DataMismatch", "build_figure", "cache_status", "draw_figure", "figure_spec",
           "load_figure_data", "make_figure"]

FIGURES = (2, 3, 4, 5, 6, 7)

#: The base configuration of the default grids (about 4 s per run on one core).
BASE = {"network": "cnn_bn", "width": 16, "steps": 400, "batch_size": 64, "eval_every": 50}
#: ... and of ``--full``.
FULL_BASE = {"network": "cnn_bn", "width": 16, "steps": 1000, "batch_size": 64, "eval_every": 100}

#: Learning rates of the default grids: from too small (1e-5) to unstable (1).
LRS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: ... and of ``--full``: half decades.
FULL_LRS = tuple(float(f"{10.0 ** (e / 2):.6g}") for e in range(-10, 1))
#: Learning rates of Figures 5 and 6 (Figure 2's without the too-small 1e-5, where
#: nothing trains in 400 steps: the Enim grid is the costliest part).
GRID_LRS = LRS[1:]
#: Enim's angles (degrees) in Figure 5; angle 0 is normalised SGD with Lion's momentum.
ANGLES_DEG = (0.0, 20.0, 40.0, 60.0, 80.0)
FULL_ANGLES_DEG = tuple(float(a) for a in range(0, 90, 10))
#: Enim's angles (degrees) in Figure 6 (a subset of Figure 5's, so the runs are shared).
FIG6_ANGLES_DEG = (0.0, 40.0, 80.0)
#: Learning rates whose normalisation biases Figure 6 shows (fixed in advance).
FIG6_HIST_LRS = (1e-2, 1e-1)
#: Figure 4: Lion's learning rate and weight decays (0 is the control).
FIG4_LR = 0.1
FIG4_WDS = (0.0, 0.3, 1.0)
#: Figure 7's optimizers, paired by seed: (name, optimizer, Enim's angle).  ``"enim_lion"``
#: turns ``c`` by the angle Lion's sign would give on it, in a random direction (no
#: sign); ``"nsgd"`` is Enim at angle 0, normalised SGD with Lion's momentum (no noise).
FIG7_ARMS = (("lion", "lion", None), ("enim_lion", "enim", "lion"), ("nsgd", "enim", 0.0))
#: Figure 7's presets by ``scale``: the base configuration, learning rates and number of
#: seeds of the default grid and of ``--full``.  ``"small"`` is the digits analogue (the
#: learning rates and base of Figure 2, so Figures 2, 3 and 5 share its runs); a preset
#: for another task or network is one more entry with the same keys.
FIG7_SCALES = {
    "small": {"base": BASE, "lrs": LRS, "seeds": 5,
              "full_base": FULL_BASE, "full_lrs": FULL_LRS, "full_seeds": 8},
}

class DataMismatch(ValueError):
    """A figure data file holds another grid than the one asked for."""


# --- specs -------------------------------------------------------------------------


def figure_spec(number, *, full=False, seed=0, device="cpu", scale="small", **overrides):
    """The grid of runs of Figure ``number`` (a JSON-able dict).

    Parameters
    ----------
    number : {2, 3, 4, 5, 6, 7}
    full : bool
        The larger grid (more learning rates, seeds, steps and angles).
    seed : int
        First seed; the figure uses ``seed .. seed + k - 1``.
    device : {"cpu", "cuda"}
    scale : str
        Figure 7: the preset of :data:`FIG7_SCALES` (task, network, grid);
        figures 2 to 6 take ``"small"`` only.  ``"paper"`` (every figure):
        the paper's own setting, ResNets on CIFAR from a local folder
        (:func:`lni_geometry.experiments.paper.paper_spec`, which takes
        ``data_dir``, ``epochs`` and ``max_steps`` besides).
    **overrides
        Replace entries of the grid (``lrs``, ``seeds``, ``angles_deg``,
        ``hist_lrs``, ``lr``, ``weight_decays``) or of its base configuration
        (``steps``, ``width``, ``batch_size``, ``eval_every``, ``network``):
        smaller grids for tests and notebooks.

    Returns
    -------
    dict

    Examples
    --------
    >>> s = figure_spec(2)
    >>> s["lrs"], s["seeds"]
    ([1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0], [0, 1, 2])
    """
    if number not in FIGURES:
        raise ValueError(f"figure must be one of {FIGURES}, got {number!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if scale == "paper":
        from .paper import paper_spec

        return paper_spec(number, full=full, seed=seed, device=device, **overrides)
    presets = FIG7_SCALES if number == 7 else {"small": None}
    if scale not in presets:
        raise ValueError(f"figure {number} has no scale {scale!r}; scales are {sorted(presets)}")
    base = dict(FULL_BASE if full else BASE, device=device)
    k = 5 if full else 3
    spec = {"figure": number, "full": bool(full), "base": base,
            "seeds": [int(seed) + i for i in range(k)], "lrs": list(FULL_LRS if full else LRS)}
    if number == 7:
        p, pre = FIG7_SCALES[scale], "full_" if full else ""
        spec = {"figure": 7, "full": bool(full), "scale": scale, "base": dict(p[pre + "base"], device=device),
                "seeds": [int(seed) + i for i in range(p[pre + "seeds"])], "lrs": [float(x) for x in p[pre + "lrs"]],
                "arms": [a[0] for a in FIG7_ARMS]}
    if number in (5, 6) and not full:
        spec["lrs"] = list(GRID_LRS)
    if number == 5:
        spec["angles_deg"] = list(FULL_ANGLES_DEG if full else ANGLES_DEG)
    if number == 6:
        spec["angles_deg"] = list(FIG6_ANGLES_DEG)
        spec["hist_lrs"] = list(FIG6_HIST_LRS)
    if number == 4:
        del spec["lrs"]
        spec["base"] = dict(base, steps=4000 if full else 1500, eval_every=100)
        spec["lr"] = FIG4_LR
        spec["weight_decays"] = list(FIG4_WDS)
    _override(number, spec, overrides)
    return spec


def _override(number, spec, overrides):
    """Replace entries of ``spec`` (grid or base configuration) by ``overrides``, then
    check the whole spec."""
    for key, value in overrides.items():
        if key in ("steps", "width", "batch_size", "eval_every", "network"):
            spec["base"] = dict(spec["base"], **{key: value})
        elif key in spec and key not in ("figure", "full", "base", "scale", "arms"):
            spec[key] = [float(v) if key != "seeds" else int(v) for v in value] if isinstance(value, (list, tuple)) else value
        else:
            raise ValueError(f"figure {number} has no setting {key!r}")
    RunConfig(**spec["base"])  # validates the base configuration
    if number == 6 and not set(spec["hist_lrs"]) <= set(spec["lrs"]):
        raise ValueError(f"hist_lrs {spec['hist_lrs']} must be among lrs {spec['lrs']}")


def _lion(spec, lr, seed, **extra):
    return RunConfig(optimizer="lion", lr=lr, seed=seed, **spec["base"], **extra)


def _enim(spec, lr, seed, angle):
    return RunConfig(optimizer="enim", lr=lr, seed=seed, angle=angle, **spec["base"])


def _lion_grid(spec):
    return [[_lion(spec, lr, s) for s in spec["seeds"]] for lr in spec["lrs"]]


def _run_grid(grid, cache, opts, desc):
    """Run a nested list of configs; return results in the same nesting."""
    from .runner import run_many

    flat, shape = [], []

    def walk(g):
        if isinstance(g, RunConfig):
            flat.append(g)
            return None
        return [walk(x) for x in g]

    walk(grid)
    res = run_many(flat, cache, desc=desc, **opts)
    it = iter(res)

    def fill(g):
        if isinstance(g, RunConfig):
            return next(it)
        return [fill(x) for x in g]

    del shape
    return fill(grid)


def _median_late(r, field):
    return r.median_angle(field)


def _late_tail_index(r):
    t = r.evals["tail_index_c"]
    t = t[len(t) // 2:]
    t = t[np.isfinite(t)]
    return float(np.median(t)) if t.size else float("nan")


def _lion_summary(results):
    """Arrays [lr, seed] of a Lion grid."""
    f = lambda fn: np.array([[fn(r) for r in row] for row in results], dtype=np.float64)  # noqa: E731
    return {
        "test_acc": f(lambda r: r.final_test_acc),
        "diverged": f(lambda r: float(r.meta["diverged"])),
        "med_angle": f(lambda r: _median_late(r, "sign_angle")),
        "med_angle_tails": f(lambda r: _median_late(r, "angle_tails")),
        "med_angle_het": f(lambda r: _median_late(r, "angle_heterogeneity")),
        "med_T": f(lambda r: _median_late(r, "budget_T")),
        "med_H": f(lambda r: _median_late(r, "budget_H")),
        "tail_c": f(_late_tail_index),
        "zero_frac": f(lambda r: float(np.nanmean(r.steps["zero_grad_fraction"]))),
    }


def _calibrated_angles(lion):
    """Per lr: the median over seeds of Lion's per-run median sign angle (radians)."""
    return [float(np.median(row)) for row in lion["med_angle"]]


# --- builders ------------------------------------------------------------------------


def _build2(spec, cache, opts):
    from .. import theory
    from ..tails import alpha_for_angle

    runs = _run_grid(_lion_grid(spec), cache, opts, "figure2: Lion")
    arr = _lion_summary(runs)
    n = runs[0][0].meta["n"]
    law = theory.BisectorAngle(n)
    for key in ("sign_angle", "angle_tails", "angle_heterogeneity"):
        arr[key] = np.array([[r.steps[key] for r in row] for row in runs], dtype=np.float32)
    arr["lrs"] = np.array(spec["lrs"])
    alpha, alpha_se = [], []
    for row in arr["med_angle"]:
        try:
            a = alpha_for_angle(float(np.median(row)), n, samples=500)
            alpha.append(a.alpha)
            alpha_se.append(a.stderr)
        except ValueError:
            alpha.append(float("nan"))
            alpha_se.append(float("nan"))
    arr["alpha_for_angle"] = np.array(alpha)
    arr["alpha_for_angle_se"] = np.array(alpha_se)
    summary = {"n": int(n), "iso_mean": float(law.mean()), "iso_std": float(law.std()),
               "largest_tensor": runs[0][0].meta["largest_tensor"]}
    return arr, summary


def _build3(spec, cache, opts):
    lion_runs = _run_grid(_lion_grid(spec), cache, opts, "figure3: Lion")
    lion = _lion_summary(lion_runs)
    cal = _calibrated_angles(lion)
    grid_cal = [[_enim(spec, lr, s, a) for s in spec["seeds"]] for lr, a in zip(spec["lrs"], cal)]
    grid_lion = [[_enim(spec, lr, s, "lion") for s in spec["seeds"]] for lr in spec["lrs"]]
    runs = _run_grid([grid_cal, grid_lion], cache, opts, "figure3: Enim")
    e_cal, e_lion = _lion_summary(runs[0]), _lion_summary(runs[1])
    arr = {"lrs": np.array(spec["lrs"]), "cal_angle": np.array(cal),
           "acc_lion": lion["test_acc"], "acc_enim_cal": e_cal["test_acc"],
           "acc_enim_lion": e_lion["test_acc"],
           "enim_cal_sign_angle": e_cal["med_angle"], "enim_lion_sign_angle": e_lion["med_angle"]}
    return arr, {"n": int(lion_runs[0][0].meta["n"])}


def _enim_grid(spec):
    return [[[_enim(spec, lr, s, math.radians(a)) for s in spec["seeds"]] for a in spec["angles_deg"]]
            for lr in spec["lrs"]]


def _build5(spec, cache, opts):
    lion_runs = _run_grid(_lion_grid(spec), cache, opts, "figure5: Lion")
    lion = _lion_summary(lion_runs)
    runs = _run_grid(_enim_grid(spec), cache, opts, "figure5: Enim grid")
    acc = np.array([[[r.final_test_acc for r in cell] for cell in row] for row in runs])
    arr = {"lrs": np.array(spec["lrs"]), "angles_deg": np.array(spec["angles_deg"]), "acc": acc,
           "lion_angle": np.array(_calibrated_angles(lion)), "acc_lion": lion["test_acc"]}
    return arr, {"n": int(lion_runs[0][0].meta["n"])}


def _build6(spec, cache, opts):
    lion_runs = _run_grid(_lion_grid(spec), cache, opts, "figure6: Lion")
    lion = _lion_summary(lion_runs)
    cal = _calibrated_angles(lion)
    cal_grid = [[_enim(spec, lr, s, a) for s in spec["seeds"]] for lr, a in zip(spec["lrs"], cal)]
    cal_runs, enim_runs = _run_grid([cal_grid, _enim_grid(spec)], cache, opts, "figure6: Enim")
    zf = np.array([[[float(np.nanmean(r.steps["zero_grad_fraction"])) for r in cell] for cell in row]
                   for row in enim_runs])
    hist_idx = [spec["lrs"].index(lr) for lr in spec["hist_lrs"]]
    # biases[hist lr, optimizer (Lion, calibrated Enim, then Enim at each angle), seed, coordinate]
    biases = np.array([[[r.final["norm_biases"] for r in lion_runs[i]], [r.final["norm_biases"] for r in cal_runs[i]]]
                       + [[r.final["norm_biases"] for r in enim_runs[i][a]] for a in range(len(spec["angles_deg"]))]
                       for i in hist_idx])
    arr = {"lrs": np.array(spec["lrs"]), "angles_deg": np.array(spec["angles_deg"]), "cal_angle": np.array(cal),
           "zero_frac_lion": lion["zero_frac"], "zero_frac_enim": zf,
           "zero_frac_enim_cal": _lion_summary(cal_runs)["zero_frac"], "norm_biases": biases,
           "hist_lrs": np.array(spec["hist_lrs"]),
           "acc_lion": lion["test_acc"],
           "acc_enim": np.array([[[r.final_test_acc for r in cell] for cell in row] for row in enim_runs])}
    return arr, {"n": int(lion_runs[0][0].meta["n"])}


def _build4(spec, cache, opts):
    grid = [[_lion(spec, spec["lr"], s, weight_decay=wd) for s in spec["seeds"]] for wd in spec["weight_decays"]]
    runs = _run_grid(grid, cache, opts, "figure4: Lion + weight decay")
    arr = {"weight_decays": np.array(spec["weight_decays"])}
    for key in ("loss", "norm_bias_revived", "norm_bias_tracing", "w_abs_q95", "cos_top5", "zero_grad_fraction"):
        arr[key] = np.array([[r.steps[key] for r in row] for row in runs], dtype=np.float32)
    arr["eval_step"] = runs[0][0].evals["step"]
    arr["test_acc"] = np.array([[r.evals["test_acc"] for r in row] for row in runs])
    arr["train_loss"] = np.array([[r.evals["train_loss"] for r in row] for row in runs])
    return arr, {"n": int(runs[0][0].meta["n"]),
                 "norm_bias_coordinates": int(sum(runs[0][0].meta["norm_bias_sizes"]))}


def _fig7_config(spec, arm, lr, seed):
    _, optimizer, angle = {a[0]: a for a in FIG7_ARMS}[arm]
    return RunConfig(optimizer=optimizer, angle=angle, lr=lr, seed=seed, **spec["base"])


def _fig7_grid(spec):
    """Figure 7's runs as ``[arm][lr][seed]``."""
    return [[[_fig7_config(spec, arm, lr, s) for s in spec["seeds"]] for lr in spec["lrs"]] for arm in spec["arms"]]


def _late_mean(x):
    """Mean over the second half of the steps (as :meth:`RunResult.median_angle`), finite values only."""
    x = np.asarray(x, dtype=np.float64)
    x = x[int(len(x) * 0.5):]
    x = x[np.isfinite(x)]
    return float(np.mean(x)) if x.size else float("nan")


def _build7(spec, cache, opts):
    """Figure 7: arrays ``[arm, lr, seed]`` (and ``[arm, lr, seed, step]``) of the three optimizers.

    Per run, over the second half of training: the median sign angle of ``c``
    (``med_angle``, and each factor alone: ``med_angle_tails``,
    ``med_angle_het``), the means of ``ln T`` and ``ln H`` (``mean_log_T``,
    ``mean_log_H``: per step ``ln(sqrt(2/pi) / cos(angle)) = -ln T - ln H``
    exactly, so the means add up), the median of the raw gradient's
    ``||g||_1 / (sqrt(n) ||g||_2)`` (``med_grad_ratio``) and the mean fraction
    of exactly-zero gradient coordinates; the final test accuracy; and
    ``same_start[lr, seed]``: the three optimizers of that seed and lr
    started from the same weights (equal ``init_digest``; the batch order is a
    function of the seed alone, :mod:`.engine`).
    """
    from .. import theory

    runs = _run_grid(_fig7_grid(spec), cache, opts, "figure7: Lion, Enim at Lion's angle, normalised SGD")
    f = lambda fn: np.array([[[fn(r) for r in row] for row in arm] for arm in runs], dtype=np.float64)  # noqa: E731
    arr = {
        "lrs": np.array(spec["lrs"]),
        "test_acc": f(lambda r: r.final_test_acc),
        "diverged": f(lambda r: float(r.meta["diverged"])),
        "med_angle": f(lambda r: r.median_angle("sign_angle")),
        "med_angle_tails": f(lambda r: r.median_angle("angle_tails")),
        "med_angle_het": f(lambda r: r.median_angle("angle_heterogeneity")),
        "mean_log_T": f(lambda r: _late_mean(np.log(r.steps["budget_T"]))),
        "mean_log_H": f(lambda r: _late_mean(np.log(r.steps["budget_H"]))),
        "med_grad_ratio": f(lambda r: r.median_angle("grad_l1_ratio")),
        "zero_frac": f(lambda r: _late_mean(r.steps["zero_grad_fraction"])),
    }
    for key in ("sign_angle", "grad_l1_ratio"):
        arr[key] = np.array([[[r.steps[key] for r in row] for row in arm] for arm in runs], dtype=np.float32)
    digests = [[{arm[i][j].meta.get("init_digest") for arm in runs} for j in range(len(spec["seeds"]))]
               for i in range(len(spec["lrs"]))]
    arr["same_start"] = np.array([[len(d) == 1 and None not in d for d in row] for row in digests])
    n = runs[0][0][0].meta["n"]
    law = theory.BisectorAngle(n)
    return arr, {"n": int(n), "iso_mean": float(law.mean()), "iso_std": float(law.std())}


_BUILDERS = {2: _build2, 3: _build3, 4: _build4, 5: _build5, 6: _build6, 7: _build7}


# --- the whole figure -------------------------------------------------------------------


def _known_configs(number, spec, cache):
    """The configurations of a figure that can be listed now (the calibrated Enim runs
    of Figures 3 and 6 only once Lion's runs are in the cache)."""
    from .cache import load_result, result_path

    if number == 4:
        return [_lion(spec, spec["lr"], s, weight_decay=wd) for wd in spec["weight_decays"] for s in spec["seeds"]]
    if number == 7:
        return [c for arm in _fig7_grid(spec) for row in arm for c in row]
    lion = _lion_grid(spec)
    flat = [c for row in lion for c in row]
    if number in (5, 6):
        flat += [c for row in _enim_grid(spec) for cell in row for c in cell]
    if number == 3:
        flat += [_enim(spec, lr, s, "lion") for lr in spec["lrs"] for s in spec["seeds"]]
    if number in (3, 6):
        results = [[load_result(result_path(cache, c), c) for c in row] for row in lion]
        if all(r is not None for row in results for r in row):
            cal = _calibrated_angles(_lion_summary(results))
            flat += [_enim(spec, lr, s, a) for lr, a in zip(spec["lrs"], cal) for s in spec["seeds"]]
        else:
            flat += [None] * (len(spec["lrs"]) * len(spec["seeds"]))
    return flat


def cache_status(number, spec, cache):
    """How many runs of a figure are finished or checkpointed in ``cache``.

    Returns
    -------
    dict
        ``total`` (runs of the figure), ``finished``, ``checkpointed``
        (interrupted runs that the next call continues).
    """
    from .cache import result_path

    configs = _known_configs(number, spec, cache) if os.path.isdir(cache) else []
    if not configs:
        return {"total": len(_known_configs(number, spec, "/nonexistent")), "finished": 0, "checkpointed": 0}
    done = ck = 0
    for c in configs:
        if c is None:
            continue
        path = result_path(cache, c)
        if os.path.exists(path):
            done += 1
        elif os.path.exists(path[:-len(".npz")] + ".ckpt.pt"):
            ck += 1
    return {"total": len(configs), "finished": done, "checkpointed": ck}


def build_figure(number, spec, cache, *, workers=None, client=None, progress=True):
    """Run (or read back) the runs of a figure and reduce them to ``(arrays, summary)``."""
    opts = {"workers": workers, "client": client, "progress": progress}
    arr, summary = _BUILDERS[number](spec, cache, opts)
    return arr, _summarise(number, arr, summary, spec)


def _summarise(number, arr, summary, spec):
    """``summary`` with the claim, the printed lines, the verdict and the checks, all
    computed again from the arrays (so a redraw shows what the current code says of
    stored data)."""
    lines, verdict = report(number, arr, summary, spec)
    return dict(summary, claim=CLAIMS[number], lines=lines, verdict=verdict,
                checks=checks(number, arr, summary, spec))


def _save_data(path, arr, meta):
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    try:
        np.savez_compressed(tmp, **arr, metadata=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_figure_data(path):
    """``(arrays, metadata)`` of a figure data file written by :func:`make_figure`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["metadata"]))
        arr = {k: z[k] for k in z.files if k != "metadata"}
    return arr, meta


def make_figure(number, *, out, data, cache, full=False, seed=0, device="cpu", workers=None,
                client=None, progress=True, provenance=None, **overrides):
    """Make Figure ``number``: its runs (through the cache), its data file and its PNG.

    Parameters
    ----------
    number : {2, 3, 4, 5, 6, 7}
    out : str
        The PNG to write.
    data : str
        The data file (.npz: the arrays drawn, and ``metadata``: spec,
        summary, verdict, provenance, wall time).  If it exists and holds this
        figure's grid, nothing is trained: the figure is only redrawn.
    cache : str
        Directory of the run cache, shared by all figures.
    full, seed, device :
        See :func:`figure_spec`.
    workers : int, optional
        Worker processes (default: the CPU count).
    client : distributed.Client, optional
        Run on a Dask cluster instead.
    progress : bool
    provenance : dict, optional
        Stored in the metadata (command line, machine, ...).
    **overrides
        Passed to :func:`figure_spec` (smaller grids).

    Returns
    -------
    dict
        The metadata: ``spec``, ``summary`` (with ``lines`` and ``verdict``),
        ``wall_time_s``, ``redrawn`` (True when only redrawn).

    Raises
    ------
    DataMismatch
        ``data`` holds another grid.
    KeyboardInterrupt
        On Ctrl-C; finished runs are in the cache and unfinished ones keep a
        checkpoint: the next call continues them.
    """
    import time

    spec = figure_spec(number, full=full, seed=seed, device=device, **overrides)
    if os.path.exists(data):
        try:
            arr, meta = load_figure_data(data)
        except (OSError, ValueError, KeyError) as exc:
            raise DataMismatch(f"{data} is not a figure data file ({exc}); choose another --data path") from None
        if meta.get("spec") != spec:
            raise DataMismatch(f"{data} holds another grid (figure {meta.get('spec', {}).get('figure')}, "
                               f"full={meta.get('spec', {}).get('full')}, seeds {meta.get('spec', {}).get('seeds')}); "
                               "choose another --data path")
        summary = _summarise(number, arr, meta["summary"], spec)
        draw_figure(number, arr, summary, spec, out)
        return dict(meta, summary=summary, redrawn=True)
    t0 = time.perf_counter()
    arr, summary = build_figure(number, spec, cache, workers=workers, client=client, progress=progress)
    wall = time.perf_counter() - t0
    from .config import ENGINE_VERSION, code_fingerprint

    meta = {"spec": spec, "summary": summary, "wall_time_s": round(wall, 1),
            "engine": ENGINE_VERSION, "code": code_fingerprint(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **(provenance or {})}
    _save_data(data, arr, meta)
    draw_figure(number, arr, summary, spec, out)
    return dict(meta, redrawn=False)
