"""Angles of user arrays."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from lni_geometry import bisector_angle, fixed_axis_angle, max_bisector_angle, sign_angle


def test_known_angles():
    assert bisector_angle([1.0, 1.0, -1.0]) == 0.0
    assert bisector_angle([1.0, 0.0]) == pytest.approx(math.pi / 4, rel=1e-15)
    assert bisector_angle([1.0, 0.0, 0.0, 0.0]) == pytest.approx(max_bisector_angle(4), rel=1e-15)
    assert bisector_angle([3.0, 4.0]) == pytest.approx(math.acos(7 / (math.sqrt(2) * 5)), rel=1e-14)
    assert sign_angle([1.0, 0.0, 0.0]) == 0.0
    assert sign_angle([3.0, 4.0, 0.0]) == pytest.approx(math.acos(7 / (math.sqrt(2) * 5)), rel=1e-14)
    assert fixed_axis_angle([1.0, 1.0]) == 0.0
    assert fixed_axis_angle([-1.0, -1.0]) == pytest.approx(math.pi, rel=1e-15)
    assert fixed_axis_angle([0.0, 2.0], direction=[1.0, 0.0]) == pytest.approx(math.pi / 2, rel=1e-15)


def test_small_angles_are_accurate():
    """Near 0, arccos would lose half the digits; the atan2 form does not."""
    eps = 1e-9
    v = np.array([1.0 + eps, 1.0, 1.0, 1.0])
    # exact: angle between v and (1,1,1,1): |v x e| / (v . e) to first order
    u = v / np.linalg.norm(v)
    e = np.full(4, 0.5)
    perp = u - (u @ e) * e
    expected = math.atan2(np.linalg.norm(perp), u @ e)
    assert bisector_angle(v) == pytest.approx(expected, rel=1e-6)
    assert bisector_angle(v) == pytest.approx(math.sqrt(3) / 4 * eps, rel=1e-6)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300, 5e-324 * 2**10])
def test_extreme_scales_are_exact(scale):
    v = np.array([[3.0, -4.0, 1.0, 0.5], [1.0, 1.0, 1.0, 2.0]])
    for f in (bisector_angle, sign_angle, fixed_axis_angle):
        np.testing.assert_allclose(f(v * scale), f(v), rtol=1e-14)


def test_rows_and_axis():
    g = np.random.default_rng(0).standard_normal((5, 7))
    row = bisector_angle(g)
    assert row.shape == (5,)
    np.testing.assert_allclose(bisector_angle(g.T, axis=0), row, rtol=1e-15)
    np.testing.assert_allclose([bisector_angle(r) for r in g], row, rtol=1e-15)
    cos = np.abs(g).sum(1) / (math.sqrt(7) * np.linalg.norm(g, axis=1))
    np.testing.assert_allclose(np.cos(row), cos, rtol=1e-13)


def test_zero_and_non_finite_rows_are_named():
    v = np.ones((4, 3))
    v[1] = 0
    v[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"non-finite entries in rows \[3\]"):
        bisector_angle(v)
    v[3, 2] = 1
    with pytest.raises(ValueError, match=r"zero vectors in rows \[1\]"):
        sign_angle(v)
    with pytest.raises(ValueError, match="^v is the zero vector; it has no angle$"):
        fixed_axis_angle(np.zeros(3))  # 1-D: no "rows [()]"
    with pytest.raises(ValueError, match="non-finite"):
        fixed_axis_angle([1.0, np.inf])
    with pytest.raises(ValueError, match="direction must be a vector of length 3"):
        fixed_axis_angle([1.0, 2.0, 3.0], direction=[1.0, 0.0])
    with pytest.raises(TypeError, match="real array"):
        bisector_angle(["a", "b"])


def test_max_bisector_angle():
    assert max_bisector_angle(1) == 0.0
    assert max_bisector_angle(2) == pytest.approx(math.pi / 4, rel=1e-15)
    assert max_bisector_angle(10**9) == pytest.approx(math.acos(10**-4.5), rel=1e-15)
    with pytest.raises(ValueError, match=r"dim must be an integer in \[1, inf\), got 0$"):
        max_bisector_angle(0)
    with pytest.raises(TypeError, match=r"dim must be an integer in \[1, inf\), got float 2\.0 \(pass 2\)$"):
        max_bisector_angle(2.0)


finite = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: abs(x) > 1e-6)


@given(arrays(np.float64, st.integers(2, 40), elements=finite), st.floats(1e-100, 1e100))
def test_properties(v, scale):
    a = bisector_angle(v)
    assert 0 <= a <= max_bisector_angle(v.size) + 1e-12
    assert bisector_angle(v * scale) == pytest.approx(a, rel=1e-12, abs=1e-14)
    assert bisector_angle(-v) == pytest.approx(a, rel=1e-15, abs=1e-15)
    # no zeros: sign angle equals bisector angle
    assert sign_angle(v) == pytest.approx(a, rel=1e-12, abs=1e-14)
    assert 0 <= fixed_axis_angle(v) <= math.pi
    assert fixed_axis_angle(-v) == pytest.approx(math.pi - fixed_axis_angle(v), rel=1e-12, abs=1e-12)


@given(arrays(np.float64, st.integers(3, 30), elements=st.sampled_from([0.0, 1.0, -2.0, 0.5])))
def test_sign_angle_ignores_zeros(v):
    if not np.any(v):
        return
    nz = v[v != 0]
    assert sign_angle(v) == pytest.approx(bisector_angle(nz), abs=1e-12)
    assert sign_angle(v) <= bisector_angle(v) + 1e-12


def test_scalar_and_bad_axis_are_clear_errors():
    """A 0-d array is not a vector (numpy's AxisError before); a bad axis is named."""
    for f in (bisector_angle, sign_angle, fixed_axis_angle):
        with pytest.raises(ValueError, match=r"got a scalar \(3\.0\)"):
            f(np.array(3.0))
    with pytest.raises(ValueError, match=r"axis 1 is out of range .* \(valid: -1 \.\. 0\)"):
        bisector_angle(np.ones(3), axis=1)
    with pytest.raises(ValueError, match="^v has non-finite entries; it has no angle$"):
        bisector_angle([1.0, np.nan])
