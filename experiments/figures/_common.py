"""Small helpers shared by figure modules: model fits by scikit-learn, aggregation, slope fits."""
from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Iterable

import numpy as np


def sklearn_logistic(X, y, *, C: float = 1e2, bias: bool = True):
    """Logistic regression fitted by scikit-learn, as a float64 ``theory.linear_model``."""
    from sklearn.linear_model import LogisticRegression

    import theory

    clf = LogisticRegression(C=C, fit_intercept=bias, max_iter=5000).fit(X, y)
    return theory.linear_model(X.shape[1], bias=bias, weight=clf.coef_,
                               intercept=clf.intercept_ if bias else None)


def sklearn_tanh_mlp(X, y, *, hidden=(16, 16), seed: int = 0, max_iter: int = 500, alpha: float = 1e-3):
    """A tanh MLP fitted by scikit-learn's ``MLPClassifier`` (binary: one logit), copied into
    ``theory.smooth_mlp`` (a float64 ``nn.Sequential``)."""
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    import theory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=tuple(hidden), activation="tanh", alpha=alpha,
                            max_iter=max_iter, random_state=seed).fit(X, y)
    model = theory.smooth_mlp(X.shape[1], tuple(hidden), activation="tanh")
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, W, b in zip(linears, clf.coefs_, clf.intercepts_):
            lin.weight.copy_(torch.as_tensor(W.T))
            lin.bias.copy_(torch.as_tensor(b))
    return model


def loglog_slope(x: Iterable[float], y: Iterable[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (NaN with fewer than 2 positive points)."""
    x, y = np.asarray(list(x), float), np.asarray(list(y), float)
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def mean_sd(rows: list[dict], by: tuple[str, ...], value: str) -> list[dict]:
    """Groups rows by the ``by`` keys and returns ``{**keys, value+'_mean', value+'_sd', 'count'}``
    (sample sd, ddof=1; 0 for a single seed), sorted by the keys."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if r.get(value) is None:
            continue
        groups[tuple(r[k] for k in by)].append(float(r[value]))
    out = []
    for key in sorted(groups, key=lambda k: tuple((str(type(v)), v) for v in k)):
        vals = np.asarray(groups[key])
        sd = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out.append({**dict(zip(by, key)), f"{value}_mean": float(vals.mean()), f"{value}_sd": sd,
                    "count": len(vals)})
    return out


def select(rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def train_run(config: dict, device: str, **overrides):
    """``experiments.training.train`` on a JSON config (lists become tuples), on ``device``."""
    from experiments.training import config_from_json, train

    return train(config_from_json({**config, **overrides}, device))


def train_fields(task: dict) -> dict:
    """The ``TrainConfig`` fields of a task (the task's other keys are figure parameters)."""
    import dataclasses

    from experiments.training import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"device"}
    return {k: v for k, v in task.items() if k in names}


# ----------------------------------------------------------------------------- empirical figures (C3, C8, C12)

def datasets_of(rows: list[dict]) -> list[str]:
    """The datasets of ``rows``, in order of first appearance."""
    return list(dict.fromkeys(r["dataset"] for r in rows))


def run_label(method: str, alpha) -> str:
    """``"standard"`` or ``"mixup α=A"`` (``alpha=None`` means 1): the run a row belongs to."""
    return "standard" if method == "standard" else f"mixup α={float(1.0 if alpha is None else alpha):g}"


def shown_alpha(alphas, paper_alpha: float) -> float:
    """The α a figure's accuracy/gap panels show: the paper's when it was run, else the middle one."""
    alphas = list(alphas) or [paper_alpha]
    return paper_alpha if paper_alpha in alphas else alphas[len(alphas) // 2]


def claim_verdict(intervals: dict) -> tuple[str, str]:
    """``(decision, tally)`` over the judged intervals (every one unless marked ``"judged": False``):
    supported only if every interval is (``experiments.stats.overall``)."""
    from experiments import stats

    decisions = [v["decision"] for v in intervals.values() if v.get("judged", True)]
    return stats.overall(decisions), stats.tally(decisions)


def mean_ci(groups: dict, names: tuple[str, ...]) -> list[dict]:
    """Mean with its 95 % t interval per group: ``groups`` maps a key tuple (named by ``names``) to the
    values over seeds; rows ``{name: key part, ..., mean, low, high, count}`` in key order."""
    from experiments import stats

    out = []
    for key, values in sorted(groups.items()):
        iv = stats.mean_interval(list(values))
        out.append({**dict(zip(names, key)), "mean": iv.mean, "low": iv.low, "high": iv.high, "count": iv.n})
    return out


def method_bands(ax, points: list[dict], x: str, alpha: float, **match) -> None:
    """Standard and Mixup (at ``alpha``) as mean lines with 95 % bands over seeds, from ``mean_ci`` rows
    ``points`` selected by ``match`` and ordered by ``x``."""
    from . import style

    for method in ("standard", "mixup"):
        pts = sorted(select(points, **match, run=run_label(method, alpha)), key=lambda r: r[x])
        if not pts:
            continue
        st = style.method_style(method)
        name = st["label"] + (f" (α = {alpha:g})" if method == "mixup" else "")
        style.ci_band(ax, [p[x] for p in pts], [p["mean"] for p in pts], [p["low"] for p in pts],
                      [p["high"] for p in pts], color=st["color"], label=f"{name}, {pts[0]['count']} seeds")


def empirical_title(fig, claim: str, title: str, summary: dict, settings: str, legend_axes) -> None:
    """The suptitle of an empirical figure (C8, C12): its verdict over the ``settings`` judged, with the
    interval level and the number of seeds, and the figure legend of the mean bands."""
    from experiments.stats import LEVEL

    from . import style

    verdict = style.verdict_line(claim, summary["verdict"], f"{summary['tally']} {settings}; {LEVEL:.0%} intervals "
                                                             f"over {len(summary['seeds'])} seeds")
    style.suptitle(fig, claim, title, verdict)
    style.figure_legend(fig, legend_axes, ncol=2, title=f"bands: {LEVEL:.0%} interval of the mean over seeds")
