"""The lni-geometry command: figure1, sample, plot; resumable runs; bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lni_geometry import AngleSample, sample_angles
from lni_geometry import runs
from lni_geometry.cli import main


def test_sample_and_plot(tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["sample", "--dim", "500", "--samples", "40", "--seed", "3", "--backend", "cpu", "--out", str(out), "--quiet"]) == 0
    s = AngleSample.load(out)
    ref = sample_angles(500, 40, seed=3, backend="cpu")
    np.testing.assert_array_equal(s.sums, ref.sums)
    meta = AngleSample.read_metadata(out)
    assert meta["complete"] is True and meta["target_samples"] == 40
    assert meta["command"].startswith("lni-geometry sample")
    png = tmp_path / "s.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def _interrupt_after(monkeypatch, calls):
    real = runs.sample_angles
    count = {"n": 0}

    def flaky(*a, **k):
        if count["n"] == calls:
            raise KeyboardInterrupt
        count["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(runs, "sample_angles", flaky)


def test_interrupt_then_resume_gives_the_uninterrupted_numbers(tmp_path, monkeypatch):
    path = str(tmp_path / "run.npz")
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(runs.RunInterrupted) as info:
        runs.run_resumable(path, 300, 50, "gaussian", 7, "cpu", progress=False, batch=7)
    assert info.value.done == 14
    meta = AngleSample.read_metadata(path)
    assert meta["complete"] is False and meta["samples"] == 14
    monkeypatch.undo()
    with pytest.raises(FileExistsError):
        runs.run_resumable(path, 300, 50, "gaussian", 7, "cpu", progress=False, batch=7)
    with pytest.raises(runs.DataMismatch):
        runs.run_resumable(path, 301, 50, "gaussian", 7, "cpu", resume=True, progress=False)
    sample, meta = runs.run_resumable(path, 300, 50, "gaussian", 7, "cpu", resume=True, progress=False, batch=7)
    assert meta["complete"] is True
    np.testing.assert_array_equal(sample.sums, sample_angles(300, 50, seed=7, backend="cpu").sums)


def test_cli_interrupt_exit_code_and_resume(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "r.npz")
    args = ["sample", "--dim", "200", "--samples", "30", "--backend", "cpu", "--out", out, "--quiet"]
    monkeypatch.setattr(runs, "BATCH_COORDS", 200 * 4)
    _interrupt_after(monkeypatch, 3)
    assert main(args) == 130
    assert "rerun with --resume" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setattr(runs, "BATCH_COORDS", 200 * 4)
    assert main(args) == 2  # exists: refuses to overwrite
    assert main(args + ["--resume"]) == 0
    np.testing.assert_array_equal(AngleSample.load(out).sums, sample_angles(200, 30, backend="cpu").sums)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--dim", "-3", "--samples", "5", "--out", "x.npz"], "positive integer"),
        (["sample", "--dim", "10", "--samples", "2.5", "--out", "x.npz"], "positive integer"),
        (["sample", "--dim", "1", "--samples", "5", "--out", "x.npz"], "dim must be an integer in [2, 2**40], got 1"),
        (["figure1", "--samples", "0"], "positive integer"),
    ],
)
def test_argument_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_input_one_line_errors(tmp_path, capsys):
    def run(argv):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, err
        assert "\n" not in err and "Traceback" not in err
        return err

    assert "unknown model" in run(["sample", "--dim", "10", "--samples", "2", "--model", "levy:9", "--out", str(tmp_path / "a.npz"), "--backend", "cpu"])
    assert "does not exist" in run(["sample", "--dim", "10", "--samples", "2", "--out", str(tmp_path / "nope" / "a.npz"), "--backend", "cpu"])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    before = foreign.read_bytes()
    assert "not an AngleSample file" in run(["plot", str(foreign)])
    assert "not an AngleSample file" in run(["sample", "--dim", "10", "--samples", "2", "--out", str(foreign), "--resume", "--backend", "cpu"])
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"garbage")
    assert "cannot read" in run(["plot", str(corrupt)])
    assert "cannot read" in run(["figure1", "--dim", "100", "--samples", "5", "--data", str(corrupt), "--out", str(tmp_path / "f.png"), "--resume", "--backend", "cpu"])
    assert foreign.read_bytes() == before and corrupt.read_bytes() == b"garbage"
    assert "does not exist" in run(["plot", str(tmp_path / "missing.npz")])


def test_entry_point_installed():
    res = subprocess.run([sys.executable, "-m", "lni_geometry.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "figure1" in res.stdout


def test_bench_runs_and_writes_its_figures(tmp_path, capsys):
    """A smoke run of `lni-geometry bench` at a tiny size (its figures are not asserted:
    speed is measured by the command, never by tests)."""
    import json

    out = tmp_path / "bench.json"
    code = main(["bench", "--dim", "65536", "--samples", "4", "--repeat", "1", "--no-memory",
                 "--no-models", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "normals/s" in text and "pdf + cdf" in text
    from lni_geometry.runs import cpu_frequency_hz

    assert ("one thread, in cache" in text) == bool(cpu_frequency_hz())  # needs a known clock
    res = json.loads(out.read_text())
    assert set(res) == {"cpu", "laws"}
    assert all(r["pdf_cdf_s"] > 0 for r in res["laws"])
    # --json never overwrites
    assert main(["bench", "--dim", "65536", "--samples", "4", "--repeat", "1", "--no-memory",
                 "--no-models", "--no-laws", "--json", str(out)]) == 2
