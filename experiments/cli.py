"""The ``mixup-theory`` command line (README.md; docs/theory.md for the analysis)."""
from __future__ import annotations

import argparse
import sys

CLAIMS = [f"C{k}" for k in range(1, 15)]


def _validate_decompose(args) -> None:
    from ._usage import check_int, check_number, check_seed

    check_number(args.alpha, "--alpha")
    check_int(args.n, "--n", low=2, high=DECOMPOSE_N_MAX)
    check_seed(args.seed)


DECOMPOSE_N_MAX = 2000
"""Largest ``decompose --n``: the exact loss sums all n² pairs (n = 2000: a few seconds)."""


def _cmd_list(args) -> int:
    from . import registry

    print("figures:  " + ", ".join(registry.figure_names()))
    print("datasets: " + ", ".join(registry.dataset_names()))
    print("claims:   " + ", ".join(CLAIMS))
    return 0


def _cmd_decompose(args) -> int:
    """Prints the decomposition of the exact Mixup loss on two-moons (C1, C2)."""
    import numpy as np
    from sklearn.datasets import make_moons
    from sklearn.linear_model import LogisticRegression

    import theory

    X, y = make_moons(args.n, noise=0.1, random_state=args.seed)
    X = X - X.mean(0)
    clf = LogisticRegression(C=1e4).fit(X, y)
    model = theory.linear_model(2, weight=clf.coef_, intercept=clf.intercept_)
    exact = theory.mixup_loss(model, X, y, args.alpha)
    e = theory.mixup_expansion(model, X, y, args.alpha)
    print(f"two-moons n={args.n}, logistic regression, alpha={args.alpha}")
    for name, value in [("L_std", e.standard), ("R1", e.r1), ("R2", e.r2), ("R3", e.r3),
                        ("L~_mix = L_std+R1+R2+R3", e.approx), ("L_mix (exact)", exact),
                        ("relative error", abs(e.approx - exact) / exact)]:
        print(f"  {name:<26}{value: .10f}")
    return 0


# Each module registers its subcommand with ``register(subparsers)``: figures (experiments.figures),
# check (experiments.check), explain (experiments.explain), property (experiments.properties); its
# parser carries ``func`` (the work) and ``validate`` (the one check of its arguments).
SUBCOMMAND_MODULES = ("experiments.figures", "experiments.check", "experiments.explain", "experiments.properties")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from ._usage import OneLineParser

    p = OneLineParser(prog="mixup-theory", description="Exact computations and checks of the Mixup robustness and "
                      "generalization analysis (Zhang et al., ICLR 2021): figures, claim checks, property "
                      "tests and a step-by-step walk-through. See README.md and docs/theory.md.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    sub.add_parser("list", help="list figure names, datasets and claim ids",
                   description="Lists the figure names (for `figures`), the datasets and the claim ids "
                               "(for `check --only`).").set_defaults(func=_cmd_list)
    d = sub.add_parser("decompose", help="decompose the exact Mixup loss on two-moons (C1, C2)",
                       description="Fits logistic regression to centered two-moons data and prints the exact "
                                   "Mixup loss beside its second-order expansion L_std + R1 + R2 + R3 (C1, C2).")
    d.add_argument("--alpha", type=float, default=1.0, help="Mixup's Beta(alpha, alpha) parameter, > 0 (default %(default)s)")
    d.add_argument("--n", type=int, default=200, help=f"training points, 2 to {DECOMPOSE_N_MAX} (default %(default)s)")
    d.add_argument("--seed", type=int, default=0, help="seed of the two-moons sample (default %(default)s)")
    d.set_defaults(func=_cmd_decompose, validate=_validate_decompose)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs a subcommand. Bad arguments: one line on stderr and exit status 2, before any work.
    Ctrl-C: one line, exit status 130. A file that cannot be written (a full disk, a read-only file
    system): one line naming it, exit status 1; the writes are atomic, so no partial file is left."""
    prog = "mixup-theory"
    try:
        from ._usage import UsageError, print_error

        args = build_parser().parse_args(argv)
        prog = f"mixup-theory {args.command}"
        try:
            if getattr(args, "validate", None) is not None:  # each subcommand's validator, next to its parser
                args.validate(args)
        except UsageError as exc:
            return print_error(prog, exc)
        return _run(args)
    except KeyboardInterrupt as exc:
        cached = getattr(exc, "cached", None)
        print(f"{prog}: interrupted" + (f": {cached} results cached; rerun to resume" if cached is not None else ""),
              file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.filename is None:  # not a file the command wrote: a bug, shown in full
            raise
        print(f"{prog}: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1


SINGLE_THREAD_COMMANDS = ("check", "explain", "property", "decompose", "list")
"""Commands on small problems run torch on one thread: its intra-op threads wait for each other at every
operation when another process holds a core (measured, `explain` beside one CPU-bound process on
2 cores: 7.2 s on one thread, 14.2 s on two). ``figures`` sets its own (``--jobs``/``--threads``)."""


def _run(args) -> int:
    """The subcommand's work, once its arguments are known to be good. Warnings that reach this level
    (the commands count or summarise their own) are summarised in one line on stderr, never printed raw."""
    from ._warnings import captured, summary

    if args.command in SINGLE_THREAD_COMMANDS:
        import torch

        torch.set_num_threads(1)
    code, records = captured(lambda: args.func(args), always=False)
    note = summary(records, f"during mixup-theory {args.command}")
    if note:
        print(note, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
