"""The vectorised kink-aware integrator (docs/theory.md §2.3) against independent references: QUADPACK
piece by piece between kinks found by bisection (tests/_brute.py), high-node quadrature, and the
regimes where a per-piece rule is easy to get wrong (pieces near λ = 0, concentrated and very
asymmetric Beta densities, more kinks than the padded count per pair)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import theory
from theory import mixup_loss_error
from theory._kinks import _Density, _centre, _cuts, _normalised

from _brute import kink_reference

KINK_RTOL = 1e-12  # promised for piecewise-linear nets


def _net(weights):
    """A Linear–ReLU–…–Linear net with the given ``[(W, b), …]`` in float64."""
    layers = []
    for k, (W, b) in enumerate(weights):
        W = torch.as_tensor(W, dtype=torch.float64)
        lin = nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(W)
            lin.bias.copy_(torch.as_tensor(b, dtype=torch.float64))
        layers += [lin] + ([nn.ReLU()] if k < len(weights) - 1 else [])
    return nn.Sequential(*layers)


def _check(model, X, y, alpha, beta=None, rtol=KINK_RTOL):
    Y = np.asarray(y, dtype=float).reshape(len(y), -1)
    ref, ref_err = kink_reference(model, X, Y, "logistic", alpha, alpha if beta is None else beta)
    value, estimate = mixup_loss_error(model, X, y, alpha, beta)
    assert estimate + ref_err >= abs(value - ref), (value, ref, estimate, ref_err)
    assert abs(value - ref) <= rtol * ref + ref_err
    assert estimate <= rtol * value
    return value


def test_piece_near_zero_is_integrated_on_its_own_interval():
    """A 1-2-1 net at α = 4 with large logits: the piece [l, r] with l < r/2 next to λ = 0 whose affine
    extension crosses 0 inside (0, l). Integrated as ∫₀ʳ − ∫₀ˡ of the extension (the previous method) it
    came out 2.7e-5 low (relative 2.5e-8) with an estimate of 1.6e-11."""
    model = _net([([[37.63344759], [23.30706054]], [28.9464339, -32.46535167]),
                  ([[26.01052074, -5.04482277]], [-5.68982937])])
    X = np.array([[2.24113291], [-0.87355813]])
    _check(model, X, np.array([0, 1]), 4.0)


EDGE_CASES = [  # (α, β): concentrated, very asymmetric, tiny (issue: NaN, 99.9 % wrong, betaln's error)
    (200.0, None), (1000.0, None), (5000.0, None), (2.0, 5000.0), (3e4, 0.5), (0.3, 1e4), (0.05, None),
    (0.7, 0.4),
]


@pytest.mark.parametrize("alpha, beta", EDGE_CASES)
def test_edges_of_the_beta_range_against_quadpack(alpha, beta):
    rng = np.random.default_rng(1)
    model = theory.relu_mlp(2, [8, 6], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model[-1].weight.mul_(4.0)
    X = 1.5 * rng.normal(size=(4, 2))
    _check(model, X, np.array([0, 1, 1, 0]), alpha, beta)


def test_large_equal_alpha_is_the_midpoint_loss():
    """α = β = 10⁶: λ ~ ½ ± 5e-4, so L_mix is the loss at the midpoints to O(1/α) (no NaN)."""
    rng = np.random.default_rng(2)
    model = theory.relu_mlp(3, [6], generator=torch.Generator().manual_seed(2))
    X, y = rng.normal(size=(5, 3)), np.array([0, 1, 1, 0, 1])
    value, estimate = mixup_loss_error(model, X, y, 1e6)
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        mid = model(0.5 * (Xt[:, None] + Xt[None])).reshape(5, 5)
    yt = torch.as_tensor(y, dtype=torch.float64)
    ybar = 0.5 * (yt[:, None] + yt[None])
    midpoint = float((torch.nn.functional.softplus(mid) - ybar * mid).mean())
    assert math.isfinite(value) and estimate <= KINK_RTOL * value
    assert value == pytest.approx(midpoint, rel=1e-5)


def test_more_kinks_than_the_padded_count():
    """A 1-16-2-1 net: its two second-layer units can cross zero on every first-layer piece, more
    crossings than the per-pair count the first pass reserves; the flagged blocks are redone."""
    gen = torch.Generator().manual_seed(3)
    model = theory.relu_mlp(1, [16, 2], generator=gen)
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].weight.copy_(torch.tensor([[1.0, -1.0] * 8, [-1.0, 1.0] * 8], dtype=torch.float64))
        model[2].bias.zero_()
    X = np.linspace(-3, 3, 5)[:, None]
    _check(model, X, np.array([0, 1, 0, 1, 1]), 0.6)


def test_blocks_shards_and_orientation():
    """Small blocks, row shards (ordered pairs i in rows, density Beta(α, β)) and the folded sum (pairs
    i < j, density Beta(α, β) + Beta(β, α)) give the same total."""
    rng = np.random.default_rng(5)
    model = theory.relu_mlp(3, [7, 5], generator=torch.Generator().manual_seed(5))
    X, y = rng.normal(size=(9, 3)), rng.integers(0, 2, 9)
    whole = theory.mixup_loss(model, X, y, 0.4, 2.5)
    assert theory.mixup_loss(model, X, y, 0.4, 2.5, chunk_elements=64) == pytest.approx(whole, rel=1e-13)
    shards = sum(theory.mixup_loss(model, X, y, 0.4, 2.5, rows=r) for r in ((0, 4), (4, 7), (7, 9)))
    assert shards == pytest.approx(whole, rel=1e-13)
    assert theory.mixup_loss(model, X, y, 0.4, 2.5, nodes=1024) == pytest.approx(whole, rel=1e-6)


def test_larger_net_agrees_with_a_high_node_rule():
    """10-32-32-1 at n = 12: the 1024-node Gauss–Jacobi rule converges algebraically on the kinks
    (measured ~1e-9 here); the exact value must sit inside that."""
    torch.manual_seed(0)
    model = theory.relu_mlp(10, [32, 32], generator=torch.Generator().manual_seed(0))
    X, y = torch.randn(12, 10, dtype=torch.float64), torch.arange(12) % 2
    value, estimate = mixup_loss_error(model, X, y, 1.0)
    assert estimate <= KINK_RTOL * value
    assert value == pytest.approx(theory.mixup_loss(model, X, y, 1.0, nodes=1024), rel=1e-8)


@pytest.mark.parametrize("alpha, beta", [(0.3, 0.3), (1.0, 1.0), (4.0, 0.5), (2.0, 5000.0), (1e6, 1e6), (1e-8, 1.0)])
def test_density_normaliser_against_mpmath(alpha, beta):
    """The normaliser computed with the integrator's own rules equals B(α, β) scaled by the centring,
    from mpmath at 30 digits (no betaln)."""
    import mpmath

    c = _centre(alpha, beta)
    cuts = torch.as_tensor(_cuts(alpha, beta), dtype=torch.float64)
    (dens,), err = _normalised([_Density(alpha, beta, c, 1.0)], cuts, "cpu")
    with mpmath.workdps(30):
        exact = mpmath.log(mpmath.beta(alpha, beta)) - (alpha - 1) * mpmath.log(c) - (beta - 1) * mpmath.log(1 - c)
    assert err <= 1e-13
    assert abs(dens.log_norm - float(exact)) <= 1e-13 + err
