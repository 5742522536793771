"""Adversarial losses (docs/theory.md §4): closed forms vs brute force over the ball, the exact
trust-region solver, attack/certificate ordering, input validation, and an optional ART cross-check."""
import copy
import math

import numpy as np
import pytest
import torch
from scipy.special import expit, log_expit

import theory
from theory import adversarial_losses
from theory._attacks import pgd_losses
from theory._problem import prepare
from theory import linear_model, relu_mlp, smooth_mlp
from theory._trust_region import trust_region_max

SPHERE_2D = 20_000  # angles on the circle: margin error ≤ ε‖θ‖(1 − cos(π/N)) ≈ 1.2e-8 ε‖θ‖
SPHERE_3D = 200_000  # Fibonacci points: spacing ≈ √(4π/N) ≈ 8e-3 rad, error ≈ 4e-5 ε‖θ‖
DISK_RADII = 300
EXACT_TOL = 1e-12
PGD_LINEAR_TOL = 1e-6
INF = math.inf


def sphere(d: int) -> np.ndarray:
    """Unit vectors densely covering the sphere in d = 2, 3."""
    if d == 2:
        t = np.linspace(0, 2 * np.pi, SPHERE_2D, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], 1)
    k = np.arange(SPHERE_3D) + 0.5
    z = 1 - 2 * k / SPHERE_3D
    phi = np.pi * (1 + 5 ** 0.5) * k
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def vertices(d: int) -> np.ndarray:
    return np.array(np.meshgrid(*[[-1.0, 1.0]] * d)).reshape(d, -1).T


def resolution(d: int) -> float:
    return (1 - np.cos(np.pi / SPHERE_2D)) if d == 2 else 0.5 * (4 * np.pi / SPHERE_3D)


def brute_linear(theta, b, X, y, eps, dirs, loss):
    """max over eps·dirs of the loss of x ↦ θᵀx + b, per sample (numpy, independent of theory/)."""
    z = (X[:, None, :] + eps * dirs[None]) @ theta + b  # (n, m)
    if loss == "logistic":
        vals = -log_expit((2 * y[:, None] - 1) * z)
    else:
        vals = 0.5 * (y[:, None] - z) ** 2
    return vals.max(1)


def data(seed, n=7, d=2, scale=1.5):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(n, d)) * scale


# ---------------------------------------------------------------- exact closed forms vs brute force

@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("loss", ["logistic", "squared"])
@pytest.mark.parametrize("intercept", [None, 0.7])
def test_exact_l2_matches_sphere_search(d, loss, intercept):
    rng, X = data(10 * d + (loss == "squared"), d=d)
    theta = rng.normal(size=d)
    y = (rng.random(7) < 0.5).astype(float) if loss == "logistic" else rng.normal(size=7)
    model = linear_model(d, bias=intercept is not None, weight=theta, intercept=intercept)
    eps = 0.6
    exact = adversarial_losses(model, X, y, eps, loss=loss, method="exact")
    brute = brute_linear(theta, intercept or 0.0, X, y, eps, sphere(d), loss)
    lipschitz = np.abs(exact) ** 0.5 * 2 + 1  # |dl/dmargin| ≤ 1 (logistic), ≤ √(2l) (squared)
    assert np.all(exact >= brute - EXACT_TOL)
    assert np.all(exact - brute <= 2 * resolution(d) * eps * np.linalg.norm(theta) * lipschitz + EXACT_TOL)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("loss", ["logistic", "squared"])
@pytest.mark.parametrize("intercept", [None, -0.4])
def test_exact_linf_matches_vertex_enumeration(d, loss, intercept):
    rng, X = data(20 + d, d=d)
    theta = rng.normal(size=d)
    y = (rng.random(7) < 0.5).astype(float) if loss == "logistic" else rng.normal(size=7)
    model = linear_model(d, bias=intercept is not None, weight=theta, intercept=intercept)
    exact = adversarial_losses(model, X, y, 0.45, loss=loss, norm=INF, method="exact")
    brute = brute_linear(theta, intercept or 0.0, X, y, 0.45, vertices(d), loss)  # convex: max at a vertex
    np.testing.assert_allclose(exact, brute, rtol=1e-12, atol=EXACT_TOL)


@pytest.mark.parametrize("d", [2, 3])
def test_exact_multioutput_squared_l2_matches_sphere_search(d):
    rng, X = data(30 + d, d=d)
    Theta, b = rng.normal(size=(2, d)), rng.normal(size=2)
    model = linear_model(d, out=2, weight=Theta, intercept=b)
    Y = rng.normal(size=(7, 2))
    eps = 0.8
    exact = adversarial_losses(model, X, Y, eps, loss="squared", method="exact")
    Z = (X[:, None, :] + eps * sphere(d)[None]) @ Theta.T + b
    brute = (0.5 * ((Y[:, None, :] - Z) ** 2).sum(-1)).max(1)
    scale = np.linalg.norm(Theta, 2) * eps * (np.abs(exact) ** 0.5 * 2 + 1)
    assert np.all(exact >= brute - EXACT_TOL)
    assert np.all(exact - brute <= 4 * resolution(d) * scale + 1e-12)


def test_exact_zero_eps_is_clean_loss():
    rng, X = data(1)
    model = linear_model(2, weight=[1.0, -1.0], intercept=0.2)
    y = np.array([0, 1, 1, 0, 1, 0, 1.0])
    z = X @ np.array([1.0, -1.0]) + 0.2
    clean = -log_expit((2 * y - 1) * z).mean()
    assert theory.adversarial_loss(model, X, y, 0.0) == pytest.approx(clean, rel=1e-14)


# ---------------------------------------------------------------- second-order model and the TRS

def quad_brute_disk(g, H, eps):
    """max of gᵀδ + ½δᵀHδ over a dense polar grid of the disk (d = 2)."""
    dirs = sphere(2)[::4]
    r = np.linspace(0, 1, DISK_RADII)
    D = eps * (r[:, None, None] * dirs[None]).reshape(-1, 2)
    return (D @ g + 0.5 * np.einsum("mi,ij,mj->m", D, H, D)).max()


def test_trust_region_hard_case_closed_form():
    # max (0,1)·δ + ½δᵀdiag(3,−1)δ on the unit disk: g ⟂ top eigenvector of H and ‖δ₀‖ = 1/4 < 1,
    # so δ* = (±√(15/16), 1/4), value 1/4 + ½(3·15/16 − 1/16) = 1.625.
    g = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    H = torch.diag(torch.tensor([3.0, -1.0], dtype=torch.float64))[None]
    res = trust_region_max(g, H, 1.0)
    assert float(res.value) == pytest.approx(1.625, abs=1e-13)
    assert float(res.upper) == pytest.approx(1.625, abs=1e-13)
    assert float(res.delta.norm()) == pytest.approx(1.0, abs=1e-13)
    near = trust_region_max(torch.tensor([[1e-9, 1.0]], dtype=torch.float64), H, 1.0)  # near-hard case
    assert float(near.value) == pytest.approx(1.625, abs=1e-8)
    assert float(near.upper - near.value) < 1e-12


@pytest.mark.parametrize("seed", range(12))
def test_trust_region_matches_disk_search(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(2, 2))
    H = A + A.T if seed % 3 else -(A @ A.T)  # indefinite / negative definite (interior optimum)
    g = rng.normal(size=2) * (0.0 if seed % 4 == 0 else 1.0)  # g = 0: pure eigenvalue problem
    eps = 0.3 + rng.random() * 2
    res = trust_region_max(torch.tensor(g)[None], torch.tensor(H)[None], eps)
    brute = quad_brute_disk(g, H, eps)
    scale = (np.linalg.norm(g) + np.abs(H).max() * eps) * eps
    assert float(res.value) >= brute - 1e-12
    assert float(res.value) - brute <= 1e-4 * scale + 1e-12  # grid resolution
    assert float(res.upper) - float(res.value) <= 1e-10 * (1 + scale)
    assert float(res.delta.norm()) <= eps * (1 + 1e-12)


@pytest.mark.parametrize("norm", [2, INF])
def test_second_order_linear_logistic_is_the_max_of_the_quadratic_model(norm):
    rng, X = data(5, d=2)
    theta, b = np.array([1.3, -0.7]), 0.25
    model = linear_model(2, weight=theta, intercept=b)
    y = (rng.random(7) < 0.5).astype(float)
    eps = 0.5
    z = X @ theta + b
    sig = expit(z)
    g = (sig - y)[:, None] * theta
    dirs = sphere(2) if norm == 2 else vertices(2)  # convex quadratic: max on the boundary / at a vertex
    D = eps * dirs
    quad = (-log_expit((2 * y - 1) * z))[:, None] + g @ D.T + 0.5 * (sig * (1 - sig))[:, None] * (D @ theta)[None] ** 2
    got = adversarial_losses(model, X, y, eps, norm=norm, method="second_order")
    assert np.all(got >= quad.max(1) - 1e-12)
    assert np.all(got - quad.max(1) <= 1e-6)


def per_sample_quadratic(model, x, y, loss):
    """(l, g, H) of δ ↦ l(x + δ) at δ = 0 for one sample, by plain autograd on the direct formula."""
    xt = torch.tensor(x, dtype=torch.float64)

    def l(v):
        f = model(v[None])[0]
        if loss == "logistic":
            return torch.nn.functional.softplus(-(2 * y - 1) * f[0])
        return torch.logsumexp(f, 0) - f[int(y)]

    g = torch.autograd.functional.jacobian(l, xt)
    H = torch.autograd.functional.hessian(l, xt)
    with torch.no_grad():
        return float(l(xt)), g.numpy(), H.numpy()


@pytest.mark.parametrize("kind", ["tanh", "softmax_relu", "softplus"])
def test_second_order_trust_region_on_nets_matches_disk_search(kind):
    gen = torch.Generator().manual_seed(3)
    if kind == "softmax_relu":
        model, loss, y = relu_mlp(2, [6], out=3, generator=gen), "softmax", np.array([0, 2, 1, 1])
    else:
        act = "tanh" if kind == "tanh" else "softplus"
        model, loss, y = smooth_mlp(2, [5], activation=act, generator=gen), "logistic", np.array([0, 1, 1, 0.0])
    X = np.random.default_rng(4).normal(size=(4, 2)) * 2
    eps = 0.9
    got = adversarial_losses(model, X, y, eps, loss=loss, method="second_order")
    for i in range(4):
        l0, g, H = per_sample_quadratic(model, X[i], y[i], loss)
        brute = l0 + quad_brute_disk(g, H, eps)
        assert got[i] >= brute - 1e-10
        assert got[i] - brute <= 1e-4 * (np.linalg.norm(g) + np.abs(H).max() * eps) * eps + 1e-12


@pytest.mark.parametrize("norm", [2, INF])
def test_second_order_relu_closed_form(norm):
    gen = torch.Generator().manual_seed(8)
    model = relu_mlp(3, [7, 5], generator=gen)
    X = np.random.default_rng(8).normal(size=(9, 3))
    y = np.arange(9) % 2
    eps = 0.3
    got = adversarial_losses(model, X, y, eps, norm=norm, method="second_order")
    q = 1 if norm == INF else 2
    for i in range(9):
        xt = torch.tensor(X[i], requires_grad=True)
        f = model(xt[None])[0, 0]
        (grad,) = torch.autograd.grad(f, xt)
        f, gq = float(f), float(grad.norm(p=q))
        sig = expit(f)
        expected = -log_expit((2 * y[i] - 1) * f) + eps * abs(sig - y[i]) * gq + 0.5 * eps ** 2 * sig * (1 - sig) * gq ** 2
        assert got[i] == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- attacks on linear models

def linear_problem(seed, d, intercept, loss="logistic", n=9):
    """Random inputs, a linear model with random weights and labels for ``loss`` (binary or normal)."""
    rng, X = data(seed, n=n, d=d)
    model = linear_model(d, weight=rng.normal(size=d), intercept=intercept)
    y = (rng.random(n) < 0.5).astype(float) if loss == "logistic" else rng.normal(size=n)
    return model, X, y


@pytest.mark.parametrize("norm", [2, INF])
@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_fgsm_is_exact_on_linear_models(norm, loss):
    model, X, y = linear_problem(11, 3, 0.3, loss)
    exact = adversarial_losses(model, X, y, 0.4, loss=loss, norm=norm)
    fgsm = adversarial_losses(model, X, y, 0.4, loss=loss, norm=norm, method="fgsm")
    np.testing.assert_allclose(fgsm, exact, rtol=1e-12, atol=EXACT_TOL)


@pytest.mark.parametrize("norm", [2, INF])
def test_pgd_from_random_starts_reaches_the_exact_value_on_linear_models(norm):
    model, X, y = linear_problem(12, 4, -0.2)
    eps = 0.5
    exact = theory.adversarial_loss(model, X, y, eps, norm=norm)
    pgd = theory.adversarial_loss(model, X, y, eps, norm=norm, method="pgd", fgsm_start=False, restarts=2,
                                  steps=60, step_size=eps, generator=torch.Generator().manual_seed(1))
    assert pgd <= exact + EXACT_TOL
    assert pgd >= exact - PGD_LINEAR_TOL
    default = theory.adversarial_loss(model, X, y, eps, norm=norm, method="pgd")
    assert abs(default - exact) <= PGD_LINEAR_TOL


@pytest.mark.parametrize("norm", [2, INF])
@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_certified_equals_exact_on_linear_models(norm, loss):
    model, X, y = linear_problem(13, 3, 0.5, loss)
    exact = adversarial_losses(model, X, y, 0.7, loss=loss, norm=norm)
    for bound in ("crown", "ibp"):
        cert = adversarial_losses(model, X, y, 0.7, loss=loss, norm=norm, method="certified", bound=bound)
        np.testing.assert_allclose(cert, exact, rtol=1e-12, atol=EXACT_TOL)


# ---------------------------------------------------------------- ReLU nets: ordering and brute force

NET_CASES = [(loss, norm, seed) for loss in ("logistic", "softmax", "squared") for norm in (2, INF) for seed in range(3)]


@pytest.mark.parametrize("loss,norm,seed", NET_CASES)
def test_clean_fgsm_pgd_certified_ordering_on_relu_nets(loss, norm, seed):
    gen = torch.Generator().manual_seed(seed)
    out = 3 if loss == "softmax" else 1
    model = relu_mlp(4, [9, 7][: 1 + seed % 2], out=out, generator=gen)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(12, 4))
    y = rng.integers(0, 3, 12) if loss == "softmax" else ((rng.random(12) < 0.5) * 1.0 if loss == "logistic" else rng.normal(size=12))
    eps = 0.25
    kw = dict(loss=loss, norm=norm)
    clean = adversarial_losses(model, X, y, 0.0, method="fgsm", **kw)
    fgsm = adversarial_losses(model, X, y, eps, method="fgsm", **kw)
    pgd = adversarial_losses(model, X, y, eps, method="pgd", **kw)
    crown = adversarial_losses(model, X, y, eps, method="certified", **kw)
    ibp = adversarial_losses(model, X, y, eps, method="certified", bound="ibp", **kw)
    plain = adversarial_losses(model, X, y, eps, method="pgd", fgsm_start=False, restarts=0, **kw)
    assert np.all(clean <= fgsm) and np.all(fgsm <= pgd)
    assert np.all(plain <= pgd)  # plain PGD (from the clean point) is one of PGD's starts
    assert np.all(pgd <= crown * (1 + 1e-12) + 1e-12)
    assert np.all(crown <= ibp * (1 + 1e-12) + 1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_pgd_is_at_least_plain_pgd_per_sample_on_relu_nets(seed):
    """Each start's best point is kept, so the default PGD never loses to PGD from the clean point
    (before: 2.7e-5 below it on seed 0, ℓ2)."""
    gen = torch.Generator().manual_seed(seed)
    model = relu_mlp(2, [8, 8], generator=gen)
    X = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    y = (torch.rand(20, generator=gen) > 0.5).long()
    for norm in (2, INF):
        default = adversarial_losses(model, X, y, 0.5, norm=norm, method="pgd", steps=10)
        plain = adversarial_losses(model, X, y, 0.5, norm=norm, method="pgd", steps=10, fgsm_start=False, restarts=0)
        fgsm = adversarial_losses(model, X, y, 0.5, norm=norm, method="fgsm")
        assert np.all(default >= plain) and np.all(default >= fgsm)


def test_pgd_is_a_lower_bound_that_misses_a_maximum_behind_a_flat_region():
    """f(x) = 1 − 2 relu(x − ½) is flat at x = 0: gradient steps cannot leave it, so PGD without
    random starts reports the clean loss softplus(−1) = 0.3133, while the maximum over |δ| ≤ 1.5 is
    softplus(1) = 1.3133 (at x = 1.5) — which the certificate bounds from above (documented)."""
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1)).double()
    with torch.no_grad():
        model[0].weight.fill_(1.0), model[0].bias.fill_(-0.5), model[2].weight.fill_(-2.0), model[2].bias.fill_(1.0)
    pgd = theory.adversarial_loss(model, [[0.0]], [1], 1.5, method="pgd", restarts=0)
    assert pgd == pytest.approx(math.log1p(math.exp(-1.0)), abs=1e-15)
    assert theory.adversarial_loss(model, [[0.0]], [1], 1.5, method="certified") >= math.log1p(math.e) - 1e-12
    assert theory.adversarial_loss(model, [[0.0]], [1], 1.5, method="pgd", restarts=50) == pytest.approx(
        math.log1p(math.e), abs=1e-12)


@pytest.mark.parametrize("norm", [2, INF])
def test_attacks_and_certificate_bracket_a_dense_search_on_a_small_relu_net(norm):
    gen = torch.Generator().manual_seed(21)
    model = relu_mlp(2, [10, 6], generator=gen)
    X = np.random.default_rng(21).normal(size=(5, 2))
    y = np.array([1, 0, 1, 1, 0.0])
    eps = 0.6
    if norm == 2:
        dirs = sphere(2)[::10]
        D = eps * (np.linspace(0, 1, 200)[:, None, None] * dirs[None]).reshape(-1, 2)
    else:
        grid = np.linspace(-eps, eps, 401)
        D = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    with torch.no_grad():
        Z = torch.tensor(X[:, None, :] + D[None]).reshape(-1, 2)
        f = model(Z).reshape(5, -1).numpy()
    brute = (-log_expit((2 * y[:, None] - 1) * f)).max(1)
    # PGD is a local search: on this net one ℓ∞ sample needs ~30 random starts to find the best vertex
    pgd = adversarial_losses(model, X, y, eps, norm=norm, method="pgd", restarts=30)
    cert = adversarial_losses(model, X, y, eps, norm=norm, method="certified")
    assert np.all(cert >= brute - 1e-12)
    assert np.all(pgd >= brute - 2e-3 * (1 + brute))  # grid spacing ≈ 3e-3·ε, loss Lipschitz ≤ ‖∇f‖


def test_pgd_is_deterministic_given_a_generator_and_respects_ball_and_box():
    gen = torch.Generator().manual_seed(2)
    model = relu_mlp(3, [8], generator=gen)
    X = np.random.default_rng(2).uniform(0, 1, size=(10, 3))
    y = np.arange(10) % 2
    runs = [theory.adversarial_loss(model, X, y, 0.3, method="pgd", generator=torch.Generator().manual_seed(5))
            for _ in range(2)]
    assert runs[0] == runs[1]
    for norm in (2, INF):
        P = prepare(model, X, y, "logistic")
        box = (torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
        best, Z = pgd_losses(P, 0.3, norm, box=box, return_inputs=True)
        assert bool(((Z >= 0) & (Z <= 1)).all())
        dist = (Z - P.X).abs().amax(1) if norm == INF else (Z - P.X).norm(dim=1)
        assert bool((dist <= 0.3 * (1 + 1e-12)).all())
        with torch.no_grad():
            again = P.loss.value(P.fn(Z), P.Y)
        torch.testing.assert_close(best, again, rtol=0, atol=1e-14)



def _pgd_by_loop(P, eps, norm, steps, restarts, fgsm_start, box, seed):
    """The PGD specification as a plain loop: each start in turn, every iterate scored by its own
    forward pass, the running best updated on a strict increase (module docstring of theory._attacks)."""
    from theory._attacks import _random_in_ball, ascent_step, attack_objective, project

    def grad(Z):
        Z = Z.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(attack_objective(P, P.fn(Z), P.Y).sum(), Z)
        return g

    def loss(Z):
        with torch.no_grad():
            return P.loss.value(P.fn(Z), P.Y)

    alpha, gen = 2.5 * eps / max(steps, 1), torch.Generator().manual_seed(seed)
    starts = [P.X] + ([project(P.X + ascent_step(grad(P.X), eps, norm), P.X, eps, norm, box)] if fgsm_start else [])
    starts += [project(P.X + _random_in_ball(P.n, P.d, eps, norm, gen), P.X, eps, norm, box) for _ in range(restarts)]
    best, best_x = loss(P.X), P.X.clone()
    for Z in starts:
        for k in range(steps + 1):
            vals = loss(Z)
            better = vals > best
            best, best_x = torch.where(better, vals, best), torch.where(better[:, None], Z, best_x)
            if k < steps:
                Z = project(Z + ascent_step(grad(Z), alpha, norm), P.X, eps, norm, box)
    return best, best_x


@pytest.mark.parametrize("loss, norm, steps, restarts, fgsm_start, boxed",
                         [("logistic", 2, 10, 1, True, False), ("logistic", INF, 5, 2, False, True),
                          ("softmax", 2, 7, 3, True, True), ("softmax", INF, 10, 0, True, False),
                          ("squared", 2, 0, 2, True, False)])
def test_pgd_matches_the_loop_over_starts_and_iterates(loss, norm, steps, restarts, fgsm_start, boxed):
    """The stacked implementation (all starts in one batch, losses from the gradient's forward pass,
    one gradient at the clean point shared by FGSM and the first step) returns exactly the points
    and losses of the loop that scores every iterate of every start in turn."""
    gen = torch.Generator().manual_seed(7)
    K = 3 if loss == "softmax" else 1
    model = relu_mlp(4, [16, 16], out=K, generator=gen)
    X = torch.rand(30, 4, generator=gen, dtype=torch.float64) * 2 - 1
    y = torch.randint(0, K, (30,), generator=gen) if loss == "softmax" else (
        X[:, :1] if loss == "squared" else (torch.rand(30, generator=gen) > 0.5).long())
    P = prepare(model, X, y, loss)
    box = (torch.full((4,), -1.1, dtype=torch.float64), torch.full((4,), 1.1, dtype=torch.float64)) if boxed else None
    best, Z = pgd_losses(P, 0.4, norm, steps=steps, restarts=restarts, fgsm_start=fgsm_start, box=box,
                         generator=torch.Generator().manual_seed(3), return_inputs=True)
    ref_best, ref_Z = _pgd_by_loop(P, 0.4, norm, steps, restarts, fgsm_start, box, 3)
    torch.testing.assert_close(best, ref_best, rtol=0, atol=1e-13)
    torch.testing.assert_close(Z, ref_Z, rtol=0, atol=1e-13)
    assert bool((best > P.loss.value(P.F, P.Y) + 1e-9).any())  # the attack moved somewhere

# ---------------------------------------------------------------- bad input

def test_bad_input_raises_value_error():
    model = linear_model(2, weight=[1.0, 2.0])
    net = relu_mlp(2, [3])
    X, y = np.ones((3, 2)), np.array([0, 1, 1])
    for kwargs, match in [
        (dict(eps=-0.1), "eps"),
        (dict(eps=float("nan")), "eps"),
        (dict(eps=0.1, norm=1), "norm"),
        (dict(eps=0.1, norm="inf"), "norm"),
        (dict(eps=0.1, method="cw"), "method"),
        (dict(eps=0.1, method="pgd", steps=-1), "steps"),
        (dict(eps=0.1, method="fgsm", steps=3), "option"),
        (dict(eps=0.1, method="pgd", box=(2.0, 3.0)), "box"),
        (dict(eps=0.1, loss="hinge"), "loss"),
    ]:
        with pytest.raises(ValueError, match=match):
            theory.adversarial_loss(model, X, y, **kwargs)
    with pytest.raises(ValueError, match="linear model"):
        theory.adversarial_loss(net, X, y, 0.1, method="exact")
    net3 = relu_mlp(2, [3], out=3)
    with pytest.raises(ValueError, match="softmax"):
        theory.adversarial_loss(net3, X, y, 0.1, loss="softmax", method="exact")
    with pytest.raises(ValueError, match="norm=inf"):
        theory.adversarial_loss(smooth_mlp(2, [3]), X, y, 0.1, norm=INF, method="second_order")
    with pytest.warns(UserWarning, match="Tanh"):  # unsupported layer: an explicit "undetermined" (nan), no error
        assert math.isnan(theory.adversarial_loss(smooth_mlp(2, [3]), X, y, 0.1, method="certified"))
    with pytest.raises(ValueError, match="norm=2"):
        theory.adversarial_loss(linear_model(2, out=2), X, np.ones((3, 2)), 0.1, loss="squared", norm=INF)


# ---------------------------------------------------------------- optional cross-check with ART

@pytest.mark.parametrize("norm", [2, INF])
def test_pgd_agrees_with_adversarial_robustness_toolbox(norm):
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    gen = torch.Generator().manual_seed(9)
    model = relu_mlp(4, [16, 16], out=3, generator=gen)
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    eps, steps = 0.3, 20
    model32 = copy.deepcopy(model).float()  # ART computes in float32
    clf = PyTorchClassifier(model=model32, loss=torch.nn.CrossEntropyLoss(), input_shape=(4,), nb_classes=3,
                            device_type="cpu")
    attack = ProjectedGradientDescent(clf, norm=2 if norm == 2 else np.inf, eps=eps, eps_step=eps / 4,
                                      max_iter=steps, num_random_init=0, batch_size=40, verbose=False)
    X_art = attack.generate(X.astype(np.float32), y=np.eye(3)[y]).astype(np.float64)
    with torch.no_grad():
        art_loss = torch.nn.functional.cross_entropy(model(torch.tensor(X_art)), torch.tensor(y), reduction="none").numpy()
    ours = adversarial_losses(model, X, y, eps, loss="softmax", norm=norm, method="pgd", steps=steps,
                              step_size=eps / 4, restarts=0, fgsm_start=False)
    dist = np.abs(X_art - X).max(1) if norm == INF else np.linalg.norm(X_art - X, axis=1)
    assert np.all(dist <= eps * (1 + 1e-5))
    # the same algorithm from the same start (float32 there): ours keeps the best iterate, so it is not below
    # ART's end point beyond float32 noise, and not far above it either
    assert ours.mean() >= art_loss.mean() - 1e-5
    assert ours.mean() <= art_loss.mean() * 1.01
    assert ours.mean() <= theory.adversarial_loss(model, X, y, eps, loss="softmax", norm=norm, method="certified")
