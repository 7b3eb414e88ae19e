"""compare(): the distances and tests between a sample and a law."""

import numpy as np
import pytest
from scipy import stats

from lni_geometry import compare
from lni_geometry.compare import MIN_EXPECTED, _merge_small


def test_sample_from_the_law_passes_and_sits_at_the_noise_floor():
    law = stats.norm()
    x = law.rvs(size=20000, random_state=np.random.default_rng(7))
    c = compare(x, law, bins=40)
    # Under the null the p-values are uniform: 1e-3 fails once in a thousand seeds.
    assert c.ks_pvalue > 1e-3 and c.chi2_pvalue > 1e-3
    # KS: sqrt(N) D has the Kolmogorov law; 1.95 is its 0.999 quantile.
    assert c.ks * np.sqrt(c.samples) < 1.95
    # TV of a sample from the law: mean tv_noise, and (sum of |.| over bins) a
    # spread far below it; 2x the floor is many standard deviations out.
    assert c.tv < 2 * c.tv_noise
    assert 0 <= c.hellinger < 0.05
    assert c.samples == 20000 and c.bins == 40


def test_a_wrong_law_is_rejected():
    x = stats.norm.rvs(size=20000, random_state=np.random.default_rng(8))
    c = compare(x, stats.norm(loc=0.1))
    # A 0.1 sd shift moves the cdf by up to 0.040; the sample's own KS noise is
    # about 0.5/sqrt(N) = 0.0035, so D stays far above the 0.999 critical value
    # 1.95/sqrt(N) = 0.0138.
    assert c.ks > 1.95 / np.sqrt(c.samples)
    c = compare(x, stats.norm(scale=1.2))
    assert c.ks_pvalue < 1e-6 and c.chi2_pvalue < 1e-6
    assert c.tv > 3 * c.tv_noise


def test_bisector_sample_against_its_law():
    from lni_geometry import sample_angles
    from lni_geometry.theory import BisectorAngle

    s = sample_angles(50, 4000, seed=3, backend="cpu")
    c = compare(s, BisectorAngle(50))
    assert c.ks_pvalue > 1e-3 and c.chi2_pvalue > 1e-3
    assert "BisectorAngle" in repr(c) and "chi2" in repr(c)
    assert set(c.as_dict()) >= {"ks", "ks_pvalue", "tv", "hellinger", "chi2", "chi2_dof", "chi2_pvalue"}


def test_bins_with_small_expectation_are_merged():
    counts = np.array([0, 1, 2, 30, 40, 3, 1, 0], float)
    expected = np.array([0.5, 1.0, 2.0, 30.0, 40.0, 3.0, 1.5, 0.5])
    obs, exp = _merge_small(counts, expected, MIN_EXPECTED)
    assert np.all(exp >= MIN_EXPECTED)
    assert obs.sum() == counts.sum() and exp.sum() == pytest.approx(expected.sum())
    assert obs.size == 3  # [0.5+1+2+30], [40], [3+1.5+0.5]

    x = stats.norm.rvs(size=200, random_state=np.random.default_rng(1))
    c = compare(x, stats.norm(), bins=100)
    assert c.chi2_dof < 100 - 1  # 200 samples over 100 bins: many bins were merged


@pytest.mark.parametrize("bad", [[1.0], [0.1, np.nan, 0.3], [0.2, np.inf]])
def test_bad_angles(bad):
    with pytest.raises(ValueError, match="angle"):
        compare(bad, stats.norm())


def test_bad_law_and_bins():
    with pytest.raises(TypeError, match="law must have a cdf"):
        compare([0.1, 0.2, 0.3], "notalaw")
    with pytest.raises(ValueError, match="bins must be >= 1"):
        compare([0.1, 0.2, 0.3], stats.norm(), bins=0)
