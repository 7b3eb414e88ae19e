"""Figure 7: the paper's open hypothesis as a paired test (Lion, Enim at Lion's angle, normalised SGD).

The decision logic on arrays whose answer is known (and a planted change that flips
it), the pairing of the three optimizers by seed, the recorded quantities against
direct computation, and a tiny end-to-end run of ``lni-geometry figure7``.
"""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import lni_geometry as lg  # noqa: E402
from lni_geometry import cli  # noqa: E402
from lni_geometry.experiments import RunConfig, engine, figures, train  # noqa: E402
from lni_geometry.experiments.verdicts import (  # noqa: E402
    checks,
    growth_slopes,
    paired_slopes,
    report,
    sign_effect,
)
from lni_geometry.plot import written_by_package  # noqa: E402

#: A run of a fraction of a second.
TINY = dict(width=4, steps=6, eval_every=3, batch_size=64)
LRS = np.array([1e-4, 1e-3, 1e-2, 1e-1])


# --- the decision on known arrays ----------------------------------------------------------


def test_growth_slopes_are_least_squares_slopes_per_decade():
    x = np.log10(LRS)
    y = np.stack([3.0 * x + 1.0, -0.5 * x, np.full(4, 7.0)], axis=1)  # [lr, seed]
    np.testing.assert_allclose(growth_slopes(y, LRS), [3.0, -0.5, 0.0], atol=1e-12)
    # batched over leading axes, and nan entries left out
    y2 = y.copy()
    y2[0, 0] = np.nan
    out = growth_slopes(np.stack([y, y2]), LRS)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[1], [3.0, -0.5, 0.0], atol=1e-12)
    assert np.isnan(growth_slopes(np.array([[1.0], [np.nan]]), [1e-3, 1e-2])[0])


def test_paired_slopes_use_the_learning_rates_both_have():
    x = np.log10(LRS)
    a = np.stack([2 * x, 2 * x], axis=1)
    b = np.stack([x ** 2, x ** 2], axis=1)
    b[3, 1] = np.nan  # seed 1: both slopes over the first three lrs
    sa, sb = paired_slopes(a, b, LRS)
    np.testing.assert_allclose(sa - sb, growth_slopes(a - b, LRS), atol=1e-12)
    np.testing.assert_allclose(sb[1], growth_slopes(b[:3, 1:], LRS[:3])[0])


SIGN = np.array([4.1, 3.8, 4.4, 4.0, 3.9])   # Lion's growth per seed


@pytest.mark.parametrize("ref, decision", [
    (np.array([0.1, -0.2, 0.15, 0.0, -0.05]), "supported"),             # only with the sign
    (np.array([2.0, 1.9, 2.3, 2.1, 1.8]), "partly supported"),           # both, more with the sign
    (SIGN + np.array([0.05, -0.05, 0.02, -0.03, 0.01]), "not supported"),  # as much without it
    (SIGN + 2.0, "not supported"),                                       # more without it
    (np.array([0.5, -3.0, 4.0, 2.5, -1.5]) + SIGN - 2.0, "undecided"),   # neither resolved
])
def test_sign_effect_decisions(ref, decision):
    e = sign_effect(SIGN, ref)
    assert e["decision"] == decision
    d = SIGN - ref
    assert e["k"] == 5 and e["D"] == pytest.approx(d.mean())
    assert e["se_D"] == pytest.approx(d.std(ddof=1) / math.sqrt(5))
    assert e["detectable"] == pytest.approx(2 * e["se_D"])
    assert e["detectable_t"] == pytest.approx(2.7764451 * e["se_D"], rel=1e-6)  # t(0.975, 4 dof)


def test_a_planted_sign_effect_flips_the_decision():
    """The reference grows exactly as Lion does: not supported; plant +1 deg/decade more growth
    under Lion (far above its 2 SE) and the decision turns to a sign effect."""
    rng = np.random.default_rng(7)
    ref = SIGN + rng.normal(0, 0.05, 5)
    assert sign_effect(SIGN, ref)["decision"] == "not supported"
    planted = sign_effect(SIGN + 1.0, ref)
    assert planted["decision"] == "partly supported" and planted["D"] == pytest.approx(1.0, abs=0.1)
    # and with a reference that does not grow, the same Lion is "supported"
    assert sign_effect(SIGN, ref - SIGN.mean())["decision"] == "supported"


def test_sign_effect_without_growth_or_seeds_is_undecided():
    assert sign_effect([0.1, -0.1, 0.05], [0.0, 0.0, 0.0])["decision"] == "undecided"  # Lion does not grow
    one = sign_effect([4.0], [0.0])
    assert one["decision"] == "undecided" and one["k"] == 1 and math.isnan(one["se_D"])
    # a seed with a nan slope is left out of the pairing
    e = sign_effect([4.0, np.nan, 4.2, 3.9], [0.0, 1.0, 0.1, -0.1])
    assert e["k"] == 3 and e["d"] == pytest.approx([4.0, 4.1, 4.0])
    with pytest.raises(ValueError, match="pair seed by seed"):
        sign_effect([1.0, 2.0], [1.0])


def _synthetic(lion_growth, enim_growth, seeds=5):
    """Figure 7 arrays [arm, lr, seed] with angles growing by set degrees per decade,
    through a budget with T = 1 (so the excess is all in H), and a seed-wise offset."""
    rng = np.random.default_rng(0)
    x = np.log10(LRS)[:, None]
    offs = rng.normal(0, 1.0, seeds)[None, :]
    deg = {"lion": 50 + lion_growth * (x + 4) + offs + rng.normal(0, 0.2, (4, seeds)),
           "enim_lion": 45 + enim_growth * (x + 4) + offs + rng.normal(0, 0.2, (4, seeds)),
           "nsgd": 45 + offs + rng.normal(0, 0.2, (4, seeds))}
    ang = np.radians(np.stack([deg[a] for a in ("lion", "enim_lion", "nsgd")]))
    H = np.cos(ang) / math.sqrt(2 / math.pi)
    arr = {"lrs": LRS, "med_angle": ang, "med_angle_tails": np.full_like(ang, np.arccos(math.sqrt(2 / math.pi))),
           "med_angle_het": ang, "mean_log_T": np.zeros_like(ang), "mean_log_H": np.log(H),
           "med_grad_ratio": np.cos(ang), "test_acc": np.full_like(ang, 0.9), "zero_frac": np.zeros_like(ang),
           "same_start": np.ones((4, seeds), dtype=bool)}
    spec = {"arms": ["lion", "enim_lion", "nsgd"], "seeds": list(range(seeds))}
    return arr, {"n": 1000, "iso_mean": 0.647, "iso_std": 0.01}, spec


def test_figure7_checks_on_known_arrays_and_a_planted_change():
    arr, summary, spec = _synthetic(lion_growth=5.0, enim_growth=0.0)
    out = checks(7, arr, summary, spec)
    assert out[0].startswith("Lion's sign angle grows with lr (slope > 2 SE): reproduced")
    assert ": supported - only under Lion" in out[1]
    assert "carried by H (scales across tensors)" in out[1]   # T = 1 throughout: the excess is all H
    # plant the same growth under Enim: the sign no longer explains it
    arr2, _, _ = _synthetic(lion_growth=5.0, enim_growth=5.0)
    out2 = checks(7, arr2, summary, spec)
    assert ": not supported - as much without the sign" in out2[1]
    lines, verdict = report(7, arr2, summary, spec)
    assert len(lines) == 1 + len(LRS) + 3
    assert any("pairing: the three optimizers start from identical weights in 20 of 20" in v for v in verdict)


# --- the recorded quantities ---------------------------------------------------------------


def test_l1_ratio_of_a_known_gradient():
    """||g||_1 / (sqrt(n) ||g||_2) over every parameter, zeros and missing gradients counted in n."""
    grads = [torch.tensor([3.0, -4.0]), None, torch.tensor([[0.0, 0.0]])]
    assert engine._l1_ratio(grads, 6) == pytest.approx(7 / (math.sqrt(6) * 5), rel=1e-15)
    assert math.isnan(engine._l1_ratio([torch.zeros(3)], 3))
    g = np.random.default_rng(1).standard_normal(10_000)
    assert engine._l1_ratio([torch.tensor(g)], g.size) == pytest.approx(math.cos(lg.bisector_angle(g)), rel=1e-12)


def test_grad_l1_ratio_of_the_first_step_against_direct_computation():
    """The engine's per-step ratio at step 0 equals the ratio of the gradient of the same
    network on the same first minibatch, computed here by hand."""
    import torch.nn.functional as F

    from lni_geometry.experiments.networks import build_network
    from lni_geometry.experiments.tasks import load_task

    cfg = RunConfig(optimizer="enim", angle="lion", lr=1e-2, seed=3, **TINY)
    r = train(cfg)
    task = load_task("digits")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_network(cfg.network, cfg.width, task.classes, task.x_train.shape[1:])
    net.train()
    idx = np.random.default_rng([cfg.seed, 1, 0]).permutation(len(task.x_train))[:cfg.batch_size]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the engine trains: the same float32 sums
    try:
        loss = F.cross_entropy(net(torch.from_numpy(task.x_train[idx])), torch.from_numpy(task.y_train[idx]))
        loss.backward()
    finally:
        torch.set_num_threads(threads)
    g = np.concatenate([p.grad.double().reshape(-1).numpy() for p in net.parameters()])
    want = np.abs(g).sum() / (math.sqrt(g.size) * np.sqrt((g * g).sum()))
    assert r.steps["grad_l1_ratio"][0] == pytest.approx(want, rel=1e-9)
    assert np.isfinite(r.steps["grad_l1_ratio"]).all()


def test_enims_telemetry_is_the_sign_angle_and_budget_of_its_own_c():
    """Enim's ``sign_angle``, ``budget_T``, ``budget_H`` are those Lion's sign would give on
    Enim's c = beta1 m + (1 - beta1) g (recomputed from the state), not its applied angle."""
    gen = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(50, generator=gen)), torch.nn.Parameter(3 * torch.randn(20, generator=gen))]
    opt = lg_torch_enim(ps)
    for step in range(3):
        for p in ps:
            p.grad = torch.randn(p.shape, generator=gen) * (1 + step)
        m = [opt.state[p]["exp_avg"].clone() if opt.state[p] else torch.zeros_like(p) for p in ps]
        # float32 state, c formed in float64 (as the telemetry forms it)
        c = [(0.9 * mm.double() + (1 - 0.9) * p.grad.double()).numpy() for mm, p in zip(m, ps)]
        opt.step()
        t = opt.telemetry
        b = lg.angle_budget([x.copy() for x in c])
        assert t["sign_angle"] == pytest.approx(lg.sign_angle(np.concatenate(c)), rel=1e-9)
        assert (t["budget_T"], t["budget_H"]) == pytest.approx((b.T, b.H), rel=1e-9)
        assert t["angle"] == pytest.approx(t["sign_angle"])  # angle="lion": the applied turn is that angle


def lg_torch_enim(params):
    from lni_geometry.torch import Enim

    return Enim(params, lr=1e-2, angle="lion", seed=0, telemetry=True)


# --- the pairing -----------------------------------------------------------------------------


def test_the_three_optimizers_of_a_seed_start_alike_and_see_the_same_batches(monkeypatch):
    """For one seed, Lion, Enim at Lion's angle and normalised SGD start from identical
    weights and get identical minibatches in the same order (recorded by a hook on the
    network's forward pass in training mode); another seed starts elsewhere."""
    seen = {}
    build = engine.build_network

    def recording_build(*args, **kwargs):
        net = build(*args, **kwargs)
        rec = {"start": {k: v.detach().clone() for k, v in net.state_dict().items()}, "batches": []}
        seen[len(seen)] = rec

        def hook(module, inputs):
            if module.training:
                rec["batches"].append(inputs[0].detach().clone())

        net.register_forward_pre_hook(hook)
        return net

    monkeypatch.setattr(engine, "build_network", recording_build)
    spec = figures.figure_spec(7, **dict(TINY, lrs=[1e-2], seeds=[4]))
    results = [train(figures._fig7_config(spec, arm, 1e-2, 4)) for arm in spec["arms"]]
    assert [r.config.optimizer for r in results] == ["lion", "enim", "enim"]
    assert [r.config.angle for r in results] == [None, "lion", 0.0]
    first = seen[0]
    assert len(first["batches"]) == TINY["steps"]
    for other in (seen[1], seen[2]):
        assert first["start"].keys() == other["start"].keys()
        for k in first["start"]:
            assert torch.equal(first["start"][k], other["start"][k]), k
        assert len(other["batches"]) == len(first["batches"])
        for a, b in zip(first["batches"], other["batches"]):
            assert torch.equal(a, b)
    # the batch indices themselves: the seed's permutation, the same for every optimizer
    task_x = torch.from_numpy(engine.load_task("digits").x_train)
    idx = np.random.default_rng([4, 1, 0]).permutation(len(task_x))[:TINY["batch_size"]]
    assert torch.equal(first["batches"][0], task_x[idx])
    assert len({r.meta["init_digest"] for r in results}) == 1
    # another seed: other weights and other batches
    r5 = train(figures._fig7_config(spec, "lion", 1e-2, 5))
    assert r5.meta["init_digest"] != results[0].meta["init_digest"]
    assert not torch.equal(seen[3]["batches"][0], first["batches"][0])


# --- the command, end to end -------------------------------------------------------------------


def test_figure7_command_end_to_end(tmp_path, capsys, monkeypatch):
    """``lni-geometry figure7`` on a tiny preset (2 lrs, 2 seeds, 6 steps): data with its
    metadata, the figure, the printed checks; a rerun only redraws."""
    monkeypatch.setitem(figures.FIG7_SCALES, "small", {
        "base": dict(figures.BASE, **TINY), "lrs": (1e-2, 1e-1), "seeds": 2,
        "full_base": dict(figures.BASE, **TINY), "full_lrs": (1e-2, 1e-1), "full_seeds": 2})
    monkeypatch.chdir(tmp_path)
    args = ["figure7", "--out", "f7.png", "--data", "f7.npz", "--cache", "cache", "--quiet", "--workers", "1"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "check: L1 hypothesis as a sign effect" in out and "shown: pairing" in out
    assert written_by_package(str(tmp_path / "f7.png"))
    arr, meta = figures.load_figure_data(str(tmp_path / "f7.npz"))
    assert meta["spec"]["figure"] == 7 and meta["spec"]["arms"] == ["lion", "enim_lion", "nsgd"]
    assert meta["spec"]["seeds"] == [0, 1] and meta["spec"]["scale"] == "small"
    assert meta["summary"]["checks"] and "wall_time_s" in meta and meta["command"].startswith("lni-geometry figure7")
    assert arr["med_angle"].shape == (3, 2, 2) and arr["sign_angle"].shape == (3, 2, 2, TINY["steps"])
    assert arr["same_start"].all()
    # the stored summaries are those of the per-step records
    half = arr["sign_angle"][..., TINY["steps"] // 2:].astype(np.float64)
    np.testing.assert_allclose(arr["med_angle"], np.median(half, axis=-1), rtol=1e-6)
    np.testing.assert_allclose(arr["med_grad_ratio"],
                               np.median(arr["grad_l1_ratio"][..., TINY["steps"] // 2:], axis=-1), rtol=1e-6)
    # the budget's means add up to the log of the L1 ratio of c (per step cos = sqrt(2/pi) T H)
    run = train(figures._fig7_config(meta["spec"], "enim_lion", 1e-1, 1), cache=str(tmp_path / "cache"))
    late = slice(TINY["steps"] // 2, None)
    np.testing.assert_allclose(arr["mean_log_T"][1, 1, 1] + arr["mean_log_H"][1, 1, 1],
                               np.mean(np.log(np.cos(run.steps["sign_angle"][late]) / math.sqrt(2 / math.pi))),
                               rtol=1e-9)
    json.dumps(meta)
    # the rerun trains nothing
    monkeypatch.setattr(figures, "build_figure", lambda *a, **k: pytest.fail("a rerun must not train"))
    assert cli.main(args) == 0
    assert "redrew it from" in capsys.readouterr().out


def test_figure7_spec_and_its_presets():
    s = figures.figure_spec(7)
    assert s["lrs"] == list(figures.LRS) and s["seeds"] == [0, 1, 2, 3, 4]
    assert s["arms"] == ["lion", "enim_lion", "nsgd"] and s["base"]["steps"] == 400
    f = figures.figure_spec(7, full=True, seed=10)
    assert f["seeds"] == list(range(10, 18)) and len(f["lrs"]) == 11
    with pytest.raises(ValueError, match="no scale 'huge'"):
        figures.figure_spec(7, scale="huge")
    with pytest.raises(ValueError, match="no setting 'arms'"):
        figures.figure_spec(7, arms=["lion"])
    # the runs are those of Figures 2 (Lion), 3 (Enim angle='lion') and 5 (angle 0): shared in the cache
    lion, enim, nsgd = (figures._fig7_config(s, a, 1e-3, 0) for a in s["arms"])
    s2 = figures.figure_spec(2)
    assert lion == figures._lion(s2, 1e-3, 0)
    assert enim == figures._enim(s2, 1e-3, 0, "lion") and nsgd == figures._enim(s2, 1e-3, 0, math.radians(0.0))
