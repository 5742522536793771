"""Multi-class (softmax cross-entropy) version of the robustness chain, ℓ2 — derived in
docs/theory.md §4.6 (beyond Zhang et al. 2021; the binary chain is C4/C5, its Theorem 3.1, docs/theory.md §4.3).

Per sample, with ``g_i = J_iᵀ(p_i − y_i)`` (the loss's input gradient), ``A_i = diag p_i − p_i p_iᵀ``
and ``M_i = J_iᵀA_iJ_i``, the second-order adversarial loss is the exact trust-region maximum

    L̃_adv,i(ε) = l_i + max_{‖δ‖₂ ≤ ε} [g_iᵀδ + ½ δᵀM_iδ]   (≤ l_i + ε‖g_i‖ + ½ε²λ_max(M_i)).

Under (A1) centered data, homogeneity (f_i = J_i x_i, zero input Hessian) and
Θ_soft = {(y_i − p_i)ᵀf_i ≥ 0 ∀i} (true for every correctly classified point with one-hot labels):
``R1 = (m_1/n) Σ |g_iᵀx_i|`` and ``R2 ≥ (m_1²/2n) Σ x_iᵀM_ix_i``. The first-order step carries over
with ``g_i`` in place of ``∇f_i``; the second-order one needs the curvature *along x_i* to match the
worst-case curvature ``λ_max(M_i)``, which holds for K = 2 (M_i has rank one, along g_i) but not in
general. The correction factor

    κ_i = min(1, √(x_iᵀM_ix_i / (ρ_i² λ_max(M_i)))),   ρ_i = |g_iᵀx_i| / ‖g_i‖,

makes the chain sound: with ``ε_i = m_1 κ_i ω_i c_x√d`` (``ω_i = |cos(g_i, x_i)|``; the sharper
``m_1 κ_i ρ_i`` also works), ``L̃_mix ≥ (1/n) Σ L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)``, ``ε_mix = min ε_i``.
Without κ the chain can fail (tests/experiments/test_counterexamples.py finds an instance).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq

from ._problem import prepare
from ._validate import check_alpha_beta, check_nonnegative
from ._adversarial import check_norm
from ._expansion import input_jacobians, mixup_expansion
from ._models import is_piecewise_linear
from ._robustness import (A3_RTOL, HOMOGENEOUS_RTOL, RobustnessBound, geq, is_centered, largest_eps,
                          zero_input_hessian)
from ._second_order import quadratic_models, vector_norm
from ._trust_region import QuadraticModels
from ._docs import fill_doc

EPS_STAR_DOUBLINGS = 1100


def _largest_eps(adv_minus_mix, gap: float, slope: float, curvature: float, scale: float) -> float:
    """Largest ε ≥ 0 with ``adv_minus_mix(ε) ≤ 0`` for a nondecreasing function bounded above by
    ``slope·ε + curvature·ε²/2 − gap`` (nan / inf semantics as ε*). The root of that quadratic is a
    point where the function is ≤ 0: the search starts there and doubles (from ``scale`` if that root
    is 0) to bracket the root, then ``brentq``."""
    lo = largest_eps(gap, slope, curvature)
    if not math.isfinite(lo):
        return lo  # nan: gap < 0; inf: no gradient and no positive curvature anywhere
    hi = 2.0 * lo if lo > 0 else scale
    for _ in range(EPS_STAR_DOUBLINGS):
        if adv_minus_mix(hi) > 0:
            break
        lo, hi = hi, 2.0 * hi
        if not math.isfinite(hi):
            return math.inf
    if adv_minus_mix(lo) >= 0:
        return lo
    return float(brentq(adv_minus_mix, lo, hi, xtol=1e-15 * hi, rtol=4 * np.finfo(float).eps))


@fill_doc
def robustness_bound_softmax(model, X, y, alpha, beta=None, *, norm=2, c_x=None) -> RobustnessBound:
    """Softmax chain ``L̃_mix ≥ (1/n) Σ L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)`` on the ℓ2 ball (module docstring).

    Beyond Zhang et al. 2021 (its Theorem 3.1 is the two-class case); docs/theory.md §4.6.

    Fields as ``robustness_bound`` (``in_theta`` means ``(y_i − p_i)ᵀf(x_i) ≥ 0``), plus ``kappa``.
    ``adv_at_*`` use the exact trust-region maximum of the quadratic model (``second_order``).

    Parameters
    ----------
    %(model)s
    %(X)s
    y : array_like, shape (n,) or (n, K)
        Class labels or one-hot rows.
    %(alpha)s
    %(beta)s
    norm : {2}, default 2
        The ℓ2 ball.
    c_x : float, optional
        The constant of (A3); default ``min_i ‖x_i‖/√d``.

    Returns
    -------
    RobustnessBound
        The chain with the per-point curvature factors ``kappa``.

    Raises
    ------
    ValueError
        If an argument is out of range or ``norm`` is not 2.

    See Also
    --------
    robustness_bound : The two-class chain (C4, C5).

    Examples
    --------
    >>> import numpy as np, torch, theory
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # centered
    >>> net = theory.linear_model(2, 3, bias=False, weight=[[2.0, 0.0], [-1.0, 1.5], [-1.0, -1.5]])
    >>> y = net(torch.tensor(X)).argmax(1).numpy()  # labels from the model: (A2)
    >>> b = theory.robustness_bound_softmax(net, X, y, 1.0)
    >>> b.holds, b.kappa.shape
    (True, (4,))
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    if check_norm(norm) != 2:
        raise ValueError("norm must be 2 for robustness_bound_softmax: the ℓ∞ maximum of the softmax quadratic "
                         "model (rank > 1 curvature) has no exact form")
    P = prepare(model, X, y, "softmax")
    expansion = mixup_expansion(model, X, y, alpha, beta, loss="softmax")
    m1 = expansion.m1
    J = input_jacobians(P)
    p = torch.softmax(P.F, 1)
    G = P.loss.residual(P.F, P.Y)  # p − y and diag p − ppᵀ without cancellation
    A = P.loss.stable_hessian(P.F)
    chunks = list(quadratic_models(P, J, G, A))
    g = torch.cat([c[2] for c in chunks])
    H = torch.cat([c[3] for c in chunks])
    models = QuadraticModels(g, H)
    clean = P.loss.value(P.F, P.Y)
    gn = vector_norm(g, 2)
    dot = (g * P.X).sum(1).abs()
    rho = torch.where(gn > 0, dot / torch.where(gn > 0, gn, 1.0), 0.0)
    V = torch.einsum("nkd,nd->nk", J, P.X)  # J_i x_i (= f_i for homogeneous nets)
    xMx = (p * (V - (p * V).sum(1, keepdim=True)) ** 2).sum(1)  # (J x)ᵀA(J x) = Var_p(J x) ≥ 0
    lam = torch.linalg.eigvalsh(0.5 * (H + H.transpose(1, 2)))[:, -1].clamp(min=0.0)
    worst = rho * rho * lam
    kappa = torch.where(worst > xMx, (xMx / torch.where(worst > 0, worst, 1.0)).sqrt(), 1.0)
    xnorm = vector_norm(P.X, 2)
    c_sqrt_d = float(xnorm.min()) if c_x is None else check_nonnegative(c_x, "c_x") * math.sqrt(P.d)
    R = torch.where(xnorm > 0, rho / torch.where(xnorm > 0, xnorm, 1.0), 0.0).clamp(max=1.0)
    eps_i = m1 * kappa * R * c_sqrt_d
    eps_sharp = m1 * kappa * rho
    eps_mix = float(eps_i.min())

    def adv(eps):
        return float((clean + models.max(eps).value).mean())

    approx = expansion.approx
    adv_i, adv_mix, adv_sharp = adv(eps_i), adv(eps_mix), adv(eps_sharp)
    gap = expansion.r1 + expansion.r2 + expansion.r3
    eps_star = _largest_eps(lambda e: adv(e) - approx, gap, float(gn.mean()), float(lam.mean()),
                            max(float(xnorm.max()), 1.0))
    f = P.F
    # (y − p)ᵀf, shifted by the label-weighted logit c = yᵀf (the shift cancels since Σy = Σp = 1):
    # Σ_k y_k (f_k − c) + Σ_k p_k (c − f_k). For one-hot labels the first sum is exactly 0 and every
    # term of the second is ≥ 0 when y is the argmax, so ties cannot round to a negative value.
    c = (P.Y * f).sum(1, keepdim=True)
    in_theta = bool(((P.Y * (f - c)).sum(1) + (p * (c - f)).sum(1) >= 0).all())
    euler = ((f - V).abs() <= HOMOGENEOUS_RTOL * (f.abs() + vector_norm(J, 2) * xnorm[:, None]) + 1e-12).all()
    assumptions = {
        "centered": is_centered(P),
        "in_theta": in_theta,
        "homogeneous": bool(euler) and (is_piecewise_linear(P.model) or zero_input_hessian(P, J)),
        "norm_bound": bool((xnorm >= c_sqrt_d * (1 - A3_RTOL)).all()),
    }
    return RobustnessBound(
        eps_i=eps_i.cpu().numpy(), eps_mix=eps_mix, eps_star=eps_star, mixup_approx=approx, adv_at_eps_i=adv_i,
        adv_at_eps_mix=adv_mix, holds=geq(approx, adv_i) and geq(adv_i, adv_mix), assumptions=assumptions,
        norm=2, m1=m1, c_x=c_sqrt_d / math.sqrt(P.d), eps_sharp=eps_sharp.cpu().numpy(),
        adv_at_eps_sharp=adv_sharp, kappa=kappa.cpu().numpy())
