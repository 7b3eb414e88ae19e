"""The angle budget: cos(sign angle) = sqrt(2/pi) T H, exactly, and its limits."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lni_geometry as lg

K = math.sqrt(2 / math.pi)


@st.composite
def blocked_vectors(draw):
    """Blocks of random sizes, scales spanning 1e-6..1e6, shapes (Gaussian, Laplace, sparse)."""
    seed = draw(st.integers(0, 2**32 - 1))
    nblocks = draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(nblocks):
        size = int(rng.integers(1, 300))
        kind = rng.integers(3)
        x = [rng.standard_normal, lambda k: rng.laplace(size=k), lambda k: rng.standard_normal(k) * (rng.random(k) < 0.3)][kind](size)
        blocks.append(x * 10.0 ** rng.uniform(-6, 6))
    if not any(np.any(b) for b in blocks):
        blocks[0][0] = 1.0
    return blocks


@given(blocked_vectors())
def test_identity_holds_to_1e12(blocks):
    """cos(angle) = sqrt(2/pi) T H, with the angle checked against sign_angle (computed
    another way: 2 atan2 of the unit vectors); H <= 1 (Cauchy-Schwarz)."""
    b = lg.angle_budget(blocks)
    c = np.concatenate(blocks)
    assert abs(math.cos(b.angle) - K * b.T * b.H) < 1e-12
    assert abs(b.angle - lg.sign_angle(c)) < 1e-10  # arccos near 0 loses digits; 1e-10 rad
    assert b.H <= 1 + 1e-15
    assert b.n == c.size and b.nnz == np.count_nonzero(c)
    assert b.angle_tails == pytest.approx(math.acos(min(1.0, K * b.T)), abs=1e-15)
    assert b.angle_heterogeneity == pytest.approx(math.acos(K * b.H), abs=1e-15)
    assert b.isotropic == pytest.approx(0.6470185995563307, abs=1e-15)  # arccos(sqrt(2/pi))
    sizes = [x.size for x in blocks]
    assert lg.angle_budget(c, blocks=sizes) == b
    assert lg.angle_budget(c, blocks=blocks) == b


def test_bisector_angle_counts_the_zeros():
    rng = np.random.default_rng(0)
    c = rng.standard_normal(1000) * (rng.random(1000) < 0.6)
    b = lg.angle_budget(c, blocks=[400, 600])
    assert abs(math.cos(lg.bisector_angle(c)) - K * b.T * b.H * math.sqrt(b.nnz / b.n)) < 1e-12


def test_one_gaussian_block():
    """T -> 1 with standard error sqrt(1 - 3/pi) / (sqrt(2/pi) sqrt(n)) = 2.7e-4 at n = 1e6
    (tolerance 5 SE: a 0.14% bias in T is detected); H = 1 exactly."""
    n = 10**6
    c = np.random.default_rng(1).standard_normal(n)
    b = lg.angle_budget(c)
    se = math.sqrt(1 - 3 / math.pi) / (K * math.sqrt(n))
    assert abs(b.T - 1) < 5 * se
    assert abs(b.H - 1) < 1e-15


def test_gaussian_blocks_of_different_scales():
    """H = sum w s / sqrt(sum w s^2) with the true scales (1, 10, 0.1) and weights (0.2, 0.3, 0.5):
    0.5915; the sample RMS has relative SE 1/sqrt(2 n_k), tolerance 5 SE. T -> 1 as above."""
    rng = np.random.default_rng(2)
    sizes, scales = [40_000, 60_000, 100_000], [1.0, 10.0, 0.1]
    c = np.concatenate([s * rng.standard_normal(k) for k, s in zip(sizes, scales)])
    b = lg.angle_budget(c, blocks=sizes)
    w = np.array(sizes) / sum(sizes)
    s = np.array(scales)
    h = (w * s).sum() / math.sqrt((w * s * s).sum())
    assert abs(b.H / h - 1) < 5 / math.sqrt(2 * min(sizes))
    se = math.sqrt(1 - 3 / math.pi) / (K * math.sqrt(min(sizes)))
    assert abs(b.T - 1) < 5 * se
    assert b.angle > b.isotropic + 0.4  # heterogeneity alone lifts the angle to 62 deg


def test_laplace_block_tails_factor():
    """Laplace: E|x| / RMS = 1/sqrt(2), so T = sqrt(pi)/2 = 0.8862 (SE of rho at n = 4e5:
    sqrt(Var(|x|)/E x^2 + ...) < 1.2e-3 / sqrt(n/1e5); tolerance 5 SE, detects 1%)."""
    n = 400_000
    c = np.random.default_rng(3).laplace(size=n)
    b = lg.angle_budget(c)
    assert abs(b.T - math.sqrt(math.pi) / 2) < 5 * 1.2e-3 / math.sqrt(n / 1e5)
    assert b.angle_tails > b.isotropic and b.angle_heterogeneity == pytest.approx(b.isotropic)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros(5),), {}, "zero vector"),
        ((np.ones(5),), dict(blocks=[2, 2]), "add up to len"),
        ((np.ones((2, 3)),), {}, "1-D vector"),
        ((np.array([1.0, np.inf]),), {}, "non-finite"),
        (([np.ones(2)],), dict(blocks=[2]), "not both"),
        ((np.ones(0),), {}, "no entries"),
        ((np.ones(3),), dict(blocks=[-1, 4]), "size >= 0"),
    ],
)
def test_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lg.angle_budget(*args, **kwargs)
