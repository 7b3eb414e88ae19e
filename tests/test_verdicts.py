"""The fixed criteria behind the training figures' verdicts, on arrays whose answer is known.

Each criterion of :mod:`lni_geometry.experiments.verdicts` compares optimizers by their
differences paired by seed, within 2 paired standard errors (or a rank correlation, or
a band); these tests build
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


def test_calibrated_vs_lion_sides_at_two_paired_standard_errors():
    # the paired difference Enim - Lion has sd 0.03 over 3 seeds: SE 0.03 / sqrt(3) = 0.0173; 2 SE = 0.0346
    se2 = 2 * 0.03 / math.sqrt(3)
    lion = np.stack([np.array([0.7, 0.9, 0.8])] * 4)  # a large spread between seeds, common to both
    offsets = [-1.1 * se2, -0.9 * se2, 0.9 * se2, 1.1 * se2]
    enim = lion + np.stack([_seeds(o, 0.03) for o in offsets])
    arr = {"lrs": np.array([1e-3, 1e-2, 1e-1, 1.0]), "acc_lion": lion, "acc_enim_cal": enim}
    rows = v._calibrated_vs_lion(arr)
    assert [r[-1] for r in rows] == [-1, 0, 0, 1]
    ml, sl, mc, sc, d, se, _ = rows[0]
    assert math.isclose(ml, 0.8) and math.isclose(sl, 0.1)
    assert math.isclose(d, offsets[0]) and math.isclose(se, 0.03 / math.sqrt(3))


def test_pairing_by_seed_detects_what_unpaired_standard_errors_hide():
    # seeds differ by 0.1 for both optimizers alike; Enim is 0.02 below Lion in every seed:
    # unpaired SE sqrt(2 * 0.1**2 / 3) = 0.082 would call it a tie, the paired difference has SE 0
    lion = np.array([[0.7, 0.8, 0.9]])
    arr = {"lrs": np.array([1e-2]), "acc_lion": lion, "acc_enim_cal": lion - 0.02}
    assert v._calibrated_vs_lion(arr)[0][-1] == -1


def test_figure3_check_names_the_worse_lrs_and_what_the_seeds_can_detect():
    lion = np.stack([_seeds(0.9, 0.01)] * 3)
    enim = lion + np.stack([_seeds(0.0, 0.01), _seeds(-0.4, 0.01), _seeds(0.0, 0.01)])
    arr = {"lrs": np.array([1e-3, 1e-2, 1e-1]), "acc_lion": lion, "acc_enim_cal": enim,
           "cal_angle": np.radians([50.0, 60.0, 70.0]),
           "enim_cal_sign_angle": np.radians(np.full((3, 3), 45.0))}
    line = v.checks(3, arr, {}, {})[0]
    assert "partly" in line and "worse at 1 [lr 1e-02: -0.400 +- 0.006]" in line and "better at 0 of 3" in line
    assert "smallest detectable difference (2 SE) 0.012..0.012" in line


def test_best_angles_ties_within_two_paired_standard_errors():
    # one lr, three angles; each angle's difference from the best has sd 0.03 over the seeds:
    # 2 paired SE = 0.0346
    se2 = 2 * 0.03 / math.sqrt(3)
    base = np.array([0.6, 0.8, 0.7])
    acc = np.stack([base, base + _seeds(-0.9 * se2, 0.03), base + _seeds(-1.1 * se2, 0.03)])[None]
    m, best, tied, se = v._best_angles({"acc": acc})
    assert best.tolist() == [0]
    assert tied.tolist() == [[True, True, False]]
    np.testing.assert_allclose(m[0], acc[0].mean(1))
    np.testing.assert_allclose(se[0], [0.0, 0.03 / math.sqrt(3), 0.03 / math.sqrt(3)])


def test_zero_gradients_more_fewer_and_dead_lrs():
    # lr 0: no zero gradients for either (not counted); lr 1: Lion far above; lr 2: Lion
    # 1.5 paired SE below (within); lr 3: Lion far below
    zc = np.stack([np.zeros(3), _seeds(0.2, 0.01), _seeds(0.3, 0.01), _seeds(0.4, 0.01)])
    zl = zc + np.stack([np.zeros(3), _seeds(0.3, 0.01), _seeds(-1.5 * 0.01 / math.sqrt(3), 0.01),
                        _seeds(-0.3, 0.01)])
    live, more, less, se = v._zero_gradients_lion_vs_calibrated({"zero_frac_lion": zl, "zero_frac_enim_cal": zc})
    assert live.tolist() == [False, True, True, True]
    assert (more, less) == (1, 1)
    np.testing.assert_allclose(se[1:], 0.01 / math.sqrt(3))


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
