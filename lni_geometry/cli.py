"""The ``lni-geometry`` command: ``figure1``, ``sample``, ``plot``, ``bench``.

Bad input ends with a one-line error naming the problem and exit status 2,
never a traceback, and never overwrites existing data.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile


class UsageError(Exception):
    """A problem with the command's input: reported in one line, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: what was done is saved; exit status 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, text, code=130):
        super().__init__(text)
        self.code = code


def _int_at_least(low, what):
    """An argparse type: an integer ``>= low``, with a one-line error naming ``what``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "positive")
_nonnegative_int = _int_at_least(0, "non-negative")


def _dim(text):
    from .validation import check_dim

    try:
        return check_dim(_positive_int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


DEFAULT_SAMPLES = {"cpu": 8_000, "cuda": 100_000, "dask": 8_000}


#: The most histogram bins a figure may ask for: a 7.5-inch figure at 200 dpi
#: has 1500 pixels across, so more bins than this cannot be told apart.
MAX_BINS = 1000


def _bins(text):
    """An argparse type: the number of histogram bins, 2 .. MAX_BINS."""
    value = _positive_int(text)
    if not 2 <= value <= MAX_BINS:
        raise argparse.ArgumentTypeError(
            f"expected 2 to {MAX_BINS} bins (a figure cannot show more), got {value}")
    return value


def _figure_samples(text):
    """An argparse type: samples for a histogram with a spread and a comparison, >= 2."""
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"a figure needs at least 2 samples (a spread, a comparison), got {value}")
    return value


def _check_writable(path, what):
    """Fail early (before a long run) if ``path`` cannot be written.

    Creates and removes a scratch file in the folder: permission bits say
    nothing for root, read-only mounts or /proc and /sys.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {what} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {what} {path}: it is a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".lni-geometry-probe-")
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path}: cannot create files in folder {folder} "
                         f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    if os.path.exists(path):
        try:
            with open(path, "r+b"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def _check_output(path, what, force=False, figure=False, data=False):
    """Check, before any work, that ``path`` can and may be written; UsageError if not.

    - the folder exists and accepts files (:func:`_check_writable`);
    - ``figure=True``: the extension is a format that
      :func:`lni_geometry.plot.save_figure` writes, and an existing file is
      replaced only if the package wrote it
      (:func:`lni_geometry.plot.written_by_package`) or ``force``;
    - ``data=True`` (an .npz written by ``AngleSample.save``): an existing file
      that is not a readable AngleSample file is replaced only with ``force``
      (AngleSample files are left to the run logic: resume, reuse, mismatch);
    - otherwise an existing file is replaced only with ``force``.

    Commands that write files call it for each output, then write figures
    with :func:`lni_geometry.plot.save_figure`; add ``--force`` with
    :func:`_add_force`.
    """
    from . import plot

    path = os.fspath(path)
    if figure:
        try:
            plot._format_of(path)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    _check_writable(path, what)
    if force or not os.path.exists(path):
        return
    if figure:
        if not plot.written_by_package(path):
            raise UsageError(f"{what} {path} exists and was not written by lni-geometry; "
                             "pass --force to overwrite it, or choose another path")
    elif data:
        from .sampling import AngleSample

        try:
            AngleSample.read_metadata(path)
        except ValueError as exc:
            raise UsageError(f"{what} {path} exists and is not lni-geometry data ({exc}); "
                             "pass --force to overwrite it, or choose another path") from None
    else:
        raise UsageError(f"{what} {path} exists; pass --force to overwrite it, or choose another path")


def _add_force(parser):
    """Add ``--force`` (overwrite outputs the package did not write) to a subcommand."""
    parser.add_argument("--force", action="store_true",
                        help="overwrite output files even if lni-geometry did not write them")


def _provenance(args, backend):
    from . import __version__
    from .runs import machine_description

    return {
        "command": "lni-geometry " + " ".join(shlex.quote(a) for a in (args.argv or [])),
        "package_version": __version__,
        "machine": machine_description() if backend == "cpu" else backend,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _run(args, path, dim, samples, model, reuse):
    from .backends import get_backend
    from .runs import DataMismatch, NothingToResume, RunExists, RunInterrupted, run_resumable

    backend = get_backend(args.backend).NAME
    force = getattr(args, "force", False)
    if force and args.resume:
        raise UsageError("--force and --resume contradict each other: --resume continues the file, "
                         "--force replaces it")
    try:
        return run_resumable(
            path, dim, samples, model, args.seed, backend, resume=args.resume, reuse=reuse,
            force=force, progress=not args.quiet, provenance=_provenance(args, backend),
        )
    except RunExists as exc:
        if exc.complete:
            raise UsageError(f"{path} already holds this finished run ({exc.done} samples); nothing to do: "
                             "plot it with `lni-geometry plot`, pass --force to sample it again, "
                             "or choose another path") from None
        raise UsageError(f"{path} holds an unfinished run of this command ({exc.done} of {exc.target} "
                         "samples); pass --resume to continue it, --force to start over, "
                         "or choose another path") from None
    except NothingToResume:
        raise UsageError(f"--resume: {path} does not exist, nothing to resume") from None
    except DataMismatch as exc:
        raise UsageError(str(exc)) from None
    except RunInterrupted as exc:
        raise Interrupted(str(exc), 143 if exc.signal_name == "SIGTERM" else 130) from None


def cmd_figure1(args):
    """Regenerate the seed paper's Figure 1: the bisector angle on S^(dim-1)."""
    import numpy as np

    from .backends import get_backend

    backend = get_backend(args.backend).NAME
    samples = args.samples or DEFAULT_SAMPLES[backend]
    data = args.data or os.path.splitext(args.out)[0] + ".npz"
    if os.path.abspath(data) == os.path.abspath(args.out):
        raise UsageError(f"--out and --data are the same file {args.out}; give the figure a figure extension")
    _check_output(args.out, "figure", args.force, figure=True)
    if args.resume:  # the run logic says what is wrong with a file it cannot resume
        _check_writable(data, "data file")
    else:
        _check_output(data, "data file", args.force, data=True)
    print(f"Figure 1: bisector angle of {samples:,} uniform points on S^{args.dim - 1} "
          f"(seed {args.seed}, backend {backend}) -> {args.out}, data {data}", flush=True)
    sample, meta = _run(args, data, args.dim, samples, "gaussian", reuse=True)
    from . import plot, theory
    from .compare import compare

    angles = sample.bisector
    deg = np.degrees(angles)
    counts, edges = np.histogram(deg, bins=args.bins)

    law = theory.BisectorAngle(args.dim)
    normal = theory.BisectorAngle(args.dim, method="normal")
    res = compare(angles, law)
    res_normal = compare(angles, normal)
    cos = np.cos(angles)
    lines = [
        f"samples {len(sample)}, wall time {meta.get('wall_time_s', float('nan')):.1f} s",
        f"angle mean  {deg.mean():.6f} deg   law ({law.method}) {np.degrees(law.mean()):.6f} deg",
        f"angle std   {deg.std(ddof=1):.6f} deg   law ({law.method}) {np.degrees(law.std()):.6f} deg",
        f"cos mean    {cos.mean():.9f}       exact {theory.bisector_cos_mean(args.dim):.9f}",
        f"cos std     {cos.std(ddof=1):.3e}         exact {np.sqrt(theory.bisector_cos_var(args.dim)):.3e}",
        f"vs {law.method} law: {res}",
        f"vs normal law: {res_normal}",
    ]
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plot.paper_style():
        fig, ax = plt.subplots(figsize=(8.0, 3.8))
        plot.angle_histogram(angles, laws=[(f"bisector-angle law ({law.method})", law),
                                           ("normal law, exact moments", normal)],
                             ax=ax, bins=np.radians(edges), legend=None)
        twin = plot.sphere_factor_log(args.dim, ax, (np.radians(edges[0]), np.radians(edges[-1])))
        handles, labels = ax.get_legend_handles_labels()
        h2, l2 = twin.get_legend_handles_labels()
        fig.legend(handles + h2, labels + l2, loc="outside lower center", ncols=2)
        ax.set_title(f"Angle between v and sign(v), v uniform on S^{args.dim - 1:,}: "
                     f"{plot.thousands(len(sample))} samples")
        plot.save_figure(fig, args.out)
    plt.close(fig)

    stored = {k: v for k, v in meta.items() if k not in ("dim", "model", "seed", "start", "samples", "backend", "version")}
    stored["figure"] = os.path.basename(args.out)
    stored["comparison"] = {"method": law.method, **res.as_dict()}
    stored["comparison_normal_law"] = res_normal.as_dict()
    sample.save(data, metadata=stored, bisector_deg=deg, hist_counts=counts, hist_edges_deg=edges)
    print(f"wrote {args.out} and {data}")
    return 0


def cmd_sample(args):
    from .models import model_from_spec

    from .sampling import check_range

    model = model_from_spec(args.model)
    check_range(model, args.dim, args.samples)
    if args.resume:  # the run logic says what is wrong with a file it cannot resume
        _check_writable(args.out, "output")
    else:
        _check_output(args.out, "output", args.force, data=True)
    sample, meta = _run(args, args.out, args.dim, args.samples, model, reuse=False)
    print(sample)
    print(f"wrote {args.out}")
    return 0


def cmd_plot(args):
    from . import plot
    from .sampling import AngleSample

    if not os.path.isfile(args.file):
        raise UsageError(f"{args.file} does not exist")
    out = args.out or os.path.splitext(args.file)[0] + ".png"
    _check_output(out, "figure", args.force, figure=True)
    sample = AngleSample.load(args.file)
    if len(sample) < 2:
        raise UsageError(f"{args.file} holds {len(sample)} sample; a histogram needs at least 2")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    laws = None
    if sample.model.spec != "gaussian":
        laws = ()
    with plot.paper_style():
        fig, ax = plt.subplots(figsize=(8.0, 3.8))
        plot.angle_histogram(sample, laws=laws, ax=ax)
        ax.set_title(f"{sample.model.spec}, dim {sample.dim:,}: {plot.thousands(len(sample))} samples")
        plot.save_figure(fig, out)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


def cmd_bench(args):
    from . import bench

    if args.json:
        if os.path.exists(args.json):
            raise UsageError(f"--json {args.json} exists; bench never overwrites, choose another path")
        _check_writable(args.json, "JSON file")

    if args.world is not None and not args.torch:
        raise UsageError("--world goes with --torch (the distributed step of the torch optimizers)")
    if args.torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise UsageError('bench --torch needs PyTorch: pip install "lni-geometry[torch]" lion-pytorch') from None
        if args.world:
            from .bench.distributed import bench_distributed, format_distributed

            if args.world < 2:
                raise UsageError(f"--world must be >= 2 (processes of the distributed run), got {args.world}")
            print(f"lni-geometry bench --torch --world {args.world}: one step at world size 1 and "
                  f"{args.world} (gloo, CPU) ...", flush=True)
            try:
                res = bench_distributed(world=args.world, repeat=args.repeat or 15)
            except RuntimeError as exc:
                raise UsageError(str(exc)) from None
            print(format_distributed(res))
            results = {"torch_distributed": res}
        else:
            print("lni-geometry bench --torch: one optimizer step on four model shapes ...", flush=True)
            res = bench.bench_torch(repeat=args.repeat or 15)
            print(bench.format_torch(res))
            results = {"torch": res}
    elif args.backend == "cuda":
        try:
            from .bench.cuda import bench_cuda, format_cuda
        except ImportError as exc:
            raise UsageError(f"the CUDA benchmark is not available: {exc}") from None
        try:
            res = bench_cuda(dim=args.dim)
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None
        print(format_cuda(res))
        results = {"cuda": res}
    else:
        print("lni-geometry bench: CPU backend against numpy and numba+Generator ...", flush=True)
        res = bench.bench_cpu(dim=args.dim, samples=args.samples, repeat=args.repeat or 3)
        print(bench.format_cpu(res), flush=True)
        results = {"cpu": res}
        if not args.no_memory:
            mem = bench.bench_memory(dim=args.memory_dim, samples=4)
            print(bench.format_memory(mem))
            results["memory"] = mem
        if not args.no_models:
            res_st = bench.bench_stable()
            print(bench.format_stable(res_st), flush=True)
            results["stable"] = res_st
        if not args.no_laws:
            res_laws = bench.bench_laws()
            print(bench.format_laws(res_laws))
            results["laws"] = res_laws
    if args.json:
        with open(args.json, "x") as fh:
            json.dump(results, fh, indent=2)
    return 0


def _figure_overrides(args):
    """The keyword arguments of ``figure_spec`` given on the command line (besides --full, --seed, --device)."""
    out = {key: value for key, value in (("network", args.network), ("width", args.width),
                                         ("batch_size", args.batch_size), ("lrs", args.lrs)) if value is not None}
    paper = {"data_dir": args.data_dir, "epochs": args.epochs, "max_steps": args.max_steps}
    if args.scale == "paper":
        return dict(out, scale="paper", **paper)
    given = [f"--{k.replace('_', '-')}" for k, v in paper.items() if v is not None]
    if given:
        raise UsageError(f"{given[0]} applies to --scale paper (the small grids are set by --full)")
    return out


def cmd_warmup(args):
    """Compile the optimizers' kernels ahead, into numba's on-disk cache."""
    import time

    from . import optim_kernels

    t0 = time.perf_counter()
    launches = optim_kernels.warm_up()
    print(f"compiled the optimizers' kernels for float32 and float64 ({launches} launches) "
          f"in {time.perf_counter() - t0:.1f} s; later processes load them from numba's cache")
    return 0


def cmd_training_figure(args):
    """Figures 2 to 6 of the seed paper as small offline training experiments (needs torch)."""
    number = int(args.command[len("figure"):])
    out = args.out or f"figure{number}.png"
    data = args.data or os.path.splitext(out)[0] + ".npz"
    force = getattr(args, "force", False)
    if force and args.resume:
        raise UsageError("--force and --resume contradict each other: --resume continues the runs, "
                         "--force rebuilds the data file")
    if os.path.abspath(data) == os.path.abspath(out):
        raise UsageError(f"--data and --out are the same file {out}")
    _check_output(out, "figure", force, figure=True)
    _check_writable(data, "data file")
    if os.path.exists(args.cache) and not os.path.isdir(args.cache):
        raise UsageError(f"--cache {args.cache} exists and is not a folder")
    parent = os.path.dirname(os.path.abspath(args.cache))
    if not os.path.exists(args.cache) and not os.path.isdir(parent):
        raise UsageError(f"cannot create --cache {args.cache}: folder {parent} does not exist")
    try:
        import torch
    except ImportError:
        raise UsageError('figures 2 to 6 train networks and need PyTorch and scikit-learn: '
                         'pip install "lni-geometry[experiments]"') from None
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no GPU (torch.cuda.is_available() is False); use --device cpu")
    from .experiments import figures

    overrides = _figure_overrides(args)
    try:
        spec = figures.figure_spec(number, full=args.full, seed=args.seed, device=args.device, **overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if os.path.exists(data):
        try:
            _, meta = figures.load_figure_data(data)
            known = meta.get("spec") is not None
        except Exception:  # noqa: BLE001 - any unreadable file
            known = False
        if not known and not force:
            raise UsageError(f"data file {data} exists and is not lni-geometry figure data; "
                             "pass --force to overwrite it, or choose another path")
        if force:
            os.remove(data)
    status = figures.cache_status(number, spec, args.cache)
    if args.resume and not os.path.exists(data) and status["finished"] + status["checkpointed"] == 0:
        raise UsageError(f"--resume: no run of figure {number} is in the cache {args.cache}; nothing to resume")
    kind = "full grid" if args.full else "default grid"
    if spec.get("scale") == "paper":
        b = spec["base"]
        kind = (f"paper setting, {kind}: {b['network']} on {b['task']} ({spec['train_size']} training images in "
                f"{b['data_dir']}), {spec['epochs']} epochs = {b['steps']} steps of batch {b['batch_size']}")
    print(f"Figure {number} ({kind}, seeds {spec['seeds']}, device {args.device}) -> {out}, data {data}, "
          f"cache {args.cache}: {status['finished']} of {status['total']} known runs finished"
          + (f", {status['checkpointed']} to resume" if status["checkpointed"] else ""), flush=True)
    prov = _provenance(args, "cpu" if args.device == "cpu" else "cuda")
    prov["load_average_at_start"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    try:
        meta = figures.make_figure(number, out=out, data=data, cache=args.cache, full=args.full, seed=args.seed,
                                   device=args.device, workers=args.workers, progress=not args.quiet,
                                   provenance=prov, **overrides)
    except figures.DataMismatch as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: finished runs are kept in the cache {args.cache} and unfinished ones "
                          "keep a checkpoint; rerun the same command (or add --resume) to continue") from None
    summary = meta["summary"]
    print("\n".join(summary["lines"]))
    print("claim: " + summary["claim"])
    for v in summary["verdict"]:
        print("shown: " + v)
    for c in summary.get("checks", []):
        print("check: " + c)
    how = "redrew it from" if meta.get("redrawn") else f"computed in {meta['wall_time_s']:.1f} s, wrote"
    print(f"wrote {out} ({how} {data})")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lni-geometry",
        description="Angles between vectors and their signs: Figure 1, sampling, plots, benchmarks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p, default_backend="auto"):
        from .backends import BACKENDS

        p.add_argument("--seed", type=_nonnegative_int, default=0)
        p.add_argument("--backend", choices=list(BACKENDS), default=default_backend)
        p.add_argument("--resume", action="store_true", help="continue an interrupted run from its data file")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    f = sub.add_parser("figure1", help="the seed paper's Figure 1: angle histogram on S^(dim-1) with the laws")
    f.add_argument("--dim", type=_dim, default=6_000_000)
    f.add_argument("--samples", type=_figure_samples, default=None,
                   help="default: 8000 on the CPU, 100000 on a GPU. Time is dim x samples / speed: "
                        "the default 4.8e10 normals take about 40 s at 1.3e9 normals/s (2 AVX-512 cores "
                        "at 2.6 GHz), plus up to 20 s of compilation on first use; "
                        "`lni-geometry bench` measures your speed")
    f.add_argument("--out", default="figure1.png",
                   help="the figure to write: .png, .pdf, .svg, .eps or .ps (default figure1.png)")
    f.add_argument("--data", default=None, help="the data file (default: --out with .npz)")
    f.add_argument("--bins", type=_bins, default=80, help=f"histogram bins, 2 to {MAX_BINS} (default 80)")
    run_options(f)
    _add_force(f)
    f.set_defaults(func=cmd_figure1)

    s = sub.add_parser("sample", help="sample angles of a model into an .npz file")
    s.add_argument("--dim", type=_dim, required=True)
    s.add_argument("--samples", type=_positive_int, required=True)
    s.add_argument("--model", default="gaussian", help="gaussian | stable:ALPHA | t:DF")
    s.add_argument("--out", required=True,
                   help="the .npz file to write (another run or file is never overwritten without --force)")
    run_options(s)
    _add_force(s)
    s.set_defaults(func=cmd_sample)

    p = sub.add_parser("plot", help="histogram of an .npz file written by sample or figure1")
    p.add_argument("file")
    p.add_argument("--out", default=None, help="the figure, .png, .pdf, .svg, .eps or .ps (default: FILE with .png)")
    _add_force(p)
    p.set_defaults(func=cmd_plot)

    b = sub.add_parser("bench", help="measure normals/s (and memory) of a backend against its peers")
    b.add_argument("--backend", choices=["cpu", "cuda"], default="cpu")
    b.add_argument("--dim", type=_dim, default=1 << 20)
    b.add_argument("--samples", type=_positive_int, default=None)
    b.add_argument("--repeat", type=_positive_int, default=None,
                   help="timed repeats: best of 3 (CPU rows), median of 15 steps (--torch) by default")
    b.add_argument("--memory-dim", type=_dim, default=10**8)
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    b.add_argument("--no-laws", action="store_true", help="skip the timing of the analytic laws")
    b.add_argument("--no-models", action="store_true", help="skip the heavy-tailed model rows")
    b.add_argument("--torch", action="store_true",
                   help="instead: one step of Lion (ours, lion-pytorch) and Enim on four model shapes (needs torch)")
    b.add_argument("--world", type=int, default=None, metavar="W",
                   help="with --torch: instead, one step on 10^7 parameters at world size 1 and W (W processes, "
                        "gloo on this machine, the parameters split over them), and the cost of the collective")
    b.add_argument("--json", metavar="PATH", help="also write the figures to a new JSON file")
    b.set_defaults(func=cmd_bench)

    w = sub.add_parser("warmup", help="compile the torch optimizers' kernels now (seconds per code path at "
                                      "first use otherwise; numba caches them on disk)")
    w.set_defaults(func=cmd_warmup)

    for number, what in ((2, "Lion's sign angle against the learning rate, above the isotropic law; the angle budget"),
                         (3, "Enim calibrated to Lion's angle against Lion"),
                         (4, "Lion with weight decay: momentum tracing and instability"),
                         (5, "Enim over a grid of learning rate x angle, with Lion's angle"),
                         (6, "zero gradients and normalisation biases, Lion against Enim"),
                         (7, "the paper's open hypothesis, paired by seed: does the sign make the angle grow "
                             "with the lr? (Lion, Enim at Lion's angle, normalised SGD)")):
        t = sub.add_parser(f"figure{number}", help=f"the seed paper's Figure {number} at small scale: {what}"
                           if number < 7 else f"not in the paper: {what}")
        t.add_argument("--out", default=None, help=f"the figure to write (default figure{number}.png)")
        t.add_argument("--data", default=None, help="the figure's data file (default: --out with .npz)")
        t.add_argument("--cache", default=".lni-cache",
                       help="folder of finished training runs, shared by all figures (default .lni-cache)")
        t.add_argument("--full", action="store_true", help="the larger grid (more lrs, seeds, steps)")
        t.add_argument("--network", choices=["cnn_bn", "cnn_ln", "mlp_bn", "resnet9", "resnet9_gn", "resnet18"],
                       default=None,
                       help="residual CNN with BatchNorm (the small default), the same with LayerNorm (the control), "
                            "a BatchNorm MLP, the paper's ResNet-9 (the paper default of figures 2, 3, 5, 6), its "
                            "GroupNorm control, or ResNet-18 (the paper default of figure 4)")
        t.add_argument("--scale", choices=["small", "paper"], default="small",
                       help="small: the digits analogue (default); paper: the paper's ResNets on CIFAR from "
                            "--data-dir, 200 epochs")
        t.add_argument("--data-dir", default=None, metavar="DIR",
                       help="with --scale paper: the folder holding the unpacked CIFAR archive (python or binary "
                            "version; default $LNI_GEOMETRY_DATA); nothing is downloaded")
        t.add_argument("--epochs", type=_positive_int, default=None,
                       help="with --scale paper: epochs per run (default 200)")
        t.add_argument("--max-steps", type=_positive_int, default=None,
                       help="with --scale paper: at most this many steps per run (a short trial)")
        t.add_argument("--width", type=_positive_int, default=None,
                       help="channels of the network's first stage (default: the preset's, 16 small, 64 ResNets); "
                            "smaller for a cheap trial")
        t.add_argument("--batch-size", type=_positive_int, default=None,
                       help="minibatch size (default: the preset's, 64 small, 512 ResNet-9, 128 ResNet-18)")
        t.add_argument("--lrs", type=float, nargs="+", default=None, metavar="LR",
                       help="the learning rates of the grid (default: the preset's; not figure 4)")
        t.add_argument("--seed", type=_nonnegative_int, default=0, help="first seed; seeds are SEED..SEED+k-1")
        t.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="cuda only where torch sees a GPU (runs then go one after the other, or one per GPU "
                            "when several are visible)")
        t.add_argument("--workers", type=_positive_int, default=None,
                       help="worker processes (default: the number of CPU cores)")
        t.add_argument("--resume", action="store_true",
                       help="continue an interrupted figure (interrupted runs are always continued from "
                            "their checkpoints; this flag insists that there is something to continue)")
        t.add_argument("--quiet", action="store_true", help="no progress bar")
        _add_force(t)
        t.set_defaults(func=cmd_training_figure)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except Interrupted as exc:
        print(f"lni-geometry {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except UsageError as exc:
        print(f"lni-geometry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"lni-geometry {args.command}: error: {exc.filename} exists; not overwriting it", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, RuntimeError, ArithmeticError) as exc:
        print(f"lni-geometry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lni-geometry {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
