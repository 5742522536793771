"""GLM losses (docs/theory.md §0): values against torch.nn.functional, derivatives against autograd."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

from theory import get_loss

DT = torch.float64
RTOL = 1e-12
HUGE = 800.0  # margins far past exp's overflow in float64 (e^710)


def _logits(name, n=6, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    K = 3 if name == "softmax" else (2 if name == "squared" else 1)
    return scale * torch.randn(n, K, generator=g, dtype=DT)


def _labels(name, F, seed=1):
    g = torch.Generator().manual_seed(seed)
    n, K = F.shape
    if name == "logistic":
        return torch.randint(0, 2, (n, 1), generator=g).to(DT)
    if name == "softmax":
        p = torch.rand(n, K, generator=g, dtype=DT)
        return p / p.sum(1, keepdim=True)  # probability rows (mixed labels)
    return torch.randn(n, K, generator=g, dtype=DT)


def _reference_value(name, F, Y):
    """The loss from torch.nn.functional: BCE-with-logits, cross entropy with soft targets, ½·MSE."""
    if name == "logistic":
        return Fn.binary_cross_entropy_with_logits(F, Y, reduction="none").sum(-1)
    if name == "softmax":
        return Fn.cross_entropy(F, Y, reduction="none")
    return 0.5 * Fn.mse_loss(F, Y, reduction="none").sum(-1)


@pytest.mark.parametrize("name", ["logistic", "softmax", "squared"])
def test_value_matches_torch_functional(name):
    loss = get_loss(name)
    F = _logits(name)
    Y = _labels(name, F)
    torch.testing.assert_close(loss.value(F, Y), _reference_value(name, F, Y), rtol=RTOL, atol=1e-14)


def test_logistic_value_is_softplus_of_signed_margin():
    F = torch.linspace(-30, 30, 13, dtype=DT)[:, None]
    y = (torch.arange(13) % 2).to(DT)[:, None]
    s = 2 * y - 1
    ref = torch.tensor([math.log1p(math.exp(-v)) if v > -30 else -v for v in (s * F).ravel().tolist()], dtype=DT)
    torch.testing.assert_close(get_loss("logistic").value(F, y), ref, rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("name", ["logistic", "softmax", "squared"])
def test_grad_and_hessian_match_autograd(name):
    loss = get_loss(name)
    F = _logits(name)
    Fr = F.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss.h(Fr).sum(), Fr)
    torch.testing.assert_close(loss.grad_h(F), g, rtol=RTOL, atol=1e-15)
    H = torch.stack([torch.autograd.functional.hessian(lambda f: loss.h(f[None])[0], F[i]) for i in range(len(F))])
    torch.testing.assert_close(loss.hessian(F), H, rtol=1e-11, atol=1e-15)
    V = torch.randn(F.shape, generator=torch.Generator().manual_seed(3), dtype=DT)
    torch.testing.assert_close(loss.curvature(F, V), torch.einsum("nk,nkl,nl->n", V, H, V), rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("name", ["logistic", "softmax", "squared"])
def test_gradcheck_value_and_h(name):
    loss = get_loss(name)
    F = _logits(name, n=3).requires_grad_(True)
    Y = _labels(name, F.detach())
    assert torch.autograd.gradcheck(lambda f: loss.value(f, Y), (F,))
    assert torch.autograd.gradgradcheck(lambda f: loss.h(f), (F,))
    assert torch.autograd.gradcheck(loss.grad_h, (F,))


@pytest.mark.parametrize("name", ["logistic", "softmax", "squared"])
def test_value_is_linear_in_the_label(name):
    """C1 needs l(f, λy + (1−λ)y') = λ l(f, y) + (1−λ) l(f, y'), up to the squared loss's ½‖y‖² term."""
    loss = get_loss(name)
    F = _logits(name)
    Y1, Y2 = _labels(name, F, 1), _labels(name, F, 2)
    lam = 0.3
    mixed = loss.value(F, lam * Y1 + (1 - lam) * Y2)
    split = lam * loss.value(F, Y1) + (1 - lam) * loss.value(F, Y2)
    if name == "squared":
        split = split - 0.5 * lam * (1 - lam) * ((Y1 - Y2) ** 2).sum(-1)
    torch.testing.assert_close(mixed, split, rtol=RTOL, atol=1e-13)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_logistic_stable_at_huge_margins(sign):
    loss = get_loss("logistic")
    F = torch.tensor([[sign * HUGE]], dtype=DT, requires_grad=True)
    for y, expect in ((0.0, max(sign * HUGE, 0.0)), (1.0, max(-sign * HUGE, 0.0))):
        Y = torch.tensor([[y]], dtype=DT)
        val = loss.value(F, Y)
        (g,) = torch.autograd.grad(val.sum(), F)
        assert float(val) == pytest.approx(expect, abs=1e-300)
        assert torch.isfinite(g).all() and abs(float(g)) <= 1.0
    Fd = F.detach()
    assert float(loss.grad_h(Fd)) == (1.0 if sign > 0 else 0.0)
    H = loss.hessian(Fd)
    assert torch.isfinite(H).all() and float(H) >= 0.0
    assert float(loss.curvature(Fd, torch.ones_like(Fd))) >= 0.0


def test_softmax_stable_at_huge_logits():
    loss = get_loss("softmax")
    F = torch.tensor([[HUGE, -HUGE, 0.0], [-HUGE, -HUGE, HUGE]], dtype=DT, requires_grad=True)
    Y = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=DT)
    val = loss.value(F, Y)
    (g,) = torch.autograd.grad(val.sum(), F)
    assert val.tolist() == pytest.approx([2 * HUGE, 0.0], abs=1e-300)
    assert torch.isfinite(g).all()
    Fd = F.detach()
    assert torch.isfinite(loss.grad_h(Fd)).all() and torch.isfinite(loss.hessian(Fd)).all()
    assert torch.isfinite(loss.curvature(Fd, torch.ones_like(Fd))).all()


def test_squared_finite_at_huge_margins():
    loss = get_loss("squared")
    F = torch.tensor([[HUGE], [-HUGE]], dtype=DT)
    Y = torch.tensor([[1.0], [0.0]], dtype=DT)
    assert loss.value(F, Y).tolist() == [0.5 * (HUGE - 1) ** 2, 0.5 * HUGE ** 2]


def test_squared_value_without_cancellation():
    """Offset labels and logits: ½(y − f)² directly, not h(f) − yf + ½y² (which loses every digit at 1e8)."""
    F = torch.tensor([[1e8 + 0.5]], dtype=DT)
    Y = torch.tensor([[1e8 - 0.5]], dtype=DT)
    assert float(get_loss("squared").value(F, Y)) == 0.5


def test_labels_validation():
    lg, sm, sq = get_loss("logistic"), get_loss("softmax"), get_loss("squared")
    np.testing.assert_array_equal(lg.labels([0, 1, 1], 3, 1).numpy().ravel(), [0, 1, 1])
    np.testing.assert_array_equal(sm.labels([2, 0], 2, 3).numpy(), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"y .*\{0, 1\}"):
        lg.labels([0, 2, 1], 3, 1)
    with pytest.raises(ValueError, match=r"y .*\{0, 1\}"):
        lg.labels([0.0, 0.5, 1.0], 3, 1)
    with pytest.raises(ValueError, match="y"):
        sm.labels([0, 3], 2, 3)
    with pytest.raises(ValueError, match="y"):
        sm.labels([[0.5, 0.6, 0.0]], 1, 3)
    with pytest.raises(ValueError, match="y"):
        sm.labels([0.5, 1.0], 2, 3)
    with pytest.raises(ValueError, match="y"):
        sq.labels([[1.0, 2.0]], 1, 1)
    with pytest.raises(ValueError, match="y"):
        lg.labels([0, float("nan")], 2, 1)


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss"):
        get_loss("hinge")
