"""``mixup-theory property CLAIM``: property-test an inequality of the robustness analysis with hypothesis.

Claims (Zhang et al. 2021, §3; docs/theory.md §4):

- ``C4``  the chain ``L̃_mix ≥ mean L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)`` for logistic regression, ℓ2;
- ``C5``  the same chain for bias-free ReLU nets, ℓ2;
- ``C13`` the ℓ∞ chain (logistic regression and ReLU nets);
- ``C7``  the exact inequality ``L_mix ≥ L_adv(ε_mix)`` for logistic regression (ℓ2 and ℓ∞).

Instances come from ``theory.strategies.instances`` (every assumption holds except those named with
``--drop``, which are violated). Deterministic given ``--seed`` (hypothesis database off).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._usage import UsageError, check_int, check_output_file, check_seed

CLAIM_TEXT = {
    "C4": "the chain L~mix >= mean L~adv,i(eps_i) >= L~adv(eps_mix), logistic regression, l2",
    "C5": "the chain L~mix >= mean L~adv,i(eps_i) >= L~adv(eps_mix), bias-free ReLU nets, l2",
    "C13": "the l-inf chain L~mix >= mean L~adv,i(eps_i) >= L~adv(eps_mix), logistic regression and ReLU nets",
    "C7": "the exact inequality L_mix >= L_adv(eps_mix), logistic regression, l2 and l-inf",
}
ASSUMPTION_NAMES = ("centered", "in_theta", "homogeneous", "norm_bound")
MAX_EXAMPLES = 1_000_000
DESCRIPTION = ("Property-tests the inequality of CLAIM with hypothesis on instances that satisfy every assumption except "
               "those named with --drop (violated by construction). Exit 0 if no counterexample is found, 1 if one is "
               "(printed shrunk; saved as JSON with --save), 2 for usage errors.")


class Falsified(Exception):
    """Raised inside the hypothesis test when an instance violates the property."""


@dataclass
class PropertyResult:
    claim: str
    examples: int
    held: int
    counterexample: object | None = None
    detail: str = ""
    warnings: list = field(default_factory=list)
    """Warnings the checks raised (``experiments._warnings`` records); ``theory.AssumptionWarning`` is
    expected exactly when assumptions are dropped (the instances are built to violate them)."""

    @property
    def exit_code(self) -> int:
        return 0 if self.counterexample is None else 1


def strategy(claim: str, drop: tuple):
    """The hypothesis strategy of instances for ``claim`` (``UsageError`` for a bad combination)."""
    from hypothesis import strategies as st

    from theory.strategies import instances

    if claim == "C4":
        return instances("logistic", 2, drop)
    if claim == "C5":
        return instances("relu", 2, drop, d=(1, 3))
    if claim == "C13":
        if "norm_bound" in drop:
            raise UsageError("--drop norm_bound does not apply to C13: the l-inf chain has no c_x, so (A3) cannot fail")
        return st.one_of(instances("logistic", math.inf, drop), instances("relu", math.inf, drop, d=(1, 3)))
    if claim == "C7":
        if "norm_bound" in drop:
            return instances("logistic", 2, drop)
        return st.one_of(instances("logistic", 2, drop), instances("logistic", math.inf, drop))
    raise UsageError(f"unknown claim {claim!r}; choose one of {', '.join(CLAIM_TEXT)}")


def check(claim: str, inst) -> tuple[bool, str]:
    """``(holds, numbers)`` of the property on one instance."""
    if claim == "C7":
        c = inst.exact_comparison()
        return c.status == "holds", (f"L_mix (exact) = {c.mixup_exact:.10g}, L_adv(eps_mix) = {c.adv_upper:.10g} "
                                     f"at eps_mix = {c.eps:.6g}; assumptions {c.assumptions}")
    r = inst.robustness_bound()
    return r.holds, (f"L~mix = {r.mixup_approx:.10g}, mean L~adv,i(eps_i) = {r.adv_at_eps_i:.10g}, "
                     f"L~adv(eps_mix) = {r.adv_at_eps_mix:.10g}; assumptions {r.assumptions}")


def run_property(claim: str, examples: int = 200, drop=(), seed: int = 0) -> PropertyResult:
    """Run hypothesis on ``claim``; the counterexample, if any, is the shrunk one."""
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import seed as hseed

    from ._warnings import captured

    strat = strategy(claim, tuple(drop))
    state = {"held": 0, "tried": 0, "failed": None, "warnings": []}

    @hseed(seed)
    @settings(max_examples=examples, database=None, derandomize=False, deadline=None, print_blob=False,
              report_multiple_bugs=False, verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck))
    @given(strat)
    def prop(inst):
        try:
            (ok, detail), caught = captured(lambda: check(claim, inst))  # recorded, summarised once
            state["warnings"].extend(caught)
        except Exception as exc:  # an error on a valid instance is a finding too
            ok, detail = False, f"raised {type(exc).__name__}: {exc}"
        if state["failed"] is None:
            state["tried"] += 1
        if not ok:
            state["failed"] = (inst, detail)
            raise Falsified(detail)
        if state["failed"] is None:
            state["held"] += 1

    try:
        prop()
    except Falsified:
        pass
    inst, detail = state["failed"] or (None, "")
    return PropertyResult(claim, state["tried"], state["held"], inst, detail, state["warnings"])


def validate(args) -> None:
    """The one check of ``property``'s arguments (``UsageError`` before any work); normalises ``args``:
    ``claim`` upper-case, ``drop`` without repeats, ``save`` a ``Path`` or ``None``."""
    claim = args.claim.upper()
    if claim not in CLAIM_TEXT:
        raise UsageError(f"unknown claim {args.claim!r}; choose one of {', '.join(CLAIM_TEXT)}")
    drop = tuple(dict.fromkeys(args.drop or ()))
    for name in drop:
        if name not in ASSUMPTION_NAMES:
            raise UsageError(f"--drop {name!r} is not an assumption; choose among {', '.join(ASSUMPTION_NAMES)}")
    check_int(args.examples, "--examples", high=MAX_EXAMPLES)
    check_seed(args.seed)
    args.save = None if args.save is None else check_output_file(args.save, "--save")
    strategy(claim, drop)  # a bad claim/drop combination is a usage error too
    args.claim, args.drop = claim, drop


def _cmd_property(args) -> int:
    claim, examples, drop, seed, save = args.claim, args.examples, args.drop, args.seed, args.save
    dropped = ", ".join(drop) if drop else "none"
    print(f"{claim}: {CLAIM_TEXT[claim]}")
    print(f"hypothesis: up to {examples} examples, seed {seed}, assumptions dropped: {dropped}")
    res = run_property(claim, examples, drop, seed)
    _print_warnings(res, drop)
    if res.counterexample is None:
        print(f"no counterexample: the inequality held on all {res.held} examples")
        return 0
    print(f"counterexample found after {res.held} examples held; shrunk:")
    print(str(res.counterexample))
    print(f"  {res.detail}")
    if save is not None:
        res.counterexample.save(save)
        print(f"saved to {save} (read back with theory.strategies.load_instance)")
    return 1


def _print_warnings(res: PropertyResult, drop) -> None:
    """One line for the expected warnings (assumptions dropped on purpose), one for any other."""
    from theory import AssumptionWarning

    from ._warnings import split, summary

    counts, others = split(res.warnings, (AssumptionWarning,) if drop else ())
    if counts:
        print(f"expected warnings: {counts['AssumptionWarning']} AssumptionWarning (instances built to violate "
              f"{', '.join(drop)})")
    note = summary(others, "not expected")
    if note:
        print(note)


def register(subparsers) -> None:
    p = subparsers.add_parser("property", help="property-test an inequality (C4, C5, C13, C7) with hypothesis",
                              description=DESCRIPTION)
    p.add_argument("claim", metavar="CLAIM", help="one of " + ", ".join(CLAIM_TEXT))
    p.add_argument("--examples", type=int, default=200, metavar="N",
                   help=f"hypothesis examples, 1 to {MAX_EXAMPLES} (default %(default)s)")
    p.add_argument("--drop", action="extend", nargs="+", metavar="NAME", default=[],
                   help="assumptions to violate: " + ", ".join(ASSUMPTION_NAMES))
    p.add_argument("--seed", type=int, default=0, metavar="S", help="hypothesis seed, 0 to 2^32-1 (default %(default)s)")
    p.add_argument("--save", metavar="FILE", help="write the shrunk counterexample as JSON")
    p.set_defaults(func=_cmd_property, validate=validate)


__all__ = ["CLAIM_TEXT", "PropertyResult", "check", "register", "run_property", "strategy", "validate"]
