"""``mixup-theory figures``: regenerates the figures (docs/theory.md §6) from cached experiment results.

One module per figure (names in ``experiments.registry.FIGURES``), a shared ``style`` and the
``runner`` that caches results per configuration, writes ``data/NAME.{csv,json}`` and plots from them.
"""
from __future__ import annotations

import sys

SCALE_HELP = ("smoke: seconds, for tests; default: minutes on a CPU; gpu: more seeds, MNIST-1D with "
              "40 000 training samples, a CNN (meant for one GPU, runs anywhere); "
              "paper: GPU, image data from --data-root, WRN-16-8")


def register(subparsers) -> None:
    from .. import registry
    from .runner import DEVICES, SCALES

    p = subparsers.add_parser(
        "figures", help="regenerate figures (PNG, PDF, data CSV/JSON) from cached results",
        description="Regenerates the named (default: all) figures into DIR: NAME.png, NAME.pdf, "
                    "data/NAME.csv, data/NAME.json. Results are cached per configuration under "
                    "DIR/.cache, so an interrupted run resumes. Figures: " + ", ".join(registry.figure_names()))
    p.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all)")
    p.add_argument("--scale", choices=SCALES, default="default", help=SCALE_HELP)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--out", default="figures", metavar="DIR", help="output folder (default: figures/)")
    p.add_argument("--force", action="store_true", help="recompute every result instead of reusing the cache")
    p.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: DIR/.cache)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="folder with image datasets (SVHN, CIFAR-10) for --scale paper")
    p.add_argument("--replot", action="store_true", help="only redraw plots from saved data/NAME.json")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads per process (default: 1 at the smoke/default scales, "
                        "torch's choice otherwise)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes computing configurations (default: the number of cores at "
                        "the smoke/default scales, 1 otherwise; always 1 on a GPU)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_figures)


def _cmd_figures(args) -> int:
    from .runner import FigureError, run, warnings_note

    try:
        reports = run(args.names, scale=args.scale, device=args.device, out=args.out, force=args.force,
                      cache_dir=args.cache_dir, data_root=args.data_root, progress=not args.no_progress,
                      replot=args.replot, threads=args.threads, jobs=args.jobs)
    except FigureError as exc:
        print(f"mixup-theory figures: {exc}", file=sys.stderr)
        return 2
    for name, rep in reports.items():
        note = warnings_note(rep)
        print(f"{name:<20} {rep.computed:>4} computed {rep.cached:>4} cached {rep.seconds:8.1f} s  -> "
              f"{rep.paths['png']}" + (f"  ({note})" if note else ""))
    return 0
