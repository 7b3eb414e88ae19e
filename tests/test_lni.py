"""Tests of lni, lni_haar and rotate (lni_geometry.geometry).

Statistical tests use fixed seeds and a p-value threshold of 1e-3: under the
null hypothesis (the implementation draws the stated law) each test fails with
probability 1e-3, so the ~40 statistical checks here would all pass for a
random seed with probability about 0.96; the threshold is not tuned to the seeds.
Tests of a law compare distributions with:

- Kolmogorov-Smirnov (one-sample against an exact law, two-sample against a
  Monte Carlo reference from ``sample_angles`` or against the definition
  ``lni_haar``);
- the Rayleigh test of isotropy on S^(m-1): ``N m |mean z|^2 ~ chi2(m)``;
- the Bingham test: ``N m (m + 2)/2 (tr(T^2) - 1/m) ~ chi2((m - 1)(m + 2)/2)``,
  ``T = mean z z^T`` (Mardia & Jupp, "Directional Statistics", 2000, Sec. 10.7).

Power: with 2000 draws against 2000 (or 20000) the two-sample KS tests reject a
cdf difference of about ``1.95 sqrt(1/2000 + 1/2000) = 0.062`` (0.046 against
20000): a difference in the angle's law, not a 0.1% error in a rotation.  Exact
properties carry the fine checks: ``rotate`` turns by its angle to 1e-10 (a
rotation 0.1% too large fails: ``test_rotation_check_rejects_*``), ``lni_haar``
is ``B sign(B^T v)`` (a transposed ``B`` fails: ``test_haar_structure_check_rejects_*``).
"""

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy import stats

from lni_geometry import sample_angles
from lni_geometry.geometry import _angle_between, lni, lni_haar, rotate

P_MIN = 1e-3
DIMS = [2, 3, 8, 32]
DRAWS = 2000  # per implementation and dimension
REFERENCE = 20000  # Monte Carlo draws of the bisector law per dimension


def angle(a, b):
    """The package's stable angle 2 atan2(|a - b|, |a + b|) of the unit vectors."""
    return float(_angle_between(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def angles_to(x, v):
    """Angles between the rows of x and the vector v."""
    return _angle_between(np.asarray(x, np.float64), np.broadcast_to(np.asarray(v, np.float64), x.shape))


def rayleigh_p(z):
    n, m = z.shape
    zbar = z.mean(axis=0)
    return stats.chi2.sf(n * m * zbar @ zbar, m)


def bingham_p(z):
    n, m = z.shape
    t = z.T @ z / n
    s = n * m * (m + 2) / 2 * (np.trace(t @ t) - 1.0 / m)
    return stats.chi2.sf(s, (m - 1) * (m + 2) // 2)


def orthogonal_coords(x, v):
    """Unit coordinates of the part of each row of x orthogonal to v, in a basis of v's complement."""
    n = v.shape[0]
    q, _ = np.linalg.qr(np.column_stack([v, np.random.default_rng(99).standard_normal((n, n - 1))]))
    z = x @ q[:, 1:]
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def generic_vector(n):
    """A generic direction with zeros, mixed signs and scales (the law must not depend on it)."""
    v = np.random.default_rng(1000 + n).standard_normal(n) * np.logspace(-2, 2, n)
    v[::3] = 0.0 if n > 2 else v[::3]
    return v


# --- rotate --------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
@pytest.mark.parametrize("a", [0.0, 1e-12, 1e-6, 0.3, np.pi / 2, 2.5, np.pi - 1e-9, np.pi])
def test_rotate_angle_and_norm_exact(n, a):
    check_rotation(rotate, n, a)


def check_rotation(fn, n, a):
    """``fn(v, a, rng)`` turns ``v`` by exactly ``a`` (1e-10) and keeps its norm (1e-13)."""
    v = np.random.default_rng(n).standard_normal(n) * 7.0
    r = fn(v, a, rng=np.random.default_rng(5))
    assert abs(angle(r, v) - a) < 1e-10
    assert np.linalg.norm(r) == pytest.approx(np.linalg.norm(v), rel=1e-13)


@pytest.mark.parametrize("n,a", [(3, 0.3), (1000, 2.5), (10, 1e-6)])
def test_rotation_check_rejects_a_rotation_0_1pct_too_large(n, a):
    """Power: a rotation by 1.001 a, or a norm 1e-9 too large, fails the check above."""
    with pytest.raises(AssertionError):
        check_rotation(lambda v, a, rng: rotate(v, a * 1.001, rng=rng), n, a)
    with pytest.raises(AssertionError):
        check_rotation(lambda v, a, rng: rotate(v, a, rng=rng) * (1 + 1e-9), n, a)


@settings(max_examples=max(60, settings.default.max_examples), deadline=None)
@given(
    v=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=40).filter(
        lambda xs: any(abs(x) > 1e-3 for x in xs)
    ),
    a=st.floats(0.0, np.pi),
    scale=st.sampled_from([1e-300, 1.0, 1e300]),
    seed=st.integers(0, 2**32),
)
def test_rotate_property(v, a, scale, seed):
    v = np.asarray(v) / np.abs(v).max() * scale
    r = rotate(v, a, rng=seed)
    assert np.all(np.isfinite(r))
    assert abs(angle(r / scale, v / scale) - a) < 1e-10
    assert np.linalg.norm(r / scale) == pytest.approx(np.linalg.norm(v / scale), rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 8, 32])
def test_rotate_direction_isotropic(n):
    v = generic_vector(n)
    gen = np.random.default_rng(7 + n)
    x = np.array([rotate(v, 1.0, rng=gen) for _ in range(DRAWS)])
    z = orthogonal_coords(x, v)
    assert rayleigh_p(z) > P_MIN
    if n >= 3:
        assert bingham_p(z) > P_MIN


def test_rotate_length_one():
    np.testing.assert_array_equal(rotate([-2.0], 0.0), [-2.0])
    np.testing.assert_array_equal(rotate([-2.0], np.pi), [2.0])
    with pytest.raises(ValueError, match=r"angle must be 0 or pi.*0\.5"):
        rotate([-2.0], 0.5)


@pytest.mark.parametrize("a", [-0.1, 3.2, np.inf, np.nan])
def test_rotate_bad_angle(a):
    with pytest.raises(ValueError, match=r"angle must be a finite number in \[0, pi\], got " + re.escape(repr(float(a))) + "$"):
        rotate([1.0, 2.0], a)


def test_rotate_bad_inputs():
    with pytest.raises(TypeError, match=r"angle must be a real number in \[0, pi\], got bool True$"):
        rotate([1.0, 2.0], True)
    with pytest.raises(TypeError, match=r"angle must be a real number in \[0, pi\], got str '0\.5'$"):
        rotate([1.0, 2.0], "0.5")
    with pytest.raises(ValueError, match="zero vector"):
        rotate([0.0, 0.0], 0.5)
    with pytest.raises(ValueError, match="1-D vector, got shape"):
        rotate(np.ones((2, 2)), 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        rotate([1.0, np.nan], 0.5)
    with pytest.raises(ValueError, match="at least one entry"):
        rotate([], 0.5)
    with pytest.raises(TypeError, match="real array"):
        rotate(["a", "b"], 0.5)
    with pytest.raises(TypeError, match="rng must be"):
        rotate([1.0, 2.0], 0.5, rng="seed")


def test_rotate_rng_dtype_and_no_mutation():
    v = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    before = v.copy()
    a = rotate(v, 0.7, rng=3)
    b = rotate(v, 0.7, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(v, before)
    assert a.dtype == np.float32
    assert rotate([1, 2, 3], 0.7, rng=3).dtype == np.float64
    gen = np.random.default_rng(4)
    assert not np.array_equal(rotate(v, 0.7, rng=gen), rotate(v, 0.7, rng=gen))


# --- lni and lni_haar: exact properties ------------------------------------------------


@pytest.mark.parametrize("fn", [lni, lni_haar])
@pytest.mark.parametrize("n", [2, 3, 8, 32, 200])
def test_norm_is_sqrt_n(fn, n):
    gen = np.random.default_rng(n)
    for _ in range(5):
        x = fn(generic_vector(n), rng=gen)
        assert x.shape == (n,)
        assert np.linalg.norm(x) == pytest.approx(np.sqrt(n), rel=1e-13)


def test_lni_large_dim_norm():
    n = 1_000_000
    v = np.random.default_rng(0).standard_normal(n)
    x = lni(v, rng=1)
    assert np.linalg.norm(x) == pytest.approx(1000.0, rel=1e-12)
    # The angle to v concentrates at arccos(sqrt(2/pi)) with sd ~0.35/sqrt(n) = 3.5e-4.
    assert abs(angle(x, v) - np.arccos(np.sqrt(2 / np.pi))) < 5 * 0.352 / np.sqrt(n) + 1e-4


@settings(max_examples=max(40, settings.default.max_examples), deadline=None)
@given(
    v=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=30).filter(
        lambda xs: any(x != 0 for x in xs)
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32),
)
def test_lni_property(v, dtype, seed):
    v = np.asarray(v, dtype=dtype)
    assume(np.any(v != 0))  # float32 rounds tiny entries to zero
    before = v.copy()
    x = lni(v, rng=seed)
    np.testing.assert_array_equal(v, before)
    assert x.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert np.linalg.norm(x.astype(np.float64)) == pytest.approx(np.sqrt(v.size), rel=tol)
    # Fully determined by rng, and by v only through its direction.
    np.testing.assert_array_equal(x, lni(v, rng=np.random.default_rng(seed)))
    np.testing.assert_allclose(lni(v * dtype(3.0), rng=seed), x, rtol=tol, atol=tol)


@pytest.mark.parametrize("fn", [lni, lni_haar])
def test_length_one_is_sign(fn):
    for seed in range(5):
        np.testing.assert_array_equal(fn([-2.5], rng=seed), [-1.0])
        np.testing.assert_array_equal(fn([1e-300], rng=seed), [1.0])


@pytest.mark.parametrize("fn", [lni, lni_haar])
def test_bad_inputs(fn):
    with pytest.raises(ValueError, match="zero vector"):
        fn(np.zeros(4))
    with pytest.raises(ValueError, match="1-D vector"):
        fn(np.ones((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        fn([1.0, np.inf])
    with pytest.raises(TypeError, match="real array"):
        fn(np.array([1 + 1j, 2]))


def test_lni_rng_streams():
    v = generic_vector(16)
    gen = np.random.default_rng(11)
    a, b = lni(v, rng=gen), lni(v, rng=gen)
    assert not np.array_equal(a, b)
    gen = np.random.default_rng(11)
    np.testing.assert_array_equal(lni(v, rng=gen), a)
    np.testing.assert_array_equal(lni(v, rng=gen), b)


def check_haar_structure(fn, n=6, seed=2, count=300):
    """``fn(v, rng=seed)`` is ``B sign(B^T v)`` for one orthogonal ``B`` per seed,
    checked without drawing ``B``: for many ``v`` and the same seed the results
    ``x_i = B s_i`` with ``s_i`` in ``{-1, 1}^n`` have integer inner products
    ``s_i . s_j`` of the parity of ``n`` (``n`` on the diagonal), and ``s_i = sign(B^T v_i)``
    maximises ``v_i . B s`` over all sign vectors, so ``v_i . x_i >= v_i . x_j``."""
    vs = np.random.default_rng(7).standard_normal((count, n))
    x = np.array([fn(v, rng=seed) for v in vs])
    gram = x @ x.T
    k = np.rint(gram)
    assert np.abs(gram - k).max() < 1e-10
    assert np.all(np.diag(k) == n) and np.all((k - n) % 2 == 0)
    assert len({tuple(np.rint(row)) for row in k}) > 10  # many distinct sign vectors were reached
    scores = vs @ x.T  # scores[i, j] = v_i . x_j
    assert np.all(np.diag(scores) >= scores.max(axis=1) - 1e-10)


def test_lni_haar_sign_structure():
    check_haar_structure(lni_haar)


def test_haar_structure_check_rejects_a_transposed_b():
    """Power: ``B sign(B v)`` (B where B^T belongs) and ``B^T sign(B^T v)`` fail the check."""
    from scipy.stats import ortho_group

    def wrong(v, rng, transpose_inside):
        b = ortho_group.rvs(len(v), random_state=np.random.default_rng(rng))
        return b @ np.sign((b if transpose_inside else b.T) @ v) if transpose_inside else b.T @ np.sign(b.T @ v)

    for transpose_inside in (True, False):
        with pytest.raises(AssertionError):
            check_haar_structure(lambda v, rng: wrong(v, rng, transpose_inside))


# --- lni against its definition, in law -------------------------------------------------


@pytest.fixture(scope="module", params=DIMS)
def draws(request):
    n = request.param
    v = generic_vector(n)
    fast = np.array([lni(v, rng=np.random.default_rng([n, i])) for i in range(DRAWS)])
    gen = np.random.default_rng(10_000 + n)
    haar = np.array([lni_haar(v, rng=gen) for _ in range(DRAWS)])
    ref = sample_angles(n, REFERENCE, seed=20_000 + n, backend="cpu").bisector
    return n, v, fast, haar, ref


def test_angle_law_definition_vs_bisector_law(draws):
    """The fact lni rests on: the angle of B sign(B^T v) to v has the bisector law."""
    n, v, _, haar, ref = draws
    assert stats.ks_2samp(angles_to(haar, v), ref).pvalue > P_MIN


def test_angle_law_lni_vs_definition(draws):
    n, v, fast, haar, ref = draws
    t_fast = angles_to(fast, v)
    assert stats.ks_2samp(t_fast, angles_to(haar, v)).pvalue > P_MIN
    assert stats.ks_2samp(t_fast, ref).pvalue > P_MIN


@pytest.mark.parametrize("draws", [2], indirect=True)
def test_angle_law_exact_at_dim_2(draws):
    """n = 2: the bisector angle is Uniform[0, pi/4]."""
    n, v, fast, haar, _ = draws
    assert n == 2
    for x in (fast, haar):
        assert stats.kstest(angles_to(x, v), stats.uniform(0, np.pi / 4).cdf).pvalue > P_MIN


def test_orthogonal_part_isotropic(draws):
    n, v, fast, haar, _ = draws
    for x in (fast, haar):
        z = orthogonal_coords(x, v)
        assert rayleigh_p(z) > P_MIN
        if n >= 3:
            assert bingham_p(z) > P_MIN


def test_joint_law_lni_vs_definition(draws):
    """The angle to a fixed direction other than v depends on the joint law of (t, w)."""
    n, v, fast, haar, _ = draws
    e = np.random.default_rng(3 * n).standard_normal(n)
    assert stats.ks_2samp(angles_to(fast, e), angles_to(haar, e)).pvalue > P_MIN
    # Independence of the angle and the orthogonal direction: isotropy on each half.
    t = angles_to(fast, v)
    z = orthogonal_coords(fast, v)
    for half in (t < np.median(t), t >= np.median(t)):
        assert rayleigh_p(z[half]) > P_MIN
