"""One validated problem (model, X, y, loss) in float64 on the model's device."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._validate import DTYPE, as_inputs, check_model, model_device
from ._losses import GLMLoss, get_loss
from ._models import as_function, layers_of


@dataclass(frozen=True)
class Problem:
    model: object
    fn: Callable[[torch.Tensor], torch.Tensor]  # float64 X (n, d) -> logits (n, K)
    X: torch.Tensor
    Y: torch.Tensor  # (n, K) float64 labels
    loss: GLMLoss
    F: torch.Tensor  # (n, K) logits at X, detached
    input_eps: float = 0.0  # unit roundoff of the caller's X dtype (0 for integer data: exact)
    shape: tuple | None = None  # per-sample shape of the caller's X (X itself holds flattened rows)

    @property
    def inputs(self) -> torch.Tensor:
        """``X`` in the caller's shape ``(n, …)``: what the model (and its affine prefix) takes."""
        return self.X if self.shape is None else self.X.reshape(self.n, *self.shape)

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
    """Validate inputs and evaluate the logits once (the common first step of every formula).

    ``X`` may have any shape ``(n, …)`` the model accepts (images, sequences): ``Problem.X`` holds its
    rows flattened to ``(n, d)`` — every formula works on vectors, norms are over the flattened input
    — and ``Problem.fn`` reshapes rows back before calling the model. A model that rejects X's shape
    is a ``ValueError`` naming X and the shape the model's first layer expects.
    """
    lossobj = get_loss(loss)
    fn, Xt, shape, F = evaluate(model, X)
    lossobj.check_outputs(F.shape[1])
    Y = lossobj.labels(y, Xt.shape[0], F.shape[1], Xt.device)
    return Problem(model, lambda Z: logits(fn, Z), Xt, Y, lossobj, F, input_eps(X), shape)


def evaluate(model, X):
    """``(fn, X, shape, F)``: the checked model as a float64 function of flattened rows, ``X`` as float64
    ``(n, d)`` rows on the model's device, its per-sample shape and the finite logits ``F`` (n, K) at X.

    Every check of a model and its inputs happens here, before any work: the model (type, parameters
    finite, real, off the meta device), X (``as_inputs``), X's shape against the model's first layer, and
    finite outputs."""
    check_model(model)
    base = as_function(model)
    Xt, shape = as_inputs(X, "X", model_device(model))

    def fn(Z):
        return base(Z.reshape(Z.shape[0], *shape))

    with torch.no_grad():
        try:
            F = logits(fn, Xt)
        except (RuntimeError, TypeError, IndexError) as exc:
            raise ValueError(f"X of shape {(Xt.shape[0], *shape)} does not fit the model: "
                             f"{expected_input(model)} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                             ) from None
    if not torch.isfinite(F).all():
        raise ValueError("model output contains NaN or inf at X (model or X too large for float64)")
    return fn, Xt, shape, F


def expected_input(model) -> str:
    """What the model's first layer takes, in words, for error messages."""
    layers = layers_of(model)
    first = next((m for m in layers or [] if not isinstance(m, (nn.Identity, nn.Dropout))), None)
    if isinstance(first, nn.Linear):
        return f"its first layer nn.Linear({first.in_features}, …) expects X of shape (n, {first.in_features})"
    if isinstance(first, nn.Flatten):
        nxt = next((m for m in layers[1:] if isinstance(m, nn.Linear)), None)
        if nxt is not None:
            return f"it flattens X and then expects {nxt.in_features} features per sample"
    for conv, dims in ((nn.Conv1d, "(n, {}, L)"), (nn.Conv2d, "(n, {}, H, W)"), (nn.Conv3d, "(n, {}, D, H, W)")):
        if isinstance(first, conv):
            return f"its first layer {conv.__name__} expects X of shape " + dims.format(first.in_channels)
    return "X must have a shape (n, …) the model accepts"


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
