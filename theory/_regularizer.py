"""C9: the data-adaptive GLM regularizer of the Mixup loss, paper and shrinkage forms (docs/theory.md §5).

Setting: ``l = A(f) − y·f`` with an affine model ``f(x) = θᵀx + b`` (logistic ``A = softplus``,
squared ``A = z²/2``) and centered data (``x̄ = 0``, so ``Σ̂ = Σ̂₀``). Identity (I) writes
``L_mix = (1/n) Σ_i E_{λ~D̃} E_r l(θ, (λx_i + (1−λ)r, y_i))`` and, f being affine,
``f(λx_i + (1−λ)r) = f(λx_i) + (1−λ)θᵀr`` with ``E_r θᵀr = θᵀx̄ = 0``, ``E_r (θᵀr)² = θᵀΣ̂θ``.

Shrinkage form (exact split, then second order in the centred perturbation ``(1−λ)θᵀr``)::

    L_mix = S(θ) + [L_mix − S(θ)],   S(θ) = E_{D̃}[(1/n) Σ_i l(f(λx_i), y_i)]  (= E_{D̃} L_std(λθ) for b = 0)
    L_mix − S(θ) ≈ (1/2n) E_{D̃}[(1−λ)² Σ_i h''(f(λx_i))] · θᵀΣ̂θ                       (shrinkage form)

Paper form: ``λx_i + (1−λ)r = λ(x_i + t·r)``, ``t = (1−λ)/λ``; freezing the scale (treating ``λθ`` as
the parameter θ) the perturbation ``t·r`` has mean 0 and covariance ``t²Σ̂``, and the second-order term
is ``(1/2n)[Σ_i h''(f(x_i))] · ρ₂ · θᵀΣ̂θ``, ``ρ₂ = E_{D̃}[t²]``, infinite unless α > 1 and β > 1
(``D̃`` has density ∝ λ^α near 0 from its Beta(α+1, β) part and ∝ λ^β from its Beta(β+1, α) part, so
``E[λ^−2]`` needs α > 1 and β > 1).

Which exact quantity each form is compared with (``regularizer_comparison``):

- shrinkage form ↔ ``L_mix − S(θ)``: its exact counterpart (the first term S is kept exactly);
- paper form ↔ ``L_mix − S(θ)`` as well (primary): the paper form comes from the same rescaling
  ``λ(x_i + t r)``, so its "standard part" is the loss at the rescaled parameter λθ averaged over D̃,
  i.e. S(θ). It differs from the shrinkage form only in replacing ``E[(1−λ)² h''(λz)]`` by
  ``E[t²] h''(z)``. Two secondary targets are reported: ``L_mix − L_std`` (reading the paper as
  ``L_mix ≈ L_std + Reg``) and the *frozen-scale excess* ``F(θ) − L_std(θ)``,
  ``F(θ) = (1/n) Σ_i E_{D̃} E_r l(θ, (x_i + t r, y_i))``, the quantity whose exact second-order term
  the paper form is. For the logistic loss F is finite for all α, β > 0 (softplus grows linearly and
  ``E_{D̃}[t] = 1``), so the divergence of the paper form at α ≤ 1 is an artefact of expanding to
  second order in an unbounded t, not of Mixup.
- the plain expansion ``R1 + R2 + R3`` (C2, ``theory.mixup_expansion``) ↔ ``L_mix − L_std``.

For ``loss="squared"`` "L_mix" means the θ-dependent RHS of (I), ``mixup_loss + squared_label_constant``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._problem import evaluate
from ._validate import (DTYPE, MAX_CHUNK_ELEMENTS, as_labels, as_matrix, check_alpha_beta, check_choice, check_count, check_model,
                        check_alphas, check_nodes, check_pairs, check_positive, check_scalar,
                        model_device)
from ._losses import get_loss
from ._mixing import MixupLambda
from ._models import as_function, is_affine
from ._docs import fill_doc

FORMS = ("paper", "shrinkage")
GLM_LOSSES = ("logistic", "squared")
DEFAULT_NODES = 64
"""Gauss–Jacobi nodes for the λ-expectations here (smooth integrands: ~1e-12 relative accuracy,
checked against scipy.integrate.quad in tests/theory/test_regularizer.py)."""
ALPHAS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
CHUNK_ELEMENTS = 1 << 22


def curvature(loss: str, F: torch.Tensor) -> torch.Tensor:
    """``h''`` at logits ``F``: ``σ(F)(1−σ(F))`` (logistic) or 1 (squared)."""
    if loss == "logistic":
        return torch.sigmoid(F) * torch.sigmoid(-F)
    return torch.ones_like(F)


def _linear_margins(model, X, loss: str):
    """``(f_i, b, X)``: logits of an affine single-output model at X, its intercept ``f(0)``, X as a tensor."""
    check_choice(loss, "loss", GLM_LOSSES)
    check_model(model)
    if not is_affine(model):
        raise ValueError("model must be linear (a Sequential of nn.Linear/Flatten/Identity layers) for the "
                         "GLM regularizer (C9); for a network use theory.manifold_regularizer")
    fn, Xt, _, F = evaluate(model, X)
    if F.shape[1] != 1:
        raise ValueError(f"model must have one output (logits of shape (n,) or (n, 1)), got {tuple(F.shape)}")
    with torch.no_grad():
        b = fn(torch.zeros(1, Xt.shape[1], dtype=DTYPE, device=Xt.device))
    return F[:, 0].detach(), float(b.reshape(-1)[0]), Xt


def _tilde_rule(alpha, beta, nodes, device):
    q = DEFAULT_NODES if nodes is None else nodes
    lam, w = MixupLambda(alpha, beta).nodes(q, tilde=True)
    return torch.as_tensor(lam, dtype=DTYPE, device=device), torch.as_tensor(w, dtype=DTYPE, device=device)


@fill_doc
def glm_regularizer(model, X, alpha, beta=None, *, loss: str = "logistic", form: str = "paper",
                    nodes: int | None = None) -> float:
    """C9 (Zhang et al. 2021, Lemma 4.1; docs/theory.md §5.1): the second-order Mixup regularizer of a GLM, data centered by the caller.

    - ``form="paper"``: ``(1/2n) [Σ_i h''(f(x_i))] · ρ₂ · θᵀΣ̂θ``, ``ρ₂ = E_{D̃}[((1−λ)/λ)²]``;
      ``math.inf`` exactly when α ≤ 1 or β ≤ 1 (ρ₂ = ∞; not computed as a product with 0·∞).
    - ``form="shrinkage"``: ``(1/2n) E_{λ~D̃}[(1−λ)² Σ_i h''(f(λx_i))] · θᵀΣ̂θ`` by Gauss–Jacobi
      quadrature over D̃ (``nodes`` per component, default ``DEFAULT_NODES``).

    ``θᵀΣ̂θ`` is the variance of the margins ``f(x_i)`` (Σ̂ is centered, 1/n). With an intercept b
    the curvature is taken at the model's logits: ``f(x_i)`` (paper) and ``f(λx_i) = λθᵀx_i + b``
    (shrinkage), the expansion points of the derivation. Linear single-output models only; ``loss``
    is ``"logistic"`` or ``"squared"`` (h'' = 1).

    Parameters
    ----------
    model : torch.nn.Module
        A linear model with one output (``theory.linear_model``).
    %(X_centered)s
    %(alpha)s
    %(beta)s
    loss : {"logistic", "squared"}, default "logistic"
        The GLM (``h'' = σ(1−σ)`` or 1).
    form : {"paper", "shrinkage"}, default "paper"
        Which regularizer (see above).
    nodes : int, optional
        Gauss–Jacobi nodes per component of D̃ (shrinkage form).

    Returns
    -------
    float
        The regularizer; ``math.inf`` for the paper form when ``ρ₂ = ∞``.

    Raises
    ------
    ValueError
        If the model is not linear with one output, or an argument is out of range.

    See Also
    --------
    shrunk_standard_loss : The first term of the shrinkage form.
    frozen_scale_excess : The exact quantity the paper form expands.
    regularizer_comparison : Both forms against the exact Mixup loss, across α.
    MixupLambda : ``rho2()`` and ``m(2)``.

    Examples
    --------
    %(example_linear)s
    >>> round(theory.glm_regularizer(model, X, 2.0), 6)  # paper form; ρ₂ = 3 at α = 2
    0.210516
    >>> theory.glm_regularizer(model, X, 1.0)  # ρ₂ = ∞ for α ≤ 1
    inf
    >>> round(theory.glm_regularizer(model, X, 1.0, form="shrinkage"), 6)
    0.013129
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    check_choice(form, "form", FORMS)
    nodes = None if nodes is None else check_nodes(nodes)
    F, b, _ = _linear_margins(model, X, loss)
    if form == "paper":
        rho2 = MixupLambda(alpha, beta).rho2()
        if math.isinf(rho2):
            return math.inf
        return _times_quad_form(0.5 * float(curvature(loss, F).mean()) * rho2, F)
    lam, w = _tilde_rule(alpha, beta, nodes, F.device)
    shrunk = lam[:, None] * (F - b)[None, :] + b  # f(λ x_i), (Q, n)
    per_node = curvature(loss, shrunk).mean(1) * (1 - lam) ** 2
    return _times_quad_form(0.5 * float(per_node @ w), F)


def _times_quad_form(coef: float, F: torch.Tensor) -> float:
    """``coef · θᵀΣ̂θ`` with ``θᵀΣ̂θ`` the variance of the margins ``F``, through the log domain: finite
    and exact where the variance alone overflows but the product does not (huge margins make the
    logistic curvature underflow); an overflowing product is a ``ValueError`` naming X."""
    C = F - F.mean()
    big = float(C.abs().max())
    if coef == 0.0 or big == 0.0:
        return 0.0
    log_value = math.log(coef) + 2 * math.log(big) + math.log(float(((C / big) ** 2).mean()))
    if log_value > math.log(np.finfo(np.float64).max):
        raise ValueError(f"X (margins up to {float(F.abs().max()):.3g}) is too large: the regularizer "
                         f"{coef:.3g}·θᵀΣ̂θ overflows float64; rescale X (e.g. standardize it)")
    return math.exp(log_value)


@fill_doc
def shrunk_standard_loss(model, X, y, alpha, beta=None, *, loss: str = "logistic",
                         nodes: int | None = None) -> float:
    """``S(θ) = E_{λ~D̃}[(1/n) Σ_i l(f(λx_i), y_i)]`` (= ``E_{D̃} L_std(λθ)`` without intercept), C9.

    C9 — Zhang et al. 2021, Lemma 4.1; docs/theory.md §5.1.

    The first term of the shrinkage form, by Gauss–Jacobi quadrature over D̃.

    Parameters
    ----------
    %(glm_args)s
    nodes : int, optional
        Gauss–Jacobi nodes per component of D̃.

    Returns
    -------
    float
        ``S(θ)``.

    %(raises_linear_or_range)s

    See Also
    --------
    glm_regularizer : The second term of the shrinkage form.
    regularizer_comparison : ``L_mix − S`` against the forms.

    Examples
    --------
    %(example_data)s
    >>> zero = theory.linear_model(2, weight=[0.0, 0.0], intercept=0.0)
    >>> round(theory.shrunk_standard_loss(zero, X, y, 1.0), 12) == round(float(np.log(2)), 12)  # θ = 0
    True
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    nodes = None if nodes is None else check_nodes(nodes)
    F, b, Xt = _linear_margins(model, X, loss)
    lossobj = get_loss(loss)
    Y = lossobj.labels(y, Xt.shape[0], 1, Xt.device)[:, 0]
    lam, w = _tilde_rule(alpha, beta, nodes, F.device)
    shrunk = lam[:, None] * (F - b)[None, :] + b
    values = lossobj.value(shrunk[..., None], Y[None, :, None].expand_as(shrunk[..., None]))
    return float(values.mean(1) @ w)


@fill_doc
def frozen_scale_excess(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
                        chunk_elements: int = CHUNK_ELEMENTS) -> float:
    """``F(θ) − L_std(θ)``, ``F(θ) = (1/n) Σ_i E_{λ~D̃} E_r l(θ, (x_i + t·r, y_i))``, ``t = (1−λ)/λ`` (C9).

    C9 — Zhang et al. 2021, Lemma 4.1; docs/theory.md §5.1.

    The exact quantity whose second-order expansion in the perturbation ``t·r`` is the paper form
    (the Mixup loss with the λ-shrinkage of the parameter frozen). Computed exactly:

    - squared: closed form ``Σ_i (f_i − y_i) E[t] s̄ / n + ½ E[t²] mean_r(s_r²)``, ``s_r = θᵀr``,
      ``E_{D̃}[t] = 1``, ``E_{D̃}[t²] = ρ₂`` (``math.inf`` unless α, β > 1);
    - logistic: ``E_{D̃} g = E_{Beta(α,β)}[λ g(λ) + (1−λ) g(1−λ)]`` turns ``softplus(f_i + t s_r)`` into
      the perspective ``λ·softplus((λ f_i + (1−λ) s_r)/λ)``, smooth on [0, 1], integrated by
      Gauss–Jacobi over Beta(α, β) for all n² pairs (i, r). Finite for all α, β > 0.

    Parameters
    ----------
    %(glm_args)s
    nodes : int, optional
        Gauss–Jacobi nodes for λ.
    chunk_elements : int, default 4194304
        Largest number of float64 values per intermediate tensor.

    Returns
    -------
    float
        ``F(θ) − L_std(θ)``; ``math.inf`` for the squared loss when ``ρ₂ = ∞``.

    %(raises_linear_or_range)s

    See Also
    --------
    glm_regularizer : Its second-order expansion (the paper form).

    Examples
    --------
    %(example_linear)s
    >>> bool(theory.frozen_scale_excess(model, X, y, 2.0) > 0)
    True
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    check_scalar(chunk_elements, "chunk_elements", int, min_val=1, max_val=MAX_CHUNK_ELEMENTS)
    nodes = None if nodes is None else check_nodes(nodes)
    F, b, Xt = _linear_margins(model, X, loss)
    n = F.shape[0]
    Y = get_loss(loss).labels(y, n, 1, Xt.device)[:, 0]
    s = F - b  # θᵀx_r
    if loss == "squared":
        rho2, second = MixupLambda(alpha, beta).rho2(), float((s * s).mean())
        first = float(((F - Y) * s.mean()).mean())
        if second == 0.0:
            return first
        return math.inf if math.isinf(rho2) else first + 0.5 * rho2 * second
    check_pairs(n, n, "the frozen-scale expectation")
    q = DEFAULT_NODES if nodes is None else nodes
    lam_np, w_np = MixupLambda(alpha, beta).nodes(q)
    lam = torch.as_tensor(lam_np, dtype=DTYPE, device=F.device)
    w = torch.as_tensor(w_np, dtype=DTYPE, device=F.device)
    zero = torch.zeros((), dtype=DTYPE, device=F.device)
    total = torch.zeros((), dtype=DTYPE, device=F.device)
    rows = max(1, chunk_elements // (2 * q * n))
    for i0 in range(0, n, rows):
        Fi = F[i0:i0 + rows, None, None]
        acc = torch.zeros((), dtype=DTYPE, device=F.device)
        for mu in (lam, 1 - lam):  # λ g(λ) and (1−λ) g(1−λ)
            mixed = (mu[None, :, None] * Fi + (1 - mu)[None, :, None] * s[None, None, :]) / mu[None, :, None]
            persp = mu[None, :, None] * torch.logaddexp(mixed, zero)  # (B, Q, n)
            acc = acc + (persp.sum(-1) @ w).sum()
        total = total + acc
    mean_softplus = total / n ** 2
    label_term = (Y * (F + s.mean())).mean()  # E_{D̃}[t] = 1
    standard = (torch.logaddexp(F, zero) - Y * F).mean()
    return float(mean_softplus - label_term - standard)


@fill_doc
def regularizer_comparison(X, y, alphas=ALPHAS, beta=None, *, loss: str = "logistic", model=None,
                           C: float = 1.0, nodes: int | None = None) -> list[dict]:
    """C9 table: paper form, shrinkage form and plain expansion against exact Mixup excesses, per α.

    C9 — Zhang et al. 2021, Lemma 4.1; docs/theory.md §5.1.

    ``X`` is centered here (the forms assume x̄ = 0; centering is exact for the comparison).
    ``model=None`` fits one: logistic → ``sklearn.linear_model.LogisticRegression(C=C,
    fit_intercept=False)``; squared → ``sklearn.linear_model.Ridge(alpha=1/C)`` with intercept.
    ``beta=None`` means β = α for each α. One dict per α with keys:

    - ``alpha, beta, m1, m2, rho2``; ``L_std``; ``L_mix`` (exact, ``theory.mixup_loss``; for squared
      the θ-dependent RHS of (I)); ``S`` = E_{D̃} L_std(λθ) (``shrunk_standard_loss``);
    - exact targets: ``exact_vs_std = L_mix − L_std``, ``exact_vs_shrunk = L_mix − S``,
      ``frozen = F − L_std`` (``frozen_scale_excess``);
    - forms: ``paper``, ``shrinkage`` (``glm_regularizer``), ``expansion = R1 + R2 + R3``;
    - errors (form − target): ``shrinkage_err`` (vs exact_vs_shrunk), ``paper_err`` (vs
      exact_vs_shrunk, the primary comparison), ``paper_err_vs_std``, ``paper_err_vs_frozen``,
      ``expansion_err`` (vs exact_vs_std), and ``*_rel`` = ``abs(err) / abs(target)``.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Inputs (centered here).
    %(y)s
    alphas : sequence of float, default (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
        The α values.
    beta : float, optional
        Fixed β; ``None`` means β = α for each α.
    %(loss_binary)s
    model : torch.nn.Module, optional
        A fitted linear model; ``None`` fits one (see above).
    C : float, default 1.0
        Inverse regularization strength of the fit.
    %(nodes_fixed)s

    Returns
    -------
    list of dict
        One row per α with the keys listed above.

    %(raises_range)s

    See Also
    --------
    glm_regularizer, shrunk_standard_loss, frozen_scale_excess : The columns.
    manifold_comparison : The same table at a network's hidden layer (C11).

    Examples
    --------
    %(example_data)s
    >>> rows = theory.regularizer_comparison(X, y, alphas=(1.0, 2.0))
    >>> [row["alpha"] for row in rows], rows[0]["paper"], round(rows[1]["rho2"], 12)
    ([1.0, 2.0], inf, 3.0)
    """
    from ._expansion import mixup_expansion
    from ._mixup_loss import mixup_loss, squared_label_constant

    check_choice(loss, "loss", GLM_LOSSES)
    pairs = check_alphas(alphas, beta)
    check_positive(C, "C")
    if nodes is not None:
        check_nodes(nodes)
    if model is not None:
        check_model(model)
    Xc = as_matrix(X, "X")
    Xc = (Xc - Xc.mean(0)).cpu().numpy()
    y_np = as_labels(y, Xc.shape[0], "y", kind="binary" if loss == "logistic" else "targets")
    y_np = y_np.cpu().numpy().astype(float).reshape(-1)
    if model is None:
        model = _fit_linear(Xc, y_np, loss, C)
    rows = []
    for a, b in pairs:
        mix = MixupLambda(a, b)
        exp = mixup_expansion(model, Xc, y_np, a, b, loss=loss)
        L_mix = mixup_loss(model, Xc, y_np, a, b, loss=loss)
        if loss == "squared":
            L_mix += squared_label_constant(y_np, a, b)
        S = shrunk_standard_loss(model, Xc, y_np, a, b, loss=loss, nodes=nodes)
        row = dict(alpha=a, beta=b, m1=mix.m(1), m2=mix.m(2), rho2=mix.rho2(), L_std=exp.standard,
                   L_mix=L_mix, S=S, exact_vs_std=L_mix - exp.standard, exact_vs_shrunk=L_mix - S,
                   frozen=frozen_scale_excess(model, Xc, y_np, a, b, loss=loss, nodes=nodes),
                   paper=glm_regularizer(model, Xc, a, b, loss=loss, form="paper"),
                   shrinkage=glm_regularizer(model, Xc, a, b, loss=loss, form="shrinkage", nodes=nodes),
                   expansion=exp.r1 + exp.r2 + exp.r3)
        for name, form, target in [("shrinkage_err", "shrinkage", "exact_vs_shrunk"),
                                   ("paper_err", "paper", "exact_vs_shrunk"),
                                   ("paper_err_vs_std", "paper", "exact_vs_std"),
                                   ("paper_err_vs_frozen", "paper", "frozen"),
                                   ("expansion_err", "expansion", "exact_vs_std")]:
            err = row[form] - row[target]
            row[name] = err
            row[name + "_rel"] = abs(err) / abs(row[target]) if row[target] != 0 else math.inf
        rows.append(row)
    return rows


def _fit_linear(X: np.ndarray, y: np.ndarray, loss: str, C: float):
    """A float64 linear model fitted by scikit-learn (no intercept for logistic on centered data)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from ._models import linear_model

    if not (isinstance(C, (int, float)) and math.isfinite(C) and C > 0):
        raise ValueError(f"C must be a finite number > 0, got {C!r}")
    if loss == "logistic":
        clf = LogisticRegression(C=C, fit_intercept=False, max_iter=10_000, tol=1e-10).fit(X, y)
        return linear_model(X.shape[1], bias=False, weight=clf.coef_)
    reg = Ridge(alpha=1.0 / C).fit(X, y)
    return linear_model(X.shape[1], weight=reg.coef_, intercept=reg.intercept_)
