"""Input checking shared by every theory function: clear ``ValueError``s naming the argument."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

DTYPE = torch.float64


def check_positive(value: Any, name: str) -> float:
    """A finite float > 0, else ``ValueError`` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_nonnegative(value: Any, name: str) -> float:
    """A finite float >= 0, else ``ValueError`` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum``, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_alpha_beta(alpha: Any, beta: Any = None) -> tuple[float, float]:
    """Mixup's Beta(alpha, beta) parameters; ``beta=None`` means ``beta = alpha``."""
    a = check_positive(alpha, "alpha")
    b = a if beta is None else check_positive(beta, "beta")
    return a, b


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for parameter-free callables)."""
    if isinstance(model, torch.nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device("cpu")


def as_matrix(X: Any, name: str = "X", device: torch.device | None = None) -> torch.Tensor:
    """``X`` as a float64 ``(n, d)`` tensor on ``device``; rejects empty, NaN and inf input."""
    try:
        t = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be an array of numbers of shape (n, d): {exc}") from None
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: n = 0 samples (need n >= 1)")
    if t.shape[1] == 0:
        raise ValueError(f"{name} has d = 0 features (need d >= 1)")
    t = t.detach().to(device=device, dtype=DTYPE)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def as_labels(y: Any, n: int, name: str = "y", device: torch.device | None = None) -> torch.Tensor:
    """Labels as a float64 tensor with first dimension ``n``; rejects NaN/inf and bad lengths."""
    try:
        t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be an array of labels: {exc}") from None
    if t.ndim == 0:
        raise ValueError(f"{name} must have shape (n,) or (n, K), got a scalar")
    if t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} labels but X has n = {n} rows (length mismatch)")
    if t.ndim > 2:
        raise ValueError(f"{name} must have shape (n,) or (n, K), got shape {tuple(t.shape)}")
    if t.dtype == torch.bool:
        t = t.to(torch.int64)
    t = t.detach().to(device=device)
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
