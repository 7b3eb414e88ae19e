"""Drawing the training figures from their arrays alone (a rerun only redraws).

Every figure is drawn in the package's one style (:func:`lni_geometry.plot.paper_style`),
with legends outside the data and the paper's claim and the computed verdicts
(:mod:`.verdicts`) as its caption.
"""

from __future__ import annotations

import numpy as np

from .verdicts import CLAIMS

__all__ = ["draw_figure"]


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
    elif number == 7:
        _draw7(arr, summary, spec, ax_list, fig)


#: Figure 7's optimizers: label and marker (Lion and Enim at Lion's angle as in Figures 3 and 6).
_ARMS7 = {"lion": ("Lion", "*"), "enim_lion": ("Enim at Lion's angle (no sign)", "D"),
          "nsgd": ("normalised SGD (Enim at angle 0)", "o")}


def _draw7(arr, summary, spec, ax_list, fig):
    """Figure 7: the sign angle of each optimizer's own c against lr, the per-seed growth,
    the paired differences, the budget and the raw gradient's L1 ratio."""
    from matplotlib.lines import Line2D

    from .. import plot
    from .verdicts import FIG7_PAIRS, Z_DECIDE, _fig7

    deg = np.degrees
    ax0, ax1, ax2, ax3, ax4, ax5 = ax_list
    arms = list(spec["arms"])
    lrs = arr["lrs"]
    colors = {"lion": plot.COLORS[1], "enim_lion": "k", "nsgd": plot.COLORS[0]}
    shifts = {"lion": 1.0, "enim_lion": 1.1, "nsgd": 0.91}
    st = _fig7(arr, spec)
    k = arr["med_angle"].shape[2]
    iso, sd = deg(summary["iso_mean"]), deg(summary["iso_std"])

    # (a) the sign angle of c against lr
    for a, name in enumerate(arms):
        label, marker = _ARMS7[name]
        _errbar(ax0, lrs, deg(arr["med_angle"][a]), label, color=colors[name], marker=marker, shift=shifts[name])
    ax0.axhspan(iso - 3 * sd, iso + 3 * sd, color="k", alpha=0.12, lw=0)
    ax0.axhline(iso, color="k", ls="--", lw=0.8)
    ax0.text(lrs[0], iso + 1, f"isotropic {iso:.2f} deg", fontsize=7, va="bottom")
    ax0.set(xscale="log", xlabel="learning rate", ylabel="sign angle of its own c (deg)",
            title="(a) sign angle of c, median of 2nd half\n(mean +- sd over seeds, dots: seeds)")

    # (b) growth per seed, the seeds joined across the optimizers
    x = np.arange(len(arms))
    slopes = st["slope"]  # [arm, seed]
    for j in range(k):
        ax1.plot(x, slopes[:, j], "-", color="0.75", lw=0.8, zorder=1)
    for a, name in enumerate(arms):
        ax1.plot(np.full(k, x[a]), slopes[a], _ARMS7[name][1], color=colors[name], ms=5, alpha=0.6, zorder=2)
        m = np.nanmean(slopes[a])
        se = np.nanstd(slopes[a], ddof=1) / np.sqrt(np.isfinite(slopes[a]).sum()) if k > 1 else 0.0
        ax1.errorbar(x[a] + 0.18, m, yerr=Z_DECIDE * se, fmt="_", color=colors[name], ms=14, mew=2, capsize=4,
                     zorder=3)
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set_xticks(x, ["Lion", "Enim at\nLion's angle", "normalised\nSGD"][:len(arms)])
    ax1.set_xlim(-0.4, len(arms) - 0.4)
    ax1.set(ylabel="growth of the angle (deg per decade of lr)",
            title="(b) growth per seed (lines join a seed;\nbars: mean +- 2 SE)")

    # (c) paired differences per lr
    pair_colors = [plot.COLORS[3], plot.COLORS[2], plot.COLORS[4]]
    pair_text = {("lion", "enim_lion"): "Lion - Enim at Lion's angle", ("lion", "nsgd"): "Lion - normalised SGD",
                 ("enim_lion", "nsgd"): "Enim at Lion's angle - normalised SGD"}
    for c, (pair, sh) in zip(pair_colors, zip(FIG7_PAIRS, (1.0, 1.1, 0.91))):
        per = np.array(st["pairs"][pair]["per_lr"], dtype=np.float64)  # [lr, (mean, se, k)]
        ax2.errorbar(lrs * sh, per[:, 0], yerr=Z_DECIDE * per[:, 1], marker="o", ms=4, capsize=3, color=c,
                     label=pair_text[pair])
    ax2.axhline(0, color="k", lw=0.6)
    ax2.set(xscale="log", xlabel="learning rate", ylabel="paired difference of the angle (deg)",
            title="(c) paired differences per lr (mean +- 2 SE)")

    # (d) the budget: each factor alone
    for a, name in enumerate(arms):
        ax3.plot(lrs, deg(np.nanmean(arr["med_angle_het"][a], 1)), "-", marker=_ARMS7[name][1], color=colors[name])
        ax3.plot(lrs, deg(np.nanmean(arr["med_angle_tails"][a], 1)), "--", marker=_ARMS7[name][1],
                 color=colors[name], mfc="none")
    ax3.axhline(iso, color="k", ls=":", lw=0.8)
    ax3.set(xscale="log", xlabel="learning rate", ylabel="angle of one factor alone (deg)",
            title="(d) the angle budget: cos = sqrt(2/pi) T H\n(mean over seeds)")

    # (e) which factor carries the paired differences of growth
    width = 0.26
    parts = (("excess", "(e) total: ln(sqrt(2/pi)/cos angle)", "0.3", None),
             ("T", "(e) its part -ln T (tails within tensors)", "0.65", "///"),
             ("H", "(e) its part -ln H (scales across tensors)", "0.92", ".."))
    bars = []
    for b, (key, text, c, hatch) in enumerate(parts):
        vals = np.array([st["pairs"][pair][key][:2] for pair in FIG7_PAIRS], dtype=np.float64)
        bars.append(ax4.bar(np.arange(len(FIG7_PAIRS)) + (b - 1) * width, vals[:, 0], width,
                            yerr=Z_DECIDE * vals[:, 1], color=c, hatch=hatch, edgecolor="0.2", lw=0.6, capsize=3,
                            error_kw={"lw": 1}))
    ax4.axhline(0, color="k", lw=0.6)
    ax4.set_xticks(range(len(FIG7_PAIRS)), ["Lion -\nEnim", "Lion -\nnorm. SGD", "Enim -\nnorm. SGD"])
    ax4.set(ylabel="paired difference of growth\n(ln(sqrt(2/pi)/cos angle) per decade)",
            title="(e) which factor carries the differences\n(mean +- 2 SE over seeds)")

    # (f) the raw gradient's L1 ratio
    for a, name in enumerate(arms):
        _errbar(ax5, lrs, arr["med_grad_ratio"][a], None, color=colors[name], marker=_ARMS7[name][1],
                shift=shifts[name])
    ax5.axhline(np.sqrt(2 / np.pi), color="k", ls="--", lw=0.8)
    ax5.text(lrs[0], np.sqrt(2 / np.pi) + 0.005, "isotropic Gaussian sqrt(2/pi)", fontsize=7, va="bottom")
    ax5.set(xscale="log", xlabel="learning rate", ylabel="||g||_1 / (sqrt(n) ||g||_2), median of 2nd half",
            title="(f) the raw minibatch gradient's L1 ratio\n(lower: sparser, heavier tails)")
    # one legend below the panels, a column per kind of entry
    handles = [Line2D([], [], color=colors[n], marker=_ARMS7[n][1], ls="-") for n in arms]
    handles += [Line2D([], [], color=c, marker="o", ls="-") for c in pair_colors]
    handles += bars
    handles += [Line2D([], [], color="0.3", ls="-"), Line2D([], [], color="0.3", ls="--", marker="o", mfc="none")]
    labels = [_ARMS7[n][0] for n in arms] + [f"(c) {pair_text[p]}" for p in FIG7_PAIRS] + [p[1] for p in parts]
    labels += ["(d) H alone: scales across tensors", "(d) T alone: tails within tensors"]
    fig.legend(handles, labels, loc="outside lower center", ncols=4)


_LAYOUT = {2: (2, 2, (12, 8.6)), 3: (1, 2, (12, 5.0)), 4: (2, 2, (12, 8.8)), 5: (1, 2, (13, 5.8)),
           6: (1, 3, (15, 5.6)), 7: (2, 3, (14, 9.6))}


def _caption(number, summary, spec, width):
    """The suptitle: the claim tested, the analogue, and per claim whether the small task shows it."""
    import textwrap

    from .. import plot

    base = spec["base"]
    kind = "full grid" if spec["full"] else "default grid"
    seeds = spec["seeds"]
    setting = "Small analogue: digits,"
    if spec.get("scale") == "paper":
        setting = f"Paper setting: {base['task']} ({spec['train_size']} training images), {spec['epochs']} epochs,"
    text = (f"{setting} {base['network']} (n = {plot.thousands(summary['n'])}), {base['steps']} steps "
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
