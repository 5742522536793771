"""Mixing distributions D_λ = Beta(α, β) and its label-weighted twin D̃_λ (docs/theory.md §1)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import linalg, special

from . import _validate
from ._validate import check_alpha_beta, check_count, check_nonnegative

MAX_NODES = _validate.MAX_NODES
"""Largest Gauss–Jacobi rule (the eigenvector step holds a q × q matrix: 8 MiB at the cap). Moments are
accurate to 1e-13 relative up to q = 256 and to 3e-12 (measured, α = 1e-8) up to the cap."""
NODE_PARAMETER_RANGE = _validate.ALPHA_RANGE
"""α, β (and the size-biased components' α + 1, β + 1) for which the rules are verified accurate."""
REFINE_BELOW = 0.25  # nodes refined to full relative accuracy
EIGENVECTOR_WEIGHTS_ABOVE = 1e-4  # weights taken from eigenvectors (else from the Christoffel function)


@dataclass(frozen=True, init=False)
class MixupLambda:
    """Beta(α, β) mixing weights with closed-form moments and Gauss–Jacobi nodes.

    D_λ, D̃_λ, m_k and ρ₂ of Zhang et al. 2021, Lemma 3.1 (C1, C2) and Lemma 4.1 (C9); docs/theory.md §1.

    ``D̃_λ = (α/(α+β))·Beta(α+1, β) + (β/(α+β))·Beta(β+1, α)`` is the size-biased twin that
    appears after un-mixing labels (C1, identity (I)): ``E_{D_λ}[λ g(λ)] = (α/(α+β)) E_{Beta(α+1,β)} g``.

    Parameters
    ----------
    alpha : float
        First Beta parameter, ``alpha > 0`` (within ``[1e-8, 1e6]``).
    beta : float, optional
        Second Beta parameter; ``None`` (default) means ``beta = alpha``.

    Raises
    ------
    ValueError
        If ``alpha`` or ``beta`` is not a finite number in the supported range.

    See Also
    --------
    mixup_loss : Uses the rule of ``nodes`` for the exact Mixup loss.
    mixup_expansion : Uses ``m(1)`` and ``m(2)``.
    glm_regularizer : Uses ``rho2()``.

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
        a, b = check_alpha_beta(alpha, beta, bounded=False)
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
        ``scipy.special.roots_jacobi(q, b−1, a−1)`` mapped by λ = (1+t)/2, computed from
        cancellation-free recurrence coefficients with relatively accurate small nodes (``_beta_rule``;
        docs/theory.md §1). Nodes lie in [0, 1] and the moments E λ^k (k ≤ 2q−1) are accurate to 1e-13
        relative for α, β in ``NODE_PARAMETER_RANGE`` = [1e-8, 1e6] and q ≤ 256 (≤ 3e-12 measured up to
        ``MAX_NODES`` = 1024);
        other α, β or q raise ``ValueError``. Rules are cached (copies are returned).
        """
        q = check_count(q, "q")
        if q > MAX_NODES:
            raise ValueError(f"q must be an integer <= {MAX_NODES} (MAX_NODES), got {q}")
        lo, hi = NODE_PARAMETER_RANGE
        for name, v in (("alpha", self.alpha), ("beta", self.beta)):
            if not lo <= v <= hi:
                raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}] for Gauss–Jacobi nodes (the range where "
                                 f"they are verified accurate to 1e-13), got {v!r}")
        if not tilde:
            return _cached_rule(q, self.alpha, self.beta)
        lams, weights = [], []
        for w, a, b in self._components():
            lam, wt = _cached_rule(q, a, b)
            lams.append(lam)
            weights.append(w * wt)
        return np.concatenate(lams), np.concatenate(weights)

    def sample(self, size, generator: np.random.Generator) -> np.ndarray:
        """Draws from D_λ with an explicit numpy generator."""
        return generator.beta(self.alpha, self.beta, size=size)


def _cached_rule(q: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    lam, w = _beta_rule_cached(q, a, b)
    return lam.copy(), w.copy()


@lru_cache(maxsize=256)
def _beta_rule_cached(q: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    return _beta_rule(q, a, b)


def _beta_rule(q: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule for Beta(a, b) on [0, 1], with nodes and weights to full *relative* accuracy.

    Hand-written because ``scipy.special.roots_jacobi`` and plain Golub–Welsch lose accuracy when a
    or b is small: the textbook recurrence coefficients cancel in ``1 + A``, ``k + A + B``
    (A, B = b − 1, a − 1), and an eigensolver finds a node λ ≈ 1e-10 only to ±1e-16 absolute (at
    a = 1e-8 the old rule had λ = −2.8e-9). Here:

    1. The Jacobi matrix ``J = L Lᵀ`` comes from the continued-fraction coefficients
       ``ζ_k = (1 − p_{k−1}) p_k`` of the Beta law's canonical moments ``p_{2j−1} = (a+j−1)/(a+b+2j−2)``,
       ``p_{2j} = j/(a+b+2j−1)`` — ratios of sums of positive numbers, no cancellation:
       ``α_k = ζ_{2k} + ζ_{2k+1}``, ``β_k = ζ_{2k−1} ζ_{2k}`` (Dette & Studden, *The theory of canonical
       moments*, 1997).
    2. Nodes below ½ come from Beta(a, b), nodes above ½ as 1 − μ from the mirrored law Beta(b, a),
       so both ends are resolved relative to their endpoint. Eigenvalues by LAPACK (values only, O(q)
       memory); those below ¼ are refined by bisection on the differential stationary qd count of
       ``L Lᵀ − σI``, which is relatively accurate.
    3. Weights above 1e-4 are squared first eigenvector components (absolute accuracy ~1e-16, so
       relative ≤ 1e-12 there and much better for the large ones); smaller weights come from the
       Christoffel function ``w = 1/Σ_j p_j(λ)²`` of the same half's recurrence, which keeps tiny
       weights relatively accurate.

    Measured (tests/theory/test_mixing.py): nodes strictly inside (0, 1), moments E λ^k of degree
    ≤ min(2q − 1, 40) within 1e-13 relative of exact rational moments for a, b from 1e-8 to 1e6.
    """
    z_ab, z_ba = _zeta(2 * q, a, b), _zeta(2 * q, b, a)
    lower = int(_count_below(z_ab, q, np.array([0.5]))[0])  # nodes λ < ½
    lam_lo, w_lo = _half_rule(z_ab, q, lower)
    mu_hi, w_hi = _half_rule(z_ba, q, q - lower)  # μ = 1 − λ for the nodes λ ≥ ½
    lam = np.concatenate([lam_lo, (1.0 - mu_hi)[::-1]])
    w = np.concatenate([w_lo, w_hi[::-1]])
    if q > 1:  # large weights: squared eigenvector components are the more accurate there
        alpha = z_ab[0:2 * q:2] + z_ab[1:2 * q:2]
        sqrt_beta = np.sqrt(z_ab[1:2 * q - 1:2] * z_ab[2:2 * q:2])
        _, vecs = linalg.eigh_tridiagonal(alpha, sqrt_beta)
        w_eig = vecs[0] ** 2
        w = np.where(w_eig > EIGENVECTOR_WEIGHTS_ABOVE, w_eig, w)
    if a == b:  # symmetric law: the rule is symmetric under λ ↔ 1 − λ to the last bit
        w = 0.5 * (w + w[::-1])
    return lam, w / w.sum()


def _zeta(m: int, a: float, b: float) -> np.ndarray:
    """``ζ_0 = 0, ζ_1 … ζ_m`` of Beta(a, b) from its canonical moments (cancellation-free)."""
    k = np.arange(1, m + 1, dtype=np.float64)
    j = np.ceil(k / 2)
    odd = (k % 2) == 1
    c = a + b
    p = np.where(odd, (a + (j - 1)) / (c + (2 * j - 2)), j / (c + (2 * j - 1)))
    one_minus_p = np.where(odd, (b + (j - 1)) / (c + (2 * j - 2)), (c + (j - 1)) / (c + (2 * j - 1)))
    z = np.empty(m + 1)
    z[0] = 0.0
    z[1] = p[0]
    z[2:] = one_minus_p[:-1] * p[1:]
    return z


def _half_rule(z: np.ndarray, q: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest nodes of the q-node rule with coefficients ``z`` and their weights."""
    if count == 0:
        return np.empty(0), np.empty(0)
    alpha = z[0:2 * q:2] + z[1:2 * q:2]
    sqrt_beta = np.sqrt(z[1:2 * q - 1:2] * z[2:2 * q:2])
    if q == 1:
        lam = alpha.copy()
    else:
        lam = linalg.eigh_tridiagonal(alpha, sqrt_beta, eigvals_only=True, select="i",
                                      select_range=(0, count - 1), lapack_driver="stebz",
                                      tol=np.finfo(np.float64).tiny)
        lam = np.sort(lam)
        small = np.flatnonzero(lam < REFINE_BELOW)
        if small.size:
            lam[small] = _refine(z, q, small, lam[small])
    return lam, _christoffel_weights(lam, alpha, sqrt_beta)


def _count_below(z: np.ndarray, q: int, sigma: np.ndarray) -> np.ndarray:
    """Number of eigenvalues of J = L Lᵀ below each shift ``sigma`` (differential stationary qd:
    ``s_0 = −σ``, ``d_k = ζ_{2k+1} + s_k``, ``s_k = ζ_{2k} s_{k−1}/d_{k−1} − σ``; negative d_k count)."""
    s = -sigma
    d = z[1] + s
    count = (d < 0).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):  # d = 0 exactly: s = ∓inf, counted as LAPACK does
        for k in range(1, q):
            s = z[2 * k] * s / d - sigma
            d = z[2 * k + 1] + s
            count += d < 0
    return count


def _refine(z: np.ndarray, q: int, index: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Bisection on the relatively accurate qd count until the bracket is 2 ulp wide, starting from the
    narrowest of ±1e-13, ±1e-10, ±1e-6, ±1e-2 relative around LAPACK's estimate that brackets the
    node (else from [0, 1], geometric steps)."""
    eps, tiny = np.finfo(np.float64).eps, np.finfo(np.float64).tiny
    lo, hi = np.zeros_like(guess), np.ones_like(guess)
    todo = np.ones(guess.shape, dtype=bool)
    for width in (1e-13, 1e-10, 1e-6, 1e-2):  # widen only where the node is not bracketed yet
        if not todo.any():
            break
        l, h = np.maximum(guess * (1 - width), 0.0), np.maximum(guess * (1 + width), tiny)
        ok = todo & (_count_below(z, q, l) <= index) & (_count_below(z, q, h) > index)
        lo, hi = np.where(ok, l, lo), np.where(ok, h, hi)
        todo &= ~ok
    for _ in range(1200):
        done = (hi - lo <= 2 * eps * hi) | (hi <= tiny)
        if done.all():
            break
        mid = np.where(lo == 0, hi * 2.0 ** -32, np.where(hi > 4 * lo, np.sqrt(lo * hi), 0.5 * (lo + hi)))
        mid = np.maximum(mid, tiny)
        above = _count_below(z, q, mid) <= index  # the node is ≥ mid
        lo, hi = np.where(~done & above, mid, lo), np.where(~done & ~above, mid, hi)
    return 0.5 * (lo + hi)


def _christoffel_weights(lam: np.ndarray, alpha: np.ndarray, sqrt_beta: np.ndarray) -> np.ndarray:
    """``1/Σ_{j<q} p_j(λ)²`` with orthonormal polynomials p_j (three-term recurrence, rescaled
    whenever they grow past 1e100 so that far-out nodes get tiny weights instead of overflow)."""
    q = alpha.shape[0]
    prev, cur = np.zeros_like(lam), np.ones_like(lam)
    total, log_scale = np.ones_like(lam), np.zeros_like(lam)
    for j in range(q - 1):
        nxt = ((lam - alpha[j]) * cur - (sqrt_beta[j - 1] * prev if j else 0.0)) / sqrt_beta[j]
        prev, cur = cur, nxt
        total += cur * cur
        big = np.abs(cur) > 1e100
        if big.any():
            f = np.where(big, 1e-100, 1.0)
            prev, cur, total = prev * f, cur * f, total * f * f
            log_scale += np.where(big, 2 * math.log(1e100), 0.0)
    return np.exp(-np.log(total) - log_scale)
