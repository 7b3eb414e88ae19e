"""Issue 15, "found by trying it": no silent NaN or impossible angle, no lost or
overwritten file, signals, checks before the work, clear messages, one figure style."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lni_geometry as lg
from lni_geometry import AngleSample, plot, runs, sampling
from lni_geometry.backends import cpu
from lni_geometry.cli import main
from lni_geometry.models import StudentT, SymmetricStable


def _one_line_error(capsys, argv, code=2):
    got = main(argv)
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert "\n" not in err and "Traceback" not in err, err
    return err


# --- 1. extreme heavy tails ---------------------------------------------------------


@pytest.mark.parametrize("spec, dim, name, limit", [("stable:0.02", 100_000, "alpha", 0.086),
                                                    ("t:0.01", 100_000, "df", 0.089)])
def test_extreme_tails_are_refused_with_the_limit(spec, dim, name, limit):
    """The issue's probes: refused before any sampling, naming the smallest safe parameter,
    which passes while 10% below it does not."""
    with pytest.raises(ValueError, match=rf"overflow.*limit is 1e-06.*{name} >= {limit}\b"):
        lg.sample_angles(dim, 50, spec, backend="cpu")
    make = (lambda a: SymmetricStable(a)) if name == "alpha" else StudentT
    assert sampling.range_risk(make(limit), dim, 50) <= sampling.MAX_RANGE_RISK
    assert sampling.range_risk(make(0.9 * limit), dim, 50) > sampling.MAX_RANGE_RISK


@pytest.mark.parametrize("model", [SymmetricStable(0.03), StudentT(0.03)])
def test_range_bound_holds_against_the_kernels(model):
    """The derived bound against the kernels' own sums, where failures are common
    enough to count: the number of samples whose sums overflow (or whose ``dim * l2sq``
    does) is at most the bound (Poisson, 3 sd), and the bound is not loose by more than
    a factor 3 (the refusals are not needlessly strict)."""
    dim, samples = 1000, 2000
    sums = cpu.sample_sums(lg.rng.key_from_seed(0), model, dim, 0, samples)
    with np.errstate(all="ignore"):
        ok = np.isfinite(sums).all(axis=1) & np.isfinite(dim * sums[:, 1]) & (sums[:, 1] >= dim * 2.0**-1022)
    failures = int(np.count_nonzero(~ok))
    bound = sampling.range_risk(model, dim, 1) * samples
    assert failures <= bound + 3 * np.sqrt(bound), (failures, bound)
    assert failures >= bound / 3, (failures, bound)


def test_overflow_that_slips_through_is_an_error_not_an_angle(monkeypatch):
    """Without the refusal the sums overflow (46 of 50 angles were exactly 90 deg, the
    rest NaN); the check on the results raises instead of returning them."""
    monkeypatch.setattr(sampling, "check_range", lambda *a: 0.0)
    with pytest.raises(FloatingPointError, match=r"of 50 samples of model 'stable:0.02' at dim 1000 have sums that overflowed"):
        lg.sample_angles(1000, 50, "stable:0.02", backend="cpu")
    with pytest.raises(FloatingPointError, match="inf or NaN"):
        lg.sample_vectors(1000, 3, "t:0.01")


def test_angles_stay_in_their_range():
    """A 1-sparse vector's sums: l1**2 = l2sq exactly, and one ulp below by rounding,
    give the largest bisector angle arccos(1/sqrt(n)), never more; impossible sums
    (inf, NaN, l2sq = 0, a cosine far outside its range) are errors."""
    dim = 10
    top = np.arccos(1 / np.sqrt(dim))
    l1 = np.array([3.0, 3.0 * (1 - 2**-52)])
    s = AngleSample(l1=l1, l2sq=np.array([9.0, 9.0]), total=np.array([3.0, 3.0]), dim=dim, model=lg.Gaussian())
    assert np.all(s.bisector <= top) and s.bisector[1] == top
    for bad in ({"l2sq": [np.inf]}, {"l1": [np.nan]}, {"l2sq": [0.0]}, {"l1": [2.0]}):
        sums = {"l1": [3.0], "l2sq": [9.0], "total": [3.0], **bad}
        with pytest.raises(ValueError, match="no angle|corrupt"):
            AngleSample(**sums, dim=dim, model=lg.Gaussian())


def test_cli_refuses_extreme_tails_and_nan_data(tmp_path, capsys):
    out = tmp_path / "t.npz"
    err = _one_line_error(capsys, ["sample", "--dim", "1000", "--samples", "50", "--model", "t:0.01",
                                   "--out", str(out), "--backend", "cpu", "--quiet"])
    assert "df >= 0.074" in err and not out.exists()
    # a file holding NaN sums (as this command used to write) is refused when read
    s = lg.sample_angles(100, 3, backend="cpu")
    s.save(out)
    with np.load(out) as data:
        arrays = dict(data)
    arrays["l2sq"] = np.array([np.nan, 1.0, 1.0])
    np.savez(out, **arrays)
    assert "no angle" in _one_line_error(capsys, ["plot", str(out)])


# --- 2. files -------------------------------------------------------------------------

FIG1 = ["figure1", "--dim", "200", "--samples", "20", "--backend", "cpu", "--quiet"]


def test_figures_never_overwrite_foreign_files(tmp_path, capsys):
    notes = tmp_path / "notes.png"
    notes.write_text("x\n")
    err = _one_line_error(capsys, FIG1 + ["--out", str(notes)])
    assert "not written by lni-geometry" in err and "--force" in err
    assert notes.read_text() == "x\n" and not (tmp_path / "notes.npz").exists()
    # the package's own figure is redrawn without --force; a foreign one only with it
    fig = tmp_path / "f.png"
    assert main(FIG1 + ["--out", str(fig)]) == 0
    assert plot.written_by_package(fig)
    assert main(FIG1 + ["--out", str(fig)]) == 0
    assert "not written by lni-geometry" in _one_line_error(capsys, ["plot", str(tmp_path / "f.npz"), "--out", str(notes)])
    assert notes.read_text() == "x\n"
    assert main(["plot", str(tmp_path / "f.npz"), "--out", str(notes), "--force"]) == 0
    assert plot.written_by_package(notes)
    # sample --out: a file that is not lni-geometry data is kept unless --force
    other = tmp_path / "other.npz"
    other.write_text("my notes\n")
    args = ["sample", "--dim", "100", "--samples", "3", "--backend", "cpu", "--quiet", "--out", str(other)]
    assert "not lni-geometry data" in _one_line_error(capsys, args)
    assert other.read_text() == "my notes\n"
    assert main(args + ["--force"]) == 0
    np.testing.assert_array_equal(AngleSample.load(other).sums, lg.sample_angles(100, 3, backend="cpu").sums)


def test_damaged_files_one_line_and_untouched(tmp_path, capsys):
    good = tmp_path / "good.npz"
    assert main(["sample", "--dim", "100", "--samples", "5", "--backend", "cpu", "--quiet", "--out", str(good)]) == 0
    whole = good.read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(whole[: len(whole) // 2])
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(whole[:200] + bytes(b ^ 0xFF for b in whole[200:260]) + whole[260:])
    text = tmp_path / "notes.npz"
    text.write_text("hello\n")
    for path in (trunc, flipped):
        before = path.read_bytes()
        for argv in (["plot", str(path)],
                     ["sample", "--dim", "100", "--samples", "5", "--backend", "cpu", "--quiet", "--out", str(path), "--resume"],
                     FIG1[:1] + ["--dim", "100", "--samples", "5", "--backend", "cpu", "--quiet", "--data", str(path),
                                 "--out", str(tmp_path / "g.png"), "--resume"]):
            assert "damaged or truncated" in _one_line_error(capsys, argv)
        assert path.read_bytes() == before
    assert "not an .npz archive" in _one_line_error(capsys, ["plot", str(text)])
    err = _one_line_error(capsys, FIG1 + ["--data", str(text), "--out", str(tmp_path / "g.png")])
    assert "not an .npz archive" in err and "allow_pickle" not in err
    assert text.read_text() == "hello\n" and not (tmp_path / "g.png").exists()


def test_finished_run_is_not_called_unfinished(tmp_path, capsys):
    out = tmp_path / "s.npz"
    args = ["sample", "--dim", "100", "--samples", "4", "--backend", "cpu", "--quiet", "--out", str(out)]
    assert main(args) == 0
    err = _one_line_error(capsys, args)
    assert "finished run" in err and "unfinished" not in err
    assert "--force and --resume contradict" in _one_line_error(capsys, args + ["--force", "--resume"])


# --- 3. signals -----------------------------------------------------------------------


def test_sigterm_saves_and_resume_gives_identical_bits(tmp_path):
    """SIGTERM (kill, timeout, schedulers) saves the batches done, like Ctrl-C; exit 143."""
    out = tmp_path / "run.npz"
    script = textwrap.dedent(f"""
        import sys, time
        from lni_geometry import runs
        from lni_geometry.cli import main
        real, calls = runs.sample_angles, [0]
        def slow(*a, **k):
            calls[0] += 1
            if calls[0] == 3:
                print("READY", flush=True)
            time.sleep(0.05)
            return real(*a, **k)
        runs.sample_angles = slow
        runs.BATCH_COORDS = 300 * 2
        sys.exit(main(["sample", "--dim", "300", "--samples", "400", "--backend", "cpu", "--quiet",
                       "--out", {str(out)!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    meta = AngleSample.read_metadata(out)
    assert meta["complete"] is False and 4 <= meta["samples"] < 400
    sample, meta = runs.run_resumable(str(out), 300, 400, "gaussian", 0, "cpu", resume=True, progress=False)
    assert meta["complete"] is True
    np.testing.assert_array_equal(sample.sums, lg.sample_angles(300, 400, backend="cpu").sums)


# --- 4. checks before the work ----------------------------------------------------------


def test_outputs_and_options_are_checked_before_sampling(tmp_path, capsys, monkeypatch):
    def no_sampling(*a, **k):
        raise AssertionError("sampled before checking the outputs")

    monkeypatch.setattr(runs, "sample_angles", no_sampling)
    base = ["figure1", "--dim", "100", "--samples", "5", "--backend", "cpu", "--quiet"]
    assert "'.pdfx' is not a supported format" in _one_line_error(capsys, base + ["--out", str(tmp_path / "fig.pdfx")])
    for folder in ("/proc", "/sys"):
        if os.path.isdir(folder):
            err = _one_line_error(capsys, base + ["--out", f"{folder}/x.png"])
            assert f"cannot create files in folder {folder}" in err and "resume" not in err
    assert "does not exist" in _one_line_error(capsys, base + ["--out", str(tmp_path / "no" / "x.png")])
    for argv, message in ((["--samples", "1"], "at least 2 samples"), (["--bins", "100000"], "2 to 1000 bins")):
        with pytest.raises(SystemExit) as info:
            main(["figure1", "--dim", "100", "--quiet"] + argv)
        assert info.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# --- 6. figures -------------------------------------------------------------------------


def test_save_figure_marks_every_format(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plot.paper_style():
        fig, ax = plt.subplots()
        ax.plot([0, 1])
    for fmt in plot.FIGURE_FORMATS:
        path = tmp_path / f"f.{fmt}"
        plot.save_figure(fig, path)
        assert plot.written_by_package(path), fmt
    with pytest.raises(ValueError, match="not a supported format"):
        plot.save_figure(fig, tmp_path / "f.jpg")
    plt.close(fig)
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    assert not plot.written_by_package(tmp_path / "x.png")


def _overlaps(fig, a, b):
    r = fig.canvas.get_renderer()
    return a.get_window_extent(r).overlaps(b.get_window_extent(r))


def test_figures_share_one_style_and_keep_legends_off_the_data():
    """The issue's figure complaints, each checked on the drawn figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = lg.sample_angles(10_000, 400, seed=1, backend="cpu")
    with plot.paper_style():
        fig, ax = plt.subplots()
        plot.angle_histogram(s, ax=ax)
        fig.canvas.draw()
        legend = ax.get_legend()
        assert legend is not None and not _overlaps(fig, legend, ax)      # beside the data
        assert legend.get_texts()[0].get_fontsize() >= 8                    # readable
        assert "400 samples" in legend.get_texts()[0].get_text()
        peak = max(p.get_height() for p in ax.patches)
        assert ax.get_ylim()[1] < 1.15 * max(peak, ax.lines[0].get_ydata().max())  # no empty headroom
        # the sphere factor on its own log axis: a rising line across the window, not a spike
        lo, hi = np.quantile(s.bisector, [0.01, 0.99])
        twin = plot.sphere_factor_log(10_000, ax, (lo, hi))
        y = twin.lines[0].get_ydata()
        assert y[-1] == 0 and y[0] < -1 and np.all(np.diff(y) > 0)
        assert twin.get_ylabel()
        plt.close(fig)
        fig, ax = plt.subplots()
        plot.decomposition(10_000, ax=ax, points=100)
        assert ax.get_title() == "n = 10,000" and ax.get_ylabel() != "(1/n) log" and ax.get_xlabel()
        fig.canvas.draw()
        assert not _overlaps(fig, ax.get_legend(), ax)
        assert type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
        plt.close(fig)


def test_notebook_extra_and_time_claims():
    """A [notebook] extra with jupyterlab and nbconvert, named in the README; the time of
    figure1 stated with what it depends on, not as a bare '1-2 minutes'."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    names = " ".join(extras["notebook"])
    assert "jupyterlab" in names and "nbconvert" in names
    readme = open(os.path.join(root, "README.md")).read()
    assert '.[notebook]"' in readme
    assert "1-2 minutes" not in readme and "dim x samples" in readme
    from lni_geometry.cli import build_parser

    helptext = build_parser()._subparsers._group_actions[0].choices["figure1"].format_help()
    assert "dim x samples / speed" in " ".join(helptext.split())
