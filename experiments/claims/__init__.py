"""One fast check per claim C1–C14 of docs/theory.md (used by ``mixup-theory check``).

Each check runs a small problem (or reads cached figure data, saying so in ``measured``) and
returns a :class:`Result` with ``id``, ``status``, ``measured`` and ``command`` (how to reproduce at
full size). Modules: ``identity`` (C1–C3), ``robustness`` (C4–C8, C13), ``generalization`` (C9–C12),
``estimators`` (C14).
"""
from __future__ import annotations

import traceback

from ._common import STATUSES, Missing, Result, single_thread

CLAIM_IDS = tuple(f"C{k}" for k in range(1, 15))
COMMANDS = {  # reproduction commands (each runs on a CPU), also used for skipped rows
    "C1": "python -m pytest -q tests/test_mixup_loss.py -k identity",
    "C2": "mixup-theory figures approximation_order",
    "C3": "mixup-theory figures approximation",
    "C4": "mixup-theory figures robustness_chain",
    "C5": "mixup-theory figures robustness_chain",
    "C6": "python -m pytest -q tests/test_robustness.py",
    "C7": "mixup-theory figures robustness_chain",
    "C8": "mixup-theory figures robust_accuracy",
    "C9": "mixup-theory figures regularizer",
    "C10": "mixup-theory figures rademacher",
    "C11": "python -m pytest -q tests/test_manifold.py",
    "C12": "mixup-theory figures generalization_gap",
    "C13": "python -m pytest -q tests/test_robustness.py",
    "C14": "mixup-theory figures estimators",
}
EMPIRICAL = ("C3", "C8", "C12")
"""Claims about experiments rather than theorems: judged from 95 % intervals over seeds; when not
supported they are ``not-reproduced`` (a finding), never ``fails`` (a bug)."""


def _registry() -> dict:
    from . import estimators, generalization, identity, robustness

    return {**identity.CHECKS, **robustness.CHECKS, **generalization.CHECKS, **estimators.CHECKS}


def run_check(claim_id: str) -> Result:
    """Run one check; missing code gives ``skipped``, an exception gives ``fails`` with the error."""
    fn = _registry()[claim_id]
    try:
        return fn()
    except Missing as exc:
        return Result(claim_id, "skipped", f"skipped: {exc}", COMMANDS[claim_id], reason=str(exc))
    except Exception as exc:  # a crashing check is a failing check, with the reason shown
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
        text = f"error: {type(exc).__name__}: {exc} ({where})"
        return Result(claim_id, "fails", text, COMMANDS[claim_id], reason=f"the check crashed: {text}")


def run_checks(ids=None) -> list[Result]:
    """Results for ``ids`` (default: every claim of ``CLAIM_IDS``), in claim order."""
    ids = CLAIM_IDS if ids is None else tuple(ids)
    unknown = set(ids) - set(CLAIM_IDS)
    if unknown:
        raise ValueError(f"claim ids must be among {CLAIM_IDS[0]}..{CLAIM_IDS[-1]}, got {sorted(unknown)}")
    with single_thread():
        return [run_check(i) for i in ids]


__all__ = ["CLAIM_IDS", "COMMANDS", "EMPIRICAL", "STATUSES", "Result", "run_check", "run_checks"]
