"""The re-centred expansion (``mixup_expansion(..., form="carratino")``; docs/theory.md §3.4): θ's moments
against numerical integration, the rewrite against the exact Mixup loss, its second-order terms against
finite differences of an independent brute force and a sympy derivation, and the O(s³) residual."""
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st
from scipy import integrate, stats
from scipy.special import log_expit

import theory
from theory._carratino import folded_moments, folded_nodes, recentred_homotopy_losses
from theory._problem import prepare


def _quad_folded(g, a, b):
    """E g(max(λ, 1 − λ)), λ ~ Beta(a, b), by adaptive quadrature on each half of (0, 1)."""
    pdf = stats.beta(a, b).pdf
    lo = integrate.quad(lambda t: g(1 - t) * pdf(t), 0, 0.5, limit=200)[0]
    hi = integrate.quad(lambda t: g(t) * pdf(t), 0.5, 1, limit=200)[0]
    return lo + hi


@pytest.mark.parametrize("a,b", [(1.0, 1.0), (0.2, 0.2), (0.5, 2.0), (3.0, 0.7), (8.0, 8.0)])
def test_folded_moments_and_nodes_match_numerical_integration(a, b):
    mean = _quad_folded(lambda t: t, a, b)
    second = _quad_folded(lambda t: t * t, a, b)
    tbar, var, w2 = folded_moments(a, b)
    assert tbar == pytest.approx(mean, rel=1e-9)
    assert var == pytest.approx(second - mean ** 2, rel=1e-7, abs=1e-12)
    assert w2 == pytest.approx(1 - 2 * mean + second, rel=1e-8)
    t, w = folded_nodes(a, b, 24)
    assert np.all((t >= 0.5) & (t <= 1)) and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert (w * np.exp(t)).sum() == pytest.approx(_quad_folded(np.exp, a, b), rel=1e-10)


def test_uniform_mixing_moments_in_closed_form():
    """α = β = 1: θ uniform on [½, 1]: θ̄ = 3/4, Var = 1/48, E(1 − θ)² = 1/12."""
    np.testing.assert_allclose(folded_moments(1.0, 1.0), (0.75, 1 / 48, 1 / 12), rtol=1e-14)


def _problem(kind, seed, n=5, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    gen = torch.Generator().manual_seed(seed)
    if kind == "linear":
        return theory.linear_model(d, weight=rng.normal(size=d), intercept=0.3), X, rng.integers(0, 2, n), "logistic"
    if kind == "tanh":
        return theory.smooth_mlp(d, [4], generator=gen), X, rng.integers(0, 2, n), "logistic"
    if kind == "softmax":
        return theory.smooth_mlp(d, [4], out=3, generator=gen), X, rng.integers(0, 3, n), "softmax"
    return theory.smooth_mlp(d, [4], out=2, generator=gen), X, rng.normal(size=(n, 2)), "squared"


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["linear", "tanh", "softmax", "squared"]), seed=st.integers(0, 1000),
       a=st.floats(0.2, 6.0), b=st.floats(0.2, 6.0))
def test_recentred_rewrite_equals_the_exact_mixup_loss(kind, seed, a, b):
    """Folding λ onto θ = max(λ, 1 − λ) and re-centring is exact: L_C(1) = L_mix for every loss, α ≠ β included."""
    model, X, y, loss = _problem(kind, seed)
    exact = theory.mixup_loss(model, X, y, a, b, loss=loss)
    assert theory.mixup_loss_recentred(model, X, y, a, b, loss=loss, nodes=48) == pytest.approx(exact, rel=1e-9)


def test_recentred_rewrite_with_a_convolutional_prefix():
    """The first-layer shortcut (mixing the convolution's outputs) keeps the rewrite exact."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8)), torch.nn.Conv1d(1, 2, 3), torch.nn.Tanh(),
                              torch.nn.Flatten(), torch.nn.Linear(12, 1)).double()
    X = np.random.default_rng(0).normal(size=(6, 8))
    y = np.array([0, 1, 0, 1, 1, 0])
    assert theory.mixup_loss_recentred(net, X, y, 0.7, nodes=32) == pytest.approx(
        theory.mixup_loss(net, X, y, 0.7), rel=1e-10)


def _brute_recentred_linear(w, c, X, y, a, b, s):
    """L_C(s) for f = wᵀx + c, logistic, by adaptive quadrature over λ (no folding code: the anchor is
    the partner with weight ≥ ½, found per λ)."""
    n = len(y)
    xbar, ybar = X.mean(0), y.mean()
    pdf = stats.beta(a, b).pdf
    mean = integrate.quad(lambda t: max(t, 1 - t) * pdf(t), 0, 1, points=[0.5])[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            def g(lam):
                th, (p, q) = (lam, (i, j)) if lam >= 0.5 else (1 - lam, (j, i))
                xs, ys = xbar + mean * (X[p] - xbar), ybar + mean * (y[p] - ybar)
                xm = (1 - s) * xs + s * (th * X[p] + (1 - th) * X[q])
                ym = (1 - s) * ys + s * (th * y[p] + (1 - th) * y[q])
                z = xm @ w + c
                return -ym * log_expit(z) - (1 - ym) * log_expit(-z)
            total += integrate.quad(lambda t: g(t) * pdf(t), 0, 1, points=[0.5], epsabs=1e-13, epsrel=1e-12)[0]
    return total / n ** 2


def test_second_order_terms_are_the_second_difference_of_a_brute_force():
    """(L_C(h) + L_C(−h) − 2 L_C(0)) / (2h²) → r2 + r3 (first-order term 0), with L_C by brute force."""
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(4, 2)), np.array([1.0, 0.0, 1.0, 1.0])
    w, c = np.array([1.3, -0.7]), 0.2
    model = theory.linear_model(2, weight=w, intercept=c)
    e = theory.mixup_expansion(model, X, y, 0.7, 2.0, form="carratino")
    assert e.r1 == 0.0 and e.r3 == 0.0
    L0 = _brute_recentred_linear(w, c, X, y, 0.7, 2.0, 0.0)
    assert e.standard == pytest.approx(L0, rel=1e-10)
    h = 1e-2
    second = (_brute_recentred_linear(w, c, X, y, 0.7, 2.0, h) + _brute_recentred_linear(w, c, X, y, 0.7, 2.0, -h)
              - 2 * L0) / (2 * h * h)
    assert e.r2 == pytest.approx(second, rel=1e-3)  # O(h²) error of the central difference
    assert _brute_recentred_linear(w, c, X, y, 0.7, 2.0, 1.0) == pytest.approx(
        theory.mixup_loss(model, X, y, 0.7, 2.0), rel=1e-9)


@pytest.mark.parametrize("kind", ["tanh", "softmax", "squared"])
def test_second_order_terms_match_second_differences_on_smooth_nets(kind):
    """Smooth nets (R3 ≠ 0), three losses: the terms against a central second difference of L_C(s), whose
    value at s = 1 is checked against theory.mixup_loss (so the homotopy is the Mixup loss's)."""
    model, X, y, loss = _problem(kind, 11)
    e = theory.mixup_expansion(model, X, y, 1.5, 0.8, loss=loss, form="carratino", r3="exact")
    assert e.r3 != 0.0
    P = prepare(model, X, y, loss)
    L = lambda s: float(recentred_homotopy_losses(P, 1.5, 0.8, s, 48).mean())  # noqa: E731
    h = 1e-2
    second = (L(h) + L(-h) - 2 * L(0.0)) / (2 * h * h)
    assert e.standard == pytest.approx(L(0.0), rel=1e-12)
    assert e.r2 + e.r3 == pytest.approx(second, rel=2e-3)
    assert L(1.0) == pytest.approx(theory.mixup_loss(model, X, y, 1.5, 0.8, loss=loss), rel=1e-9)


@pytest.mark.parametrize("kind", ["tanh", "softmax", "linear"])
def test_residual_against_the_homotopy_decays_at_third_order(kind):
    model, X, y, loss = _problem(kind, 3)
    e = theory.mixup_expansion(model, X, y, 1.0, loss=loss, form="carratino")
    s = np.geomspace(0.005, 0.05, 5)  # small s: the O(s⁴) term changes the slope near s ≈ 0.3 for the tanh net
    res = [abs(theory.mixup_loss_recentred(model, X, y, 1.0, loss=loss, scale=si, nodes=32)
               - (e.standard + si ** 2 * (e.r2 + e.r3))) for si in s]
    slope = np.polyfit(np.log(s), np.log(res), 1)[0]
    assert 2.7 < slope < 3.3


def test_symbolic_second_order_coefficient_of_a_one_dimensional_tanh_model():
    """sympy: f(x) = v·tanh(u x) + c on two points, logistic loss, α = β = 1 (θ uniform on [½, 1]): the s⁰ and s²
    coefficients of E_j E_θ l(x̃_i + sδ, ỹ_i + sε) — derivatives in s and the θ-integral done symbolically,
    the model's derivatives kept as symbols — against standard and r2 + r3."""
    s, th = sp.symbols("s theta")
    F0, F1, F2 = sp.symbols("F0 F1 F2")  # f, f', f'' at the shrunk point
    u, v, c = 1.5, -2.0, 0.2
    xs_, ys_ = [sp.Rational(1, 2), sp.Rational(-3, 4)], [1, 0]
    xbar, ybar = sum(xs_) / 2, sp.Rational(sum(ys_), 2)
    tbar = sp.integrate(2 * th, (th, sp.Rational(1, 2), 1))
    assert tbar == sp.Rational(3, 4)
    c0 = c2 = 0.0
    for i in range(2):
        xt, yt = xbar + tbar * (xs_[i] - xbar), ybar + tbar * (ys_[i] - ybar)
        t = math.tanh(u * float(xt))
        values = {F0: v * t + c, F1: v * u * (1 - t * t), F2: -2 * v * u * u * t * (1 - t * t)}
        for j in range(2):
            dx = (th - tbar) * (xs_[i] - xbar) + (1 - th) * (xs_[j] - xbar)
            dy = (th - tbar) * (ys_[i] - ybar) + (1 - th) * (ys_[j] - ybar)
            fz = F0 + F1 * s * dx + F2 * (s * dx) ** 2 / 2  # f's Taylor polynomial to the order needed
            loss = sp.log(1 + sp.exp(fz)) - (yt + s * dy) * fz
            coeff2 = sp.diff(loss, s, 2).subs(s, 0) / 2
            c0 += float(loss.subs(s, 0).subs(values)) / 4
            c2 += float(sp.integrate(2 * sp.expand(coeff2), (th, sp.Rational(1, 2), 1)).subs(values)) / 4
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Tanh(), torch.nn.Linear(1, 1)).double()
    with torch.no_grad():
        model[0].weight.fill_(u), model[0].bias.fill_(0.0), model[2].weight.fill_(v), model[2].bias.fill_(c)
    X = np.array([[0.5], [-0.75]])
    e = theory.mixup_expansion(model, X, np.array([1, 0]), 1.0, form="carratino", r3="exact")
    assert e.standard == pytest.approx(c0, rel=1e-13)
    assert e.r2 + e.r3 == pytest.approx(c2, rel=1e-11)


def test_terms_add_up_and_scale_enters_squared():
    model, X, y, loss = _problem("tanh", 7)
    e = theory.mixup_expansion(model, X, y, 1.0, form="carratino", scale=0.3)
    assert e.form == "carratino" and e.r1 == 0.0 and e.jacobian == e.r2
    assert e.standard == pytest.approx(e.shrunk + e.label_smoothing, rel=1e-14)
    assert e.approx == pytest.approx(e.standard + 0.09 * (e.r2 + e.r3), rel=1e-14)
    P = prepare(model, X, y, loss)
    with torch.no_grad():  # standard by hand: the loss at the shrunk points with smoothed labels
        xbar, tbar = P.X.mean(0), folded_moments(1.0, 1.0)[0]
        f = model(xbar + tbar * (P.X - xbar)).reshape(-1).numpy()
    ys = y.mean() + tbar * (y - y.mean())
    assert e.standard == pytest.approx(np.mean(-ys * log_expit(f) - (1 - ys) * log_expit(-f)), rel=1e-13)


def test_bad_form_raises_naming_it():
    model, X, y, _ = _problem("linear", 0)
    with pytest.raises(ValueError, match="form"):
        theory.mixup_expansion(model, X, y, 1.0, form="carratinoo")
    with pytest.raises(ValueError, match="nodes"):
        theory.mixup_loss_recentred(model, X, y, 1.0, nodes=0)
