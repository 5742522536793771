"""Random test problems ``(model, X, y)`` built with the library's model builders (inputs, not references)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

import theory


def make_problem(kind: str, loss: str, n: int = 6, d: int = 3, seed: int = 0, scale: float = 1.0,
                 bias: bool = True, hidden: tuple[int, ...] = (8, 5)):
    """(model, X, y) with random data; ``kind`` in linear / relu / conv / tanh; softmax has K = 3.

    Logistic labels start with 0, 1 so both classes occur; squared labels are normal."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    X = scale * rng.normal(size=(n, d))
    K = 3 if loss == "softmax" else 1
    if kind == "linear":
        model = theory.linear_model(d, K, weight=rng.normal(size=(K, d)), intercept=rng.normal(size=K))
    elif kind == "relu":
        model = theory.relu_mlp(d, list(hidden), K, bias=bias, generator=gen)
    elif kind == "conv":
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Unflatten(1, (1, d)), nn.Conv1d(1, 3, 2), nn.Tanh(), nn.Flatten(),
                              nn.Linear(3 * (d - 1), K)).double()
    else:
        model = theory.smooth_mlp(d, list(hidden), K, bias=bias, generator=gen)
    if loss == "logistic":
        y = rng.integers(0, 2, size=n)
        y[: min(n, 2)] = [0, 1][: min(n, 2)]
    elif loss == "softmax":
        y = rng.integers(0, K, size=n)
    else:
        y = rng.normal(size=n)
    return model, X, y
