"""The re-centred second-order expansion of the Mixup loss (Carratino et al., JMLR 2022; docs/theory.md §3.4).

Fold the mixing weight onto ``θ = max(λ, 1 − λ) ∈ [½, 1]`` (the partner with the larger weight is the
anchor); then ``L_mix = (1/n²) Σ_ij E_θ l(θx_i + (1−θ)x_j, θy_i + (1−θ)y_j)`` exactly. With
``θ̄ = E θ``, ``c_i = x_i − x̄``, ``e_i = y_i − ȳ``, the mixed pair is the shrunk point plus a perturbation
of mean zero:

    θx_i + (1−θ)x_j = x̃_i + δ,  x̃_i = x̄ + θ̄c_i,  δ = (θ − θ̄)c_i + (1 − θ)c_j,
    θy_i + (1−θ)y_j = ỹ_i + ε,  ỹ_i = ȳ + θ̄e_i,  ε = (θ − θ̄)e_i + (1 − θ)e_j.

Expanding ``l`` around ``(x̃_i, ỹ_i)``, the first-order term vanishes and the second-order one needs only
``v = Var θ``, ``w = E(1 − θ)²`` and the data's covariances (see ``carratino_expansion``).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy.special import betainc, betaln, roots_jacobi

from ._problem import Problem
from ._validate import DTYPE
from ._docs import fill_doc


def folded_moments(alpha: float, beta: float) -> tuple[float, float, float]:
    """``(θ̄, Var θ, E(1 − θ)²)`` for ``θ = max(λ, 1 − λ)``, ``λ ~ Beta(α, β)``, in closed form
    (regularised incomplete beta functions): ``E[λ^k; λ ≥ ½]`` and ``E[(1 − λ)^k; λ < ½]``."""
    a, b = alpha, beta
    s = a + b
    up1 = a / s * (1 - betainc(a + 1, b, 0.5))  # E[λ; λ ≥ ½]
    lo1 = b / s * betainc(a, b + 1, 0.5)  # E[1 − λ; λ < ½]
    up2 = a * (a + 1) / (s * (s + 1)) * (1 - betainc(a + 2, b, 0.5))
    lo2 = b * (b + 1) / (s * (s + 1)) * betainc(a, b + 2, 0.5)
    mean, second = up1 + lo1, up2 + lo2
    var = max(second - mean * mean, 0.0)
    return float(mean), float(var), float(1 - 2 * mean + second)


def folded_nodes(alpha: float, beta: float, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [½, 1] for ``E g(θ)``, ``θ = max(λ, 1 − λ)``: density ``p_{α,β}(t) + p_{β,α}(t)``.

    Per component ``t^{a−1}(1 − t)^{b−1}/B(a, b)``: Gauss–Jacobi in ``x`` (``t = (3 + x)/4``) with the
    endpoint factor ``(1 − x)^{b−1}`` in the weight and the smooth ``t^{a−1}`` (t ≥ ½) in the integrand,
    so the rule converges geometrically for smooth g; 2q nodes in all (q for α = β, the components coincide).
    """
    comps = [(alpha, beta)] if alpha == beta else [(alpha, beta), (beta, alpha)]
    nodes, weights = [], []
    for a, b in comps:
        x, w = roots_jacobi(q, b - 1, 0.0)
        t = (3 + x) / 4
        lw = np.log(w) + (a - 1) * np.log(t) - b * math.log(4) - betaln(a, b)
        nodes.append(t)
        weights.append(np.exp(lw) * (2 if alpha == beta else 1))
    return np.concatenate(nodes), np.concatenate(weights)


@dataclasses.dataclass(frozen=True)
class RecentredTerms:
    standard: float
    shrunk: float
    label_smoothing: float
    gauss_newton: float
    cross: float
    label_square: float
    hessian_sum: torch.Tensor
    r3_method: str
    theta_bar: float
    theta_var: float
    theta_m2: float


def recentred_terms(P: Problem, alpha: float, beta: float, r3_terms, r3: str, probes: int, generator) -> RecentredTerms:
    """The terms of the re-centred expansion (docs/theory.md §3.4) for the prepared problem ``P``.

    ``r3_terms(P, G, D, Sigma, ...)`` is the paper form's Σ_i [tr(H_iΣ) + D_iᵀH_iD_i] (Hessian-vector products);
    it is passed in to keep one home for the curvature code.
    """
    tbar, var, w2 = folded_moments(alpha, beta)
    n = P.n
    xbar, ybar = P.X.mean(0), P.Y.mean(0)
    C, E = P.X - xbar, P.Y - ybar
    Xs, Ys = xbar + tbar * C, ybar + tbar * E
    with torch.no_grad():
        Fs = P.fn(Xs)
    Ps = dataclasses.replace(P, X=Xs, F=Fs)
    from ._expansion import input_jacobians  # one home for the Jacobians (imported late: _expansion imports us)

    J = input_jacobians(Ps)  # (n, K, d) at the shrunk points
    G = P.loss.residual(Fs, Ys)  # ∇h(f(x̃_i)) − ỹ_i
    A = P.loss.stable_hessian(Fs)
    Sigma = C.T @ C / n
    Sxy = C.T @ E / n  # (d, K)
    JC = torch.einsum("nkd,nd->nk", J, C)
    JSJ = torch.einsum("nkd,de,nle->nkl", J, Sigma, J)
    gauss_newton = 0.5 * (var * torch.einsum("nk,nkl,nl->n", JC, A, JC) + w2 * (A * JSJ).sum((-1, -2)))
    cross = -(var * (E * JC).sum(-1) + w2 * torch.einsum("nkd,dk->n", J, Sxy))
    label_square = torch.zeros((), dtype=DTYPE, device=P.device)
    if P.loss.name == "squared":  # ∂²l/∂y² = I: ½ E‖ε‖²
        label_square = 0.5 * (var * (E * E).sum(-1) + w2 * (E * E).sum() / n).mean()
    hess, used = r3_terms(Ps, G, math.sqrt(var) * C, w2 * Sigma, r3, probes, generator)
    shrunk = P.loss.value(Fs, P.Y).mean()
    standard = P.loss.value(Fs, Ys).mean()
    return RecentredTerms(float(standard), float(shrunk), float(standard - shrunk), float(gauss_newton.mean()),
                          float(cross.mean()), float(label_square), hess, used, tbar, var, w2)


def recentred_homotopy_losses(P: Problem, alpha: float, beta: float, scale: float, q: int,
                              chunk_elements: int | None = None) -> torch.Tensor:
    """Per-anchor ``(1/n) Σ_j E_θ l(x̃_i + sδ_ij, ỹ_i + sε_ij)`` (rows i), all pairs × the folded rule.

    At ``s = 1`` the mean over i is ``L_mix`` exactly (up to quadrature); at ``s = 0`` it is ERM on the
    shrunk, label-smoothed data. Mixed points ``(1 − s)x̃_i + s(θx_i + (1 − θ)x_j)``.
    """
    from ._mixup_loss import CHUNK_ELEMENTS, _plain_rest  # the first-layer shortcut of docs/theory.md §2

    if chunk_elements is None:
        chunk_elements = CHUNK_ELEMENTS

    tbar = folded_moments(alpha, beta)[0]
    theta, weights = folded_nodes(alpha, beta, q)
    th = torch.as_tensor(theta, dtype=DTYPE, device=P.device)
    wt = torch.as_tensor(weights, dtype=DTYPE, device=P.device)
    # every mixed point is an affine combination (weights summing to 1) of x_i, x_j and x̄, so an affine
    # first layer commutes with the mixing: mix its outputs U instead of the inputs (exact)
    U, rest = _plain_rest(P, True)  # a plain copy of the trailing layers; it may run in place on ``Um`` (ours)
    shape = U.shape[1:]  # the prefix's output shape (rest takes it); mixed as flat rows
    U = U.reshape(P.n, -1)
    ubar, ybar = U.mean(0), P.Y.mean(0)
    Us, Ys = ubar + tbar * (U - ubar), ybar + tbar * (P.Y - ybar)
    n, Q, width = P.n, len(theta), U.shape[1]
    rows = max(1, chunk_elements // max(1, n * Q * width))
    # the mixed point is a_i(θ) + s(1 − θ)·u_j with a_i(θ) = (1 − s)ũ_i + sθu_i: the anchor's part is
    # formed once per (i, θ), so each block costs one fused multiply-add over all (i, j, θ)
    t = th[None, :, None]
    A = (1 - scale) * Us[:, None] + scale * t * U[:, None]  # (n, Q, width)
    B = (1 - scale) * Ys[:, None] + scale * t * P.Y[:, None]  # (n, Q, K)
    c = (scale * (1 - th))[None, None, :, None]
    out = []
    with torch.no_grad():
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            Um = torch.addcmul(A[i0:i1, None], c, U[None, :, None])  # (m, n, Q, width)
            Ym = torch.addcmul(B[i0:i1, None], c, P.Y[None, :, None])
            F = rest(Um.reshape(-1, *shape)).reshape(i1 - i0, n, Q, -1)
            vals = P.loss.value(F, Ym)  # (m, n, Q)
            out.append((vals * wt).sum(-1).mean(-1))
    return torch.cat(out)


RECENTRED_NODES = 32
"""Default nodes per component of the folded rule in ``mixup_loss_recentred``."""


@fill_doc
def mixup_loss_recentred(model, X, y, alpha, beta=None, *, loss: str = "logistic", scale: float = 1.0,
                         nodes: int = RECENTRED_NODES) -> float:
    """The Mixup loss written around the shrunk, re-centred data, along its homotopy (docs/theory.md §3.4):

    ``L_C(s) = (1/n²) Σ_ij E_θ l(x̃_i + s δ_ij, ỹ_i + s ε_ij)``, ``θ = max(λ, 1 − λ)``, ``x̃_i = x̄ + θ̄(x_i − x̄)``.

    At ``scale = 1`` it equals ``theory.mixup_loss`` (every loss, labels mixed); at ``scale = 0`` it is
    ERM on the shrunk, label-smoothed data ``(x̃_i, ỹ_i)``. ``mixup_expansion(..., form="carratino",
    scale=s).approx`` is its second-order expansion in ``s`` (residual ``O(s³)``). All pairs × a
    Gauss–Jacobi rule of ``nodes`` points per component of θ's law (``folded_nodes``), which converges
    geometrically for smooth models (for ReLU nets the kinks limit it to a few digits: raise ``nodes``).

    Parameters
    ----------
    model, X, y, alpha, beta, loss
        As in ``theory.mixup_loss``.
    scale : float
        ``s ≥ 0``, the factor on the perturbation around ``(x̃_i, ỹ_i)``.
    nodes : int
        Quadrature nodes per component (≥ 1).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For invalid arguments (naming the argument).

    See Also
    --------
    mixup_expansion, mixup_loss, mixup_loss_unmixed

    Examples
    --------
    %(example_linear)s
    >>> exact = theory.mixup_loss(model, X, y, 1.0)
    >>> abs(theory.mixup_loss_recentred(model, X, y, 1.0) - exact) < 1e-12  # the same loss, rewritten
    True
    """
    from ._problem import prepare
    from ._validate import check_alpha_beta, check_nodes, check_nonnegative

    alpha, beta = check_alpha_beta(alpha, beta)
    s = check_nonnegative(scale, "scale")
    q = check_nodes(nodes)
    P = prepare(model, X, y, loss)
    return float(recentred_homotopy_losses(P, alpha, beta, s, q).mean())
