"""Compare sampled angles with an analytic law: KS, total variation, Hellinger, chi-square.

One call, :func:`compare`, gives every figure the package reports when it sets
a histogram beside a law (the ``figure1`` command, the notebooks, the accuracy
table):

* the Kolmogorov-Smirnov distance ``D = sup_a |F_N(a) - F(a)|`` between the
  empirical cdf and the law's cdf, with its exact p-value
  (:func:`scipy.stats.kstest`);
* on a histogram with ``k`` bins, the law's bin probabilities ``p_j`` (from cdf
  differences; the outer bins reach to the ends of the support so that the
  ``p_j`` sum to 1) against the observed fractions ``q_j = n_j / N``:
  total variation ``TV = (1/2) sum_j |q_j - p_j|`` and Hellinger distance
  ``H = sqrt(1 - sum_j sqrt(q_j p_j))``;
* Pearson's ``chi2 = sum_j (n_j - N p_j)^2 / (N p_j)`` after merging adjacent
  bins until each expects at least 5 samples (Cochran's rule), with
  ``dof = (merged bins) - 1`` and its p-value from the chi-square law.

TV and Hellinger of a finite sample are biased upwards by the histogram's own
noise: even for samples drawn from the law itself, ``E TV ~ sum_j
sqrt(p_j (1 - p_j) / (2 pi N))`` (about ``sqrt(k / (2 pi N))`` for ``k``
equally likely bins). Judge them against that floor (``Comparison.tv_noise``),
and the KS and chi-square p-values as tests.

References
----------
Kolmogorov, A. N. (1933). Sulla determinazione empirica di una legge di
distribuzione. *Giornale dell'Istituto Italiano degli Attuari* 4, 83-91.
Cochran, W. G. (1954). Some methods for strengthening the common chi-square
tests. *Biometrics* 10, 417-451.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Smallest expected count per bin of the chi-square test (Cochran's rule).
MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class Comparison:
    """The distances between a sample of angles and a law (see :mod:`lni_geometry.compare`).

    Attributes
    ----------
    ks, ks_pvalue : float
        Kolmogorov-Smirnov distance ``sup |F_N - F|`` and its p-value.
    tv, hellinger : float
        Total variation and Hellinger distances between the binned sample and
        the law's bin probabilities.
    tv_noise : float
        The expected TV of a sample of this size drawn from the law itself
        (the noise floor of ``tv``).
    chi2, chi2_dof, chi2_pvalue : float, int, float
        Pearson's statistic over bins merged to expect >= 5 samples each, its
        degrees of freedom and p-value.
    samples, bins : int
        Sample size and number of histogram bins (before merging).
    law : str
        ``repr`` of the law.
    """

    ks: float
    ks_pvalue: float
    tv: float
    hellinger: float
    tv_noise: float
    chi2: float
    chi2_dof: int
    chi2_pvalue: float
    samples: int
    bins: int
    law: str

    def __repr__(self):
        return (
            f"Comparison({self.law}, N={self.samples}, bins={self.bins}: "
            f"KS={self.ks:.3g} (p={self.ks_pvalue:.3g}), "
            f"TV={self.tv:.3g} (noise floor {self.tv_noise:.2g}), Hellinger={self.hellinger:.3g}, "
            f"chi2={self.chi2:.4g} on {self.chi2_dof} dof (p={self.chi2_pvalue:.3g}))"
        )

    def as_dict(self):
        """The fields as a plain dict (JSON-ready)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _merge_small(counts, expected, minimum):
    """Merge adjacent bins, left to right, until each expects at least ``minimum``."""
    merged_n, merged_e = [], []
    n_acc = e_acc = 0.0
    for n, e in zip(counts, expected):
        n_acc += n
        e_acc += e
        if e_acc >= minimum:
            merged_n.append(n_acc)
            merged_e.append(e_acc)
            n_acc = e_acc = 0.0
    if e_acc > 0 or n_acc > 0:
        if merged_e:
            merged_n[-1] += n_acc
            merged_e[-1] += e_acc
        else:
            merged_n.append(n_acc)
            merged_e.append(e_acc)
    return np.asarray(merged_n), np.asarray(merged_e)


def compare(angles, law, bins="auto"):
    """Distances between sampled angles and an analytic law.

    Parameters
    ----------
    angles : array_like or AngleSample
        Angles in radians (an :class:`~lni_geometry.AngleSample` gives its
        ``bisector`` angles).
    law : object
        A law with ``cdf`` (and ``support``), e.g.
        :class:`lni_geometry.theory.BisectorAngle`, or a frozen
        ``scipy.stats`` distribution.
    bins : int, sequence or str
        Histogram bins, as for :func:`numpy.histogram_bin_edges` over the
        sample's range (default ``"auto"``).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        If there are fewer than 2 finite angles, or any angle is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> x = stats.norm.rvs(size=2000, random_state=1)
    >>> c = compare(x, stats.norm())
    >>> c.ks_pvalue > 1e-3 and c.chi2_pvalue > 1e-3
    True
    """
    if not callable(getattr(law, "cdf", None)):
        raise TypeError(f"law must have a cdf method (a theory law or a frozen scipy.stats law), got {law!r}")
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool) and bins < 1:
        raise ValueError(f"bins must be >= 1 (or a sequence of edges or a numpy rule name), got {bins}")
    if hasattr(angles, "bisector"):
        angles = angles.bisector
    x = np.asarray(angles, dtype=np.float64).ravel()
    if x.size < 2:
        raise ValueError(f"compare needs at least 2 angles, got {x.size}")
    if not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.isfinite(x))[:5]
        raise ValueError(f"angles must be finite; non-finite values at indices {bad.tolist()}")
    n = x.size

    ks = stats.kstest(x, law.cdf)

    edges = np.histogram_bin_edges(x, bins=bins)
    counts, _ = np.histogram(x, bins=edges)
    cdf_inner = np.asarray(law.cdf(edges[1:-1]), dtype=np.float64)
    probs = np.diff(np.concatenate(([0.0], cdf_inner, [1.0])))
    probs = np.clip(probs, 0.0, None)
    frac = counts / n

    tv = 0.5 * float(np.abs(frac - probs).sum())
    hellinger = float(np.sqrt(max(0.0, 1.0 - np.sqrt(frac * probs).sum())))
    tv_noise = float(np.sqrt(probs * (1.0 - probs) / (2.0 * np.pi * n)).sum())

    obs, exp = _merge_small(counts.astype(np.float64), probs * n, MIN_EXPECTED)
    dof = obs.size - 1
    if dof >= 1 and np.all(exp > 0):
        chi2 = float(((obs - exp) ** 2 / exp).sum())
        chi2_p = float(stats.chi2.sf(chi2, dof))
    else:
        chi2, chi2_p = float("nan"), float("nan")

    return Comparison(
        ks=float(ks.statistic),
        ks_pvalue=float(ks.pvalue),
        tv=tv,
        hellinger=hellinger,
        tv_noise=tv_noise,
        chi2=chi2,
        chi2_dof=int(dof),
        chi2_pvalue=chi2_p,
        samples=int(n),
        bins=int(counts.size),
        law=repr(law),
    )
