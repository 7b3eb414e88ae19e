"""What each training figure tests, and what its numbers say: computed, never written by hand.

:data:`CLAIMS` holds the seed paper's claim behind each figure (Elistratov,
Podivilov, Iuzhakov, Vetrov, "Lion's sign noise can make training more
stable"); :func:`report` and :func:`checks` turn a figure's arrays into the
lines of its caption and, per claim, "reproduced", "partly" or "not
reproduced" with the numbers they rest on, by fixed rules (rank correlations,
and differences between optimizers paired by seed -- the same initial weights and
batch order -- that count beyond :data:`Z_DECIDE` paired standard errors, the
smallest difference the seeds can detect, which every such line states).  :mod:`.figures` stores them with the data and
computes them again whenever a figure is redrawn.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CLAIMS", "Z_DECIDE", "report", "checks", "growth_slopes", "paired_slopes", "sign_effect"]

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
    7: "The paper's open hypothesis: 'Lion regularizes L1-norm of the gradient with a strength "
       "proportional to the learning rate'. Test: does the sign angle of c grow with the lr because of "
       "the sign? Lion against Enim at Lion's angle (the same rotation, no sign) and normalised SGD (no "
       "rotation), paired by seed (same initial weights and batch order).",
}

#: Paired standard errors (over seeds) a difference between optimizers must exceed to
#: count, in Figures 3, 5, 6 and 7.
Z_DECIDE = 2.0



def _ms(x):
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x)), float(np.std(x, ddof=1)) if x.size > 1 else 0.0


def _spearman(x, y):
    from scipy import stats

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    return float(stats.spearmanr(x[ok], y[ok])[0])


# --- statistics that both the caption lines and the checks rest on --------------------


def _angle_vs_band(arr, summary):
    """Figure 2: which runs' angles lie above the isotropic 3-sd band, and Spearman's rho
    of angle against log lr over all runs."""
    above = arr["med_angle"] > summary["iso_mean"] + 3 * summary["iso_std"]
    loglr = np.log10(np.repeat(arr["lrs"][:, None], arr["med_angle"].shape[1], 1)).ravel()
    return above, _spearman(loglr, arr["med_angle"].ravel())


def _paired(a, b, z=Z_DECIDE):
    """Paired by seed (the last axis: same initial weights and batch order): the mean
    difference ``D = mean(a - b)``, its standard error ``sd(a - b) / sqrt(k)`` and the
    side: -1 where ``D < -z SE``, +1 where ``D > z SE``, 0 within (``z SE`` is the smallest
    difference the seeds can detect)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    k = d.shape[-1]
    mean = d.mean(axis=-1)
    se = d.std(axis=-1, ddof=1) / math.sqrt(k) if k > 1 else np.zeros_like(mean)
    side = np.where(mean < -z * se - 1e-12, -1, np.where(mean > z * se + 1e-12, 1, 0))
    return mean, se, side


def _detectable(se):
    """The range of the smallest detectable differences, ``Z_DECIDE`` paired standard errors."""
    se = np.asarray(se, dtype=np.float64).ravel()
    return (f"paired by seed: SE {se.min():.3f}..{se.max():.3f}, smallest detectable difference "
            f"(2 SE) {Z_DECIDE * se.min():.3f}..{Z_DECIDE * se.max():.3f}")


def _calibrated_vs_lion(arr):
    """Figure 3, per lr: Lion's and calibrated Enim's final accuracy (mean, sd over seeds),
    the paired difference Enim - Lion (mean, SE over seeds) and where Enim lies: -1 more
    than 2 paired standard errors below Lion, +1 above, 0 within."""
    d, se, side = _paired(arr["acc_enim_cal"], arr["acc_lion"])
    rows = []
    for i in range(len(arr["lrs"])):
        ml, sl = _ms(arr["acc_lion"][i])
        mc, sc = _ms(arr["acc_enim_cal"][i])
        rows.append((ml, sl, mc, sc, float(d[i]), float(se[i]), int(side[i])))
    return rows


def _late_accuracy_sd(arr):
    """Figure 4: sd of the test accuracy over the second half of training, mean over seeds, per weight decay."""
    acc = arr["test_acc"]
    return acc[:, :, acc.shape[2] // 2:].std(axis=2).mean(1)


def _best_angles(arr):
    """Figure 5: mean accuracy ``m[lr, angle]`` over seeds, the best angle's index per lr,
    ``tied[lr, angle]``: within 2 paired standard errors (by seed) of the best, and those
    standard errors ``se[lr, angle]`` (0 at the best)."""
    acc = arr["acc"]
    m = acc.mean(2)
    best = np.argmax(m, axis=1)
    tied = np.zeros(m.shape, dtype=bool)
    se = np.zeros(m.shape)
    for i, b in enumerate(best):
        _, se[i], side = _paired(acc[i], acc[i, b][None, :])
        tied[i] = side >= 0
    return m, best, tied, se


def _zero_gradients_lion_vs_calibrated(arr):
    """Figure 6: at the lrs where either has zero gradients (``live``), the number of lrs
    where Lion has more than calibrated Enim by more than 2 paired standard errors (by
    seed), and fewer; and those standard errors."""
    zl, zc = arr["zero_frac_lion"], arr["zero_frac_enim_cal"]
    _, se, side = _paired(zl, zc)
    live = (zl.mean(1) > 0) | (zc.mean(1) > 0)
    return live, int(np.sum(live & (side > 0))), int(np.sum(live & (side < 0))), se


def report(number, arr, summary, spec):
    """Lines for the terminal and the verdict (computed from the arrays)."""
    deg = np.degrees
    lines, verdict = [], []
    if number == 2:
        iso, sd = summary["iso_mean"], summary["iso_std"]
        above, rho = _angle_vs_band(arr, summary)
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
        verdict.append(f"angle above the isotropic 3-sd band in {int(above.sum())} of {above.size} runs "
                       f"({'reproduced' if above.all() else 'not in every run'})")
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
        rows = _calibrated_vs_lion(arr)
        for i, (lr, (ml, sl, mc, sc, *_)) in enumerate(zip(arr["lrs"], rows)):
            me, se = _ms(arr["acc_enim_lion"][i])
            lines.append(f"lr {lr:8.1e}: Lion {ml:.3f} +- {sl:.3f}; Enim at {deg(arr['cal_angle'][i]):.1f} deg "
                         f"{mc:.3f} +- {sc:.3f}; Enim angle='lion' {me:.3f} +- {se:.3f}")
        worse = sum(row[-1] == -1 for row in rows)
        verdict.append(f"calibrated Enim below Lion by more than 2 paired standard errors at {worse} of "
                       f"{len(arr['lrs'])} lrs ({'reproduced' if worse == 0 else 'not everywhere'})")
    elif number == 5:
        acc, best_index, tied, _ = _best_angles(arr)
        best = arr["angles_deg"][best_index]
        for i, lr in enumerate(arr["lrs"]):
            row = "  ".join(f"{a:.0f}:{m:.3f}+-{s:.3f}" for a, m, s in
                            zip(arr["angles_deg"], acc[i], arr["acc"][i].std(axis=1, ddof=1)))
            lines.append(f"lr {lr:8.1e}: best angle {best[i]:.0f} deg, Lion's angle "
                         f"{deg(arr['lion_angle'][i]):.1f} deg; acc by angle {row}")
        gain = acc.max(axis=1) - acc[:, 0]
        parts = []
        for i, lr in enumerate(arr["lrs"]):
            near_best = [f"{a:.0f}" for j, a in enumerate(arr["angles_deg"]) if tied[i, j]]
            parts.append(f"{lr:.0e}: {best[i]:.0f} deg (within 2 SE of it: {', '.join(near_best)})")
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
        for i, lr in enumerate(arr["lrs"]):
            enim = ", ".join(f"{a:.0f} deg {ze[i, j]:.4f}" for j, a in enumerate(arr["angles_deg"]))
            lines.append(f"lr {lr:8.1e}: zero-gradient fraction Lion {zl[i].mean():.4f} +- {zl[i].std(ddof=1):.4f}, "
                         f"Enim calibrated ({deg(arr['cal_angle'][i]):.1f} deg) {zc[i].mean():.4f} +- "
                         f"{zc[i].std(ddof=1):.4f}; Enim {enim}")
        live, more, less, _ = _zero_gradients_lion_vs_calibrated(arr)
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
        sd = _late_accuracy_sd(arr)
        verdict.append("late test-accuracy sd by weight decay: "
                       + ", ".join(f"{wd:g}: {s:.3f}" for wd, s in zip(arr["weight_decays"], sd))
                       + (" (less stable with weight decay)" if max(sd[1:]) > 2 * sd[0] else
                          " (weight decay does not make it clearly less stable)"))
    elif number == 7:
        return _fig7_report(arr, summary, spec)
    return lines, verdict


# --- Figure 7: growth with the learning rate, paired by seed ---------------------------


def _ols_slope(x, y):
    """Least-squares slope of ``y`` on ``x`` over the finite pairs (nan with fewer than 2)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    xc = x[ok] - x[ok].mean()
    den = float(xc @ xc)
    return float(xc @ (y[ok] - y[ok].mean())) / den if den > 0 else float("nan")


def growth_slopes(y, lrs):
    r"""Growth of ``y`` with the learning rate, per seed: the least-squares slope over ``log10(lr)``.

    .. math:: b_s = \frac{\sum_i (x_i - \bar x)(y_{is} - \bar y_s)}{\sum_i (x_i - \bar x)^2},
              \qquad x_i = \log_{10} \mathrm{lr}_i,

    over the learning rates where ``y`` is finite: the mean change of ``y``
    per decade of learning rate.

    Parameters
    ----------
    y : array_like, shape (..., L, k)
        A quantity per learning rate and seed.
    lrs : array_like, shape (L,)

    Returns
    -------
    numpy.ndarray, shape (..., k)
        ``nan`` for a seed with fewer than 2 finite values.

    Examples
    --------
    >>> growth_slopes([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]], [1e-3, 1e-2, 1e-1]).tolist()
    [2.0, 0.0]
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.log10(np.asarray(lrs, dtype=np.float64))
    flat = y.reshape(-1, y.shape[-2], y.shape[-1])
    out = np.array([[_ols_slope(x, m[:, j]) for j in range(m.shape[1])] for m in flat])
    return out.reshape(y.shape[:-2] + (y.shape[-1],))


def paired_slopes(a, b, lrs):
    """Per seed, the growth slopes (:func:`growth_slopes`) of ``a`` and of ``b`` (each ``[lr, seed]``)
    over the same learning rates: those where both are finite for that seed, so that
    ``sa - sb`` is the slope of the paired difference ``a - b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    return growth_slopes(np.where(both, a, np.nan), lrs), growth_slopes(np.where(both, b, np.nan), lrs)


def _mean_se(x):
    """Mean, standard error (sd / sqrt(k), ddof 1) and k of the finite entries."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    k = x.size
    if k == 0:
        return float("nan"), float("nan"), 0
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(k)) if k > 1 else float("nan"), k


def sign_effect(slope_sign, slope_ref, z=Z_DECIDE):
    r"""Does a quantity grow with the learning rate because of the sign? A paired decision.

    With per-seed growth slopes ``a_s`` (under Lion, with the sign) and
    ``b_s`` (under a reference without the sign, same seeds), the paired
    differences ``d_s = a_s - b_s`` give

    .. math:: D = \bar d, \qquad \mathrm{SE}_D = \frac{\mathrm{sd}(d)}{\sqrt{k}},

    and likewise ``G_a``, ``SE_a`` and ``G_b``, ``SE_b`` for the growths
    themselves.  "Grows" means a mean slope above ``z`` standard errors;
    a difference counts when ``|D| > z SE_D`` (the smallest detectable
    difference).  The decision, in that order:

    - Lion's slope not above ``z SE_a``: ``"undecided"`` (nothing to explain);
    - ``D > z SE_D``: ``"supported"`` if the reference does not grow,
      ``"partly supported"`` if it grows too (the sign adds ``D`` to it);
    - ``D < -z SE_D``: ``"not supported"`` (it grows more without the sign);
    - ``|D| <= z SE_D`` and the reference grows: ``"not supported"`` (it grows
      as much without the sign, within the detectable difference);
    - otherwise ``"undecided"`` (neither the difference nor the reference's
      growth is resolved by the seeds).

    Parameters
    ----------
    slope_sign, slope_ref : array_like, shape (k,)
        Growth per seed, in the direction the hypothesis predicts (pass
        ``-slope`` for a quantity predicted to fall).  Seeds where either is
        ``nan`` are left out.
    z : float
        Standard errors that a difference or a growth must exceed.

    Returns
    -------
    dict
        ``decision``, ``k`` (seeds used), ``d`` (per-seed differences),
        ``D``, ``se_D``, ``detectable`` (``z SE_D``), ``detectable_t``
        (Student's two-sided 95% quantile with ``k - 1`` degrees of freedom
        times ``SE_D``), ``G_sign``, ``se_sign``, ``G_ref``, ``se_ref``,
        ``sign_grows``, ``ref_grows``, ``share`` (``D / G_sign``: the part of
        Lion's growth the sign adds).

    Examples
    --------
    >>> sign_effect([2.0, 2.1, 1.9], [0.0, 0.1, -0.1])["decision"]
    'supported'
    >>> sign_effect([2.0, 2.1, 1.9], [2.05, 2.0, 1.95])["decision"]
    'not supported'
    """
    from scipy import stats

    a = np.asarray(slope_sign, dtype=np.float64).reshape(-1)
    b = np.asarray(slope_ref, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"slope_sign and slope_ref must pair seed by seed, got shapes {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = a - b
    D, se_d, k = _mean_se(d)
    ga, se_a, _ = _mean_se(a)
    gb, se_b, _ = _mean_se(b)
    out = {"k": int(k), "d": d.tolist(), "D": D, "se_D": se_d, "detectable": z * se_d,
           "detectable_t": float(stats.t.ppf(0.975, k - 1)) * se_d if k > 1 else float("nan"),
           "G_sign": ga, "se_sign": se_a, "G_ref": gb, "se_ref": se_b,
           "share": D / ga if ga else float("nan")}
    if k < 2:
        out.update(sign_grows=False, ref_grows=False, decision="undecided")
        return out
    tol = 1e-12
    out["sign_grows"] = bool(ga > z * se_a + tol)
    out["ref_grows"] = bool(gb > z * se_b + tol)
    if not out["sign_grows"]:
        decision = "undecided"
    elif D > z * se_d + tol:
        decision = "partly supported" if out["ref_grows"] else "supported"
    elif D < -z * se_d - tol or out["ref_grows"]:
        decision = "not supported"
    else:
        decision = "undecided"
    out["decision"] = decision
    return out


#: Figure 7's paired comparisons: (with, without), by arm name.
FIG7_PAIRS = (("lion", "enim_lion"), ("lion", "nsgd"), ("enim_lion", "nsgd"))
_ARM_TEXT = {"lion": "Lion", "enim_lion": "Enim at Lion's angle", "nsgd": "normalised SGD"}


def _fig7(arr, spec):
    """Figure 7's statistics: growth slopes per arm and seed, and for each pair of
    :data:`FIG7_PAIRS` the paired decision on the angle and on the raw gradient's
    L1 ratio, the budget's split of the difference, and the per-lr paired differences."""
    arms = list(spec["arms"])
    lrs = arr["lrs"]
    ang = np.degrees(arr["med_angle"])                       # [arm, lr, seed], degrees
    eT, eH = -arr["mean_log_T"], -arr["mean_log_H"]          # ln(sqrt(2/pi)/cos) = eT + eH
    out = {"arms": arms, "slope": growth_slopes(ang, lrs), "slope_T": growth_slopes(eT, lrs),
           "slope_H": growth_slopes(eH, lrs), "slope_grad": growth_slopes(arr["med_grad_ratio"], lrs), "pairs": {}}
    for p, q in FIG7_PAIRS:
        i, j = arms.index(p), arms.index(q)
        sa, sb = paired_slopes(ang[i], ang[j], lrs)
        res = {"angle": sign_effect(sa, sb)}
        for name, e in (("T", eT), ("H", eH), ("excess", eT + eH)):
            ta, tb = paired_slopes(e[i], e[j], lrs)
            res[name] = _mean_se(ta - tb)
            if name == "excess":  # the same decision on ln(sqrt(2/pi)/cos angle)
                res["log_ratio"] = sign_effect(ta, tb)
        ga, gb = paired_slopes(arr["med_grad_ratio"][i], arr["med_grad_ratio"][j], lrs)
        res["grad"] = sign_effect(-ga, -gb)   # the hypothesis: the ratio falls with lr
        d = ang[i] - ang[j]                   # [lr, seed]
        res["per_lr"] = [_mean_se(row) for row in d]
        res["per_lr_T"] = [_mean_se(row) for row in eT[i] - eT[j]]
        res["per_lr_H"] = [_mean_se(row) for row in eH[i] - eH[j]]
        out["pairs"][(p, q)] = res
    return out


def _carrier(res):
    """Which budget factor carries a paired difference of growth: the larger in size, with
    its share of the total when both push the same way, else "(the other opposes)"."""
    dt, dh = res["T"][0], res["H"][0]
    big, small = ("T", "H") if abs(dt) > abs(dh) else ("H", "T")
    name = {"T": "T (tails within tensors)", "H": "H (scales across tensors)"}[big]
    tot = dt + dh
    if dt * dh >= 0 and tot:
        return f"{name}, {res[big][0] / tot:.0%} of it"
    return f"{name}; {small} opposes"


def _fmt_se(m, se, f="+.2f"):
    """``m +- se`` with the same number of decimals for both."""
    return f"{m:{f}} +- {se:{f.lstrip('+')}}"


def _fig7_report(arr, summary, spec):
    deg = np.degrees
    st = _fig7(arr, spec)
    arms = st["arms"]
    lines, verdict = [], []
    k = len(spec["seeds"])
    lines.append(f"n = {summary['n']} parameters; isotropic law: {deg(summary['iso_mean']):.2f} +- "
                 f"{deg(summary['iso_std']):.2f} deg (1 sd); {k} seeds {spec['seeds'][0]}..{spec['seeds'][-1]}, "
                 "paired; quantities over the second half of training")
    for i, lr in enumerate(arr["lrs"]):
        parts = []
        for a, name in enumerate(arms):
            m, sd = _ms(deg(arr["med_angle"][a, i]))
            parts.append(f"{_ARM_TEXT[name]} {m:5.1f} +- {sd:.1f}")
        pd = st["pairs"][("lion", "enim_lion")]["per_lr"][i]
        pn = st["pairs"][("lion", "nsgd")]["per_lr"][i]
        grad = ", ".join(f"{np.mean(arr['med_grad_ratio'][a, i]):.3f}" for a in range(len(arms)))
        acc = ", ".join(f"{np.mean(arr['test_acc'][a, i]):.3f}" for a in range(len(arms)))
        lines.append(f"lr {lr:8.1e}: sign angle of c (deg) {'; '.join(parts)}; paired Lion - Enim "
                     f"{_fmt_se(pd[0], pd[1], '+.1f')}, Lion - nSGD {_fmt_se(pn[0], pn[1], '+.1f')} (SE); "
                     f"raw gradient ||g||_1/(sqrt(n)||g||_2) {grad}; test acc {acc}")
    for a, name in enumerate(arms):
        lines.append(f"growth per seed (deg/decade), {_ARM_TEXT[name]}: "
                     + ", ".join(f"{x:+.2f}" for x in st["slope"][a])
                     + "; in ln(sqrt(2/pi)/cos): T " + ", ".join(f"{x:+.3f}" for x in st["slope_T"][a])
                     + ", H " + ", ".join(f"{x:+.3f}" for x in st["slope_H"][a]))
    g = [_mean_se(st["slope"][a]) for a in range(len(arms))]
    verdict.append("growth of the sign angle with lr (least-squares slope over log10 lr, deg/decade, mean +- SE "
                   "over seeds): " + ", ".join(f"{_ARM_TEXT[n]} {_fmt_se(m, s)}" for n, (m, s, _) in zip(arms, g)))
    for (p, q), res in st["pairs"].items():
        e = res["angle"]
        verdict.append(
            f"paired {_ARM_TEXT[p]} - {_ARM_TEXT[q]}: growth difference {_fmt_se(e['D'], e['se_D'])} deg/decade "
            f"(per seed " + ", ".join(f"{x:+.2f}" for x in e["d"]) + f"; detectable 2 SE = {e['detectable']:.2f}, "
            f"with Student's t on {e['k'] - 1} dof {e['detectable_t']:.2f}); in ln(sqrt(2/pi)/cos) per decade: "
            f"{_fmt_se(*res['excess'][:2], '+.3f')} = T {_fmt_se(*res['T'][:2], '+.3f')} + H "
            f"{_fmt_se(*res['H'][:2], '+.3f')}: carried by {_carrier(res)}")
    gr = st["pairs"][("lion", "enim_lion")]["grad"]
    gs = [_mean_se(st["slope_grad"][a]) for a in range(len(arms))]
    verdict.append("raw gradient ||g||_1/(sqrt(n)||g||_2) per decade of lr: "
                   + ", ".join(f"{_ARM_TEXT[n]} {m:+.4f} +- {s:.4f}" for n, (m, s, _) in zip(arms, gs))
                   + f"; paired fall Lion - Enim {gr['D']:+.4f} +- {gr['se_D']:.4f}")
    same = arr["same_start"]
    verdict.append(f"pairing: the three optimizers start from identical weights in {int(same.sum())} of "
                   f"{same.size} (lr, seed) cells; the batch order is a function of the seed alone")
    return lines, verdict


def _fig7_checks(arr, summary, spec):
    st = _fig7(arr, spec)
    out = []
    le, ln_ = st["pairs"][("lion", "enim_lion")], st["pairs"][("lion", "nsgd")]
    e = le["angle"]
    grows = "reproduced" if e["sign_grows"] else "not reproduced"
    out.append(f"Lion's sign angle grows with lr (slope > 2 SE): {grows} "
               f"({_fmt_se(e['G_sign'], e['se_sign'])} deg/decade over {e['k']} seeds)")
    what = {"supported": "only under Lion: the sign causes the growth",
            "partly supported": "under both, more under Lion: the sign adds to it",
            "not supported": ("more without the sign" if e["D"] < -e["detectable"] else
                              "as much without the sign, within the detectable difference")
                             + ": the sign does not cause it",
            "undecided": "not resolved by these seeds"}
    out.append(
        f"L1 hypothesis as a sign effect (the angle grows with lr more under Lion than under Enim at Lion's angle): "
        f"{e['decision']} - {what[e['decision']]} (Lion - Enim {_fmt_se(e['D'], e['se_D'])} deg/decade, smallest "
        f"detectable 2 SE = {e['detectable']:.2f}; Enim's own growth {_fmt_se(e['G_ref'], e['se_ref'])}; the "
        f"difference in ln(sqrt(2/pi)/cos) per decade, {_fmt_se(*le['excess'][:2], '+.3f')}, is carried by "
        f"{_carrier(le)}: T {_fmt_se(*le['T'][:2], '+.3f')}, H {_fmt_se(*le['H'][:2], '+.3f')})")
    above = [l for l, (m, se, _) in enumerate(le["per_lr"]) if m > Z_DECIDE * se]
    below = [l for l, (m, se, _) in enumerate(le["per_lr"]) if m < -Z_DECIDE * se]
    by_h = sum(abs(le["per_lr_H"][l][0]) > abs(le["per_lr_T"][l][0]) for l in above)
    lrs = arr["lrs"]
    where = ", ".join(f"{lrs[l]:.0e}: {le['per_lr'][l][0]:+.1f}" for l in above)
    out.append(f"the sign raises the angle at a fixed lr (Lion - Enim at Lion's angle > 2 SE): at {len(above)} of "
               f"{len(lrs)} lrs" + (f" ({where} deg), carried by H at {by_h} of them, by T at {len(above) - by_h}"
                                    if above else "") + f"; lower at {len(below)}")
    r = le["log_ratio"]
    out.append(f"the same decision on the log of the L1/L2 ratio, ln(sqrt(2/pi)/cos angle) = -ln T - ln H (no "
               f"arccos: a degree at a large angle is a larger change of the ratio): {r['decision']} (Lion - Enim "
               f"{_fmt_se(r['D'], r['se_D'], '+.3f')} per decade, detectable {r['detectable']:.3f}; growth Lion "
               f"{_fmt_se(r['G_sign'], r['se_sign'], '+.3f')}, Enim {_fmt_se(r['G_ref'], r['se_ref'], '+.3f')})")
    n_ = ln_["angle"]
    en = st["pairs"][("enim_lion", "nsgd")]["angle"]
    out.append(f"against normalised SGD (no rotation): Lion - nSGD {_fmt_se(n_['D'], n_['se_D'])}, Enim - nSGD "
               f"{_fmt_se(en['D'], en['se_D'])} deg/decade (nSGD's own growth {_fmt_se(n_['G_ref'], n_['se_ref'])})")
    g = le["grad"]
    out.append(f"the raw gradient's ||g||_1/(sqrt(n)||g||_2) falls with lr more under Lion than under Enim: "
               f"{g['decision']} (fall per decade Lion {_fmt_se(g['G_sign'], g['se_sign'], '+.4f')}, Enim "
               f"{_fmt_se(g['G_ref'], g['se_ref'], '+.4f')}, paired {_fmt_se(g['D'], g['se_D'], '+.4f')})")
    return out


def _status(k, total):
    """'reproduced' (all ``total``), 'not reproduced' (none) or 'partly' (the evidence gives ``k``)."""
    if k == total:
        return "reproduced"
    if k == 0:
        return "not reproduced"
    return "partly"


def checks(number, arr, summary, spec):
    """One line per claim of the paper that the figure tests: the claim, whether the
    small task shows it, and the numbers it rests on (computed from the arrays; the
    criteria are fixed in this code, never chosen by the outcome)."""
    deg = np.degrees
    out = []
    if number == 2:
        iso, sd = summary["iso_mean"], summary["iso_std"]
        above, rho = _angle_vs_band(arr, summary)
        out.append(f"angle above the isotropic 3-sd band ({deg(iso):.2f} +- {deg(3 * sd):.2f} deg): "
                   f"{_status(int(above.sum()), above.size)} ({int(above.sum())} of {above.size} runs, "
                   f"angle {deg(arr['med_angle'].mean(1).min()):.1f}..{deg(arr['med_angle'].mean(1).max()):.1f} deg)")
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
        rows = _calibrated_vs_lion(arr)
        sides = [row[-1] for row in rows]
        worse, better, L = sides.count(-1), sides.count(1), len(sides)
        bad = [f"{lr:.0e}: {row[4]:+.3f} +- {row[5]:.3f}" for lr, row in zip(arr["lrs"], rows) if row[-1] == -1]
        out.append(f"Enim at Lion's angle trains like Lion (final accuracy within 2 SE): "
                   f"{_status(L - worse - better, L)} (worse at {worse}" + (f" [lr {'; '.join(bad)}]" if bad else "")
                   + f", better at {better} of {L} lrs; {_detectable([row[5] for row in rows])})")
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
        sd = _late_accuracy_sd(arr)
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
        m, best, tied, se = _best_angles(arr)
        ang = arr["angles_deg"]
        tied_lion, zero_worse = 0, []
        for i, lr in enumerate(arr["lrs"]):
            b = best[i]
            j = int(np.argmin(np.abs(ang - deg(arr["lion_angle"][i]))))
            tied_lion += bool(tied[i, j])
            if not tied[i, 0]:
                zero_worse.append(f"{lr:.0e} (by {m[i, b] - m[i, 0]:.2f})")
        L = len(arr["lrs"])
        others = se[np.arange(se.shape[1])[None, :] != best[:, None]]
        out.append(f"Lion's angle lies among the best angles (grid angle nearest it within 2 SE of the best): "
                   f"{_status(tied_lion, L)} ({tied_lion} of {L} lrs; {_detectable(others)})")
        out.append("sign noise helps at large lr (angle 0, normalised SGD, more than 2 SE below the best): "
                   + ("at lr " + ", ".join(zero_worse) if zero_worse else "at no lr"))
    elif number == 6:
        zl, zc = arr["zero_frac_lion"], arr["zero_frac_enim_cal"]
        live, more, less, se = _zero_gradients_lion_vs_calibrated(arr)
        out.append(f"Lion has more exactly-zero gradients than Enim at Lion's angle (> 2 SE): "
                   f"{_status(more, int(live.sum()))} (more at {more}, fewer at {less}, within 2 SE at "
                   f"{int(live.sum()) - more - less} of the {int(live.sum())} lrs with any; Lion "
                   + ", ".join(f"{x:.3f}" for x in zl.mean(1)[live]) + " vs Enim "
                   + ", ".join(f"{x:.3f}" for x in zc.mean(1)[live])
                   + (f"; {_detectable(se[live])}" if live.any() else "") + ")")
        wider, parts = 0, []
        for h, lr in enumerate(arr["hist_lrs"]):
            s = arr["norm_biases"][h].std(axis=2)  # [optimizer, seed]
            d, se_h, side = _paired(s[0], s[1])
            wider += int(side) > 0
            parts.append(f"lr {lr:.0e}: sd {s[0].mean():.2f} vs {s[1].mean():.2f}, paired {float(d):+.2f} +- "
                         f"{float(se_h):.2f}")
        out.append(f"Lion's normalisation biases spread further than Enim's at Lion's angle (> 2 SE): "
                   f"{_status(wider, len(arr['hist_lrs']))} ({'; '.join(parts)})")
    elif number == 7:
        out = _fig7_checks(arr, summary, spec)
    return out
