"""One fast check per claim C1–C14 of docs/theory.md (used by ``mixup-theory check``).

Each check runs a small problem (or reads cached figure data, saying so in ``measured``) and
returns a :class:`Result` with ``id``, ``status``, ``measured`` and ``command`` (how to reproduce at
full size). Modules: ``identity`` (C1–C3), ``robustness`` (C4–C8, C13), ``generalization`` (C9–C12),
``estimators`` (C14).
"""
from __future__ import annotations

import traceback

from theory import ApproximationWarning, AssumptionWarning

from .._warnings import captured, split
from ._common import STATUSES, Result, Skip, single_thread

CLAIM_IDS = tuple(f"C{k}" for k in range(1, 15))
COMMANDS = {  # reproduction commands (each runs on a CPU), also used for skipped rows
    "C1": "python -m pytest -q tests/theory/test_mixup_loss.py -k identity",
    "C2": "mixup-theory figures approximation_order",
    "C3": "mixup-theory figures approximation",
    "C4": "mixup-theory figures robustness_chain",
    "C5": "mixup-theory figures robustness_chain",
    "C6": "python -m pytest -q tests/theory/test_robustness.py",
    "C7": "mixup-theory figures robustness_chain",
    "C8": "mixup-theory figures robust_accuracy",
    "C9": "mixup-theory figures regularizer",
    "C10": "mixup-theory figures rademacher",
    "C11": "python -m pytest -q tests/theory/test_manifold.py",
    "C12": "mixup-theory figures generalization_gap",
    "C13": "python -m pytest -q tests/theory/test_robustness.py",
    "C14": "mixup-theory figures estimators",
}
EMPIRICAL = ("C3", "C8", "C12")
"""Claims about experiments rather than theorems: judged from 95 % intervals over seeds; when not
supported they are ``not-reproduced`` (a finding), never ``fails`` (a bug)."""


EXPECTED_WARNINGS = {"C6": ((AssumptionWarning, ApproximationWarning),
                            "instances built to violate an assumption; off the assumptions the expansion can be "
                            "far from L_mix")}
"""Warnings a check's own instances are built to trigger: counted in its row (``measured``), not shown."""


def _registry() -> dict:
    from . import estimators, generalization, identity, robustness

    return {**identity.CHECKS, **robustness.CHECKS, **generalization.CHECKS, **estimators.CHECKS}


def run_check(claim_id: str) -> Result:
    """Run one check; absent figure data gives ``skipped``, an exception gives ``fails`` with the error.

    Warnings are recorded, never printed: those in :data:`EXPECTED_WARNINGS` for the claim are counted
    in the row's ``measured`` (``"expected warnings"``); any other is kept in ``Result.warnings`` for
    the closing summary.
    """
    result, records = captured(lambda: _run(claim_id), unique=False)
    expected, why = EXPECTED_WARNINGS.get(claim_id, ((), ""))
    counts, others = split(records, tuple(expected) if isinstance(expected, tuple) else (expected,))
    if counts and isinstance(result.measured, dict):
        result.measured["expected warnings"] = ", ".join(f"{k} {name}" for name, k in counts.items()) + f" ({why})"
    result.warnings = list({(w["category"], w["message"]): w for w in others}.values())
    return result


def _run(claim_id: str) -> Result:
    fn = _registry()[claim_id]
    try:
        return fn()
    except Skip as exc:
        return Result(claim_id, "skipped", f"skipped: {exc}", COMMANDS[claim_id], reason=str(exc))
    except Exception as exc:  # a crashing check is a failing check, with the reason shown
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
        text = f"error: {type(exc).__name__}: {exc} ({where})"
        return Result(claim_id, "fails", text, COMMANDS[claim_id], reason=f"the check crashed: {text}")


def run_checks(ids=None) -> list[Result]:
    """Results for ``ids`` (claim ids from :data:`CLAIM_IDS`; default: all of C1–C14), in the given order."""
    ids = CLAIM_IDS if ids is None else tuple(ids)
    with single_thread():
        return [run_check(i) for i in ids]


__all__ = ["CLAIM_IDS", "COMMANDS", "EMPIRICAL", "STATUSES", "Result", "run_check", "run_checks"]
