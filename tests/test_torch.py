"""lni_geometry.torch: Lion and Enim as torch optimizers, and their telemetry.

References used here, all independent of the code under test:
lucidrains/lion-pytorch (bit-exact Lion), the numpy reference steps of
``lni_geometry.optim`` (written separately, in float64), the seed paper's own
Enim rotation (law of sines, from its public code), exact laws (Beta law of a
coordinate of a uniform point on a sphere; ``theory.BisectorAngle``) and
counts written out by hand.
"""

import io
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

import lni_geometry as lg
from lni_geometry import optim

torch = pytest.importorskip("torch")  # installed by the [test] extra: CI runs these
lion_pytorch = pytest.importorskip("lion_pytorch")

from lni_geometry.torch import REVIVED_FRACTION, Enim, Lion  # noqa: E402

F64 = torch.float64


def _net(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10),
    )
    return net.to(dtype)


def _groups(net):
    ps = list(net.parameters())
    return [
        dict(params=ps[0:2], lr=1e-3, weight_decay=0.0),
        dict(params=ps[2:4], lr=3e-3, weight_decay=0.1, betas=(0.8, 0.95)),
        dict(params=ps[4:], lr=1e-2, weight_decay=0.5),
    ]


def _data(seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, 1, 8, 8, generator=g, dtype=dtype), torch.randint(0, 10, (64,), generator=g)


def _train_step(net, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss


# --- packaging -------------------------------------------------------------------------


def test_package_import_does_not_import_torch():
    code = "import sys, lni_geometry; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_missing_torch_names_the_extra():
    code = (
        "import sys, lni_geometry\n"
        "sys.modules['torch'] = None  # as if torch were not installed\n"
        "try:\n    import lni_geometry.torch\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert 'pip install "lni-geometry[torch]"' in out


# --- Lion: the numbers ---------------------------------------------------------------------


@pytest.mark.parametrize("foreach", [None, False, True])
@pytest.mark.parametrize("telemetry", [False, True])
def test_lion_equals_lion_pytorch_bit_for_bit(foreach, telemetry):
    """50 steps, three groups (lr, betas, weight decay differ), float32: identical bits,
    with the fused kernel (foreach=None on the CPU) and with torch's operations."""
    ours, ref = _net(), _net()
    frozen = list(ours.parameters())[0], list(ref.parameters())[0]
    for p in frozen:  # a parameter without gradient is skipped by both
        p.requires_grad_(False)
    o1 = Lion(_groups(ours), foreach=foreach, telemetry=telemetry)
    o2 = lion_pytorch.Lion(_groups(ref))
    x, y = _data()
    for step in range(50):
        _train_step(ours, o1, x, y)
        _train_step(ref, o2, x, y)
        for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
            assert torch.equal(a, b), f"step {step}: {name} differs"
    for a, b in zip(ours.parameters(), ref.parameters()):
        if a.requires_grad:
            assert torch.equal(o1.state[a]["exp_avg"], o2.state[b]["exp_avg"])
    assert all(len(o1.state[p]) == 0 for p in frozen[:1])


def test_lion_bf16_equals_lion_pytorch():
    ours, ref = _net(dtype=torch.bfloat16), _net(dtype=torch.bfloat16)
    o1, o2 = Lion(ours.parameters(), lr=1e-2, weight_decay=0.1), lion_pytorch.Lion(ref.parameters(), lr=1e-2, weight_decay=0.1)
    x, y = _data(dtype=torch.bfloat16)
    for _ in range(5):
        _train_step(ours, o1, x, y)
        _train_step(ref, o2, x, y)
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert a.dtype == torch.bfloat16 and o1.state[a]["exp_avg"].dtype == torch.bfloat16
        assert torch.equal(a, b)


def test_lion_equals_numpy_reference_step():
    """Against ``optim.lion_step`` on the concatenated model, float64, 20 steps."""
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (5,)]
    params = [torch.tensor(rng.standard_normal(s), dtype=F64, requires_grad=True) for s in shapes]
    opt = Lion(params, lr=0.01, betas=(0.85, 0.97), weight_decay=0.3)
    w = [p.detach().numpy().copy() for p in params]
    m = [np.zeros(s) for s in shapes]
    for _ in range(20):
        grads = [rng.standard_normal(s) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        opt.step()
        w, m = optim.lion_step(w, grads, m, lr=0.01, beta1=0.85, beta2=0.97, weight_decay=0.3)
        for p, wi, mi in zip(params, w, m):
            np.testing.assert_allclose(p.detach().numpy(), wi, rtol=0, atol=1e-14)
            np.testing.assert_allclose(opt.state[p]["exp_avg"].numpy(), mi, rtol=0, atol=1e-15)


def test_lion_rejects_sparse_gradients_and_bad_hyperparameters():
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        Lion([p]).step()
    q = [torch.nn.Parameter(torch.zeros(2))]
    for kwargs, match in [
        (dict(lr=-0.1), r"lr must be a finite number in \[0, inf\), got -0\.1$"),
        (dict(betas=(1.0, 0.9)), r"beta1 must be a finite number in \[0, 1\), got 1\.0$"),
        (dict(betas=(0.9,)), "betas must be a pair"),
        (dict(weight_decay=-1), r"weight_decay must be a finite number in \[0, inf\), got -1\.0$"),
        (dict(lr=float("nan")), r"lr must be a finite number in \[0, inf\), got nan$"),
    ]:
        with pytest.raises(ValueError, match=match):
            Lion(q, **kwargs)
    opt = Lion(q)
    with pytest.raises(ValueError, match="weight_decay"):
        opt.add_param_group(dict(params=[torch.nn.Parameter(torch.zeros(1))], weight_decay=-0.5))


def test_closure_loss_is_returned():
    net = _net()
    x, y = _data()
    opt = Lion(net.parameters())

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        return loss

    assert torch.isfinite(opt.step(closure))


def _twins(shapes, seed=3):
    """The same parameters twice (ours, lion-pytorch's)."""
    g = torch.Generator().manual_seed(seed)
    values = [torch.randn(s, generator=g) for s in shapes]
    return [torch.nn.Parameter(v.clone()) for v in values], [torch.nn.Parameter(v.clone()) for v in values]


def test_the_kept_step_layout_follows_every_change_between_steps():
    """A step takes the last step's layout while only gradients and settings changed, and builds
    it anew otherwise: after each change below, 2 steps of ours and of lion-pytorch give the
    same bits (a layout kept across a change would step the old memory, the old momentum or a
    transposed weight in the wrong order, or count a dropped gradient)."""
    shapes = [(5, 5), (7,), (4, 4), (3, 3), (6,), (2, 2)]
    ours, ref = _twins(shapes)
    o1 = Lion([dict(params=ours[:4], lr=1e-2), dict(params=ours[4:5], lr=3e-2, weight_decay=0.1)], betas=(0.8, 0.9))
    o2 = lion_pytorch.Lion([dict(params=ref[:4], lr=1e-2), dict(params=ref[4:5], lr=3e-2, weight_decay=0.1)],
                           betas=(0.8, 0.9))
    g = torch.Generator().manual_seed(4)
    grad_of = {}

    def steps(k=2):
        for _ in range(k):
            for a, b in zip(ours, ref):
                if a in grad_of and grad_of[a] == "keep":
                    continue
                if grad_of.get(a) is None and a in grad_of:
                    a.grad = b.grad = None
                    continue
                x = torch.randn(a.shape, generator=g) * (torch.rand(a.shape, generator=g) < 0.8)
                a.grad, b.grad = x.clone(), x.clone()
            o1.step()
            o2.step()
            for a, b in zip(ours, ref):
                assert torch.equal(a, b)
                if b in o2.state and "exp_avg" in o2.state[b]:
                    assert torch.equal(o1.state[a]["exp_avg"], o2.state[b]["exp_avg"])

    steps()
    layout = o1._step_layout
    steps()
    assert o1._step_layout is layout  # kept while only the gradients changed
    for q in (ours[0], ref[0]):  # new memory for a weight
        q.data = q.data.clone()
    steps()
    assert o1._step_layout is not layout
    grad_of[ours[1]] = grad_of[ref[1]] = None  # a parameter loses its gradient, then gets it back
    steps()
    del grad_of[ours[1]], grad_of[ref[1]]
    steps()
    for opt, q in ((o1, ours[2]), (o2, ref[2])):  # a new momentum object, by hand
        opt.state[q]["exp_avg"] = opt.state[q]["exp_avg"] * 0.5
    steps()
    for opt, q in ((o1, ours[4]), (o2, ref[4])):  # a momentum dropped: created again as zeros
        del opt.state[q]
    steps()
    for opt in (o1, o2):  # a new learning rate (a scheduler)
        opt.param_groups[0]["lr"] = 5e-3
    steps()
    for q in (ours[3], ref[3]):  # the same memory, transposed: no longer contiguous
        q.data = q.data.t()
    steps()
    for a, b in zip(ours, ref):  # a non-contiguous gradient, kept for two steps
        if a.dim() == 2 and a.is_contiguous():
            x = torch.randn(a.shape, generator=g).t().contiguous().t()
            a.grad, b.grad = x.clone(), x.clone()
            grad_of[a] = grad_of[b] = "keep"
    steps()
    o1.load_state_dict(o1.state_dict())
    o2.load_state_dict(o2.state_dict())
    steps()
    o1.add_param_group(dict(params=[ours[5]], lr=2e-2))
    o2.add_param_group(dict(params=[ref[5]], lr=2e-2))
    steps()


def test_the_kernels_take_only_tensors_of_one_shape_and_dtype():
    """The kernels read and write ``numel`` entries of weight, momentum and gradient: a momentum
    of another shape (a state dict may load one) goes to torch's operations, which refuse it
    before writing, and a gradient of its own dtype (torch's ``grad_dtype``) is stepped by them
    as a float32 gradient of the same values would be (the kernels would read float64 bytes as
    float32 entries)."""
    w = torch.nn.Parameter(torch.randn(10))
    opt = Lion([w], lr=0.1)
    w.grad = torch.randn(10)
    opt.step()
    opt.state[w]["exp_avg"] = torch.zeros(2)
    before = w.detach().clone()
    with pytest.raises(RuntimeError):
        opt.step()
    assert torch.equal(w, before)

    g = torch.Generator().manual_seed(2)
    values = [torch.randn(50, generator=g) for _ in range(3)]
    a = torch.nn.Parameter(torch.randn(50, generator=g))
    b = torch.nn.Parameter(a.detach().clone())
    a.grad_dtype = torch.float64
    oa, ob = Lion([a], lr=0.1, betas=(0.9, 0.9)), Lion([b], lr=0.1, betas=(0.9, 0.9))
    for v in values:
        a.grad, b.grad = v.double(), v.clone()
        oa.step()
        ob.step()
        assert torch.equal(a, b)
        # one rounding apart (float64 then float32, against float32's fused multiply-add), on terms of
        # order 1; reading float64 bytes as float32 entries gives differences of order 1 or more
        torch.testing.assert_close(oa.state[a]["exp_avg"], ob.state[b]["exp_avg"], rtol=0, atol=1e-6)


def test_a_step_keeps_no_gradient_alive():
    """The layout kept between steps holds the weights and momenta, not the gradients: after
    ``zero_grad()`` a gradient is freed, with and without telemetry, for Lion and Enim."""
    import gc
    import weakref

    for make in (lambda ps: Lion(ps), lambda ps: Lion(ps, telemetry=True), lambda ps: Enim(ps, angle=0.5, seed=0)):
        ps = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(5))]
        opt = make(ps)
        for _ in range(2):
            for p in ps:
                p.grad = torch.randn_like(p)
            opt.step()
        alive = weakref.ref(ps[0].grad)
        opt.zero_grad(set_to_none=True)
        gc.collect()
        assert alive() is None


@pytest.mark.parametrize("path", ["one launch", "two launches", "torch"])
def test_the_telemetry_counts_on_every_path(path):
    """The counts (zero_grad, tracing, revived) and sums, against numpy, whichever way the step
    is made: one launch (one dtype), two launches (a float64 parameter beside float32 ones:
    the check and sums, then the update that counts), torch's operations (foreach=True)."""
    g = torch.Generator().manual_seed(6)
    dtypes = [torch.float32, torch.float64 if path == "two launches" else torch.float32, torch.float32]
    ps = [torch.nn.Parameter(torch.randn(n, generator=g, dtype=dt)) for n, dt in zip((300, 40, 7), dtypes)]
    opt = Lion([dict(params=ps[:2]), dict(params=ps[2:], lr=1e-3)], betas=(0.9, 0.3), telemetry=True,
               foreach=True if path == "torch" else None)
    for step in range(10):
        for p in ps:  # the first third dead at steps 1 to 7 (their momenta decay as 0.3^k), revived at 8
            keep = torch.rand(p.shape, generator=g) < 0.9
            keep[: p.numel() // 3] = step == 0 or step >= 8
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype) * keep
        before = [opt.state[p]["exp_avg"].clone() if opt.state[p] else torch.zeros_like(p) for p in ps]
        grads = [p.grad.clone() for p in ps]
        opt.step()
        t = opt.telemetry
        for idx in ([0, 1], [2]):  # the groups
            m = torch.cat([before[i].double() for i in idx])
            thr = REVIVED_FRACTION * float(m.pow(2).mean().sqrt())
            for i in idx:
                gr, mm = grads[i], before[i]
                want = (int((gr == 0).sum()), int(((gr == 0) & (mm != 0)).sum()),
                        int(((gr != 0) & (mm.double().abs() < thr)).sum()))
                got = t["per_tensor"][i]
                assert (got["zero_grad"], got["tracing"], got["revived"]) == want, (step, i)
        assert (t["revived"] > 100) == (step == 8) and (t["tracing"] > 100) == (1 <= step <= 7)
        c = torch.cat([(0.9 * m.double() + 0.1 * gr.double()) for m, gr in zip(before, grads)])
        want_angle = math.acos(float(c.abs().sum() / (c.count_nonzero().sqrt() * c.norm())))
        assert abs(t["sign_angle"] - want_angle) < 1e-6


# --- state_dict and resume ------------------------------------------------------------------


def _make(kind, net):
    if kind == "lion":
        return Lion(_groups(net), telemetry=True)
    return Enim(_groups(net), angle="lni", seed=3, telemetry=True)


@pytest.mark.parametrize("kind", ["lion", "enim"])
def test_state_dict_resume_continues_identically(kind):
    x, y = _data()
    straight = _net()
    opt = _make(kind, straight)
    for _ in range(12):
        _train_step(straight, opt, x, y)

    first = _net()
    opt1 = _make(kind, first)
    for _ in range(5):
        _train_step(first, opt1, x, y)
    buf = io.BytesIO()
    torch.save({"net": first.state_dict(), "opt": opt1.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    resumed = _net(seed=99)  # different initial weights: everything comes from the checkpoint
    resumed.load_state_dict(saved["net"])
    opt2 = _make(kind, resumed)
    if kind == "enim":
        opt2 = Enim(_groups(resumed), angle="lni", seed=12345, telemetry=True)  # seed restored too
    opt2.load_state_dict(saved["opt"])
    assert opt2.steps == 5
    for _ in range(7):
        _train_step(resumed, opt2, x, y)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert opt2.telemetry["step"] == 12 and opt2.telemetry["angle"] == opt.telemetry["angle"]


# --- telemetry ---------------------------------------------------------------------------------


def _c_numpy(opt, params, grads):
    """Lion's c per parameter, from the state before a step, in float64 numpy."""
    out = []
    for group in opt.param_groups:
        b1 = group["betas"][0]
        for p in group["params"]:
            if p in grads:
                m = opt.state[p]["exp_avg"].double().numpy() if opt.state[p] else np.zeros(p.shape)
                out.append((b1 * m + (1 - b1) * grads[p].double().numpy()).reshape(-1))
    return out


def test_telemetry_angle_and_budget_against_package_functions():
    net = _net()
    opt = Lion(_groups(net), telemetry=True)
    x, y = _data()
    for step in range(6):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        grads = {p: p.grad.clone() for p in net.parameters()}
        cs = _c_numpy(opt, list(net.parameters()), grads)
        opt.step()
        t = opt.telemetry
        c = np.concatenate(cs)
        assert t["step"] == step + 1 and t["n"] == c.size
        assert abs(t["angle"] - lg.sign_angle(c)) < 1e-6  # c from float32 momenta: 1e-7 relative
        b = lg.angle_budget(cs)
        assert abs(t["budget_T"] - b.T) < 1e-6 and abs(t["budget_H"] - b.H) < 1e-6
        assert abs(math.cos(t["sign_angle"]) - math.sqrt(2 / math.pi) * t["budget_T"] * t["budget_H"]) < 1e-12
        assert t["isotropic_mean"] == pytest.approx(lg.theory.BisectorAngle(c.size).mean(), abs=1e-15)
        assert t["zero_grad_fraction"] == pytest.approx(np.mean(np.concatenate(
            [g.numpy().reshape(-1) for g in grads.values()]) == 0), abs=0)
    assert len(opt.history) == 6 and opt.history[-1] is opt.telemetry


def test_telemetry_is_the_same_with_the_fused_kernel_and_torchs_operations():
    """The fused kernel's sums are momentum_sums(rounded=True) to the bit: every record equal."""
    x, y = _data()
    nets = [_net(), _net()]
    opts = [Lion(_groups(nets[0]), telemetry=True), Lion(_groups(nets[1]), foreach=False, telemetry=True)]
    for _ in range(8):
        for net, opt in zip(nets, opts):
            _train_step(net, opt, x, y)
    assert opts[0].history == opts[1].history


def test_telemetry_off_records_nothing():
    net = _net()
    opt = Lion(net.parameters())
    _train_step(net, opt, *_data())
    assert opt.telemetry is None and opt.history == []


def _relu_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def test_telemetry_counts_on_a_dead_relu_unit():
    """Kill hidden unit 1: its weight row (4), its bias (1) and its outgoing column (2) get
    gradient exactly 0 (7 coordinates); the momenta they had keep moving them (tracing).
    With beta2 = 0.5 their momenta decay below 1e-3 of the RMS in ~20 steps; revived,
    those 7 coordinates get a gradient at near-zero momentum."""
    net = _relu_net()
    first, _, last = net
    opt = Lion(net.parameters(), lr=1e-3, betas=(0.9, 0.5), telemetry=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = torch.randn(32, 2, generator=g)

    def step():
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        # the counts by hand, before the step: gradient and momentum of every coordinate
        grads = [p.grad.clone() for p in net.parameters()]
        moms = [opt.state[p]["exp_avg"].clone() if opt.state[p] else torch.zeros_like(p) for p in net.parameters()]
        opt.step()
        zero = [int((gr == 0).sum()) for gr in grads]
        tracing = [int(((gr == 0) & (m != 0)).sum()) for gr, m in zip(grads, moms)]
        allm = torch.cat([m.reshape(-1) for m in moms]).double()
        thr = REVIVED_FRACTION * float(allm.pow(2).mean().sqrt())
        revived = [int(((gr != 0) & (m.double().abs() < thr)).sum()) if thr > 0 else 0 for gr, m in zip(grads, moms)]
        t = opt.telemetry
        assert [p["zero_grad"] for p in t["per_tensor"]] == zero
        assert [p["tracing"] for p in t["per_tensor"]] == tracing
        assert [p["revived"] for p in t["per_tensor"]] == revived
        assert (t["zero_grad"], t["tracing"], t["revived"]) == (sum(zero), sum(tracing), sum(revived))
        assert t["zero_grad_fraction"] == sum(zero) / 23
        return t

    for _ in range(3):
        t = step()
    assert t["zero_grad"] == 0  # every unit alive (checked by hand: these inputs hit all three)
    with torch.no_grad():
        first.bias[1] = -100.0  # unit 1 dead for these inputs
    t = step()
    assert (t["zero_grad"], t["tracing"], t["revived"]) == (7, 7, 0)
    assert [p["zero_grad"] for p in t["per_tensor"]] == [4, 1, 2, 0]
    for _ in range(30):
        t = step()
    assert t["tracing"] == 7  # momentum b2^k m != 0: the step keeps moving them
    with torch.no_grad():
        first.bias[1] = 0.0  # revive the unit
    t = step()
    assert t["zero_grad"] == 0 and t["revived"] == 7


def test_revived_threshold_follows_a_momentum_changed_between_steps():
    """The threshold reuses the fused kernel's ||m||^2 only while the momentum is unwritten:
    after setting half the momenta to 1000 by hand (the RMS grows ~7000x), the count is
    the recount with the new RMS (about 500), not with the old one (about 0)."""
    p = torch.nn.Parameter(torch.zeros(1000))
    opt = Lion([p], lr=1e-3, betas=(0.9, 0.9), telemetry=True)
    g = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        p.grad = g.clone()
        opt.step()
    m = opt.state[p]["exp_avg"]
    old_thr = REVIVED_FRACTION * float(m.double().pow(2).mean().sqrt())
    with torch.no_grad():
        m[500:] = 1000.0
    before = m.clone().double()
    p.grad = g.clone()
    opt.step()
    thr = REVIVED_FRACTION * float(before.pow(2).mean().sqrt())
    revived = int((before.abs() < thr).sum())
    assert opt.telemetry["revived"] == revived > 450
    assert int((before.abs() < old_thr).sum()) < 10  # what a stale threshold would count
    version = p._version
    p.grad = g.clone()
    opt.step()
    assert p._version > version  # writes through numpy are reported to autograd


def test_telemetry_sign_angle_with_exact_zeros_uses_nnz():
    p = torch.nn.Parameter(torch.zeros(6, dtype=F64))
    opt = Lion([p], telemetry=True)
    p.grad = torch.tensor([1.0, -2.0, 0.0, 0.0, 3.0, 0.5], dtype=F64)
    opt.step()
    c = 0.1 * p.grad.numpy()
    assert opt.telemetry["angle"] == pytest.approx(lg.sign_angle(c), abs=1e-14)
    assert opt.telemetry["zero_grad"] == 2 and opt.telemetry["tracing"] == 0


# --- Enim: the rotation -------------------------------------------------------------------------


def _angle(a, b):
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return 2 * math.atan2(np.linalg.norm(a - b), np.linalg.norm(a + b))


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (F64, 1e-12)])
@pytest.mark.parametrize("angle", [0.0, 0.3, 0.6470186, 1.2, math.pi / 2, 2.5, math.pi])
def test_enim_turns_by_the_angle_with_norm_lr_sqrt_n(dtype, tol, angle):
    g = torch.Generator().manual_seed(7)
    shapes = [(30, 20), (20,), (7, 3)]
    params = [torch.nn.Parameter(torch.zeros(s, dtype=dtype)) for s in shapes]
    lrs = [0.5, 0.25, 2.0]
    opt = Enim([dict(params=[p], lr=lr) for p, lr in zip(params, lrs)], angle=angle, seed=1, telemetry=True)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=dtype) * torch.rand(p.shape, generator=g, dtype=dtype)
    c = np.concatenate([0.1 * p.grad.double().numpy().reshape(-1) for p in params])
    opt.step()
    u = np.concatenate([-p.detach().double().numpy().reshape(-1) / lr for p, lr in zip(params, lrs)])
    assert abs(_angle(u, c) - angle) < tol
    assert abs(np.linalg.norm(u) / math.sqrt(c.size) - 1) < tol
    assert opt.telemetry["angle"] == angle
    assert opt.telemetry["sign_angle"] == pytest.approx(lg.sign_angle(c), abs=tol)


def test_enim_zero_angle_is_normalised_momentum_sgd():
    rng = np.random.default_rng(2)
    p = torch.nn.Parameter(torch.tensor(rng.standard_normal(50)))
    opt = Enim([p], lr=0.1, weight_decay=0.2, angle=0.0, seed=0)
    w, m = p.detach().numpy().copy(), np.zeros(50)
    for _ in range(5):
        g = rng.standard_normal(50)
        p.grad = torch.tensor(g)
        opt.step()
        c = 0.9 * m + 0.1 * g
        w = w * (1 - 0.1 * 0.2) - 0.1 * math.sqrt(50) * c / np.linalg.norm(c)
        m = 0.99 * m + 0.01 * g
        np.testing.assert_allclose(p.detach().numpy(), w, rtol=0, atol=1e-14)


class _NumpyStreamEnim(Enim):
    """Enim whose Gaussian comes from a numpy Generator: the stream optim.enim_step draws."""

    def __init__(self, *args, np_seed, **kwargs):
        super().__init__(*args, **kwargs)
        self._np_gen = np.random.default_rng(np_seed)

    FUSED_DRAWS = False

    def _normal_(self, zs, samples=None):
        self._z.copy_(torch.from_numpy(self._np_gen.standard_normal(self._z.numel())))


def test_enim_equals_numpy_reference_step_on_the_same_draws():
    """Against ``optim.enim_step`` (rotation by projection, renormalised), same normals."""
    rng = np.random.default_rng(3)
    shapes = [(6, 5), (5,), (4,)]
    params = [torch.nn.Parameter(torch.tensor(rng.standard_normal(s))) for s in shapes]
    opt = _NumpyStreamEnim(params, lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, angle=0.9, seed=0, np_seed=11)
    ref_gen = np.random.default_rng(11)
    w = [p.detach().numpy().copy() for p in params]
    m = [np.zeros(s) for s in shapes]
    for _ in range(10):
        grads = [rng.standard_normal(s) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        opt.step()
        w, m = optim.enim_step(w, grads, m, lr=0.05, angle=0.9, beta1=0.8, beta2=0.9, weight_decay=0.1, rng=ref_gen)
        for p, wi in zip(params, w):
            np.testing.assert_allclose(p.detach().numpy(), wi, rtol=0, atol=1e-13)


def test_enim_fused_kernels_equal_torchs_operations():
    """Float angle, float64, 10 steps, two groups: the fused path (z drawn ahead inside each
    update) and the torch path (foreach=False: z drawn at the start of each step, with the
    same generator keys) take the same z and agree to rounding; so do their telemetries."""
    rng = np.random.default_rng(8)
    shapes = [(40, 30), (30,), (13,)]
    w0 = [rng.standard_normal(s) for s in shapes]
    runs = []
    for foreach in (None, False):
        ps = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
        groups = [dict(params=ps[:2], lr=0.01, weight_decay=0.1), dict(params=ps[2:], lr=0.03)]
        opt = Enim(groups, angle=0.7, seed=4, foreach=foreach, telemetry=True)
        g_rng = np.random.default_rng(9)
        for _ in range(10):
            for p in ps:
                p.grad = torch.tensor(g_rng.standard_normal(p.shape) * (g_rng.random(p.shape) < 0.9))
            opt.step()
        runs.append((ps, opt))
    (a, oa), (b, ob) = runs
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), rtol=0, atol=1e-13)
    for ta, tb in zip(oa.history, ob.history):
        assert ta["zero_grad"] == tb["zero_grad"] and ta["revived"] == tb["revived"]
        assert ta["angle"] == tb["angle"] == 0.7 and abs(ta["sign_angle"] - tb["sign_angle"]) < 1e-12


def test_enim_direction_equals_the_papers_law_of_sines_construction():
    """The paper's code: s Gaussian at angle theta from c, k = sin(a)/(sin(a) + sin(theta - a)),
    u = normalise(c_hat + k (s_hat - c_hat)) is at angle a from c, towards s."""
    n, a = 200, 0.8
    p = torch.nn.Parameter(torch.zeros(n, dtype=F64))
    opt = _NumpyStreamEnim([p], lr=1.0, angle=a, seed=0, np_seed=5)
    g = np.random.default_rng(6).standard_normal(n)
    p.grad = torch.tensor(g)
    opt.step()
    s = np.random.default_rng(5).standard_normal(n)
    c_hat, s_hat = g / np.linalg.norm(g), s / np.linalg.norm(s)
    theta = _angle(s, g)
    k = math.sin(a) / (math.sin(a) + math.sin(theta - a))
    u = c_hat + k * (s_hat - c_hat)
    expected = math.sqrt(n) * u / np.linalg.norm(u)
    np.testing.assert_allclose(-p.detach().numpy(), expected, rtol=0, atol=1e-12)


def test_enim_groups_with_their_own_lr_and_weight_decay():
    """Each group's slice of one whole-model u, times its lr; weight decay on the old weights."""
    rng = np.random.default_rng(4)
    w0 = [rng.standard_normal(s) for s in [(8, 3), (3,), (5,)]]
    grads = [rng.standard_normal(w.shape) for w in w0]
    grouped = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    hp = [(0.1, 0.0), (0.02, 0.5), (0.3, 0.01)]
    opt = Enim([dict(params=[p], lr=lr, weight_decay=wd) for p, (lr, wd) in zip(grouped, hp)], angle=1.1, seed=9)
    unit = [torch.nn.Parameter(torch.zeros(w.shape, dtype=F64)) for w in w0]
    ref = Enim(unit, lr=1.0, angle=1.1, seed=9)  # same seed, same c: u = -(its step)
    for ps, o in ((grouped, opt), (unit, ref)):
        for p, g in zip(ps, grads):
            p.grad = torch.tensor(g)
        o.step()
    for p, w, (lr, wd), q in zip(grouped, w0, hp, unit):
        np.testing.assert_allclose(p.detach().numpy(), w * (1 - lr * wd) + lr * q.detach().numpy(), atol=1e-14)


def test_enim_scope_tensor_turns_each_tensor_on_its_own():
    g = torch.Generator().manual_seed(8)
    params = [torch.nn.Parameter(torch.zeros(s, dtype=F64)) for s in [(40,), (9, 3)]]
    opt = Enim(params, lr=1.0, angle=0.7, seed=2, scope="tensor")
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=F64)
    opt.step()
    for p in params:
        u, c = -p.detach().numpy().reshape(-1), p.grad.numpy().reshape(-1)
        assert abs(_angle(u, c) - 0.7) < 1e-12
        assert abs(np.linalg.norm(u) - math.sqrt(c.size)) < 1e-12
    with pytest.raises(ValueError, match="parameter 1 .one entry"):
        Enim([torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(1))], angle=0.5, scope="tensor")


def test_enim_lion_angle_is_lions_sign_angle():
    g = torch.Generator().manual_seed(3)
    p = torch.nn.Parameter(torch.zeros(500, dtype=F64))
    opt = Enim([p], lr=1.0, angle="lion", seed=0, telemetry=True)
    p.grad = torch.randn(500, generator=g, dtype=F64) ** 3  # heavy-tailed: angle well above 37 deg
    opt.step()
    c = 0.1 * p.grad.numpy()
    assert abs(_angle(-p.detach().numpy(), c) - lg.sign_angle(c)) < 1e-12
    assert opt.telemetry["angle"] == pytest.approx(lg.sign_angle(c), abs=1e-12)
    assert lg.sign_angle(c) > 0.9  # > 51 deg, not the isotropic 37


def test_enim_callable_angle_and_its_errors():
    p = torch.nn.Parameter(torch.zeros(20, dtype=F64))
    seen = []
    opt = Enim([p], lr=1.0, angle=lambda k: seen.append(k) or 0.1 * k, seed=0, telemetry=True)
    for k in (1, 2, 3):
        p.grad = torch.ones(20, dtype=F64) + 0.01 * k * torch.arange(20, dtype=F64)
        opt.step()
        assert opt.telemetry["angle"] == pytest.approx(0.1 * k)
    assert seen == [1, 2, 3]
    bad = Enim([p], angle=lambda k: 4.0, seed=0)
    with pytest.raises(ValueError, match=r"angle\(1\) returned 4.0"):
        bad.step()
    for kwargs, err, match in [
        (dict(angle=3.5), ValueError, r"angle must be a finite number in \[0, pi\], 'lni', 'lion' or a callable, got 3\.5$"),
        (dict(angle="sign"), ValueError, r"angle must be a finite number in \[0, pi\], 'lni', 'lion' or a callable, got 'sign'$"),
        (dict(angle=0.1, scope="layer"), ValueError, "scope must be one of"),
        (dict(angle=0.1, seed=-1), ValueError, "seed must be None or an integer"),
        (dict(angle=0.1, telemetry=1), TypeError, "telemetry must be True or False"),
    ]:
        with pytest.raises(err, match=match):
            Enim([p], **kwargs)


def test_enim_seeds_reproduce_and_differ():
    def run(seed):
        p = torch.nn.Parameter(torch.zeros(100))
        opt = Enim([p], lr=1.0, angle=0.5, seed=seed)
        for k in range(3):
            p.grad = torch.linspace(-1, 1 + k, 100)
            opt.step()
        return p.detach().clone()

    assert torch.equal(run(4), run(4))
    assert not torch.equal(run(4), run(5))
    assert Enim([torch.nn.Parameter(torch.zeros(2))], angle=0.1).seed >= 0  # seed=None draws one


def test_enim_draws_again_when_the_gaussian_is_parallel_to_c():
    """The gradient set to Enim's first z (key: the first two words of its generator; tensor 0 is
    sample 0) with ``beta1 = 0``: c = z, so z is drawn again (a second first pass, from a new
    key) and the step turns c by the angle."""
    from lni_geometry import optim_kernels

    key = tuple(torch.randint(0, 2**32, (2,), generator=torch.Generator().manual_seed(0), dtype=torch.int64).tolist())
    z = np.empty(30)
    optim_kernels.fill_normals(z, key, sample=0)
    p = torch.nn.Parameter(torch.zeros(30, dtype=F64))
    opt = Enim([p], lr=1.0, betas=(0.0, 0.0), angle=0.4, seed=0)
    passes = []
    first_pass = opt._first_pass
    opt._first_pass = lambda st, threshold, fresh=False: passes.append(fresh) or first_pass(st, threshold, fresh)
    p.grad = torch.from_numpy(z)
    opt.step()
    assert passes == [False, True]
    assert abs(_angle(-p.detach().numpy(), p.grad.numpy()) - 0.4) < 1e-12


def _count_one_launch_steps(monkeypatch):
    """A list that grows by the status of each one-launch step Enim takes."""
    from lni_geometry import optim_kernels

    statuses = []
    step = optim_kernels.EnimStep.step

    def counted(self, *args):
        statuses.append(step(self, *args))
        return statuses[-1]

    monkeypatch.setattr(optim_kernels.EnimStep, "step", counted)
    return statuses


def test_enim_steps_in_one_launch_with_the_numbers_of_its_two_passes(monkeypatch):
    """A float angle over the whole model without telemetry: from the second step (z drawn ahead)
    the kernels make the step in one launch, with the weights and momenta of the two passes and
    the coefficients between them (here: Enim with telemetry, which takes them), bit for bit, in
    float32 over two groups; the other settings never take it."""
    statuses = _count_one_launch_steps(monkeypatch)
    rng = np.random.default_rng(12)
    shapes = [(40, 30), (30,), (7, 3, 3), (1,)]
    w0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    runs = []
    for telemetry in (False, True):
        ps = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
        groups = [dict(params=ps[:2], lr=0.01, weight_decay=0.1), dict(params=ps[2:], lr=0.03)]
        opt = Enim(groups, angle=0.7, seed=4, telemetry=telemetry)
        g_rng = np.random.default_rng(9)
        for _ in range(5):
            for p in ps:
                g = g_rng.standard_normal(p.shape) * (g_rng.random(p.shape) < 0.9)
                p.grad = torch.tensor(g.astype(np.float32))
            opt.step()
        runs.append([*ps, *(opt.state[p]["exp_avg"] for p in ps)])
        assert statuses == [0] * 4
    for x, y in zip(*runs):
        assert torch.equal(x, y)
    for kwargs in (dict(angle="lion"), dict(angle=0.7, scope="tensor"), dict(angle=0.7, foreach=False),
                   dict(angle=lambda k: 0.7)):
        p = torch.nn.Parameter(torch.ones(50))
        opt = Enim([p], seed=0, **kwargs)
        for _ in range(3):
            p.grad = torch.linspace(-1, 1, 50)
            opt.step()
    assert statuses == [0] * 4


def test_enim_in_one_launch_draws_again_when_the_gaussian_is_parallel_to_c(monkeypatch):
    """The second step's gradient set to its z (drawn ahead by the first update, from the second
    key of the generator) with ``beta1 = 0``: the launch writes nothing (status 2), the two
    passes draw z again and the step turns c by the angle."""
    from lni_geometry import optim_kernels

    statuses = _count_one_launch_steps(monkeypatch)
    gen = torch.Generator().manual_seed(0)
    keys = [tuple(torch.randint(0, 2**32, (2,), generator=gen, dtype=torch.int64).tolist()) for _ in range(2)]
    z = np.empty(30)
    optim_kernels.fill_normals(z, keys[1], sample=0)
    p, twin = (torch.nn.Parameter(torch.zeros(30, dtype=F64)) for _ in range(2))
    opt = Enim([p], lr=1.0, betas=(0.0, 0.0), angle=0.4, seed=0)
    two_launches = Enim([twin], lr=1.0, betas=(0.0, 0.0), angle=0.4, seed=0, telemetry=True)
    for x, o in ((p, opt), (twin, two_launches)):
        x.grad = torch.linspace(-1, 1, 30, dtype=F64)
        o.step()
    passes = []
    first_pass = opt._first_pass
    opt._first_pass = lambda st, threshold, fresh=False: passes.append(fresh) or first_pass(st, threshold, fresh)
    before = p.detach().clone()
    p.grad, twin.grad = torch.from_numpy(z), torch.from_numpy(z.copy())
    opt.step()
    two_launches.step()
    assert statuses == [2] and passes == [False, True]
    assert abs(_angle((before - p.detach()).numpy(), p.grad.numpy()) - 0.4) < 1e-12
    # the launch's key given back: the slower road draws the keys the two launches draw
    assert torch.equal(p, twin) and torch.equal(opt.state[p]["exp_avg"], two_launches.state[twin]["exp_avg"])
    assert torch.equal(opt._gen().get_state(), two_launches._gen().get_state())
    assert opt._pending.key == two_launches._pending.key


def test_an_interrupted_one_launch_step_changes_nothing(monkeypatch):
    """A KeyboardInterrupt inside the launch (as during its first compilation): the generator, the
    draw ahead, the weights and momenta stay; the next step is the step of an Enim never
    interrupted."""
    from lni_geometry import optim_kernels

    ps = [torch.nn.Parameter(torch.ones(40)) for _ in range(2)]
    opt, calm = Enim([ps[0]], angle=0.5, seed=3), Enim([ps[1]], angle=0.5, seed=3)
    for p, o in zip(ps, (opt, calm)):
        p.grad = torch.linspace(-1, 2, 40)
        o.step()
    state, pending = opt._gen().get_state(), opt._pending
    step = optim_kernels.EnimStep.step

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(optim_kernels.EnimStep, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        opt.step()
    assert torch.equal(opt._gen().get_state(), state) and opt._pending == pending and opt.steps == 1
    monkeypatch.setattr(optim_kernels.EnimStep, "step", step)
    for o in (opt, calm):
        o.step()
    assert torch.equal(ps[0], ps[1]) and torch.equal(opt._gen().get_state(), calm._gen().get_state())


def test_enim_zero_c_applies_weight_decay_only():
    p = torch.nn.Parameter(torch.ones(4, dtype=F64))
    opt = Enim([p], lr=0.1, weight_decay=0.5, angle=0.4, seed=0, telemetry=True)
    p.grad = torch.zeros(4, dtype=F64)
    opt.step()
    assert torch.equal(p.detach(), torch.full((4,), 0.95, dtype=F64))
    assert math.isnan(opt.telemetry["angle"]) and opt.telemetry["tracing"] == 0


@pytest.mark.parametrize("grad_seed", [0, 1])
def test_enim_bf16_parameters(grad_seed):
    """bf16 (torch path). grad_seed 0 is Enim's own stream: z is then within 1 degree of c,
    where sums and update must see the same rounded c or the turn is lost."""
    p = torch.nn.Parameter(torch.zeros(1000, dtype=torch.bfloat16))
    opt = Enim([p], lr=1.0, angle=0.6, seed=0)
    p.grad = torch.randn(1000, generator=torch.Generator().manual_seed(grad_seed)).to(torch.bfloat16)
    opt.step()
    u = -p.detach().double().numpy()
    assert p.dtype == torch.bfloat16 and opt.state[p]["exp_avg"].dtype == torch.bfloat16
    assert abs(np.linalg.norm(u) / math.sqrt(1000) - 1) < 1e-2  # bf16: 8 bits of mantissa
    assert abs(_angle(u, p.grad.double().numpy()) - 0.6) < 1e-2


# --- Enim: the laws -------------------------------------------------------------------------------


def _coordinate_law(dim):
    """Law of one coordinate of a uniform point on S^(dim-1): (x + 1)/2 ~ Beta((dim-1)/2, (dim-1)/2)."""
    a = (dim - 1) / 2
    return lambda x: scipy.stats.beta.cdf((np.asarray(x) + 1) / 2, a, a)


def _direction_projections(opt, p, grad, e, draws):
    out = np.empty(draws)
    n = p.numel()
    for i in range(draws):
        with torch.no_grad():
            p.zero_()
        p.grad = grad
        opt.step()
        u = -p.detach().numpy() / math.sqrt(n)  # cos(t) c_hat + sin(t) w, t = angle
        out[i] = (u @ e) / math.sin(opt.angle)
    return out


def test_enim_direction_is_uniform_on_the_orthogonal_sphere():
    """w uniform on the unit sphere of c's complement (dimension n - 1): its projection on a
    fixed unit vector e orthogonal to c is one coordinate of a uniform point of S^(n-2).
    KS at p > 1e-3 with 4000 draws detects a change of that law's width of ~4% (the
    difference between S^(n-2) and S^(n-1) at n = 6 is 10%: the power check below)."""
    n, draws = 6, 4000
    grad = torch.tensor([1.0, 2.0, -1.0, 0.5, 3.0, -2.0], dtype=F64)
    e = np.array([2.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    e /= np.linalg.norm(e)
    assert abs(e @ grad.numpy()) < 1e-15
    p = torch.nn.Parameter(torch.zeros(n, dtype=F64))
    opt = Enim([p], lr=1.0, betas=(0.0, 0.0), angle=1.0, seed=0)  # beta1 = 0: c = grad
    x = _direction_projections(opt, p, grad, e, draws)
    assert scipy.stats.kstest(x, _coordinate_law(n - 1)).pvalue > 1e-3
    # power: the law of a coordinate of S^(n-1) (a direction not restricted to the complement)
    assert scipy.stats.kstest(x, _coordinate_law(n)).pvalue < 1e-3


def test_enim_lni_angle_has_the_bisector_law():
    """'lni': the turn is drawn from the exact bisector-angle law of S^(n-1) (the package's
    sampler, as lni_geometry.lni). 3000 draws at n = 40 (angle sd 0.056 rad): KS against
    theory.BisectorAngle at p > 1e-3, and the mean within 4 standard errors (0.0041 rad,
    0.6% of the angle). Power: the same checks reject the law shifted by 1% (every angle
    x 1.01: 6.3 standard errors). Widths are checked at 1% by the sampler's own tests."""
    n, draws = 40, 3000
    p = torch.nn.Parameter(torch.zeros(n, dtype=F64))
    opt = Enim([p], lr=1.0, betas=(0.0, 0.0), angle="lni", seed=10, telemetry=True)  # c = grad
    g = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=F64)
    angles = np.empty(draws)
    for i in range(draws):
        with torch.no_grad():
            p.zero_()
        p.grad = g
        opt.step()
        angles[i] = opt.telemetry["angle"]
        if i < 5:  # the angle reported is the angle applied
            assert abs(_angle(-p.detach().numpy(), g.numpy()) - angles[i]) < 1e-12
    law = lg.theory.BisectorAngle(n)

    def consistent(x):
        se = law.std() / math.sqrt(x.size)
        return scipy.stats.kstest(x, law.cdf).pvalue > 1e-3 and abs(x.mean() - law.mean()) < 4 * se

    assert consistent(angles)
    assert not consistent(1.01 * angles)
    # and the law of lni_geometry.lni's turn: lni draws it with the package's counter-based
    # sampler (sample_angles(n, 1)); here all at once (two-sample KS), plus 200 lni calls.
    ref = lg.sample_angles(n, draws, seed=1, backend="cpu").bisector
    assert scipy.stats.ks_2samp(angles, ref).pvalue > 1e-3
    gen, v = np.random.default_rng(1), g.numpy()
    turns = np.array([_angle(lg.lni(v, rng=gen), v) for _ in range(200)])
    assert scipy.stats.ks_2samp(angles, turns).pvalue > 1e-3


def test_bench_torch_rows_on_a_small_model():
    """The benchmark runs every row (timings are measured by the command, never asserted)."""
    from lni_geometry import bench

    res = bench.bench_torch(repeat=1, models={"tiny": ((20, 10), (10,))})
    model = res["models"]["tiny"]
    assert model["params"] == 210 and model["tensors"] == 2
    assert {"ours Lion", "ours Lion, telemetry", "lion-pytorch Lion", "lion-pytorch Lion, foreach",
            "ours Enim, angle=0.65", "fill n normals (kernel alone)"} <= set(model["rows"])
    text = bench.format_torch(res)
    assert "our Lion / lion-pytorch's faster" in text and "Lion + 1.25 fill" in text


def test_bench_model_shapes_are_the_models():
    """ResNet-18's shapes are those of a CIFAR ResNet-18 built in torch (62 tensors, 11,173,962
    entries); the transformer's tensor count is 12 per layer plus 5."""
    from lni_geometry.bench.torch import resnet18_shapes, transformer_shapes

    torch.manual_seed(0)

    class Block(torch.nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1, self.b1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False), torch.nn.BatchNorm2d(cout)
            self.c2, self.b2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(cout)
            self.short = (torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False),
                                              torch.nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else None)

    layers = [torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(64)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    net = torch.nn.Sequential(*layers, torch.nn.Linear(512, 10))
    assert [tuple(p.shape) for p in net.parameters()] == list(resnet18_shapes())
    assert sum(p.numel() for p in net.parameters()) == 11_173_962
    assert len(transformer_shapes(100, 8, 3, 16)) == 12 * 3 + 5
