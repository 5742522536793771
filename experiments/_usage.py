"""Argument checking for ``mixup-theory`` and ``python -m experiments.distributed``.

Every bad input is answered with one line on stderr and exit status 2, before any work starts and
never with a traceback: :class:`OneLineParser` turns argparse's usage errors into one line, and the
``check_*`` functions below validate values and output paths (by a real probe write, so ``/proc``,
read-only mounts and missing folders are caught even when running as root) and raise
:class:`UsageError`, which the entry points print the same way.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path


class UsageError(Exception):
    """A bad command-line argument: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are a single stderr line (``prog: error: message``), exit 2."""

    def error(self, message):  # argparse's default prints the whole usage block first
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(text) -> str:
    return " ".join(str(text).split())


def print_error(prog: str, exc) -> int:
    """Print ``prog: error: exc`` as one line on stderr; returns the exit status 2."""
    import sys

    print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------- values

def check_number(value, flag: str, *, low: float = 0.0, strict: bool = True) -> float:
    """A finite number ``> low`` (``>= low`` when not ``strict``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < low or (strict and v == low):
        raise UsageError(f"{flag} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return v


def check_int(value, flag: str, *, low: int = 1, high: int | None = None, optional: bool = False):
    """An integer in ``[low, high]`` (``None`` passes when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        accepted = f">= {low}" if high is None else f"in {low}..{high}"
        raise UsageError(f"{flag} must be an integer {accepted}, got {value!r}")
    return value


SEED_MAX = 2 ** 32 - 1  # numpy's and scikit-learn's seeds


def check_seed(value, flag: str = "--seed") -> int:
    return check_int(value, flag, low=0, high=SEED_MAX)


def check_choice(value, flag: str, choices) -> str:
    if value not in choices:
        raise UsageError(f"{flag} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_device(name: str, flag: str = "--device") -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; CUDA only where torch sees it."""
    from .devices import resolve_device

    try:
        resolve_device(name)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


# ----------------------------------------------------------------------------- paths

def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path, flag: str) -> Path:
    """A folder that exists and is writable, or can be created under a writable existing folder."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a folder")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise UsageError(f"{flag} {path}: {base} is a file, not a folder")
    try:  # a probe file: permission bits say nothing for root, /proc or read-only mounts
        fd, probe = tempfile.mkstemp(dir=base, prefix=".mixup-theory-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write in {base} ({exc.strerror or exc})") from None
    return p


def check_output_file(path, flag: str, *, must_exist: bool = False) -> Path:
    """A file that can be written (created in an existing folder, or an existing writable file)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, expected a file")
    if p.exists():
        try:
            with open(p, "ab"):  # opening for append changes neither content nor mtime
                pass
        except OSError as exc:
            raise UsageError(f"{flag} {path}: cannot write it ({exc.strerror or exc})") from None
        return p
    if must_exist:
        raise UsageError(f"{flag} {path}: no such file")
    if not p.absolute().parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {p.absolute().parent} does not exist")
    try:
        with open(p, "xb"):
            pass
        p.unlink()
    except FileExistsError:  # created meanwhile (another rank's probe): writable
        pass
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create it ({exc.strerror or exc})") from None
    return p


def check_input_dir(path, flag: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise UsageError(f"{flag} {path}: no such folder")
    return p


# ----------------------------------------------------------------------------- mixup-theory subcommands

def check_figures(args) -> None:
    from . import registry
    from .figures.runner import SCALES, Context, data_paths, figure_module

    unknown = [n for n in args.names if n not in registry.all_figure_names()]
    if unknown:
        raise UsageError(f"unknown figure {unknown[0]!r}; figures are {', '.join(registry.all_figure_names())}")
    check_choice(args.scale, "--scale", SCALES)
    check_int(args.threads, "--threads", optional=True)
    if getattr(args, "jobs", None) is not None:
        check_int(args.jobs, "--jobs")
    out = check_output_dir(args.out, "--out")
    if args.cache_dir is not None:
        check_output_dir(args.cache_dir, "--cache-dir")
    if args.data_root is not None:
        check_input_dir(args.data_root, "--data-root")
    names = args.names or registry.figure_names(args.scale)
    if args.replot:
        for name in names:
            check_saved_figure(data_paths(out, name)["json"], name)
        return
    check_device(args.device)
    from .devices import resolve_device

    device = resolve_device(args.device).type
    if args.scale == "paper" and device != "cuda":
        raise UsageError("--scale paper trains WRN-16-8 on image data and needs a GPU (--device cuda); "
                         "use --scale default on a CPU")
    ctx = Context(scale=args.scale, device=device, data_root=args.data_root)
    for name in names:
        why = getattr(figure_module(name), "unavailable", lambda s, c: None)(args.scale, ctx)
        if why:
            raise UsageError(f"{name} cannot run at --scale {args.scale}: {why}")


def check_saved_figure(path: Path, name: str) -> None:
    """``data/NAME.json`` exists and holds the rows and summary a replot needs."""
    if not path.is_file():
        raise UsageError(f"--replot: no saved data for {name!r} at {path}; run without --replot first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--replot: {path} is not readable JSON ({exc}); rerun without --replot") from None
    if not (isinstance(data, dict) and isinstance(data.get("rows"), list) and isinstance(data.get("summary"), dict)):
        raise UsageError(f"--replot: {path} lacks the 'rows' list and 'summary' object of a saved figure; "
                         "rerun without --replot")


def claim_ids(values) -> list[str]:
    """Claim ids from ``--only`` values, each possibly comma-separated (``C1,C4 C7``)."""
    from .claims import CLAIM_IDS

    if isinstance(values, str):
        values = [values]
    ids = [s.strip().upper() for v in values for s in str(v).split(",") if s.strip()]
    if not ids:
        raise UsageError(f"--only needs at least one claim id among {CLAIM_IDS[0]}..{CLAIM_IDS[-1]}")
    bad = [i for i in ids if i not in CLAIM_IDS]
    if bad:
        raise UsageError(f"--only: unknown claim id {bad[0]!r}; claim ids are {CLAIM_IDS[0]}..{CLAIM_IDS[-1]}")
    return list(dict.fromkeys(ids))


def check_check(args) -> None:
    if args.only is not None:
        args.only = claim_ids(args.only)
    if args.write:
        from .check import update_markdown

        path = check_output_file(args.file, "--file", must_exist=True)
        try:
            update_markdown(path.read_text(encoding="utf-8"), [])
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--file {args.file}: cannot read it ({exc})") from None
        except ValueError as exc:
            raise UsageError(f"--file {args.file}: {exc}") from None


EXPLAIN_MIN_N = 10
"""Fewest training points ``explain`` accepts (both classes, a test split, a rank estimate)."""


def check_explain(args) -> None:
    from .explain import N_MAX

    check_number(args.alpha, "--alpha")
    check_int(args.n, "--n", low=EXPLAIN_MIN_N, high=N_MAX)
    if args.data != "two_moons":  # a fixed-size dataset: n must fit in its training split (a cheap load)
        from .explain import load_small

        try:
            load_small(args.data, args.n)
        except ValueError as exc:
            raise UsageError(f"--n {args.n} with --data {args.data}: {exc}") from None


def check_decompose(args) -> None:
    check_number(args.alpha, "--alpha")
    check_int(args.n, "--n", low=2)
    check_seed(args.seed)


def check_property(args) -> None:
    """``property CLAIM [--examples N] [--drop NAME ...] [--seed S] [--save FILE]``: counts, seed, output file."""
    if getattr(args, "examples", None) is not None:
        check_int(args.examples, "--examples")
    if getattr(args, "seed", None) is not None:
        check_seed(args.seed)
    if getattr(args, "save", None) is not None:
        check_output_file(args.save, "--save")


VALIDATORS = {"figures": check_figures, "check": check_check, "explain": check_explain,
              "decompose": check_decompose, "property": check_property}


# ----------------------------------------------------------------------------- experiments.distributed

def check_distributed(args) -> None:
    from .datasets import dataset_names
    from .nets import MODELS

    check_choice(args.dataset, "--dataset", dataset_names())
    check_choice(args.model, "--model", MODELS)
    check_number(args.alpha, "--alpha")
    check_seed(args.seed)
    check_device(args.device)
    for width in args.hidden:
        check_int(width, "--hidden")
    check_int(args.n_train, "--n-train", optional=True)
    if args.command == "loss":
        check_int(args.nodes, "--nodes", optional=True)
        return
    check_int(args.epochs, "--epochs")
    check_int(args.batch_size, "--batch-size")
    check_number(args.lr, "--lr")
    check_number(args.weight_decay, "--weight-decay", strict=False)
    if args.out is not None and int(os.environ.get("RANK", "0")) == 0:  # rank 0 writes it
        check_output_file(args.out, "--out")
