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


@pytest.mark.parametrize("alpha", [0.6, 5.0])
def test_more_kinks_than_the_padded_count(alpha):
    """A 1-16-2-1 net: its two second-layer units can cross zero on every first-layer piece, more
    crossings than the per-pair count the first pass reserves; the flagged blocks are redone (α = 5 adds
    the density's quantiles as fixed breakpoints)."""
    gen = torch.Generator().manual_seed(3)
    model = theory.relu_mlp(1, [16, 2], generator=gen)
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].weight.copy_(torch.tensor([[1.0, -1.0] * 8, [-1.0, 1.0] * 8], dtype=torch.float64))
        model[2].bias.zero_()
    X = np.linspace(-3, 3, 5)[:, None]
    _check(model, X, np.array([0, 1, 0, 1, 1]), alpha)


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


# ---------------------------------------------------------------- custom modules, traced with torch.fx

class _ThreeLinear(nn.Module):
    """The 3-layer MLP of ``relu_mlp`` written as a class, with functional activations."""

    def __init__(self, seq):
        super().__init__()
        self.a, self.b, self.c = seq[0], seq[2], seq[4]

    def forward(self, x):
        return self.c(torch.nn.functional.relu(self.b(torch.relu(self.a(x)))))


class _ConvNet(nn.Module):
    """Conv → eval BatchNorm → LeakyReLU → AvgPool → view → scale → Linear → squeeze, on flat rows."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(3 * 3 * 3, 1)

    def forward(self, x):
        x = x.view(x.size(0), 1, 8, 8)
        h = self.pool(torch.nn.functional.leaky_relu(self.bn(self.conv(x)), 0.1))
        return (2.0 * self.fc(h.reshape(h.shape[0], -1)) - 1.0).squeeze(-1)


def _conv_sequential(m):
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), m.conv, m.bn, nn.LeakyReLU(0.1), m.pool, nn.Flatten(), m.fc)


def test_traced_class_equals_its_sequential():
    seq = theory.relu_mlp(4, [9, 7], generator=torch.Generator().manual_seed(7))
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 2, 6)
    value, estimate = mixup_loss_error(_ThreeLinear(seq), X, y, 0.5)
    assert (value, estimate) == mixup_loss_error(seq, X, y, 0.5)
    ref, ref_err = kink_reference(seq, X, y.reshape(-1, 1).astype(float), "logistic", 0.5, 0.5)
    assert abs(value - ref) <= KINK_RTOL * ref + ref_err


def test_traced_convnet_with_batchnorm_reshapes_and_constants():
    """The class and the Sequential of its layers (the affine constants 2·f − 1 applied after) agree, and
    both agree with a 1024-node rule; the running statistics of batch norm are used (eval mode)."""
    torch.manual_seed(3)
    m = _ConvNet().double()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    m.train()  # the library evaluates in eval mode and gives the model back as it was
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(7, 64)), rng.integers(0, 2, 7)
    with torch.no_grad():
        m.fc.weight.mul_(2.0)
    value, estimate = mixup_loss_error(m, X, y, 0.7)
    assert m.training
    seq = _conv_sequential(m)
    with torch.no_grad():  # 2·fc − 1 as one Linear
        fc = nn.Linear(27, 1).double()
        fc.weight.copy_(2.0 * m.fc.weight)
        fc.bias.copy_(2.0 * m.fc.bias - 1.0)
    seq = nn.Sequential(*list(seq)[:-1], fc).eval()
    assert value == pytest.approx(theory.mixup_loss(seq, X, y, 0.7), rel=1e-13)
    assert estimate <= KINK_RTOL * value
    assert value == pytest.approx(theory.mixup_loss(seq, X, y, 0.7, nodes=1024), rel=1e-7)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.c = nn.Linear(3, 3), nn.Linear(3, 1)

    def forward(self, x):
        return self.c(x + torch.relu(self.a(x)))


class _MaxPooled(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.c = nn.Linear(4, 6), nn.Linear(3, 1)

    def forward(self, x):
        return self.c(torch.nn.functional.max_pool1d(torch.relu(self.a(x)).unsqueeze(1), 2).squeeze(1))


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 2)

    def forward(self, x):
        h = torch.relu(self.a(x))
        if h.sum() > 0:  # data-dependent control flow: fx cannot trace it
            return h[:, :1]
        return -h[:, 1:]


@pytest.mark.parametrize("build, d, reason", [
    (_Residual, 3, "residual connection"), (_MaxPooled, 4, "max_pool1d"), (_Branchy, 3, "torch.fx cannot trace"),
    (lambda: nn.Sequential(nn.Linear(4, 6), nn.Unflatten(1, (1, 6)), nn.MaxPool1d(2, padding=1), nn.Flatten(),
                           nn.Linear(4, 1)), 4, "MaxPool1d with padding"),
])
def test_models_off_the_path_say_why(build, d, reason):
    """Off the kink-aware path: ``method='kinks'`` raises with the reason, the default warns with it."""
    torch.manual_seed(0)
    model = build().double()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, d)), np.array([0, 1, 0, 1, 1])
    with pytest.raises(ValueError, match=reason):
        theory.mixup_loss(model, X, y, 0.5, method="kinks")
    with pytest.warns(theory.AccuracyWarning, match=reason):
        theory.mixup_loss(model, X, y, 0.5)


def test_smooth_custom_module_is_quiet():
    """A tanh module has no kinks: node doubling is the exact path, no warning."""
    class Smooth(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.c = nn.Linear(3, 4), nn.Linear(4, 1)

        def forward(self, x):
            return self.c(torch.tanh(self.a(x)))

    import warnings
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", theory.AccuracyWarning)
        theory.mixup_loss(Smooth().double(), rng.normal(size=(4, 3)), np.array([0, 1, 0, 1]), 0.5)


@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_unmixed_on_relu_nets_is_exact(loss):
    """Identity (I) at s = 1 on a ReLU net: the kink-aware value (a fixed 64-node rule of D̃ was off by
    ~1e-7), checked against the piecewise QUADPACK reference."""
    rng = np.random.default_rng(11)
    model = theory.relu_mlp(2, [8, 6], generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        model[-1].weight.mul_(4.0)
    X = rng.normal(size=(4, 2))
    y = np.array([0, 1, 1, 0]) if loss == "logistic" else rng.normal(size=4)
    ref, ref_err = kink_reference(model, X, np.asarray(y, float).reshape(-1, 1), loss, 0.4, 0.4)
    unmixed = theory.mixup_loss_unmixed(model, X, y, 0.4, loss=loss)
    constant = theory.squared_label_constant(y, 0.4) if loss == "squared" else 0.0
    assert abs(unmixed - constant - ref) <= KINK_RTOL * ref + ref_err


def _maxpool_and_its_relu_twin():
    """``MaxPool1d(2)`` over 6 units and the ReLU net computing the same function, from
    ``max(a, b) = relu(a − b) + relu(b) − relu(−b)``: an independent route to the reference."""
    torch.manual_seed(0)
    lin, out = nn.Linear(4, 6).double(), nn.Linear(3, 1).double()
    pool = nn.Sequential(lin, nn.Unflatten(1, (1, 6)), nn.MaxPool1d(2), nn.Flatten(), out)
    W, b = lin.weight.detach(), lin.bias.detach()
    first, second = nn.Linear(4, 9).double(), nn.Linear(9, 1).double()
    with torch.no_grad():
        first.weight.copy_(torch.cat([torch.stack([W[2 * k] - W[2 * k + 1], W[2 * k + 1], -W[2 * k + 1]])
                                      for k in range(3)]))
        first.bias.copy_(torch.cat([torch.stack([b[2 * k] - b[2 * k + 1], b[2 * k + 1], -b[2 * k + 1]])
                                    for k in range(3)]))
        second.weight.copy_((out.weight.detach()[0].repeat_interleave(3)
                             * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64).repeat(3))[None])
        second.bias.copy_(out.bias)
    return pool, nn.Sequential(first, nn.ReLU(), second)


def test_maxpool_is_exact():
    """Max-pooling is on the kink-aware path (kinks where two window entries cross): a MaxPool1d net
    against QUADPACK on its ReLU twin, without a warning."""
    import warnings

    pool, twin = _maxpool_and_its_relu_twin()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 4)), np.array([0, 1, 0, 1, 1])
    ref, ref_err = kink_reference(twin, X, y.reshape(-1, 1).astype(float), "logistic", 0.5, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", theory.AccuracyWarning)
        value, estimate = mixup_loss_error(pool, X, y, 0.5)
    assert abs(value - ref) <= KINK_RTOL * ref + ref_err <= estimate + 2 * ref_err + KINK_RTOL * ref
    assert estimate <= KINK_RTOL * value


def test_maxpool2d_convnet_agrees_with_a_high_node_rule():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8, 1)).double()
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(6, 36)), np.array([0, 1, 0, 1, 1, 0])
    value, estimate = mixup_loss_error(model, X, y, 0.7)
    assert estimate <= KINK_RTOL * value
    assert value == pytest.approx(theory.mixup_loss(model, X, y, 0.7, nodes=1024), rel=1e-8)
