"""C10: retentive constant, the W_γ bound, the intrinsic-dimension sweep and the gap corollary.

References: brute force over directions (d = 1 exact, d = 2 a fine angle grid), rejection sampling of
W_γ ∩ Θ_B, a grid search over θ for the W_γ supremum in d = 1 with all 2^n sign vectors, inequalities
between the bounds (hypothesis), and sklearn for the fitted model's losses.
"""
import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theory import (generalization_gap_bound, intrinsic_dimension_sweep, lowrank_gaussian,
                                   retentive_constant, retentiveness_ratio, wgamma_bound,
                                   wgamma_ellipsoid_constant, wgamma_rademacher, wgamma_value)

N_SE = 5
GRID_ANGLES = 20001


def curv(z):
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)


def ratio_brute(X, v):
    z = X @ v
    return np.mean(curv(z)) ** 2 / min(1.0, np.mean(z * z))


def data(n, d, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = scale * rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    return X - X.mean(0)


@pytest.mark.parametrize("radius", [0.3, 2.0, 6.0])
def test_retentive_constant_one_dimension_exact(radius):
    X = data(15, 1, 0)
    exact = ratio_brute(X, np.array([radius]))
    est = retentive_constant(X, radius, directions=4, generator=np.random.default_rng(0))
    assert est["raw"] == pytest.approx(exact, rel=1e-12)
    assert est["rho"] == pytest.approx(min(exact, 0.5), rel=1e-12)
    assert est["clipped"] == (exact > 0.5)


@pytest.mark.parametrize("radius", [1.5, 4.0])
def test_retentive_constant_two_dimensions_vs_angle_grid(radius):
    X = data(25, 2, 1)
    angles = np.linspace(0, np.pi, GRID_ANGLES)
    V = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    grid_min = min(ratio_brute(X, v) for v in V)
    est = retentive_constant(X, radius, directions=32, generator=np.random.default_rng(1))
    assert est["raw"] == pytest.approx(grid_min, rel=1e-5)
    assert est["raw"] <= grid_min * (1 + 1e-9)  # the optimiser is at least as good as the grid
    assert ratio_brute(X, est["direction"]) == pytest.approx(est["raw"], rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(X=arrays(np.float64, (6, 2), elements=st.floats(-3, 3, allow_nan=False, allow_infinity=False)),
       angle=st.floats(0, math.pi), s1=st.floats(0.01, 5), factor=st.floats(1.0, 10.0))
@example(X=np.eye(6, 2), angle=0.0, s1=1.0, factor=1.0)
def test_ratio_non_increasing_along_rays(X, angle, s1, factor):
    """Why the infimum over the ball lies on the sphere: the ratio falls along every ray."""
    u = np.array([math.cos(angle), math.sin(angle)])
    r1, r2 = retentiveness_ratio(X, s1 * u), retentiveness_ratio(X, s1 * factor * u)
    if math.isinf(r1):
        return
    assert r2 <= r1 + 1e-12 + 1e-9 * r1


def test_wgamma_contained_in_ellipsoid():
    """Rejection-sample W_γ ∩ Θ_B (d = 2, ρ from a fine grid): every member has θᵀΣ̂₀θ ≤ c(γ, ρ)."""
    X = data(30, 2, 2)
    radius, S0 = 3.0, X.T @ X / 30
    angles = np.linspace(0, np.pi, GRID_ANGLES)
    rho = min(ratio_brute(X, radius * np.array([math.cos(a), math.sin(a)])) for a in angles) * (1 - 1e-3)
    rng = np.random.default_rng(3)
    thetas = rng.uniform(-radius, radius, (20000, 2))
    thetas = thetas[np.linalg.norm(thetas, axis=1) <= radius]
    for gamma in (0.01, 0.1, 0.5):
        inside = thetas[wgamma_value(X, thetas) <= gamma]
        assert len(inside) > 50
        q = np.einsum("kd,de,ke->k", inside, S0, inside)
        assert q.max() <= wgamma_ellipsoid_constant(gamma, min(rho, 0.5)) * (1 + 1e-12)


@settings(max_examples=50, deadline=None)
@given(gamma=st.floats(1e-6, 1e3), rho=st.floats(1e-6, 0.5), rank=st.integers(0, 50), n=st.integers(1, 500))
@example(gamma=1e-6, rho=0.5, rank=3, n=10)
@example(gamma=0.5 ** 0.5, rho=0.5, rank=3, n=10)  # u = γ/√ρ = 1: the two branches of c meet
def test_derived_ellipsoid_bound_below_paper_bound(gamma, rho, rank, n):
    derived = math.sqrt(wgamma_ellipsoid_constant(gamma, rho) * rank / n)
    paper = wgamma_bound(gamma, rho, rank, n)
    assert derived <= paper * (1 + 1e-12) + 1e-15
    v = gamma / rho
    assert paper == pytest.approx(max(v ** 0.25, v ** 0.5) * math.sqrt(rank / n), rel=1e-12)


def test_wgamma_rademacher_one_dimension_vs_grid_and_enumeration():
    """d = 1: sup over W_γ ∩ Θ_B of θ·v is (max feasible |θ|)·|v|; exact over all 2^n signs."""
    X = data(10, 1, 4)
    gamma, radius = 0.2, 5.0
    grid = np.linspace(0, radius, 200001)
    feasible = grid[wgamma_value(X, grid[:, None]) <= gamma]
    t_max = feasible.max()
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=10)))
    exact = (t_max * np.abs(signs @ X[:, 0]) / 10).mean()
    out = wgamma_rademacher(X, gamma, radius, draws=1000, lower_draws=150, generator=np.random.default_rng(5))
    assert abs(out["lower"] - exact) <= N_SE * out["lower_se"] + 1e-4 * exact
    assert out["lower"] <= out["upper"] + N_SE * (out["upper_se"] + out["lower_se"])
    assert out["upper"] <= out["derived_bound"] + N_SE * out["upper_se"]
    assert out["derived_bound"] <= out["bound"] and out["holds"]


def test_wgamma_rademacher_bracket_on_data():
    X = data(60, 5, 6)
    out = wgamma_rademacher(X, 0.3, 2.0, draws=500, lower_draws=50, generator=np.random.default_rng(6))
    assert 0 < out["lower"] <= out["upper"] + N_SE * (out["upper_se"] + out["lower_se"])
    assert out["upper"] <= out["derived_bound"] + N_SE * out["upper_se"] <= out["bound"] + N_SE * out["upper_se"]
    assert out["rank"] == 5 and 0 < out["rho"] <= 0.5


def test_intrinsic_dimension_sweep_scaling():
    """Ellipsoid Rad ∝ √r, ridge Rad ∝ √(tr Σ̂₀) ≈ √d: each within [1/√2, 1] of its Jensen bound
    (Latała–Oleszkiewicz: E‖Σσ_i a_i‖ ≥ (E‖Σσ_i a_i‖²)^{1/2}/√2)."""
    rows = intrinsic_dimension_sweep((1, 4, 20), d=20, n=120, draws=400, generator=np.random.default_rng(7))
    for row in rows:
        assert row["rank"] == row["r"]
        for cls in ("ellipsoid", "ridge"):
            ratio, se = row[cls] / row[cls + "_bound"], row[cls + "_se"] / row[cls + "_bound"]
            assert 1 / math.sqrt(2) - N_SE * se <= ratio <= 1 + N_SE * se
    assert rows[-1]["ellipsoid"] / rows[0]["ellipsoid"] > 0.7 * math.sqrt(20)
    ridge = [row["ridge"] for row in rows]
    assert max(ridge) / min(ridge) < 1.5


def test_lowrank_gaussian_covariance():
    X = lowrank_gaussian(20000, 10, 3, np.random.default_rng(8))
    assert np.linalg.matrix_rank(X) == 3
    assert np.trace(X.T @ X / len(X)) == pytest.approx(10, rel=0.05)
    with pytest.raises(ValueError, match="r"):
        lowrank_gaussian(10, 3, 4, np.random.default_rng(0))


def test_generalization_gap_corollary_breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    out = generalization_gap_bound(Xtr, ytr, Xte, yte, draws=200, generator=np.random.default_rng(9))
    mean = Xtr.mean(0)
    clf = LogisticRegression(fit_intercept=False, max_iter=10_000, tol=1e-10).fit(Xtr - mean, ytr)
    train = log_loss(ytr, clf.predict_proba(Xtr - mean))
    test = log_loss(yte, clf.predict_proba(Xte - mean))
    assert out["gap"] == pytest.approx(test - train, rel=1e-4, abs=1e-8)
    theta = clf.coef_[0]
    z = (Xtr - mean) @ theta
    assert out["gamma"] == pytest.approx(curv(z).mean() * np.mean(z * z), rel=1e-4)
    v = out["gamma"] / out["rho"]
    rad = max(v ** 0.25, v ** 0.5) * math.sqrt(np.linalg.matrix_rank(Xtr - mean) / len(Xtr))
    conf = out["loss_bound"] * math.sqrt(math.log(1 / 0.05) / (2 * len(Xtr)))
    assert out["bound"] == pytest.approx(2 * rad + conf, rel=1e-12)
    assert out["bound"] >= out["gap"] and out["bound_ellipsoid"] <= out["bound"]
    assert out["vacuous"] == (out["bound"] >= out["loss_bound"])


def test_bad_input():
    X = data(10, 2, 0)
    for call, match in [(lambda: retentive_constant(X, 0.0), "radius"),
                        (lambda: retentive_constant(X, 1.0, directions=0), "directions"),
                        (lambda: wgamma_bound(0.0, 0.1, 2, 10), "gamma"),
                        (lambda: wgamma_bound(1.0, -0.1, 2, 10), "rho"),
                        (lambda: wgamma_rademacher(X, 1.0, -2.0), "radius"),
                        (lambda: wgamma_rademacher(X, 1.0, 2.0, draws=0), "draws"),
                        (lambda: intrinsic_dimension_sweep((1,), c=0.0), "c"),
                        (lambda: generalization_gap_bound(X, np.zeros(10), X, np.zeros(10), delta=1.0), "delta")]:
        with pytest.raises(ValueError, match=match):
            call()
