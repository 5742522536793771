"""Model helpers (docs/theory.md §0 conventions): float64 evaluation, structure queries, callables."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import theory
from theory import (as_function, has_bias, is_affine, is_piecewise_linear, linear_parameters,
                           split_affine_prefix)

DT = torch.float64


def _data(n=7, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, 2, size=n)
    y[:2] = [0, 1]
    return X, y


def _float32_mlp(d=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 5), nn.Tanh(), nn.Linear(5, 1))


def test_float32_module_computed_in_float64_without_mutation():
    X, y = _data()
    model = _float32_mlp()
    model.train()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    reference = copy.deepcopy(model).double()  # the same weights, promoted exactly
    got = [theory.mixup_loss(model, X, y, 0.7), theory.mixup_loss_unmixed(model, X, y, 0.7),
           theory.mixup_expansion(model, X, y, 0.7).approx]
    want = [theory.mixup_loss(reference, X, y, 0.7), theory.mixup_loss_unmixed(reference, X, y, 0.7),
            theory.mixup_expansion(reference, X, y, 0.7).approx]
    assert got == pytest.approx(want, rel=1e-13)
    # float32 arithmetic would differ from the float64 result at ~1e-8
    with torch.no_grad():
        f32 = model(torch.as_tensor(X, dtype=torch.float32)).double()
        f64 = reference(torch.as_tensor(X))
    assert (f32 - f64).abs().max() > 1e-12
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_plain_callable_matches_module():
    X, y = _data(d=3)
    w = torch.tensor([0.4, -1.2, 0.7], dtype=DT)
    module = theory.linear_model(3, weight=w, intercept=0.3)
    fn = lambda Z: Z @ w + 0.3  # noqa: E731
    for name in ("mixup_loss", "mixup_loss_unmixed"):
        assert getattr(theory, name)(fn, X, y, 0.5, 2.0) == pytest.approx(
            getattr(theory, name)(module, X, y, 0.5, 2.0), rel=1e-12)
    e_fn, e_mod = theory.mixup_expansion(fn, X, y, 0.5, 2.0), theory.mixup_expansion(module, X, y, 0.5, 2.0)
    for attr in ("standard", "r1", "r2"):
        assert getattr(e_fn, attr) == pytest.approx(getattr(e_mod, attr), rel=1e-12)
    assert abs(e_fn.r3) < 1e-15  # computed through HVPs: a linear callable has a zero input Hessian


def test_float32_callable_is_promoted():
    """A callable computing in float32 still gives float64 logits downstream (no float32 loss sums)."""
    X, y = _data(d=3)
    w = torch.tensor([0.4, -1.2, 0.7], dtype=DT)
    fn32 = lambda Z: (Z.float() @ w.float()).reshape(-1)  # noqa: E731
    fn64 = lambda Z: Z.float().double() @ w.float().double()  # noqa: E731 — the same float32 inputs
    e32, e64 = theory.mixup_expansion(fn32, X, y, 1.0), theory.mixup_expansion(fn64, X, y, 1.0)
    assert e32.standard == pytest.approx(e64.standard, rel=1e-6)
    assert abs(e32.r3) < 1e-7 and e32.r2 > 0


def test_as_function_rejects_non_callables():
    with pytest.raises(ValueError, match="model"):
        as_function(42)


@pytest.mark.parametrize("out", [1, 3])
def test_linear_parameters_recover_weights(out):
    g = torch.Generator().manual_seed(0)
    W, b = torch.randn(out, 4, generator=g, dtype=DT), torch.randn(out, generator=g, dtype=DT)
    Theta, bias = linear_parameters(theory.linear_model(4, out, weight=W, intercept=b), 4)
    torch.testing.assert_close(Theta, W, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(bias, b, rtol=1e-14, atol=1e-14)


def test_linear_parameters_of_float32_stack_with_flatten():
    torch.manual_seed(1)
    lin = nn.Linear(4, 2)
    Theta, bias = linear_parameters(nn.Sequential(nn.Flatten(), lin, nn.Identity()), 4)
    assert Theta.dtype == DT
    torch.testing.assert_close(Theta, lin.weight.detach().double(), rtol=0, atol=1e-7)
    torch.testing.assert_close(bias, lin.bias.detach().double(), rtol=0, atol=1e-7)


def test_linear_parameters_rejects_nonlinear():
    with pytest.raises(ValueError, match="model"):
        linear_parameters(theory.relu_mlp(3, [4]), 3)


def test_structure_queries():
    lin = theory.linear_model(3)
    relu = theory.relu_mlp(3, [4, 4])
    relu_nb = theory.relu_mlp(3, [4], bias=False)
    tanh = theory.smooth_mlp(3, [4])
    conv = nn.Sequential(nn.Unflatten(1, (1, 8)), nn.Conv1d(1, 2, 3, bias=False), nn.ReLU(),
                         nn.MaxPool1d(2), nn.Flatten(), nn.Linear(6, 1, bias=False))
    callable_model = lambda Z: Z.sum(1)  # noqa: E731

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 1)

        def forward(self, x):
            return torch.relu(self.lin(x))

    assert is_affine(lin) and not is_affine(relu) and not is_affine(callable_model)
    assert is_piecewise_linear(lin) and is_piecewise_linear(relu) and is_piecewise_linear(conv)
    assert not is_piecewise_linear(tanh)
    assert not is_piecewise_linear(callable_model) and not is_piecewise_linear(Custom())  # unknown: not claimed
    assert has_bias(relu) and has_bias(lin) and has_bias(tanh)
    assert not has_bias(relu_nb) and not has_bias(conv)
    assert not has_bias(theory.linear_model(3, bias=False))
    zero_bias = theory.linear_model(3, intercept=0.0)
    assert not has_bias(zero_bias)  # a zero intercept keeps the model homogeneous
    assert has_bias(callable_model)  # unknown: assume the worst


def test_split_affine_prefix_composes_to_the_model():
    X = torch.randn(5, 8, generator=torch.Generator().manual_seed(0), dtype=DT)
    conv = nn.Sequential(nn.Unflatten(1, (1, 8)), nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(12, 1)).double()
    prefix, rest = split_affine_prefix(conv)
    U = prefix(X)
    assert U.shape == (5, 2, 6)
    torch.testing.assert_close(rest(U), conv(X), rtol=1e-14, atol=1e-14)
    assert split_affine_prefix(nn.Sequential(nn.Tanh(), nn.Linear(8, 1))) is None
    assert split_affine_prefix(lambda Z: Z) is None
    assert split_affine_prefix(nn.Sequential(nn.Flatten(), nn.ReLU())) is None  # no weight layer


def test_builders_are_seeded_float64():
    a = theory.relu_mlp(3, [4], generator=torch.Generator().manual_seed(5))
    b = theory.relu_mlp(3, [4], generator=torch.Generator().manual_seed(5))
    c = theory.relu_mlp(3, [4])
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(p.dtype == DT for p in c.parameters())
    assert isinstance(theory.smooth_mlp(3, [4], activation="softplus")[1], nn.Softplus)
    with pytest.raises(ValueError, match="activation"):
        theory.smooth_mlp(3, [4], activation="relu")
    with pytest.raises(ValueError, match="intercept"):
        theory.linear_model(3, bias=False, intercept=1.0)


@pytest.mark.parametrize("build, name", [
    (lambda: theory.linear_model(torch.tensor([1.0, 2.0])), "d"),  # weights passed where d belongs
    (lambda: theory.linear_model(2.5), "d"),
    (lambda: theory.linear_model(0), "d"),
    (lambda: theory.linear_model(2, out=0), "out"),
    (lambda: theory.relu_mlp(3, [4, 0]), "hidden"),
])
def test_model_builders_name_a_bad_size(build, name):
    with pytest.raises(ValueError, match=f"^{name} must be an integer"):
        build()
