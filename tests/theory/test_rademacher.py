"""C10: Rademacher complexity of the ellipsoid and ridge classes.

References: the supremum over θ by scipy.optimize and by sampling the ellipsoid boundary; the exact
expectation over all 2^n sign vectors (tiny n) with a pinv-based formula written here.
"""
import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import optimize

import theory
from theory import ellipsoid_sup, ridge_sup

N_SE = 5  # Monte-Carlo tolerance in standard errors
DRAWS = 4000
HYP_DRAWS = 200
SUP_RTOL = 1e-6  # constrained optimiser vs closed form


def low_rank(n, d, r, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, r)) @ rng.standard_normal((r, d))


def all_signs(n):
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


def brute_sup_ellipsoid(X, c, sigma):
    """sup θᵀv over θᵀΣ̂₀θ ≤ c by SLSQP from several starts (v = Xᵀσ/n)."""
    n, d = X.shape
    S0 = X.T @ X / n
    v = X.T @ sigma / n
    cons = {"type": "ineq", "fun": lambda t: c - t @ S0 @ t, "jac": lambda t: -2 * S0 @ t}
    best = -np.inf
    for start in np.random.default_rng(0).standard_normal((5, d)) * 0.1:
        res = optimize.minimize(lambda t: -t @ v, start, jac=lambda t: -v, constraints=[cons], method="SLSQP",
                                options={"ftol": 1e-14, "maxiter": 500})
        if res.success and res.x @ S0 @ res.x <= c * (1 + 1e-9):
            best = max(best, -res.fun)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ellipsoid_sup_matches_constrained_optimisation(seed):
    X = low_rank(7, 4, 2, seed)  # rank-deficient: Σ̂₀ singular, the sup is still finite
    sigma = np.random.default_rng(seed + 10).choice([-1.0, 1.0], 7)
    assert ellipsoid_sup(X, 2.5, sigma) == pytest.approx(brute_sup_ellipsoid(X, 2.5, sigma), rel=SUP_RTOL)


def test_ellipsoid_sup_vs_boundary_sampling():
    """θ on the boundary {θᵀΣ̂₀θ = c} within the row space: sampled values stay below the sup and reach it."""
    X = low_rank(9, 5, 2, 3)
    n, c = len(X), 0.7
    _, S, Vt = np.linalg.svd(X, full_matrices=False)
    basis, scale = Vt[:2], S[:2] / math.sqrt(n)  # Σ̂₀ = Σ_k scale_k² v_k v_kᵀ on the row space
    angles = np.linspace(0, 2 * np.pi, 20001)
    thetas = math.sqrt(c) * (np.cos(angles)[:, None] * basis[0] / scale[0] + np.sin(angles)[:, None] * basis[1] / scale[1])
    assert np.allclose(np.einsum("kd,de,ke->k", thetas, X.T @ X / n, thetas), c)
    for sigma in np.random.default_rng(4).choice([-1.0, 1.0], (5, n)):
        sampled = (thetas @ (X.T @ sigma / n)).max()
        exact = ellipsoid_sup(X, c, sigma)
        assert sampled <= exact * (1 + 1e-12)
        assert sampled >= exact * (1 - 1e-6)


def test_ridge_sup_matches_constrained_optimisation():
    X = low_rank(6, 3, 3, 5)
    sigma = np.array([1.0, -1, 1, 1, -1, -1])
    v = X.T @ sigma / 6
    cons = {"type": "ineq", "fun": lambda t: 1.7 - t @ t}
    res = optimize.minimize(lambda t: -t @ v, np.zeros(3) + 0.01, constraints=[cons], method="SLSQP",
                            options={"ftol": 1e-14})
    assert ridge_sup(X, 1.7, sigma) == pytest.approx(-res.fun, rel=SUP_RTOL)


@pytest.mark.parametrize("cls", ["ellipsoid", "ridge"])
def test_monte_carlo_matches_exact_enumeration(cls):
    X = low_rank(10, 4, 3, 6)
    n, c = len(X), 1.3
    signs = all_signs(n)
    V = signs @ X / n
    if cls == "ellipsoid":
        sups = np.sqrt(c * np.einsum("kd,de,ke->k", V, np.linalg.pinv(X.T @ X / n), V))
    else:
        sups = math.sqrt(c) * np.linalg.norm(V, axis=1)
    exact = sups.mean()
    est = theory.rademacher(X, c, cls=cls, draws=DRAWS, generator=np.random.default_rng(7))
    assert abs(est.value - exact) <= N_SE * est.stderr
    assert est.value <= est.bound + N_SE * est.stderr


def test_expected_projection_norm_at_most_sqrt_rank():
    """E‖Pσ‖ ≤ √r (Jensen), exact over all sign vectors; equality when P = I (r = n)."""
    for n, d, r in [(8, 5, 2), (8, 8, 8), (9, 3, 1)]:
        X = low_rank(n, d, r, n + r)
        P = X @ np.linalg.pinv(X)
        mean_norm = np.linalg.norm(all_signs(n) @ P, axis=1).mean()
        assert mean_norm <= math.sqrt(r) * (1 + 1e-12)
        est = theory.rademacher(X, 1.0, draws=DRAWS, generator=np.random.default_rng(r))
        assert est.rank == r == np.linalg.matrix_rank(X)
        assert abs(est.value * math.sqrt(n) - mean_norm) <= N_SE * est.stderr * math.sqrt(n) + 1e-12
        if r == n:
            assert est.value == pytest.approx(est.bound, rel=1e-12) and est.stderr < 1e-12


def test_rank_uses_numpy_default_tolerance():
    X = low_rank(20, 6, 3, 8)
    X_noisy = X + 1e-9 * np.random.default_rng(9).standard_normal(X.shape)  # above numpy's tolerance
    assert theory.rademacher(X, 1.0, draws=2).rank == np.linalg.matrix_rank(X) == 3
    assert theory.rademacher(X_noisy, 1.0, draws=2).rank == np.linalg.matrix_rank(X_noisy) == 6
    tr = (X * X).sum() / len(X)
    assert theory.rademacher(X, 2.0, cls="ridge", draws=2).bound == pytest.approx(math.sqrt(2.0 * tr / len(X)))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 12), d=st.integers(1, 6), r=st.integers(1, 6), c=st.floats(0.01, 10.0),
       seed=st.integers(0, 2 ** 16), cls=st.sampled_from(["ellipsoid", "ridge"]))
@example(n=4, d=4, r=4, c=1.0, seed=0, cls="ellipsoid")  # r = n: ‖Pσ‖ = √n, value = bound exactly
@example(n=2, d=1, r=1, c=0.01, seed=0, cls="ridge")
def test_rademacher_below_bound(n, d, r, c, seed, cls):
    X = low_rank(n, d, min(r, d), seed)
    est = theory.rademacher(X, c, cls=cls, draws=HYP_DRAWS, generator=np.random.default_rng(seed))
    assert est.value <= est.bound + N_SE * est.stderr + 1e-12 + 1e-12 * est.bound


@settings(max_examples=10, deadline=None)
@given(X=arrays(np.float64, (5, 3), elements=st.floats(-3, 3, allow_nan=False, allow_infinity=False)),
       c=st.floats(0.1, 5.0))
def test_sup_is_attained_and_feasible(X, c):
    """The maximiser θ* = √c Σ̂₀⁺v / √(vᵀΣ̂₀⁺v) is feasible and attains ellipsoid_sup (any data)."""
    n = len(X)
    sigma = np.array([1.0, -1, -1, 1, 1])
    got = ellipsoid_sup(X, c, sigma)
    X = X / max(np.abs(X).max(), 1e-300)  # the supremum depends on X's column space only: keep X.T @ X normal
    v = X.T @ sigma / n
    # Σ̂₀⁺ = n X⁺X⁺ᵀ with numpy's default rank tolerance on X (max(n, d)·eps·s_max, as documented), not on the
    # Gram matrix, whose squared conditioning drops directions that X keeps
    Xp = np.linalg.pinv(X, rcond=max(X.shape) * np.finfo(float).eps)
    pinv = n * Xp @ Xp.T
    quad = v @ pinv @ v
    if quad <= 1e-20:
        assert got == pytest.approx(0.0, abs=1e-8)
        return
    theta = math.sqrt(c / quad) * pinv @ v
    assert theta @ (X.T @ X / n) @ theta <= c * (1 + 1e-8)
    assert got == pytest.approx(theta @ v, rel=1e-7, abs=1e-12)


def test_generator_reproducible_and_fresh():
    X = low_rank(12, 4, 2, 1)
    a = theory.rademacher(X, 1.0, draws=50, generator=np.random.default_rng(3))
    b = theory.rademacher(X, 1.0, draws=50, generator=np.random.default_rng(3))
    assert a.value == b.value
    fresh = theory.rademacher(X, 1.0, draws=50)
    assert math.isfinite(fresh.value) and fresh.draws == 50
    with pytest.raises(ValueError, match="draws"):  # one draw has no standard error (it would be NaN)
        theory.rademacher(X, 1.0, draws=1)


@pytest.mark.parametrize("kwargs, match", [({"c": 0.0}, "c"), ({"c": -1.0}, "c"), ({"c": math.nan}, "c"),
                                           ({"c": 1.0, "draws": 0}, "draws"), ({"c": 1.0, "draws": 1.5}, "draws"),
                                           ({"c": 1.0, "cls": "ball"}, "cls")])
def test_bad_input(kwargs, match):
    X = low_rank(6, 3, 2, 0)
    with pytest.raises(ValueError, match=match):
        theory.rademacher(X, **kwargs)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="X"):
        theory.rademacher(np.ones(5), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        ellipsoid_sup(np.ones((4, 2)), 1.0, np.ones(3))
    with pytest.raises(ValueError, match="c"):
        ridge_sup(np.ones((4, 2)), 0.0, np.ones(4))
