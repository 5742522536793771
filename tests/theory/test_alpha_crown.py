"""α-CROWN (``method="certified", bound="alpha-crown"``; docs/theory.md §4): sound against the exact
maximum of small ReLU nets (found independently, in numpy, from their piecewise-linear structure),
never above CROWN, never below PGD, strictly tighter where CROWN is loose, deterministic per sample."""
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy.special import log_expit

import theory
from theory import adversarial_losses, relu_mlp

INF = math.inf
ROUND = 1e-12  # float64 rounding of a bound, relative and absolute


def _one_hidden(seed: int, hidden: int):
    rng = np.random.default_rng(seed)
    W1, b1 = rng.normal(size=(hidden, 2)), rng.normal(size=hidden) * 0.5
    w2, b2 = rng.normal(size=hidden), rng.normal() * 0.5
    net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W1)), net[0].bias.copy_(torch.tensor(b1))
        net[2].weight.copy_(torch.tensor(w2[None])), net[2].bias.fill_(b2)
    return net, (W1, b1, w2, b2)


def _line_points(w, b, x0, eps, norm):
    """Points of the line ``wᵀx + b = 0`` on the boundary of the ball around x0 (edges or circle)."""
    if not np.any(w):
        return []
    if norm == INF:
        out = []
        for axis in (0, 1):
            other = 1 - axis
            if w[other] == 0:
                continue
            for side in (-eps, eps):
                x = np.empty(2)
                x[axis] = x0[axis] + side
                x[other] = -(b + w[axis] * x[axis]) / w[other]
                if abs(x[other] - x0[other]) <= eps:
                    out.append(x)
        return out
    # x = x0 + p, wᵀp = −(b + wᵀx0) =: c: foot point c w/‖w‖², then ± along the line
    c = -(b + w @ x0)
    foot = c * w / (w @ w)
    rest = eps ** 2 - foot @ foot
    if rest < 0:
        return []
    along = np.array([-w[1], w[0]]) / np.linalg.norm(w)
    return [x0 + foot + s * math.sqrt(rest) * along for s in (-1.0, 1.0)]


def exact_max_loss(params, x0, y, eps, norm):
    """max over the ball of softplus(−s f), f a 1-hidden-layer ReLU net on R²: the minimum of the
    piecewise-linear s·f over the ball lies at an extreme point of (linear cell ∩ ball): a ball corner,
    a kink line meeting the boundary, two kink lines crossing inside, or (ℓ2) the point of the circle
    along a cell's gradient. All candidates are enumerated (numpy only)."""
    W1, b1, w2, b2 = params
    H = len(b1)
    cands = [x0]
    if norm == INF:
        cands += [x0 + eps * np.array(c) for c in itertools.product((-1.0, 1.0), repeat=2)]
    else:
        for pattern in itertools.product((0.0, 1.0), repeat=H):
            g = W1.T @ (w2 * np.array(pattern))
            if np.any(g):
                cands += [x0 + s * eps * g / np.linalg.norm(g) for s in (-1.0, 1.0)]
    for k in range(H):
        cands += _line_points(W1[k], b1[k], x0, eps, norm)
    for j, k in itertools.combinations(range(H), 2):
        A = np.stack([W1[j], W1[k]])
        if abs(np.linalg.det(A)) > 1e-12:
            x = np.linalg.solve(A, -np.array([b1[j], b1[k]]))
            inside = np.abs(x - x0).max() <= eps if norm == INF else np.linalg.norm(x - x0) <= eps
            if inside:
                cands.append(x)
    P = np.array(cands)
    f = np.maximum(P @ W1.T + b1, 0) @ w2 + b2
    return float((-log_expit((2 * y - 1) * f)).max())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), hidden=st.integers(2, 6), eps=st.floats(0.05, 2.0),
       norm=st.sampled_from([2, INF]))
def test_alpha_crown_is_sound_and_at_most_crown_against_the_exact_maximum(seed, hidden, eps, norm):
    net, params = _one_hidden(seed, hidden)
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(4, 2))
    y = rng.integers(0, 2, 4).astype(float)
    exact = np.array([exact_max_loss(params, X[i], y[i], eps, norm) for i in range(4)])
    alpha = adversarial_losses(net, X, y, eps, norm=norm, method="certified", bound="alpha-crown")
    crown = adversarial_losses(net, X, y, eps, norm=norm, method="certified")
    pgd = adversarial_losses(net, X, y, eps, norm=norm, method="pgd", steps=30, restarts=2)
    assert np.all(pgd <= exact * (1 + ROUND) + ROUND)  # the enumeration finds the true maximum
    assert np.all(alpha >= exact * (1 - ROUND) - ROUND)
    assert np.all(alpha <= crown * (1 + ROUND) + ROUND)


@pytest.mark.parametrize("norm", [2, INF])
@pytest.mark.parametrize("seed", range(3))
def test_alpha_crown_bounds_a_dense_search_on_two_hidden_layers(norm, seed):
    gen = torch.Generator().manual_seed(seed)
    model = relu_mlp(2, [8, 6], generator=gen)
    X = np.random.default_rng(seed).normal(size=(4, 2))
    y = np.array([1, 0, 1, 0.0])
    eps = 0.8
    if norm == 2:
        t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
        D = eps * (np.linspace(0, 1, 120)[:, None, None] * np.stack([np.cos(t), np.sin(t)], 1)[None]).reshape(-1, 2)
    else:
        grid = np.linspace(-eps, eps, 301)
        D = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    with torch.no_grad():
        f = model(torch.tensor(X[:, None, :] + D[None]).reshape(-1, 2)).reshape(4, -1).numpy()
    brute = (-log_expit((2 * y[:, None] - 1) * f)).max(1)
    alpha = adversarial_losses(model, X, y, eps, norm=norm, method="certified", bound="alpha-crown")
    crown = adversarial_losses(model, X, y, eps, norm=norm, method="certified")
    assert np.all(alpha >= brute - ROUND)
    assert np.all(alpha <= crown * (1 + ROUND) + ROUND)


@pytest.mark.parametrize("loss", ["logistic", "softmax", "squared"])
@pytest.mark.parametrize("norm", [2, INF])
def test_pgd_alpha_crown_crown_ibp_ordering_on_every_loss(loss, norm):
    gen = torch.Generator().manual_seed(3)
    out = 3 if loss == "softmax" else 1
    model = relu_mlp(5, [12, 9], out=out, generator=gen)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10, 5))
    y = rng.integers(0, 3, 10) if loss == "softmax" else (rng.integers(0, 2, 10) * 1.0 if loss == "logistic"
                                                          else rng.normal(size=10))
    kw = dict(loss=loss, norm=norm, method="certified")
    pgd = adversarial_losses(model, X, y, 0.4, loss=loss, norm=norm, method="pgd")
    alpha = adversarial_losses(model, X, y, 0.4, bound="alpha-crown", **kw)
    crown = adversarial_losses(model, X, y, 0.4, **kw)
    ibp = adversarial_losses(model, X, y, 0.4, bound="ibp", **kw)
    assert np.all(pgd <= alpha * (1 + ROUND) + ROUND)
    assert np.all(alpha <= crown * (1 + ROUND) + ROUND)
    assert np.all(crown <= ibp * (1 + ROUND) + ROUND)
    assert alpha.sum() < crown.sum()  # the slopes help somewhere on a net with unstable ReLUs


@pytest.mark.parametrize("norm", [2, INF])
def test_alpha_crown_is_exact_where_crown_is_loose(norm):
    """f(x) = relu(x₁) + relu(−x₁) − ½ relu(x₁ + 10) + 5 = |x₁| − x₁/2 near x = (0.2, 0), ε = 1 (x₁ ∈ [−0.8, 1.2]):
    the first two ReLUs are unstable. IBP gives f ≥ 0 + 0 − 5.6 + 5 = −0.6; CROWN picks the lower slopes
    1 and 0 (by |u| vs |l|), so f ≥ x₁ − x₁/2 ≥ −0.4; slopes with a₁ − a₂ = ½ give f ≥ 0, the true
    minimum (at x₁ = 0), so α-CROWN reaches the exact log 2 up to its step size."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, 10.0]))
        net[2].weight.copy_(torch.tensor([[1.0, 1.0, -0.5]])), net[2].bias.fill_(5.0)
    X, y = [[0.2, 0.0]], [1]
    ibp = theory.adversarial_loss(net, X, y, 1.0, norm=norm, method="certified", bound="ibp")
    crown = theory.adversarial_loss(net, X, y, 1.0, norm=norm, method="certified")
    alpha = theory.adversarial_loss(net, X, y, 1.0, norm=norm, method="certified", bound="alpha-crown")
    assert ibp == pytest.approx(math.log1p(math.exp(0.6)), abs=1e-12)
    assert crown == pytest.approx(math.log1p(math.exp(0.4)), abs=1e-12)
    # sound, and within Adam's step of the kink a₁ − a₂ = ½ where the (piecewise-linear) bound peaks
    assert math.log(2.0) - 1e-12 <= alpha <= math.log(2.0) + 1e-3


def test_alpha_crown_is_per_sample_and_deterministic():
    """Each sample's slopes are optimised on their own: the same value alone, in a batch, and on a rerun;
    zero steps give CROWN."""
    gen = torch.Generator().manual_seed(5)
    model = relu_mlp(3, [10, 10], generator=gen)
    X = np.random.default_rng(5).normal(size=(6, 3))
    y = np.array([1, 0, 1, 0, 1, 0])
    kw = dict(norm=INF, method="certified", bound="alpha-crown")
    batch = adversarial_losses(model, X, y, 0.5, **kw)
    assert np.array_equal(batch, adversarial_losses(model, X, y, 0.5, **kw))
    for i in range(6):
        assert adversarial_losses(model, X[i:i + 1], y[i:i + 1], 0.5, **kw)[0] == pytest.approx(batch[i], rel=1e-12)
    crown = adversarial_losses(model, X, y, 0.5, norm=INF, method="certified")
    np.testing.assert_array_equal(adversarial_losses(model, X, y, 0.5, alpha_iters=0, **kw), crown)


@pytest.mark.parametrize("norm", [2, INF])
def test_alpha_crown_on_a_leaky_convolutional_net_is_between_pgd_and_crown(norm):
    """LeakyReLU(0.1): the lower slopes live in [0.1, 1], projected there at every step."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8)), torch.nn.Conv1d(1, 3, 3), torch.nn.LeakyReLU(0.1),
                              torch.nn.Flatten(), torch.nn.Linear(18, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    net = net.double()
    X = np.random.default_rng(0).normal(size=(5, 8))
    y = np.array([1, 0, 1, 0, 1])
    pgd = adversarial_losses(net, X, y, 0.5, norm=norm, method="pgd")
    alpha = adversarial_losses(net, X, y, 0.5, norm=norm, method="certified", bound="alpha-crown")
    crown = adversarial_losses(net, X, y, 0.5, norm=norm, method="certified")
    assert np.all(pgd <= alpha * (1 + ROUND) + ROUND) and np.all(alpha <= crown * (1 + ROUND) + ROUND)


@pytest.mark.parametrize("options,name", [
    ({"bound": "alpha"}, "bound"),
    ({"bound": "alpha-crown", "alpha_iters": -1}, "alpha_iters"),
    ({"bound": "alpha-crown", "alpha_iters": 2.5}, "alpha_iters"),
    ({"bound": "alpha-crown", "alpha_lr": 0.0}, "alpha_lr"),
    ({"bound": "alpha-crown", "alpha_lr": math.nan}, "alpha_lr"),
    ({"bound": "crown", "alpha_iters": 10}, "alpha_iters"),
])
def test_bad_certified_options_raise_naming_the_argument(options, name):
    model = relu_mlp(2, [3], generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=name):
        theory.adversarial_loss(model, [[0.0, 1.0]], [1], 0.1, method="certified", **options)


def test_exact_comparison_takes_alpha_crown_and_rejects_unknown_bounds():
    gen = torch.Generator().manual_seed(2)
    net = relu_mlp(2, [6], bias=False, generator=gen)
    X = np.random.default_rng(2).normal(size=(8, 2))
    X = X - X.mean(0)
    with torch.no_grad():
        y = (net(torch.tensor(X)).reshape(-1).numpy() >= 0).astype(int)
    crown = theory.exact_comparison(net, X, y, 1.0)
    alpha = theory.exact_comparison(net, X, y, 1.0, bound="alpha-crown")
    assert crown.adv_lower <= alpha.adv_upper <= crown.adv_upper * (1 + ROUND) + ROUND
    with pytest.raises(ValueError, match="bound"):
        theory.exact_comparison(net, X, y, 1.0, bound="beta-crown")
