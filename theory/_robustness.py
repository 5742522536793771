"""Mixup as adversarial training: the robustness chain of C4 (logistic regression, ℓ2), C5 (ReLU nets)
and C13 (ℓ∞), its assumptions (C6) and the exact comparison (C7) — Zhang et al. 2021, Theorem 3.1 and its ReLU-network
counterpart, Theorem 3.3; docs/theory.md §4.

The chain ``L̃_mix ≥ (1/n) Σ_i L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)`` with

- ``L̃_mix = L_std + R1 + R2 + R3`` (``theory.mixup_expansion``),
- ``L̃_adv,i(ε) = l_i + ε|σ_i − y_i| ‖∇f_i‖_q + (ε²/2) σ_i(1−σ_i) ‖∇f_i‖_q²`` (``q`` dual to ``p``),
- ℓ2: ``ε_i = m_1 ω_i c_x √d``, ``ω_i = |cos(∇f_i, x_i)|`` (the paper's R_i), ``ε_mix = min_i ε_i = m_1 ω c_x √d``
  (default ``c_x √d = min_i ‖x_i‖``, the largest value (A3) allows),
- ℓ∞ (C13): ``ε_i = m_1 |∇f_iᵀx_i| / ‖∇f_i‖₁``, ``ε_mix = min_i ε_i``.

Proof sketch (docs/theory.md §4.3): under (A1) centered data, R1 = (m_1/n) Σ (y_i − σ_i)∇f_iᵀx_i; with
homogeneity ``f_i = ∇f_iᵀx_i`` and (A2) ``s_i f_i ≥ 0`` each summand is ``ε^sharp_i |σ_i − y_i| ‖∇f_i‖_q``
with ``ε^sharp_i = m_1 |∇f_iᵀx_i| / ‖∇f_i‖_q ≥ ε_i`` (x_i's distance to the linearised boundary, times
m_1); R2 ≥ (m_1²/2n) Σ σ_i(1−σ_i)(∇f_iᵀx_i)² by Jensen (m_2 ≥ m_1²); R3 = 0 when ∇²f_i = 0.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ._problem import Problem, prepare
from ._validate import ArgumentTypeError, DTYPE, check_alpha_beta, check_choice, check_nodes, check_nonnegative
from ._summary import summary_repr
from ._adversarial import PGD_OPTIONS, adversarial_loss, check_norm
from ._expansion import input_jacobians, mixup_expansion
from ._mixup_loss import mixup_loss
from ._attacks import check_pgd_options
from ._certify import CERTIFY_METHODS, Unsupported, relu_ops
from ._models import is_affine, is_piecewise_linear
from ._second_order import dual_norm, vector_norm
from ._warnings import AssumptionWarning
from ._docs import fill_doc

CHAIN_ATOL = 1e-12
CHAIN_RTOL = 1e-9
"""``holds``: each inequality ``lhs ≥ rhs − CHAIN_ATOL − CHAIN_RTOL·|rhs|``."""
CENTER_RTOL = 1e-9
"""``centered``: ``‖x̄‖_∞ ≤ max(CENTER_RTOL, n·u) · max_ij |X_ij|`` with ``u`` the machine epsilon of
the dtype ``X`` came in (``is_centered``)."""
HOMOGENEOUS_RTOL = 1e-9
"""``homogeneous``: ``|f_i − ∇f_iᵀx_i| ≤ HOMOGENEOUS_RTOL (|f_i| + ‖∇f_i‖‖x_i‖) + 1e-12`` and every
probed ``‖∇²f_i v‖ ≤ HOMOGENEOUS_RTOL (1 + ‖∇f_i‖)‖v‖``."""
HESSIAN_PROBES = 2
A3_RTOL = 1e-12


@dataclass(frozen=True)
class RobustnessBound:
    """The C4/C5/C13 chain ``mixup_approx ≥ adv_at_eps_i ≥ adv_at_eps_mix`` and its inputs (docs/theory.md §4.3).

    Attributes
    ----------
    eps_i : numpy.ndarray, shape (n,)
        Per-point radii ``ε_i``.
    eps_mix : float
        ``ε_mix = min_i ε_i``.
    eps_star : float
        Largest ε with ``L̃_mix ≥ L̃_adv(ε)`` (``inf`` if every ε, ``nan`` if none).
    mixup_approx : float
        ``L̃_mix``.
    adv_at_eps_i : float
        ``(1/n) Σ_i L̃_adv,i(ε_i)``.
    adv_at_eps_mix : float
        ``L̃_adv(ε_mix)``.
    holds : bool
        Whether both inequalities hold (within ``1e-12 + 1e-9·|rhs|``).
    assumptions : dict of str to bool
        ``centered`` (A1), ``in_theta`` (A2), ``homogeneous``, ``norm_bound`` (A3).
    norm : float
        2 or ``math.inf``.
    m1 : float
        ``E_{D̃}[1−λ]``.
    c_x : float or None
        The constant of (A3) used (ℓ2).
    eps_sharp : numpy.ndarray
        The sharper radii ``m_1 · dist_i``.
    adv_at_eps_sharp : float
        ``(1/n) Σ_i L̃_adv,i(ε^sharp_i)``.
    kappa : numpy.ndarray or None
        The softmax curvature factors (``robustness_bound_softmax``).

    See Also
    --------
    robustness_bound, robustness_bound_softmax : Return this record.
    """

    eps_i: np.ndarray
    eps_mix: float
    eps_star: float
    mixup_approx: float
    adv_at_eps_i: float
    adv_at_eps_mix: float
    holds: bool
    assumptions: dict
    norm: float = 2
    m1: float = float("nan")
    c_x: float | None = None
    eps_sharp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """``m_1 |∇f_iᵀx_i| / ‖∇f_i‖_q``: the sharper per-point radius the proof allows (``≥ eps_i``)."""
    adv_at_eps_sharp: float = float("nan")
    kappa: np.ndarray | None = None
    """Softmax chain only: the curvature-alignment factor κ_i ≤ 1 (docs/theory.md §4.6)."""

    __repr__ = summary_repr


def geq(lhs: float, rhs: float) -> bool:
    """``lhs ≥ rhs − CHAIN_ATOL − CHAIN_RTOL·|rhs|``."""
    return bool(lhs >= rhs - CHAIN_ATOL - CHAIN_RTOL * abs(rhs))


def second_order_adv(clean, slope, curvature, eps):
    """``L̃_adv,i(ε) = l_i + ε·slope_i + (ε²/2)·curvature_i`` with ``slope = |h' − y|‖∇f‖_q``,
    ``curvature = h''‖∇f‖_q²`` (docs/theory.md §4.1); ``eps`` a scalar or per-sample."""
    return clean + eps * slope + 0.5 * eps * eps * curvature


def largest_eps(gap: float, slope: float, curvature: float) -> float:
    """``ε*``: the largest ε ≥ 0 with ``gap ≥ slope·ε + curvature·ε²/2`` (slope, curvature ≥ 0).

    ``math.nan`` if ``gap < 0`` (no ε qualifies), ``math.inf`` if the right side is identically 0.
    The root of the quadratic is taken in the cancellation-free form ``2·gap / (a + √(a² + 2b·gap))``.
    """
    if gap < 0:
        return math.nan
    if slope <= 0 and curvature <= 0:
        return math.inf
    denominator = slope + math.sqrt(slope * slope + 2.0 * curvature * gap)
    return 2.0 * gap / denominator if denominator > 0 else 0.0  # gap = slope = 0 < curvature: only ε = 0


def is_centered(P: Problem) -> bool:
    """(A1) up to rounding: ``‖x̄‖_∞ ≤ max(CENTER_RTOL, n·u)·max|X|``, ``u`` the input dtype's epsilon.

    Data centered in a floating-point type with unit roundoff ``u`` keeps a residual mean of up to
    about ``n·u·max|X|`` (the error bound of recursive summation), e.g. ≈ 2e-6 for float32 data;
    such data counts as centered. For float64 input ``CENTER_RTOL`` dominates up to n ≈ 4.5e6.
    """
    tol = max(CENTER_RTOL, P.n * P.input_eps) * float(P.X.abs().max())
    return bool(P.X.mean(0).abs().max() <= tol)


def _unscale(T: torch.Tensor, k: int) -> torch.Tensor:
    """``2^k · T`` (k ≤ 0) in two exact power-of-two factors, so 2^k itself never underflows."""
    return T * 2.0 ** (k // 2) * 2.0 ** (k - k // 2)


def zero_input_hessian(P: Problem, J: torch.Tensor, probes: int = HESSIAN_PROBES) -> bool:
    """Numerical check that ``∇²f_k(x_i) = 0`` for every output k and sample i: Hessian–vector
    products (forward-over-reverse) along fixed pseudo-random directions."""
    gen = torch.Generator().manual_seed(12345)
    for k in range(P.K):
        weight = torch.zeros(P.n, P.K, dtype=DTYPE, device=P.device)
        weight[:, k] = 1.0
        for _ in range(probes):
            V = torch.randn(P.n, P.d, generator=gen, dtype=DTYPE).to(P.device)

            def grad_k(Z):
                return torch.func.vjp(P.fn, Z)[1](weight)[0]

            _, HV = torch.func.jvp(grad_k, (P.X,), (V,))
            bound = HOMOGENEOUS_RTOL * (1 + J[:, k].norm(dim=1)) * V.norm(dim=1)
            if not bool((HV.detach().norm(dim=1) <= bound).all()):
                return False
    return True


def check_assumptions(P: Problem, J: torch.Tensor, c_sqrt_d: float | None) -> dict:
    """(A1) ``centered``, (A2) ``in_theta`` (``(2y_i − 1) f(x_i) ≥ 0``), ``homogeneous``
    (``f(x_i) = ∇f_iᵀx_i`` and zero input Hessian) and (A3) ``norm_bound`` (``‖x_i‖ ≥ c_x√d``; always
    true for ℓ∞, which needs no c_x)."""
    X = P.X
    centered = is_centered(P)
    f = P.F[:, 0]
    in_theta = bool(((2 * P.Y[:, 0] - 1) * f >= 0).all())
    dot = (J[:, 0] * X).sum(1)
    euler = (f - dot).abs() <= HOMOGENEOUS_RTOL * (f.abs() + vector_norm(J[:, 0], 2) * vector_norm(X, 2)) + 1e-12
    # piecewise-linear Sequentials have a zero input Hessian a.e. by construction (autograd agrees)
    homogeneous = bool(euler.all()) and (is_piecewise_linear(P.model) or zero_input_hessian(P, J))
    norm_bound = True if c_sqrt_d is None else bool((vector_norm(X, 2) >= c_sqrt_d * (1 - A3_RTOL)).all())
    return {"centered": centered, "in_theta": in_theta, "homogeneous": homogeneous, "norm_bound": norm_bound}


@fill_doc
def robustness_bound(model, X, y, alpha, beta=None, *, loss: str = "logistic", norm=2,
                     c_x=None) -> RobustnessBound:
    """C4 (ℓ2, logistic regression), C5 (ReLU nets, ∇f_i in place of θ), C13 (ℓ∞).

    Zhang et al. 2021, Theorem 3.1 (C4) and Lemma 3.2 and Theorem 3.3 (C5); C13 is our
    ℓ∞ extension. docs/theory.md §4.3–§4.5.

    Returns the chain ``mixup_approx = L̃_mix ≥ adv_at_eps_i = (1/n) Σ L̃_adv,i(ε_i) ≥ adv_at_eps_mix
    = L̃_adv(ε_mix)``, ``holds`` (each within ``1e-12 + 1e-9|rhs|``, computed whatever the
    assumptions), ``eps_star`` (largest ε with ``L̃_mix ≥ L̃_adv(ε)``; inf if all, nan if none) and
    the ``assumptions`` flags. ``c_x`` (ℓ2 only; default ``min_i ‖x_i‖/√d``). Binary logistic only.

    Numerically stable at any margin: slopes and curvatures use ``σ(−s f)``, and ``eps_star`` is
    computed with the factor ``max_i σ(−s_i f_i)`` divided out of every term, so it is exact where
    the chain's values underflow (margins past ≈ 745; tested to 1e4). X whose second moments
    overflow float64 is a ``ValueError``.
    Any model state and input shape (docs/theory.md §0): modules are evaluated in eval mode and left
    exactly as they were; ``X`` may have any shape ``(n, …)`` the model accepts, norms over flattened rows.

    Parameters
    ----------
    %(binary_args)s
    loss : {"logistic"}, default "logistic"
        Binary logistic loss only.
    norm : {2, math.inf}, default 2
        ℓ2 (C4, C5) or ℓ∞ (C13).
    c_x : float, optional
        The constant of (A3), ℓ2 only; default ``min_i ‖x_i‖/√d``.

    Returns
    -------
    RobustnessBound
        The chain, its radii, ``eps_star`` and the ``assumptions`` flags.

    Raises
    ------
    ValueError
        If an argument is out of range, the loss is not binary logistic, or ``c_x`` is given in ℓ∞.

    See Also
    --------
    mixup_expansion : ``L̃_mix`` term by term.
    adversarial_loss : ``L̃_adv`` with ``method="second_order"``.
    exact_comparison : The same question for the exact losses (C7).
    robustness_bound_softmax : More than two classes.

    Examples
    --------
    %(example_linear)s
    >>> b = theory.robustness_bound(model, X, y, 1.0)
    >>> b.holds, all(b.assumptions.values())
    (True, True)
    >>> round(b.mixup_approx, 6), round(b.adv_at_eps_i, 6), round(b.adv_at_eps_mix, 6)
    (0.509967, 0.494818, 0.45569)
    >>> round(b.eps_mix, 6), round(b.eps_star, 6)
    (0.098058, 0.240037)
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    norm = check_norm(norm)
    if loss != "logistic":
        raise ValueError(f"loss must be 'logistic' for robustness_bound (C4/C5/C13 are binary logistic results), "
                         f"got {loss!r}; see theory.robustness_softmax for the multi-class chain")
    if norm == math.inf and c_x is not None:
        raise ValueError("c_x applies to norm=2 only: the ℓ∞ radius (C13) is m_1 |∇f_iᵀx_i| / ‖∇f_i‖₁ and needs no c_x")
    P = prepare(model, X, y, loss)
    expansion = mixup_expansion(model, X, y, alpha, beta, loss=loss)
    m1 = expansion.m1
    J = input_jacobians(P)
    grad = J[:, 0]
    G, A, k = P.loss.scaled_derivatives(P.F, P.Y)  # σ(f) − y = 2^k G, σ(f)σ(−f) = 2^k A
    q = dual_norm(norm)
    gq = vector_norm(grad, q)
    slope_s, curvature_s = G[:, 0].abs() * gq, A[:, 0, 0] * gq * gq  # |σ_i − y_i|‖∇f_i‖_q, ... times 2^{−k}
    slope, curvature = _unscale(slope_s, k), _unscale(curvature_s, k)
    clean = P.loss.value(P.F, P.Y)
    dot = (grad * P.X).sum(1).abs()
    dist = torch.where(gq > 0, dot / torch.where(gq > 0, gq, 1.0), 0.0)  # distance to the linearised boundary
    eps_sharp = m1 * dist
    if norm == 2:
        xnorm = vector_norm(P.X, 2)
        c_sqrt_d = float(xnorm.min()) if c_x is None else check_nonnegative(c_x, "c_x") * math.sqrt(P.d)
        R = torch.where(xnorm > 0, dist / torch.where(xnorm > 0, xnorm, 1.0), 0.0).clamp(max=1.0)  # |cos|
        eps_i = m1 * R * c_sqrt_d
        c_value = c_sqrt_d / math.sqrt(P.d)
    else:
        c_sqrt_d, c_value = None, None
        eps_i = eps_sharp
    eps_mix = float(eps_i.min())
    adv_i = float(second_order_adv(clean, slope, curvature, eps_i).mean())
    adv_mix = float(second_order_adv(clean, slope, curvature, eps_mix).mean())
    adv_sharp = float(second_order_adv(clean, slope, curvature, eps_sharp).mean())
    # ε* from L̃_mix − L_std = R1 + R2 + R3 (no cancellation), all terms times 2^{−k}: exact at any margin
    if expansion.scale_exponent != k:
        raise AssertionError("expansion and chain use different scales")
    gap = sum(expansion.scaled)
    eps_star = largest_eps(gap, float(slope_s.mean()), float(curvature_s.mean()))
    approx = expansion.approx
    holds = geq(approx, adv_i) and geq(adv_i, adv_mix)
    assumptions = check_assumptions(P, J, c_sqrt_d)
    failing = [name for name, ok in assumptions.items() if not ok]
    if holds and failing:
        warnings.warn(f"the chain holds numerically (L~mix = {approx:.6g} >= {adv_i:.6g} >= {adv_mix:.6g}) but "
                      f"assumption(s) {', '.join(failing)} fail: the theorem does not cover this instance, so the "
                      "chain is not guaranteed (see .assumptions; docs/theory.md §4)", AssumptionWarning, stacklevel=2)
    return RobustnessBound(
        eps_i=eps_i.cpu().numpy(), eps_mix=eps_mix, eps_star=eps_star, mixup_approx=approx,
        adv_at_eps_i=adv_i, adv_at_eps_mix=adv_mix, holds=holds, assumptions=assumptions, norm=norm, m1=m1, c_x=c_value,
        eps_sharp=eps_sharp.cpu().numpy(), adv_at_eps_sharp=adv_sharp)


@dataclass(frozen=True)
class ExactComparison:
    """C7: exact ``L_mix`` against the exact ``L_adv(ε)`` or its bracket ``[adv_lower, adv_upper]``.

    C7 (beyond Zhang et al. 2021); docs/theory.md §4.7.

    ``status``: ``"holds"`` if ``mixup_exact ≥ adv_upper`` (the exact inequality is certain),
    ``"fails"`` if ``mixup_exact < adv_lower`` (certainly violated), else ``"undecided"``; for linear
    models ``adv_lower = adv_upper`` is the closed form. ``mixup_approx``/``adv_approx`` are the
    paper's approximations at the same ε, for context. ``adv_sharp`` (linear models; nan otherwise)
    is the exact ``(1/n) Σ_i L_adv,i(ε^sharp_i)``, ``ε^sharp_i = m_1 |θᵀx_i| / ‖θ‖_q``, which the exact
    chain places between ``mixup_exact`` and ``adv_upper`` (see ``exact_comparison``).

    Attributes
    ----------
    eps : float
        The radius compared at.
    mixup_exact : float
        Exact ``L_mix``.
    adv_lower, adv_upper : float
        The bracket of ``L_adv(ε)`` (equal for linear models).
    mixup_approx, adv_approx : float
        ``L̃_mix`` and ``L̃_adv(ε)``, for context.
    status : {"holds", "fails", "undecided"}
        The verdict on ``L_mix ≥ L_adv(ε)``.
    exact_adversary : bool
        Whether ``adv_lower == adv_upper`` is the exact value.
    assumptions : dict of str to bool
        As in ``RobustnessBound``.
    adv_sharp : float
        Exact ``(1/n) Σ_i L_adv,i(ε^sharp_i)`` (linear models; ``nan`` otherwise).
    undetermined_reason : str
        Why ``status`` is ``"undecided"``, if it is.

    See Also
    --------
    exact_comparison : Returns this record.
    """

    eps: float
    mixup_exact: float
    adv_lower: float
    adv_upper: float
    mixup_approx: float
    adv_approx: float
    status: str
    exact_adversary: bool
    assumptions: dict
    adv_sharp: float = float("nan")
    undetermined_reason: str = ""
    """Why ``adv_upper`` is ``nan`` (the model has a layer the certified bound does not support; then
    ``status`` is ``"fails"`` if PGD already beats L_mix, else ``"undecided"``); empty otherwise."""

    def __repr__(self) -> str:
        return summary_repr(self, extra=("margin",))

    @property
    def margin(self) -> float:
        """``mixup_exact − adv_upper`` (≥ 0: holds with room) — for linear models the exact gap."""
        return self.mixup_exact - self.adv_upper


@fill_doc
def exact_comparison(model, X, y, alpha, beta=None, *, norm=2, c_x=None, eps=None, nodes: int | None = None,
                     pgd: dict | None = None, bound: str = "crown") -> ExactComparison:
    """C7: exact ``L_mix`` against exact ``L_adv(ε)`` at ``ε = ε_mix``, binary logistic loss.

    Beyond Zhang et al. 2021; docs/theory.md §4.7. Exact ``L_mix`` (``theory.mixup_loss``) against
    ``L_adv(ε)`` at ``ε = ε_mix`` (default; or the given ``eps``).

    Linear models: ``L_adv`` in closed form. ReLU MLPs: bracketed by PGD (``pgd`` = options for
    ``method="pgd"``) below and the certified bound (``bound`` in ``"crown"``, ``"alpha-crown"`` — the
    tighter — or ``"ibp"``; see ``theory.adversarial_losses``) above.

    Exact chain for logistic regression (derived here, beyond the paper): under (A1) and (A2) with
    no intercept, ``L_mix ≥ (1/n) Σ_i L_adv,i(ε^sharp_i) ≥ L_adv(ε_mix)`` *exactly*, for every α, β.
    Proof: by identity (I), ``L_mix = (1/n) Σ_i E_t E_r l(x_i + t(r − x_i))`` with ``t = 1 − λ ~ D̃``;
    ``l`` is convex in x (convex ``h`` of a linear function), so Jensen over r (``E r = x̄ = 0``) gives
    ``≥ E_t l((1 − t)x_i)``; convex in t, so Jensen over t gives ``≥ l((1 − m_1)x_i) =
    softplus(−|z_i| + m_1|z_i|)`` (A2: ``s_i z_i = |z_i|``), which is the closed-form
    ``L_adv,i(ε)`` at ``ε = m_1|z_i|/‖θ‖_q = ε^sharp_i ≥ ε_i ≥ ε_mix``. For ReLU nets the loss is not
    convex in x and the exact inequality can fail (``status == "fails"``).

    Parameters
    ----------
    %(binary_args)s
    %(norm)s
    c_x : float, optional
        The constant of (A3), ℓ2 only.
    eps : float, optional
        Compare at this radius instead of ``ε_mix``.
    nodes : int, optional
        Fixed Gauss–Jacobi rule for ``L_mix`` (default: to its default accuracy).
    pgd : dict, optional
        Options of the PGD lower bound (``method="pgd"`` of ``adversarial_loss``).
    bound : {"ibp", "crown", "alpha-crown"}, default "crown"
        The certified upper bound for networks.

    Returns
    -------
    ExactComparison
        Both exact sides (or the bracket) and the ``status``.

    Raises
    ------
    ValueError
        If an argument is out of range or the model is neither linear nor a supported ReLU net.

    See Also
    --------
    robustness_bound : The approximate chain (C4, C5).
    mixup_loss, adversarial_loss : The two sides.

    Examples
    --------
    %(example_linear)s
    >>> c = theory.exact_comparison(model, X, y, 1.0)
    >>> c.status, round(c.mixup_exact, 6), round(c.adv_lower, 6), round(c.adv_upper, 6)
    ('holds', 0.512132, 0.4557, 0.4557)
    """
    check_choice(bound, "bound", CERTIFY_METHODS)
    check_alpha_beta(alpha, beta)
    if eps is not None:
        check_nonnegative(eps, "eps")
    if nodes is not None:
        check_nodes(nodes)
    if pgd is not None and not isinstance(pgd, dict):
        raise ArgumentTypeError(f"pgd must be a dict of options for method='pgd' or None, got {type(pgd).__name__}")
    unknown = set(pgd or {}) - set(PGD_OPTIONS)
    if unknown:
        raise ValueError(f"pgd has unknown option(s) {sorted(unknown)}; accepted: {PGD_OPTIONS}")
    check_pgd_options(**(pgd or {}), prefix="pgd")
    rb = robustness_bound(model, X, y, alpha, beta, norm=norm, c_x=c_x)
    e = rb.eps_mix if eps is None else check_nonnegative(eps, "eps")
    mix = mixup_loss(model, X, y, alpha, beta, loss="logistic", nodes=nodes)
    exact = is_affine(model)
    P = prepare(model, X, y, "logistic")
    reason = ""
    if exact:
        lower = upper = adversarial_loss(model, X, y, e, norm=norm, method="exact")
    else:
        lower = adversarial_loss(model, X, y, e, norm=norm, method="pgd", **(pgd or {}))
        try:
            relu_ops(model, tuple(P.X.shape[1:]), P.device)
        except Unsupported as exc:
            reason = f"no certified upper bound: {exc}"
        upper = math.nan if reason else adversarial_loss(model, X, y, e, norm=norm, method="certified", bound=bound)
    grad = input_jacobians(P)[:, 0]
    f, Y = P.F[:, 0], P.Y[:, 0]
    gq = vector_norm(grad, dual_norm(norm))
    adv_approx = float(second_order_adv(P.loss.value(P.F, P.Y), P.loss.residual(P.F, P.Y)[:, 0].abs() * gq,
                                        P.loss.stable_hessian(P.F)[:, 0, 0] * gq * gq, e).mean())
    if geq(mix, upper):
        status = "holds"
    elif not geq(mix, lower):
        status = "fails"
    else:
        status = "undecided"
    sharp = math.nan
    if exact:
        shifted = -(2 * Y - 1) * f + torch.as_tensor(rb.eps_sharp, dtype=DTYPE, device=P.device) * gq
        sharp = float(torch.logaddexp(shifted, torch.zeros_like(shifted)).mean())
    return ExactComparison(e, mix, lower, upper, rb.mixup_approx, adv_approx, status, exact, rb.assumptions,
                           sharp, reason)
