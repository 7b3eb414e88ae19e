"""Matplotlib figures of angles and their laws, in one style.

Each function takes an optional ``ax`` and returns the Axes it drew on; there is
no ``plt.show()`` here.  Angles are radians in the data and degrees on the axes
by default (``degrees=True``); densities are converted with the angle (a
density per degree is ``pi/180`` times the density per radian).

**One style for every figure of the package** (the commands, the notebooks and
the training figures): :func:`paper_style` is a context manager that applies
:data:`PAPER_RC` (constrained layout, 9 pt text, 8 pt legends without frames,
light grid, colour-blind-safe colours, TrueType fonts in PDF); the figure
functions here draw inside it, and new figures should be created inside it::

    from lni_geometry import plot

    with plot.paper_style():
        fig, ax = plt.subplots()            # constrained layout: no tight_layout()
        ...
        plot.legend_outside(ax)             # legends beside the data, never over it
        plot.save_figure(fig, "fig.png")    # marked as written by lni-geometry

:func:`use_paper_style` applies it for a whole session (notebooks).  Legends go
beside the axes (:func:`legend_outside`) or below a grid of panels
(:func:`figure_legend`); counts are written with thousands separators
(:func:`thousands`: "n = 10,000").  :func:`save_figure` embeds a marker that
:func:`written_by_package` reads, so that the commands overwrite their own
figures but never a file they did not write.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

__all__ = [
    "FIGURE_FORMATS",
    "PAPER_RC",
    "angle_histogram",
    "concentration",
    "decomposition",
    "figure_legend",
    "legend_outside",
    "paper_style",
    "save_figure",
    "sphere_factor_log",
    "sphere_factor_overlay",
    "thousands",
    "use_paper_style",
    "written_by_package",
]

_DEG = 180.0 / np.pi

#: Okabe-Ito colours (distinguishable with every common colour-vision deficiency).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")

#: The package's matplotlib style (see :func:`paper_style`).
PAPER_RC = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "savefig.dpi": 200,
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "legend.handlelength": 2.2,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 4.0,
    "axes.prop_cycle": None,  # filled in below (needs cycler)
    "axes.formatter.use_mathtext": True,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}

#: Formats :func:`save_figure` writes (those whose metadata carries the package's marker).
FIGURE_FORMATS = ("png", "pdf", "svg", "eps", "ps")
_MARK = "written by lni_geometry.plot.save_figure"


def _rc():
    from cycler import cycler

    rc = dict(PAPER_RC)
    rc["axes.prop_cycle"] = cycler(color=list(COLORS))
    return rc


@contextlib.contextmanager
def paper_style():
    """Context manager: every figure made inside looks like the package's figures.

    Applies :data:`PAPER_RC` with ``matplotlib.rc_context``.  Figures use
    constrained layout, so call neither ``fig.tight_layout()`` (it switches the
    layout engine and warns) nor ``bbox_inches``; put legends beside the data
    with :func:`legend_outside` or :func:`figure_legend`.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> with paper_style():
    ...     fig, ax = plt.subplots()
    >>> type(fig.get_layout_engine()).__name__
    'ConstrainedLayoutEngine'
    >>> plt.close(fig)
    """
    import matplotlib

    with matplotlib.rc_context(_rc()):
        yield


def use_paper_style():
    """Apply :data:`PAPER_RC` to the whole session (for notebooks): ``rcParams.update``."""
    import matplotlib

    matplotlib.rcParams.update(_rc())


def thousands(n):
    """``n`` with thousands separators: ``thousands(10000) == "10,000"``, as every label writes counts."""
    return f"{int(n):,}"


def legend_outside(ax, **kwargs):
    """A legend to the right of ``ax``, outside the data (constrained layout makes room).

    Returns the Legend, or None if nothing is labelled.
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    opts = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    opts.update(kwargs)
    return ax.legend(handles, labels, **opts)


def figure_legend(fig, axes=None, ncols=None, **kwargs):
    """One legend below a grid of panels, for every distinct label of ``axes`` (default all).

    Legends already on the panels are removed.  Needs constrained layout
    (:func:`paper_style`), which keeps the legend clear of the panels.
    """
    axes = list(np.ravel(axes)) if axes is not None else list(fig.axes)
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in seen and not lab.startswith("_"):
                seen[lab] = h
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not seen:
        return None
    n = len(seen)
    opts = {"loc": "outside lower center", "ncols": ncols or min(n, 3)}
    opts.update(kwargs)
    return fig.legend(list(seen.values()), list(seen), **opts)


def _format_of(path):
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in FIGURE_FORMATS:
        got = f"'.{ext}'" if ext else "no extension"
        raise ValueError(f"cannot write a figure to {os.fspath(path)}: {got} is not a supported format; "
                         f"use one of {', '.join('.' + f for f in FIGURE_FORMATS)}")
    return ext


def save_figure(fig, path, **kwargs):
    """``fig.savefig(path)`` with the package's marker in the file's metadata.

    The format comes from the extension (one of :data:`FIGURE_FORMATS`; a
    ValueError names the others); :func:`written_by_package` recognises the
    file afterwards.  ``kwargs`` go to ``savefig`` (``dpi`` defaults to the
    style's 200).
    """
    from . import __version__

    fmt = _format_of(path)
    key = "Software" if fmt == "png" else "Creator"
    fig.savefig(path, format=fmt, metadata={key: f"{_MARK} (lni-geometry {__version__})"}, **kwargs)
    return path


def written_by_package(path, window=1 << 16):
    """Whether the file at ``path`` carries :func:`save_figure`'s marker.

    Looks in its first and last ``window`` bytes (the metadata of PNG, SVG and
    PostScript is at the start, of PDF at the end).  False for a missing file.
    """
    mark = _MARK.encode()
    try:
        with open(path, "rb") as fh:
            head = fh.read(window)
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - window))
            tail = fh.read(window)
    except OSError:
        return False
    return mark in head or mark in tail


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _place_legend(ax, legend):
    if legend == "outside":
        legend_outside(ax)
    elif legend == "inside":
        ax.legend()
    elif legend not in (None, False):
        raise ValueError(f"legend must be 'outside', 'inside' or None, got {legend!r}")


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


@paper_style()
def angle_histogram(sample_or_angles, laws=None, ax=None, degrees=True, bins="auto", label="Monte Carlo",
                    legend="outside"):
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
    legend : {"outside", "inside", None}
        Beside the axes (default), inside them, or none (for a grid of panels
        with one :func:`figure_legend`).

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
    ax.hist(angles * scale, bins=edges * scale, density=True, color="0.78", edgecolor="0.55",
            linewidth=0.4, label=f"{label} ({thousands(angles.size)} samples)")
    lo, hi = edges[0], edges[-1]
    pad = 0.15 * (hi - lo)
    grid = np.linspace(max(lo - pad, 0.0), hi + pad, 600)
    styles = ["-", "--", "-.", ":"]
    for i, item in enumerate(laws):
        name, law = item if isinstance(item, tuple) else (_law_label(item), item)
        if not callable(getattr(law, "pdf", None)):
            raise TypeError(f"laws[{i}] must be a law with a pdf (or a (label, law) pair), got {item!r}")
        ax.plot(grid * scale, law.pdf(grid) / scale, styles[i % 4], color=COLORS[i % len(COLORS)],
                label=name)
    unit = "deg" if degrees else "rad"
    ax.set_xlabel(f"angle between v and sign(v) [{unit}]")
    ax.set_ylabel(f"density [1/{unit}]")
    ax.set_ylim(bottom=0)
    _place_legend(ax, legend)
    return ax


@paper_style()
def sphere_factor_log(dim, ax, window, degrees=True, color="#009E73"):
    """The sphere factor ``sin(a)**(dim-2)`` alone across ``window``, on a log scale of its own.

    The seed paper's Section 2 starts from the fixed-axis density
    ``sin**(n-2)(a)/B_n``; by itself it peaks at 90 deg, not near 37 deg.
    Across a window ``(lo, hi)`` (radians) around the bisector angle it rises by
    ``exp(Y)``, ``Y = (n-2) log(sin(hi)/sin(lo))`` (``e^9500`` over Figure 1's
    0.07 deg at ``n = 6e6``): drawn on the density's linear axis it would be a
    lone vertical line at the right edge.  Here it is drawn as
    ``log10(sin**(n-2)(a) / sin**(n-2)(hi))`` on a second y axis at the right
    (a straight rising line, ``0`` at the right edge), labelled with its rise.

    Returns
    -------
    matplotlib.axes.Axes
        The twin axes with the curve (its line is labelled; pass both axes to
        :func:`figure_legend` or collect the handles for one legend).
    """
    lo, hi = window
    grid = np.linspace(lo, hi, 400)
    log10_f = (dim - 2) * (np.log(np.sin(grid)) - np.log(np.sin(hi))) / np.log(10.0)
    scale = _DEG if degrees else 1.0
    twin = ax.twinx()
    twin.spines["right"].set_visible(True)
    twin.grid(False)
    rise = -log10_f[0]
    twin.plot(grid * scale, log10_f, ":", color=color, lw=1.4,
              label=f"sin^(n-2)(a) alone (right axis): rises 10^{rise:.4g} across the window")
    twin.set_ylabel("log10 sin^(n-2)(a), relative to right edge", color=color)
    twin.tick_params(axis="y", colors=color)
    return twin


def sphere_factor_overlay(dim, ax, window, peak_density, degrees=True):
    """Overlay the sphere factor ``sin(a)**(dim-2)`` alone, rescaled to be visible.

    Readable only where the rise across the window is modest (small ``dim``
    or a narrow window): at large ``dim`` it is a lone vertical line at the
    right edge, and :func:`sphere_factor_log` shows it on a log axis instead.

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
    ax.plot(grid * scale, peak_density * np.exp(log_f - shift), ":", color=COLORS[1], lw=1.4,
            label=f"sin^(n-2)(a) alone (peaks at 90 deg), rescaled: rises e^{rise:.3g} across the window")
    return ax


@paper_style()
def concentration(dims, samples=2000, ax=None, degrees=True, seed=0, backend="cpu", quantiles=(0.05, 0.95),
                  legend="outside"):
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
    ax.plot(dims, means, "o", color="k", label=f"Monte Carlo mean ({thousands(samples)} samples)")
    fine = np.unique(np.geomspace(dims.min(), dims.max(), 200).astype(np.int64))
    m = np.array([bisector_cos_mean(int(d)) for d in fine])
    sd = np.sqrt([bisector_cos_var(int(d)) for d in fine])
    ax.plot(fine, np.arccos(m) * scale, "-", color=COLORS[0], label="arccos(E cos), exact")
    ax.plot(fine, np.arccos(np.minimum(m + sd, 1)) * scale, "--", color=COLORS[0], lw=0.8,
            label="arccos(E cos +- sd cos), exact")
    ax.plot(fine, np.arccos(m - sd) * scale, "--", color=COLORS[0], lw=0.8)
    ax.axhline(np.arccos(np.sqrt(2 / np.pi)) * scale, color=COLORS[1], lw=0.8,
               label="limit arccos(sqrt(2/pi))")
    ax.set_xscale("log")
    ax.set_xlabel("dimension n")
    ax.set_ylabel(f"bisector angle [{'deg' if degrees else 'rad'}]")
    _place_legend(ax, legend)
    return ax


@paper_style()
def decomposition(dim, ax=None, degrees=True, points=800, legend="outside"):
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
    ax.plot(grid * scale, ls, color=COLORS[0], label="sphere factor 2^n sin^(n-2)(a)/B_n")
    ax.plot(grid * scale, lg, color=COLORS[1], label="orthant fraction g_n(a)")
    ax.plot(grid * scale, lp, color="k", lw=1.6, label="density p_n(a) = product of the two")
    ax.axhline(-np.log(2) - 0.5 * np.log(1 - 2 / np.pi), color="0.5", lw=0.7, ls=":",
               label="-log 2 - (1/2) log(1 - 2/pi) = -0.18699")
    ax.set_xlabel(f"angle to the bisector [{'deg' if degrees else 'rad'}]")
    ax.set_ylabel("natural log of each factor, divided by n")
    ax.set_title(f"n = {thousands(dim)}")
    _place_legend(ax, legend)
    return ax
