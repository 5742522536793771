"""Second-order expansion (C2, docs/theory.md §3) against finite differences of the homotopy and full Hessians."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import theory
from theory._problem import prepare
from theory._expansion import input_jacobians

import _problems

DT = torch.float64
FD_STEP = 4e-3  # homotopy step per unit of max‖x_r − x_i‖₂, for the one-sided 5-point stencils below
RELU_FD_H = 1e-3  # absolute homotopy step for the ReLU case: no kink crossed within 4 steps (2e-3 crosses)
R1_RTOL, R1_ATOL = 1e-7, 1e-10  # stencil truncation O(h⁴), rounding ~1e-15/h
R23_RTOL, R23_ATOL = 2e-5, 1e-8  # stencil truncation O(h³), rounding ~1e-15/h² (measured ≤ 1e-9)
HESSIAN_RTOL = 1e-10
SE_TOL = 5.0
HUTCHINSON_TEST_PROBES = 64
SLOPE_GRID = (0.2, 0.1, 0.05, 0.025, 0.0125)


def make_problem(kind, loss, n=7, **kwargs):
    """``_problems.make_problem`` at this file's sizes (n = 7, hidden widths 8, 6)."""
    return _problems.make_problem(kind, loss, n=n, hidden=(8, 6), **kwargs)


def homotopy_derivatives(model, X, y, alpha, beta, loss, h=None):
    """``(L(0), L'(0), ½L''(0))`` of ``s ↦ mixup_loss_unmixed(scale=s)`` by one-sided 5-point stencils."""
    if h is None:
        h = FD_STEP / max(1.0, float(np.linalg.norm(X[:, None] - X[None], axis=-1).max()))
    L = [theory.mixup_loss_unmixed(model, X, y, alpha, beta, loss=loss, scale=k * h) for k in range(5)]
    d1 = (-25 * L[0] + 48 * L[1] - 36 * L[2] + 16 * L[3] - 3 * L[4]) / (12 * h)
    d2 = (35 * L[0] - 104 * L[1] + 114 * L[2] - 56 * L[3] + 11 * L[4]) / (12 * h * h)
    return L[0], d1, 0.5 * d2


def mixing_m2(alpha, beta):
    """m_2 = E_D̃(1−λ)² = E_Beta[λ(1−λ)² + (1−λ)λ²] = E_Beta[λ(1−λ)] = αβ/((α+β)(α+β+1))."""
    return alpha * beta / ((alpha + beta) * (alpha + beta + 1))


FD_CASES = [("linear", "logistic"), ("tanh", "logistic"), ("tanh", "softmax"), ("tanh", "squared"),
            ("conv", "softmax"), ("relu", "logistic"), ("linear", "squared")]


@pytest.mark.parametrize("kind, loss", FD_CASES, ids=[f"{k}-{l}" for k, l in FD_CASES])
def test_terms_match_homotopy_derivatives(kind, loss):
    """C2: R1 = dL/ds and R2 + R3 = ½ d²L/ds² at s = 0 along the homotopy of identity (I)."""
    model, X, y = make_problem(kind, loss, d=4, seed=2)
    alpha, beta = 0.6, 1.7
    L0, d1, half_d2 = homotopy_derivatives(model, X, y, alpha, beta, loss,
                                           RELU_FD_H if kind == "relu" else None)
    e = theory.mixup_expansion(model, X, y, alpha, beta, loss=loss)
    assert e.standard == pytest.approx(L0, rel=1e-12)
    assert e.r1 == pytest.approx(d1, rel=R1_RTOL, abs=R1_ATOL)
    assert e.r2 + e.r3 == pytest.approx(half_d2, rel=R23_RTOL, abs=R23_ATOL)
    assert abs(e.r1) > 1e-5 and abs(e.r2 + e.r3) > 1e-5  # non-trivial terms


@settings(max_examples=12)
@given(alpha=st.floats(0.05, 20.0), beta=st.floats(0.05, 20.0), n=st.integers(2, 6), d=st.integers(1, 4),
       scale=st.floats(0.1, 3.0), seed=st.integers(0, 2 ** 16), loss=st.sampled_from(["logistic", "softmax", "squared"]))
def test_terms_match_homotopy_property(alpha, beta, n, d, scale, seed, loss):
    model, X, y = make_problem("tanh", loss, n=n, d=d, seed=seed, scale=scale)
    _, d1, half_d2 = homotopy_derivatives(model, X, y, alpha, beta, loss)
    e = theory.mixup_expansion(model, X, y, alpha, beta, loss=loss)
    assert e.r1 == pytest.approx(d1, rel=R1_RTOL, abs=R1_ATOL)
    assert e.r2 + e.r3 == pytest.approx(half_d2, rel=R23_RTOL, abs=R23_ATOL)


@pytest.mark.parametrize("loss", ["logistic", "softmax", "squared"])
def test_remainder_is_third_order(loss):
    """L_mix(s) − L̃_mix(s) = O(s³): log–log slope ≈ 3, residual/s³ bounded, residual/s² → 0."""
    model, X, y = make_problem("tanh", loss, d=3, seed=6, scale=1.5)
    res = np.array([theory.mixup_loss_unmixed(model, X, y, 0.8, 1.5, loss=loss, scale=s)
                    - theory.mixup_expansion(model, X, y, 0.8, 1.5, loss=loss, scale=s).approx
                    for s in SLOPE_GRID])
    s = np.array(SLOPE_GRID)
    slope = np.polyfit(np.log(s), np.log(np.abs(res)), 1)[0]
    assert slope == pytest.approx(3.0, abs=0.25)
    by_cube = np.abs(res) / s ** 3
    assert by_cube.max() <= 3 * by_cube.min()
    by_square = np.abs(res) / s ** 2
    assert np.all(np.diff(by_square) < 0)  # decreasing as s shrinks
    assert by_square[-1] < 0.1 * by_square[0]


def test_scale_enters_only_approx():
    model, X, y = make_problem("tanh", "logistic", seed=1)
    a, b = theory.mixup_expansion(model, X, y, 1.0), theory.mixup_expansion(model, X, y, 1.0, scale=0.3)
    assert (a.standard, a.r1, a.r2, a.r3) == (b.standard, b.r1, b.r2, b.r3)
    assert b.approx == pytest.approx(b.standard + 0.3 * b.r1 + 0.09 * (b.r2 + b.r3), rel=1e-15)
    assert a.approx == pytest.approx(a.standard + a.r1 + a.r2 + a.r3, rel=1e-15)


def test_linear_logistic_closed_form():
    """Logistic regression: R1 = (m1/n) Σ (σ_i − y_i) θᵀ(x̄ − x_i), R2 = (m2/2n) Σ σ_i(1−σ_i)[θᵀΣ̂θ + (θᵀ(x̄ − x_i))²]."""
    rng = np.random.default_rng(3)
    X, theta, b = rng.normal(size=(9, 3)) + 1.0, rng.normal(size=3), 0.4
    y = (rng.random(9) < 0.5).astype(int)
    alpha, beta = 0.7, 2.2
    m2 = mixing_m2(alpha, beta)
    z = X @ theta + b
    sig = 1 / (1 + np.exp(-z))
    C = X - X.mean(0)
    Sigma = C.T @ C / len(X)
    proj = -C @ theta
    r1 = 2 * m2 * np.mean((sig - y) * proj)
    r2 = 0.5 * m2 * np.mean(sig * (1 - sig) * (theta @ Sigma @ theta + proj ** 2))
    e = theory.mixup_expansion(theory.linear_model(3, weight=theta, intercept=b), X, y, alpha, beta)
    assert (e.r1, e.r2, e.r3) == pytest.approx((r1, r2, 0.0), rel=1e-12, abs=1e-300)
    assert e.m1 == pytest.approx(2 * m2, rel=1e-13) and e.m2 == pytest.approx(m2, rel=1e-13)


@pytest.mark.parametrize("kind", ["linear", "relu"])
@pytest.mark.parametrize("method", ["auto", "exact", "hutchinson"])
def test_r3_vanishes_for_piecewise_linear_models(kind, method):
    """R3 = 0 for linear and bias-free ReLU nets, also through actual Hessian-vector products."""
    model, X, y = make_problem(kind, "logistic", seed=5, bias=False)
    e = theory.mixup_expansion(model, X, y, 1.0, r3=method)
    assert e.r3 == 0.0 if method == "auto" else abs(e.r3) < 1e-15
    assert abs(e.r2) > 1e-6
    if method == "auto":
        assert e.r3_method.startswith("zero")


def _r3_by_full_hessians(model, X, y, alpha, beta, loss):
    """R3 = (m2/2n) Σ_i [tr(H_i Σ̂) + (x̄−x_i)ᵀH_i(x̄−x_i)], H_i = ∇²_x (G_iᵀ f)(x_i) by autograd.functional.hessian."""
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        F = model(Xt).reshape(len(X), -1)
    if loss == "logistic":
        G = torch.sigmoid(F) - torch.as_tensor(y, dtype=DT)[:, None]
    else:
        G = torch.softmax(F, -1) - nn.functional.one_hot(torch.as_tensor(y), F.shape[1]).to(DT)
    C = Xt - Xt.mean(0)
    Sigma = C.T @ C / len(X)
    H = [torch.autograd.functional.hessian(lambda x: (G[i] * model(x[None]).reshape(-1)).sum(), Xt[i])
         for i in range(len(X))]
    total = sum(torch.trace(Hi @ Sigma) + C[i] @ Hi @ C[i] for i, Hi in enumerate(H))
    return float(0.5 * mixing_m2(alpha, beta) * total / len(X)), torch.stack(H), Sigma


@pytest.mark.parametrize("kind, loss", [("tanh", "logistic"), ("tanh", "softmax"), ("conv", "logistic")])
def test_r3_exact_matches_full_hessian(kind, loss):
    model, X, y = make_problem(kind, loss, n=6, d=4, seed=7)
    ref, _, _ = _r3_by_full_hessians(model, X, y, 0.5, 3.0, loss)
    e = theory.mixup_expansion(model, X, y, 0.5, 3.0, loss=loss, r3="exact")
    assert e.r3_method == "exact"
    assert e.r3 == pytest.approx(ref, rel=HESSIAN_RTOL)
    assert abs(ref) > 1e-5
    assert theory.mixup_expansion(model, X, y, 0.5, 3.0, loss=loss).r3 == pytest.approx(ref, rel=HESSIAN_RTOL)


def test_r3_hutchinson_within_standard_errors():
    """Hutchinson probes g ~ N(0, Σ̂) shared by all i: Var(gᵀH̄g) = 2 tr((H̄Σ̂)²), H̄ = Σ_i H_i."""
    model, X, y = make_problem("tanh", "logistic", n=8, d=5, seed=8, scale=1.5)
    ref, H, Sigma = _r3_by_full_hessians(model, X, y, 1.0, 1.0, "logistic")
    HS = H.sum(0) @ Sigma
    se = 0.5 * mixing_m2(1.0, 1.0) / len(X) * math.sqrt(2 * float(torch.trace(HS @ HS)) / HUTCHINSON_TEST_PROBES)
    for seed in range(3):
        e = theory.mixup_expansion(model, X, y, 1.0, r3="hutchinson", probes=HUTCHINSON_TEST_PROBES,
                                   generator=torch.Generator().manual_seed(seed))
        assert e.r3_method.startswith("hutchinson")
        assert abs(e.r3 - ref) <= SE_TOL * se
        assert e.r3 != pytest.approx(ref, rel=1e-9)  # it is an estimate


def test_r3_zero_method():
    model, X, y = make_problem("tanh", "logistic", seed=1)
    assert theory.mixup_expansion(model, X, y, 1.0, r3="zero").r3 == 0.0


@pytest.mark.parametrize("kind, loss", [("tanh", "softmax"), ("conv", "logistic"), ("linear", "softmax")])
def test_input_jacobians_match_autograd(kind, loss):
    model, X, y = make_problem(kind, loss, n=5, d=4, seed=3)
    J = input_jacobians(prepare(model, X, y, loss))
    Xt = torch.as_tensor(X)
    ref = torch.stack([torch.autograd.functional.jacobian(lambda x: model(x[None]).reshape(-1), Xt[i])
                       for i in range(len(X))])
    torch.testing.assert_close(J, ref, rtol=1e-12, atol=1e-14)


def test_standard_is_the_mean_loss():
    model, X, y = make_problem("tanh", "logistic", seed=2)
    with torch.no_grad():
        f = model(torch.as_tensor(X)).reshape(-1)
    ref = float(nn.functional.binary_cross_entropy_with_logits(f, torch.as_tensor(y, dtype=DT)))
    assert theory.mixup_expansion(model, X, y, 1.0).standard == pytest.approx(ref, rel=1e-14)
