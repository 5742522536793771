"""Second-order adversarial loss: the maximum of the per-sample quadratic model over the ball (docs/theory.md §4).

Per sample, with ``G_i = ∇h(f_i) − y_i``, ``A_i = ∇²h(f_i)``, ``J_i = ∂f/∂x(x_i)``:
``l(x_i + δ) ≈ l_i + g_iᵀδ + ½ δᵀH_iδ``, ``g_i = J_iᵀG_i``, ``H_i = J_iᵀA_iJ_i + Σ_k G_ik ∇²f_ik(x_i)``.

- Binary / scalar output with zero input Hessian (linear models, ReLU nets a.e.): both terms are
  maximised by the same δ, giving ``L̃_adv,i(ε) = l_i + ε|G_i|‖∇f_i‖_q + (ε²/2) A_i ‖∇f_i‖_q²``
  (``q`` the dual norm; ℓ∞ is C13).
- Otherwise, for ℓ2: the exact trust-region maximum (``theory.trust_region``).
- ℓ∞ with a non-zero input Hessian, or with rank > 1 curvature (multi-output), raises: maximising
  a quadratic over a box is NP-hard in general and no exact form exists.
"""
from __future__ import annotations

import math

import torch

from ._problem import Problem
from ._validate import DTYPE
from ._expansion import input_jacobians
from ._models import is_piecewise_linear
from ._trust_region import QuadraticModels

HESSIAN_CHUNK_ELEMENTS = 1 << 22
ZERO_HESSIAN_RTOL = 1e-10
"""An input Hessian counts as zero when every entry is below this times (1 + the largest entry of
the loss-curvature part JᵀAJ): rounding level for float64 autograd of affine/ReLU pieces."""


def dual_norm(norm: float) -> float:
    """``q`` with ``1/p + 1/q = 1``: 2 for ℓ2, 1 for ℓ∞."""
    return 1.0 if norm == math.inf else 2.0


def vector_norm(V: torch.Tensor, norm: float, dim: int = -1) -> torch.Tensor:
    """``‖V‖_p`` along ``dim`` without underflow or overflow (rows scaled by their largest entry,
    as BLAS ``nrm2`` does): ``torch.linalg.vector_norm`` squares entries and returns 0 below ~1e-154."""
    big = V.abs().amax(dim=dim, keepdim=True)
    scaled = V / torch.where(big > 0, big, torch.ones_like(big))
    return big.squeeze(dim) * torch.linalg.vector_norm(scaled, ord=norm, dim=dim)


def weighted_f_hessians(P: Problem, G: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
    """``Σ_k G_ik ∇²f_ik(x_i)`` for rows ``r0:r1`` as (m, d, d), by d forward-over-reverse HVPs."""
    X, Gr = P.X[r0:r1], G[r0:r1]
    m, d = X.shape
    Xr, Grr = X.repeat(d, 1), Gr.repeat(d, 1)
    V = torch.eye(d, dtype=DTYPE, device=P.device).repeat_interleave(m, 0)

    def grad_g(Z):
        return torch.func.vjp(P.fn, Z)[1](Grr)[0]

    _, HV = torch.func.jvp(grad_g, (Xr,), (V,))
    Hf = HV.detach().reshape(d, m, d).permute(1, 0, 2)
    return 0.5 * (Hf + Hf.transpose(1, 2))


def _chunks(P: Problem):
    step = max(1, HESSIAN_CHUNK_ELEMENTS // (P.d * P.d * max(P.K, 1)))
    for r0 in range(0, P.n, step):
        yield r0, min(P.n, r0 + step)


def second_order_losses(P: Problem, eps: float, norm: float) -> torch.Tensor:
    """Per-sample ``l_i + max_{‖δ‖_p ≤ ε} (g_iᵀδ + ½δᵀH_iδ)`` (see module docstring)."""
    J = input_jacobians(P)  # (n, K, d)
    G = P.loss.residual(P.F, P.Y)  # ∇h − y and ∇²h without cancellation at large margins
    A = P.loss.stable_hessian(P.F)
    clean = P.loss.value(P.F, P.Y)
    piecewise = is_piecewise_linear(P.model)
    if P.K == 1 and (piecewise or norm == math.inf):
        if not piecewise:
            for r0, r1 in _chunks(P):
                Hf = weighted_f_hessians(P, G, r0, r1)
                scale = 1.0 + (A[r0:r1, 0, 0, None] * J[r0:r1, 0] ** 2).abs().amax()
                if Hf.abs().amax() > ZERO_HESSIAN_RTOL * scale:
                    raise ValueError("method='second_order' with norm=inf needs a zero input Hessian (linear or "
                                     "piecewise-linear model): the model's input Hessian is non-zero here, and "
                                     "maximising a non-separable quadratic over an ℓ∞ ball has no exact form")
        gq = vector_norm(J[:, 0], dual_norm(norm))
        return clean + eps * G[:, 0].abs() * gq + 0.5 * eps ** 2 * A[:, 0, 0] * gq ** 2
    if norm == math.inf:
        raise ValueError("method='second_order' with norm=inf needs a single-output model (K = 1): with K > 1 "
                         "the quadratic model has rank > 1 curvature, and its maximum over an ℓ∞ ball has no "
                         "exact form; use norm=2, or method='pgd' / 'certified'")
    out = [clean[r0:r1] + QuadraticModels(g, H).max(eps).value for r0, r1, g, H in quadratic_models(P, J, G, A)]
    return torch.cat(out)


def quadratic_models(P: Problem, J: torch.Tensor | None = None, G: torch.Tensor | None = None,
                     A: torch.Tensor | None = None):
    """Yields ``(r0, r1, g, H)`` per row chunk: the gradient ``g_i = J_iᵀG_i`` and Hessian
    ``H_i = J_iᵀA_iJ_i + Σ_k G_ik ∇²f_ik(x_i)`` of δ ↦ l(x_i + δ) at δ = 0 (the f-Hessian term is
    skipped for piecewise-linear models, where it vanishes a.e.)."""
    J = input_jacobians(P) if J is None else J
    G = P.loss.residual(P.F, P.Y) if G is None else G
    A = P.loss.stable_hessian(P.F) if A is None else A
    piecewise = is_piecewise_linear(P.model)
    for r0, r1 in _chunks(P):
        Jc = J[r0:r1]
        H = torch.einsum("nki,nkl,nlj->nij", Jc, A[r0:r1], Jc)
        if not piecewise:
            H = H + weighted_f_hessians(P, G, r0, r1)
        yield r0, r1, torch.einsum("nk,nkd->nd", G[r0:r1], Jc), H
