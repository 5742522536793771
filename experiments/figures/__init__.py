"""``mixup-theory figures``: regenerates the figures (docs/theory.md §6) from cached experiment results.

One module per figure (names in ``experiments.registry.FIGURES``), a shared ``style`` and the
``runner`` that caches results per configuration, writes ``data/NAME.{csv,json}`` and plots from them.
"""
from __future__ import annotations

import sys

from .executor import PER_CPU, max_jobs, max_threads

DESCRIPTION = ("Regenerates the named (default: all) figures into DIR: NAME.png, NAME.pdf, data/NAME.csv and "
               "data/NAME.json. Results are cached per configuration under DIR/.cache, so an interrupted run "
               "resumes. Only the default scale writes figures/. Figures: ")
SCALE_HELP = ("smoke: seconds, for tests; default: minutes on a CPU; gpu: more seeds, MNIST-1D with "
              "40 000 training samples, a CNN (meant for one GPU, runs anywhere); "
              "paper: GPU, image data from --data-root, WRN-16-8")


def register(subparsers) -> None:
    from .. import registry
    from ..devices import DEVICE_CHOICES as DEVICES
    from .runner import SCALES

    p = subparsers.add_parser("figures", help="regenerate figures (PNG, PDF, data CSV/JSON) from cached results",
                              description=DESCRIPTION + ", ".join(registry.figure_names()))
    p.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all)")
    p.add_argument("--scale", choices=SCALES, default="default", help=SCALE_HELP)
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to train and compute: auto (CUDA when torch sees it, else the CPU), cpu or cuda")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: figures/ at the default scale, figures/SCALE/ at the others)")
    p.add_argument("--force", action="store_true", help="recompute every result instead of reusing the cache")
    p.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: DIR/.cache)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="folder with image datasets (SVHN, CIFAR-10) for --scale paper")
    p.add_argument("--replot", action="store_true", help="only redraw plots from saved data/NAME.json")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads per process, 1 to %d (%d × the CPUs; default: 1 at the smoke/default "
                        "scales, torch's choice otherwise)" % (max_threads(), PER_CPU))
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes computing configurations, 1 to %d (%d × the usable cores; default: the "
                        "number of cores at the smoke/default scales, 1 otherwise; always 1 on a GPU)"
                        % (max_jobs(), PER_CPU))
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_figures, validate=validate)


def validate(args) -> None:
    """The one check of ``figures``' arguments (``UsageError`` before any work); normalises ``args``:
    ``out`` becomes a ``Path`` (the scale's default folder when not given), ``device`` a ``torch.device``."""
    from .. import registry
    from .._usage import UsageError, check_device, check_input_dir, check_int, check_output_dir
    from ..registry import figure_module
    from .runner import Context, data_paths, default_out

    unknown = [n for n in args.names if n not in registry.all_figure_names()]
    if unknown:
        raise UsageError(f"unknown figure {unknown[0]!r}; figures are {', '.join(registry.all_figure_names())}")
    args.threads = check_int(args.threads, "--threads", high=max_threads(), optional=True)
    args.jobs = check_int(args.jobs, "--jobs", high=max_jobs(), optional=True)
    args.out = check_output_dir(default_out(args.scale) if args.out is None else args.out, "--out")
    if args.cache_dir is not None:
        args.cache_dir = check_output_dir(args.cache_dir, "--cache-dir")
    if args.data_root is not None:
        args.data_root = str(check_input_dir(args.data_root, "--data-root"))
    names = args.names or registry.figure_names(args.scale)
    args.device = check_device(args.device)
    if args.replot:
        for name in names:
            _check_saved_figure(data_paths(args.out, name)["json"], name)
        return
    if args.scale == "paper" and args.device.type != "cuda":
        raise UsageError("--scale paper trains WRN-16-8 on image data and needs a GPU (--device cuda); "
                         "use --scale default on a CPU")
    ctx = Context(scale=args.scale, device=args.device, data_root=args.data_root)
    for name in names:
        why = getattr(figure_module(name), "unavailable", lambda s, c: None)(args.scale, ctx)
        if why:
            raise UsageError(f"{name} cannot run at --scale {args.scale}: {why}")


def _check_saved_figure(path, name: str) -> None:
    """``data/NAME.json`` exists and holds the rows and summary a replot needs."""
    import json

    from .._usage import UsageError

    if not path.is_file():
        raise UsageError(f"--replot: no saved data for {name!r} at {path}; run without --replot first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--replot: {path} is not readable JSON ({exc}); rerun without --replot") from None
    if not (isinstance(data, dict) and isinstance(data.get("rows"), list) and isinstance(data.get("summary"), dict)):
        raise UsageError(f"--replot: {path} lacks the 'rows' list and 'summary' object of a saved figure; "
                         "rerun without --replot")


def _cmd_figures(args) -> int:
    from .runner import FigureError, run, warnings_note

    try:
        reports = run(args.names, scale=args.scale, device=args.device, out=args.out, force=args.force,
                      cache_dir=args.cache_dir, data_root=args.data_root, progress=not args.no_progress,
                      replot=args.replot, threads=args.threads, jobs=args.jobs)
    except FigureError as exc:
        from .._usage import print_error

        return print_error("mixup-theory figures", exc)
    for name, rep in reports.items():
        note = warnings_note(rep)
        print(f"{name:<20} {rep.computed:>4} computed {rep.cached:>4} cached {rep.seconds:8.1f} s  -> "
              f"{rep.paths['png']}" + (f"  ({note})" if note else ""))
    return 0
