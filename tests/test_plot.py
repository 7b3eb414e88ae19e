"""lni_geometry.plot: each function draws on the Axes it is given and returns it."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special  # noqa: E402

from lni_geometry import plot, sample_angles, theory  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_angle_histogram_draws_the_laws_on_the_given_axes(ax):
    s = sample_angles(200, 500, seed=2, backend="cpu")
    before = plt.get_fignums()
    out = plot.angle_histogram(s, laws=[theory.BisectorAngle(200), ("normal", theory.BisectorAngle(200, method="normal"))], ax=ax)
    assert out is ax and plt.get_fignums() == before
    assert len(ax.lines) == 2 and len(ax.patches) > 5
    # The histogram is a density in 1/deg: the bar areas sum to 1.
    area = sum(p.get_width() * p.get_height() for p in ax.patches)
    assert area == pytest.approx(1.0, rel=1e-9)
    # The law's curve is in 1/deg too: its integral over the plotted grid is ~1.
    x, y = ax.lines[0].get_data()
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=0.02)
    assert "deg" in ax.get_xlabel()


def test_angle_histogram_radians_and_default_law(ax):
    s = sample_angles(50, 300, seed=1, backend="cpu")
    plot.angle_histogram(s, ax=ax, degrees=False)  # an AngleSample brings its own law
    assert len(ax.lines) == 1 and "rad" in ax.get_xlabel()
    x, _ = ax.lines[0].get_data()
    assert x.max() < np.pi / 2


def test_sphere_factor_overlay_labels_its_scaling(ax):
    plot.sphere_factor_overlay(10**6, ax, (0.64, 0.655), peak_density=30.0)
    x, y = ax.lines[0].get_data()
    assert y[-1] == pytest.approx(30.0) and y[0] < y[-1]
    assert "rescaled" in ax.lines[0].get_label()


def test_concentration_matches_the_exact_curve(ax):
    out = plot.concentration([10, 100, 1000], samples=400, ax=ax)
    assert out is ax
    mc = next(line for line in ax.lines if "Monte Carlo mean" in line.get_label())
    dims, means = mc.get_data()
    exact = np.degrees(np.arccos([theory.bisector_cos_mean(int(d)) for d in dims]))
    sd = np.degrees(np.sqrt([theory.bisector_cos_var(int(d)) for d in dims]) / np.sin(np.radians(exact)))
    # The sample mean of 400 angles is within 5 standard errors of arccos(E cos)
    # (plus the small curvature offset, O(sd^2), far below that at these dims):
    # a curve 0.3 sd off at any dimension would fail.
    assert np.all(np.abs(means - exact) < 5 * sd / np.sqrt(400) + 0.05 * sd)


def test_decomposition_curves_against_independent_values(ax):
    """The three curves (each divided by n) against values that do not come from
    the decomposition: the sphere factor's closed form 2**n sin(a)**(n-2) / B_n
    (scipy's gammaln), the density integrating to one over the plotted grid, and the
    orthant fraction: exactly 1 up to arcsin(1/sqrt n), at most 1, below it in the bulk, and at
    a* = arccos(sqrt(2/pi)) near its bulk rate -log 2 - log(1 - 2/pi)/2 (the gap
    is O(log(n)/n), 1e-3 at n = 1e4)."""
    n = 10**4
    out = plot.decomposition(n, ax=ax)
    assert out is ax
    (x, ls), (_, lg), (_, lp) = (line.get_data() for line in ax.lines[:3])
    a = np.radians(x)
    log_b = 0.5 * np.log(np.pi) + special.gammaln((n - 1) / 2) - special.gammaln(n / 2)
    np.testing.assert_allclose(ls, (n * np.log(2) + (n - 2) * np.log(np.sin(a)) - log_b) / n, rtol=1e-12)
    # the grid spacing (0.002 rad) is half the angle's sd: the trapezoid rule is exact to 1e-9 here
    assert np.trapezoid(np.exp(n * lp), a) == pytest.approx(1.0, abs=1e-6)
    a0 = np.arcsin(1 / np.sqrt(n))
    assert np.all(lg[a <= a0] == 0) and np.all(lg <= 0) and np.all(lg[a > 0.5] < 0)
    bulk = -np.log(2) - 0.5 * np.log(1 - 2 / np.pi)
    assert abs(np.interp(np.arccos(np.sqrt(2 / np.pi)), a, lg) - bulk) < 1e-3


@pytest.mark.parametrize("bad", [[], [0.1, np.nan]])
def test_bad_angles(ax, bad):
    with pytest.raises(ValueError, match="angles"):
        plot.angle_histogram(bad, ax=ax)


def test_bad_law(ax):
    with pytest.raises(TypeError, match=r"laws\[0\] must be a law with a pdf"):
        plot.angle_histogram([0.1, 0.2, 0.3], laws=[3], ax=ax)
