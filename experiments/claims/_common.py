"""Shared pieces of the claim checks: the result record, verdicts, small problems, cached figure data."""
from __future__ import annotations

import contextlib
import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STATUSES = ("holds", "fails", "expected-fail", "not-reproduced", "skipped")
"""``fails``: an exact or theorem-level claim is violated (a bug; ``check`` exits 1).
``not-reproduced``: an empirical claim of the paper that our experiments contradict or cannot
confirm (the interval that shows it is in ``measured``; ``check --strict`` exits 1)."""
# Where `mixup-theory figures` writes by default, relative to the working directory: checks that read
# figure data work from a checkout or from any folder where the figures were generated.
FIGURE_DATA = Path("figures") / "data"


def counterexample_files():
    """The recorded C6 counterexamples ``c6_*.json``, shipped as package data (``experiments/data``)."""
    from importlib.resources import files

    return sorted((p for p in files("experiments").joinpath("data").iterdir() if p.name.startswith("c6_")
                   and p.name.endswith(".json")), key=lambda p: p.name)


@dataclass
class Result:
    """One row of the claims table.

    ``expected`` is what the paper (or our reading) predicts: ``"holds"``, or ``"fails"`` for the
    rows that document a known failure (C9 paper form for α ≤ 1, C6 counterexamples). A row that
    was expected to fail and does gets ``status = "expected-fail"``; one that unexpectedly holds gets
    ``"holds"`` and a note. ``reason`` is one line saying why a row is not ``holds`` (the closing
    summary of ``check`` prints it). ``warnings``: warnings the check raised that it does not expect
    (``{"category", "message"}``), summarised once by ``check``.
    """

    id: str
    status: str
    measured: dict | str
    command: str
    expected: str = "holds"
    title: str = ""
    subchecks: list["Result"] = field(default_factory=list)
    reason: str = ""
    warnings: list[dict] = field(default_factory=list)
    label: str = ""
    """What the status means for this row, in words, where the bare status would mislead (a C6 row that
    ``holds`` because counterexamples were found): shown beside the status; the JSON status is unchanged."""

    @property
    def status_text(self) -> str:
        return f"{self.status}: {self.label}" if self.label else self.status

    def as_dict(self) -> dict:
        out = {"id": self.id, "status": self.status, "measured": self.measured, "command": self.command,
               "expected": self.expected}
        if self.reason:
            out["reason"] = self.reason
        if self.label:
            out["label"] = self.label
        if self.subchecks:
            out["subchecks"] = [s.as_dict() for s in self.subchecks]
        if self.warnings:
            out["warnings"] = self.warnings
        return out

    @property
    def unexpected_failure(self) -> bool:
        return self.status == "fails" and self.expected == "holds"


@contextlib.contextmanager
def single_thread():
    """Run torch on one intra-op thread, restoring the setting after.

    The checks and the walk-through use tiny tensors, where thread hand-offs dominate: on a shared
    2-core machine one thread was 10-100x faster than two (measured on ``explain``'s model fit).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def verdict(ok: bool, expected: str = "holds") -> str:
    """``holds``/``fails`` for a claim expected to hold; ``expected-fail``/``holds`` for one expected to fail."""
    if expected == "fails":
        return "holds" if ok else "expected-fail"
    return "holds" if ok else "fails"


def empirical_verdict(decision: str) -> str:
    """Status of an empirical claim of the paper from its interval decision (``experiments.stats``):
    ``holds`` when ``supported``, ``not-reproduced`` when ``contradicted`` or ``inconclusive``."""
    if decision not in ("supported", "contradicted", "inconclusive"):
        raise ValueError(f"decision must be supported, contradicted or inconclusive, got {decision!r}")
    return "holds" if decision == "supported" else "not-reproduced"


class Skip(Exception):
    """A check cannot run here (the cached figure data it reads is absent): its row is ``skipped``
    with this reason."""


def fmt(x, digits: int = 4):
    """A float rounded to ``digits`` significant digits (stable text for paper_checks.md)."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


def tiny(x: float, floor: float = 1e-12) -> str:
    """Floating-point noise below ``floor`` shown as ``'<floor'`` so the text does not flicker."""
    return f"<{floor:g}" if abs(x) < floor else f"{x:.2e}"


# ----------------------------------------------------------------------------- small problems

def two_moons(n: int, seed: int = 0, noise: float = 0.1):
    """Centered two-moons inputs (n, 2) and labels (sklearn's generator; fixed by ``seed``)."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=noise, random_state=seed)
    return X - X.mean(0), y


def logistic_fit(X, y, *, intercept: bool = False, C: float = 1.0):
    """``(weight, intercept)`` of scikit-learn's (deterministic lbfgs) logistic regression."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, fit_intercept=intercept, max_iter=1000).fit(X, y)
    return clf.coef_.reshape(-1), (clf.intercept_ if intercept else None)


def centered_in_theta(n: int, d: int, rng: np.random.Generator, margin: float = 0.0):
    """Assumptions (A1)–(A2) by construction: centered Gaussian inputs, labels from θ's side.

    Returns ``(X, y, theta)`` with ``x̄ = 0`` and ``(2y − 1)θᵀx ≥ 0`` for every row.
    """
    X = rng.standard_normal((n, d))
    X -= X.mean(0)
    theta = rng.standard_normal(d)
    y = (X @ theta >= 0).astype(np.int64)
    return X, y, theta


# ----------------------------------------------------------------------------- cached figure data

def figure_data(name: str) -> tuple[dict | None, list[dict] | None]:
    """``(meta, rows)`` from ``figures/data/NAME.json`` and ``NAME.csv`` (``None`` where absent or unreadable)."""
    meta = rows = None
    jpath, cpath = FIGURE_DATA / f"{name}.json", FIGURE_DATA / f"{name}.csv"
    try:
        meta = json.loads(jpath.read_text())
    except (OSError, ValueError):
        pass
    try:
        with cpath.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error):
        pass
    return meta, rows


def data_source(name: str, meta) -> str:
    """``'cached figures/data/NAME.csv (scale default, seeds 0-4)'``: where a check's numbers came from,
    at which scale and over which seeds."""
    scale = meta.get("scale") if isinstance(meta, dict) else None
    seeds = meta.get("seed") if isinstance(meta, dict) else None
    if isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds):
        seeds = sorted(set(seeds))
        contiguous = seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2
        seed_text = f"seeds {seeds[0]}-{seeds[-1]}" if contiguous else "seed" + ("s " if len(seeds) > 1 else " ") + ", ".join(map(str, seeds))
    else:
        seed_text = "seeds unknown"
    return f"cached figures/data/{name}.csv (scale {scale or 'unknown'}, {seed_text})"


def as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def typed_rows(rows: list[dict]) -> list[dict]:
    """CSV rows with numbers as numbers: ``''`` → ``None``, integer text → ``int``, other numbers → ``float``."""
    def one(v):
        if v is None or v == "":
            return None
        if not isinstance(v, str):
            return v
        try:
            return int(v)
        except ValueError:
            pass
        try:
            return float(v)
        except ValueError:
            return {"True": True, "False": False}.get(v, v)

    return [{k: one(v) for k, v in row.items()} for row in rows]


def interval_text(iv: dict, digits: int = 3) -> str:
    """``'+0.012 [-0.004, +0.028] (5 seeds): inconclusive'`` from a ``claim_intervals`` entry."""
    from experiments.stats import Interval

    text = Interval(iv["mean"], iv["low"], iv["high"], iv["n"]).text(digits)
    return f"{text} ({iv['n']} seeds): {iv['decision']}"


def empirical_result(claim: str, intervals: dict, decision: str, tally: str, *, what: str, source: str,
                     command: str, extra: dict | None = None) -> Result:
    """The row of an empirical claim (C3, C8, C12) from its per-setting intervals (``claim_intervals`` of
    the figure module): ``holds`` when every judged interval supports the paper, else ``not-reproduced``
    with the intervals that do not, contradicted ones first, as the reason."""
    judged = {k: v for k, v in intervals.items() if v.get("judged", True)}
    measured = {what: {k: interval_text(v) for k, v in intervals.items()},
                "decision": f"{decision} ({tally})", **(extra or {}), "source": source}
    status = empirical_verdict(decision)
    reason = ""
    if status != "holds":
        order = {"contradicted": 0, "inconclusive": 1, "supported": 2}
        worst = sorted(judged.items(), key=lambda kv: order[kv[1]["decision"]])
        shown = "; ".join(f"{k} {interval_text(v)}" for k, v in worst if v["decision"] != "supported")
        reason = f"{decision} ({tally}) — {shown}"
    return Result(claim, status, measured, command, reason=reason)


def figure_intervals(name: str, rows, needed: set, figure):
    """``(intervals, decision, tally)`` of an empirical figure's saved rows (C8, C12), else :class:`Skip`."""
    if not rows or not needed <= rows[0].keys():
        raise Skip(f"figures/data/{name}.csv lacks columns {sorted(needed - set(rows[0] if rows else ()))}; "
                      f"run: mixup-theory figures {name}")
    intervals = figure.claim_intervals(rows)
    if not intervals:
        raise Skip(f"figures/data/{name}.csv has no setting with both methods")
    return (intervals, *figure.claim_verdict(intervals))
