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


def test_alpha_sweep_logistic_matches_the_separated_method(problems):
    """Node doubling over all pairs (the figure's path) against the separated expansion (independent)."""
    model, ds = problems["logistic"]
    X, y = ds.X_train, ds.y_train
    for a in (0.1, 1.0, 8.0):
        value, err = theory.mixup_loss_error(model, X, y, a, rtol=ao.ALPHA_RTOL["logistic"], method="pairs")
        reference = theory.mixup_loss(model, X, y, a, method="separated")
        assert value == pytest.approx(reference, rel=1e-9, abs=1e-12)
        assert err <= 1e-8 * value
