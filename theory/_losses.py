"""Losses linear in the label, ``l = h(f) − yᵀf`` (GLM form, docs/theory.md §0).

Every loss works on logits of shape ``(n, K)`` (``K = 1`` for binary logistic and scalar squared
loss) and labels of the same shape, so the expansion (C2) and the adversarial formulas (§4) use
one code path for binary and multi-class models. ``value`` accepts mixed (fractional) labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ._validate import DTYPE, as_labels, check_choice

LOSSES = ("logistic", "softmax", "squared")


@dataclass(frozen=True)
class GLMLoss:
    """``h`` with its gradient ``∇h`` and curvature ``vᵀ∇²h v``; ``value = h(f) − yᵀf + c(y)``.

    The GLM-form losses of Zhang et al. 2021; docs/theory.md §0.
    """

    name: str
    h: Callable[[torch.Tensor], torch.Tensor]
    grad_h: Callable[[torch.Tensor], torch.Tensor]
    curvature: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    hessian: Callable[[torch.Tensor], torch.Tensor]  # ∇²h as (..., K, K)

    def value(self, F: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """Per-sample loss for logits ``F`` and (possibly mixed) labels ``Y``, both ``(..., K)``."""
        if self.name == "squared":  # ½‖y − f‖² = h(f) − yᵀf + ½‖y‖², summed without cancellation
            R = Y - F
            return 0.5 * (R * R).sum(-1)
        return self.h(F) - (Y * F).sum(-1)

    def labels(self, y, n: int, K: int, device=None) -> torch.Tensor:
        """Validated labels as a float64 ``(n, K)`` tensor matching logits with ``K`` columns."""
        kind = {"logistic": "binary", "softmax": "classes", "squared": "targets"}[self.name]
        t = as_labels(y, n, "y", device, kind=kind)
        if self.name == "logistic":
            if t.ndim == 2 and t.shape[1] != 1:
                raise ValueError(f"y for loss='logistic' must have shape (n,), got {tuple(t.shape)}")
            t = t.reshape(n, 1).to(DTYPE)
            if not ((t == 0) | (t == 1)).all():
                raise ValueError("y for loss='logistic' must hold labels in {0, 1}")
            return t
        if self.name == "softmax":
            if t.ndim == 1:
                if t.is_floating_point() and not (t == t.round()).all():
                    raise ValueError("y for loss='softmax' must be integer class labels or (n, K) probabilities")
                t = t.to(torch.int64)
                if (t < 0).any() or (t >= K).any():
                    raise ValueError(f"y for loss='softmax' must hold class labels in 0..{K - 1} (model has K = {K} outputs)")
                return torch.nn.functional.one_hot(t, K).to(DTYPE)
            if t.shape[1] != K:
                raise ValueError(f"y has {t.shape[1]} columns but the model has K = {K} outputs")
            t = t.to(DTYPE)
            if (t < 0).any() or not torch.allclose(t.sum(1), torch.ones(n, dtype=DTYPE, device=t.device), atol=1e-9):
                raise ValueError("y for loss='softmax' given as (n, K) must hold probability rows (>= 0, summing to 1)")
            return t
        t = t.to(DTYPE).reshape(n, -1)
        if t.shape[1] != K:
            raise ValueError(f"y has {t.shape[1]} columns but the model has K = {K} outputs")
        return t

    def check_outputs(self, K: int) -> None:
        if self.name == "logistic" and K != 1:
            raise ValueError(f"loss='logistic' needs a model output of shape (n,) or (n, 1), got K = {K} columns")
        if self.name == "softmax" and K < 2:
            raise ValueError("loss='softmax' needs a model output of shape (n, K) with K >= 2")


def _softplus(F: torch.Tensor) -> torch.Tensor:
    # logaddexp(f, 0) is exact to rounding for all f; F.softplus switches to f past a threshold
    # and is off by up to 2e-9 there, too much for the 1e-10 identity checks (C1).
    return torch.logaddexp(F, torch.zeros((), dtype=F.dtype, device=F.device)).sum(-1)


def _diag(v: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(v)


def _softmax_hessian(F):
    p = torch.softmax(F, -1)
    return torch.diag_embed(p) - p[..., :, None] * p[..., None, :]


def _softmax_curvature(F, V):
    p = torch.softmax(F, -1)
    pv = (p * V).sum(-1)
    return (p * V * V).sum(-1) - pv * pv


_REGISTRY = {
    "logistic": GLMLoss("logistic", _softplus, torch.sigmoid,
                        lambda F, V: (torch.sigmoid(F) * torch.sigmoid(-F) * V * V).sum(-1),
                        lambda F: _diag(torch.sigmoid(F) * torch.sigmoid(-F))),
    "softmax": GLMLoss("softmax", lambda F: torch.logsumexp(F, -1), lambda F: torch.softmax(F, -1),
                       _softmax_curvature, _softmax_hessian),
    "squared": GLMLoss("squared", lambda F: 0.5 * (F * F).sum(-1), lambda F: F,
                       lambda F, V: (V * V).sum(-1), lambda F: _diag(torch.ones_like(F))),
}


def get_loss(loss: str) -> GLMLoss:
    """The GLM loss named ``loss`` (one of ``"logistic"``, ``"softmax"``, ``"squared"``).

    The GLM-form losses of Zhang et al. 2021; docs/theory.md §0.

    Examples
    --------
    >>> import torch, theory
    >>> loss = theory.get_loss("logistic")
    >>> f, y = torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    >>> round(float(loss.value(f, y)[0]), 12)  # softplus(−f) at f = 0 is log 2
    0.69314718056
    """
    check_choice(loss, "loss", LOSSES)
    return _REGISTRY[loss]
