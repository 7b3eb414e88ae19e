"""The declared domains of :mod:`lni_geometry.validation`: one message format, one answer.

Each public entry point that takes a dimension must refuse the integral float
``1e6`` the same way (``NotAnIntegerError``, both a ``TypeError`` and a
``ValueError``, naming ``1000000``); a wrong check (``dim >= 3``, an open end
written as closed, ``1e6`` accepted somewhere) fails here.
"""

import math
import re

import numpy as np
import pytest

import lni_geometry as lg
from lni_geometry import theory as T
from lni_geometry.geometry import max_bisector_angle
from lni_geometry.validation import (
    ALPHA,
    ANGLE,
    DIM,
    Domain,
    NotAnIntegerError,
    check_count,
    check_hyperparameters,
    check_int,
)

DIM_ENTRY_POINTS = {
    "sample_angles": lambda d: lg.sample_angles(d, 2, backend="cpu"),
    "sample_vectors": lambda d: lg.sample_vectors(d, 2),
    "sweep": lambda d: lg.sweep([d], "gaussian", 10, backend="cpu"),
    "BisectorAngle": T.BisectorAngle,
    "FixedAxisAngle": T.FixedAxisAngle,
    "StableBisectorAngle": lambda d: T.StableBisectorAngle(d, 1.5),
    "alpha_for_angle": lambda d: lg.tails.alpha_for_angle(1.0, d, samples=10),
}


@pytest.mark.parametrize("entry", sorted(DIM_ENTRY_POINTS))
def test_an_integral_float_dimension_has_one_answer_everywhere(entry):
    with pytest.raises(NotAnIntegerError,
                       match=re.escape("dim must be an integer in [2, 2**40], got float 1000000.0 (pass 1000000)")):
        DIM_ENTRY_POINTS[entry](1e6)


def test_not_an_integer_is_both_a_type_and_a_value_error():
    assert issubclass(NotAnIntegerError, TypeError) and issubclass(NotAnIntegerError, ValueError)
    for value in (2.5, math.nan, math.inf, np.float64(10.0)):
        with pytest.raises(TypeError):
            DIM.check(value)
        with pytest.raises(ValueError):
            DIM.check(value)
    # no "(pass ...)" hint towards an integer that is itself outside the domain
    with pytest.raises(NotAnIntegerError, match=r"got float 1\.0$"):
        DIM.check(1.0)
    assert max_bisector_angle(np.int64(2)) == pytest.approx(math.pi / 4)


@pytest.mark.parametrize(
    "domain, value, err, message",
    [
        (ALPHA, 2.5, ValueError, "alpha must be a finite number in (0, 2], got 2.5"),
        (ALPHA, 0, ValueError, "alpha must be a finite number in (0, 2], got 0.0"),
        (ALPHA, "1.5", TypeError, "alpha must be a real number in (0, 2], got str '1.5'"),
        (ALPHA, True, TypeError, "alpha must be a real number in (0, 2], got bool True"),
        (DIM, 1, ValueError, "dim must be an integer in [2, 2**40], got 1"),
        (DIM, 2**40 + 1, ValueError, "dim must be an integer in [2, 2**40], got 1099511627777"),
        (DIM, None, TypeError, "dim must be an integer in [2, 2**40], got NoneType None"),
        (ANGLE, -0.0 - 1e-300, ValueError, "angle must be a finite number in [0, pi], got -1e-300"),
        (Domain("samples", "int", 1), 0, ValueError, "samples must be an integer in [1, inf), got 0"),
        (Domain("x", "real", None, 1.0, high_open=True), 1.0, ValueError, "x must be a finite number in (-inf, 1), got 1.0"),
    ],
)
def test_one_message_format(domain, value, err, message):
    with pytest.raises(err, match="^" + re.escape(message) + "$"):
        domain.check(value)


def test_the_ends_are_where_the_interval_says():
    assert ALPHA.check(2) == 2.0 and ANGLE.check(0) == 0.0 and ANGLE.check(math.pi) == math.pi
    assert DIM.check(np.int64(2)) == 2 and DIM.check(2**40) == 2**40
    assert check_int("start", 0, 0, 2**48) == 0
    with pytest.raises(ValueError, match=re.escape("start must be an integer in [0, 2**48], got 281474976710657")):
        check_int("start", 2**48 + 1, 0, 2**48)
    assert check_hyperparameters(1, 0, 0.5, 0) == (1.0, 0.0, 0.5, 0.0)
    assert check_count("chunk_samples", None, optional=True) is None


def test_named_alternatives():
    assert ANGLE.check("lni", names=("lni",)) == "lni"
    with pytest.raises(ValueError, match=re.escape("angle must be a finite number in [0, pi], 'lni' or 'lion', got 'x'")):
        ANGLE.check("x", names=("lni", "lion"))
    with pytest.raises(TypeError, match=re.escape("angle must be a real number in [0, pi], got str 'lni'")):
        ANGLE.check("lni")


def test_check_array_names_the_first_bad_entry():
    np.testing.assert_array_equal(ANGLE.check_array([0.0, 1.0]), [0.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("angle[1] must be a finite number in [0, pi], got 3.5")):
        ANGLE.check_array([0.5, 3.5, -1.0])
    with pytest.raises(ValueError, match=re.escape("angle[0, 1] must be a finite number in [0, pi], got nan")):
        ANGLE.check_array([[0.5, math.nan]])
    with pytest.raises(ValueError, match=re.escape("angle must be a finite number in [0, pi], got -1.0")):
        ANGLE.check_array(-1.0)
