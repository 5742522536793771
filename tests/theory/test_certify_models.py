"""C7 bracket for your own model: ``method="certified"`` and ``exact_comparison`` on any module composed
of supported layers (a custom CNN class included), an explicit "undetermined" otherwise (docs/theory.md §4).

Soundness is checked against independent lower bounds: PGD, and the loss at many random points of the
ball; tightness against the closed form for linear models and the clean loss at ε = 0."""
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import log_expit
from torch import nn

import theory

RANDOM_POINTS = 400  # random points of the ball per sample (a lower bound on the adversarial loss)


class SmallCNN(nn.Module):
    """A user-defined CNN (not a Sequential): conv → LeakyReLU → average pooling → flatten → linear."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 3, 3, padding=1, dtype=torch.float64)
        self.act = nn.LeakyReLU(0.1)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Sequential(nn.Linear(3 * 3 * 3, 5, dtype=torch.float64), nn.ReLU(),
                                  nn.Linear(5, 1, dtype=torch.float64))

    def forward(self, x):
        x = x.view(-1, 1, 6, 6)
        x = self.pool(self.act(self.conv(x)))
        return self.head(torch.flatten(x, 1)).squeeze(-1)


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Sequential(nn.Unflatten(1, (1, 8)), nn.Conv1d(1, 2, 3, dtype=torch.float64), nn.ReLU(),
                                  nn.AvgPool1d(2), nn.Flatten(), nn.Linear(6, 1, dtype=torch.float64))

    def forward(self, x):
        return self.body(x)


def data(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X - X.mean(0)


def labels(model, X):
    with torch.no_grad():
        return (model(torch.as_tensor(X)).reshape(-1) >= 0).numpy().astype(int)


def random_ball_loss(model, X, y, eps, norm, seed=0):
    """Mean over samples of the largest logistic loss at RANDOM_POINTS random points of the ball."""
    gen = torch.Generator().manual_seed(seed)
    Xt, s = torch.as_tensor(X), torch.as_tensor(2 * y - 1, dtype=torch.float64)
    best = torch.full((len(y),), -math.inf, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(RANDOM_POINTS):
            D = torch.randn(Xt.shape, generator=gen, dtype=torch.float64)
            if norm == math.inf:
                D = torch.sign(D) * eps
            else:
                D = D / D.norm(dim=1, keepdim=True) * eps
            f = model(Xt + D).reshape(-1)
            best = torch.maximum(best, nn.functional.softplus(-s * f))
    return float(best.mean())


@pytest.mark.parametrize("norm", [2, math.inf])
@pytest.mark.parametrize("make,d", [(SmallCNN, 36), (Conv1dNet, 8)])
def test_certified_bound_of_custom_modules_is_sound(make, d, norm):
    model = make().eval()
    X = data(10, d, 0)
    y = labels(model, X)
    eps = 0.1
    upper = theory.adversarial_loss(model, X, y, eps, norm=norm, method="certified")
    pgd = theory.adversarial_loss(model, X, y, eps, norm=norm, method="pgd")
    assert upper >= pgd - 1e-12
    assert upper >= random_ball_loss(model, X, y, eps, norm) - 1e-12
    clean = theory.adversarial_loss(model, X, y, 0.0, method="certified")
    with torch.no_grad():
        f = model(torch.as_tensor(X)).numpy()
    assert clean == pytest.approx(np.mean(-log_expit((2 * y - 1) * f)), rel=1e-12)  # ε = 0: the loss itself


def test_exact_comparison_brackets_a_custom_cnn():
    model = SmallCNN(3).eval()
    X = data(8, 36, 1)
    y = labels(model, X)
    cmp = theory.exact_comparison(model, X, y, 1.0, pgd=dict(restarts=2))
    assert cmp.undetermined_reason == ""
    assert math.isfinite(cmp.adv_upper) and cmp.adv_lower <= cmp.adv_upper + 1e-12


@pytest.mark.parametrize("norm", [2, math.inf])
def test_certified_equals_closed_form_for_linear_models_in_a_custom_class(norm):
    class Logistic(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 1, dtype=torch.float64)
            with torch.no_grad():
                self.lin.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
                self.lin.bias.fill_(0.3)

        def forward(self, x):
            return self.lin(x).flatten()

    X = data(7, 3, 2)
    y = labels(Logistic(), X)
    theta = np.array([1.0, -2.0, 0.5])
    q = 1 if norm == math.inf else 2
    expected = np.mean(-log_expit((2 * y - 1) * (X @ theta + 0.3) - 0.2 * np.linalg.norm(theta, q)))
    got = theory.adversarial_loss(Logistic(), X, y, 0.2, norm=norm, method="certified")
    assert got == pytest.approx(expected, rel=1e-12)


class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2, dtype=torch.float64)
        self.b = nn.Linear(2, 1, dtype=torch.float64)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x).squeeze(-1)


@pytest.mark.parametrize("model,reason", [
    (nn.Sequential(nn.Linear(2, 4, dtype=torch.float64), nn.Tanh(), nn.Linear(4, 1, dtype=torch.float64)), "Tanh"),
    (Skip(), "chain"),
    (nn.Sequential(nn.Linear(2, 4, dtype=torch.float64), nn.MaxPool1d(1), nn.Linear(4, 1, dtype=torch.float64)),
     "MaxPool1d"),
])
def test_unsupported_models_are_undetermined_with_the_reason(model, reason):
    X = data(6, 2, 3)
    y = labels(model, X)
    cmp = theory.exact_comparison(model, X, y, 1.0, pgd=dict(restarts=1))
    assert math.isnan(cmp.adv_upper) and reason in cmp.undetermined_reason
    assert cmp.status in ("fails", "undecided")
    with pytest.warns(UserWarning, match=reason):
        value = theory.adversarial_loss(model, X, y, 0.1, method="certified")
    assert math.isnan(value)
