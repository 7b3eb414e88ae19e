"""The fused kernels of the torch optimizers against independent references, and serial against parallel.

References: exact rational arithmetic for ``fma``; ``math.fsum`` of float64 values
for the sums (correctly rounded); numpy counts; the sampler's own coordinates
(``backends.cpu.sample_coords``) for the Gaussian; torch's own operations for
Lion's step (the point of :func:`optim_kernels.lion_update` is torch's bits).
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
import numba
from numba import njit

from lni_geometry import optim_kernels as ok
from lni_geometry.backends import cpu
from lni_geometry.elementary import fma
from lni_geometry.models import Gaussian

N_PARALLEL = (1 << 20) + 12345  # 33 chunks, a ragged end, the parallel path (above PARALLEL_MIN)


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    n = N_PARALLEL
    m = (rng.standard_normal(n) * (rng.random(n) < 0.8)).astype(np.float32)
    g = (rng.standard_normal(n) * (rng.random(n) < 0.7)).astype(np.float32)
    z = rng.standard_normal(n).astype(np.float32)
    return m, g, z


@njit(cache=True)
def _fma_many(a, b, c, out):
    for i in range(a.shape[0]):
        out[i] = fma(a[i], b[i], c[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fma_rounds_once(dtype):
    """Against exact rationals: a*b + c rounded once to the dtype (correct rounding of the
    exact value, checked by the neighbours); a case where two roundings differ is included."""
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(500).astype(dtype) for _ in range(3))
    c = -(a * b).astype(dtype)  # c = -round(a b): the exact a b + c is the rounding error, lost by two roundings
    c[::2] = rng.standard_normal(250).astype(dtype)
    out = np.empty_like(a)
    _fma_many(a, b, c, out)
    two_roundings = (a * b).astype(dtype) + c
    assert np.any(out != two_roundings)
    inf = dtype(np.inf)
    for x, y, z, r in zip(a, b, c, out):
        exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
        err = abs(Fraction(float(r)) - exact)
        for nb in (np.nextafter(r, inf), np.nextafter(r, -inf)):
            assert err <= abs(Fraction(float(nb)) - exact)


def test_momentum_sums_against_numpy(arrays):
    """Sums against math.fsum of the float64 values (correctly rounded): 1e-12 relative;
    counts exactly."""
    m, g, z = arrays
    beta1, thr = 0.9, 0.05
    c = beta1 * m.astype(np.float64) + (1 - beta1) * g.astype(np.float64)
    got = ok.momentum_sums(m, g, beta1, thr, z)
    want_sums = [math.fsum(np.abs(c)), math.fsum(c * c)]
    for a, b in zip(got[:2], want_sums):
        assert abs(a / b - 1) < 1e-12
    assert got[2:6] == (
        int(np.count_nonzero(c)),
        int(np.sum(g == 0)),
        int(np.sum((g == 0) & (m != 0))),
        int(np.sum((g != 0) & (np.abs(m.astype(np.float64)) < thr))),
    )
    zz = z.astype(np.float64)
    assert abs(got[6] - math.fsum(c * zz)) < 1e-12 * math.fsum(np.abs(c * zz))
    assert abs(got[7] / math.fsum(zz * zz) - 1) < 1e-12


def _fma(a, b, c):
    """Elementwise ``fma`` of three arrays of one dtype (checked against exact rationals above)."""
    a, b, c = np.broadcast_arrays(a, b, c)
    out = np.empty(a.shape, a.dtype)
    _fma_many(np.ascontiguousarray(a), np.ascontiguousarray(b), np.ascontiguousarray(c), out)
    return out


def _sums_in_the_documented_order(c, z):
    """``(sum |c|, sum c**2, sum c z, sum z**2)`` in the order of the kernels' reductions
    (``lni_geometry.kernels``), written out in numpy: tiles of 512 entries added in turn; in a
    tile, entry ``j`` into lane ``j mod 16`` (``|c|`` by additions, the products by ``fma``),
    the 16 lanes folded pairwise ``(0+1), (2+3), ...``, then the ragged end in order."""
    total = np.zeros(4)
    for t0 in range(0, c.size, 512):
        x, y = c[t0:t0 + 512], z[t0:t0 + 512]
        full = x.size - x.size % 16
        lanes = np.zeros((4, 16))
        for j in range(0, full, 16):
            xs, ys = x[j:j + 16], y[j:j + 16]
            lanes = np.array([lanes[0] + np.abs(xs), _fma(xs, xs, lanes[1]), _fma(xs, ys, lanes[2]),
                              _fma(ys, ys, lanes[3])])
        while lanes.shape[1] > 1:
            lanes = lanes[:, 0::2] + lanes[:, 1::2]
        tile = lanes[:, 0]
        for j in range(full, x.size):
            tile = tile + np.array([abs(x[j]), x[j] * x[j], x[j] * y[j], y[j] * y[j]])
        total = total + tile
    return tuple(float(v) for v in total)


@pytest.mark.parametrize("rounded", [False, True], ids=["float64 c", "rounded c"])
@pytest.mark.parametrize("counts", [False, True], ids=["no counts", "counts"])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float64), (np.float32, np.float64),
                                    (np.float64, np.float32)], ids=["float32", "float64", "float64 z", "float32 z"])
def test_momentum_sums_are_the_documented_reduction_to_the_bit(dtypes, counts, rounded):
    """Both loops of the sums (straight from the arrays without counts, through float64 tile
    buffers with them) give the documented order's bits: a reduction in another order, or a
    ``c`` formed with a fused multiply-add, moves the last bits and fails (Enim's weights
    depend on them: with and without telemetry, sharded or not, they must be the same).
    Two whole tiles and a ragged third (76 = 4 x 16 + 12 entries)."""
    dtype, zdtype = dtypes
    rng = np.random.default_rng(5)
    n = 1100
    m = (rng.standard_normal(n) * (rng.random(n) < 0.9)).astype(dtype)
    g = (rng.standard_normal(n) * (rng.random(n) < 0.8)).astype(dtype)
    z = rng.standard_normal(n).astype(zdtype)
    beta1 = 0.9
    if rounded:
        c = _fma(g, dtype(1.0 - beta1), m * dtype(beta1)).astype(np.float64)
    else:
        c = beta1 * m.astype(np.float64) + (1.0 - beta1) * g.astype(np.float64)
    got = ok.momentum_sums(m, g, beta1, 0.05, z, rounded=rounded, counts=counts)
    want = _sums_in_the_documented_order(c, z.astype(np.float64))
    assert (got[0], got[1], got[6], got[7]) == want
    assert got[2] == np.count_nonzero(c)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("counts", [False, True], ids=["no counts", "counts"])
@pytest.mark.parametrize("rounded", [False, True], ids=["float64 c", "rounded c"])
def test_a_non_finite_entry_inside_the_lanes_makes_the_l1_sum_non_finite(bad, counts, rounded):
    """The steps refuse a non-finite ``c`` by ``||c||_1``: an inf or nan gradient entry among the
    16-lane part of a tile (entry 37 of 1100; not only in the ragged end) makes it non-finite on
    both loops, and a nan ``c`` counts as non-zero (as ``x != 0``)."""
    rng = np.random.default_rng(6)
    m, g, z = (rng.standard_normal(1100).astype(np.float32) for _ in range(3))
    g[37] = bad
    got = ok.momentum_sums(m, g, 0.9, 0.05, z, rounded=rounded, counts=counts)
    assert not math.isfinite(got[0]) and not math.isfinite(got[1])
    assert got[2] == 1100
    clean = ok.momentum_sums(m, np.where(np.isfinite(g), g, 0).astype(np.float32), 0.9, 0.05, z, rounded=rounded,
                             counts=counts)
    assert math.isfinite(clean[0])


@pytest.mark.parametrize("thr", [0.1, 0.7])
def test_revived_threshold_is_exact_at_the_boundary(thr):
    """|m| < threshold compares with the exact float64 threshold, not its float32 rounding:
    float32 neighbours of a threshold float32 cannot hold fall on the right sides, whether
    it rounds up (0.1) or down (0.7: there a rounded threshold would miss m = float32(0.7))."""
    t32 = np.float32(thr)
    m = np.array([np.nextafter(t32, np.float32(0)), t32, np.nextafter(t32, np.float32(1)), np.float32(0.0)],
                 np.float32)
    m = np.concatenate([m, -m])
    g = np.ones(m.size, np.float32)
    want = int(np.sum(np.abs(m.astype(np.float64)) < thr))
    assert want == (4 if float(t32) < thr else 2) + 2  # the two zeros; t32 itself counts when it rounded down
    assert ok.momentum_sums(m, g, 0.9, thr)[5] == want
    assert ok.momentum_sums(m, g, 0.9, thr, rounded=True)[5] == want


def test_counts_survive_infinite_and_nan_momenta():
    """An inf or nan momentum (so an inf or nan threshold) leaves the zero-gradient and
    tracing counts right, with c formed either way; ||c||_1 is then not finite, and the
    finiteness check counts the entries."""
    m = np.array([0.0, 1.0, np.inf, 0.0, np.nan], np.float32)
    g = np.array([0.0, 0.0, 1.0, 2.0, 0.0], np.float32)
    for thr in (np.inf, np.nan):
        a = ok.momentum_sums(m, g, 0.9, thr, rounded=True)
        b = ok.momentum_sums(m, g, 0.9, thr)
        assert a[3:5] == b[3:5] == (3, 2)  # g = 0 at 0, 1, 4; of those m != 0 at 1 and 4 (nan != 0)
        assert a[5] == b[5] == (1 if thr == np.inf else 0)  # g != 0, |m| < inf: entry 3
        assert not math.isfinite(a[0]) and not math.isfinite(b[0])
    assert not ok.finite(m, g)
    assert ok.finite_many(ok.arrays_of(m=m, g=g)).tolist() == [[2, 0]]
    assert ok.finite_many(ok.arrays_of(m=g, g=m)).tolist() == [[0, 2]]


def _cpu_has_avx2():
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and " avx2" in line for line in fh)
    except OSError:
        return False


def _lion_torch(p, m, g, beta1, beta2, lr, wd):
    """lion-pytorch's operations on tensors (in place)."""
    p.mul_(1.0 - lr * wd)
    c = m.clone().mul_(beta1).add(g, alpha=1.0 - beta1).sign_()
    p.add_(c, alpha=-lr)
    m.mul_(beta2).add_(g, alpha=1.0 - beta2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lion_update_is_torchs_operations_bit_for_bit(arrays, dtype):
    """Five steps at 1e6 entries (parallel path), weight decay, exact zeros in m and g."""
    if not ok.torch_uses_fma(dtype):  # pragma: no cover - torch without FMA kernels
        assert not _cpu_has_avx2(), "torch runs AVX2/AVX-512 kernels here: they round add(alpha=) once"
        pytest.skip("this torch build does not round add(alpha=) once: the optimizers use torch's path")
    m0, g0, _ = arrays
    rng = np.random.default_rng(2)
    p = rng.standard_normal(m0.size).astype(dtype)
    pt, mt = torch.from_numpy(p.copy()), torch.from_numpy(m0.astype(dtype))
    m = m0.astype(dtype)
    for step in range(5):
        g = (g0 * (step + 1) - np.roll(g0, step)).astype(dtype)
        ok.lion_update(p, m, g, 0.9, 0.99, 1e-3, 0.1)
        _lion_torch(pt, mt, torch.from_numpy(g), 0.9, 0.99, 1e-3, 0.1)
        assert np.array_equal(p, pt.numpy()) and np.array_equal(m, mt.numpy())


def test_lion_update_sign_of_zero_and_nan_is_zero():
    p = np.zeros(4, np.float32)
    m = np.array([0.0, -0.0, np.nan, 1.0], np.float32)
    g = np.array([0.0, 0.0, 0.0, -9.0], np.float32)  # c = 0, -0, nan, 0.9 - 0.9 = 0
    pt, mt = torch.from_numpy(p.copy()), torch.from_numpy(m.copy())
    ok.lion_update(p, m, g, 0.9, 0.99, 0.1, 0.0)
    _lion_torch(pt, mt, torch.from_numpy(g), 0.9, 0.99, 0.1, 0.0)
    assert np.array_equal(p.view(np.int32), pt.numpy().view(np.int32))  # signed zeros too


def test_rounded_sums_are_over_the_c_lion_takes_the_sign_of(arrays):
    """rounded=True sums the c the step forms (float32), not the float64 one."""
    m, g, _ = arrays
    got = ok.momentum_sums(m, g, 0.9, 0.05, rounded=True)
    c32 = torch.from_numpy(m).mul(0.9).add_(torch.from_numpy(g), alpha=0.1).double().numpy()
    assert abs(got[1] / math.fsum(c32 * c32) - 1) < 1e-12
    assert got[2] == np.count_nonzero(c32)
    c64 = 0.9 * m.astype(np.float64) + 0.1 * g.astype(np.float64)
    assert got[1] != ok.momentum_sums(m, g, 0.9, 0.05)[1] and abs(got[1] / math.fsum(c64 * c64) - 1) > 1e-12


def test_enim_draw_is_the_sampler_stream_and_its_sums(arrays):
    """z is coordinate i of Gaussian sample s under the key (the sampler's numbers, rounded
    to float32); the sums are momentum_sums' on that z, to the bit."""
    m, g, _ = arrays
    n = 70001  # several tiles, a ragged end, not a multiple of 4
    z = np.empty(n, np.float32)
    sums = ok.enim_draw(z, m[:n], g[:n], 0.9, (5, 6), 3, threshold=0.05)
    want = cpu.sample_coords(np.array([5, 6], np.uint32), Gaussian(), n, 3, 1)[0]
    assert np.array_equal(z, want.astype(np.float32))
    assert sums == ok.momentum_sums(m[:n], g[:n], 0.9, 0.05, z)
    z2 = np.empty(n, np.float32)  # without a threshold: the same z and sums, counts 0
    plain = ok.enim_draw(z2, m[:n], g[:n], 0.9, (5, 6), 3)
    assert np.array_equal(z2, z) and plain[:3] == sums[:3] and plain[6:] == sums[6:] and plain[3:6] == (0, 0, 0)
    z64 = np.empty(n)
    ok.fill_normals(z64, (5, 6), 3)
    assert np.array_equal(z64, want)


def test_a_prepared_fill_draws_the_stream_of_each_key():
    """:class:`NormalsFill` over three arrays (samples 4, 0, 9; starts 0, 3, 8: a start off a
    block of four), called with two keys in turn: each array holds its coordinates of the
    sampler's stream for the key of the last call."""
    sizes, samples, starts = (70001, 5, 1003), [4, 0, 9], [0, 3, 8]
    zs = [np.empty(n, np.float32) for n in sizes]
    a = ok.Arrays(np.array([[z.ctypes.data] for z in zs], np.int64), np.dtype(np.float32), np.dtype(np.float32),
                  ok.layout(sizes), tuple(zs))
    fill = ok.NormalsFill(a, samples, starts)
    for key in ((5, 6), (7, 1)):
        fill(key)
        for z, n, s, start in zip(zs, sizes, samples, starts):
            want = cpu.sample_coords(np.array(key, np.uint32), Gaussian(), start + n, s, 1)[0][start:]
            assert np.array_equal(z, want.astype(np.float32))
    with pytest.raises(ValueError, match=r"coordinates must be in \[0, 2\*\*62\)"):
        ok.NormalsFill(a, samples, [0, -1, 0])
    z64 = np.empty(1001)  # one float64 array, the default sample (0) and start (0)
    fill64 = ok.NormalsFill(ok.arrays_of(z=z64))
    fill64((3, 9))
    assert np.array_equal(z64, cpu.sample_coords(np.array([3, 9], np.uint32), Gaussian(), 1001, 0, 1)[0])
    with pytest.raises(ValueError, match=r"key must be two integers in \[0, 2\*\*32\)"):
        fill64((3, 2**32))


def test_normal_sums_are_the_sums_of_the_stream():
    n = 200003
    x = cpu.sample_coords(np.array([8, 1], np.uint32), Gaussian(), n, 2, 1)[0]
    l1, l2sq = ok.normal_sums(n, (8, 1), 2)
    assert abs(l1 / math.fsum(np.abs(x)) - 1) < 1e-12 and abs(l2sq / math.fsum(x * x) - 1) < 1e-12


def test_serial_and_parallel_give_the_same_bits(arrays, monkeypatch):
    """Every kernel, on the parallel path and (PARALLEL_MIN raised) on the calling thread;
    arrays are copied after each kernel that writes them."""
    m, g, z = arrays
    rng = np.random.default_rng(3)
    p = rng.standard_normal(m.size).astype(np.float32)

    def everything():
        out = [ok.c_sums(m), ok.momentum_sums(m, g, 0.9, 0.01, z), ok.momentum_sums(m, g, 0.8, 0.01, rounded=True)]
        pp, mm, zz = p.copy(), m.copy(), np.empty_like(z)
        ok.lion_update(pp, mm, g, 0.9, 0.99, 0.01, 0.1)
        out += [ok.finite_many(ok.arrays_of(m=m, g=g)), pp.copy(), mm.copy()]
        out += [ok.enim_draw(zz, m, g, 0.9, (1, 2), 0, 0.02), zz.copy(), ok.enim_draw(zz, m, g, 0.9, (1, 2), 1)]
        ok.enim_update(pp, mm, g, zz, 0.9, 0.99, 0.3, 0.7, 0.01, 0.1, next_key=(4, 5), sample=2)
        out += [ok.c_sums(mm), pp.copy(), mm.copy(), zz.copy()]
        ok.fill_normals(zz, (5, 6))
        return out + [zz.copy()]

    parallel = everything()
    monkeypatch.setattr(ok, "PARALLEL_MIN", 1 << 40)
    serial = everything()
    assert len(parallel) == len(serial) == 14
    for a, b in zip(parallel, serial):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_enim_update_draws_the_next_z_of_the_stream():
    """With next_key the update leaves in z sample ``sample`` of that key (n not a multiple
    of 4, several tiles), after using the old z for the step."""
    n = 5003
    rng = np.random.default_rng(7)
    p, m, g, z = (rng.standard_normal(n) for _ in range(4))
    p2, m2 = p.copy(), m.copy()
    plain_p, plain_m = p.copy(), m.copy()
    ok.enim_update(p, m, g, z.copy(), 0.8, 0.9, 2.0, -3.0, 0.1, 0.1, next_key=(11, 12), sample=3)
    z_used = z.copy()
    ok.enim_update(p2, m2, g, z_used, 0.8, 0.9, 2.0, -3.0, 0.1, 0.1, next_key=(11, 12), sample=3)
    want = np.empty(n)
    ok.fill_normals(want, (11, 12), 3)
    assert np.array_equal(z_used, want)
    ok.enim_update(plain_p, plain_m, g, z.copy(), 0.8, 0.9, 2.0, -3.0, 0.1, 0.1)  # same step, no draw
    np.testing.assert_allclose(p2, p, rtol=0, atol=0)
    assert np.array_equal(plain_p, p) and np.array_equal(plain_m, m)  # the draw does not touch the step


@pytest.mark.parametrize("n", [1000, (1 << 16) + 7])
def test_enim_update_against_numpy(n):
    rng = np.random.default_rng(n)
    p, m, g, z = (rng.standard_normal(n) for _ in range(4))
    want_p = 0.99 * p - 0.1 * (2.0 * (0.8 * m + 0.2 * g) - 3.0 * z)
    want_m = 0.9 * m + 0.1 * g
    ok.enim_update(p, m, g, z, 0.8, 0.9, 2.0, -3.0, 0.1, 0.1)
    np.testing.assert_allclose(p, want_p, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(m, want_m, rtol=1e-15, atol=1e-15)


def test_bad_arrays_are_refused():
    x = np.zeros(4, dtype=np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        ok.c_sums(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="one length"):
        ok.momentum_sums(x, np.zeros(3, dtype=np.float32), 0.9)
    with pytest.raises(ValueError, match="contiguous"):
        ok.c_sums(np.zeros(8, dtype=np.float32)[::2])
    with pytest.raises(TypeError, match="one dtype"):
        ok.lion_update(x, x.copy(), np.zeros(4), 0.9, 0.99, 0.1, 0.0)
    with pytest.raises(ValueError, match=r"key must be two integers in \[0, 2\*\*32\)"):
        ok.fill_normals(x, (1, 2**32))


def test_one_launch_over_many_arrays_equals_each_array_alone(monkeypatch):
    """Arrays of several lengths (empty, one entry, a ragged tile, several chunks) in one
    launch give, per array, the bits each gives alone: sums, counts, updates and draws;
    on the thread pool and on the calling thread."""
    rng = np.random.default_rng(11)
    sizes = [0, 1, 3, 517, 70001, ok.CHUNK * 2 + 5]
    ms = [(rng.standard_normal(n) * (rng.random(n) < 0.8)).astype(np.float32) for n in sizes]
    gs = [(rng.standard_normal(n) * (rng.random(n) < 0.7)).astype(np.float32) for n in sizes]
    ps = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    beta1 = [0.9, 0.8, 0.7, 0.9, 0.95, 0.5]  # per array, as per parameter group

    def many_arrays(role_lists, z_dtype=None):
        flat = {k: np.concatenate(v) if v else None for k, v in role_lists.items()}
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        address = np.array([[flat[k].ctypes.data + s * flat[k].itemsize for k in role_lists] for s in starts],
                           dtype=np.int64)
        z = flat.get("z", flat[next(iter(role_lists))])
        arrays = ok.Arrays(address, np.dtype(np.float32), z.dtype, ok.layout(tuple(sizes)), tuple(flat.values()))
        return arrays, flat, starts

    def split(x, starts):
        return [x[s:s + n] for s, n in zip(starts, sizes)]

    for parallel_min in (1, 1 << 40):
        monkeypatch.setattr(ok, "PARALLEL_MIN", parallel_min)
        a, flat, starts = many_arrays({"m": ms, "g": gs})
        sums = ok.momentum_sums_many(a, beta1, 0.05, rounded=True)
        for i in range(len(sizes)):
            assert ok._rows(sums)[i][:6] == ok.momentum_sums(ms[i], gs[i], beta1[i], 0.05, rounded=True)
        assert ok.finite_many(a).tolist() == [[0, 0]] * len(sizes)
        a, flat, starts = many_arrays({"p": ps, "m": ms, "g": gs})
        ok.lion_update_many(a, beta1, 0.99, 0.01, [0.0, 0.1, 0.2, 0.0, 0.1, 0.3])
        for i, (p, m, g) in enumerate(zip(ps, ms, gs)):
            p, m = p.copy(), m.copy()
            ok.lion_update(p, m, g, beta1[i], 0.99, 0.01, [0.0, 0.1, 0.2, 0.0, 0.1, 0.3][i])
            assert np.array_equal(split(flat["p"], starts)[i], p) and np.array_equal(split(flat["m"], starts)[i], m)
        zs = [np.empty(n, np.float32) for n in sizes]
        a, flat, starts = many_arrays({"z": zs, "m": ms, "g": gs})
        drawn = ok.enim_draw_many(a, beta1, (3, 4), threshold=0.02)
        for i in range(len(sizes)):
            z = np.empty(sizes[i], np.float32)
            assert ok._rows(drawn)[i] == ok.enim_draw(z, ms[i], gs[i], beta1[i], (3, 4), i, 0.02)
            assert np.array_equal(split(flat["z"], starts)[i], z)
        a, flat, starts = many_arrays({"p": ps, "m": ms, "g": gs, "z": zs})
        ok.enim_update_many(a, beta1, 0.99, [1.0, 2, 3, 4, 5, 6], -0.5, 0.01, 0.1, next_key=(7, 8))
        for i in range(len(sizes)):
            p, m, z = ps[i].copy(), ms[i].copy(), zs[i].copy()
            ok.enim_update(p, m, gs[i], z, beta1[i], 0.99, i + 1.0, -0.5, 0.01, 0.1, next_key=(7, 8), sample=i)
            for x, name in ((p, "p"), (m, "m"), (z, "z")):
                assert np.array_equal(split(flat[name], starts)[i], x)


def test_warm_up_compiles_every_launch_of_the_module(capsys):
    """``lni-geometry warmup`` calls each kernel once per dtype: afterwards every numba
    dispatcher of the optimizers' loops has a compiled (or cached) signature per dtype."""
    from lni_geometry import optim_loops
    from lni_geometry.cli import main

    assert main(["warmup"]) == 0
    assert "compiled the optimizers' kernels for float32 and float64 (25 launches)" in capsys.readouterr().out
    kernels = [getattr(optim_loops, k) for k in dir(optim_loops) if k.endswith("_kernel")]
    assert len(kernels) == 10
    for kernel in kernels:
        assert len(kernel.signatures) >= 2, kernel.py_func.__name__


def _launch_of(ps, ms, gs):
    """An Arrays (roles p, m, g) over separate numpy arrays of one dtype."""
    address = np.array([[x.ctypes.data for x in trio] for trio in zip(ps, ms, gs)], dtype=np.int64).reshape(-1, 3)
    dtype = ps[0].dtype
    return ok.Arrays(address, dtype, dtype, ok.layout(tuple(p.size for p in ps)), (ps, ms, gs))


def _model(dtype, seed=21):
    """Arrays of several lengths (empty, a ragged tile, several chunks) in two groups: weights,
    momenta with zeros and tiny entries, gradients with zeros."""
    rng = np.random.default_rng(seed)
    sizes = [5, 70001, 3, 0, ok.CHUNK + 17]
    ps = [rng.standard_normal(n).astype(dtype) for n in sizes]
    ms = [(rng.standard_normal(n) * (rng.random(n) < 0.7) * 10.0 ** rng.integers(-5, 1, n)).astype(dtype)
          for n in sizes]
    gs = [(rng.standard_normal(n) * (rng.random(n) < 0.8)).astype(dtype) for n in sizes]
    return ps, ms, gs, [0, 1, 0, 1, 1], [0.01, 0.02, 0.01, 0.02, 0.02]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel_min", [1, 1 << 40])
def test_lion_step_many_is_the_check_the_sums_and_the_update_in_turn(dtype, parallel_min, monkeypatch):
    """One launch of Lion's whole step gives the bits of the separate launches: the non-finite
    count, or the telemetry's sums of c (z = m: ||m||^2 in the last column); the update; its
    counts, which equal momentum_sums' own counts at the group-RMS threshold (computed here with
    numpy from the momenta)."""
    monkeypatch.setattr(ok, "PARALLEL_MIN", parallel_min)
    ps, ms, gs, groups, lr = _model(dtype)
    b1, b2, wd, frac = 0.9, 0.99, 0.1, 1e-3
    m2 = np.array([math.fsum(m.astype(np.float64) ** 2) for m in ms])
    sizes = np.array([p.size for p in ps], dtype=np.float64)
    rms = [math.sqrt(math.fsum(m2[np.array(groups) == k]) / sizes[np.array(groups) == k].sum()) for k in (0, 1)]
    thr = [frac * rms[k] for k in groups]

    copies = [[x.copy() for x in xs] for xs in (ps, ms)]
    written, rows = ok.lion_step_many(_launch_of(*copies, gs), b1, b2, lr, wd, groups=groups, fraction=frac)
    ref_p, ref_m = [p.copy() for p in ps], [m.copy() for m in ms]
    ok.lion_update_many(_launch_of(ref_p, ref_m, gs), b1, b2, lr, wd)
    assert written
    for got, want in zip(copies[0] + copies[1], ref_p + ref_m):
        assert np.array_equal(got, want)
    for i in range(len(ps)):
        sums = ok.momentum_sums(ms[i], gs[i], b1, thr[i], z=ms[i], rounded=True)
        assert rows[i, :3].tolist() == list(sums[:3]) and rows[i, 6:].tolist() == list(sums[6:])
        assert rows[i, 3:6].tolist() == list(sums[3:6])
        assert abs(rows[i, 7] - m2[i]) <= 1e-12 * m2[i]
    assert rows[:, 5].sum() > 100  # the tiny momenta were counted: the threshold is not 0

    copies = [[x.copy() for x in xs] for xs in (ps, ms)]
    written, rows = ok.lion_step_many(_launch_of(*copies, gs), b1, b2, lr, wd)
    assert written and not rows.any()
    for got, want in zip(copies[0] + copies[1], ref_p + ref_m):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("telemetry", [False, True])
def test_lion_step_many_writes_nothing_when_c_is_not_finite(telemetry):
    """One nan in the last array's gradient (or one inf in a momentum): nothing is written, and
    the rows say which array (non-finite counts, or a non-finite ||c||_1)."""
    ps, ms, gs, groups, lr = _model(np.float32)
    for bad in ("g", "m"):
        p2, m2, g2 = [p.copy() for p in ps], [m.copy() for m in ms], [g.copy() for g in gs]
        (g2 if bad == "g" else m2)[-1][7] = np.nan if bad == "g" else np.inf
        before = [x.copy() for x in p2 + m2]
        written, rows = ok.lion_step_many(_launch_of(p2, m2, g2), 0.9, 0.99, lr, 0.0,
                                          groups=groups if telemetry else None, fraction=1e-3)
        assert not written
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, p2 + m2))
        if telemetry:
            assert np.isfinite(rows[:-1, 0]).all() and not np.isfinite(rows[-1, 0])
        else:
            assert rows[:, :2].tolist() == [[0, 0]] * 4 + ([[0, 1]] if bad == "g" else [[1, 0]])


@pytest.mark.parametrize("thr", [0.1, 0.7])
def test_the_updates_revived_count_is_exact_at_the_threshold(thr):
    """The update's revived count compares |m| with the exact float64 threshold, as the sums'
    count does, given directly (lion_update_many) or made in the launch from a group's RMS
    (lion_step_many: fraction chosen so that the threshold is thr up to float64 rounding); a
    threshold merely rounded to float32 would miss m = float32(0.7), which rounds below 0.7."""
    t32 = np.float32(thr)
    near = np.array([np.nextafter(t32, np.float32(0)), t32, np.nextafter(t32, np.float32(1)), 0.0], np.float32)
    m = np.concatenate([near, -near, np.ones(4000, np.float32)])
    g = np.ones(m.size, np.float32)
    want = int(np.sum(np.abs(m.astype(np.float64)) < thr))
    assert want == (4 if float(t32) < thr else 2) + 2
    counts = ok.lion_update_many(_launch_of([np.zeros(m.size, np.float32)], [m.copy()], [g]), 0.9, 0.99, 0.1, 0.0,
                                 threshold=thr)
    assert counts.tolist() == [[0, 0, want]]
    rms = math.sqrt(math.fsum(m.astype(np.float64) ** 2) / m.size)
    written, rows = ok.lion_step_many(_launch_of([np.zeros(m.size, np.float32)], [m.copy()], [g]), 0.9, 0.99, 0.1,
                                      0.0, groups=[0], fraction=thr / rms)
    assert written and rows[0, 5] == want


def test_a_prepared_lion_step_takes_new_gradients_each_call():
    """LionStep keeps the weights', momenta's addresses and constants; each call launches with the
    gradients' addresses given: three steps with three gradients equal three fresh launches."""
    ps, ms, gs, groups, lr = _model(np.float32)
    rng = np.random.default_rng(5)
    grads = [[rng.standard_normal(g.size).astype(np.float32) for g in gs] for _ in range(3)]
    p1, m1 = [p.copy() for p in ps], [m.copy() for m in ms]
    p2, m2 = [p.copy() for p in ps], [m.copy() for m in ms]
    step = ok.LionStep(_launch_of(p1, m1, gs), 0.9, 0.99, lr, 0.1, groups=groups, fraction=1e-3)
    for g in grads:
        written, rows = step(np.array([x.ctypes.data for x in g], dtype=np.int64))
        written2, rows2 = ok.lion_step_many(_launch_of(p2, m2, g), 0.9, 0.99, lr, 0.1, groups=groups, fraction=1e-3)
        assert written and written2 and np.array_equal(rows, rows2)
        assert all(np.array_equal(a, b) for a, b in zip(p1 + m1, p2 + m2))


def test_a_prepared_enim_step_is_the_two_launches():
    """EnimStep's sums and update, called again with new gradients, coefficients and keys, give the
    bits of momentum_sums_many over (m, g, z) and of enim_update_many made afresh for each call
    (tested against numpy and the stream above), with and without counts and the next draw."""
    ps, ms, gs, groups, lr = _model(np.float32)
    rng = np.random.default_rng(8)
    zs = [rng.standard_normal(p.size).astype(np.float32) for p in ps]

    def launch(p, m, g, z):
        address = np.array([[x.ctypes.data for x in four] for four in zip(p, m, g, z)], dtype=np.int64)
        return ok.Arrays(address, np.dtype(np.float32), np.dtype(np.float32), ok.layout(tuple(x.size for x in p)),
                         (p, m, g, z))

    mine = [[x.copy() for x in xs] for xs in (ps, ms, zs)]
    ref = [[x.copy() for x in xs] for xs in (ps, ms, zs)]
    samples = np.array([3, 1, 4, 1, 5])
    step = ok.EnimStep(launch(mine[0], mine[1], gs, mine[2]), 0.9, 0.99, lr, 0.1, samples=samples)
    for k in range(3):
        grads = [rng.standard_normal(g.size).astype(np.float32) for g in gs]
        threshold = None if k == 1 else [1e-3 * (k + 1)] * len(ps)
        got = step.sums(np.array([g.ctypes.data for g in grads], dtype=np.int64), threshold)
        a = launch(ref[0], ref[1], grads, ref[2])
        want = ok.momentum_sums_many(ok.Arrays(a.address[:, 1:].copy(), a.dtype, a.z_dtype, a.layout),
                                     0.9, 0.0 if threshold is None else threshold, counts=threshold is not None)
        assert np.array_equal(got, want)
        alpha, beta, key = rng.standard_normal(len(ps)), rng.standard_normal(len(ps)), (None if k == 2 else (k, 7))
        step.update(np.array([g.ctypes.data for g in grads], dtype=np.int64), alpha, beta, key)
        ok.enim_update_many(a, 0.9, 0.99, alpha, beta, lr, 0.1, next_key=key, samples=samples)
        for x, y in zip(sum(mine, []), sum(ref, [])):
            assert np.array_equal(x, y)


# --- Enim's step in one launch -------------------------------------------------------------------


@settings(max_examples=max(200, settings.default.max_examples), deadline=None)
@given(st.lists(st.one_of(st.floats(-1e300, 1e300), st.floats(-1e-300, 1e-300), st.floats(-1e6, 1e6),
                          st.sampled_from([0.0, -0.0, 1.0, 1e16, -1e16, 1e-16, 5e-324])), max_size=40))
def test_exact_sum_is_math_fsum(values):
    """``exact_sum`` (in numba) rounds the exact sum as math.fsum does, bit for bit, also read as a
    column of a 2-D array (as the one-launch step reads its rows)."""
    total, ok_ = ok.exact_sum(np.array(values, dtype=np.float64))
    assert ok_ and total.hex() == math.fsum(values).hex()
    rows = np.zeros((len(values), 8))
    rows[:, 6] = values
    assert ok.exact_sum(rows[:, 6])[0].hex() == total.hex()


def test_exact_sum_rounds_half_even_across_partials_and_flags_what_fsum_cannot_return():
    """The cases of CPython's own fsum tests that a plain compensated sum gets wrong, and the
    values where math.fsum raises or returns a non-finite number: (nan, False)."""
    for values in ([1e-16, 1.0, 1e16], [1.0, 1e100, 1.0, -1e100], [2.0**53, -0.5, -2.0**-54],
                   [2.0**1023, -2.0**971, 2.0**970], [0.1] * 10, [], [-0.0]):
        total, ok_ = ok.exact_sum(np.array(values, dtype=np.float64))
        assert ok_ and total.hex() == math.fsum(values).hex(), values
    for values in ([1e308, 1e308], [1.0, math.inf], [math.nan, 1.0], [math.inf, -math.inf]):
        total, ok_ = ok.exact_sum(np.array(values))
        assert not ok_ and math.isnan(total), values


@pytest.mark.parametrize("t", [0.0, 0.3, 1.2, math.pi / 2, 2.5, math.pi])
def test_turn_coefficients_turn_c_by_the_angle_with_norm_sqrt_n(t):
    """u = alpha c + beta z is at angle t from c with |u| = sqrt(n) (to float64 rounding); c = 0
    gives (0, 0); a z parallel to c is flagged for a new draw."""
    rng = np.random.default_rng(4)
    c, z = rng.standard_normal(57) * 3.0, rng.standard_normal(57)
    alpha, beta, ok_ = ok.turn_coefficients(math.fsum(c * c), math.fsum(c * z), math.fsum(z * z), 57,
                                            math.cos(t), math.sin(t))
    u = alpha * c + beta * z
    assert ok_ and abs(np.linalg.norm(u) - math.sqrt(57)) < 1e-12
    assert abs(math.acos(min(1.0, u @ c / (np.linalg.norm(u) * np.linalg.norm(c)))) - t) < 1e-7
    assert ok.turn_coefficients(0.0, 0.0, 5.0, 57, math.cos(t), math.sin(t)) == (0.0, 0.0, True)
    zz = math.fsum(9 * c * c)
    assert not ok.turn_coefficients(math.fsum(c * c), math.fsum(3 * c * c), zz, 57, math.cos(t), math.sin(t))[2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel_min", [1, 1 << 40])
def test_enim_step_in_one_launch_is_the_sums_the_coefficients_and_the_update(dtype, parallel_min, monkeypatch):
    """EnimStep.step gives the bits of its sums, the coefficients from math.fsum of their rows
    (turn_coefficients) and its update drawing the next z, on arrays of several lengths in two
    groups, three steps; a non-finite c (status 1), a z parallel to c, a single entry (status 2)
    write nothing."""
    monkeypatch.setattr(ok, "PARALLEL_MIN", parallel_min)
    ps, ms, gs, groups, lr = _model(dtype)
    rng = np.random.default_rng(8)
    zs = [rng.standard_normal(p.size).astype(dtype) for p in ps]

    def prepared(p, m, z):
        address = np.array([[x.ctypes.data for x in four] for four in zip(p, m, gs, z)], dtype=np.int64)
        arrays = ok.Arrays(address, np.dtype(dtype), np.dtype(dtype), ok.layout(tuple(x.size for x in p)), (p, m, z))
        return ok.EnimStep(arrays, 0.8, 0.99, lr, 0.1, samples=np.array([3, 1, 4, 1, 5]))

    mine = [[x.copy() for x in xs] for xs in (ps, ms, zs)]
    ref = [[x.copy() for x in xs] for xs in (ps, ms, zs)]
    one, two = prepared(*mine), prepared(*ref)
    n = sum(p.size for p in ps)
    for k, t in enumerate((0.65, 0.1, 2.0)):
        grads = [rng.standard_normal(g.size).astype(dtype) for g in gs]
        address = np.array([g.ctypes.data for g in grads], dtype=np.int64)
        assert one.step(address, t, (k, 7)) == 0
        c2, cz, zz = (math.fsum(column) for column in two.sums(address)[:, [1, 6, 7]].T)
        alpha, beta, ok_ = ok.turn_coefficients(c2, cz, zz, n, math.cos(t), math.sin(t))
        two.update(address, alpha, beta, (k, 7))
        assert ok_ and all(np.array_equal(x, y) for x, y in zip(sum(mine, []), sum(ref, [])))
    before = [x.copy() for x in sum(mine, [])]
    grads[1][5] = np.nan
    assert one.step(np.array([g.ctypes.data for g in grads], dtype=np.int64), 0.65, (9, 9)) == 1
    assert all(np.array_equal(x, y) for x, y in zip(before, sum(mine, [])))
    for m in mine[1]:  # c = 0.8 m + 0.2 g parallel to z: m = 0 and g = z
        m[:] = 0.0
    before = [x.copy() for x in sum(mine, [])]
    assert one.step(np.array([z.ctypes.data for z in mine[2]], dtype=np.int64), 0.65, (9, 9)) == 2
    assert all(np.array_equal(x, y) for x, y in zip(before, sum(mine, [])))
    single = [np.ones(1, np.float32) for _ in range(4)]
    lone = ok.EnimStep(ok.arrays_of(p=single[0], m=single[1], g=single[2], z=single[3]), 0.8, 0.99, 0.1, 0.0)
    assert lone.step(np.array([single[2].ctypes.data]), 0.65, (1, 1)) == 2 and single[0][0] == 1.0


@pytest.mark.parametrize("threads", [1, 2, 3, 7, 16])
def test_runs_give_each_thread_its_share_of_the_entries_within_one_item(threads):
    """Items of very different sizes (a ResNet-18's 62 tensors cut into chunks, tiny tensors
    between big ones): the runs cover the items in order, each within one chunk of total/threads
    entries, where cutting by the count of items is off by up to 9% on two threads."""
    from lni_geometry.bench.torch import resnet18_shapes

    lay = ok.layout(tuple(math.prod(s) for s in resnet18_shapes()))
    runs = ok._runs(lay.items, threads)
    entries = lay.items[:, 2] - lay.items[:, 1]
    assert runs[0] == 0 and runs[-1] == len(lay.items) and len(runs) == threads + 1 and np.all(np.diff(runs) >= 0)
    shares = np.array([entries[a:b].sum() for a, b in zip(runs[:-1], runs[1:])])
    assert shares.sum() == lay.total and np.all(np.abs(shares - lay.total / threads) <= ok.CHUNK)
    assert np.array_equal(lay.runs, ok._runs(lay.items, numba.config.NUMBA_NUM_THREADS))
    half = (len(entries) + 1) // 2  # prange's own cut of the items into two: by count
    assert abs(entries[:half].sum() - lay.total / 2) > 10 * ok.CHUNK
    assert len(ok._runs(ok.layout((0,)).items, threads)) == threads + 1
