"""What each training figure tests, and what its numbers say: computed, never written by hand.

:data:`CLAIMS` holds the seed paper's claim behind each figure (Elistratov,
Podivilov, Iuzhakov, Vetrov, "Lion's sign noise can make training more
stable"); :func:`report` and :func:`checks` turn a figure's arrays into the
lines of its caption and, per claim, "reproduced", "partly" or "not
reproduced" with the numbers they rest on, by fixed rules (standard errors over
seeds, rank correlations).  :mod:`.figures` stores them with the data and
computes them again whenever a figure is redrawn.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CLAIMS", "report", "checks"]

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


def _calibrated_vs_lion(arr):
    """Figure 3, per lr: Lion's and calibrated Enim's final accuracy (mean, sd over seeds)
    and where Enim lies: -1 more than 2 standard errors below Lion, +1 above, 0 within."""
    k = arr["acc_lion"].shape[1]
    rows = []
    for i in range(len(arr["lrs"])):
        ml, sl = _ms(arr["acc_lion"][i])
        mc, sc = _ms(arr["acc_enim_cal"][i])
        se = math.sqrt((sl ** 2 + sc ** 2) / k)
        side = -1 if mc < ml - 2 * se - 1e-9 else (1 if mc > ml + 2 * se + 1e-9 else 0)
        rows.append((ml, sl, mc, sc, side))
    return rows


def _late_accuracy_sd(arr):
    """Figure 4: sd of the test accuracy over the second half of training, mean over seeds, per weight decay."""
    acc = arr["test_acc"]
    return acc[:, :, acc.shape[2] // 2:].std(axis=2).mean(1)


def _best_angles(arr):
    """Figure 5: mean accuracy ``m[lr, angle]`` over seeds, the best angle's index per lr,
    and ``tied[lr, angle]``: within 2 standard errors of the difference from the best."""
    acc = arr["acc"]
    m, k = acc.mean(2), acc.shape[2]
    sd = acc.std(2, ddof=1) if k > 1 else np.zeros_like(m)
    best = np.argmax(m, axis=1)
    tied = np.zeros(m.shape, dtype=bool)
    for i, b in enumerate(best):
        se = np.sqrt((sd[i, b] ** 2 + sd[i] ** 2) / k)
        tied[i] = m[i, b] - m[i] <= 2 * se + 1e-12
    return m, best, tied


def _zero_gradients_lion_vs_calibrated(arr):
    """Figure 6: at the lrs where either has zero gradients (``live``), the number of lrs
    where Lion has more than calibrated Enim by more than 2 standard errors, and fewer."""
    zl, zc = arr["zero_frac_lion"], arr["zero_frac_enim_cal"]
    k = zl.shape[1]
    se = np.sqrt((zl.var(1, ddof=1) + zc.var(1, ddof=1)) / k) if k > 1 else np.zeros(len(zl))
    diff = zl.mean(1) - zc.mean(1)
    live = (zl.mean(1) > 0) | (zc.mean(1) > 0)
    return live, int(np.sum(live & (diff > 2 * se))), int(np.sum(live & (diff < -2 * se)))


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
        for i, (lr, (ml, sl, mc, sc, _)) in enumerate(zip(arr["lrs"], rows)):
            me, se = _ms(arr["acc_enim_lion"][i])
            lines.append(f"lr {lr:8.1e}: Lion {ml:.3f} +- {sl:.3f}; Enim at {deg(arr['cal_angle'][i]):.1f} deg "
                         f"{mc:.3f} +- {sc:.3f}; Enim angle='lion' {me:.3f} +- {se:.3f}")
        worse = sum(row[-1] == -1 for row in rows)
        verdict.append(f"calibrated Enim below Lion by more than 2 standard errors at {worse} of "
                       f"{len(arr['lrs'])} lrs ({'reproduced' if worse == 0 else 'not everywhere'})")
    elif number == 5:
        acc, best_index, tied = _best_angles(arr)
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
        live, more, less = _zero_gradients_lion_vs_calibrated(arr)
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
    return lines, verdict


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
        sides = [row[-1] for row in _calibrated_vs_lion(arr)]
        worse, better, L = sides.count(-1), sides.count(1), len(sides)
        bad = [f"{lr:.0e}" for lr, side in zip(arr["lrs"], sides) if side == -1]
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
        m, best, tied = _best_angles(arr)
        ang = arr["angles_deg"]
        tied_lion, zero_worse = 0, []
        for i, lr in enumerate(arr["lrs"]):
            b = best[i]
            j = int(np.argmin(np.abs(ang - deg(arr["lion_angle"][i]))))
            tied_lion += bool(tied[i, j])
            if not tied[i, 0]:
                zero_worse.append(f"{lr:.0e} (by {m[i, b] - m[i, 0]:.2f})")
        L = len(arr["lrs"])
        out.append(f"Lion's angle lies among the best angles (grid angle nearest it within 2 SE of the best): "
                   f"{_status(tied_lion, L)} ({tied_lion} of {L} lrs)")
        out.append("sign noise helps at large lr (angle 0, normalised SGD, more than 2 SE below the best): "
                   + ("at lr " + ", ".join(zero_worse) if zero_worse else "at no lr"))
    elif number == 6:
        zl, zc = arr["zero_frac_lion"], arr["zero_frac_enim_cal"]
        live, more, less = _zero_gradients_lion_vs_calibrated(arr)
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
