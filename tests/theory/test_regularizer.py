"""C9: the GLM regularizer (paper and shrinkage forms) against independent computations.

Independent references: scipy.integrate.quad over λ with the D̃ density written from scipy.stats.beta
(not the Gauss–Jacobi nodes), numpy formulas written here, and exact identities of the squared loss.
"""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

import theory
from theory import mixup_loss, squared_label_constant
from theory import frozen_scale_excess, regularizer_comparison, shrunk_standard_loss

QUAD_RTOL = 1e-9  # Gauss–Jacobi (64 nodes) vs adaptive quadrature, smooth integrands
IDENTITY_ATOL = 1e-12


def dtilde_pdf(lam, a, b):
    """Density of D̃ = (a/(a+b)) Beta(a+1, b) + (b/(a+b)) Beta(b+1, a), from scipy.stats."""
    return a / (a + b) * stats.beta.pdf(lam, a + 1, b) + b / (a + b) * stats.beta.pdf(lam, b + 1, a)


def beta_expect(g, a, b):
    """E_{Beta(a,b)}[g] by QUADPACK's QAWS rule for the algebraic endpoint weight λ^(a−1)(1−λ)^(b−1)."""
    value = integrate.quad(g, 0, 1, weight="alg", wvar=(a - 1, b - 1), limit=200, epsabs=0, epsrel=1e-12)[0]
    return value / special.beta(a, b)


def dtilde_expect(g, a, b):
    """E_{D̃}[g(λ)] by adaptive quadrature over the two Beta components of D̃ (g finite on [0, 1])."""
    return a / (a + b) * beta_expect(g, a + 1, b) + b / (a + b) * beta_expect(g, b + 1, a)


def dtilde_rho2(a, b):
    """ρ₂ = E_{D̃}[(1−λ)²/λ²]: QAWS with the factor moved into the weight (exponents a−3, b+1)."""
    total = 0.0
    for w, p, q in ((a / (a + b), a + 1, b), (b / (a + b), b + 1, a)):
        value = integrate.quad(lambda lam: 1.0, 0, 1, weight="alg", wvar=(p - 3, q + 1), epsabs=0, epsrel=1e-12)[0]
        total += w * value / special.beta(p, q)
    return total


def dtilde_expect_open(g, a, b):
    """E_{D̃}[g(λ)] for g singular at λ = 0: density from scipy.stats, λ = u² on [0, ½], λ = 1 − u² on [½, 1]."""
    f = lambda lam: g(lam) * dtilde_pdf(lam, a, b)
    opts = dict(limit=200, epsabs=0, epsrel=1e-11)
    left = integrate.quad(lambda u: 2 * u * f(u * u), 0, math.sqrt(0.5), **opts)[0]
    right = integrate.quad(lambda u: 2 * u * f(1 - u * u), 0, math.sqrt(0.5), **opts)[0]
    return left + right


def problem(n=30, d=4, seed=0, scale=1.0, intercept=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    X -= X.mean(0)
    theta = scale * rng.standard_normal(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ theta))).astype(float)
    model = theory.linear_model(d, weight=theta, intercept=intercept)
    return model, X, y, theta


def sigmoid_curv(z):
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)


@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (1.0, 3.0), (3.0, 1.0), (0.5, 0.5), (0.2, 5.0),
                                         (1.0 + 1e-9, 2.0), (2.0, 2.0), (1.5, 4.0)])
def test_paper_form_infinite_iff_alpha_or_beta_at_most_one(alpha, beta):
    model, X, _, _ = problem()
    paper = theory.glm_regularizer(model, X, alpha, beta, form="paper")
    assert math.isinf(paper) == (alpha <= 1 or beta <= 1)
    assert math.isfinite(theory.glm_regularizer(model, X, alpha, beta, form="shrinkage"))


@pytest.mark.parametrize("alpha, beta, intercept", [(2.0, 2.0, 0.0), (2.0, 3.5, 0.7), (6.0, 1.5, -0.3)])
def test_paper_form_matches_brute_force(alpha, beta, intercept):
    model, X, _, theta = problem(intercept=intercept)
    rho2 = dtilde_rho2(alpha, beta)
    sigma_hat = np.cov(X.T, bias=True)
    expected = 0.5 * np.mean(sigmoid_curv(X @ theta + intercept)) * rho2 * theta @ sigma_hat @ theta
    got = theory.glm_regularizer(model, X, alpha, beta, form="paper")
    assert got == pytest.approx(expected, rel=QUAD_RTOL)
    sq = theory.glm_regularizer(model, X, alpha, beta, form="paper", loss="squared")
    assert sq == pytest.approx(0.5 * rho2 * theta @ sigma_hat @ theta, rel=QUAD_RTOL)


@pytest.mark.parametrize("alpha, beta, intercept", [(0.2, None, 0.0), (1.0, None, 0.4), (0.5, 3.0, -0.2), (8.0, None, 0.0)])
def test_shrinkage_form_matches_adaptive_quadrature(alpha, beta, intercept):
    model, X, y, theta = problem(intercept=intercept, scale=2.0)
    b = alpha if beta is None else beta
    z = X @ theta
    second = dtilde_expect(lambda lam: (1 - lam) ** 2 * np.mean(sigmoid_curv(lam * z + intercept)), alpha, b)
    expected = 0.5 * second * np.var(z)
    assert theory.glm_regularizer(model, X, alpha, beta, form="shrinkage") == pytest.approx(expected, rel=QUAD_RTOL)
    softplus = lambda t: np.logaddexp(t, 0)
    S = dtilde_expect(lambda lam: np.mean(softplus(lam * z + intercept) - y * (lam * z + intercept)), alpha, b)
    assert shrunk_standard_loss(model, X, y, alpha, beta) == pytest.approx(S, rel=QUAD_RTOL)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 3.0])
def test_squared_loss_shrinkage_form_is_exact(alpha):
    """Squared loss is quadratic in the centred perturbation: RHS(I) − S(θ) equals the shrinkage form."""
    model, X, _, _ = problem(intercept=0.5)
    y = np.random.default_rng(3).standard_normal(len(X))
    rhs = mixup_loss(model, X, y, alpha, loss="squared") + squared_label_constant(y, alpha)
    S = shrunk_standard_loss(model, X, y, alpha, loss="squared")
    reg = theory.glm_regularizer(model, X, alpha, loss="squared", form="shrinkage")
    assert rhs - S == pytest.approx(reg, rel=1e-10, abs=IDENTITY_ATOL)


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (2.0, 3.0)])
def test_frozen_scale_excess_matches_quadrature(alpha, beta):
    """F(θ) − L_std(θ) by a double loop over (i, r) with adaptive quadrature over λ ~ D̃."""
    model, X, y, theta = problem(n=5, d=2, seed=1, intercept=0.3)
    z, s = X @ theta + 0.3, X @ theta
    softplus = lambda t: np.logaddexp(t, 0)
    F = 0.0
    for i in range(len(X)):
        for r in range(len(X)):
            g = lambda lam: softplus(z[i] + (1 - lam) / lam * s[r]) - y[i] * (z[i] + (1 - lam) / lam * s[r])
            F += dtilde_expect_open(g, alpha, beta)
    expected = F / len(X) ** 2 - np.mean(softplus(z) - y * z)
    assert frozen_scale_excess(model, X, y, alpha, beta) == pytest.approx(expected, rel=1e-8)


def test_frozen_scale_excess_squared_equals_paper_form():
    model, X, _, _ = problem(intercept=0.2)
    y = np.random.default_rng(1).standard_normal(len(X))
    paper = theory.glm_regularizer(model, X, 2.5, loss="squared")
    assert frozen_scale_excess(model, X, y, 2.5, loss="squared") == pytest.approx(paper, rel=1e-10)
    assert math.isinf(frozen_scale_excess(model, X, y, 1.0, loss="squared"))


def test_comparison_squared_loss_identities():
    """Squared loss: shrinkage form and the plain expansion are exact, the paper form equals F − L_std."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.standard_normal(40)
    for row in regularizer_comparison(X, y, (0.5, 2.0), loss="squared"):
        assert row["shrinkage_err"] == pytest.approx(0, abs=1e-10)
        assert row["expansion_err"] == pytest.approx(0, abs=1e-10)
        if row["alpha"] > 1:
            assert row["paper_err_vs_frozen"] == pytest.approx(0, abs=1e-10)
        else:
            assert math.isinf(row["paper"]) and math.isinf(row["frozen"])


def test_comparison_logistic_small_theta_limits():
    """As θ = εθ₀ → 0 the logistic loss becomes quadratic.

    - shrinkage form vs L_mix − S and the expansion vs L_mix − L_std: relative error O(ε²)
      (the third derivative of softplus vanishes at 0, so the remainder is O(ε⁴) against O(ε²));
    - paper form vs the frozen-scale excess: relative error O(ε^min(2, α−1)) for α = β, because
      t = (1−λ)/λ has E[t^k] < ∞ only for k < α + 1 (a heavy-tailed remainder; rate 1 at α = 2);
    - paper / shrinkage → ρ₂/m₂ (15 at α = 2): the paper form does not approximate L_mix − S.
    """
    model, X, y, theta = problem(n=40, d=3, seed=2)
    rows = {}
    for alpha in (2.0, 4.0):
        for scale in (0.4, 0.1):
            m = theory.linear_model(3, bias=False, weight=scale * theta)
            rows[alpha, scale] = row = regularizer_comparison(X, y, (alpha,), model=m)[0]
            Lmix = mixup_loss(m, X - X.mean(0), y, alpha)
            assert row["exact_vs_std"] == pytest.approx(Lmix - row["L_std"], rel=1e-12)
    for alpha in (2.0, 4.0):
        for key in ("shrinkage_err_rel", "expansion_err_rel"):
            assert rows[alpha, 0.1][key] < rows[alpha, 0.4][key] / 8
            assert rows[alpha, 0.1][key] < 1e-3
    rate = {a: math.log(rows[a, 0.4]["paper_err_vs_frozen_rel"] / rows[a, 0.1]["paper_err_vs_frozen_rel"])
            / math.log(4) for a in (2.0, 4.0)}
    assert 0.7 < rate[2.0] < 1.3 and rate[4.0] > 1.3
    row = rows[2.0, 0.1]
    assert row["paper"] / row["shrinkage"] == pytest.approx(row["rho2"] / row["m2"], rel=1e-2)


@pytest.mark.slow
def test_breast_cancer_table():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    rows = regularizer_comparison(StandardScaler().fit_transform(X), y)
    for row in rows:
        assert math.isinf(row["paper"]) == (row["alpha"] <= 1)
        assert math.isfinite(row["frozen"]) and math.isfinite(row["shrinkage"])


def test_bad_input():
    model, X, _, _ = problem()
    with pytest.raises(ValueError, match="linear"):
        theory.glm_regularizer(theory.relu_mlp(4, [3]), X, 2.0)
    with pytest.raises(ValueError, match="form"):
        theory.glm_regularizer(model, X, 2.0, form="exact")
    with pytest.raises(ValueError, match="loss"):
        theory.glm_regularizer(model, X, 2.0, loss="softmax")
    with pytest.raises(ValueError, match="one output"):
        theory.glm_regularizer(theory.linear_model(4, 2), X, 2.0)
    with pytest.raises(ValueError, match="alpha"):
        theory.glm_regularizer(model, X, 0.0)
    with pytest.raises(ValueError, match="beta"):
        theory.glm_regularizer(model, X, 1.0, -1.0)
    with pytest.raises(ValueError, match="C"):
        regularizer_comparison(X, np.zeros(len(X)), (1.0,), C=0.0)
    with torch.no_grad():
        assert isinstance(theory.glm_regularizer(model, torch.as_tensor(X), 2.0), float)
