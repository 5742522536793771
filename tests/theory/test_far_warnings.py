"""Warnings instead of silent numbers: L̃_mix far (> 50 %) from the exact L_mix (C2, docs/theory.md §3), and
a chain reported as holding while an assumption fails (C4–C6, docs/theory.md §4)."""
import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.special import beta as beta_fn

import theory


def exact_mixup_quad(X, y, theta, alpha):
    """L_mix for f = θx in 1-D by scipy quadrature over λ ~ Beta(α, α) and all pairs (independent of theory/)."""
    total = 0.0
    for xi, yi in zip(X[:, 0], y):
        for xj, yj in zip(X[:, 0], y):
            def integrand(lam):
                z = theta * (lam * xi + (1 - lam) * xj)
                t = lam * yi + (1 - lam) * yj
                return (np.logaddexp(0, z) - t * z) * lam ** (alpha - 1) * (1 - lam) ** (alpha - 1) / beta_fn(alpha, alpha)
            total += integrate.quad(integrand, 0, 1, limit=200)[0]
    return total / len(y) ** 2


def test_expansion_far_from_exact_warns_with_the_number():
    X = np.array([[1.0], [-1.0]])
    y = np.array([1, 0])
    model = theory.linear_model(1, bias=False, weight=[50.0])  # saturated: L_std ≈ e^-50, mixed points are not
    exact = exact_mixup_quad(X, y, 50.0, 1.0)
    with pytest.warns(UserWarning, match=r"relative error ≈ \d+%") as record:
        approx = theory.mixup_expansion(model, X, y, 1.0).approx
    assert abs(approx - exact) > 0.5 * exact  # the warning is right
    assert f"{approx:.6g}" in str(record[0].message)
    with pytest.warns(UserWarning, match="far from the Mixup loss"):
        theory.robustness_bound(model, X, y, 1.0)


def test_no_warning_when_close_and_assumptions_hold():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 1))
    X -= X.mean(0)
    y = (X[:, 0] >= 0).astype(int)
    model = theory.linear_model(1, bias=False, weight=[0.7])
    exact = exact_mixup_quad(X, y, 0.7, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = theory.robustness_bound(model, X, y, 1.0)
    assert abs(res.mixup_approx - exact) < 0.5 * exact and res.holds and all(res.assumptions.values())


def test_chain_holding_while_an_assumption_fails_warns():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2))
    X -= X.mean(0)
    model = theory.linear_model(2, weight=[1.0, 0.0], intercept=0.5)  # an intercept: not homogeneous
    y = (X[:, 0] + 0.5 >= 0).astype(int)
    with pytest.warns(UserWarning, match="homogeneous fail"):
        res = theory.robustness_bound(model, X, y, 1.0)
    assert res.holds and not res.assumptions["homogeneous"]
