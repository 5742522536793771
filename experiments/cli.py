"""The ``mixup-theory`` command line (README.md; docs/theory.md for the analysis)."""
from __future__ import annotations

import argparse
import sys

CLAIMS = [f"C{k}" for k in range(1, 15)]


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
# check (experiments.check), explain (experiments.explain), property (experiments.properties).
SUBCOMMAND_MODULES = ("experiments.figures", "experiments.check", "experiments.explain", "experiments.properties")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from ._usage import OneLineParser

    p = OneLineParser(prog="mixup-theory", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    sub.add_parser("list", help="list figure names, datasets and claim ids").set_defaults(func=_cmd_list)
    d = sub.add_parser("decompose", help="decompose the exact Mixup loss on two-moons (C1, C2)")
    d.add_argument("--alpha", type=float, default=1.0)
    d.add_argument("--n", type=int, default=200)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_decompose)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs a subcommand. Bad arguments: one line on stderr and exit status 2, before any work."""
    from ._usage import VALIDATORS, UsageError, print_error

    args = build_parser().parse_args(argv)
    try:
        for validate in (VALIDATORS.get(args.command), getattr(args, "validate", None)):
            if validate is not None:
                validate(args)
    except UsageError as exc:
        return print_error(f"mixup-theory {args.command}", exc)
    return _run(args)


SINGLE_THREAD_COMMANDS = ("check", "explain", "property", "decompose", "list")
"""Commands on small problems run torch on one thread: its intra-op threads wait for each other at every
operation when another process holds a core (measured, `explain` beside one CPU-bound process on
2 cores: 7.2 s on one thread, 14.2 s on two). ``figures`` sets its own (``--jobs``/``--threads``)."""


def _run(args) -> int:
    """The subcommand's work, once its arguments are known to be good."""
    if args.command in SINGLE_THREAD_COMMANDS:
        import torch

        torch.set_num_threads(1)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
