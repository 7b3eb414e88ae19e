"""The training-experiment engine (Figures 2 to 6): configurations, cache, resume, figures, CLI."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lni_geometry import cli  # noqa: E402
from lni_geometry.plot import written_by_package  # noqa: E402
from lni_geometry.experiments import (  # noqa: E402
    STEP_FIELDS,
    RunConfig,
    RunResult,
    StopTraining,
    config,
    figures,
    result_path,
    run_many,
    train,
)

#: A run that takes a fraction of a second: 4 channels, 8 steps.
TINY = dict(width=4, steps=8, eval_every=4, batch_size=64)


def same(a, b):
    """Every recorded number of two results equal (NaN equal to NaN)."""
    for part in ("steps", "evals", "final"):
        da, db = getattr(a, part), getattr(b, part)
        assert da.keys() == db.keys()
        for k in da:
            np.testing.assert_array_equal(da[k], db[k], err_msg=f"{part}/{k}")


# --- configurations --------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), r"lr must be a finite number in \(0, inf\), got 0\.0$"),
    (dict(lr=float("nan")), r"lr must be a finite number in \(0, inf\), got nan$"),
    (dict(betas=(1.0, 0.99)), r"beta1 must be a finite number in \[0, 1\), got 1\.0$"),
    (dict(betas=(0.9,)), "betas must be a pair"),
    (dict(weight_decay=-1.0), r"weight_decay must be a finite number in \[0, inf\), got -1\.0$"),
    (dict(optimizer="adam"), "optimizer must be one of"),
    (dict(optimizer="enim"), "Enim needs an angle"),
    (dict(optimizer="enim", angle=2.0), r"angle must be a finite number in \[0, pi/2\], 'lion' or 'lni', got 2\.0$"),
    (dict(optimizer="enim", angle="random"), r"angle must be a finite number in \[0, pi/2\], 'lion' or 'lni', got 'random'$"),
    (dict(angle=0.3), "Lion takes angle=None"),
    (dict(steps=0), r"steps must be an integer in \[1, inf\), got 0$"),
    (dict(network="resnet50"), "network must be one of"),
    (dict(task="imagenet"), "task must be one of"),
    (dict(data_dir="/tmp"), r"data_dir is for the CIFAR tasks .* task 'digits' takes None, got '/tmp'$"),
    (dict(augment=True), "augment .* is for the CIFAR tasks"),
    (dict(schedule="linear"), r"schedule must be one of \('constant', 'cosine'\), got 'linear'$"),
    (dict(device="tpu"), "device must be one of"),
])
def test_bad_configurations_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match=r"seed must be an integer in \[0, inf\), got float 1\.5$"):
        RunConfig(seed=1.5)
    with pytest.raises(TypeError, match=r"lr must be a real number in \(0, inf\), got str '0\.1'$"):
        RunConfig(lr="0.1")
    with pytest.raises(TypeError, match="config must be a RunConfig"):
        train({"lr": 0.1})


def test_batch_larger_than_the_data_is_an_error():
    with pytest.raises(ValueError, match="batch_size 5000 exceeds the 1437 training examples"):
        train(RunConfig(batch_size=5000, **{k: v for k, v in TINY.items() if k != "batch_size"}))


def test_digest_is_a_function_of_config_and_versions(monkeypatch):
    a = RunConfig(lr=1e-3, **TINY)
    assert a.digest() == RunConfig(lr=1e-3, **TINY).digest()
    assert a.digest() == RunConfig(lr=0.001, betas=[0.9, 0.99], **TINY).digest()
    others = [RunConfig(lr=2e-3, **TINY), RunConfig(lr=1e-3, seed=1, **TINY),
              RunConfig(lr=1e-3, weight_decay=0.1, **TINY), RunConfig(optimizer="enim", angle=0.5, lr=1e-3, **TINY),
              RunConfig(lr=1e-3, **dict(TINY, steps=9))]
    assert len({a.digest()} | {o.digest() for o in others}) == 1 + len(others)
    key, d0 = a.key(), a.digest()
    assert key["engine"] == config.ENGINE_VERSION and "package" in key
    monkeypatch.setattr(config, "ENGINE_VERSION", "test-changed")
    assert a.digest() != d0
    monkeypatch.setattr("lni_geometry.__version__", "99.0.0")
    assert a.key()["package"] == "99.0.0"


def test_config_roundtrip():
    c = RunConfig(optimizer="enim", angle="lion", lr=0.01, **TINY)
    assert RunConfig.from_dict(json.loads(json.dumps(c.as_dict()))) == c


# --- the engine and the cache --------------------------------------------------------


def test_run_records_every_field():
    r = train(RunConfig(lr=1e-2, **TINY))
    assert set(r.steps) == set(STEP_FIELDS)
    for k, v in r.steps.items():
        assert v.shape == (8,) and np.isfinite(v).all(), k
    assert list(r.evals["step"]) == [4, 8]
    assert 0 <= r.final_test_acc <= 1
    # the telemetry's angle is Lion's sign angle; the budget identity holds per step
    np.testing.assert_array_equal(r.steps["angle"], r.steps["sign_angle"])
    np.testing.assert_allclose(np.cos(r.steps["sign_angle"]),
                               math.sqrt(2 / math.pi) * r.steps["budget_T"] * r.steps["budget_H"], rtol=1e-9)
    assert r.meta["n"] == sum(p.numel() for p in _net().parameters())
    assert r.final["norm_biases"].size == sum(r.meta["norm_bias_sizes"]) > 0


def _net():
    from lni_geometry.experiments.networks import build_network

    return build_network("cnn_bn", 4)


def test_cache_serves_identical_numbers_and_not_other_configs(tmp_path):
    c = RunConfig(lr=1e-2, **TINY)
    first = train(c, cache=tmp_path)
    assert not first.meta["cached"] and os.path.exists(result_path(tmp_path, c))
    again = train(c, cache=tmp_path)
    assert again.meta["cached"]
    same(first, again)
    other = train(RunConfig(lr=2e-2, **TINY), cache=tmp_path)
    assert not other.meta["cached"]
    assert not np.array_equal(other.steps["loss"][1:], first.steps["loss"][1:])
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".npz")]) == 2


def test_a_file_of_another_run_is_never_served(tmp_path):
    c, d = RunConfig(lr=1e-2, **TINY), RunConfig(lr=3e-2, **TINY)
    train(d, cache=tmp_path)
    os.replace(result_path(tmp_path, d), result_path(tmp_path, c))  # d's numbers under c's name
    r = train(c, cache=tmp_path)
    assert not r.meta["cached"] and r.config == c
    with open(result_path(tmp_path, c), "wb") as fh:   # a corrupt file: recomputed
        fh.write(b"not an npz")
    r2 = train(c, cache=tmp_path)
    assert not r2.meta["cached"]
    same(r, r2)


@pytest.mark.parametrize("config", [
    RunConfig(lr=3e-2, weight_decay=0.5, **dict(TINY, steps=12)),
    RunConfig(optimizer="enim", angle=0.9, lr=3e-2, **dict(TINY, steps=12)),
    RunConfig(optimizer="enim", angle="lni", lr=3e-2, **dict(TINY, steps=12)),
], ids=["lion", "enim", "enim-lni"])
def test_interrupted_run_resumes_to_the_same_numbers(tmp_path, config):
    whole = train(config)
    with pytest.raises(StopTraining):
        train(config, cache=tmp_path, stop_after=5)
    ckpt = result_path(tmp_path, config)[: -len(".npz")] + ".ckpt.pt"
    assert os.path.exists(ckpt) and not os.path.exists(result_path(tmp_path, config))
    resumed = train(config, cache=tmp_path)
    assert not os.path.exists(ckpt)
    same(whole, resumed)


def test_unreadable_checkpoint_starts_over(tmp_path):
    config = RunConfig(lr=3e-2, **TINY)
    with pytest.raises(StopTraining):
        train(config, cache=tmp_path, stop_after=3)
    ckpt = result_path(tmp_path, config)[: -len(".npz")] + ".ckpt.pt"
    with open(ckpt, "wb") as fh:
        fh.write(b"garbage")
    same(train(config), train(config, cache=tmp_path))
    assert not os.path.exists(ckpt)


def test_save_load_roundtrip(tmp_path):
    r = train(RunConfig(optimizer="enim", angle="lion", lr=1e-2, **TINY))
    path = str(tmp_path / "r.npz")
    r.save(path)
    back = RunResult.load(path)
    same(r, back)
    assert back.config == r.config and "RunResult(" in repr(back)


def test_run_many_processes_match_in_process(tmp_path):
    configs = [RunConfig(lr=lr, seed=s, **TINY) for lr in (1e-2, 1e-1) for s in (0, 1)]
    here = [train(c) for c in configs]
    got = run_many(configs + configs[:1], tmp_path / "c", workers=2, progress=False)
    assert len(got) == 5
    for a, b in zip(here + here[:1], got):
        same(a, b)
    again = run_many(configs, tmp_path / "c", workers=2, progress=False)
    assert all(r.meta["cached"] for r in again)


def test_run_many_on_dask_matches_in_process(tmp_path):
    distributed = pytest.importorskip("distributed")
    configs = [RunConfig(lr=1e-2, seed=s, **TINY) for s in (0, 1)]
    here = [train(c) for c in configs]
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        got = run_many(configs, tmp_path, client=client, progress=False)
    for a, b in zip(here, got):
        same(a, b)


def test_importing_does_not_import_torch():
    code = "import sys, lni_geometry, lni_geometry.experiments; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- figures -------------------------------------------------------------------------

SMALL = dict(width=4, steps=10, eval_every=5, seeds=[0, 1])


@pytest.fixture(scope="module")
def fig_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("figcache"))


@pytest.mark.parametrize("number, extra", [
    (2, dict(lrs=[1e-2, 1e-1])),
    (3, dict(lrs=[1e-2, 1e-1])),
    (5, dict(lrs=[1e-2, 1e-1], angles_deg=[0, 60])),
    (6, dict(lrs=[1e-2, 1e-1], angles_deg=[0, 60], hist_lrs=[1e-1])),
    (4, dict(weight_decays=[0.0, 1.0], steps=20)),
])
def test_figures_build_then_only_redraw(tmp_path, fig_cache, number, extra):
    out, data = str(tmp_path / "f.png"), str(tmp_path / "f.npz")
    kw = dict(SMALL, **extra)
    meta = figures.make_figure(number, out=out, data=data, cache=fig_cache, workers=1, progress=False, **kw)
    assert not meta["redrawn"] and os.path.getsize(out) > 10_000
    assert meta["summary"]["verdict"] and meta["summary"]["claim"] == figures.CLAIMS[number]
    assert all(any(s in c for s in ("reproduced", "partly", "at ")) for c in meta["summary"]["checks"])
    os.remove(out)
    again = figures.make_figure(number, out=out, data=data, cache=str(tmp_path / "empty"), workers=1,
                                progress=False, **kw)
    assert again["redrawn"] and os.path.exists(out)
    assert again["summary"] == meta["summary"]
    with pytest.raises(figures.DataMismatch, match="another grid"):
        figures.make_figure(number, out=out, data=data, cache=fig_cache, workers=1, progress=False,
                            **dict(kw, eval_every=2))


def test_figures_share_runs(tmp_path):
    cache = str(tmp_path / "cache")
    kw = dict(SMALL, lrs=[1e-2, 1e-1])
    spec5 = figures.figure_spec(5, **dict(kw, angles_deg=[0, 60]))
    assert figures.cache_status(5, spec5, cache) == {"total": 2 * 2 + 2 * 2 * 2, "finished": 0, "checkpointed": 0}
    figures.make_figure(2, out=str(tmp_path / "f2.png"), data=str(tmp_path / "f2.npz"), cache=cache,
                        workers=1, progress=False, **kw)
    assert figures.cache_status(5, spec5, cache)["finished"] == 4      # Figure 2's Lion runs
    spec3 = figures.figure_spec(3, **kw)
    assert figures.cache_status(3, spec3, cache) == {"total": 12, "finished": 4, "checkpointed": 0}


def test_figure3_calibrates_to_lions_median_angle(tmp_path, fig_cache):
    kw = dict(SMALL, lrs=[1e-2, 1e-1])
    meta = figures.make_figure(3, out=str(tmp_path / "f.png"), data=str(tmp_path / "f.npz"), cache=fig_cache,
                               workers=1, progress=False, **kw)
    arr, _ = figures.load_figure_data(str(tmp_path / "f.npz"))
    spec = figures.figure_spec(3, **kw)
    lion = [[train(figures._lion(spec, lr, s), cache=fig_cache) for s in spec["seeds"]] for lr in spec["lrs"]]
    want = [np.median([r.median_angle() for r in row]) for row in lion]
    np.testing.assert_array_equal(arr["cal_angle"], want)
    assert meta["spec"] == spec


def test_figure_spec_errors():
    with pytest.raises(ValueError, match="figure must be one of"):
        figures.figure_spec(8)
    with pytest.raises(ValueError, match="no setting 'colour'"):
        figures.figure_spec(2, colour="red")
    with pytest.raises(ValueError, match="hist_lrs"):
        figures.figure_spec(6, hist_lrs=[0.5])
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, inf\), got 0$"):
        figures.figure_spec(2, steps=0)
    assert figures.figure_spec(5)["lrs"] == list(figures.GRID_LRS)
    assert set(figures.figure_spec(6)["angles_deg"]) <= set(figures.figure_spec(5)["angles_deg"])


# --- the command line: bad input is one line and exit status 2 --------------------------------


def run_cli(args, capsys):
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("args, match", [
    (["figure2", "--seed", "-1"], "non-negative"),
    (["figure3", "--workers", "0"], "positive"),
    (["figure4", "--device", "tpu"], "invalid choice"),
    (["figure5", "--resume", "--force"], "contradict"),
    (["figure6", "--out", "x.unknown"], "x.unknown"),
    (["figure2", "--network", "resnet50"], "invalid choice"),
    (["figure2", "--epochs", "3"], "--epochs applies to --scale paper"),
    (["figure2", "--scale", "huge"], "invalid choice"),
])
def test_cli_bad_input_exits_2(tmp_path, capsys, args, match, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(args, capsys)
    assert code == 2 and match in err


def test_cli_refuses_foreign_files_and_paths(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.npz").write_bytes(b"precious")
    code, err = run_cli(["figure2", "--data", "mine.npz"], capsys)
    assert code == 2 and "not lni-geometry figure data" in err and "\n" == err[-1] and err.count("\n") == 1
    assert (tmp_path / "mine.npz").read_bytes() == b"precious"
    (tmp_path / "afile").write_text("x")
    code, err = run_cli(["figure2", "--cache", "afile"], capsys)
    assert code == 2 and "not a folder" in err
    code, err = run_cli(["figure2", "--cache", "no/such/dir/cache"], capsys)
    assert code == 2 and "does not exist" in err
    code, err = run_cli(["figure2", "--resume", "--cache", str(tmp_path / "c")], capsys)
    assert code == 2 and "nothing to resume" in err
    if not torch.cuda.is_available():
        code, err = run_cli(["figure2", "--device", "cuda"], capsys)
        assert code == 2 and "no GPU" in err


def test_cli_data_of_another_grid_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = figures.figure_spec(2, seed=5)
    figures._save_data(str(tmp_path / "other.npz"), {"x": np.zeros(2)}, {"spec": spec, "summary": {}})
    code, err = run_cli(["figure2", "--data", "other.npz", "--quiet"], capsys)
    assert code == 2 and "another grid" in err


def test_cli_rerun_with_the_data_file_only_redraws(tmp_path, fig_cache, capsys, monkeypatch):
    """`lni-geometry figureN --data F` with F holding the figure's grid trains nothing: it
    redraws from F (with an empty cache), and the claim checks are computed again from
    the arrays (a file from older code, without them, gets them)."""
    data = str(tmp_path / "f5.npz")
    figures.make_figure(5, out=str(tmp_path / "first.png"), data=data, cache=fig_cache, workers=1, progress=False,
                        **dict(SMALL, lrs=[1e-2, 1e-1], angles_deg=[0, 60]))
    arr, meta = figures.load_figure_data(data)
    meta["spec"] = figures.figure_spec(5)          # as if it held the default grid
    checks = meta["summary"].pop("checks")
    figures._save_data(data, arr, meta)

    def no_training(*args, **kwargs):
        raise AssertionError("a rerun with the data file must not train")

    monkeypatch.setattr(figures, "build_figure", no_training)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["figure5", "--out", "f5.png", "--data", data, "--cache", str(tmp_path / "empty"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and os.path.getsize(tmp_path / "f5.png") > 10_000
    assert "redrew it from" in out and all(f"check: {c}" in out for c in checks)
    assert written_by_package(str(tmp_path / "f5.png"))


def test_median_angle_is_over_the_second_half_and_ignores_nan():
    """Figures 2, 3, 5 read the angle as the median over the second half of training."""
    from lni_geometry.experiments.engine import RunResult

    x = np.arange(10.0)
    x[8] = np.nan
    r = RunResult(None, {"sign_angle": x}, {}, {}, {})
    assert r.median_angle() == 6.5  # median of 5, 6, 7, 9
    assert r.median_angle(skip=0.0) == 4.0  # of 0..7 and 9
