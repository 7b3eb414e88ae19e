"""The fixed criteria behind the training figures' verdicts, on arrays whose answer is known.

Each criterion of :mod:`lni_geometry.experiments.verdicts` compares means over seeds
within 2 standard errors (or a rank correlation, or a band); these tests build
seed arrays with chosen means and spreads and check the decision on both sides of
each boundary, so an off-by-one, a flipped comparison or a wrong standard error
fails.
"""

import math

import numpy as np

from lni_geometry.experiments import verdicts as v


def _seeds(mean, sd):
    """Three seeds with sample mean ``mean`` and sample sd (ddof=1) ``sd``."""
    return np.array([mean - sd, mean, mean + sd])


def test_calibrated_vs_lion_sides_at_two_standard_errors():
    # Lion 0.9 +- 0.03 and Enim with the same sd over 3 seeds: SE of the difference
    # sqrt(2 * 0.03**2 / 3) = 0.0245; 2 SE = 0.049
    se2 = 2 * math.sqrt(2 * 0.03**2 / 3)
    lion = np.stack([_seeds(0.9, 0.03)] * 4)
    enim = np.stack([_seeds(0.9 - 1.1 * se2, 0.03), _seeds(0.9 - 0.9 * se2, 0.03),
                     _seeds(0.9 + 0.9 * se2, 0.03), _seeds(0.9 + 1.1 * se2, 0.03)])
    arr = {"lrs": np.array([1e-3, 1e-2, 1e-1, 1.0]), "acc_lion": lion, "acc_enim_cal": enim}
    rows = v._calibrated_vs_lion(arr)
    assert [r[-1] for r in rows] == [-1, 0, 0, 1]
    ml, sl, mc, sc, _ = rows[0]
    assert math.isclose(ml, 0.9) and math.isclose(sl, 0.03) and math.isclose(sc, 0.03)


def test_figure3_check_names_the_worse_lrs():
    lion = np.stack([_seeds(0.9, 0.01)] * 3)
    enim = np.stack([_seeds(0.9, 0.01), _seeds(0.5, 0.01), _seeds(0.9, 0.01)])
    arr = {"lrs": np.array([1e-3, 1e-2, 1e-1]), "acc_lion": lion, "acc_enim_cal": enim,
           "cal_angle": np.radians([50.0, 60.0, 70.0]),
           "enim_cal_sign_angle": np.radians(np.full((3, 3), 45.0))}
    line = v.checks(3, arr, {}, {})[0]
    assert "partly" in line and "worse at 1 [lr 1e-02]" in line and "better at 0 of 3" in line


def test_best_angles_ties_within_two_standard_errors():
    # one lr, three angles; sd 0.03 everywhere: 2 SE of a difference = 0.049
    se2 = 2 * math.sqrt(2 * 0.03**2 / 3)
    acc = np.stack([_seeds(0.8, 0.03), _seeds(0.8 - 0.9 * se2, 0.03), _seeds(0.8 - 1.1 * se2, 0.03)])[None]
    m, best, tied = v._best_angles({"acc": acc})
    assert best.tolist() == [0]
    assert tied.tolist() == [[True, True, False]]
    np.testing.assert_allclose(m[0], acc[0].mean(1))


def test_zero_gradients_more_fewer_and_dead_lrs():
    # lr 0: no zero gradients for either (not counted); lr 1: Lion far above; lr 2: Lion
    # 1.5 SE below (within); lr 3: Lion far below
    zl = np.stack([np.zeros(3), _seeds(0.5, 0.01), _seeds(0.3 - 1.5 * math.sqrt(2 * 0.01**2 / 3), 0.01),
                   _seeds(0.1, 0.01)])
    zc = np.stack([np.zeros(3), _seeds(0.2, 0.01), _seeds(0.3, 0.01), _seeds(0.4, 0.01)])
    live, more, less = v._zero_gradients_lion_vs_calibrated({"zero_frac_lion": zl, "zero_frac_enim_cal": zc})
    assert live.tolist() == [False, True, True, True]
    assert (more, less) == (1, 1)


def test_angle_band_and_growth():
    summary = {"iso_mean": math.radians(37.0), "iso_std": math.radians(0.2)}
    lrs = np.array([1e-4, 1e-3, 1e-2])
    # the band's edge is 37.6 deg: one run at 37.5 is inside it
    med = np.radians([[37.5, 40.0], [50.0, 51.0], [60.0, 61.0]])
    above, rho = v._angle_vs_band({"med_angle": med, "lrs": lrs}, summary)
    assert above.tolist() == [[False, True], [True, True], [True, True]]
    assert rho > 0.9
    _, rho_down = v._angle_vs_band({"med_angle": med[::-1], "lrs": lrs}, summary)
    assert rho_down < -0.9


def test_late_accuracy_sd_uses_the_second_half():
    # two weight decays, two seeds, four evaluations: only the last two count
    acc = np.array([[[0.0, 1.0, 0.5, 0.5], [0.0, 1.0, 0.5, 0.5]],
                    [[0.5, 0.5, 0.2, 0.8], [0.5, 0.5, 0.4, 0.6]]])
    np.testing.assert_allclose(v._late_accuracy_sd({"test_acc": acc}), [0.0, 0.2])
