"""C11: two-layer ReLU net with Mixup at the hidden layer (Manifold Mixup).

References: a brute-force double loop over pairs with the hidden features computed here by numpy and
adaptive quadrature over λ (scipy.integrate.quad with the Beta density), closed forms in the feature
covariance, and numpy's matrix rank.
"""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from torch import nn

import theory
from theory import (centered_head, hidden_features, manifold_comparison, manifold_mixup_loss,
                             manifold_rademacher, manifold_regularizer)
from theory import squared_label_constant

QUAD_RTOL = 1e-8
N_SE = 5


def net(d=3, hidden=4, seed=0):
    return theory.relu_mlp(d, [hidden], generator=torch.Generator().manual_seed(seed))


def numpy_features(model, X):
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    return np.maximum(X @ W.T + b, 0.0)


def beta_expect(g, a, b):
    """E_{Beta(a,b)}[g] by QUADPACK's QAWS rule for the algebraic endpoint weight λ^(a−1)(1−λ)^(b−1)."""
    value = integrate.quad(g, 0, 1, weight="alg", wvar=(a - 1, b - 1), limit=200, epsabs=0, epsrel=1e-12)[0]
    return value / special.beta(a, b)


@pytest.mark.parametrize("loss, alpha", [("squared", 0.5), ("logistic", 0.5), ("squared", 2.0)])
def test_manifold_mixup_loss_vs_brute_force_loop(loss, alpha):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    y = rng.integers(0, 2, 5).astype(float) if loss == "logistic" else rng.standard_normal(5)
    model = net()
    Phi = numpy_features(model, X)
    w, b0 = model[2].weight.detach().numpy()[0], float(model[2].bias.detach())
    total = 0.0
    for i in range(5):
        for j in range(5):
            def g(lam):
                f = w @ (lam * Phi[i] + (1 - lam) * Phi[j]) + b0
                yt = lam * y[i] + (1 - lam) * y[j]
                return 0.5 * (yt - f) ** 2 if loss == "squared" else np.logaddexp(f, 0) - yt * f
            total += beta_expect(g, alpha, alpha)
    assert manifold_mixup_loss(model, X, y, alpha, loss=loss) == pytest.approx(total / 25, rel=QUAD_RTOL)


def test_centered_head_reproduces_the_network():
    X = np.random.default_rng(1).standard_normal((12, 3))
    model = net(seed=2)
    head, Phi_c = centered_head(model, X)
    with torch.no_grad():
        expected = model(torch.as_tensor(X)).numpy()[:, 0]
        got = head(Phi_c).numpy()[:, 0]
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(Phi_c.numpy().mean(0), 0, atol=1e-12)


@pytest.mark.parametrize("alpha, beta", [(2.0, 2.0), (3.0, 1.5)])
def test_manifold_regularizer_closed_forms_squared(alpha, beta):
    """Squared loss: paper ½ρ₂θ₁ᵀΣ̂_φθ₁, shrinkage ½m₂θ₁ᵀΣ̂_φθ₁ (ρ₂, m₂ by quadrature here)."""
    X = np.random.default_rng(2).standard_normal((20, 3))
    model = net(hidden=6, seed=3)
    Phi = numpy_features(model, X)
    w = model[2].weight.detach().numpy()[0]
    quad_form = w @ np.cov(Phi.T, bias=True) @ w
    pdf = lambda lam: (alpha / (alpha + beta) * stats.beta.pdf(lam, alpha + 1, beta)
                       + beta / (alpha + beta) * stats.beta.pdf(lam, beta + 1, alpha))
    rho2 = integrate.quad(lambda lam: ((1 - lam) / lam) ** 2 * pdf(lam), 0, 1, limit=200)[0]
    m2 = integrate.quad(lambda lam: (1 - lam) ** 2 * pdf(lam), 0, 1, limit=200)[0]
    assert manifold_regularizer(model, X, alpha, beta) == pytest.approx(0.5 * rho2 * quad_form, rel=1e-8)
    shrink = manifold_regularizer(model, X, alpha, beta, form="shrinkage")
    assert shrink == pytest.approx(0.5 * m2 * quad_form, rel=1e-8)
    assert math.isinf(manifold_regularizer(model, X, 1.0, beta))


@pytest.mark.parametrize("alpha", [0.4, 2.0])
def test_squared_manifold_shrinkage_form_is_exact(alpha):
    """RHS(I) of the manifold loss minus E_{D̃}L_std(λθ₁ on centered features) = ½m₂θ₁ᵀΣ̂_φθ₁ exactly."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((15, 3)), rng.standard_normal(15)
    model = net(hidden=5, seed=5)
    Phi = numpy_features(model, X)
    w, b0 = model[2].weight.detach().numpy()[0], float(model[2].bias.detach())
    z = (Phi - Phi.mean(0)) @ w
    c = b0 + w @ Phi.mean(0)
    pdf = lambda lam: stats.beta.pdf(lam, alpha + 1, alpha)
    S = integrate.quad(lambda lam: np.mean(0.5 * (lam * z + c - y) ** 2) * pdf(lam), 0, 1, limit=200)[0]
    rhs = manifold_mixup_loss(model, X, y, alpha) + squared_label_constant(y, alpha)
    assert rhs - S == pytest.approx(manifold_regularizer(model, X, alpha, form="shrinkage"), rel=1e-8)
    row = manifold_comparison(model, X, y, (alpha,))[0]
    assert row["shrinkage_err"] == pytest.approx(0.0, abs=1e-10)


def test_manifold_rademacher_uses_feature_rank():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((40, 3))
    model = net(hidden=8, seed=7)
    with torch.no_grad():
        model[0].bias[:3] = -100.0  # three dead units: rank(Σ_φ) drops
    Phi = numpy_features(model, X)
    est = manifold_rademacher(model, X, 0.8, draws=2000, generator=np.random.default_rng(8))
    assert est.rank == np.linalg.matrix_rank(Phi) <= 5
    assert est.bound == pytest.approx(math.sqrt(0.8 * est.rank / 40))
    assert est.value <= est.bound + N_SE * est.stderr
    assert np.allclose(hidden_features(model, X).numpy(), Phi, atol=1e-12)


def test_bad_input():
    X = np.zeros((4, 3))
    for model in (theory.linear_model(3), nn.Sequential(nn.Linear(3, 2), nn.ReLU()), lambda Z: Z[:, 0]):
        with pytest.raises(ValueError, match="Sequential"):
            manifold_mixup_loss(model, X, np.zeros(4), 1.0)
    with pytest.raises(ValueError, match="form"):
        manifold_regularizer(net(), X, 2.0, form="adaptive")
    with pytest.raises(ValueError, match="c"):
        manifold_rademacher(net(), np.ones((4, 3)), 0.0)
