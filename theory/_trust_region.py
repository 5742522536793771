"""Exact ℓ2 trust-region subproblem, batched: ``max_{‖δ‖₂ ≤ ε} gᵀδ + ½ δᵀHδ`` (docs/theory.md §4).

This is the maximum of the per-sample quadratic model of the loss over the ℓ2 ball (the
second-order adversarial loss) when the input Hessian of the model is not zero (smooth nets) or
the loss curvature has rank > 1 (softmax). Written by hand because scipy has no batched, exact
TRS: scipy's ``trust-exact`` is an optimiser step, not a solver returning certified values.

Method (Moré–Sorensen via an eigen-decomposition). Minimise ``m(δ) = cᵀδ + ½δᵀBδ`` with
``c = −g``, ``B = −H = QΛQᵀ``, ``γ = Qᵀc``. The optimum is ``δ(μ) = −(B + μI)⁻¹c`` with
``μ ≥ μ_lo = max(0, −λ_min)`` and ``‖δ(μ)‖ = ε`` unless ``μ = μ_lo`` works; the *hard case*
(``γ ⟂`` the bottom eigenspace) adds ``τ·q_min`` to reach the sphere. The dual function
``ψ(μ) = −½ Σ γ_j²/(λ_j + μ) − ½ μ ε²`` is a lower bound on ``min m`` for every feasible ``μ``
(weak duality) and equals it at the optimum (strong duality for the TRS), so ``upper = −ψ(μ)``
certifies the returned primal ``value`` (from a feasible δ): ``value ≤ max ≤ upper``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import DTYPE
from ._summary import summary_repr

LOG_BISECTIONS = 10
"""Geometric bisections over t ∈ [2⁻²⁰⁰ t_hi, t_hi]: the bracket shrinks to a factor 2^(200/2¹⁰) < 1.15."""
NEWTON_STEPS = 60


@dataclass(frozen=True)
class TrustRegionResult:
    """``value`` = gᵀδ + ½δᵀHδ at the feasible maximiser ``delta``; ``upper`` = its dual certificate."""

    value: torch.Tensor  # (n,)
    delta: torch.Tensor  # (n, d)
    upper: torch.Tensor  # (n,)

    __repr__ = summary_repr


class QuadraticModels:
    """A batch of quadratic models ``δ ↦ g_iᵀδ + ½δᵀH_iδ``; ``max(eps)`` solves the ℓ2 TRS exactly.

    The eigen-decomposition of ``H`` is done once, so maximising over many radii (a search for ε*)
    costs only the secular-equation bisection per radius.
    """

    def __init__(self, g: torch.Tensor, H: torch.Tensor):
        self.g = g.to(DTYPE)
        self.H = 0.5 * (H + H.transpose(-1, -2)).to(DTYPE)
        lam, self.Q = torch.linalg.eigh(-self.H)  # ascending eigenvalues of B = −H
        self.gam = torch.einsum("nji,nj->ni", self.Q, -self.g)  # γ = Qᵀc, c = −g
        self.mu_lo = (-lam[:, 0]).clamp(min=0.0)
        # shifted eigenvalues s_j = λ_j + μ_lo ≥ 0, exactly zero on the bottom eigenvalue when μ_lo > 0
        self.s = torch.where((self.mu_lo > 0)[:, None], lam - lam[:, :1], lam).clamp(min=0.0)
        self.hmax = self.H.flatten(1).abs().amax(1)

    def max(self, eps) -> TrustRegionResult:
        g, s, gam, mu_lo, Q = self.g, self.s, self.gam, self.mu_lo, self.Q
        n = g.shape[0]
        eps_t = torch.as_tensor(eps, dtype=DTYPE, device=g.device).expand(n).clone()
        if (eps_t < 0).any() or not torch.isfinite(eps_t).all():
            raise ValueError("eps must be finite and >= 0")
        gam2 = gam * gam
        scale = g.norm(dim=1) + self.hmax * eps_t + 1e-300
        zero_gam = gam.abs() <= 1e-14 * scale[:, None]  # components treated as exactly zero

        def norm2(t):  # ‖δ(μ_lo + t)‖², terms with γ_j = 0 dropped
            den = s + t[:, None]
            terms = torch.where(zero_gam, torch.zeros_like(gam2), gam2 / den.clamp(min=1e-300) ** 2)
            return terms.sum(1)

        eps2 = eps_t * eps_t
        singular = (s <= 0) & ~zero_gam
        at_lo = ~singular.any(1) & (norm2(torch.zeros_like(eps_t)) <= eps2)
        # bracket the root of ‖δ(t)‖ = ε on (0, t_hi]: ‖δ(t)‖ ≤ ‖γ‖/t, so t_hi = ‖γ‖/ε works
        hi = gam.norm(dim=1) / eps_t.clamp(min=1e-300) + 1e-300
        lo = hi * 2.0 ** -200
        for _ in range(LOG_BISECTIONS):  # geometric bisection: the root may sit many decades below t_hi
            mid = (lo * hi).sqrt()
            big = norm2(mid) > eps2
            lo, hi = torch.where(big, mid, lo), torch.where(big, hi, mid)
        lo = torch.where(norm2(lo) > eps2, lo, torch.zeros_like(lo))
        # Newton on ψ(t) = 1/‖δ(t)‖ − 1/ε, concave and increasing (Moré–Sorensen): from the left end of
        # the bracket the iterates increase monotonically to the root, quadratically near it
        t = torch.where(lo > 0, lo, 0.5 * hi)
        for _ in range(NEWTON_STEPS):
            den = s + t[:, None]
            inv = torch.where(zero_gam, torch.zeros_like(gam2), gam2 / den.clamp(min=1e-300) ** 2)
            sq = inv.sum(1)
            length = sq.sqrt().clamp(min=1e-300)
            slope = (inv / den.clamp(min=1e-300)).sum(1) / length ** 3
            psi = 1.0 / length - 1.0 / eps_t.clamp(min=1e-300)
            step = torch.where(slope > 0, psi / slope.clamp(min=1e-300), torch.zeros_like(psi))
            nxt = torch.minimum(torch.maximum(t - step, lo), hi)
            done = (nxt - t).abs() <= 4 * torch.finfo(DTYPE).eps * t
            t = nxt
            if bool(done.all()):
                break
        hi = t
        t = torch.where(at_lo | (eps_t == 0), torch.zeros_like(hi), hi)

        den = s + t[:, None]
        coef = torch.where(zero_gam | (den <= 0), torch.zeros_like(gam), -gam / den.clamp(min=1e-300))
        # hard case: fill up to the sphere along the bottom eigenvector (only where μ_lo > 0 and t = 0)
        short = (eps2 - (coef * coef).sum(1)).clamp(min=0.0)
        hard = at_lo & (mu_lo > 0)
        coef[:, 0] = torch.where(hard, coef[:, 0] + short.sqrt(), coef[:, 0])
        delta = torch.einsum("nij,nj->ni", Q, coef)
        norm = delta.norm(dim=1)
        delta = delta * torch.where(norm > eps_t, eps_t / norm.clamp(min=1e-300), torch.ones_like(norm))[:, None]
        value = (g * delta).sum(1) + 0.5 * torch.einsum("ni,nij,nj->n", delta, self.H, delta)
        # dual certificate −ψ(μ) = ½ Σ γ²/(λ+μ) + ½ μ ε², with μ = μ_lo + t
        dual_terms = torch.where(zero_gam, torch.zeros_like(gam2), gam2 / den.clamp(min=1e-300))
        upper = 0.5 * dual_terms.sum(1) + 0.5 * (mu_lo + t) * eps2
        zero = eps_t == 0
        value = torch.where(zero, torch.zeros_like(value), value)
        upper = torch.where(zero, torch.zeros_like(upper), torch.maximum(upper, value))
        return TrustRegionResult(value, delta, upper)


def trust_region_max(g: torch.Tensor, H: torch.Tensor, eps) -> TrustRegionResult:
    """Exact ``max_{‖δ‖₂ ≤ ε} gᵀδ + ½δᵀHδ`` for a batch: ``g`` (n, d), ``H`` (n, d, d), ``eps`` ≥ 0
    (a float or an (n,) tensor). Handles indefinite ``H`` and the hard case."""
    return QuadraticModels(g, H).max(eps)
