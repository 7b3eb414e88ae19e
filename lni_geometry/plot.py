"""Matplotlib figures of angles and their laws.

Each function takes an optional ``ax`` and returns the Axes it drew on; there is
no global state and no ``plt.show()`` here.  Angles are radians in the data and
degrees on the axes by default (``degrees=True``); densities are converted with
the angle (a density per degree is ``pi/180`` times the density per radian).
"""

from __future__ import annotations

import numpy as np

__all__ = ["angle_histogram", "concentration", "decomposition", "sphere_factor_overlay"]

_DEG = 180.0 / np.pi


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4.2))
    return ax


def _law_label(law):
    name = type(law).__name__
    method = getattr(law, "method", None)
    return f"{name} ({method})" if method else name


def _as_angles(sample_or_angles):
    from .sampling import AngleSample

    if isinstance(sample_or_angles, AngleSample):
        return sample_or_angles.bisector, sample_or_angles.dim
    angles = np.asarray(sample_or_angles, dtype=np.float64).ravel()
    if angles.size == 0:
        raise ValueError("no angles to plot")
    if not np.all(np.isfinite(angles)):
        raise ValueError("angles must be finite")
    return angles, None


def angle_histogram(sample_or_angles, laws=None, ax=None, degrees=True, bins="auto", label="Monte Carlo"):
    """Histogram (as a density) of bisector angles with laws overlaid.

    Parameters
    ----------
    sample_or_angles : AngleSample or array_like
        An AngleSample (its ``bisector`` angles) or angles in radians.
    laws : sequence, optional
        Law objects with a ``pdf`` in radians (e.g. ``theory.BisectorAngle``),
        or ``(label, law)`` pairs.  Default: the default bisector-angle law of
        the sample's dimension when the input is an AngleSample, else none.
    ax : matplotlib Axes, optional
    degrees : bool, default True
    bins : int, sequence or str, default "auto"
        Passed to ``numpy.histogram_bin_edges`` (radians).
    label : str

    Returns
    -------
    matplotlib.axes.Axes
    """
    angles, dim = _as_angles(sample_or_angles)
    ax = _axes(ax)
    if laws is None:
        laws = ()
        if dim is not None:
            from .theory import BisectorAngle

            laws = (BisectorAngle(dim),)
    scale = _DEG if degrees else 1.0
    edges = np.histogram_bin_edges(angles, bins=bins)
    ax.hist(angles * scale, bins=edges * scale, density=True, color="0.75", edgecolor="0.55",
            linewidth=0.4, label=f"{label} ({angles.size} samples)")
    lo, hi = edges[0], edges[-1]
    pad = 0.15 * (hi - lo)
    grid = np.linspace(max(lo - pad, 0.0), hi + pad, 600)
    styles = ["-", "--", "-.", ":"]
    for i, item in enumerate(laws):
        name, law = item if isinstance(item, tuple) else (_law_label(item), item)
        if not callable(getattr(law, "pdf", None)):
            raise TypeError(f"laws[{i}] must be a law with a pdf (or a (label, law) pair), got {item!r}")
        ax.plot(grid * scale, law.pdf(grid) / scale, styles[i % 4], lw=1.6, label=name)
    unit = "deg" if degrees else "rad"
    ax.set_xlabel(f"angle between v and sign(v) [{unit}]")
    ax.set_ylabel(f"density [1/{unit}]")
    ax.legend(fontsize=8)
    return ax


def sphere_factor_overlay(dim, ax, window, peak_density, degrees=True):
    """Overlay the sphere factor ``sin(a)**(dim-2)`` alone, rescaled to be visible.

    The seed paper's Section 2 starts from the fixed-axis density
    ``sin**(n-2)(a)/B_n``; by itself it peaks at 90 deg, not near 37 deg.  On a
    window around the bisector angle it rises by ``exp(Y)`` with
    ``Y = (n-2) log(sin(hi)/sin(lo))``; it is drawn rescaled so that its value at
    the right edge equals ``peak_density``, and the label says by how much it
    was scaled and how much it rises across the window.
    """
    lo, hi = window
    grid = np.linspace(lo, hi, 400)
    log_f = (dim - 2) * np.log(np.sin(grid))
    shift = log_f[-1]
    scale = _DEG if degrees else 1.0
    rise = log_f[-1] - log_f[0]
    ax.plot(grid * scale, peak_density * np.exp(log_f - shift), ":", color="tab:red", lw=1.4,
            label=f"sin^(n-2)(a) alone (peaks at 90 deg), rescaled: rises e^{rise:.3g} across the window")
    ax.legend(fontsize=8)
    return ax


def concentration(dims, samples=2000, ax=None, degrees=True, seed=0, backend="cpu", quantiles=(0.05, 0.95)):
    """Mean and spread of the bisector angle against the dimension, with the exact curves.

    Monte Carlo means and quantile bands (from :func:`lni_geometry.sample_angles`)
    beside the angle ``arccos(E cos)`` from the exact mean of the cosine,
    ``E cos = a_n/sqrt(n)``, ``a_n = n Gamma(n/2) / (sqrt(pi) Gamma((n+1)/2))``,
    and ``arccos(E cos -+ sd cos)`` from its exact variance, and the limit
    ``arccos(sqrt(2/pi)) = 37.07 deg``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .sampling import sample_angles
    from .theory import bisector_cos_mean, bisector_cos_var

    ax = _axes(ax)
    dims = np.asarray(sorted(set(int(d) for d in dims)))
    scale = _DEG if degrees else 1.0
    means, lows, highs = [], [], []
    for d in dims:
        a = sample_angles(int(d), samples, seed=seed, backend=backend).bisector
        means.append(a.mean())
        lo, hi = np.quantile(a, quantiles)
        lows.append(lo)
        highs.append(hi)
    means, lows, highs = (np.array(x) * scale for x in (means, lows, highs))
    ax.fill_between(dims, lows, highs, color="0.85", label=f"Monte Carlo {quantiles[0]:.0%}-{quantiles[1]:.0%}")
    ax.plot(dims, means, "o", ms=4, color="k", label=f"Monte Carlo mean ({samples} samples)")
    fine = np.unique(np.geomspace(dims.min(), dims.max(), 200).astype(np.int64))
    m = np.array([bisector_cos_mean(int(d)) for d in fine])
    sd = np.sqrt([bisector_cos_var(int(d)) for d in fine])
    ax.plot(fine, np.arccos(m) * scale, "-", color="tab:blue", label="arccos(E cos), exact")
    ax.plot(fine, np.arccos(np.minimum(m + sd, 1)) * scale, "--", color="tab:blue", lw=0.8,
            label="arccos(E cos +- sd cos), exact")
    ax.plot(fine, np.arccos(m - sd) * scale, "--", color="tab:blue", lw=0.8)
    ax.axhline(np.arccos(np.sqrt(2 / np.pi)) * scale, color="tab:red", lw=0.8,
               label="limit arccos(sqrt(2/pi))")
    ax.set_xscale("log")
    ax.set_xlabel("dimension n")
    ax.set_ylabel(f"bisector angle [{'deg' if degrees else 'rad'}]")
    ax.legend(fontsize=8)
    return ax


def decomposition(dim, ax=None, degrees=True, points=800):
    """The seed paper's decomposition of the bisector-angle density, in log space.

    ``log p_n(a) = log(2**n sin**(n-2)(a) / B_n) + log g_n(a)``: the log sphere
    factor, the log orthant fraction and the log density (default law) against
    the angle, over the law's support.  All three are divided by ``n`` so that
    the scales of large dimensions stay readable (the label says so).

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .theory import BisectorAngle, log_orthant_fraction, log_sphere_factor

    ax = _axes(ax)
    law = BisectorAngle(dim)
    lo, hi = law.support()
    grid = np.linspace(lo, hi, points + 2)[1:-1]
    scale = _DEG if degrees else 1.0
    ls = log_sphere_factor(dim, grid) / dim
    lg = log_orthant_fraction(dim, grid) / dim
    lp = law.logpdf(grid) / dim
    ax.plot(grid * scale, ls, label="(1/n) log sphere factor 2^n sin^(n-2)(a)/B_n")
    ax.plot(grid * scale, lg, label="(1/n) log orthant fraction g_n(a)")
    ax.plot(grid * scale, lp, "k", lw=1.6, label="(1/n) log density p_n(a)")
    ax.axhline(-np.log(2) - 0.5 * np.log(1 - 2 / np.pi), color="0.5", lw=0.7, ls=":",
               label="-log 2 - (1/2) log(1 - 2/pi) = -0.18699")
    ax.set_xlabel(f"angle [{'deg' if degrees else 'rad'}]")
    ax.set_ylabel("(1/n) log")
    ax.set_title(f"n = {dim}")
    ax.legend(fontsize=7)
    return ax
