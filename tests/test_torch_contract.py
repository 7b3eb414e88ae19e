"""Lion and Enim held to what torch users expect of any ``torch.optim`` optimizer.

Copies (deepcopy, pickle, ``torch.save``), ``torch.compile``, tensor ``lr``, empty groups
and tensors, ``foreach`` in every dtype against lion-pytorch, state-dict hooks and
round trips (``torch.load(weights_only=True)``, float64 state into float32 weights,
Lion <-> Enim), parameter dtypes, bounded history and callbacks, names, seeds that leave
torch's global random state alone, and non-finite gradients refused with nothing
changed (and ``torch.amp.GradScaler``, which skips such steps before the optimizer).
References: lion-pytorch, torch's own conventions, and the uncopied optimizer.
"""

import copy
import io
import math
import pickle

import pytest

torch = pytest.importorskip("torch")  # installed by the [test] extra: CI runs these
lion_pytorch = pytest.importorskip("lion_pytorch")


import lni_geometry.torch as lgt  # noqa: E402
from lni_geometry.torch import Enim, Lion  # noqa: E402
from test_torch import _net, _train_step  # noqa: E402  (the small CNN and the training step of the optimizer tests)


def _data(seed=1, dtype=torch.float32, n=32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g)


def _snapshot(net, opt):
    """Everything a step may change: weights, momenta, steps (and Enim's generator state)."""
    out = [p.detach().clone() for p in net.parameters()]
    out += [opt.state[p]["exp_avg"].clone() for p in net.parameters() if p in opt.state]
    out.append(torch.tensor([opt.steps, len(opt.state)]))
    if isinstance(opt, Enim):
        out.append(opt._gen().get_state().clone())
    return out


def _same(a, b):
    """The same tensors, entry for entry (a nan equals a nan)."""
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and bool(((x == y) | (x.isnan() & y.isnan())).all())
        if x.is_floating_point() else torch.equal(x, y) for x, y in zip(a, b))


OPTIMIZERS = {
    "lion": lambda ps, **kw: Lion(ps, lr=1e-3, weight_decay=0.1, **kw),
    "lion-telemetry": lambda ps, **kw: Lion(ps, lr=1e-3, weight_decay=0.1, telemetry=True, **kw),
    "enim": lambda ps, **kw: Enim(ps, lr=1e-3, angle=0.6, seed=5, weight_decay=0.01, decoupled_weight_decay=True,
                                  **kw),
    "enim-lni-telemetry": lambda ps, **kw: Enim(ps, lr=1e-3, angle="lni", seed=5, telemetry=True, **kw),
}


# --- copies -----------------------------------------------------------------------------------


def _deepcopy(opt, net):
    twin = copy.deepcopy((net, opt))
    return twin


def _pickle(opt, net):
    return pickle.loads(pickle.dumps((net, opt)))


def _torch_save(opt, net):
    buf = io.BytesIO()
    torch.save((net, opt), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


@pytest.mark.parametrize("copier", [_deepcopy, _pickle, _torch_save])
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_a_copy_steps_exactly_like_the_original(kind, copier):
    """After 3 steps (Enim with a z drawn ahead), the copy and the original take 3 more
    steps on the same data: the same weights, momenta, steps and telemetry."""
    x, y = _data()
    net = _net()
    opt = OPTIMIZERS[kind](net.parameters())
    for _ in range(3):
        _train_step(net, opt, x, y)
    net2, opt2 = copier(opt, net)
    assert opt2.steps == 3 and type(opt2) is type(opt)
    for _ in range(3):
        _train_step(net, opt, x, y)
        _train_step(net2, opt2, x, y)
    assert _same(_snapshot(net, opt), _snapshot(net2, opt2))
    if opt.telemetry_enabled:
        assert opt2.telemetry == opt.telemetry


# --- torch.compile ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lion", "enim-lni-telemetry"])
def test_torch_compile_of_a_training_step_gives_the_eager_numbers(kind):
    """``torch.compile`` of a function that runs forward, backward and ``opt.step()``: the
    optimizer's step runs outside the graph (one graph break), with eager's numbers."""
    torch._dynamo.reset()
    x, y = _data()
    nets = [_net(), _net()]
    opts = [OPTIMIZERS[kind](n.parameters()) for n in nets]

    def step(net, opt):
        return _train_step(net, opt, x, y)

    compiled = torch.compile(step, backend="aot_eager")
    for _ in range(4):
        a = step(nets[0], opts[0])
        b = compiled(nets[1], opts[1])
        assert torch.equal(a, b)
    assert _same(_snapshot(nets[0], opts[0]), _snapshot(nets[1], opts[1]))


def test_torch_compile_of_the_step_alone():
    torch._dynamo.reset()
    x, y = _data()
    net = _net()
    opt = Enim(net.parameters(), lr=1e-3, angle="lion", seed=0, telemetry=True)
    twin_net = _net()
    twin = Enim(twin_net.parameters(), lr=1e-3, angle="lion", seed=0, telemetry=True)
    compiled_step = torch.compile(opt.step, backend="aot_eager")
    for _ in range(3):
        for n in (net, twin_net):
            n.zero_grad()
            torch.nn.functional.cross_entropy(n(x), y).backward()
        compiled_step()
        twin.step()
    assert _same(_snapshot(net, opt), _snapshot(twin_net, twin))


# --- hyperparameters, groups, dtypes ---------------------------------------------------------------


@pytest.mark.parametrize("make", [Lion, lambda ps, lr: Enim(ps, lr=lr, angle=0.5, seed=1)])
def test_tensor_lr_equals_float_lr_and_follows_a_scheduler(make):
    x, y = _data()
    nets = [_net(), _net()]
    opts = [make(nets[0].parameters(), lr=0.01),
            make(nets[1].parameters(), lr=torch.tensor(0.01, dtype=torch.float64))]
    scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) for o in opts]
    for _ in range(5):
        for net, opt, sched in zip(nets, opts, scheds):
            _train_step(net, opt, x, y)
            sched.step()
    assert isinstance(opts[1].param_groups[0]["lr"], torch.Tensor)
    assert float(opts[1].param_groups[0]["lr"]) == opts[0].param_groups[0]["lr"] == 0.01 * 0.5 ** 2
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("lr", [0.0, torch.tensor(0.0)])
@pytest.mark.parametrize("foreach", [None, False, True])
@pytest.mark.parametrize("make", [Lion, lambda ps, **kw: Enim(ps, angle=0.5, seed=1, **kw)])
def test_lr_zero_is_taken_as_torch_takes_it_and_moves_only_the_momenta(make, foreach, lr):
    """``lr = 0`` (torch's optimizers take ``lr >= 0``; a warm-up schedule starts there), a number or a
    tensor, on every path: the weights stay, the momenta move as lion-pytorch's do with its group's
    ``lr`` set to 0 (it refuses 0 at construction)."""
    x, y = _data()
    nets = [_net(), _net()]
    ours = make(nets[0].parameters(), lr=lr, weight_decay=0.1, foreach=foreach)
    theirs = lion_pytorch.Lion(nets[1].parameters(), lr=1e-3, weight_decay=0.1)
    theirs.param_groups[0]["lr"] = 0.0
    before = [p.detach().clone() for p in nets[0].parameters()]
    for _ in range(3):
        for net, opt in zip(nets, (ours, theirs)):
            _train_step(net, opt, x, y)
    for w, a, b in zip(before, nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(w, a) and torch.equal(a, b)
        assert torch.equal(ours.state[a]["exp_avg"], theirs.state[b]["exp_avg"])
        assert ours.state[a]["exp_avg"].abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("foreach", [None, False, True])
def test_decoupled_weight_decay_is_lion_pytorchs(foreach, dtype):
    """lion-pytorch's ``decoupled_weight_decay=True`` (the decay divided by the lr given at
    construction), bit for bit, with two groups of their own lr and a scheduler; and not the
    coupled decay."""
    x, y = _data(dtype=dtype)
    nets = [_net().to(dtype) for _ in range(3)]

    def groups(net):
        ps = list(net.parameters())
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-3}]

    opts = [Lion(groups(nets[0]), lr=1e-2, weight_decay=0.5, decoupled_weight_decay=True, foreach=foreach),
            lion_pytorch.Lion(groups(nets[1]), lr=1e-2, weight_decay=0.5, decoupled_weight_decay=True),
            Lion(groups(nets[2]), lr=1e-2, weight_decay=0.5, foreach=foreach)]
    scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) for o in opts]
    for _ in range(5):
        for net, opt, sched in zip(nets, opts, scheds):
            _train_step(net, opt, x, y)
            sched.step()
    ours, theirs, coupled = (list(n.parameters()) for n in nets)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert not all(torch.equal(a, b) for a, b in zip(ours, coupled))


def test_decoupled_weight_decay_in_enim_is_the_divided_weight_decay():
    x, y = _data()
    nets = [_net(), _net()]
    opts = [Enim(nets[0].parameters(), lr=1e-2, weight_decay=0.5, decoupled_weight_decay=True, angle=0.4, seed=2),
            Enim(nets[1].parameters(), lr=1e-2, weight_decay=0.5 / 1e-2, angle=0.4, seed=2)]
    scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) for o in opts]
    for _ in range(4):
        for net, opt, sched in zip(nets, opts, scheds):
            _train_step(net, opt, x, y)
            sched.step()
    assert _same(_snapshot(nets[0], opts[0]), _snapshot(nets[1], opts[1]))


def test_a_copy_pickled_before_decoupled_weight_decay_steps_with_the_coupled_decay():
    """An optimizer pickled by a release without the option (no such attributes) loads with the
    coupled decay and steps as a new one does."""
    x, y = _data()
    nets = [_net(), _net()]
    opts = [Lion(n.parameters(), lr=1e-2, weight_decay=0.5) for n in nets]
    state = opts[1].__getstate__()
    del state["decoupled_weight_decay"], state["initial_lr"]
    old = Lion.__new__(Lion)
    old.__setstate__(state)
    assert old.decoupled_weight_decay is False and old.initial_lr == 1e-2
    for _ in range(2):
        _train_step(nets[0], opts[0], x, y)
        _train_step(nets[1], old, x, y)
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))


def test_a_change_of_foreach_between_steps_takes_the_path_it_names(monkeypatch):
    """Enim's fused launch is taken again only while ``foreach`` is None (what a layout remembers
    of the path does not outlive the setting); torch's operations round the update in the
    parameters' dtype, so the steps agree with an Enim that never changed to float32's precision."""
    from lni_geometry import optim_kernels

    launches = []
    update = optim_kernels.EnimStep.update
    monkeypatch.setattr(optim_kernels.EnimStep, "update", lambda self, *a, **k: launches.append(1) or update(
        self, *a, **k))
    x, y = _data()
    nets = [_net(), _net()]
    opts = [Enim(n.parameters(), lr=1e-3, angle=0.6, seed=5) for n in nets]
    for foreach, fused in ((None, 1), (True, 0), (None, 1), (False, 0), (None, 1)):
        opts[0].foreach = foreach
        before = len(launches)
        _train_step(nets[0], opts[0], x, y)
        assert len(launches) - before == fused, foreach
        _train_step(nets[1], opts[1], x, y)
    for a, b in zip(_snapshot(nets[0], opts[0]), _snapshot(nets[1], opts[1])):
        torch.testing.assert_close(a, b)


def test_decoupled_weight_decay_needs_an_lr():
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match=r"lr given at construction: it must be > 0, got 0\.0"):
        Lion([w], lr=0.0, weight_decay=0.1, decoupled_weight_decay=True)
    with pytest.raises(TypeError, match="decoupled_weight_decay must be True or False, got 1"):
        Enim([w], angle=0.5, decoupled_weight_decay=1)


def test_bad_tensor_lr_is_refused():
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="^Tensor lr must be 1-element, got tensor"):  # torch's words
        Lion([w], lr=torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="lr as a tensor must hold a real floating value, got tensor"):
        Lion([w], lr=torch.tensor(1))
    with pytest.raises(ValueError, match="lr"):
        Lion([w], lr=torch.tensor(-0.1))


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_an_empty_group_filled_later(kind):
    """As torch allows: a group with no parameters, then add_param_group, then steps."""
    opt = OPTIMIZERS[kind]([{"params": []}])
    opt.step()  # nothing to do
    net = _net()
    opt.add_param_group({"params": list(net.parameters())})
    x, y = _data()
    _train_step(net, opt, x, y)
    assert opt.steps == 2 and all(p in opt.state for p in net.parameters())


@pytest.mark.parametrize("kind", ["lion-telemetry", "enim-lni-telemetry"])
def test_telemetry_with_empty_tensors(kind):
    """A group whose tensors are all empty (and one tensor empty in another group)."""
    empty = [torch.nn.Parameter(torch.zeros(0)), torch.nn.Parameter(torch.zeros(0, 3))]
    full = [torch.nn.Parameter(torch.ones(5)), torch.nn.Parameter(torch.zeros(2, 0))]
    opt = OPTIMIZERS[kind]([{"params": empty}, {"params": full}])
    for p in empty + full:
        p.grad = torch.ones_like(p)
    opt.step()
    t = opt.telemetry
    assert t["n"] == 5 and t["zero_grad"] == 0 and [pt["n"] for pt in t["per_tensor"]] == [0, 0, 5, 0]
    only_empty = OPTIMIZERS[kind]([{"params": [torch.nn.Parameter(torch.zeros(0))]}])
    only_empty.param_groups[0]["params"][0].grad = torch.zeros(0)
    only_empty.step()
    assert only_empty.telemetry["n"] == 0 and math.isnan(only_empty.telemetry["sign_angle"])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_foreach_true_false_and_lion_pytorch_agree_in_every_dtype(dtype):
    """Ours with foreach=True, foreach=False and the default, and lion-pytorch's Lion, bit for
    bit over 6 steps with weight decay (lion-pytorch's foreach variant uses lerp_ and may differ)."""
    x, y = _data(dtype=dtype)
    nets = [_net(dtype=dtype) for _ in range(4)]
    opts = [Lion(nets[0].parameters(), lr=1e-2, weight_decay=0.3, foreach=True),
            Lion(nets[1].parameters(), lr=1e-2, weight_decay=0.3, foreach=False),
            Lion(nets[2].parameters(), lr=1e-2, weight_decay=0.3),
            lion_pytorch.Lion(nets[3].parameters(), lr=1e-2, weight_decay=0.3)]
    for _ in range(6):
        grads = None
        for net, opt in zip(nets, opts):
            opt.zero_grad()
            if grads is None:  # the same gradients for all: low precision makes forward passes drift
                torch.nn.functional.cross_entropy(net(x).float(), y).backward()
                grads = [p.grad.clone() for p in net.parameters()]
            else:
                for p, g in zip(net.parameters(), grads):
                    p.grad = g.clone()
            opt.step()
    for ps in zip(*(n.parameters() for n in nets)):
        assert all(torch.equal(ps[0], q) for q in ps[1:])
    moms = [[o.state[p]["exp_avg"] for p in n.parameters()] for n, o in zip(nets, opts)]
    for ms in zip(*moms):
        assert all(torch.equal(ms[0], m) for m in ms[1:])


@pytest.mark.parametrize("make", [Lion, lambda ps: Enim(ps, angle=0.5)])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.complex64, torch.bool])
def test_non_floating_and_complex_parameters_are_refused(make, dtype):
    bad = torch.zeros(3, dtype=dtype)
    with pytest.raises(TypeError, match=f"parameter 1 of shape \\(3,\\) is {dtype}"):
        make([torch.nn.Parameter(torch.zeros(2)), bad])
    opt = make([("v", torch.nn.Parameter(torch.zeros(2)))])
    with pytest.raises(TypeError, match="'w' of shape"):
        opt.add_param_group({"params": [("w", bad)]})
    assert len(opt.param_groups) == 1  # nothing added


# --- state dicts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_state_dict_hooks_see_the_whole_state_dict(kind):
    net = _net()
    opt = OPTIMIZERS[kind](net.parameters())
    _train_step(net, opt, *_data())
    seen = {}

    def post(optimizer, sd):
        seen["post"] = sorted(sd)
        sd = dict(sd)
        sd["lni_geometry"] = {**sd["lni_geometry"], "steps": 41}  # a hook may change it
        return sd

    def pre(optimizer, sd):
        seen["pre"] = sorted(sd)

    opt.register_state_dict_post_hook(post)
    sd = opt.state_dict()
    assert seen["post"] == ["lni_geometry", "param_groups", "state"] and sd["lni_geometry"]["steps"] == 41
    other = OPTIMIZERS[kind](_net().parameters())
    other.register_load_state_dict_pre_hook(pre)
    other.load_state_dict(sd)
    assert seen["pre"] == ["lni_geometry", "param_groups", "state"] and other.steps == 41


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_state_dict_through_torch_load_weights_only(kind):
    """The state dict holds only what ``torch.load(weights_only=True)`` admits; the resumed
    run continues with the uninterrupted run's numbers."""
    x, y = _data()
    nets = [_net(), _net()]
    opt = OPTIMIZERS[kind](nets[0].parameters())
    for _ in range(3):
        _train_step(nets[0], opt, x, y)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    nets[1].load_state_dict(nets[0].state_dict())
    opt2 = OPTIMIZERS[kind](nets[1].parameters())
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    for _ in range(3):
        _train_step(nets[0], opt, x, y)
        _train_step(nets[1], opt2, x, y)
    assert _same(_snapshot(nets[0], opt), _snapshot(nets[1], opt2))


@pytest.mark.parametrize("kind", ["lion", "enim"])
def test_float64_state_loads_into_float32_parameters(kind):
    x, y = _data()
    net64 = _net(dtype=torch.float64)
    opt64 = OPTIMIZERS[kind](net64.parameters())
    _train_step(net64, opt64, x.double(), y)
    net32 = _net()
    opt32 = OPTIMIZERS[kind](net32.parameters())
    opt32.load_state_dict(opt64.state_dict())
    for p, q in zip(net32.parameters(), net64.parameters()):
        m = opt32.state[p]["exp_avg"]
        assert m.dtype == torch.float32 and torch.equal(m, opt64.state[q]["exp_avg"].float())
    _train_step(net32, opt32, x, y)
    assert opt32.steps == 2


def test_lion_state_warm_starts_enim_and_back():
    """Lion's momenta and steps carry into Enim (whose seed and generator stay its own) and
    Enim's into Lion; a second Enim from the same Lion state draws the same numbers."""
    x, y = _data()
    net = _net()
    lion = Lion(net.parameters(), lr=1e-3)
    for _ in range(3):
        _train_step(net, lion, x, y)
    runs = []
    for _ in range(2):
        n2 = _net()
        n2.load_state_dict(net.state_dict())
        enim = Enim(n2.parameters(), lr=1e-3, angle="lion", seed=8)
        enim.load_state_dict(copy.deepcopy(lion.state_dict()))  # as from a file: no tensor shared with lion
        assert enim.steps == 3 and enim.seed == 8
        for p, q in zip(n2.parameters(), net.parameters()):
            assert torch.equal(enim.state[p]["exp_avg"], lion.state[q]["exp_avg"])
        _train_step(n2, enim, x, y)
        runs.append((n2, enim))
    assert _same(_snapshot(*runs[0]), _snapshot(*runs[1]))
    back = Lion(runs[0][0].parameters(), lr=1e-3)
    back.load_state_dict(runs[0][1].state_dict())
    assert back.steps == 4
    _train_step(runs[0][0], back, x, y)
    assert back.steps == 5


def test_bad_state_dicts_are_refused_before_anything_loads():
    net = _net()
    opt = Lion(net.parameters())
    _train_step(net, opt, *_data())
    before = _snapshot(net, opt)
    sd = opt.state_dict()
    for key, bad, match in (("lni_geometry", {"steps": -1}, "steps"),
                            ("lni_geometry", {"steps": 2, "seed": "x"}, "seed")):
        broken = dict(sd)
        broken[key] = bad
        target = Enim(net.parameters(), angle=0.5) if "seed" in bad else opt
        with pytest.raises(ValueError, match=match):
            target.load_state_dict(broken)
    broken = copy.deepcopy(sd)
    broken["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict(broken)
    assert _same(before, _snapshot(net, opt)) and opt.param_groups[0]["lr"] == 1e-4


# --- telemetry: history, callback, names -------------------------------------------------------------


def test_history_bounded_or_off_and_a_callback_per_step():
    x, y = _data()
    seen = []
    nets = [_net(), _net()]
    kept = Lion(nets[0].parameters(), telemetry=True, history=3, callback=seen.append)
    off = Lion(nets[1].parameters(), telemetry=True, history=False)
    for opt, net in zip((kept, off), nets):
        for _ in range(5):
            _train_step(net, opt, x, y)
    assert [r["step"] for r in kept.history] == [3, 4, 5] and len(off.history) == 0
    assert [r["step"] for r in seen] == [1, 2, 3, 4, 5] and seen[-1] is kept.telemetry
    assert off.telemetry["step"] == 5
    for bad in (-1, 2.5, "all"):
        with pytest.raises(ValueError, match="history must be"):
            Lion(_net().parameters(), history=bad)
    with pytest.raises(TypeError, match="callback"):
        Lion(_net().parameters(), callback=3)


def test_telemetry_names_tensors_given_with_names():
    net = _net()
    opt = Lion(net.named_parameters(), telemetry=True)
    _train_step(net, opt, *_data())
    names = [t["name"] for t in opt.telemetry["per_tensor"]]
    assert names == [name for name, _ in net.named_parameters()]
    unnamed = Lion(net.parameters(), telemetry=True)
    _train_step(net, unnamed, *_data())
    assert all(t["name"] is None for t in unnamed.telemetry["per_tensor"])


def test_seed_none_leaves_torchs_global_random_state_alone():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    a = Enim([torch.nn.Parameter(torch.zeros(4))], angle=0.5)
    b = Enim([torch.nn.Parameter(torch.zeros(4))], angle=0.5)
    assert torch.equal(torch.rand(3), want)
    assert a.seed != b.seed and 0 <= a.seed < 2**62


def test_step_hooks_run():
    net = _net()
    opt = Enim(net.parameters(), angle=0.3, seed=0)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o.steps)))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o.steps)))
    _train_step(net, opt, *_data())
    assert calls == [("pre", 0), ("post", 1)]


# --- non-finite gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
@pytest.mark.parametrize("where", ["grad nan", "grad inf", "grad -inf", "momentum nan"])
@pytest.mark.parametrize("foreach", [None, False])
def test_a_non_finite_c_is_refused_and_nothing_changes(kind, where, foreach):
    """One bad coordinate in one tensor: NonFiniteError naming the tensor (by name) and what
    was found; weights, momenta, steps, the generator unchanged; the next clean step works."""
    x, y = _data()
    net = _net()
    opt = OPTIMIZERS[kind](net.named_parameters(), foreach=foreach)
    for _ in range(2):
        _train_step(net, opt, x, y)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    name, p = list(net.named_parameters())[4]
    bad = {"grad nan": math.nan, "grad inf": math.inf, "grad -inf": -math.inf, "momentum nan": math.nan}[where]
    if where.startswith("grad"):
        p.grad.view(-1)[7] = bad
    else:
        opt.state[p]["exp_avg"].view(-1)[7] = bad
    before = _snapshot(net, opt)
    with pytest.raises(lgt.NonFiniteError, match=f"'{name}'") as info:
        opt.step()
    assert _same(before, _snapshot(net, opt))
    counts = info.value.counts[name]
    key = ("grad_" if where.startswith("grad") else "exp_avg_") + ("nan" if math.isnan(bad) else "inf")
    assert counts[key] == 1 and sum(counts.values()) == 1 and list(info.value.counts) == [name]
    if opt.telemetry_enabled:
        assert opt.telemetry["refused"] and opt.telemetry["nonfinite"] == 1
    if where == "momentum nan":
        opt.state[p]["exp_avg"].view(-1)[7] = 0.0
    p.grad.view(-1)[7] = 0.0
    opt.step()
    assert opt.steps == 3 and all(torch.isfinite(q).all() for q in net.parameters())


def test_a_refused_first_step_creates_no_state():
    net = _net()
    opt = Enim(net.parameters(), angle="lion", seed=2)
    x, y = _data()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    next(net.parameters()).grad[0] = math.inf
    with pytest.raises(lgt.NonFiniteError):
        opt.step()
    assert len(opt.state) == 0 and opt.steps == 0


@pytest.mark.parametrize("kind", ["lion", "enim"])
def test_grad_scaler_skips_non_finite_steps_before_the_optimizer(kind):
    """``torch.amp.GradScaler`` unscales, finds the inf and skips ``opt.step()``: no error,
    nothing changed; a clean step then goes through."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    x, y = _data()
    net = _net()
    opt = OPTIMIZERS[kind](net.parameters())
    opt.zero_grad()
    scaler.scale(torch.nn.functional.cross_entropy(net(x), y)).backward()
    next(net.parameters()).grad.view(-1)[0] = math.inf
    before = _snapshot(net, opt)
    scaler.step(opt)
    scaler.update()
    assert _same(before, _snapshot(net, opt)) and scaler.get_scale() < 2.0**8
    opt.zero_grad()
    scaler.scale(torch.nn.functional.cross_entropy(net(x), y)).backward()
    scaler.step(opt)
    assert opt.steps == 1
