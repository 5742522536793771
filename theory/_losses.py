"""Losses linear in the label, ``l = h(f) − yᵀf`` (GLM form, docs/theory.md §0).

Every loss works on logits of shape ``(n, K)`` (``K = 1`` for binary logistic and scalar squared
loss) and labels of the same shape, so the expansion (C2) and the adversarial formulas (§4) use
one code path for binary and multi-class models. ``value`` accepts mixed (fractional) labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ._validate import DTYPE, as_labels, check_choice

LOSSES = ("logistic", "softmax", "squared")
DIRECT_SCALE_EXPONENT = -960
"""``scaled_derivatives`` scales ``σ(−s f)`` directly while ``max w ≥ 2^-960``; samples far below
the largest weight (relative 2^-62) may then round to subnormals, far below its rounding error."""


@dataclass(frozen=True)
class GLMLoss:
    """``h`` with its gradient ``∇h`` and curvature ``vᵀ∇²h v``; ``value = h(f) − yᵀf + c(y)``.

    The GLM-form losses of Zhang et al. 2021; docs/theory.md §0.

    Attributes
    ----------
    name : str
        ``"logistic"``, ``"softmax"`` or ``"squared"``.
    h : callable
        ``h(f)`` for logits ``f`` of shape ``(n, K)``.
    grad_h : callable
        ``∇h(f)``: the sigmoid, the softmax probabilities or ``f`` itself.
    curvature : callable
        ``curvature(f, v) = vᵀ∇²h(f) v`` per row.
    hessian : callable
        ``∇²h(f)`` per row, shape ``(n, K, K)``.

    See Also
    --------
    get_loss : Returns the instance for a loss name.
    """

    name: str
    h: Callable[[torch.Tensor], torch.Tensor]
    grad_h: Callable[[torch.Tensor], torch.Tensor]
    curvature: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    hessian: Callable[[torch.Tensor], torch.Tensor]  # ∇²h as (..., K, K)

    def value(self, F: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """Per-sample loss for logits ``F`` and (possibly mixed) labels ``Y``, both ``(..., K)``.

        Computed as a sum of non-negative terms, never as the difference ``h(f) − yᵀf`` (which
        loses every digit once the loss is below ~1e-16·abs(f)):

        - logistic: ``y·softplus(−f) + (1−y)·softplus(f)``, computed as ``(1−y)f`` (f > 0) or ``−yf``
          (f ≤ 0), plus ``log1p(exp(−|f|))`` (labels in [0, 1], mixed labels included);
        - softmax (label rows summing to 1): ``Σ_c y_c (m − f_c) + log1p(Σ_{k≠a} e^{f_k − m})``,
          ``m = f_a = max_k f_k``;
        - squared: ``½‖y − f‖²``.

        Relative accuracy a few ulps for every finite logit (e.g. ``log1p(e^{−40})`` at margin 40).
        """
        if self.name == "squared":  # ½‖y − f‖² = h(f) − yᵀf + ½‖y‖², summed without cancellation
            R = Y - F
            return 0.5 * (R * R).sum(-1)
        if self.name == "logistic":
            linear = torch.where(F > 0, (1 - Y) * F, -Y * F)
            return (linear + torch.log1p(torch.exp(-F.abs()))).sum(-1)
        m, top = F.max(-1, keepdim=True)
        others = torch.where(torch.arange(F.shape[-1], device=F.device) == top, 0.0, torch.exp(F - m))
        return (Y * (m - F)).sum(-1) + torch.log1p(others.sum(-1))

    def residual(self, F: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """``∇h(f) − y`` without cancellation (the ``G_i`` of C2/C4): logistic ``(1−y)σ(f) − yσ(−f)``;
        softmax ``(1−y_c)p_c − y_c(1 − p_c)`` with ``1 − p_c = σ(logsumexp_{k≠c} f_k − f_c)``; squared ``f − y``."""
        if self.name == "logistic":
            return (1 - Y) * torch.sigmoid(F) - Y * torch.sigmoid(-F)
        if self.name == "softmax":
            p = torch.softmax(F, -1)
            return (1 - Y) * p - Y * softmax_complement(F)
        return F - Y

    def scaled_derivatives(self, F: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(G̃, Ã, k)`` with ``∇h(f_i) − y_i = 2^k G̃_i`` and ``∇²h(f_i) = 2^k Ã_i`` (F, Y of shape (n, K)).

        Logistic with labels in {0, 1}: ``G_i = −s_i w_i`` and ``A_i = w_i σ(s_i f_i)``, ``w_i = σ(−s_i f_i)``
        (``s_i = 2y_i − 1``), share the factor ``w_i``, which underflows past margin ≈ 745. The power
        of two ``2^k ≈ max_i w_i`` is factored out (exactly: ``w_i·2^{−k}`` when ``w`` is a normal
        float, else ``exp(log w_i − k log 2)`` from ``log w_i = −softplus(s_i f_i)``), so ratios of the
        C2/C4 terms (ε*, the chain's slopes and curvatures) stay accurate at any margin. Other
        losses: ``k = 0``.
        """
        if self.name == "logistic" and bool(((Y == 0) | (Y == 1)).all()):
            s = 2 * Y - 1
            log_w = torch.nn.functional.logsigmoid(-s * F)
            k = math.floor(float(log_w.max()) / math.log(2))
            if k >= DIRECT_SCALE_EXPONENT:  # max w is a normal float: scale the 1-ulp σ exactly
                w = torch.sigmoid(-s * F) * 2.0 ** -k
            else:
                w = torch.exp(log_w - k * math.log(2))
            return -s * w, torch.diag_embed(w * torch.sigmoid(s * F)), k
        return self.residual(F, Y), self.stable_hessian(F), 0

    def stable_hessian(self, F: torch.Tensor) -> torch.Tensor:
        """``∇²h`` as (..., K, K), with the softmax diagonal ``p_c(1 − p_c)`` from the complement."""
        if self.name != "softmax":
            return self.hessian(F)
        p = torch.softmax(F, -1)
        off = ~torch.eye(F.shape[-1], dtype=torch.bool, device=F.device)
        return torch.diag_embed(p * softmax_complement(F)) - p[..., :, None] * p[..., None, :] * off

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


def softmax_complement(F: torch.Tensor) -> torch.Tensor:
    """``1 − p_c = Σ_{k≠c} p_k`` for every class c, as ``σ(logsumexp_{k≠c} f_k − f_c)`` (no cancellation
    when ``p_c ≈ 1``)."""
    K = F.shape[-1]
    eye = torch.eye(K, dtype=torch.bool, device=F.device)
    others = torch.logsumexp(torch.where(eye, -math.inf, F[..., None, :]), -1)  # (..., K): lse over k ≠ c
    return torch.sigmoid(others - F)


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

    Parameters
    ----------
    loss : {"logistic", "softmax", "squared"}
        The loss name.

    Returns
    -------
    GLMLoss
        The loss with ``h``, its gradient, curvature, Hessian and ``value(f, y)``.

    Raises
    ------
    ValueError
        If ``loss`` is not one of the three names.

    See Also
    --------
    GLMLoss : The returned record.
    mixup_loss : Takes the same ``loss`` names.

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
