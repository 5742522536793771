"""C11: a two-layer ReLU net with Mixup at the hidden layer (Manifold Mixup), Zhang et al. 2021,
Theorem 4.3; docs/theory.md §5.3.

``f(x) = θ₁ᵀφ(x) + θ₀``, ``φ(x) = σ(Wx + b)``. Manifold Mixup mixes hidden features:
``l(θ, (λφ(x_i) + (1−λ)φ(x_j), λy_i + (1−λ)y_j))`` — the Mixup loss of the *linear* head on the
features, so every C9/C10 formula applies with ``x ↦ φ(x)``:

- exact loss: ``theory.mixup_loss`` of the head on ``Φ = φ(X)`` (all pairs × quadrature);
- regularizer: the GLM forms in θ₁ on centered features ``φ − φ̄`` (centering is exact: the shift
  ``θ₁ᵀφ̄`` moves into the intercept and commutes with mixing). Squared loss (h'' = 1):
  paper ``½ρ₂ θ₁ᵀΣ̂_φθ₁``, shrinkage ``½m₂ θ₁ᵀΣ̂_φθ₁`` — and for the squared loss the shrinkage form is
  *exact*: ``RHS(I) − E_{D̃}L_std(λθ₁) = ½m₂ θ₁ᵀΣ̂_φθ₁`` (the loss is quadratic in the perturbation);
- complexity: ``W^NN_γ = {θ₁ᵀΣ_φθ₁ ≤ γ}`` is an ellipsoid in feature space, ``Rad ≤ √(γ·rank(Σ_φ)/n)``
  (``Σ_φ = Φᵀ Φ/n``, uncentered, like Σ₀ in C10).

Any ``nn.Sequential`` ending in ``nn.Linear`` is accepted: φ is everything before the last layer
(for deeper nets this is Manifold Mixup at the last hidden layer).
"""
from __future__ import annotations

import torch
from torch import nn

from ._problem import evaluate
from ._validate import DTYPE, check_alpha_beta, check_alphas, check_nodes
from ._models import as_function, linear_model
from ._docs import fill_doc


def _split(model):
    if not isinstance(model, nn.Sequential) or len(model) < 2 or not isinstance(model[-1], nn.Linear):
        raise ValueError("model must be an nn.Sequential of at least two layers ending in nn.Linear "
                         "(features φ = all layers but the last, head = the last nn.Linear)")
    return model[:-1], model[-1]


@fill_doc
def hidden_features(model, X) -> torch.Tensor:
    """``Φ = φ(X)``: the input of the model's last ``nn.Linear``, float64 ``(n, H)`` on the model's device.

    C11 — Zhang et al. 2021, Theorem 4.3; docs/theory.md §5.3.

    Parameters
    ----------
    %(model_head)s
    %(X)s

    Returns
    -------
    torch.Tensor, shape (n, H)
        The features ``φ(x_i)``.

    %(raises_head)s

    See Also
    --------
    centered_head : The head on centered features.

    Examples
    --------
    %(example_relu)s
    >>> tuple(theory.hidden_features(net, np.ones((3, 2))).shape)
    (3, 5)
    """
    body, _ = _split(model)
    _, Xt, shape, _ = evaluate(model, X)  # checks the model, X and X's fit before any work
    with torch.no_grad():
        Phi = as_function(body)(Xt.reshape(Xt.shape[0], *shape))
    return Phi.reshape(Xt.shape[0], -1).detach()


def _head_params(model):
    _, head = _split(model)
    W = head.weight.detach().to(DTYPE)
    b = head.bias.detach().to(DTYPE) if head.bias is not None else torch.zeros(W.shape[0], dtype=DTYPE,
                                                                                device=W.device)
    return W, b


@fill_doc
def centered_head(model, X):
    """``(head_c, Φ − φ̄)``: a float64 linear head with intercept ``θ₀ + θ₁ᵀφ̄`` on centered features.

    C11 — Zhang et al. 2021, Theorem 4.3; docs/theory.md §5.3.

    ``head_c(φ(x) − φ̄) = f(x)`` exactly; mixing commutes with the shift (weights sum to 1).

    Parameters
    ----------
    %(model_head)s
    %(X)s

    Returns
    -------
    head_c : torch.nn.Sequential
        The linear head with the shifted intercept.
    features : torch.Tensor, shape (n, H)
        ``Φ − φ̄``.

    %(raises_head)s

    See Also
    --------
    hidden_features : ``Φ`` itself.
    manifold_regularizer : Uses the centered head.

    Examples
    --------
    >>> import numpy as np, torch, theory
    >>> net = theory.relu_mlp(2, [5], generator=0)
    >>> X = np.random.default_rng(0).standard_normal((4, 2))
    >>> head, F = theory.centered_head(net, X)
    >>> torch.allclose(head(F), net(torch.tensor(X)))
    True
    """
    Phi = hidden_features(model, X)
    W, b = _head_params(model)
    mean = Phi.mean(0)
    head = linear_model(W.shape[1], W.shape[0], weight=W.cpu(), intercept=(b + W @ mean).cpu())
    return head.to(Phi.device), Phi - mean


@fill_doc
def manifold_mixup_loss(model, X, y, alpha, beta=None, *, loss: str = "squared", nodes: int | None = None) -> float:
    """C11: exact Manifold Mixup loss ``(1/n²) Σ_ij E_λ l(θ, (λφ_i + (1−λ)φ_j, λy_i + (1−λ)y_j))``.

    C11 — Zhang et al. 2021, Theorem 4.3; docs/theory.md §5.3.

    ``theory.mixup_loss`` of the last ``nn.Linear`` on the hidden features (all pairs × Gauss–Jacobi).

    ``y``: real targets for ``loss="squared"`` (the default, as in C11), labels in {0, 1} for ``"logistic"``.

    Parameters
    ----------
    %(model_head)s
    %(X)s
    %(y)s
    %(alpha)s
    %(beta)s
    loss : {"squared", "logistic", "softmax"}, default "squared"
        The GLM-form loss.
    nodes : int, optional
        Fixed Gauss–Jacobi rule.

    Returns
    -------
    float
        The exact Manifold Mixup loss.

    %(raises_range_or_head)s

    See Also
    --------
    mixup_loss : The input-level Mixup loss.
    manifold_regularizer, manifold_comparison : Its regularizer.

    Examples
    --------
    %(example_relu)s
    >>> X = np.random.default_rng(0).standard_normal((6, 2)); y = np.linspace(0, 1, 6)
    >>> bool(theory.manifold_mixup_loss(net, X, y, 1.0) > 0)
    True
    """
    from ._mixup_loss import mixup_loss

    check_alpha_beta(alpha, beta)
    _, head = _split(model)
    return mixup_loss(nn.Sequential(head), hidden_features(model, X), y, alpha, beta, loss=loss, nodes=nodes)


@fill_doc
def manifold_regularizer(model, X, alpha, beta=None, *, loss: str = "squared", form: str = "paper",
                         nodes: int | None = None) -> float:
    """C11: the GLM regularizer in θ₁ on centered hidden features (``theory.glm_regularizer``).

    C11 — Zhang et al. 2021, Theorem 4.3; docs/theory.md §5.3.

    Squared loss: ``½ρ₂ θ₁ᵀΣ̂_φθ₁`` (paper; ∞ unless α, β > 1) or ``½m₂ θ₁ᵀΣ̂_φθ₁`` (shrinkage).

    Parameters
    ----------
    %(model_head)s
    %(X)s
    %(alpha)s
    %(beta)s
    %(loss_squared_default)s
    form : {"paper", "shrinkage"}, default "paper"
        Which regularizer.
    nodes : int, optional
        Gauss–Jacobi nodes (shrinkage form).

    Returns
    -------
    float
        The regularizer; ``math.inf`` for the paper form when ``ρ₂ = ∞``.

    %(raises_range_or_head)s

    See Also
    --------
    glm_regularizer : The input-level regularizer.
    manifold_comparison : Against the exact Manifold Mixup loss.

    Examples
    --------
    %(example_relu)s
    >>> X = np.random.default_rng(0).standard_normal((6, 2))
    >>> theory.manifold_regularizer(net, X, 1.0)  # ρ₂ = ∞ for α ≤ 1
    inf
    """
    from ._regularizer import glm_regularizer

    check_alpha_beta(alpha, beta)
    if nodes is not None:
        check_nodes(nodes)
    head, Phi_c = centered_head(model, X)
    return glm_regularizer(head, Phi_c, alpha, beta, loss=loss, form=form, nodes=nodes)


@fill_doc
def manifold_comparison(model, X, y, alphas=None, beta=None, *, loss: str = "squared",
                        nodes: int | None = None) -> list[dict]:
    """C11 table: ``theory.regularizer.regularizer_comparison`` for the head on centered hidden features.

    C11 — Zhang et al. 2021, Theorem 4.3; docs/theory.md §5.3.

    Parameters
    ----------
    %(model_head)s
    %(X)s
    %(y)s
    alphas : sequence of float, optional
        The α values (default as ``regularizer_comparison``).
    beta : float, optional
        Fixed β; ``None`` means β = α.
    %(loss_squared_default)s
    %(nodes_fixed)s

    Returns
    -------
    list of dict
        One row per α, keys as ``regularizer_comparison``.

    %(raises_range)s

    See Also
    --------
    regularizer_comparison : The input-level table.

    Examples
    --------
    %(example_relu)s
    >>> X = np.random.default_rng(0).standard_normal((6, 2)); y = np.linspace(0, 1, 6)
    >>> [row["alpha"] for row in theory.manifold_comparison(net, X, y, alphas=(2.0,))]
    [2.0]
    """
    from ._regularizer import ALPHAS, regularizer_comparison

    check_alphas(ALPHAS if alphas is None else alphas, beta)
    head, Phi_c = centered_head(model, X)
    return regularizer_comparison(Phi_c, y, ALPHAS if alphas is None else alphas, beta, loss=loss,
                                  model=head, nodes=nodes)


@fill_doc
def manifold_rademacher(model, X, gamma, *, draws: int = 2000, generator=None):
    """C11: Rademacher complexity of ``{φ ↦ θ₁ᵀφ : θ₁ᵀΣ̂_φθ₁ ≤ γ}`` on the hidden features.

    C11 — Zhang et al. 2021, Theorem 4.3; docs/theory.md §5.3.

    ``theory.rademacher(Φ, γ, cls="ellipsoid")``: ``bound = √(γ·rank(Σ_φ)/n)``, ``rank`` = rank of Φ.

    Parameters
    ----------
    %(model_head)s
    %(X)s
    gamma : float
        ``γ`` of the class.
    draws : int, default 2000
        Sign vectors.
    %(generator_numpy)s

    Returns
    -------
    RademacherEstimate
        As ``rademacher`` on the hidden features.

    %(raises_range)s

    See Also
    --------
    rademacher : The input-level complexity.

    Examples
    --------
    %(example_relu)s
    >>> X = np.random.default_rng(0).standard_normal((20, 2))
    >>> r = theory.manifold_rademacher(net, X, 1.0, draws=200, generator=0)
    >>> bool(r.value <= r.bound)
    True
    """
    from ._complexity import rademacher

    return rademacher(hidden_features(model, X), gamma, cls="ellipsoid", draws=draws, generator=generator)
