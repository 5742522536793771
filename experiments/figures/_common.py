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
