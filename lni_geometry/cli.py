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


class UsageError(Exception):
    """A problem with the command's input: reported in one line, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C: what was done is saved; exit status 130."""


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
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"dim must be >= 2, got {value}")
    return value


DEFAULT_SAMPLES = {"cpu": 8_000, "cuda": 100_000, "dask": 8_000}


def _check_writable(path, what):
    """Fail early (before a long run) if ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {what} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {what} {path}: folder {folder} is not writable")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {what} {path}: it is a folder")


def _provenance(args, backend):
    from . import __version__
    from .bench import machine_description

    return {
        "command": "lni-geometry " + " ".join(shlex.quote(a) for a in (args.argv or [])),
        "package_version": __version__,
        "machine": machine_description() if backend == "cpu" else backend,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _run(args, path, dim, samples, model, reuse):
    from .runs import DataMismatch, RunInterrupted, run_resumable
    from .sampling import resolve_backend

    backend = resolve_backend(args.backend)
    try:
        return run_resumable(
            path, dim, samples, model, args.seed, backend, resume=args.resume, reuse=reuse,
            progress=not args.quiet, provenance=_provenance(args, backend),
        )
    except FileExistsError:
        raise UsageError(f"{path} exists and holds an unfinished run or other data; "
                         "pass --resume to continue it, or choose another path") from None
    except FileNotFoundError:
        raise UsageError(f"--resume: {path} does not exist, nothing to resume") from None
    except DataMismatch as exc:
        raise UsageError(str(exc)) from None
    except RunInterrupted as exc:
        raise Interrupted(str(exc)) from None


def cmd_figure1(args):
    """Regenerate the seed paper's Figure 1: the bisector angle on S^(dim-1)."""
    import numpy as np

    from .sampling import resolve_backend

    backend = resolve_backend(args.backend)
    samples = args.samples or DEFAULT_SAMPLES[backend]
    data = args.data or os.path.splitext(args.out)[0] + ".npz"
    _check_writable(args.out, "figure")
    _check_writable(data, "data file")
    print(f"Figure 1: bisector angle of {samples} uniform points on S^{args.dim - 1} "
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

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    plot.angle_histogram(angles, laws=[(f"bisector-angle law ({law.method})", law),
                                       ("normal law, exact moments", normal)],
                         ax=ax, bins=np.radians(edges))
    plot.sphere_factor_overlay(args.dim, ax, (np.radians(edges[0]), np.radians(edges[-1])),
                               peak_density=counts.max() / (len(deg) * np.diff(edges).mean()))
    ax.set_ylim(0, 1.45 * ax.get_ylim()[1])  # room for the legend above the peak
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"Angle between v and sign(v), v uniform on S^{args.dim - 1}: {len(sample)} samples")
    fig.tight_layout()
    fig.savefig(args.out, dpi=150)
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

    model = model_from_spec(args.model)
    _check_writable(args.out, "output")
    sample, meta = _run(args, args.out, args.dim, args.samples, model, reuse=False)
    print(sample)
    print(f"wrote {args.out}")
    return 0


def cmd_plot(args):
    from . import plot
    from .sampling import AngleSample

    if not os.path.isfile(args.file):
        raise UsageError(f"{args.file} does not exist")
    sample = AngleSample.load(args.file)
    out = args.out or os.path.splitext(args.file)[0] + ".png"
    _check_writable(out, "figure")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    laws = None
    if sample.model.spec != "gaussian":
        laws = ()
    plot.angle_histogram(sample, laws=laws, ax=ax)
    ax.set_title(f"{sample.model.spec}, dim {sample.dim}: {len(sample)} samples")
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


def cmd_bench(args):
    from . import bench

    if args.json:
        if os.path.exists(args.json):
            raise UsageError(f"--json {args.json} exists; bench never overwrites, choose another path")
        _check_writable(args.json, "JSON file")

    if args.backend == "cuda":
        try:
            from .cuda_bench import bench_cuda, format_cuda
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
        res = bench.bench_cpu(dim=args.dim, samples=args.samples, repeat=args.repeat)
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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lni-geometry",
        description="Angles between vectors and their signs: Figure 1, sampling, plots, benchmarks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p, default_backend="auto"):
        p.add_argument("--seed", type=_nonnegative_int, default=0)
        p.add_argument("--backend", choices=["auto", "cpu", "cuda", "dask"], default=default_backend)
        p.add_argument("--resume", action="store_true", help="continue an interrupted run from its data file")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    f = sub.add_parser("figure1", help="the seed paper's Figure 1: angle histogram on S^(dim-1) with the laws")
    f.add_argument("--dim", type=_dim, default=6_000_000)
    f.add_argument("--samples", type=_positive_int, default=None,
                   help="default: 8000 on the CPU (about 1.5 minutes on 2 cores), 100000 on a GPU")
    f.add_argument("--out", default="figure1.png", help="the PNG to write (default figure1.png)")
    f.add_argument("--data", default=None, help="the data file (default: --out with .npz)")
    f.add_argument("--bins", type=_positive_int, default=80)
    run_options(f)
    f.set_defaults(func=cmd_figure1)

    s = sub.add_parser("sample", help="sample angles of a model into an .npz file")
    s.add_argument("--dim", type=_dim, required=True)
    s.add_argument("--samples", type=_positive_int, required=True)
    s.add_argument("--model", default="gaussian", help="gaussian | stable:ALPHA | t:DF")
    s.add_argument("--out", required=True, help="the .npz file to write (never overwritten)")
    run_options(s)
    s.set_defaults(func=cmd_sample)

    p = sub.add_parser("plot", help="histogram of an .npz file written by sample or figure1")
    p.add_argument("file")
    p.add_argument("--out", default=None, help="the PNG (default: FILE with .png)")
    p.set_defaults(func=cmd_plot)

    b = sub.add_parser("bench", help="measure normals/s (and memory) of a backend against its peers")
    b.add_argument("--backend", choices=["cpu", "cuda"], default="cpu")
    b.add_argument("--dim", type=_dim, default=1 << 20)
    b.add_argument("--samples", type=_positive_int, default=None)
    b.add_argument("--repeat", type=_positive_int, default=3)
    b.add_argument("--memory-dim", type=_dim, default=10**8)
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    b.add_argument("--no-laws", action="store_true", help="skip the timing of the analytic laws")
    b.add_argument("--no-models", action="store_true", help="skip the heavy-tailed model rows")
    b.add_argument("--json", metavar="PATH", help="also write the figures to a new JSON file")
    b.set_defaults(func=cmd_bench)
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
        return 130
    except UsageError as exc:
        print(f"lni-geometry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"lni-geometry {args.command}: error: {exc.filename} exists; not overwriting it", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        print(f"lni-geometry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lni-geometry {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
