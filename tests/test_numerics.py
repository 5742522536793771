"""Robustness of the theory functions to the caller's data and models (docs/theory.md §0, §4):
nested Sequentials, the dtype of X for the (A1) check, numerically stable forms at large margins,
model state (train mode, BatchNorm, Dropout) and input shapes. References are closed forms, mpmath
or the same quantity computed on an equivalent plain model."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import theory
from theory import is_affine, is_piecewise_linear, split_affine_prefix

DT = torch.float64
INF = math.inf


# ---------------------------------------------------------------- nested Sequentials (structure queries)

def _nested_linear():
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Linear(3, 1))).double()


def test_structure_queries_look_through_nested_sequentials():
    inner = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    net = nn.Sequential(inner, nn.Sequential(nn.Linear(4, 1))).double()
    assert is_affine(_nested_linear())
    assert is_piecewise_linear(net) and not is_affine(net)
    assert not is_piecewise_linear(nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), nn.Linear(4, 1)))
    prefix, rest = split_affine_prefix(net)
    X = torch.randn(5, 3, dtype=DT)
    assert torch.allclose(rest(prefix(X)), net(X), rtol=0, atol=1e-15)


@pytest.mark.parametrize("norm", [2, INF])
def test_exact_method_accepts_a_linear_model_in_nested_sequentials(norm):
    """Closed form softplus(−s z + ε‖θ‖_q) computed here from the weights (before: a ValueError)."""
    model = _nested_linear()
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(6, 3)), np.array([0, 1, 1, 0, 1, 0])
    theta, b = model[0][0].weight.detach().numpy()[0], float(model[0][0].bias.detach()[0])
    z = X @ theta + b
    q = 1 if norm == INF else 2
    expected = np.mean(np.logaddexp(0, -(2 * y - 1) * z + 0.3 * np.linalg.norm(theta, q)))
    got = theory.adversarial_loss(model, X, y, 0.3, norm=norm, method="exact")
    assert got == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------------------------- (A1) centered, relative to the input dtype

def _float32_centered(n=200, scale=30.0, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 2)) * scale).astype(np.float32)
    return X - X.mean(0)


def test_float32_centered_data_counts_as_centered():
    X = _float32_centered()
    residual = np.abs(X.astype(np.float64).mean(0)).max()
    assert residual > 1e-9 * np.abs(X).max()  # not centered to float64 precision: the old check said False
    model = theory.linear_model(2, weight=[1.0, -0.5], bias=False)
    y = (X @ np.array([1.0, -0.5]) > 0).astype(int)
    for Xi in (X, torch.as_tensor(X)):
        assert theory.robustness_bound(model, Xi, y, 1.0).assumptions["centered"]
    shifted = X + np.float32(0.05 * scale_of(X))
    assert not theory.robustness_bound(model, shifted, y, 1.0).assumptions["centered"]


def scale_of(X):
    return float(np.abs(X).max())
