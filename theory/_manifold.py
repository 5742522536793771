"""C11: a two-layer ReLU net with Mixup at the hidden layer (Manifold Mixup), Zhang et al. 2021,
Section 4; docs/theory.md §5.3.

``f(x) = θ₁ᵀφ(x) + θ₀``, ``φ(x) = σ(Wx + b)``. Manifold Mixup mixes hidden features:
``l(θ, (λφ(x_i) + (1−λ)φ(x_j), λy_i + (1−λ)y_j))`` — the Mixup loss of the *linear* head on the
features, so every C9/C10 formula applies with ``x ↦ φ(x)``:

- exact loss: ``theory.mixup_loss`` of the head on ``Φ = φ(X)`` (all pairs × quadrature);
- regularizer: the GLM forms in θ₁ on centered features ``φ − φ̄`` (centering is exact: the shift
  ``θ₁ᵀφ̄`` moves into the intercept and commutes with mixing). Squared loss (A'' = 1):
  paper ``½ρ₂ θ₁ᵀΣ̂_φθ₁``, shrinkage ``½m₂ θ₁ᵀΣ̂_φθ₁`` — and for the squared loss the shrinkage form is
  *exact*: ``RHS(I) − E_{D̃}L_std(λθ₁) = ½m₂ θ₁ᵀΣ̂_φθ₁`` (the loss is quadratic in the perturbation);
- complexity: ``W^NN_γ = {θ₁ᵀΣ_φθ₁ ≤ γ}`` is an ellipsoid in feature space, ``Rad ≤ √(γ·rank(Σ_φ)/n)``
  (``Σ_φ = Φᵀ Φ/n``, uncentered, like Σ_X in C10).

Any ``nn.Sequential`` ending in ``nn.Linear`` is accepted: φ is everything before the last layer
(for deeper nets this is Manifold Mixup at the last hidden layer).
"""
from __future__ import annotations

import torch
from torch import nn

from ._problem import evaluate
from ._validate import DTYPE, check_alpha_beta, check_alphas, check_nodes
from ._models import as_function, linear_model


def _split(model):
    if not isinstance(model, nn.Sequential) or len(model) < 2 or not isinstance(model[-1], nn.Linear):
        raise ValueError("model must be an nn.Sequential of at least two layers ending in nn.Linear "
                         "(features φ = all layers but the last, head = the last nn.Linear)")
    return model[:-1], model[-1]


def hidden_features(model, X) -> torch.Tensor:
    """``Φ = φ(X)``: the input of the model's last ``nn.Linear``, float64 ``(n, H)`` on the model's device.

    C11 — Zhang et al. 2021, two-layer ReLU network result (Section 4); docs/theory.md §5.3.
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


def centered_head(model, X):
    """``(head_c, Φ − φ̄)``: a float64 linear head with intercept ``θ₀ + θ₁ᵀφ̄`` on centered features.

    C11 — Zhang et al. 2021, two-layer ReLU network result (Section 4); docs/theory.md §5.3.

    ``head_c(φ(x) − φ̄) = f(x)`` exactly; mixing commutes with the shift (weights sum to 1).
    """
    Phi = hidden_features(model, X)
    W, b = _head_params(model)
    mean = Phi.mean(0)
    head = linear_model(W.shape[1], W.shape[0], weight=W.cpu(), intercept=(b + W @ mean).cpu())
    return head.to(Phi.device), Phi - mean


def manifold_mixup_loss(model, X, y, alpha, beta=None, *, loss: str = "squared", nodes: int | None = None) -> float:
    """C11: exact Manifold Mixup loss ``(1/n²) Σ_ij E_λ l(θ, (λφ_i + (1−λ)φ_j, λy_i + (1−λ)y_j))``.

    C11 — Zhang et al. 2021, two-layer ReLU network result (Section 4); docs/theory.md §5.3.

    ``theory.mixup_loss`` of the last ``nn.Linear`` on the hidden features (all pairs × Gauss–Jacobi).
    ``y``: real targets for ``loss="squared"`` (the default, as in C11), labels in {0, 1} for ``"logistic"``.
    """
    from ._mixup_loss import mixup_loss

    check_alpha_beta(alpha, beta)
    _, head = _split(model)
    return mixup_loss(nn.Sequential(head), hidden_features(model, X), y, alpha, beta, loss=loss, nodes=nodes)


def manifold_regularizer(model, X, alpha, beta=None, *, loss: str = "squared", form: str = "paper",
                         nodes: int | None = None) -> float:
    """C11: the GLM regularizer in θ₁ on centered hidden features (``theory.glm_regularizer``).

    C11 — Zhang et al. 2021, two-layer ReLU network result (Section 4); docs/theory.md §5.3.

    Squared loss: ``½ρ₂ θ₁ᵀΣ̂_φθ₁`` (paper; ∞ unless α, β > 1) or ``½m₂ θ₁ᵀΣ̂_φθ₁`` (shrinkage).
    """
    from ._regularizer import glm_regularizer

    check_alpha_beta(alpha, beta)
    if nodes is not None:
        check_nodes(nodes)
    head, Phi_c = centered_head(model, X)
    return glm_regularizer(head, Phi_c, alpha, beta, loss=loss, form=form, nodes=nodes)


def manifold_comparison(model, X, y, alphas=None, beta=None, *, loss: str = "squared",
                        nodes: int | None = None) -> list[dict]:
    """C11 table: ``theory.regularizer.regularizer_comparison`` for the head on centered hidden features.

    C11 — Zhang et al. 2021, two-layer ReLU network result (Section 4); docs/theory.md §5.3.
    """
    from ._regularizer import ALPHAS, regularizer_comparison

    check_alphas(ALPHAS if alphas is None else alphas, beta)
    head, Phi_c = centered_head(model, X)
    return regularizer_comparison(Phi_c, y, ALPHAS if alphas is None else alphas, beta, loss=loss,
                                  model=head, nodes=nodes)


def manifold_rademacher(model, X, gamma, *, draws: int = 2000, generator=None):
    """C11: Rademacher complexity of ``{φ ↦ θ₁ᵀφ : θ₁ᵀΣ̂_φθ₁ ≤ γ}`` on the hidden features.

    C11 — Zhang et al. 2021, two-layer ReLU network result (Section 4); docs/theory.md §5.3.

    ``theory.rademacher(Φ, γ, cls="ellipsoid")``: ``bound = √(γ·rank(Σ_φ)/n)``, ``rank`` = rank of Φ.
    """
    from ._complexity import rademacher

    return rademacher(hidden_features(model, X), gamma, cls="ellipsoid", draws=draws, generator=generator)
