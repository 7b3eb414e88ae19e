"""The ``lni-geometry`` command: ``figure1``, ``sample``, ``plot``, ``bench``.

Bad input ends with a one-line error naming the problem and exit status 2,
never a traceback, and never overwrites existing data.
"""

from __future__ import annotations

import argparse
import json
import sys


class UsageError(Exception):
    """A problem with the command's input: reported in one line, exit status 2."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonnegative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _dim(text):
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"dim must be >= 2, got {value}")
    return value


def cmd_bench(args):
    from . import bench

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
        stable = getattr(bench, "bench_stable", None)
        if stable is not None and not args.no_models:
            res_st = stable()
            print(bench.format_stable(res_st))
            results["stable"] = res_st
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

    b = sub.add_parser("bench", help="measure normals/s (and memory) of a backend against its peers")
    b.add_argument("--backend", choices=["cpu", "cuda"], default="cpu")
    b.add_argument("--dim", type=_dim, default=1 << 20)
    b.add_argument("--samples", type=_positive_int, default=None)
    b.add_argument("--repeat", type=_positive_int, default=3)
    b.add_argument("--memory-dim", type=_dim, default=10**8)
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    b.add_argument("--no-models", action="store_true", help="skip the heavy-tailed model rows")
    b.add_argument("--json", metavar="PATH", help="also write the figures to a new JSON file")
    b.set_defaults(func=cmd_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"lni-geometry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"lni-geometry {args.command}: error: {exc.filename} exists; not overwriting it", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError) as exc:
        print(f"lni-geometry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lni-geometry {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
