"""CIFAR from a local folder, the paper's ResNets and the paper preset, on data the tests make."""

import os
import pickle
import time

import numpy as np
import pytest
import torch

from lni_geometry import cli
from lni_geometry.experiments import RunConfig, StopTraining, cifar, figures, result_path, runner, train
from lni_geometry.experiments.engine import _checkpoint_path
from lni_geometry.experiments.networks import build_network, norm_bias_names
from lni_geometry.experiments.paper import PAPER_PRESETS, time_epoch
from lni_geometry.experiments.tasks import load_task
from test_experiments import same  # every recorded number of two results equal

CLASSES = {"cifar10": 10, "cifar100": 100}


def make_copy(folder, name, n_train=300, n_test=60, seed=0, formats=("python", "binary")):
    """A generated copy of ``name`` in ``folder``; returns its arrays."""
    arrays = cifar.synthetic_cifar(n_train, n_test, CLASSES[name], seed=seed)
    cifar.write_cifar(folder, name, *arrays, formats=formats)
    return arrays


def sub(folder, name, fmt):
    return os.path.join(folder, cifar.LAYOUTS[name][fmt][0])


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_both_formats_give_identical_arrays(tmp_path, name):
    x_tr, y_tr, x_te, y_te = make_copy(tmp_path, name)
    py = cifar.read_cifar(name, sub(tmp_path, name, "python"))
    bi = cifar.read_cifar(name, sub(tmp_path, name, "binary"))
    assert (py["format"], bi["format"]) == ("python", "binary")
    assert cifar.read_cifar(name, tmp_path)["format"] == "python"  # both there: the python version
    for key, want in (("x_train", x_tr), ("y_train", y_tr), ("x_test", x_te), ("y_test", y_te)):
        np.testing.assert_array_equal(py[key], want)
        np.testing.assert_array_equal(bi[key], want)
        assert py[key].dtype == bi[key].dtype
    assert py["x_train"].shape == (300, 3, 32, 32) and py["classes"] == CLASSES[name]


def test_python_batches_have_the_official_layout(tmp_path):
    """What write_cifar writes is what pickle.load(encoding='bytes') reads from the official files."""
    x_tr, y_tr, _, _ = make_copy(tmp_path, "cifar100", formats=("python",))
    with open(os.path.join(sub(tmp_path, "cifar100", "python"), "train"), "rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    assert set(d) == {b"batch_label", b"fine_labels", b"coarse_labels", b"data", b"filenames"}
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (300, 3072)
    np.testing.assert_array_equal(d[b"data"], x_tr.reshape(300, -1))
    assert d[b"fine_labels"] == y_tr.tolist()


def test_cifar100_reads_fine_labels(tmp_path):
    _, y_tr, _, _ = make_copy(tmp_path, "cifar100", formats=("binary",))
    raw = np.fromfile(os.path.join(sub(tmp_path, "cifar100", "binary"), "train.bin"), np.uint8).reshape(-1, 3074)
    assert (raw[:, 0] != raw[:, 1]).any()  # coarse and fine differ
    np.testing.assert_array_equal(cifar.read_cifar("cifar100", tmp_path)["y_train"], raw[:, 1])
    np.testing.assert_array_equal(raw[:, 1], y_tr)


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_restricted_unpickler_refuses_code(tmp_path, protocol):
    make_copy(tmp_path, "cifar10", formats=("python",))
    marker = tmp_path / "ran"
    path = os.path.join(sub(tmp_path, "cifar10", "python"), "test_batch")
    with open(path, "wb") as fh:
        pickle.dump({"data": _RunsCommand(f"touch {marker}"), "labels": [0]}, fh, protocol=protocol)
    with pytest.raises(cifar.CifarError, match=r"refusing to load .*test_batch: it refers to (posix|nt|os)\.system, "
                                               r"which a CIFAR batch never holds$"):
        cifar.read_cifar("cifar10", tmp_path)
    assert not marker.exists()


def test_restricted_unpickler_refuses_other_arrays_and_globals(tmp_path):
    path = str(tmp_path / "batch")
    with open(path, "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.float32)}, fh, protocol=4)
    with pytest.raises(cifar.CifarError, match="dtype 'f4'; CIFAR batches hold uint8 arrays only"):
        cifar.read_python_batch(path)
    with open(path, "wb") as fh:
        pickle.dump({"f": eval}, fh, protocol=2)
    with pytest.raises(cifar.CifarError, match=r"refers to (__builtin__|builtins)\.eval"):
        cifar.read_python_batch(path)


def one_line(exc):
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_missing_folder_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv(cifar.DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as exc:
        cifar.read_cifar("cifar100", tmp_path)
    text = one_line(exc)
    assert f"{tmp_path}/cifar-100-python/{{train,test,meta}} (python version)" in text
    assert f"{tmp_path}/cifar-100-binary/{{train.bin,test.bin}} (binary version)" in text
    assert cifar.CIFAR_URL in text
    with pytest.raises(FileNotFoundError, match="no CIFAR data folder: pass --data-dir DIR") as exc:
        cifar.read_cifar("cifar10")
    one_line(exc)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cifar.read_cifar("cifar10", tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"dataset must be one of \('cifar10', 'cifar100'\), got 'mnist'"):
        cifar.read_cifar("mnist", tmp_path)


def test_incomplete_folder_names_the_missing_files(tmp_path):
    make_copy(tmp_path, "cifar10", formats=("binary",))
    os.remove(os.path.join(sub(tmp_path, "cifar10", "binary"), "data_batch_3.bin"))
    with pytest.raises(FileNotFoundError) as exc:
        cifar.read_cifar("cifar10", tmp_path)
    text = one_line(exc)
    assert "cifar-10-batches-bin is incomplete (binary version): missing data_batch_3.bin" in text
    assert cifar.CIFAR_URL in text


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    make_copy(tmp_path, "cifar10", formats=("binary",))
    monkeypatch.setenv(cifar.DATA_ENV, str(tmp_path))
    assert cifar.read_cifar("cifar10")["x_train"].shape == (300, 3, 32, 32)
    assert RunConfig(task="cifar10", network="resnet9").data_dir == str(tmp_path)


@pytest.mark.parametrize("fmt, damage, match", [
    ("binary", lambda p: open(p, "ab").write(b"\x00" * 7), "is not a whole number of 3073-byte records"),
    ("binary", lambda p: open(p, "r+b").write(b"\x0b"), r"labels must be in \[0, 9\], got 11"),
    ("python", lambda p: open(p, "wb").write(b"not a pickle"), "not a readable pickle"),
    ("python", lambda p: open(p, "wb").write(open(p.replace("test_batch", "batches.meta"), "rb").read()),
     "b'data' must be a uint8 array"),
])
def test_corrupt_file_is_named(tmp_path, fmt, damage, match):
    make_copy(tmp_path, "cifar10", formats=(fmt,))
    path = os.path.join(sub(tmp_path, "cifar10", fmt), "test_batch.bin" if fmt == "binary" else "test_batch")
    damage(path)
    with pytest.raises(cifar.CifarError, match=match) as exc:
        cifar.read_cifar("cifar10", tmp_path)
    assert one_line(exc).startswith(f"corrupt CIFAR file {path}: ")


def test_task_is_normalised_per_channel(tmp_path):
    make_copy(tmp_path, "cifar10", formats=("binary",))
    task = load_task("cifar10", data_dir=str(tmp_path))
    assert task.x_train.dtype == np.float32 and task.x_train.shape == (300, 3, 32, 32) and task.classes == 10
    np.testing.assert_allclose(task.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(task.x_train.std(axis=(0, 2, 3)), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="data_dir is for the CIFAR tasks"):
        load_task("digits", data_dir=str(tmp_path))


# --- augmentation ---------------------------------------------------------------------------


def test_augment_batch_is_a_padded_crop_and_flip():
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    shifts, flips = cifar.augmentation_draws(seed=3, epoch=1, n=6)
    out = cifar.augment_batch(x, shifts, flips)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for b in range(6):
        r, c = int(shifts[b, 0]), int(shifts[b, 1])
        want = padded[b, :, r:r + 32, c:c + 32]
        torch.testing.assert_close(out[b], torch.flip(want, dims=(2,)) if flips[b] else want, rtol=0, atol=0)
    centre = torch.full((6, 2), 4, dtype=torch.int64)
    torch.testing.assert_close(cifar.augment_batch(x, centre, torch.zeros(6, dtype=torch.bool)), x, rtol=0, atol=0)
    assert 0 <= int(shifts.min()) and int(shifts.max()) <= 8


def test_augmentation_draws_are_a_function_of_seed_and_epoch():
    a, b, c = (cifar.augmentation_draws(s, e, 500) for s, e in ((1, 2), (1, 2), (1, 3)))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert 0.4 < float(a[1].float().mean()) < 0.6


# --- networks --------------------------------------------------------------------------------


def counts(name, classes):
    model = build_network(name, classes=classes, in_shape=(3, 32, 32))
    named = dict(model.named_parameters())
    return sum(p.numel() for p in model.parameters()), sum(named[n].numel() for n in norm_bias_names(model))


@pytest.mark.parametrize("name, classes, n, biases", [
    ("resnet9", 10, 6_573_130, 2_240),
    ("resnet9", 100, 6_619_300, 2_240),
    ("resnet9_gn", 100, 6_619_300, 2_240),
    ("resnet18", 10, 11_173_962, 4_800),
    ("resnet18", 100, 11_220_132, 4_800),
])
def test_parameter_counts_are_the_documented_ones(name, classes, n, biases):
    from lni_geometry.experiments import networks

    assert counts(name, classes) == (n, biases)
    assert f"{n:,}" in networks.__doc__ and f"{biases:,}" in networks.__doc__


def test_resnets_have_their_normalisation():
    kinds = lambda m: {type(x).__name__ for x in m.modules()}  # noqa: E731
    assert "BatchNorm2d" in kinds(build_network("resnet9")) and "GroupNorm" not in kinds(build_network("resnet9"))
    gn = build_network("resnet9_gn", width=8)
    assert "GroupNorm" in kinds(gn) and "BatchNorm2d" not in kinds(gn)
    assert "MaxPool2d" not in kinds(build_network("resnet18", width=4, in_shape=(3, 32, 32)))  # the CIFAR stem
    out = build_network("resnet18", width=4, classes=7, in_shape=(3, 32, 32))(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 7)


# --- training ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """64 training and 32 test images of each dataset (both formats)."""
    folder = tmp_path_factory.mktemp("cifar")
    for name in CLASSES:
        make_copy(folder, name, n_train=64, n_test=32, seed=1)
    return str(folder)


@pytest.mark.parametrize("network, task", [("resnet9", "cifar100"), ("resnet18", "cifar10")])
@pytest.mark.parametrize("optimizer, angle", [("lion", None), ("enim", "lion")])
def test_epochs_on_the_cpu_resume_bit_identically(tiny_data, tmp_path, network, task, optimizer, angle):
    """Two epochs of batch 32 on 64 images (a reduced width), uninterrupted and stopped
    after 3 steps then resumed from the checkpoint: every recorded number equal."""
    config = RunConfig(optimizer=optimizer, angle=angle, lr=1e-3, task=task, data_dir=tiny_data, network=network,
                       width=8, steps=4, batch_size=32, eval_every=2, augment=True, schedule="cosine")
    whole = train(config)
    assert len(whole.evals["step"]) == 2 and np.isfinite(whole.steps["loss"]).all()
    with pytest.raises(StopTraining):
        train(config, cache=tmp_path, stop_after=3)
    assert os.path.exists(_checkpoint_path(result_path(tmp_path, config)))
    resumed = train(config, cache=tmp_path)
    same(whole, resumed)
    assert not resumed.meta["cached"] and train(config, cache=tmp_path).meta["cached"]


def test_bf16_autocast_trains(tiny_data):
    """The forward pass under bfloat16 autocast (the preset on CUDA; here on the CPU)."""
    config = RunConfig(task="cifar10", data_dir=tiny_data, network="resnet9", width=4, steps=2, batch_size=32,
                       bf16=True, augment=True)
    result = train(config)
    assert np.isfinite(result.steps["loss"]).all() and result.config.bf16
    assert config.digest() != RunConfig(**dict(config.as_dict(), betas=(0.9, 0.99), bf16=False)).digest()


def test_crafted_checkpoint_is_refused_and_nothing_runs(tiny_data, tmp_path):
    config = RunConfig(task="cifar10", data_dir=tiny_data, network="resnet9", width=4, steps=2, batch_size=32)
    marker = tmp_path / "ran"
    torch.save({"key": _RunsCommand(f"touch {marker}")}, _checkpoint_path(result_path(tmp_path, config)))
    with pytest.raises(RuntimeError, match=r"refusing to load the checkpoint .*\.ckpt\.pt: it holds more than "
                                           r"tensors.*(posix|nt|os)\.system.*delete it") as exc:
        train(config, cache=tmp_path)
    assert "\n" not in str(exc.value)
    assert not marker.exists()


def test_data_identity_is_in_the_cache_key(tmp_path):
    a, b, moved = tmp_path / "a", tmp_path / "b", tmp_path / "moved"
    for folder in (a, b, moved):
        make_copy(folder, "cifar10", n_train=50, n_test=10, formats=("binary",))
    path = os.path.join(sub(b, "cifar10", "binary"), "test_batch.bin")
    raw = bytearray(open(path, "rb").read())
    raw[100] ^= 1  # one pixel of one image
    with open(path, "wb") as fh:
        fh.write(bytes(raw))
    config = lambda d: RunConfig(task="cifar10", data_dir=str(d), network="resnet9")  # noqa: E731
    assert config(a).digest() == config(moved).digest()  # the same data elsewhere: its runs are served
    assert config(a).digest() != config(b).digest()
    assert config(a).key()["data"]["files"]["test_batch.bin"][0] == 10 * 3073
    assert "data_dir" not in config(a).key()["config"]
    time.sleep(0.01)
    with open(path, "wb") as fh:  # the copy changes under the process: the identity follows
        fh.write(bytes(open(os.path.join(sub(a, "cifar10", "binary"), "test_batch.bin"), "rb").read()))
    assert config(b).digest() == config(a).digest()


# --- the paper preset and the command ----------------------------------------------------------


@pytest.fixture(scope="module")
def cifar100_copy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar100")
    make_copy(folder, "cifar100", n_train=1100, n_test=50, formats=("binary",))
    make_copy(folder, "cifar10", n_train=300, n_test=50, formats=("binary",))
    return str(folder)


def test_paper_spec_is_the_preset(cifar100_copy):
    s = figures.figure_spec(2, scale="paper", data_dir=cifar100_copy)
    b = s["base"]
    assert (b["network"], b["task"], b["width"], b["batch_size"]) == ("resnet9", "cifar100", 64, 512)
    assert s["epochs"] == 200 and s["train_size"] == 1100 and b["steps"] == 200 * 2 and b["eval_every"] == 2
    assert b["augment"] and b["schedule"] == "cosine" and not b["bf16"] and s["scale"] == "paper"
    assert s["lrs"] == list(PAPER_PRESETS[2]["lrs"]) and s["seeds"] == [0]
    f4 = figures.figure_spec(4, scale="paper", data_dir=cifar100_copy, device="cuda", full=True)
    assert (f4["base"]["network"], f4["base"]["task"], f4["base"]["batch_size"]) == ("resnet18", "cifar10", 128)
    assert f4["weight_decays"] == [0.0, 0.2] and f4["base"]["bf16"] and f4["seeds"] == [0, 1, 2]
    short = figures.figure_spec(5, scale="paper", data_dir=cifar100_copy, epochs=3, max_steps=5, batch_size=100)
    assert short["base"]["steps"] == 5 and short["base"]["eval_every"] == 11 and short["epochs"] == 3
    assert set(figures.figure_spec(6, scale="paper", data_dir=cifar100_copy)["hist_lrs"]) <= set(short["lrs"])
    with pytest.raises(ValueError, match="batch_size 2000 exceeds the 1100 training images of cifar100"):
        figures.figure_spec(2, scale="paper", data_dir=cifar100_copy, batch_size=2000)
    with pytest.raises(ValueError, match=r"epochs must be an integer in \[1, inf\), got 0"):
        figures.figure_spec(3, scale="paper", data_dir=cifar100_copy, epochs=0)
    with pytest.raises(FileNotFoundError, match="CIFAR-100 not found"):
        figures.figure_spec(2, scale="paper", data_dir=os.path.dirname(cifar100_copy))


def test_cli_figure2_paper_scale_trains_resnet9(cifar100_copy, tmp_path, monkeypatch, capsys):
    """``figure2 --scale paper`` on a generated CIFAR-100 copy: ResNet-9 trains, capped at 2
    steps of batch 32 on one learning rate, and the figure is written.  At width 8: at the
    full width the figure's fit of a stable law to the angle (``alpha_for_angle`` at 6.6
    million dimensions) alone takes minutes on 2 cores."""
    monkeypatch.chdir(tmp_path)
    code = cli.main(["figure2", "--scale", "paper", "--data-dir", cifar100_copy, "--max-steps", "2",
                     "--batch-size", "32", "--width", "8", "--lrs", "1e-3", "--workers", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "paper setting, default grid: resnet9 on cifar100 (1100 training images" in out
    assert "200 epochs = 2 steps of batch 32" in out
    arr, meta = figures.load_figure_data("figure2.npz")
    assert meta["spec"]["base"]["network"] == "resnet9" and meta["summary"]["n"] == 109_804
    assert arr["sign_angle"].shape == (1, 1, 2) and np.isfinite(arr["sign_angle"]).all()
    assert os.path.exists("figure2.png")
    assert cli.main(["figure2", "--max-steps", "2"]) == 2
    assert "--max-steps applies to --scale paper" in capsys.readouterr().err


def test_time_epoch_measures_the_engine_step():
    t = time_epoch("resnet9", width=4, batch_size=16, batches=1, warmup=1, train_size=48, threads=1)
    assert t["steps_per_epoch"] == 3 and t["width"] == 4 and np.isfinite(t["step_s"]) and t["eval_s"] > 0
    assert t["epoch_s"] == pytest.approx(3 * t["step_s"])


def test_a_gpu_worker_sees_one_gpu(monkeypatch):
    import queue

    q = queue.Queue()
    q.put("3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    import numba

    threads = torch.get_num_threads(), numba.get_num_threads()
    try:
        runner._init_worker(q)
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
