"""Mixing distributions D_λ = Beta(α, β) and its label-weighted twin D̃_λ (THEORY.md §1)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ._validate import check_alpha_beta, check_count, check_nonnegative


@dataclass(frozen=True, init=False)
class MixupLambda:
    """Beta(α, β) mixing weights with closed-form moments and Gauss–Jacobi nodes.

    ``D̃_λ = (α/(α+β))·Beta(α+1, β) + (β/(α+β))·Beta(β+1, α)`` is the size-biased twin that
    appears after un-mixing labels (C1, identity (I)): ``E_{D_λ}[λ g(λ)] = (α/(α+β)) E_{Beta(α+1,β)} g``.
    """

    alpha: float
    beta: float

    def __init__(self, alpha: float, beta: float | None = None):
        a, b = check_alpha_beta(alpha, beta)
        object.__setattr__(self, "alpha", a)
        object.__setattr__(self, "beta", b)

    @property
    def symmetric(self) -> bool:
        return self.alpha == self.beta

    def _components(self) -> tuple[tuple[float, float, float], ...]:
        """(weight, a, b) of the Beta(a, b) components of D̃_λ."""
        a, b = self.alpha, self.beta
        if self.symmetric:
            return ((1.0, a + 1.0, a),)
        return ((a / (a + b), a + 1.0, b), (b / (a + b), b + 1.0, a))

    def m(self, k: float) -> float:
        """``m_k = E_{D̃}[(1−λ)^k]`` in closed form (THEORY §1): a mixture of Beta-function ratios."""
        k = check_nonnegative(k, "k")
        return float(sum(w * math.exp(special.betaln(a, b + k) - special.betaln(a, b))
                         for w, a, b in self._components()))

    def rho2(self) -> float:
        """``ρ₂ = E_{D̃}[((1−λ)/λ)²]`` (C9); ``math.inf`` unless α > 1 and β > 1."""
        if self.alpha <= 1.0 or self.beta <= 1.0:
            return math.inf
        return float(sum(w * math.exp(special.betaln(a - 2.0, b + 2.0) - special.betaln(a, b))
                         for w, a, b in self._components()))

    def mean_lambda_one_minus_lambda(self) -> float:
        """``E_{D_λ}[λ(1−λ)] = αβ/((α+β)(α+β+1))``: the squared loss's θ-free constant (C1)."""
        a, b = self.alpha, self.beta
        return a * b / ((a + b) * (a + b + 1.0))

    def nodes(self, q: int, tilde: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Gauss–Jacobi rule ``(lam, weights)`` for D_λ (or D̃_λ with ``tilde=True``).

        Exact for polynomials of degree ≤ 2q−1 in λ. Weights sum to 1. For D̃ with α ≠ β the two
        components' q-node rules are joined (2q nodes). Nodes come from
        ``scipy.special.roots_jacobi(q, b−1, a−1)`` on [−1, 1], mapped by λ = (1+t)/2.
        """
        q = check_count(q, "q")
        if not tilde:
            return _beta_rule(q, self.alpha, self.beta)
        lams, weights = [], []
        for w, a, b in self._components():
            lam, wt = _beta_rule(q, a, b)
            lams.append(lam)
            weights.append(w * wt)
        return np.concatenate(lams), np.concatenate(weights)

    def sample(self, size, generator: np.random.Generator) -> np.ndarray:
        """Draws from D_λ with an explicit numpy generator."""
        return generator.beta(self.alpha, self.beta, size=size)


def _beta_rule(q: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    t, w = special.roots_jacobi(q, b - 1.0, a - 1.0)
    return (1.0 + t) / 2.0, w / w.sum()
