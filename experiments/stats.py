"""Paired intervals and interval-based decisions for the empirical claims C3, C8, C12 (docs/theory.md §6).

An empirical claim is judged from a 95 % confidence interval, never from the sign of a mean:

- ``supported``: the whole interval lies on the side the paper predicts;
- ``contradicted``: the whole interval lies on the other side;
- ``inconclusive``: the interval contains the boundary (more seeds could tell).

Intervals are Student-t intervals of a mean (``scipy.stats.t``) or, on request, BCa bootstrap
intervals (``scipy.stats.bootstrap``). Differences are paired by seed: both training methods use the
same seed (same subsample, initialisation and batch order), so the per-seed difference cancels most
of the seed-to-seed variation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
DECISIONS = ("supported", "contradicted", "inconclusive")
BOOTSTRAP_RESAMPLES = 9999


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a two-sided ``level`` confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int
    level: float = LEVEL
    method: str = "t"

    def text(self, digits: int = 3) -> str:
        """``'+0.012 [-0.004, +0.028]'`` (sign always shown: these are differences)."""
        f = lambda v: "nan" if math.isnan(v) else f"{v:+.{digits}g}"
        if self.n < 2:
            return f"{f(self.mean)} [no interval from {self.n} seed]"
        return f"{f(self.mean)} [{f(self.low)}, {f(self.high)}]"

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "level": self.level,
                "method": self.method}


def mean_interval(values, *, level: float = LEVEL, method: str = "t", seed: int = 0) -> Interval:
    """Mean of ``values`` with its ``level`` interval (``method``: ``"t"`` or ``"bootstrap"``).

    One value gives an infinite interval (no spread to estimate); constant values give a zero-width one.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    x = np.asarray(values, dtype=float).reshape(-1)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level, method)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1, level, method)
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        return Interval(mean, mean, mean, n, level, method)
    from scipy import stats

    if method == "t":
        lo, hi = stats.t.interval(level, n - 1, loc=mean, scale=sd / math.sqrt(n))
    else:
        res = stats.bootstrap((x,), np.mean, confidence_level=level, n_resamples=BOOTSTRAP_RESAMPLES,
                              method="BCa", random_state=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
    return Interval(mean, float(lo), float(hi), n, level, method)


def paired_interval(treatment: dict, control: dict, **kw) -> Interval:
    """Interval of the mean of ``treatment[s] − control[s]`` over the seeds ``s`` present in both."""
    seeds = sorted(set(treatment) & set(control), key=str)
    return mean_interval([treatment[s] - control[s] for s in seeds], **kw)


def decide(interval: Interval, *, boundary: float = 0.0, predicted: str = "above") -> str:
    """``supported``/``contradicted``/``inconclusive``: where ``interval`` lies relative to ``boundary``.

    ``predicted="above"``: the paper predicts values above ``boundary`` (e.g. Mixup minus standard
    accuracy > 0); ``"below"``: values below it (e.g. a relative error below 10 %).
    """
    if predicted not in ("above", "below"):
        raise ValueError(f"predicted must be 'above' or 'below', got {predicted!r}")
    lo, hi = interval.low, interval.high
    if not (math.isfinite(interval.mean) and not math.isnan(lo) and not math.isnan(hi)):
        return "inconclusive"
    if predicted == "above":
        return "supported" if lo > boundary else "contradicted" if hi < boundary else "inconclusive"
    return "supported" if hi < boundary else "contradicted" if lo > boundary else "inconclusive"


def overall(decisions) -> str:
    """One decision for a claim tested in several configurations: ``supported`` only if every one is,
    ``contradicted`` if any is, else ``inconclusive``."""
    decisions = list(decisions)
    if not decisions:
        return "inconclusive"
    if "contradicted" in decisions:
        return "contradicted"
    return "supported" if all(d == "supported" for d in decisions) else "inconclusive"


def tally(decisions) -> str:
    """``'supported 3/6, inconclusive 2/6, contradicted 1/6'`` (zero counts left out)."""
    decisions = list(decisions)
    n = len(decisions)
    return ", ".join(f"{d} {decisions.count(d)}/{n}" for d in DECISIONS if decisions.count(d)) or "no data"


__all__ = ["BOOTSTRAP_RESAMPLES", "DECISIONS", "Interval", "LEVEL", "decide", "mean_interval", "overall",
           "paired_interval", "tally"]
