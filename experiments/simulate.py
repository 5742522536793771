"""Simulated training steps: the per-step Mixup loss as a training loop computes it (docs/theory.md §2.7).

The reference that ``theory.estimator_expectation`` / ``estimator_variance`` are checked against
(C14): each draw reshuffles the data, picks one step of the epoch uniformly, pairs the batch by the
scheme, draws λ, mixes inputs and (label-smoothed) targets, and evaluates the loss with the training
loop's own loss (``experiments.training.task_loss``). Draws are independent, so their mean and sample
variance come with standard errors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from theory.validation import check_alpha_beta, check_choice, check_count, check_rng, check_scalar

from .training import batch_bounds, task_loss

SCHEMES = ("uniform", "permutation", "flip", "flip-per-sample")
LAST_BATCH = ("keep", "drop", "merge")


@dataclass(frozen=True)
class SimulatedSteps:
    """``draws`` independent step losses with their mean, variance and standard errors."""

    losses: np.ndarray
    mean: float
    mean_stderr: float
    variance: float
    variance_stderr: float


def epoch_bounds(n: int, batch_size: int, last_batch: str) -> list[tuple[int, int]]:
    """``[b0, b1)`` of the epoch's steps: ``"keep"`` a last smaller batch, ``"drop"`` it, or ``"merge"``
    a last batch of one into the one before (the training loop's ``batch_bounds``)."""
    if last_batch == "merge":
        return batch_bounds(n, batch_size)
    bounds = [(b0, min(n, b0 + batch_size)) for b0 in range(0, n, batch_size)]
    if last_batch == "drop":
        bounds = [(b0, b1) for b0, b1 in bounds if b1 - b0 == batch_size]
    if not bounds:
        raise ValueError(f"batch_size = {batch_size} exceeds n = {n} with last_batch='drop': an epoch has no step")
    return bounds


def simulate_steps(model, X, y, alpha, beta=None, *, scheme: str, batch_size: int, n_classes: int = 2,
                   label_smoothing: float = 0.0, last_batch: str = "keep", draws: int = 2000,
                   generator=None) -> SimulatedSteps:
    """Loss of one step drawn uniformly from a freshly reshuffled epoch, ``draws`` independent times.

    ``model`` maps float64 inputs to one logit (``n_classes = 2``, logistic loss) or ``n_classes``
    logits (softmax cross-entropy); ``y`` holds class labels. Targets are smoothed as
    ``(1 − s)·onehot + s/K`` (K = 2 for one logit: ``(1 − s)·y + s/2``) before mixing. ``generator``:
    a numpy Generator or seed (reshuffles, steps, partners and λ all come from it).
    """
    a, b = check_alpha_beta(alpha, beta)
    check_choice(scheme, "scheme", SCHEMES)
    check_choice(last_batch, "last_batch", LAST_BATCH)
    batch_size = check_count(batch_size, "batch_size")
    draws = check_count(draws, "draws", 2)
    s = check_scalar(label_smoothing, "label_smoothing", float, min_val=0, max_val=1)
    rng = check_rng(generator)
    device = next((p.device for p in model.parameters()), torch.device("cpu")) if hasattr(model, "parameters") \
        else torch.device("cpu")
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float64, device=device)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.int64, device=device)
    if n_classes == 2:
        T = (1 - s) * labels.to(torch.float64) + s / 2
    else:
        T = (1 - s) * torch.nn.functional.one_hot(labels, n_classes).to(torch.float64) + s / n_classes
    n = Xt.shape[0]
    bounds = epoch_bounds(n, batch_size, last_batch)
    out = np.empty(draws)
    with torch.no_grad():
        for k in range(draws):
            order = rng.permutation(n)
            b0, b1 = bounds[rng.integers(len(bounds))]
            idx = order[b0:b1]
            m = len(idx)
            if scheme == "uniform":
                partner = rng.integers(0, n, size=m)
            elif scheme == "permutation":
                partner = idx[rng.permutation(m)]
            else:
                partner = idx[::-1].copy()
            lam = rng.beta(a, b, size=m) if scheme == "flip-per-sample" else np.full(m, rng.beta(a, b))
            lx = torch.as_tensor(lam, dtype=torch.float64, device=device).reshape(m, *([1] * (Xt.ndim - 1)))
            lt = torch.as_tensor(lam, dtype=torch.float64, device=device).reshape(m, *([1] * (T.ndim - 1)))
            i, j = torch.as_tensor(idx, device=device), torch.as_tensor(partner, device=device)
            xm = lx * Xt[i] + (1 - lx) * Xt[j]
            tm = lt * T[i] + (1 - lt) * T[j]
            out[k] = float(task_loss(model(xm), tm, n_classes))
    mean = float(out.mean())
    centred = out - mean
    var = float(centred.var(ddof=1))
    fourth = float(np.mean(centred ** 4))
    var_se = math.sqrt(max(fourth - var * var * (draws - 3) / (draws - 1), 0.0) / draws)
    return SimulatedSteps(out, mean, math.sqrt(var / draws), var, var_se)
