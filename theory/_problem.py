"""One validated problem (model, X, y, loss) in float64 on the model's device."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ._validate import DTYPE, as_matrix, model_device
from ._losses import GLMLoss, get_loss
from ._models import as_function


@dataclass(frozen=True)
class Problem:
    model: object
    fn: Callable[[torch.Tensor], torch.Tensor]  # float64 X (n, d) -> logits (n, K)
    X: torch.Tensor
    Y: torch.Tensor  # (n, K) float64 labels
    loss: GLMLoss
    F: torch.Tensor  # (n, K) logits at X, detached
    input_eps: float = 0.0  # unit roundoff of the caller's X dtype (0 for integer data: exact)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def K(self) -> int:
        return self.F.shape[1]

    @property
    def device(self) -> torch.device:
        return self.X.device


def logits(fn: Callable, X: torch.Tensor) -> torch.Tensor:
    """``fn(X)`` reshaped to ``(n, K)``; a wrong output shape is a ``ValueError`` naming ``model``."""
    out = fn(X)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"model must return a tensor, got {type(out).__name__}")
    if not out.is_floating_point():
        raise ValueError(f"model must return floating-point logits, got dtype {out.dtype}")
    out = out.to(DTYPE)  # a plain callable may compute in float32; everything downstream is float64
    n = X.shape[0]
    if out.ndim == 1 and out.shape[0] == n:
        return out.reshape(n, 1)
    if out.ndim == 2 and out.shape[0] == n and out.shape[1] >= 1:
        return out
    raise ValueError(f"model output must have shape (n,) or (n, K) with n = {n}, got {tuple(out.shape)}")


def prepare(model, X, y, loss: str = "logistic") -> Problem:
    """Validate inputs and evaluate the logits once (the common first step of every formula)."""
    lossobj = get_loss(loss)
    fn = as_function(model)
    Xt = as_matrix(X, "X", model_device(model))
    with torch.no_grad():
        F = logits(fn, Xt)
    lossobj.check_outputs(F.shape[1])
    Y = lossobj.labels(y, Xt.shape[0], F.shape[1], Xt.device)
    if not torch.isfinite(F).all():
        raise ValueError("model output contains NaN or inf at X")
    return Problem(model, lambda Z: logits(fn, Z), Xt, Y, lossobj, F, input_eps(X))


def input_eps(X) -> float:
    """Machine epsilon of the caller's dtype of ``X`` (float16/32/64, bfloat16); 0 for integers.

    ``X`` is computed with in float64, but how precisely it can be centered is set by the dtype it
    came in (float32-centered data has a residual mean of order ``n · 1.2e-7 · max|X|``)."""
    dtype = X.dtype if isinstance(X, torch.Tensor) else getattr(X, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps) if dtype.is_floating_point else 0.0
    try:
        dtype = np.asarray(X).dtype if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        return float(np.finfo(np.float64).eps)
    return float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 0.0
