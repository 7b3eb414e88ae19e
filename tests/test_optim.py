"""Tests of the reference Lion and Enim steps (lni_geometry.optim).

Lion is checked against its rule (Chen et al. 2023) written out entry by entry,
and against lion-pytorch when it is installed.  Enim's step norm and rotation
angle are exact by construction and checked to rounding; its LNI angle is
checked in law (KS, p-value threshold 1e-3: see tests/test_lni.py).

Power: the rule check is bit-exact, so any change of the arithmetic fails it
(``test_lion_check_rejects_planted_bugs``: weight decay 0.1% off, not multiplied
by lr, applied after the step, momentum updated first); Enim's angle is checked to
1e-10 rad and its norm to 1e-12 relative, its weight decay to 1e-14
(``test_enim_check_rejects_weight_decay_off``); the LNI angle law (KS, 1000 draws
against 20000) rejects a cdf difference of about 0.065.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from lni_geometry import sample_angles
from lni_geometry.geometry import _angle_between
from lni_geometry.optim import enim_step, lion_step

CONFIGS = [  # (lr, beta1, beta2, weight_decay)
    (1e-4, 0.9, 0.99, 0.0),
    (3e-3, 0.9, 0.99, 0.1),
    (0.1, 0.0, 0.0, 0.0),
    (1e-2, 0.95, 0.98, 1.0),
    (0.5, 0.5, 0.999, 1e-3),
]


def angle(a, b):
    return float(_angle_between(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def inputs(n, dtype, seed, zeros=True):
    """Random param, grad, momentum; with zeros, some entries have c = 0 exactly (m = g = 0)."""
    gen = np.random.default_rng(seed)
    p = gen.standard_normal(n).astype(dtype)
    g = (gen.standard_normal(n) * np.exp(gen.uniform(-5, 2, n))).astype(dtype)
    m = (gen.standard_normal(n) * 0.1).astype(dtype)
    if zeros:
        dead = gen.random(n) < 0.2
        g[dead] = 0
        m[dead] = 0
        g[gen.random(n) < 0.1] = 0  # c != 0 but g = 0
        m[gen.random(n) < 0.1] = 0  # c != 0 but m = 0
    return p, g, m


def lion_by_hand(p, g, m, lr, b1, b2, wd):
    """Chen et al.'s rule, one entry at a time, in the arrays' dtype."""
    dt = p.dtype.type
    p_new, m_new = np.empty_like(p), np.empty_like(m)
    for i in range(p.size):
        c = dt(b1) * m[i] + dt(1 - b1) * g[i]
        s = dt(1) if c > 0 else dt(-1) if c < 0 else dt(0)
        p_new[i] = p[i] - dt(lr) * (s + dt(wd) * p[i])
        m_new[i] = dt(b2) * m[i] + dt(1 - b2) * g[i]
    return p_new, m_new


# --- Lion ------------------------------------------------------------------------


def check_lion_against_rule(step, dtype, config):
    """Three steps of ``step`` equal Chen et al.'s rule written out entry by entry, bit for bit."""
    lr, b1, b2, wd = config
    p, g, m = inputs(300, dtype, seed=int(lr * 1e4) + 7)
    c = b1 * m.astype(np.float64) + (1 - b1) * g.astype(np.float64)
    assert np.sum(c == 0) >= 20  # the test covers sign(0) = 0
    for _ in range(3):  # a few steps, with new gradients
        want_p, want_m = lion_by_hand(p, g, m, lr, b1, b2, wd)
        got_p, got_m = step(p, g, m, lr=lr, beta1=b1, beta2=b2, weight_decay=wd)
        assert got_p.dtype == dtype and got_m.dtype == dtype
        np.testing.assert_array_equal(got_p, want_p)
        np.testing.assert_array_equal(got_m, want_m)
        p, m = got_p, got_m
        g = np.roll(g, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS)
def test_lion_matches_rule(dtype, config):
    check_lion_against_rule(lion_step, dtype, config)


def _wd_off(p, g, m, **kw):  # weight decay 0.1% too strong
    return lion_step(p, g, m, **{**kw, "weight_decay": kw["weight_decay"] * 1.001})


def _wd_not_times_lr(p, g, m, lr, weight_decay, **kw):  # p - lr sign(c) - wd p
    new_p, new_m = lion_step(p, g, m, lr=lr, weight_decay=0.0, **kw)
    return (new_p - p.dtype.type(weight_decay) * p).astype(p.dtype), new_m


def _wd_after_step(p, g, m, lr, weight_decay, **kw):  # decays the updated weights
    new_p, new_m = lion_step(p, g, m, lr=lr, weight_decay=0.0, **kw)
    return (new_p * p.dtype.type(1 - lr * weight_decay)).astype(p.dtype), new_m


def _momentum_first(p, g, m, beta1, beta2, **kw):  # c from the updated momentum
    _, new_m = lion_step(p, g, m, beta1=beta1, beta2=beta2, **kw)
    new_p, _ = lion_step(p, g, new_m, beta1=beta1, beta2=beta2, **kw)
    return new_p, new_m


@pytest.mark.parametrize("planted", [_wd_off, _wd_not_times_lr, _wd_after_step, _momentum_first])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lion_check_rejects_planted_bugs(planted, dtype):
    """Power: weight decay 0.1% off, not multiplied by lr, applied after the step, or
    the momentum updated before c is formed: the rule check fails (it is exact, so
    it detects any change of the arithmetic)."""
    with pytest.raises(AssertionError):
        check_lion_against_rule(planted, dtype, (3e-3, 0.9, 0.99, 0.1))


def test_lion_zero_c_gives_zero_update():
    p = np.array([1.0, -2.0, 3.0])
    g = np.zeros(3)
    m = np.zeros(3)
    new_p, new_m, a = lion_step(p, g, m, lr=0.1, weight_decay=0.5, return_angle=True)
    np.testing.assert_array_equal(new_p, p - 0.1 * 0.5 * p)  # only weight decay acts
    np.testing.assert_array_equal(new_m, m)
    assert math.isnan(a)


def test_lion_paper_typo_not_followed():
    """Chen et al.'s sign(b1 m + (1 - b1) g), not the seed paper's eq. (2) -sign(b1 m - (1 - b1) g)."""
    m = np.array([1.0, -1.0])
    g = np.array([0.5, -0.5])
    new_p, _ = lion_step(np.zeros(2), g, m, lr=0.5)
    np.testing.assert_array_equal(new_p, [-0.5, 0.5])  # Chen et al.
    typo = 0.5 * np.sign(0.9 * m - 0.1 * g)  # the seed paper's eq. (2) as printed
    assert not np.array_equal(new_p, typo)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lion_return_angle_is_sign_angle(dtype):
    p, g, m = inputs(200, dtype, seed=3)
    c = np.float64(0.9) * m.astype(np.float64) + 0.1 * g.astype(np.float64)
    *_, a = lion_step(p, g, m, lr=1e-3, return_angle=True)
    # the sign angle from its definition: cos = ||c||_1 / (sqrt(nnz(c)) ||c||_2)
    want = math.acos(np.abs(c).sum() / (math.sqrt(np.count_nonzero(c)) * np.linalg.norm(c)))
    assert a == pytest.approx(want, abs=1e-6 if dtype == np.float32 else 1e-12)
    # the sign angle ignores the zeros of c: it is smaller than the bisector angle here
    assert a < math.acos(np.abs(c).sum() / (math.sqrt(c.size) * np.linalg.norm(c))) - 0.05
    new_p, _ = lion_step(p, g, m, lr=1e-3)
    step = (p.astype(np.float64) - new_p) / 1e-3
    assert angle(step, c) == pytest.approx(a, abs=1e-3 if dtype == np.float32 else 1e-9)


def test_lion_model_is_concatenation():
    gen = np.random.default_rng(8)
    shapes = {"w": (4, 5), "b": (5,), "s": ()}
    dtypes = {"w": np.float32, "b": np.float64, "s": np.float64}
    p = {k: gen.standard_normal(s).astype(dtypes[k]) for k, s in shapes.items()}
    g = {k: gen.standard_normal(s).astype(dtypes[k]) for k, s in shapes.items()}
    m = {k: gen.standard_normal(s).astype(dtypes[k]) for k, s in shapes.items()}
    g_shuffled = {k: g[k] for k in reversed(list(g))}  # key order follows param
    new_p, new_m, a = lion_step(p, g_shuffled, m, lr=0.01, weight_decay=0.1, return_angle=True)
    assert isinstance(new_p, dict) and list(new_p) == list(p)
    for k in p:
        assert new_p[k].shape == p[k].shape and new_p[k].dtype == p[k].dtype
        assert new_m[k].dtype == m[k].dtype
        want_p, want_m = lion_by_hand(*(np.ravel(d[k]).astype(np.float64) for d in (p, g, m)), 0.01, 0.9, 0.99, 0.1)
        want_p, want_m = want_p.reshape(p[k].shape), want_m.reshape(p[k].shape)
        np.testing.assert_array_equal(new_p[k], want_p.astype(p[k].dtype))
        np.testing.assert_array_equal(new_m[k], want_m.astype(m[k].dtype))
    flat = lambda d: np.concatenate([np.ravel(d[k]).astype(np.float64) for k in p])  # noqa: E731
    c = 0.9 * flat(m) + 0.1 * flat(g)  # no zeros: the sign angle is the bisector angle
    assert a == pytest.approx(math.acos(np.abs(c).sum() / (math.sqrt(c.size) * np.linalg.norm(c))), abs=1e-12)
    # lists and tuples keep their type
    out_list, _ = lion_step(list(p.values()), list(g.values()), tuple(m.values()), lr=0.01)
    out_tuple, _ = lion_step(tuple(p.values()), list(g.values()), list(m.values()), lr=0.01)
    assert isinstance(out_list, list) and isinstance(out_tuple, tuple)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lion_matches_lion_pytorch(dtype):
    torch = pytest.importorskip("torch", reason="torch is not installed: lion-pytorch comparison skipped")
    lion_pytorch = pytest.importorskip(
        "lion_pytorch", reason="lion-pytorch is not installed: comparison with it skipped"
    )
    lr, b1, b2, wd = 3e-3, 0.9, 0.99, 0.1
    p, g, m = inputs(500, dtype, seed=21)
    tp = torch.nn.Parameter(torch.tensor(p))
    opt = lion_pytorch.Lion([tp], lr=lr, betas=(b1, b2), weight_decay=wd)
    opt.state[tp]["exp_avg"] = torch.tensor(m)
    rtol = 1e-6 if dtype == "float32" else 1e-13
    gen = np.random.default_rng(22)
    for _ in range(5):
        tp.grad = torch.tensor(g)
        opt.step()
        p, m = lion_step(p, g, m, lr=lr, beta1=b1, beta2=b2, weight_decay=wd)
        # Tolerances: rounding of the same formulas in another order (lion-pytorch decays the
        # weights as p * (1 - lr wd)), relative to the size of the terms that are added.
        scale = np.abs(np.asarray(m)).max() + np.abs(g).max()
        np.testing.assert_allclose(tp.detach().numpy(), p, rtol=rtol, atol=rtol * lr)
        np.testing.assert_allclose(opt.state[tp]["exp_avg"].numpy(), m, rtol=rtol, atol=rtol * scale)
        g = gen.standard_normal(p.size).astype(dtype)


# --- Enim ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
@pytest.mark.parametrize("a", [0.0, 1e-7, 0.4, 0.6470, 1.2, np.pi / 2, 3.0, np.pi])
def test_enim_step_norm_and_angle_exact(n, a):
    p, g, m = inputs(n, np.float64, seed=n, zeros=n > 2)
    lr = 1e-2
    if n == 1 and a not in (0.0, np.pi):
        with pytest.raises(ValueError, match="angle must be 0 or pi"):
            enim_step(p, g, m, lr=lr, angle=a, rng=0)
        return
    new_p, new_m, turned = enim_step(p, g, m, lr=lr, angle=a, rng=1, return_angle=True)
    update = (p - new_p) / lr
    c = 0.9 * m + 0.1 * g
    assert np.linalg.norm(update) == pytest.approx(math.sqrt(n), rel=1e-12)
    assert abs(angle(update, c) - a) < 1e-10  # the requested angle, measured on the step
    assert abs(turned - angle(update, c)) < 1e-10  # and the reported one
    np.testing.assert_array_equal(new_m, 0.99 * m + (1 - 0.99) * g)


def check_enim_endpoints(step):
    """Angles 0 and pi: the step is -+lr sqrt(n) c/|c| plus the decoupled weight decay -lr wd p."""
    p, g, m = inputs(50, np.float64, seed=5, zeros=False)
    c = 0.9 * m + 0.1 * g
    unit = c / np.linalg.norm(c)
    for a, sign in ((0.0, 1.0), (np.pi, -1.0)):
        new_p, _ = step(p, g, m, lr=0.1, angle=a, weight_decay=0.2, rng=0)
        np.testing.assert_allclose(new_p, p - 0.1 * (sign * math.sqrt(50) * unit + 0.2 * p), rtol=0, atol=1e-14)


def test_enim_endpoints_and_weight_decay():
    check_enim_endpoints(enim_step)


def test_enim_check_rejects_weight_decay_off():
    """Power: Enim with its weight decay 0.1% too strong fails the check above."""
    with pytest.raises(AssertionError):
        check_enim_endpoints(lambda *a, weight_decay, **kw: enim_step(*a, weight_decay=weight_decay * 1.001, **kw))


def test_enim_float32():
    p, g, m = inputs(64, np.float32, seed=9)
    zero = np.zeros_like(p)
    new_p, new_m, a = enim_step(zero, g, m, lr=1.0, angle=0.8, rng=2, return_angle=True)
    assert new_p.dtype == np.float32 and new_m.dtype == np.float32
    c = 0.9 * m.astype(np.float64) + 0.1 * g.astype(np.float64)
    assert np.linalg.norm(new_p.astype(np.float64)) == pytest.approx(8.0, rel=1e-6)
    assert abs(angle(-new_p, c) - 0.8) < 1e-6


def test_enim_lni_angle_is_reported_and_exact():
    gen = np.random.default_rng(4)
    for n in (2, 5, 64):
        p, g, m = inputs(n, np.float64, seed=n + 1)
        new_p, _, t = enim_step(p, g, m, lr=1e-2, angle="lni", rng=gen, return_angle=True)
        update = (p - new_p) / 1e-2
        assert np.linalg.norm(update) == pytest.approx(math.sqrt(n), rel=1e-12)
        assert abs(angle(update, 0.9 * m + 0.1 * g) - t) < 1e-10
        assert 0 <= t <= np.arctan(np.sqrt(n - 1)) + 1e-12


def test_enim_lni_angle_law():
    """With angle="lni" the rotation has the bisector-angle law of dimension n."""
    n, steps = 16, 1000
    p, g, m = inputs(n, np.float64, seed=3)
    gen = np.random.default_rng(17)
    t = [enim_step(p, g, m, lr=1e-3, angle="lni", rng=gen, return_angle=True)[2] for _ in range(steps)]
    ref = sample_angles(n, 20000, seed=18, backend="cpu").bisector
    assert stats.ks_2samp(t, ref).pvalue > 1e-3


def test_enim_n1_lni_is_lion():
    for x in (-0.3, 2.0):
        p, g, m = np.array([0.5]), np.array([x]), np.array([0.0])
        np.testing.assert_array_equal(
            enim_step(p, g, m, lr=0.1, angle="lni", rng=0)[0], lion_step(p, g, m, lr=0.1)[0]
        )


def test_enim_rotates_the_whole_model():
    """One rotation of the concatenated update: whole-model angle exact, norm sqrt(n_total)."""
    gen = np.random.default_rng(12)
    shapes = [(3, 4), (4,), (10,)]
    p = [gen.standard_normal(s) for s in shapes]
    g = [gen.standard_normal(s) for s in shapes]
    m = [gen.standard_normal(s) for s in shapes]
    new_p, new_m, a = enim_step(p, g, m, lr=0.1, angle=0.7, rng=3, return_angle=True)
    assert isinstance(new_p, list) and [x.shape for x in new_p] == shapes
    flat = lambda xs: np.concatenate([x.ravel() for x in xs])  # noqa: E731
    update = (flat(p) - flat(new_p)) / 0.1
    c = 0.9 * flat(m) + 0.1 * flat(g)
    assert np.linalg.norm(update) == pytest.approx(math.sqrt(26), rel=1e-12)
    assert abs(angle(update, c) - 0.7) < 1e-10
    # Not a per-tensor rotation: the blocks are not each turned by 0.7 nor scaled to sqrt(n_i).
    sizes = [12, 4, 10]
    blocks = np.split(update, np.cumsum(sizes)[:-1])
    c_blocks = np.split(c, np.cumsum(sizes)[:-1])
    assert any(abs(angle(u, cb) - 0.7) > 1e-3 for u, cb in zip(blocks, c_blocks))
    assert any(abs(np.linalg.norm(u) - math.sqrt(k)) > 1e-3 for u, k in zip(blocks, sizes))


def test_enim_zero_c():
    p = np.array([1.0, 2.0])
    for a in (0.5, "lni"):
        new_p, new_m, t = enim_step(p, np.zeros(2), np.zeros(2), lr=0.1, angle=a, weight_decay=0.5,
                                    return_angle=True)
        np.testing.assert_array_equal(new_p, p - 0.1 * 0.5 * p)
        np.testing.assert_array_equal(new_m, np.zeros(2))
        assert math.isnan(t)


def test_enim_rng():
    p, g, m = inputs(20, np.float64, seed=1)
    a = enim_step(p, g, m, lr=0.1, angle=0.5, rng=7)[0]
    np.testing.assert_array_equal(a, enim_step(p, g, m, lr=0.1, angle=0.5, rng=np.random.default_rng(7))[0])
    gen = np.random.default_rng(7)
    first = enim_step(p, g, m, lr=0.1, angle="lni", rng=gen)[0]
    assert not np.array_equal(first, enim_step(p, g, m, lr=0.1, angle="lni", rng=gen)[0])


# --- validation --------------------------------------------------------------------

BAD_HYPER = [
    ({"lr": 0.0}, r"lr must be a finite number in \(0, inf\), got 0\.0$"),
    ({"lr": -1e-3}, r"lr must be a finite number in \(0, inf\), got -0\.001$"),
    ({"lr": math.inf}, r"lr must be a finite number in \(0, inf\), got inf$"),
    ({"lr": math.nan}, r"lr must be a finite number in \(0, inf\), got nan$"),
    ({"beta1": 1.0}, r"beta1 must be a finite number in \[0, 1\), got 1\.0$"),
    ({"beta1": -0.1}, r"beta1 must be a finite number in \[0, 1\), got -0\.1$"),
    ({"beta2": 1.5}, r"beta2 must be a finite number in \[0, 1\), got 1\.5$"),
    ({"beta2": 1.0}, r"beta2 must be a finite number in \[0, 1\), got 1\.0$"),
    ({"weight_decay": -1e-4}, r"weight_decay must be a finite number in \[0, inf\), got -0\.0001$"),
]


@pytest.mark.parametrize("step", ["lion", "enim"])
@pytest.mark.parametrize("bad, message", BAD_HYPER)
def test_bad_hyperparameters(step, bad, message):
    kwargs = {"lr": 0.1, **bad}
    p = g = m = np.ones(3)
    with pytest.raises(ValueError, match=message):
        if step == "lion":
            lion_step(p, g, m, **kwargs)
        else:
            enim_step(p, g, m, angle=0.5, **kwargs)


@pytest.mark.parametrize(
    "a, message",
    [
        (-0.1, r"angle must be a finite number in \[0, pi\] or 'lni', got -0\.1$"),
        (3.2, r"angle must be a finite number in \[0, pi\] or 'lni', got 3\.2$"),
        (math.nan, r"angle must be a finite number in \[0, pi\] or 'lni', got nan$"),
        ("sign", r"angle must be a finite number in \[0, pi\] or 'lni', got 'sign'$"),
        ("LNI", r"angle must be a finite number in \[0, pi\] or 'lni', got 'LNI'$"),
    ],
)
def test_bad_angle(a, message):
    with pytest.raises(ValueError, match=message):
        enim_step(np.ones(3), np.ones(3), np.ones(3), lr=0.1, angle=a)


def test_bad_types():
    p = np.ones(3)
    with pytest.raises(TypeError, match=r"lr must be a real number in \(0, inf\), got str '0\.1'$"):
        lion_step(p, p, p, lr="0.1")
    with pytest.raises(TypeError, match=r"beta1 must be a real number in \[0, 1\), got bool True$"):
        lion_step(p, p, p, lr=0.1, beta1=True)
    with pytest.raises(TypeError, match=r"angle must be a real number in \[0, pi\] or 'lni', got NoneType None$"):
        enim_step(p, p, p, lr=0.1, angle=None)
    with pytest.raises(TypeError, match="param must be a floating-point array, got dtype int64"):
        lion_step(np.ones(3, dtype=np.int64), p, p, lr=0.1)
    with pytest.raises(TypeError, match=r"grad\['b'\] must be a floating-point array"):
        lion_step({"b": p}, {"b": np.ones(3, dtype=bool)}, {"b": p}, lr=0.1)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.ones(3), np.ones(4), np.ones(3)), r"grad must have the shape of param \(3,\), got \(4,\)"),
        ((np.ones(3), np.ones(3), np.ones((3, 1))), r"momentum must have the shape of param \(3,\), got \(3, 1\)"),
        (([np.ones(2), np.ones(3)], [np.ones(2), np.ones(2)], [np.ones(2), np.ones(3)]),
         r"grad\[1\] must have the shape of param\[1\] \(3,\), got \(2,\)"),
        (([np.ones(2)], [np.ones(2), np.ones(2)], [np.ones(2)]), r"grad must have 1 arrays like param, got 2"),
        (({"a": np.ones(2)}, {"b": np.ones(2)}, {"a": np.ones(2)}), r"grad must have the keys of param \['a'\], got \['b'\]"),
        (({"a": np.ones(2)}, [np.ones(2)], {"a": np.ones(2)}), r"grad must have the structure of param \(dict\), got list"),
        ((np.ones(2), np.ones(2), [np.ones(2)]), r"momentum must have the structure of param \(array\), got list"),
        ((np.ones(2), np.array([1.0, np.nan]), np.ones(2)), r"grad has non-finite entries"),
        (([], [], []), r"param has no entries"),
    ],
)
def test_bad_structures(args, message):
    with pytest.raises(ValueError, match=message):
        lion_step(*args, lr=0.1)
    with pytest.raises(ValueError, match=message):
        enim_step(*args, lr=0.1, angle=0.3)


# --- properties -------------------------------------------------------------------

float_arrays = st.sampled_from([np.float32, np.float64]).flatmap(
    lambda dt: st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            *[hnp.arrays(dt, n, elements=st.floats(-1e3, 1e3, width=32)) for _ in range(3)]
        )
    )
)
hyper = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-6, 1.0),
        "beta1": st.floats(0.0, 0.999),
        "beta2": st.floats(0.0, 0.999),
        "weight_decay": st.floats(0.0, 1.0),
    }
)


@settings(max_examples=max(50, settings.default.max_examples), deadline=None)
@given(arrays=float_arrays, hp=hyper, a=st.one_of(st.floats(0.0, np.pi), st.just("lni")), seed=st.integers(0, 2**32))
def test_steps_preserve_dtype_and_inputs(arrays, hp, a, seed):
    p, g, m = arrays
    copies = [x.copy() for x in arrays]
    n = p.size
    outs = [lion_step(p, g, m, **hp)]
    if n > 1 or a in (0.0, np.pi, "lni"):
        outs.append(enim_step(p, g, m, angle=a, rng=seed, **hp))
    for new_p, new_m in outs:
        assert new_p.dtype == p.dtype and new_m.dtype == m.dtype
        assert new_p.shape == p.shape and new_m.shape == m.shape
        assert np.all(np.isfinite(new_p)) and np.all(np.isfinite(new_m))
    for x, y in zip(arrays, copies):
        np.testing.assert_array_equal(x, y)


@settings(max_examples=max(30, settings.default.max_examples), deadline=None)
@given(arrays=float_arrays, hp=hyper)
def test_lion_update_is_sign(arrays, hp):
    """Lion's update is in {-1, 0, 1}: undo the weight decay and read it back."""
    p, g, m = (x.astype(np.float64) for x in arrays)
    new_p, _ = lion_step(p, g, m, **hp)
    update = (p - new_p) / hp["lr"] - hp["weight_decay"] * p
    c = hp["beta1"] * m + (1 - hp["beta1"]) * g
    # (p - new_p)/lr carries the rounding of p and new_p, about eps (|p| + lr) / lr each:
    # a few of those, far below the gap of 1 between -1, 0 and 1.
    atol = 8 * np.finfo(np.float64).eps * (1 + np.abs(p).max() / hp["lr"])
    assert atol < 0.5
    np.testing.assert_allclose(update, np.sign(c), atol=atol)
