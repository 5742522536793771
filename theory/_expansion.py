"""Second-order expansion of the Mixup loss (C2, docs/theory.md §3): ``L̃_mix = L_std + R1 + R2 + R3``.

With ``t = 1 − λ ~ D̃``, ``u = r − x_i``, ``G_i = ∇h(f_i) − y_i``, ``A_i = ∇²h(f_i)``, ``J_i = ∂f/∂x(x_i)``:

- ``R1 = (m_1/n) Σ_i G_iᵀ J_i (x̄ − x_i)``
- ``R2 = (m_2/2n) Σ_i [tr(A_i J_i Σ̂ J_iᵀ) + (J_i(x̄ − x_i))ᵀ A_i J_i(x̄ − x_i)]``
- ``R3 = (m_2/2n) Σ_i [tr(H_i Σ̂) + (x̄ − x_i)ᵀ H_i (x̄ − x_i)]``, ``H_i = Σ_k G_ik ∇²f_ik(x_i)``

For ``loss="squared"`` the expansion approximates the RHS of identity (I), which is
``mixup_loss + squared_label_constant``. Input Jacobians come from ``torch.func.vjp``; ``H_i v``
from forward-over-reverse ``torch.func.jvp`` (Hessian-vector products).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._problem import Problem, prepare
from ._validate import (DTYPE, MAX_DRAWS, check_alpha_beta, check_choice, check_count, check_nonnegative, check_scalar,
                        check_torch_generator)
from ._summary import summary_repr
from ._mixing import MixupLambda
from ._models import is_affine, is_piecewise_linear, linear_parameters, split_affine_prefix
from ._warnings import ApproximationWarning
from ._carratino import recentred_terms
from ._docs import fill_doc

R3_METHODS = ("auto", "exact", "hutchinson", "zero")
FORMS = ("paper", "carratino")
EXACT_R3_MAX_DIRECTIONS = 256
"""``r3="auto"`` computes tr(H_i Σ̂) exactly with one HVP per eigen-direction of Σ̂ up to this
rank, and by Hutchinson's estimator (probes g ~ N(0, Σ̂), E[gᵀHg] = tr(HΣ̂)) beyond it."""
HUTCHINSON_PROBES = 128
HVP_CHUNK_ROWS = 1 << 16
HVP_CHUNK_ELEMENTS = 1 << 20
"""HVP blocks hold at most ``HVP_CHUNK_ROWS`` rows and about this many float64 values per row-tensor
(cache-sized blocks; ``python -m benchmarks`` measures the expansion)."""


@dataclass(frozen=True)
class Expansion:
    """Terms of ``L_mix ≈ standard + scale·r1 + scale²·(r2 + r3)`` (C2).

    C2 — Zhang et al. 2021, Lemma 3.1; docs/theory.md §3.2.

    Attributes
    ----------
    standard : float
        ``L_std``.
    r1, r2, r3 : float
        The first-, second-order and curvature terms ``R1, R2, R3``.
    scale : float
        The homotopy parameter ``s``.
    m1, m2 : float
        ``E_{D̃}[1−λ]`` and ``E_{D̃}[(1−λ)²]``.
    r3_method : str
        How ``r3`` was computed.
    scale_exponent : int
        ``k`` with ``(r1, r2, r3) = 2^k · scaled`` (finite where the terms underflow).
    scaled : tuple of float
        ``(r1, r2, r3) / 2^k``.
    form : str
        ``"paper"`` or ``"carratino"`` (the expansion point: the original or the shrunk, re-centred data).
    theta_bar : float
        ``E[max(λ, 1 − λ)]``, the shrinkage of the re-centred data (``form="carratino"``; else nan).
    shrunk, label_smoothing : float
        ``standard`` split: the loss on the shrunk inputs with the original labels, and the rest
        (``standard − shrunk``, the label-smoothing-like term) (``form="carratino"``; else nan).
    jacobian, cross : float
        ``jacobian = r2``, the terms with first derivatives of f only, and ``cross``, its input–label
        part (``form="carratino"``; else nan).

    See Also
    --------
    mixup_expansion : Returns this record.
    """

    standard: float
    r1: float
    r2: float
    r3: float
    scale: float = 1.0
    m1: float = float("nan")
    m2: float = float("nan")
    r3_method: str = "exact"
    scale_exponent: int = 0
    """``k``: r1, r2, r3 equal ``2^k`` times ``scaled`` (``GLMLoss.scaled_derivatives``)."""
    scaled: tuple = (float("nan"),) * 3
    """``(r1, r2, r3)·2^{−k}``: finite and accurate where the terms themselves underflow (margins
    past ≈ 745 for the logistic loss); ratios such as ε* are computed from these."""
    form: str = "paper"
    """``"paper"`` (around the data points) or ``"carratino"`` (around the shrunk, re-centred points)."""
    theta_bar: float = float("nan")
    """``"carratino"``: ``θ̄ = E max(λ, 1 − λ)``, the shrinkage factor of the inputs and labels."""
    shrunk: float = float("nan")
    """``"carratino"``: ERM on the shrunk inputs with the original labels, ``(1/n) Σ l(x̃_i, y_i)``."""
    label_smoothing: float = float("nan")
    """``"carratino"``: ``standard − shrunk``, the effect of the smoothed labels ``ỹ_i`` (the label-smoothing-like term)."""
    jacobian: float = float("nan")
    """``"carratino"``: ``r2``, the terms with first derivatives of f only (Gauss–Newton part and the
    input–label cross term ``cross``)."""
    cross: float = float("nan")
    """``"carratino"``: the input–label cross term ``−E[ε ᵀ J_i δ]`` (part of ``jacobian``)."""

    def __repr__(self) -> str:
        return summary_repr(self, extra=("approx",))

    @property
    def approx(self) -> float:
        """``L̃_mix`` along the homotopy: ``standard + scale·r1 + scale²·(r2 + r3)``."""
        return self.standard + self.scale * self.r1 + self.scale ** 2 * (self.r2 + self.r3)


def input_jacobians(P: Problem) -> torch.Tensor:
    """Per-sample input Jacobians ``J`` of shape ``(n, K, d)`` (constant for affine models)."""
    if is_affine(P.model):
        Theta, _ = linear_parameters(P.model, P.shape)
        return Theta.to(P.device).expand(P.n, -1, -1)
    _, pullback = torch.func.vjp(P.fn, P.X)
    eye = torch.eye(P.K, dtype=DTYPE, device=P.device)
    rows = [pullback(eye[k].expand(P.n, -1))[0] for k in range(P.K)]
    return torch.stack(rows, 1).detach()


def _hessian_space(P: Problem):
    """``(U, g, lin)`` with ``f = g ∘ prefix``, ``U = prefix(X)`` and ``lin`` the linear part of the
    leading affine block (identity without one).

    ``∇²_x(Gᵀf) = Lᵀ ∇²_u(Gᵀg) L``, so ``vᵀH_i v = (Lv)ᵀ ∇²_u(Gᵀg)(u_i) (Lv)``: the Hessian-vector
    products of R3 run through ``g`` only, on ``(n, H)`` rows instead of ``(n, d)`` — the first-layer
    shortcut of docs/theory.md §2 applied to the expansion. Same values up to rounding.
    """
    split = split_affine_prefix(P.model)
    if split is None or is_affine(P.model):
        return P.X, P.fn, (lambda V: V)
    prefix, rest = split
    with torch.no_grad():
        U = prefix(P.inputs)

    def lin(V):  # the tangent of an affine map is its linear part applied to V (rows in X's shape)
        V = V.reshape(V.shape[0], *P.shape)
        return torch.func.jvp(prefix, (V,), (V,))[1].detach()

    return U, (lambda Z: rest(Z).reshape(Z.shape[0], -1)), lin


def _hvp_rows(fn, U: torch.Tensor, G: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Rows ``vᵀ H_i v`` for direction rows V (c·n, ...) of points U (n, ...) tiled c times; H_i = Hess of G_iᵀfn."""
    reps = V.shape[0] // U.shape[0]
    Ur = U.repeat(reps, *([1] * (U.ndim - 1)))
    Gr = G.repeat(reps, 1)

    def grad_g(Z):
        return torch.func.vjp(fn, Z)[1](Gr)[0]

    _, HV = torch.func.jvp(grad_g, (Ur,), (V,))
    return (HV * V).flatten(1).sum(-1)


def _r3_terms(P: Problem, G: torch.Tensor, D: torch.Tensor, Sigma: torch.Tensor, method: str,
              probes: int, generator: torch.Generator | None) -> tuple[torch.Tensor, str]:
    """Σ_i [tr(H_i Σ̂) + D_iᵀ H_i D_i] and the method used.

    Directions are chosen in input space (eigen-directions of Σ̂ or Hutchinson probes) and mapped
    through the leading affine block (``_hessian_space``), where the HVPs are evaluated.
    """
    if method == "zero" or (method == "auto" and is_piecewise_linear(P.model)):
        return torch.zeros((), dtype=DTYPE, device=P.device), "zero (piecewise linear)"
    evals, evecs = torch.linalg.eigh(Sigma)
    keep = evals > evals.max().clamp(min=0) * P.d * torch.finfo(DTYPE).eps
    roots = (evecs[:, keep] * evals[keep].sqrt()).T  # directions with Σ rᵀr = Σ̂
    use_exact = method == "exact" or (method == "auto" and roots.shape[0] <= EXACT_R3_MAX_DIRECTIONS)
    if not use_exact:
        gen = check_torch_generator(generator)
        z = torch.randn(probes, roots.shape[0], generator=gen, dtype=DTYPE).to(P.device)
        roots, weight, used = z @ roots, 1.0 / probes, f"hutchinson ({probes} probes)"
    else:
        weight, used = 1.0, "exact"
    U, g, lin = _hessian_space(P)
    n = P.n
    rows = max(1, min(HVP_CHUNK_ROWS, HVP_CHUNK_ELEMENTS // max(1, U[0].numel())))
    D_u = lin(D)
    total = torch.zeros((), dtype=DTYPE, device=P.device)
    for s0 in range(0, n, rows):  # Σ_i D_iᵀ H_i D_i
        total = total + _hvp_rows(g, U[s0:s0 + rows], G[s0:s0 + rows], D_u[s0:s0 + rows]).sum()
    if roots.shape[0] == 0:
        return total.detach(), used
    roots = lin(roots)
    samples = min(n, rows)
    per_chunk = max(1, rows // samples)
    for c0 in range(0, roots.shape[0], per_chunk):  # Σ_i Σ_r r_rᵀ H_i r_r (blocks of directions × samples)
        block = roots[c0:c0 + per_chunk]
        for s0 in range(0, n, samples):
            s1 = min(n, s0 + samples)
            V = block.repeat_interleave(s1 - s0, 0)
            total = total + weight * _hvp_rows(g, U[s0:s1], G[s0:s1], V).sum()
    return total.detach(), used


@fill_doc
def mixup_expansion(model, X, y, alpha, beta=None, *, loss: str = "logistic", scale: float = 1.0,
                    r3: str = "auto", probes: int = HUTCHINSON_PROBES,
                    generator: torch.Generator | None = None, form: str = "paper") -> Expansion:
    """C2: the terms ``standard, r1, r2, r3`` of the expansion of ``L_mix``, and ``approx``.

    Zhang et al. 2021, Lemma 3.1 (and its Eq. (3) for ``approx``); docs/theory.md §3.2.

    ``form="carratino"`` (Carratino et al., JMLR 2022; docs/theory.md §3.4) expands instead around the
    shrunk, re-centred data ``x̃_i = x̄ + θ̄(x_i − x̄)``, ``ỹ_i = ȳ + θ̄(y_i − ȳ)``, ``θ̄ = E max(λ, 1 − λ)``,
    where the mixing perturbation has mean zero. Then ``standard`` is ERM on ``(x̃_i, ỹ_i)`` (=
    ``shrunk + label_smoothing``), ``r1 = 0`` (the first-order term vanishes identically), ``r2`` the
    Jacobian terms (``jacobian``: Gauss–Newton part plus the input–label ``cross`` term; for the
    squared loss also ``½E‖ε‖²``), ``r3`` the Hessian term, and ``approx`` approximates ``mixup_loss``
    itself for every loss (labels are mixed, not un-mixed). ``scale = s`` scales the perturbation:
    ``approx = standard + s²(r2 + r3)`` is the expansion of ``theory.mixup_loss_recentred(..., scale=s)``.

    ``r3``: ``"auto"`` (0 for piecewise-linear Sequentials — R3 vanishes a.e. — exact HVPs up to
    ``EXACT_R3_MAX_DIRECTIONS`` eigen-directions of Σ̂, else Hutchinson with ``probes`` probes),
    ``"exact"``, ``"hutchinson"``, or ``"zero"``.

    Numerically stable: ``standard`` sums non-negative terms (``log1p(e^{−40})`` at margin 40 to full
    precision); R1–R3 are computed as ``2^k·scaled`` (``Expansion.scaled``), finite and exact in ratio
    where they underflow. X whose second moments overflow float64 is a ``ValueError`` naming X.
    Any model state and input shape (docs/theory.md §0): modules are evaluated in eval mode and left
    exactly as they were; ``X`` may have any shape ``(n, …)`` the model accepts, norms over flattened rows.

    Parameters
    ----------
    %(mixup_args)s
    scale : float, default 1.0
        The homotopy parameter ``s``: ``approx = standard + s·r1 + s²·(r2 + r3)``.
    r3 : {"auto", "exact", "hutchinson", "zero"}, default "auto"
        How ``R3`` is computed (see above).
    probes : int, default 128
        Hutchinson probes (``r3="hutchinson"`` or when ``"auto"`` falls back to it).
    generator : torch.Generator or int, optional
        Source of the Hutchinson probes; ``None`` uses the fixed seed 0.
    form : {"paper", "carratino"}, default "paper"
        ``"paper"``: the paper's expansion around the original points (Lemma 3.1, §3.2);
        ``"carratino"``: Carratino et al.'s around the λ-shrunk, re-centred data (§3.4), with
        ``r1 = 0``, ``standard`` the loss on the shrunk data and smoothed labels, ``r2`` the Jacobian
        terms and ``r3`` the Hessian term.

    Returns
    -------
    Expansion
        ``standard, r1, r2, r3, approx`` (and ``m1, m2, r3_method``; for ``form="carratino"`` also
        ``theta_bar, shrunk, label_smoothing, jacobian, cross``).

    %(raises_range_named)s

    See Also
    --------
    mixup_loss : The exact value the expansion approximates.
    mixup_loss_unmixed : The exact ``L_mix(s)`` along the homotopy.
    robustness_bound : Compares ``approx`` with the adversarial loss.

    Examples
    --------
    %(example_linear)s
    >>> e = theory.mixup_expansion(model, X, y, 1.0)
    >>> round(e.standard, 6), round(e.r1, 6), round(e.r2, 6), e.r3  # R3 = 0 for a linear model
    (0.420845, 0.067064, 0.022059, 0.0)
    >>> round(e.approx, 6)  # L̃_mix; the exact L_mix here is 0.512132
    0.509967
    >>> c = theory.mixup_expansion(model, X, y, 1.0, form="carratino")  # around the shrunk points
    >>> c.r1, round(c.theta_bar, 6), round(c.approx, 6)  # closer to the exact 0.512132
    (0.0, 0.75, 0.512019)
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    s = check_nonnegative(scale, "scale")
    check_choice(r3, "r3", R3_METHODS)
    check_choice(form, "form", FORMS)
    probes = check_scalar(probes, "probes", int, min_val=1, max_val=MAX_DRAWS)
    if generator is not None:
        check_torch_generator(generator)
    P = prepare(model, X, y, loss)
    if form == "carratino":
        return _carratino(P, alpha, beta, s, r3, probes, generator)
    mix = MixupLambda(alpha, beta)
    m1, m2 = mix.m(1), mix.m(2)
    n = P.n
    xbar = P.X.mean(0)
    C = P.X - xbar
    Sigma = C.T @ C / n
    D = -C  # x̄ − x_i
    G, A, k = P.loss.scaled_derivatives(P.F, P.Y)  # ∇h − y = 2^k G, ∇²h = 2^k A: (n, K), (n, K, K)
    J = input_jacobians(P)  # (n, K, d)
    JD = torch.einsum("nkd,nd->nk", J, D)
    JSJ = torch.einsum("nkd,de,nle->nkl", J, Sigma, J)
    standard = P.loss.value(P.F, P.Y).mean()
    r1 = m1 * (G * JD).sum(-1).mean()
    r2 = 0.5 * m2 * ((A * JSJ).sum((-1, -2)) + torch.einsum("nk,nkl,nl->n", JD, A, JD)).mean()
    r3_sum, used = _r3_terms(P, G, D, Sigma, r3, probes, generator)
    scaled = (float(r1), float(r2), float(0.5 * m2 * r3_sum / n))
    if not all(map(math.isfinite, scaled)):
        raise ValueError(f"X (max |X| = {float(P.X.abs().max()):.3g}) is too large for the expansion in float64: "
                         "the second moments of X and the model's Jacobians (X's covariance, J Σ̂ Jᵀ) overflow; "
                         "rescale X (e.g. standardize it)")
    r1_, r2_, r3_ = (math.ldexp(t, k) for t in scaled)  # exact (k ≤ 0), rounding once into subnormals
    out = Expansion(float(standard), r1_, r2_, r3_, s, m1, m2, used, k, scaled)
    if s == 1.0 and P.loss.name != "squared":
        warn_if_far(P, out.approx, alpha, beta)
    return out


def _carratino(P: Problem, alpha: float, beta: float, s: float, r3: str, probes: int, generator) -> Expansion:
    t = recentred_terms(P, alpha, beta, _r3_terms, r3, probes, generator)
    r2 = t.gauss_newton + t.cross + t.label_square
    r3_ = float(0.5 * t.hessian_sum / P.n)
    if not all(map(math.isfinite, (t.standard, r2, r3_))):
        raise ValueError(f"X (max |X| = {float(P.X.abs().max()):.3g}) is too large for the expansion in float64: "
                         "the second moments of X and the model's Jacobians overflow; rescale X (e.g. standardize it)")
    out = Expansion(t.standard, 0.0, r2, r3_, s, float("nan"), float("nan"), t.r3_method, 0, (0.0, r2, r3_),
                    "carratino", t.theta_bar, t.shrunk, t.label_smoothing, r2, t.cross)
    if s == 1.0:
        warn_if_far(P, out.approx, alpha, beta)
    return out


FAR_RTOL = 0.5
"""``mixup_expansion`` / ``robustness_bound`` warn when ``|L̃_mix − L_mix| > FAR_RTOL · L_mix`` (C2 is a
second-order approximation; docs/theory.md §3)."""
FAR_SAMPLES = 1024
FAR_SIGMAS = 5.0


def sampled_mixup(P: Problem, alpha: float, beta: float, samples: int = FAR_SAMPLES) -> tuple[float, float]:
    """A cheap unbiased estimate of L_mix and its standard error: ``samples`` triples (i, j, λ) with i, j
    uniform and λ ~ Beta(α, β), in one batched forward pass (fixed seed: deterministic)."""
    rng = np.random.default_rng(20211)
    i, j = rng.integers(0, P.n, samples), rng.integers(0, P.n, samples)
    lam = torch.as_tensor(rng.beta(alpha, beta, samples), dtype=DTYPE, device=P.device)
    it, jt = torch.as_tensor(i, device=P.device), torch.as_tensor(j, device=P.device)
    shape = (-1,) + (1,) * (P.X.ndim - 1)
    Xm = lam.reshape(shape) * P.X[it] + (1 - lam.reshape(shape)) * P.X[jt]
    Ym = lam[:, None] * P.Y[it] + (1 - lam[:, None]) * P.Y[jt]
    with torch.no_grad():
        values = P.loss.value(P.fn(Xm), Ym)
    return float(values.mean()), float(values.std() / math.sqrt(samples))


def warn_if_far(P: Problem, approx: float, alpha: float, beta: float) -> None:
    """``ApproximationWarning`` when L̃_mix is certainly (5 standard errors) more than 50 % off the exact L_mix."""
    estimate, stderr = sampled_mixup(P, alpha, beta)
    if abs(approx - estimate) - FAR_SIGMAS * stderr > FAR_RTOL * (estimate + FAR_SIGMAS * stderr):
        warnings.warn(f"the second-order approximation L~mix = {approx:.6g} is far from the Mixup loss "
                      f"L_mix ≈ {estimate:.6g} (± {stderr:.2g}, sampled): relative error ≈ "
                      f"{abs(approx - estimate) / max(estimate, 1e-300):.0%} > {FAR_RTOL:.0%}; the expansion (C2) and "
                      "the robustness chain built on it do not describe this model (theory.mixup_loss gives L_mix "
                      "exactly)", ApproximationWarning, stacklevel=3)
