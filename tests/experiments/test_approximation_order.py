"""The quadrature of the approximation_order figure (C2): each exact value is resolved far below the
residual |L_mix − L̃_mix| it enters, checked against finer rules and an independent method."""
import dataclasses
import warnings

import pytest

import theory
from experiments.datasets import load_dataset
from experiments.figures import approximation_order as ao
from experiments.figures._common import sklearn_logistic, sklearn_tanh_mlp

N = 60
FINE_NODES = 256
"""Reference: a rule twice as fine as the largest the figure uses."""
SCALES = (1e-3, 0.05, 0.4, 1.0)
FAR_BELOW = 1e-3
"""A value's quadrature error must be below this fraction of the residual it enters."""


@pytest.fixture(scope="module")
def problems():
    ds = load_dataset("two_moons", n=N, seed=0)
    return {"logistic": (sklearn_logistic(ds.X_train, ds.y_train), ds),
            "tanh_mlp": (sklearn_tanh_mlp(ds.X_train, ds.y_train, hidden=(8, 8), seed=0), ds)}


@pytest.mark.parametrize("model_name", ["logistic", "tanh_mlp"])
def test_homotopy_values_match_a_finer_rule_far_below_the_residual(problems, model_name):
    model, ds = problems[model_name]
    X, y = ds.X_train, ds.y_train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the expansion is far off at s = 1 (expected)
        terms = theory.mixup_expansion(model, X, y, 1.0)
    for s in SCALES:
        approx = dataclasses.replace(terms, scale=s).approx
        value, err, q = ao.homotopy_point(model, X, y, 1.0, s, approx)
        fine = theory.mixup_loss_unmixed(model, X, y, 1.0, scale=s, nodes=FINE_NODES)
        residual = abs(fine - approx)
        floor = ao.ROUNDING * abs(fine)
        assert abs(value - fine) <= FAR_BELOW * residual + floor, (s, q)
        assert abs(value - fine) <= err + floor, (s, q)  # the recorded estimate is conservative
        assert q <= ao.HOMOTOPY_MAX_NODES // 2  # converged before the cap
    # small s needs few nodes: the integrand is a low-degree polynomial in s(1 − λ) up to rounding
    _, _, q_small = ao.homotopy_point(model, X, y, 1.0, 1e-3, dataclasses.replace(terms, scale=1e-3).approx)
    assert q_small <= 16


ALPHAS = (0.05, 0.3, 1.0, 8.0)


def test_alpha_sweep_logistic_matches_the_separated_method(problems):
    """The figure's product rule over all α against the separated expansion (independent)."""
    model, ds = problems["logistic"]
    X, y = ds.X_train, ds.y_train
    values, errors, _ = ao.alpha_sweep(model, X, y, ALPHAS, ao.ALPHA_RTOL["logistic"])
    for a, value, err in zip(ALPHAS, values, errors):
        reference = theory.mixup_loss(model, X, y, a, method="separated")
        assert value == pytest.approx(reference, rel=1e-9, abs=1e-12), a
        assert err <= 1e-8 * value


def test_alpha_sweep_tanh_mlp_matches_a_fine_gauss_rule(problems):
    """The product rule of one table of H(λ) against a 512-node Gauss–Jacobi rule per α over all pairs."""
    model, ds = problems["tanh_mlp"]
    X, y = ds.X_train, ds.y_train
    values, errors, degree = ao.alpha_sweep(model, X, y, ALPHAS, ao.ALPHA_RTOL["tanh_mlp"])
    assert degree < ao.ALPHA_MAX_DEGREE  # converged before the cap
    for a, value, err in zip(ALPHAS, values, errors):
        reference = theory.mixup_loss(model, X, y, a, nodes=512, method="pairs")
        assert abs(value - reference) <= max(err, 1e-13 * reference), a  # the estimate is conservative
        assert err <= ao.ALPHA_RTOL["tanh_mlp"] * value


def test_product_weights_integrate_polynomials_exactly():
    """E λ^k under Beta(α, α) in closed form (scipy.special.beta) against the product rule's weights."""
    import numpy as np
    from scipy.special import beta as B

    N = 16
    t = (1 + np.cos(np.pi * np.arange(N + 1) / N)) / 2
    for a in (0.05, 1.0, 3.5):
        W = ao._product_weights(a, t)
        for k in (0, 1, 5, N):
            assert W @ t ** k == pytest.approx(B(a + k, a) / B(a, a), rel=1e-12), (a, k)
