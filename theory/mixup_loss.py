"""The exact Mixup loss (THEORY.md §2), its un-mixed form (C1, identity (I)) and sampled estimators.

Exact means: all n² ordered pairs (i = j included) × a Gauss–Jacobi rule over λ, so the only
error is quadrature error. Work is chunked so memory stays below ``chunk_elements`` float64
values per tensor, whatever n is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._problem import Problem, prepare
from ._validate import DTYPE, check_alpha_beta, check_choice, check_count, check_nonnegative
from .mixing import MixupLambda
from .models import is_affine, split_affine_prefix

DEFAULT_NODES = 32
"""Default Gauss–Jacobi nodes: ≤ 1e-8 relative quadrature error for smooth models at the data
scales of the paper's experiments (measured in tests/test_mixup_loss.py). ReLU nets have kinks in λ,
where the error decays only algebraically: use ``mixup_loss_error`` to estimate it."""
CHUNK_ELEMENTS = 1 << 22  # float64 values per intermediate tensor (32 MiB)


def _rule(alpha, beta, nodes, tilde, device):
    q = DEFAULT_NODES if nodes is None else check_count(nodes, "nodes")
    lam, w = MixupLambda(alpha, beta).nodes(q, tilde=tilde)
    return torch.as_tensor(lam, dtype=DTYPE, device=device), torch.as_tensor(w, dtype=DTYPE, device=device)


def _features(P: Problem, shortcut: bool):
    """``(U, rest)`` with ``f = rest ∘ prefix`` and ``U = prefix(X)`` mixed in place of X (THEORY §2)."""
    split = split_affine_prefix(P.model) if shortcut else None
    if split is None:
        return P.X, P.fn
    prefix, rest = split
    with torch.no_grad():
        U = prefix(P.X)
    return U, (lambda Z: rest(Z).reshape(Z.shape[0], -1))


def _pair_blocks(n: int, per_pair: int, chunk_elements: int):
    """Blocks ``(i0, i1, j0, j1)`` of ordered pairs holding at most ``chunk_elements`` values."""
    bj = max(1, min(n, chunk_elements // max(per_pair, 1)))
    bi = max(1, min(n, chunk_elements // max(per_pair * bj, 1)))
    for i0 in range(0, n, bi):
        for j0 in range(0, n, bj):
            yield i0, min(n, i0 + bi), j0, min(n, j0 + bj)


def _label_pair_moments(Y: torch.Tensor, lam: torch.Tensor, w: torch.Tensor, Z: torch.Tensor):
    """Σ_ij E_λ[ỹ_ijᵀ z̃_ij] and Σ_ij E_λ[½‖ỹ_ij‖²] for mixes of rows of Y and Z (closed form in the moments)."""
    n = Y.shape[0]
    same = (w * (lam ** 2 + (1 - lam) ** 2)).sum()
    cross = 2 * (w * lam * (1 - lam)).sum()
    yz = same * n * (Y * Z).sum() + cross * (Y.sum(0) * Z.sum(0)).sum()
    yy = 0.5 * (same * n * (Y * Y).sum() + cross * (Y.sum(0) ** 2).sum())
    return yz, yy


def _linear_pair_sum(P: Problem, z: torch.Tensor, lam, w, chunk_elements: int) -> torch.Tensor:
    """Σ_ij E_λ l for a model affine end-to-end (K = 1): only the n margins are mixed."""
    z = z.reshape(-1)
    n, q = z.shape[0], lam.shape[0]
    zero = torch.zeros((), dtype=DTYPE, device=z.device)
    right = (1 - lam)[:, None] * z[None, :]  # (Q, n)
    bi = max(1, chunk_elements // (q * n))
    total = torch.zeros((), dtype=DTYPE, device=z.device)
    for i0 in range(0, n, bi):
        A = (z[i0:i0 + bi, None] * lam[None, :])[:, :, None] + right[None]  # (B, Q, n)
        if P.loss.name == "logistic":
            torch.logaddexp(A, zero, out=A)
        else:  # squared: h = z²/2
            A.square_().mul_(0.5)
        total = total + (A.sum(-1) @ w).sum()
    yz, yy = _label_pair_moments(P.Y, lam, w, z[:, None])
    total = total - yz
    return total + yy if P.loss.name == "squared" else total


def _generic_pair_sum(P: Problem, U: torch.Tensor, rest, lam, w, chunk_elements: int) -> torch.Tensor:
    n, q = U.shape[0], lam.shape[0]
    shape = U.shape[1:]
    width = max(int(np.prod(shape)), P.K)
    lam_b = lam.reshape(1, 1, q, *([1] * len(shape)))
    total = torch.zeros((), dtype=DTYPE, device=U.device)
    with torch.no_grad():
        for i0, i1, j0, j1 in _pair_blocks(n, q * width * 4, chunk_elements):
            Ui, Uj = U[i0:i1, None, None], U[None, j0:j1, None]
            mixed = Uj + lam_b * (Ui - Uj)  # (Bi, Bj, Q, *shape)
            F = rest(mixed.reshape(-1, *shape)).reshape(i1 - i0, j1 - j0, q, -1)
            lam_y = lam.reshape(1, 1, q, 1)
            Yi, Yj = P.Y[i0:i1, None, None], P.Y[None, j0:j1, None]
            values = P.loss.value(F, Yj + lam_y * (Yi - Yj))  # (Bi, Bj, Q)
            total = total + (values @ w).sum()
    return total


def mixup_loss(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
               shortcut: bool = True, chunk_elements: int = CHUNK_ELEMENTS) -> float:
    """Exact ``L_mix(θ) = (1/n²) Σ_i Σ_j E_{λ~Beta(α,β)} l(θ, (λx_i+(1−λ)x_j, λy_i+(1−λ)y_j))`` (THEORY §2).

    All ordered pairs × ``nodes`` Gauss–Jacobi nodes (default ``DEFAULT_NODES``). With
    ``shortcut`` (default) a leading affine block of a ``Sequential`` (``nn.Linear``/``nn.Conv*``)
    is applied once per sample and its outputs are mixed — exact, since mixing weights sum to 1.
    A model affine end-to-end needs only its n margins. For ``loss="squared"`` this is the mean of
    ``½‖ỹ − f(x̃)‖²`` with mixed labels.
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    P = prepare(model, X, y, loss)
    check_count(chunk_elements, "chunk_elements")
    lam, w = _rule(alpha, beta, nodes, False, P.device)
    if shortcut and P.K == 1 and P.loss.name != "softmax" and is_affine(model):
        total = _linear_pair_sum(P, P.F, lam, w, chunk_elements)
    else:
        U, rest = _features(P, shortcut)
        total = _generic_pair_sum(P, U, rest, lam, w, chunk_elements)
    return float(total) / P.n ** 2


def squared_label_constant(y, alpha, beta=None) -> float:
    """``E_{D_λ}[λ(1−λ)] · (1/n²) Σ_ij ½‖y_i − y_j‖²``: RHS(I) minus L_mix for the squared loss (C1)."""
    a, b = check_alpha_beta(alpha, beta)
    Y = torch.as_tensor(np.asarray(y), dtype=DTYPE).reshape(len(y), -1)
    n = Y.shape[0]
    pair_sq = 2 * n * (Y * Y).sum() - 2 * (Y.sum(0) ** 2).sum()  # Σ_ij ‖y_i − y_j‖²
    return MixupLambda(a, b).mean_lambda_one_minus_lambda() * 0.5 * float(pair_sq) / n ** 2


def mixup_loss_unmixed(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
                       scale: float = 1.0, shortcut: bool = True,
                       chunk_elements: int = CHUNK_ELEMENTS) -> float:
    """RHS of identity (I) along the homotopy (C1, THEORY §3):

    ``L_mix(s) = (1/n) Σ_i E_{λ~D̃_λ} E_{r~D_X} l(θ, (x_i + s(1−λ)(r − x_i), y_i))``.

    At ``scale = s = 1`` this equals ``mixup_loss`` for logistic and softmax losses; for the squared
    loss it exceeds it by ``squared_label_constant(y, α, β)``. At s = 0 it is ``L_std``.
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    s = check_nonnegative(scale, "scale")
    P = prepare(model, X, y, loss)
    lam, w = _rule(alpha, beta, nodes, True, P.device)
    own = 1 - s * (1 - lam)  # weight on x_i after the homotopy
    U, rest = _features(P, shortcut)
    n, q = P.n, lam.shape[0]
    shape = U.shape[1:]
    width = max(int(np.prod(shape)), P.K)
    own_b = own.reshape(1, 1, q, *([1] * len(shape)))
    total = torch.zeros((), dtype=DTYPE, device=P.device)
    with torch.no_grad():
        for i0, i1, j0, j1 in _pair_blocks(n, q * width * 4, chunk_elements):
            Ui, Ur = U[i0:i1, None, None], U[None, j0:j1, None]
            mixed = Ur + own_b * (Ui - Ur)
            F = rest(mixed.reshape(-1, *shape)).reshape(i1 - i0, j1 - j0, q, -1)
            values = P.loss.value(F, P.Y[i0:i1, None, None].expand_as(F))
            total = total + (values @ w).sum()
    return float(total) / n ** 2


def mixup_loss_error(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
                     **kwargs) -> tuple[float, float]:
    """``(L_mix with 2Q nodes, |L(Q) − L(2Q)|)``: an a-posteriori quadrature error estimate.

    For smooth integrands Gauss rules converge geometrically and the Q-vs-2Q difference bounds the
    Q-node error; for ReLU nets (kinks in λ) the error decays algebraically, and the difference is
    an estimate of the Q-node error rather than a bound.
    """
    q = DEFAULT_NODES if nodes is None else check_count(nodes, "nodes")
    coarse = mixup_loss(model, X, y, alpha, beta, loss=loss, nodes=q, **kwargs)
    fine = mixup_loss(model, X, y, alpha, beta, loss=loss, nodes=2 * q, **kwargs)
    return fine, abs(fine - coarse)


@dataclass(frozen=True)
class SampledEstimate:
    """Monte-Carlo estimate of L_mix: mean over ``draws`` passes and its standard error."""

    mean: float
    stderr: float
    draws: int
    scheme: str


SCHEMES = ("permutation", "per_sample", "minibatch")


def mixup_loss_sampled(model, X, y, alpha, beta=None, *, loss: str = "logistic", scheme: str = "permutation",
                       draws: int = 200, batch_size: int | None = None,
                       generator: np.random.Generator | None = None) -> SampledEstimate:
    """The estimators practitioners use (THEORY §2), each pass averaged over the data:

    - ``"permutation"``: one λ per pass, partner = a uniform random permutation of all n points.
      Unbiased: for each i the partner is uniform over 1..n.
    - ``"per_sample"``: each i draws its own λ and a uniform partner j. Unbiased.
    - ``"minibatch"``: data shuffled into batches of ``batch_size``; one λ per batch and a random
      permutation inside it. Biased for batch_size < n: the partner is i itself with probability
      1/batch_size instead of 1/n.
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    check_choice(scheme, "scheme", SCHEMES)
    draws = check_count(draws, "draws", 2)
    P = prepare(model, X, y, loss)
    rng = generator if generator is not None else np.random.default_rng()
    dist = MixupLambda(alpha, beta)
    n = P.n
    if scheme == "minibatch":
        batch_size = check_count(batch_size if batch_size is not None else n, "batch_size")
    passes = []
    with torch.no_grad():
        for _ in range(draws):
            if scheme == "permutation":
                partner, lam = rng.permutation(n), np.full(n, dist.sample(None, rng))
            elif scheme == "per_sample":
                partner, lam = rng.integers(0, n, size=n), dist.sample(n, rng)
            else:
                order = rng.permutation(n)
                partner, lam = np.empty(n, dtype=np.int64), np.empty(n)
                for b0 in range(0, n, batch_size):
                    idx = order[b0:b0 + batch_size]
                    partner[idx] = idx[rng.permutation(len(idx))]
                    lam[idx] = dist.sample(None, rng)
            j = torch.as_tensor(partner, device=P.device)
            lt = torch.as_tensor(lam, dtype=DTYPE, device=P.device)[:, None]
            Xm = lt * P.X + (1 - lt) * P.X[j]
            Ym = lt * P.Y + (1 - lt) * P.Y[j]
            passes.append(float(P.loss.value(P.fn(Xm), Ym).mean()))
    arr = np.asarray(passes)
    return SampledEstimate(float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(draws)), draws, scheme)
