"""Mixing distributions D_λ = Beta(α, β) and its label-weighted twin D̃_λ (docs/theory.md §1)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, special

from ._validate import check_alpha_beta, check_count, check_nonnegative


@dataclass(frozen=True, init=False)
class MixupLambda:
    """Beta(α, β) mixing weights with closed-form moments and Gauss–Jacobi nodes.

    D_λ, D̃_λ, m_k and ρ₂ of Zhang et al. 2021, Lemma 3.1 (C1, C2) and Section 4 (C9); docs/theory.md §1.

    ``D̃_λ = (α/(α+β))·Beta(α+1, β) + (β/(α+β))·Beta(β+1, α)`` is the size-biased twin that
    appears after un-mixing labels (C1, identity (I)): ``E_{D_λ}[λ g(λ)] = (α/(α+β)) E_{Beta(α+1,β)} g``.

    Examples
    --------
    >>> from theory import MixupLambda
    >>> lam = MixupLambda(1.0)  # Beta(1, 1): λ uniform on [0, 1]
    >>> round(lam.m(1), 12), round(lam.m(2), 12)  # E_D̃[1 − λ], E_D̃[(1 − λ)²]
    (0.333333333333, 0.166666666667)
    >>> round(MixupLambda(2.0).rho2(), 12), MixupLambda(1.0).rho2()  # ρ₂ < ∞ only for α, β > 1
    (3.0, inf)
    >>> nodes, weights = lam.nodes(3)
    >>> nodes.round(4).tolist(), round(float(weights.sum()), 12)
    ([0.1127, 0.5, 0.8873], 1.0)
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
        """``m_k = E_{D̃}[(1−λ)^k]`` in closed form (docs/theory.md §1): a mixture of Beta-function ratios."""
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
        components' q-node rules are joined (2q nodes). The rule is the Gauss–Jacobi rule of
        ``scipy.special.roots_jacobi(q, b−1, a−1)`` mapped by λ = (1+t)/2, computed by Golub–Welsch
        (see ``_beta_rule`` for why not by ``roots_jacobi`` itself).
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
    """Gauss rule for Beta(a, b) on [0, 1] by Golub–Welsch: eigenvalues of the Jacobi matrix of the
    Jacobi polynomials ``P^(b−1, a−1)`` (closed-form three-term recurrence), weights = squared first
    eigenvector components.

    Written by hand because ``scipy.special.roots_jacobi`` loses accuracy when a parameter is near
    −1 (a or b small): with (a, b) = (0.05, 20) its rule misses low moments by 6e-11 at q = 32 and by
    7e-6 at q = 2048, and with a = b = 0.2 by 1e-8 at q = 2048. This route keeps every moment of
    degree ≤ 2q−1 to ~1e-13 relative for a, b ∈ [0.05, 20] and q ≤ 2048 (tests/test_mixing.py).
    """
    A, B = b - 1.0, a - 1.0  # Jacobi weight (1−t)^A (1+t)^B, t = 2λ − 1
    k = np.arange(q, dtype=np.float64)
    s = 2.0 * k + A + B
    diag = np.empty(q)
    diag[0] = (B - A) / (A + B + 2.0)
    diag[1:] = (B * B - A * A) / (s[1:] * (s[1:] + 2.0))
    k1 = k[1:]
    s1 = s[1:]
    off2 = np.empty(q - 1)
    if q > 1:
        off2[0] = 4.0 * (1.0 + A) * (1.0 + B) / ((2.0 + A + B) ** 2 * (3.0 + A + B))
        off2[1:] = (4.0 * k1[1:] * (k1[1:] + A) * (k1[1:] + B) * (k1[1:] + A + B)
                    / (s1[1:] ** 2 * (s1[1:] + 1.0) * (s1[1:] - 1.0)))
    # Jacobi matrix of Beta(a, b) in λ = (1 + t)/2: J_λ = (J_t + I)/2
    lam, vecs = linalg.eigh_tridiagonal(0.5 * (diag + 1.0), 0.5 * np.sqrt(off2))
    w = vecs[0] ** 2
    if a == b:  # symmetric law: make the rule symmetric under λ ↔ 1 − λ to the last bit
        lam = 0.5 * (lam + (1.0 - lam[::-1]))
        w = 0.5 * (w + w[::-1])
    return lam, w / w.sum()
