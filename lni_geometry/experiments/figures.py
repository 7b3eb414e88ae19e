"""The seed paper's training figures (2 to 6) as small offline experiments.

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
"""

from __future__ import annotations

import datetime
import json
import math
import os

import numpy as np

from .engine import RunConfig

__all__ = ["FIGURES", "DataMismatch", "build_figure", "cache_status", "draw_figure", "figure_spec",
           "load_figure_data", "make_figure"]

FIGURES = (2, 3, 4, 5, 6)

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

#: What each figure tests: the paper's claim, in one line.
CLAIMS = {
    2: "Paper Fig. 2: Lion's sign angle lies above the isotropic estimate (37.07 deg) and grows "
       "with the learning rate; added: the angle budget (tails T, heterogeneity H) says why.",
    3: "Paper Fig. 3: Enim with its angle calibrated to Lion's observed angle trains like Lion "
       "across learning rates (the sign's rotation noise stands in for the sign).",
    4: "Paper Fig. 4: with weight decay Lion becomes unstable: traced weights drift to 1/lambda, "
       "normalisation biases with near-zero momentum receive gradient again, the largest weights "
       "move along themselves.",
    5: "Paper Fig. 5: over a grid of lr x angle, where the best angle lies for each lr, against "
       "Lion's observed angle; angle 0 is normalised SGD with Lion's momentum.",
    6: "Paper Fig. 6: Lion leaves more exactly-zero gradients (dead units, momentum tracing) than "
       "Enim, and its normalisation biases spread further.",
}


class DataMismatch(ValueError):
    """A figure data file holds another grid than the one asked for."""


# --- specs -------------------------------------------------------------------------


def figure_spec(number, *, full=False, seed=0, device="cpu", **overrides):
    """The grid of runs of Figure ``number`` (a JSON-able dict).

    Parameters
    ----------
    number : {2, 3, 4, 5, 6}
    full : bool
        The larger grid (more learning rates, seeds, steps and angles).
    seed : int
        First seed; the figure uses ``seed .. seed + k - 1``.
    device : {"cpu", "cuda"}
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
    base = dict(FULL_BASE if full else BASE, device=device)
    k = 5 if full else 3
    spec = {"figure": number, "full": bool(full), "base": base,
            "seeds": [int(seed) + i for i in range(k)], "lrs": list(FULL_LRS if full else LRS)}
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
    for key, value in overrides.items():
        if key in ("steps", "width", "batch_size", "eval_every", "network"):
            spec["base"] = dict(spec["base"], **{key: value})
        elif key in spec and key not in ("figure", "full", "base"):
            spec[key] = [float(v) if key != "seeds" else int(v) for v in value] if isinstance(value, (list, tuple)) else value
        else:
            raise ValueError(f"figure {number} has no setting {key!r}")
    RunConfig(**spec["base"])  # validates the base configuration
    if number == 6 and not set(spec["hist_lrs"]) <= set(spec["lrs"]):
        raise ValueError(f"hist_lrs {spec['hist_lrs']} must be among lrs {spec['lrs']}")
    return spec


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


_BUILDERS = {2: _build2, 3: _build3, 4: _build4, 5: _build5, 6: _build6}


# --- verdicts: what the numbers say, computed ------------------------------------------


def _ms(x):
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x)), float(np.std(x, ddof=1)) if x.size > 1 else 0.0


def _spearman(x, y):
    from scipy import stats

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    return float(stats.spearmanr(x[ok], y[ok])[0])


def _report(number, arr, summary, spec):
    """Lines for the terminal and the verdict (computed from the arrays)."""
    deg = np.degrees
    lines, verdict = [], []
    if number == 2:
        iso, sd = summary["iso_mean"], summary["iso_std"]
        lines.append(f"n = {summary['n']} parameters; isotropic law: {deg(iso):.2f} +- {deg(sd):.2f} deg (1 sd)")
        for i, lr in enumerate(arr["lrs"]):
            a = arr["med_angle"][i]
            acc_m, acc_s = _ms(arr["test_acc"][i])
            lines.append(
                f"lr {lr:8.1e}: test acc {acc_m:.3f} +- {acc_s:.3f}; sign angle {deg(a.mean()):5.1f} deg "
                f"[{deg(a.min()):.1f}, {deg(a.max()):.1f}]; tails alone {deg(arr['med_angle_tails'][i].mean()):5.1f} "
                f"(T {arr['med_T'][i].mean():.3f}), heterogeneity alone {deg(arr['med_angle_het'][i].mean()):5.1f} "
                f"(H {arr['med_H'][i].mean():.3f}); tail index of c {np.nanmean(arr['tail_c'][i]):.2f}, "
                f"alpha for the angle {arr['alpha_for_angle'][i]:.2f}")
        above = arr["med_angle"] > iso + 3 * sd
        verdict.append(f"angle above the isotropic 3-sd band in {int(above.sum())} of {above.size} runs "
                       f"({'reproduced' if above.all() else 'not in every run'})")
        loglr = np.log10(np.repeat(arr["lrs"][:, None], arr["med_angle"].shape[1], 1)).ravel()
        rho = _spearman(loglr, arr["med_angle"].ravel())
        verdict.append(f"angle vs log lr: Spearman rho {rho:.2f} over all runs "
                       f"({'grows with lr' if rho > 0.5 else 'no clear growth with lr'})")
        dt = deg(arr["med_angle_tails"].mean(1))
        dh = deg(arr["med_angle_het"].mean(1))
        verdict.append(f"excess over {deg(np.arccos(np.sqrt(2 / np.pi))):.2f} deg from tails alone "
                       f"{dt.min() - 37.07:.1f}..{dt.max() - 37.07:.1f} deg, from heterogeneity alone "
                       f"{dh.min() - 37.07:.1f}..{dh.max() - 37.07:.1f} deg; growth over the lrs: tails "
                       f"rho {_spearman(np.log10(arr['lrs']), dt):.2f}, heterogeneity rho "
                       f"{_spearman(np.log10(arr['lrs']), dh):.2f}")
    elif number == 3:
        worse = 0
        for i, lr in enumerate(arr["lrs"]):
            ml, sl = _ms(arr["acc_lion"][i])
            mc, sc = _ms(arr["acc_enim_cal"][i])
            me, se = _ms(arr["acc_enim_lion"][i])
            lines.append(f"lr {lr:8.1e}: Lion {ml:.3f} +- {sl:.3f}; Enim at {deg(arr['cal_angle'][i]):.1f} deg "
                         f"{mc:.3f} +- {sc:.3f}; Enim angle='lion' {me:.3f} +- {se:.3f}")
            k = arr["acc_lion"].shape[1]
            if mc < ml - 2 * math.sqrt((sl ** 2 + sc ** 2) / k) - 1e-9:
                worse += 1
        verdict.append(f"calibrated Enim below Lion by more than 2 standard errors at {worse} of "
                       f"{len(arr['lrs'])} lrs ({'reproduced' if worse == 0 else 'not everywhere'})")
    elif number == 5:
        acc = arr["acc"].mean(axis=2)
        best = arr["angles_deg"][np.argmax(acc, axis=1)]
        for i, lr in enumerate(arr["lrs"]):
            row = "  ".join(f"{a:.0f}:{m:.3f}+-{s:.3f}" for a, m, s in
                            zip(arr["angles_deg"], acc[i], arr["acc"][i].std(axis=1, ddof=1)))
            lines.append(f"lr {lr:8.1e}: best angle {best[i]:.0f} deg, Lion's angle "
                         f"{deg(arr['lion_angle'][i]):.1f} deg; acc by angle {row}")
        gain = acc.max(axis=1) - acc[:, 0]
        k = arr["acc"].shape[2]
        sd = arr["acc"].std(axis=2, ddof=1)
        parts = []
        for i, lr in enumerate(arr["lrs"]):
            b = int(np.argmax(acc[i]))
            se = np.sqrt((sd[i, b] ** 2 + sd[i] ** 2) / k)
            tied = [f"{a:.0f}" for j, a in enumerate(arr["angles_deg"]) if acc[i, b] - acc[i, j] <= 2 * se[j]]
            parts.append(f"{lr:.0e}: {best[i]:.0f} deg (within 2 SE of it: {', '.join(tied)})")
        verdict.append("best angle per lr: " + "; ".join(parts))
        verdict.append("gain of the best angle over angle 0 per lr: "
                       + ", ".join(f"{g:+.3f}" for g in gain))
        near = [int(np.argmin(np.abs(arr["angles_deg"] - deg(a)))) for a in arr["lion_angle"]]
        loss_at_lion = [acc[i].max() - acc[i, j] for i, j in enumerate(near)]
        verdict.append("accuracy lost at the grid angle nearest Lion's angle vs the best: "
                       + ", ".join(f"{x:.3f}" for x in loss_at_lion))
    elif number == 6:
        zl = arr["zero_frac_lion"]
        zc = arr["zero_frac_enim_cal"]
        ze = arr["zero_frac_enim"].mean(2)
        k = zl.shape[1]
        for i, lr in enumerate(arr["lrs"]):
            enim = ", ".join(f"{a:.0f} deg {ze[i, j]:.4f}" for j, a in enumerate(arr["angles_deg"]))
            lines.append(f"lr {lr:8.1e}: zero-gradient fraction Lion {zl[i].mean():.4f} +- {zl[i].std(ddof=1):.4f}, "
                         f"Enim calibrated ({deg(arr['cal_angle'][i]):.1f} deg) {zc[i].mean():.4f} +- "
                         f"{zc[i].std(ddof=1):.4f}; Enim {enim}")
        se = np.sqrt((zl.var(1, ddof=1) + zc.var(1, ddof=1)) / k)
        diff = zl.mean(1) - zc.mean(1)
        live = (zl.mean(1) > 0) | (zc.mean(1) > 0)
        more = int(np.sum(live & (diff > 2 * se)))
        less = int(np.sum(live & (diff < -2 * se)))
        verdict.append(f"Lion vs Enim calibrated to its angle, at the {int(live.sum())} lrs with zero gradients: "
                       f"Lion more by > 2 SE at {more}, fewer at {less}, within 2 SE at {int(live.sum()) - more - less}")
        lo = int(np.sum(zl.mean(1)[:, None] < ze[:, :-1]))
        verdict.append(f"Enim at the smaller fixed angles ({', '.join(f'{a:.0f}' for a in arr['angles_deg'][:-1])} deg) "
                       f"has more zero gradients than Lion in {lo} of {ze[:, :-1].size} (lr, angle) cells")
        for h, lr in enumerate(arr["hist_lrs"]):
            b = arr["norm_biases"][h]
            per_seed = b.std(axis=2)  # [optimizer, seed]
            verdict.append(f"sd of the normalisation biases at lr {lr:.0e} (mean +- sd over seeds): Lion "
                           f"{per_seed[0].mean():.3f} +- {per_seed[0].std(ddof=1):.3f}, Enim calibrated "
                           f"{per_seed[1].mean():.3f} +- {per_seed[1].std(ddof=1):.3f}")
            sds = ", ".join(f"{np.std(b[j]):.3f}" for j in range(b.shape[0]))
            lines.append(f"norm biases at lr {lr:.0e}: sd over coordinates and seeds, Lion, Enim calibrated, Enim "
                         + "/".join(f"{a:.0f}" for a in arr["angles_deg"]) + f" deg: {sds}")
    elif number == 4:
        half = arr["loss"].shape[2] // 2
        for w, wd in enumerate(arr["weight_decays"]):
            acc = arr["test_acc"][w]
            late = acc[:, acc.shape[1] // 2:]
            drops = np.sum(np.diff(acc, axis=1) < -0.2, axis=1)
            q = arr["w_abs_q95"][w][:, -1]
            lines.append(
                f"wd {wd:g}: final test acc {_ms(acc[:, -1])[0]:.3f} +- {_ms(acc[:, -1])[1]:.3f}; late test acc sd "
                f"{late.std(axis=1).mean():.3f}; drops > 20 points {drops.tolist()}; q95|w| end "
                f"{q.mean():.3f}{f' (1/lambda = {1 / wd:.3g})' if wd else ''}; revived biases per step "
                f"{np.nanmean(arr['norm_bias_revived'][w][:, half:]):.2f}; tracing biases per step "
                f"{np.nanmean(arr['norm_bias_tracing'][w][:, half:]):.2f}; cos(top 5% w, update) "
                f"{np.nanmean(arr['cos_top5'][w][:, half:]):+.3f}")
        sd = [arr["test_acc"][w][:, arr["test_acc"].shape[2] // 2:].std(axis=1).mean()
              for w in range(len(arr["weight_decays"]))]
        verdict.append("late test-accuracy sd by weight decay: "
                       + ", ".join(f"{wd:g}: {s:.3f}" for wd, s in zip(arr["weight_decays"], sd))
                       + (" (less stable with weight decay)" if max(sd[1:]) > 2 * sd[0] else
                          " (weight decay does not make it clearly less stable)"))
    return lines, verdict


def _status(k, total):
    """'reproduced' (all ``total``), 'not reproduced' (none) or 'partly' (the evidence gives ``k``)."""
    if k == total:
        return "reproduced"
    if k == 0:
        return "not reproduced"
    return "partly"


def _checks(number, arr, summary, spec):
    """One line per claim of the paper that the figure tests: the claim, whether the
    small task shows it, and the numbers it rests on (computed from the arrays; the
    criteria are fixed in this code, never chosen by the outcome)."""
    deg = np.degrees
    out = []
    if number == 2:
        iso, sd = summary["iso_mean"], summary["iso_std"]
        above = arr["med_angle"] > iso + 3 * sd
        out.append(f"angle above the isotropic 3-sd band ({deg(iso):.2f} +- {deg(3 * sd):.2f} deg): "
                   f"{_status(int(above.sum()), above.size)} ({int(above.sum())} of {above.size} runs, "
                   f"angle {deg(arr['med_angle'].mean(1).min()):.1f}..{deg(arr['med_angle'].mean(1).max()):.1f} deg)")
        loglr = np.log10(np.repeat(arr["lrs"][:, None], arr["med_angle"].shape[1], 1)).ravel()
        rho = _spearman(loglr, arr["med_angle"].ravel())
        m = arr["med_angle"].mean(1)
        falls = [f"{arr['lrs'][i]:.0e}->{arr['lrs'][i + 1]:.0e}" for i in range(len(m) - 1) if m[i + 1] < m[i]]
        out.append(f"angle grows with the lr: {'reproduced' if rho > 0.5 else 'not reproduced'} (Spearman rho "
                   f"{rho:.2f} over all runs" + (f"; falls at {', '.join(falls)})" if falls else "; monotone)"))
        dt, dh = deg(arr["med_angle_tails"].mean(1)), deg(arr["med_angle_het"].mean(1))
        lim = deg(np.arccos(np.sqrt(2 / np.pi)))
        het_more = int(np.sum(dh > dt))
        rh, rt = _spearman(np.log10(arr["lrs"]), dh), _spearman(np.log10(arr["lrs"]), dt)
        out.append(f"why (open in the paper): heterogeneity H makes more of the excess than tails T at {het_more} of "
                   f"{len(dh)} lrs (H alone +{dh.min() - lim:.1f}..+{dh.max() - lim:.1f} deg, T alone "
                   f"{dt.min() - lim:+.1f}..+{dt.max() - lim:.1f} deg); growth with lr: H rho {rh:.2f}, T rho {rt:.2f}")
        k = arr["tail_c"].shape[1]
        t_m = np.nanmean(arr["tail_c"], 1)
        t_se = np.nanstd(arr["tail_c"], 1, ddof=1) / math.sqrt(k) if k > 1 else np.zeros_like(t_m)
        se = np.sqrt(t_se ** 2 + np.nan_to_num(arr["alpha_for_angle_se"]) ** 2)
        agree = np.abs(t_m - arr["alpha_for_angle"]) <= 2 * se
        out.append(f"one stable law explains the angle (tail index of c = alpha of the observed angle within 2 SE): "
                   f"at {int(np.sum(agree))} of {len(agree)} lrs")
    elif number == 3:
        k = arr["acc_lion"].shape[1]
        worse = better = 0
        for i in range(len(arr["lrs"])):
            ml, sl = _ms(arr["acc_lion"][i])
            mc, sc = _ms(arr["acc_enim_cal"][i])
            se = math.sqrt((sl ** 2 + sc ** 2) / k)
            worse += mc < ml - 2 * se - 1e-9
            better += mc > ml + 2 * se + 1e-9
        L = len(arr["lrs"])
        bad = [f"{lr:.0e}" for i, lr in enumerate(arr["lrs"])
               if _ms(arr["acc_enim_cal"][i])[0] < _ms(arr["acc_lion"][i])[0]
               - 2 * math.sqrt((_ms(arr["acc_lion"][i])[1] ** 2 + _ms(arr["acc_enim_cal"][i])[1] ** 2) / k) - 1e-9]
        out.append(f"Enim at Lion's angle trains like Lion (final accuracy within 2 SE): "
                   f"{_status(L - worse - better, L)} (worse at {worse}" + (f" [lr {', '.join(bad)}]" if bad else "")
                   + f", better at {better} of {L} lrs)")
        d = deg(arr["cal_angle"][:, None] - arr["enim_cal_sign_angle"])
        out.append(f"the sign angle of c under calibrated Enim is below the calibrated angle by "
                   f"{np.median(d, 1).min():.1f}..{np.median(d, 1).max():.1f} deg (Lion's angle is partly made by "
                   "Lion's own trajectory)")
    elif number == 4:
        wds = arr["weight_decays"]
        half = arr["loss"].shape[2] // 2
        pos = [w for w, wd in enumerate(wds) if wd > 0]
        q = arr["w_abs_q95"][:, :, -1].mean(1)
        near = [abs(q[w] * wds[w] - 1) < 0.1 for w in pos]
        out.append(f"the largest |w| drift to 1/lambda (q95 |w| at the end within 10%): {_status(sum(near), len(pos))} ("
                   + ", ".join(f"lambda {wds[w]:g}: {q[w]:.3g} vs {1 / wds[w]:.3g}" for w in pos)
                   + (f"; no decay: {q[0]:.3g}" if wds[0] == 0 else "") + ")")
        acc = arr["test_acc"]
        sd = acc[:, :, acc.shape[2] // 2:].std(axis=2).mean(1)
        unstable = [sd[w] > 2 * sd[0] for w in pos] if wds[0] == 0 else []
        drops = np.sum(np.diff(acc, axis=2) < -0.2, axis=2).sum(1)
        out.append(f"weight decay makes Lion unstable (late test-accuracy sd > 2x the control's): "
                   f"{_status(sum(unstable), len(pos)) if unstable else 'no control'} (sd "
                   + ", ".join(f"{s:.3f}" for s in sd) + "; drops > 20 points " + ", ".join(str(int(x)) for x in drops)
                   + " for lambda " + ", ".join(f"{w:g}" for w in wds) + ")")
        rev = arr["norm_bias_revived"][:, :, half:].mean(2)  # [wd, seed]
        k = rev.shape[1]
        more = [rev[w].mean() > rev[0].mean() + 2 * math.sqrt((rev[w].var(ddof=1) + rev[0].var(ddof=1)) / k)
                for w in pos] if wds[0] == 0 and k > 1 else []
        out.append(f"BN biases with near-zero momentum receive gradient again, more with weight decay: "
                   f"{_status(sum(more), len(pos)) if more else 'no control'} (per step, 2nd half: "
                   + ", ".join(f"{r:.3f}" for r in rev.mean(1)) + f" of {summary['norm_bias_coordinates']})")
        cos = np.nanmean(arr["cos_top5"][:, :, half:], axis=(1, 2))
        along = [cos[w] > 0.5 for w in pos]
        out.append(f"the largest weights move along themselves with weight decay (cos > 0.5): "
                   f"{_status(sum(along), len(pos))} (cos " + ", ".join(f"{c:+.2f}" for c in cos)
                   + " for lambda " + ", ".join(f"{w:g}" for w in wds) + ")")
    elif number == 5:
        acc = arr["acc"]
        m, k = acc.mean(2), acc.shape[2]
        sd = acc.std(2, ddof=1) if k > 1 else np.zeros_like(m)
        ang = arr["angles_deg"]
        tied_lion, zero_worse = 0, []
        for i, lr in enumerate(arr["lrs"]):
            b = int(np.argmax(m[i]))
            se = np.sqrt((sd[i, b] ** 2 + sd[i] ** 2) / k)
            tied = m[i, b] - m[i] <= 2 * se + 1e-12
            j = int(np.argmin(np.abs(ang - deg(arr["lion_angle"][i]))))
            tied_lion += bool(tied[j])
            if not tied[0]:
                zero_worse.append(f"{lr:.0e} (by {m[i, b] - m[i, 0]:.2f})")
        L = len(arr["lrs"])
        out.append(f"Lion's angle lies among the best angles (grid angle nearest it within 2 SE of the best): "
                   f"{_status(tied_lion, L)} ({tied_lion} of {L} lrs)")
        out.append("sign noise helps at large lr (angle 0, normalised SGD, more than 2 SE below the best): "
                   + ("at lr " + ", ".join(zero_worse) if zero_worse else "at no lr"))
    elif number == 6:
        zl, zc = arr["zero_frac_lion"], arr["zero_frac_enim_cal"]
        k = zl.shape[1]
        se = np.sqrt((zl.var(1, ddof=1) + zc.var(1, ddof=1)) / k) if k > 1 else np.zeros(len(zl))
        diff = zl.mean(1) - zc.mean(1)
        live = (zl.mean(1) > 0) | (zc.mean(1) > 0)
        more = int(np.sum(live & (diff > 2 * se)))
        less = int(np.sum(live & (diff < -2 * se)))
        out.append(f"Lion has more exactly-zero gradients than Enim at Lion's angle (> 2 SE): "
                   f"{_status(more, int(live.sum()))} (more at {more}, fewer at {less}, within 2 SE at "
                   f"{int(live.sum()) - more - less} of the {int(live.sum())} lrs with any; Lion "
                   + ", ".join(f"{x:.3f}" for x in zl.mean(1)[live]) + " vs Enim "
                   + ", ".join(f"{x:.3f}" for x in zc.mean(1)[live]) + ")")
        wider, parts = 0, []
        for h, lr in enumerate(arr["hist_lrs"]):
            s = arr["norm_biases"][h].std(axis=2)  # [optimizer, seed]
            se_h = math.sqrt((s[0].var(ddof=1) + s[1].var(ddof=1)) / s.shape[1]) if s.shape[1] > 1 else 0.0
            wider += s[0].mean() > s[1].mean() + 2 * se_h
            parts.append(f"lr {lr:.0e}: sd {s[0].mean():.2f} vs {s[1].mean():.2f}")
        out.append(f"Lion's normalisation biases spread further than Enim's at Lion's angle (> 2 SE): "
                   f"{_status(wider, len(arr['hist_lrs']))} ({'; '.join(parts)})")
    return out


# --- drawing ----------------------------------------------------------------------


def _band(ax, x, y, color, label=None):
    """Seed mean as a line, min..max over seeds as a band (y: [seed, x])."""
    ax.fill_between(x, np.nanmin(y, 0), np.nanmax(y, 0), color=color, alpha=0.2, lw=0)
    ax.plot(x, np.nanmean(y, 0), color=color, lw=1.2, label=label)


def _errbar(ax, x, y, label, color=None, marker="o", shift=1.0):
    """Mean +- sd over seeds (y: [x, seed]) with each seed as a dot."""
    m, s = np.nanmean(y, 1), np.nanstd(y, 1, ddof=1) if y.shape[1] > 1 else np.zeros(len(y))
    line = ax.errorbar(np.asarray(x) * shift, m, yerr=s, marker=marker, ms=4, capsize=3, label=label, color=color)
    c = line[0].get_color()
    for j in range(y.shape[1]):
        ax.plot(np.asarray(x) * shift, y[:, j], ".", color=c, alpha=0.35, ms=3)
    return c


def _smooth(y, w=25):
    y = np.asarray(y, dtype=np.float64)
    if y.shape[-1] < w:
        return y
    k = np.ones(w) / w
    return np.apply_along_axis(lambda r: np.convolve(np.nan_to_num(r), k, mode="valid"), -1, y)


def _angle_colors(n):
    """Colours of Enim's angles (viridis, without its pale yellow end)."""
    cmap = __import__("matplotlib").colormaps["viridis"]
    return [cmap(0.85 * j / max(1, n - 1)) for j in range(n)]


def _draw(number, arr, summary, spec, ax_list, fig):
    from .. import plot

    deg = np.degrees
    lion_c, cal_c = plot.COLORS[1], "k"
    if number == 2:
        ax0, ax1, ax2, ax3 = ax_list
        lrs = arr["lrs"]
        _errbar(ax0, lrs, arr["test_acc"], "Lion", color=plot.COLORS[0])
        ax0.set(xscale="log", xlabel="learning rate", ylabel="final test accuracy", ylim=(0, 1.02),
                title="(a) Lion's accuracy (mean +- sd, dots: seeds)")
        steps = np.arange(1, arr["sign_angle"].shape[2] + 1)
        iso, sd = deg(summary["iso_mean"]), deg(summary["iso_std"])
        for i, lr in enumerate(lrs):
            _band(ax1, steps, deg(arr["sign_angle"][i]), _angle_colors(len(lrs))[i], f"lr {lr:.0e}")
        ax1.axhspan(iso - 3 * sd, iso + 3 * sd, color="k", alpha=0.15)
        ax1.axhline(iso, color="k", ls="--", lw=1, label=f"isotropic mean\n{iso:.2f} deg (+-3 sd)")
        ax1.set(xlabel="step", ylabel="sign angle of c (deg)",
                title="(b) Lion's sign angle along training\n(mean, band: min..max over seeds)")
        plot.legend_outside(ax1)
        _errbar(ax2, lrs, deg(arr["med_angle"]), "sign angle (observed)", color=plot.COLORS[0])
        _errbar(ax2, lrs, deg(arr["med_angle_het"]), "heterogeneity H alone", color=plot.COLORS[1], marker="s",
                shift=1.08)
        _errbar(ax2, lrs, deg(arr["med_angle_tails"]), "tails T alone", color=plot.COLORS[2], marker="^",
                shift=0.93)
        ax2.axhline(iso, color="k", ls="--", lw=1, label="isotropic mean")
        ax2.set(xscale="log", xlabel="learning rate", ylabel="angle (deg), median of 2nd half",
                title="(c) angle budget: cos(angle) = sqrt(2/pi) T H")
        plot.legend_outside(ax2)
        _errbar(ax3, lrs, arr["tail_c"], f"tail index of c\nin {summary['largest_tensor']['name']}",
                color=plot.COLORS[3])
        ax3.plot(lrs, arr["alpha_for_angle"], "k*--", ms=7, label="alpha of one stable\nlaw with the angle")
        ax3.axhline(2, color="0.6", lw=0.8)
        ax3.set(xscale="log", xlabel="learning rate", ylabel="alpha", title="(d) one stable law?")
        plot.legend_outside(ax3)
    elif number == 3:
        ax0, ax1 = ax_list
        lrs = arr["lrs"]
        _errbar(ax0, lrs, arr["acc_lion"], "Lion", color=lion_c, marker="*")
        _errbar(ax0, lrs, arr["acc_enim_cal"], "Enim, angle = Lion's\nmedian angle", color=cal_c, marker="D",
                shift=1.1)
        _errbar(ax0, lrs, arr["acc_enim_lion"], "Enim, angle='lion'\n(Lion's, per step)", color=plot.COLORS[2],
                marker="^", shift=0.91)
        ax0.set(xscale="log", xlabel="learning rate", ylabel="final test accuracy", ylim=(0, 1.02),
                title="(a) Enim calibrated to Lion vs Lion (mean +- sd)")
        plot.legend_outside(ax0)
        ax1.plot(lrs, deg(arr["cal_angle"]), "*-", color=lion_c, label="calibrated angle\n(Lion's median)")
        _errbar(ax1, lrs, deg(arr["enim_cal_sign_angle"]), "sign angle of c\nunder calibrated Enim", color=cal_c,
                marker="D")
        ax1.set(xscale="log", xlabel="learning rate", ylabel="angle (deg)", title="(b) the calibration")
        plot.legend_outside(ax1)
    elif number == 5:
        ax0, ax1 = ax_list
        acc = arr["acc"]
        m, s = acc.mean(2), acc.std(2, ddof=1)
        L, A = m.shape
        im = ax0.imshow(m.T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                        extent=(-0.5, L - 0.5, -0.5, A - 0.5))
        fig.colorbar(im, ax=ax0, label="final test accuracy (mean over seeds)")
        for i in range(L):
            for j in range(A):
                ax0.text(i, j, f"{m[i, j]:.2f}\n+-{s[i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                         color="w" if m[i, j] < 0.6 else "k")
        ang = arr["angles_deg"]
        # the grid's index as a function of the angle, linear beyond its ends
        la = deg(arr["lion_angle"])
        pos = np.interp(la, ang, np.arange(A))
        if A > 1:
            pos = np.where(la > ang[-1], A - 1 + (la - ang[-1]) / (ang[-1] - ang[-2]), pos)
            pos = np.where(la < ang[0], (la - ang[0]) / (ang[1] - ang[0]), pos)
        ax0.plot(np.arange(L), np.clip(pos, -0.5, A - 0.5), "*-", color=lion_c, ms=9, label="Lion's observed angle")
        best = np.argmax(m, axis=1)
        ax0.plot(np.arange(L), best, "s", color="m", mfc="none", ms=14, mew=1.5, label="best Enim angle per lr")
        ax0.set_xticks(range(L), [f"{x:.0e}" for x in arr["lrs"]])
        ax0.set_yticks(range(A), [f"{a:.0f}" for a in ang])
        ax0.grid(False)
        ax0.set(xlabel="learning rate", ylabel="Enim angle (deg)", title="(a) Enim's accuracy over lr x angle")
        for j, a in enumerate(ang):
            _errbar(ax1, arr["lrs"], acc[:, j, :], f"Enim {a:.0f} deg", color=_angle_colors(A)[j])
        _errbar(ax1, arr["lrs"], arr["acc_lion"], "Lion", color=lion_c, marker="*")
        ax1.set(xscale="log", xlabel="learning rate", ylabel="final test accuracy", ylim=(0, 1.02),
                title="(b) the same as curves (mean +- sd)")
        plot.figure_legend(fig, ncols=A + 3)
    elif number == 6:
        ax0 = ax_list[0]
        lrs = arr["lrs"]
        na = len(arr["angles_deg"])
        names = ["Lion", "Enim, Lion's angle"] + [f"Enim {a:.0f} deg" for a in arr["angles_deg"]]
        colors = [lion_c, cal_c] + _angle_colors(na)
        _errbar(ax0, lrs, arr["zero_frac_lion"], names[0], color=colors[0], marker="*")
        _errbar(ax0, lrs, arr["zero_frac_enim_cal"], names[1], color=colors[1], marker="D", shift=1.08)
        for j in range(na):
            _errbar(ax0, lrs, arr["zero_frac_enim"][:, j, :], names[2 + j], color=colors[2 + j], shift=0.93)
        ax0.set(xscale="log", xlabel="learning rate", ylabel="mean fraction of exactly-zero gradients",
                title="(a) zero gradients (mean +- sd over seeds)")
        for h, lr in enumerate(arr["hist_lrs"]):
            ax = ax_list[1 + h]
            b = arr["norm_biases"][h]
            edges = np.histogram_bin_edges(b.ravel(), bins=40)
            for j, name in enumerate(names):
                ax.hist(b[j].ravel(), bins=edges, histtype="step", color=colors[j], label=name, lw=1.2)
            ax.set(xlabel="normalisation-layer bias at the end", ylabel="count (all seeds)", yscale="log",
                   title=f"({'bcdefg'[h]}) BN biases at the end, lr {lr:.0e}")
        plot.figure_legend(fig, ncols=len(names))
    elif number == 4:
        ax0, ax1, ax2, ax3 = ax_list
        wds = arr["weight_decays"]
        colors = [plot.COLORS[i % len(plot.COLORS)] for i in range(len(wds))]
        for w, wd in enumerate(wds):
            lab = f"weight decay lambda = {wd:g}"
            for j in range(arr["test_acc"].shape[1]):
                ax0.plot(arr["eval_step"], arr["test_acc"][w, j], color=colors[w], lw=1, alpha=0.8,
                         label=lab if j == 0 else None)
            sm = _smooth(arr["norm_bias_revived"][w])
            _band(ax1, np.arange(sm.shape[1]) + 13, sm, colors[w], lab)
            _band(ax2, np.arange(1, arr["w_abs_q95"].shape[2] + 1), arr["w_abs_q95"][w], colors[w], lab)
            if wd:
                ax2.axhline(1 / wd, color=colors[w], ls="--", lw=0.8)
            sm = _smooth(arr["cos_top5"][w])
            _band(ax3, np.arange(sm.shape[1]) + 13, sm, colors[w], lab)
        ax0.set(xlabel="step", ylabel="test accuracy", ylim=(0, 1.02),
                title=f"(a) Lion lr {spec['lr']:g}: test accuracy (each seed)")
        ax1.set(xlabel="step", ylabel="count per step (25-step mean)",
                title=f"(b) BN biases (of {summary['norm_bias_coordinates']}) with near-zero\n"
                      "momentum that receive a nonzero gradient")
        ax2.set(xlabel="step", ylabel="95% quantile of |w|", yscale="log",
                title="(c) q95 |w| (dashed: 1/lambda)")
        ax3.set(xlabel="step", ylabel="cosine (25-step mean)",
                title="(d) cosine(top 5% |w|, their update)")
        plot.figure_legend(fig, ncols=len(wds))


_LAYOUT = {2: (2, 2, (12, 8.6)), 3: (1, 2, (12, 5.0)), 4: (2, 2, (12, 8.8)), 5: (1, 2, (13, 5.8)),
           6: (1, 3, (15, 5.6))}


def _caption(number, summary, spec, width):
    """The suptitle: the claim tested, the analogue, and per claim whether the small task shows it."""
    import textwrap

    from .. import plot

    base = spec["base"]
    kind = "full grid" if spec["full"] else "default grid"
    seeds = spec["seeds"]
    text = (f"Small analogue: digits, {base['network']} (n = {plot.thousands(summary['n'])}), {base['steps']} steps "
            f"of batch {base['batch_size']}, seeds {seeds[0]}..{seeds[-1]} ({kind}).")
    parts = [textwrap.fill(CLAIMS[number], width), textwrap.fill(text, width)]
    parts += [textwrap.fill(c, width, initial_indent="- ", subsequent_indent="  ") for c in summary.get("checks", [])]
    return "\n".join(parts)


def draw_figure(number, arr, summary, spec, path):
    """Draw Figure ``number`` from its data (no training) into ``path``, in the package's
    style (:func:`lni_geometry.plot.paper_style`; legends beside or below the panels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import plot

    rows, cols, size = _LAYOUT[number]
    with plot.paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=size)
        _draw(number, arr, summary, spec, list(np.ravel(axes)), fig)
        fig.suptitle(_caption(number, summary, spec, int(size[0] * 15.5)), fontsize=8, ha="left", x=0.01)
        plot.save_figure(fig, path, dpi=130)
        plt.close(fig)


# --- the whole figure -------------------------------------------------------------------


def _known_configs(number, spec, cache):
    """The configurations of a figure that can be listed now (Figure 3's calibrated
    Enim runs only once Lion's runs are in the cache)."""
    from .cache import load_result, result_path

    if number == 4:
        return [_lion(spec, spec["lr"], s, weight_decay=wd) for wd in spec["weight_decays"] for s in spec["seeds"]]
    lion = _lion_grid(spec)
    flat = [c for row in lion for c in row]
    if number in (5, 6):
        flat += [c for row in _enim_grid(spec) for cell in row for c in cell]
    if number == 3:
        flat += [_enim(spec, lr, s, "lion") for lr in spec["lrs"] for s in spec["seeds"]]
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
    lines, verdict = _report(number, arr, summary, spec)
    return dict(summary, claim=CLAIMS[number], lines=lines, verdict=verdict,
                checks=_checks(number, arr, summary, spec))


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
    number : {2, 3, 4, 5, 6}
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
    from .engine import ENGINE_VERSION, code_fingerprint

    meta = {"spec": spec, "summary": summary, "wall_time_s": round(wall, 1),
            "engine": ENGINE_VERSION, "code": code_fingerprint(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **(provenance or {})}
    _save_data(data, arr, meta)
    draw_figure(number, arr, summary, spec, out)
    return dict(meta, redrawn=False)
