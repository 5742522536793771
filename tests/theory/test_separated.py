"""Linear-time exact Mixup loss of logistic regression (docs/theory.md §2) against independent references:
numpy loops with QUADPACK's algebraic-weight rule, the all-pairs path, torch autograd through an
all-pairs formula, and finite differences."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

import theory
from theory import mixup_loss, mixup_loss_error, mixup_loss_separated
from theory._mixing import _beta_rule

TARGET_RTOL = 1e-12  # the method's promise (relative error of L_mix)
SAME_RULE_RTOL = 1e-13  # separated vs all pairs with the same Gauss–Jacobi rule: interpolation + rounding
GRAD_RTOL = 1e-10  # autograd through the separated sum vs through all pairs
FD_STEP, FD_RTOL = 1e-5, 1e-7  # central differences: O(h²) truncation, rounding ~ eps/h
BOUND_SLACK = 4.0
QUAD_EPSREL = 2e-14  # QUADPACK accepts ≥ 50 eps


def quad_g(a: float, b: float, al: float, be: float) -> float:
    """``E_{λ~Beta(al, be)} softplus(λa + (1−λ)b)`` by QUADPACK with the weight λ^(al−1)(1−λ)^(be−1)."""
    val, _ = integrate.quad(lambda lam: np.logaddexp(0.0, lam * a + (1 - lam) * b), 0.0, 1.0, weight="alg",
                            wvar=(al - 1.0, be - 1.0), epsabs=0.0, epsrel=QUAD_EPSREL, limit=2000)
    return val / math.exp(special.betaln(al, be))


def brute(z, y, al, be) -> float:
    """``(1/n²) Σ_ij [E softplus(z̃) − E ỹ z̃]``: loops over pairs, QUADPACK for softplus, exact moments."""
    n = len(z)
    s = (al + be) * (al + be + 1)
    e2, c, o2 = al * (al + 1) / s, al * be / s, be * (be + 1) / s  # E λ², E λ(1−λ), E (1−λ)²
    total = 0.0
    for i in range(n):
        for j in range(n):
            label = e2 * y[i] * z[i] + c * (y[i] * z[j] + y[j] * z[i]) + o2 * y[j] * z[j]
            total += quad_g(z[i], z[j], al, be) - label
    return total / n ** 2


def problem(n, d, scale, seed, intercept=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=(1, d))
    w *= scale / np.linalg.norm(w)
    model = theory.linear_model(d, weight=w, intercept=[rng.normal() * scale / 4] if intercept else None,
                                bias=intercept)
    z = (X @ w.T).ravel() + (float(model[0].bias.detach()) if intercept else 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return model, X, y, z


def torch_pairs(model, X, y, al, be, q):
    """All-pairs mixed loss with a q-node rule, written directly in torch (differentiable)."""
    lam, w = (torch.as_tensor(v) for v in _beta_rule(q, al, be))
    z = model(torch.as_tensor(X)).reshape(-1)
    yt = torch.as_tensor(y, dtype=torch.float64)
    mix = lambda v: lam[:, None, None] * v[None, :, None] + (1 - lam)[:, None, None] * v[None, None, :]
    zm = mix(z)
    return (torch.nn.functional.softplus(zm, threshold=1000) - mix(yt) * zm).mean((1, 2)) @ w


# (alpha, beta, margin scale, intercept): α from 0.05 to 20, α ≠ β, narrow to wide margins
FAMILIES = [(1.0, 1.0, 1.0, True), (0.05, 20.0, 3.0, True), (20.0, 0.05, 8.0, False), (0.3, 3.0, 30.0, True),
            (2.0, 0.5, 12.0, False), (0.05, 0.05, 50.0, False), (20.0, 20.0, 50.0, True)]


@pytest.mark.parametrize("al,be,scale,intercept", FAMILIES)
def test_matches_quadpack_brute_force(al, be, scale, intercept):
    """Separated method (λ integrated exactly) vs loops × QUADPACK, within 1e-12 relative, bound honest."""
    model, X, y, z = problem(7, 3, scale, seed=int(al * 100 + scale), intercept=intercept)
    ref = brute(z, y, al, be)
    value, bound = mixup_loss_error(model, X, y, al, be, method="separated")
    assert abs(value - ref) <= TARGET_RTOL * abs(ref)
    assert abs(value - ref) <= bound + 1e-15 * abs(ref)  # the estimate is not below the error (QUADPACK at ~1e-15)
    assert bound <= BOUND_SLACK * TARGET_RTOL * abs(ref)  # informative (rounding-limited at wide margins)
    assert mixup_loss(model, X, y, al, be, method="separated") == value


@pytest.mark.parametrize("al,be,scale,intercept", [f[:2] + (min(f[2], 8.0),) + f[3:] for f in FAMILIES[:5]])
def test_same_rule_as_all_pairs(al, be, scale, intercept):
    """With ``nodes`` given, the separated value is the all-pairs value of that Gauss–Jacobi rule."""
    model, X, y, _ = problem(80, 4, scale, seed=3, intercept=intercept)
    for q in (8, 64):
        sep = mixup_loss(model, X, y, al, be, nodes=q, method="separated")
        pairs = mixup_loss(model, X, y, al, be, nodes=q, method="pairs")
        assert sep == pytest.approx(pairs, rel=SAME_RULE_RTOL, abs=0)


def test_wide_margins_against_converged_pairs():
    """Margins of ±50 (separable data): a fixed 64-node all-pairs value is off, the separated one
    agrees with the all-pairs value at 512 nodes (converged: 512 vs 1024 agree to 1e-14)."""
    model, X, y, _ = problem(60, 2, 50.0, seed=5)
    al, be = 0.7, 1.9
    fine = mixup_loss(model, X, y, al, be, nodes=512, method="pairs")
    finer = mixup_loss(model, X, y, al, be, nodes=1024, method="pairs")
    assert fine == pytest.approx(finer, rel=1e-14, abs=0)
    sep = mixup_loss(model, X, y, al, be)
    assert sep == pytest.approx(fine, rel=TARGET_RTOL, abs=0)
    assert abs(mixup_loss(model, X, y, al, be, nodes=64, method="pairs") - fine) > 1e3 * TARGET_RTOL * fine


@pytest.mark.parametrize("q", [1, 31, 32, 33, 40, 41, 100, 343, 1000, 1025, 5000])
def test_rule_ladder_never_has_fewer_nodes(q):
    """Rounding λ-rules up to the ladder keeps them at least as fine, at most 41 % (+8) larger."""
    from theory._separated import rule_size
    size = rule_size(q)
    assert size >= q and size % 8 == 0
    assert size <= max(32, 1.42 * q + 8)
    assert rule_size(size) == size  # the ladder's sizes are fixed points


def test_rows_shares_add_up_and_match_pairs():
    model, X, y, _ = problem(90, 3, 6.0, seed=7)
    al, be = 0.4, 2.5
    cuts = [0, 13, 50, 50, 90]
    shares = [mixup_loss(model, X, y, al, be, nodes=32, rows=(a, b)) for a, b in zip(cuts, cuts[1:])]
    pair_shares = [mixup_loss(model, X, y, al, be, nodes=32, rows=(a, b), method="pairs")
                   for a, b in zip(cuts, cuts[1:])]
    total = mixup_loss(model, X, y, al, be, nodes=32)
    assert sum(shares) == pytest.approx(total, rel=SAME_RULE_RTOL)
    assert shares[2] == 0.0
    for s, p in zip(shares, pair_shares):
        assert s == pytest.approx(p, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("intercept", [True, False])
def test_gradients_match_pairs_autograd_and_finite_differences(intercept):
    model, X, y, _ = problem(60, 3, 5.0, seed=11, intercept=intercept)
    al, be, q = 0.6, 1.7, 48
    loss = mixup_loss_separated(model, X, y, al, be, nodes=q)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    ref = torch.autograd.grad(torch_pairs(model, X, y, al, be, q), list(model.parameters()))
    for g, r in zip(grads, ref):
        assert torch.allclose(g, r, rtol=GRAD_RTOL, atol=1e-14)
    # finite differences of the float value (exact λ-expectation) along each weight
    w = model[0].weight.detach().clone()
    g_exact = torch.autograd.grad(mixup_loss_separated(model, X, y, al, be), [model[0].weight])[0]
    for k in range(w.shape[1]):
        vals = []
        for s in (1, -1):
            with torch.no_grad():
                model[0].weight.copy_(w)
                model[0].weight[0, k] += s * FD_STEP
            vals.append(mixup_loss(model, X, y, al, be))
        with torch.no_grad():
            model[0].weight.copy_(w)
        fd = (vals[0] - vals[1]) / (2 * FD_STEP)
        assert fd == pytest.approx(float(g_exact[0, k]), rel=FD_RTOL, abs=1e-10)


def test_device_kernels_match_host_kernels(monkeypatch):
    """The torch kernels that run on a GPU (run here on CPU tensors) give the host (numpy) values and
    gradients, shares included, with more margins than one block so the chunking is exercised."""
    from theory import _separated

    model, X, y, _ = problem(300, 3, 6.0, seed=17)
    monkeypatch.setattr(_separated, "CHUNK", 128)

    def run():
        loss = mixup_loss_separated(model, X, y, 0.7, 2.2, rows=(40, 250))
        return float(loss), torch.autograd.grad(loss, list(model.parameters()))

    host_value, host_grads = run()
    monkeypatch.setattr(_separated, "_host", lambda t: t)
    device_value, device_grads = run()
    assert device_value == pytest.approx(host_value, rel=1e-13)
    for g, h in zip(device_grads, host_grads):
        assert torch.allclose(g, h, rtol=1e-12, atol=1e-15)


def test_rows_gradient_matches_pairs_share():
    model, X, y, _ = problem(40, 2, 4.0, seed=13)
    share = mixup_loss_separated(model, X, y, 1.5, 0.5, nodes=24, rows=(5, 23))
    g = torch.autograd.grad(share, [model[0].weight])[0]
    lam, w = (torch.as_tensor(v) for v in _beta_rule(24, 1.5, 0.5))
    z = model(torch.as_tensor(X)).reshape(-1)
    yt = torch.as_tensor(y, dtype=torch.float64)
    zm = lam[:, None, None] * z[5:23, None] + (1 - lam)[:, None, None] * z[None, :]
    ym = lam[:, None, None] * yt[5:23, None] + (1 - lam)[:, None, None] * yt[None, :]
    ref = ((torch.nn.functional.softplus(zm, threshold=1000) - ym * zm).sum((1, 2)) @ w) / 40 ** 2
    assert float(share) == pytest.approx(float(ref), rel=1e-12)
    assert torch.allclose(g, torch.autograd.grad(ref, [model[0].weight])[0], rtol=GRAD_RTOL, atol=1e-15)


@pytest.mark.slow
def test_margins_beyond_auto_limit_against_converged_pairs():
    """Margins up to 487 (just below MAX_MARGIN): still within 1e-12 of numpy all pairs with a
    4096-node rule (which agrees with 2048 nodes to 1e-14); ~30 s. Beyond MAX_MARGIN: refused at once."""
    from theory._separated import MAX_MARGIN
    model, X, y, z = problem(20, 2, 400.0, seed=21)
    assert np.abs(z).max() > MAX_MARGIN
    with pytest.raises(ValueError, match="MAX_MARGIN"):
        mixup_loss_error(model, X, y, 0.3, 2.0)
    model, X, y, z = problem(20, 2, 250.0, seed=21)
    assert 400 < np.abs(z).max() <= MAX_MARGIN

    def pairs(q):
        lam, w = _beta_rule(q, 0.3, 2.0)
        zm = lam[:, None, None] * z[:, None] + (1 - lam)[:, None, None] * z[None, :]
        ym = lam[:, None, None] * y[:, None] + (1 - lam)[:, None, None] * y[None, :]
        return float((np.logaddexp(0, zm) - ym * zm).mean((1, 2)) @ w)

    fine, finer = pairs(2048), pairs(4096)
    assert fine == pytest.approx(finer, rel=1e-14, abs=0)
    value, bound = mixup_loss_error(model, X, y, 0.3, 2.0, method="separated")
    assert value == pytest.approx(finer, rel=TARGET_RTOL, abs=0)
    assert abs(value - finer) <= bound + 1e-14 * finer


@pytest.mark.parametrize("reach,n,expected", [(1.0, 24, False), (1.0, 25, True), (5.0, 3, False), (5.0, 200, True),
                                              (111.0, 200, False), (300.0, 50, False), (300.0, 2000, True),
                                              (1500.0, 400, False), (1500.0, 10 ** 5, True)])
def test_auto_takes_the_separated_method_where_it_is_cheaper(reach, n, expected):
    """Only where n outgrows the panels (both methods' λ-rules grow with the margins)."""
    from theory._mixup_loss import separated_preferred
    assert separated_preferred(torch.tensor([-reach, 0.5 * reach]), n) is expected


def test_constant_margins_and_single_point():
    """One panel of width 2 around a constant margin; n = 1 is the pair (1, 1)."""
    model = theory.linear_model(2, weight=[[0.0, 0.0]], intercept=[1.3])
    X = np.random.default_rng(0).normal(size=(5, 2))
    y = np.array([0, 1, 1, 0, 1])
    expected = np.logaddexp(0, 1.3) - y.mean() * 1.3
    assert mixup_loss(model, X, y, 0.3, 4.0) == pytest.approx(expected, rel=1e-14)
    assert mixup_loss(model, X[:1], y[:1], 0.3) == pytest.approx(np.logaddexp(0, 1.3), rel=1e-14)


def test_method_validation():
    net = theory.relu_mlp(2, [4], generator=torch.Generator().manual_seed(0))
    X, y = np.zeros((3, 2)), np.array([0, 1, 1])
    with pytest.raises(ValueError, match="method"):
        mixup_loss(net, X, y, 1.0, method="separated")
    with pytest.raises(ValueError, match="method"):
        mixup_loss(theory.linear_model(2), X, y, 1.0, method="fast")
    with pytest.raises(ValueError, match="method"):
        mixup_loss(theory.linear_model(2, 3), X, y, 1.0, loss="softmax", method="separated")
    with pytest.raises(ValueError, match="rtol"):
        mixup_loss(theory.linear_model(2), X, y, 1.0, rtol=0.0)
    with pytest.raises(ValueError, match="model"):
        mixup_loss_separated(net, X, y, 1.0)


# ------------------------------------------------------------ tiny losses and wide margins (no cancellation)

def one_class_uniform_reference(z) -> float:
    """``(1/n²) Σ_ij E_{λ~U(0,1)} log1p(e^{−(λz_i + (1−λ)z_j)})`` for labels all 1 and margins z ≥ 20, in closed
    form: ``log1p(e^{−t}) = Σ_k (−1)^{k+1} e^{−kt}/k`` and ``E_λ e^{−kt} = e^{−kb}(1 − e^{−k(a−b)})/(k(a−b))``
    (−expm1, no cancellation); three terms reach 1e-26 relative at t ≥ 20."""
    a, b = np.maximum.outer(z, z), np.minimum.outer(z, z)
    total = np.zeros_like(a)
    for k in (1, 2, 3):
        d = k * (a - b)
        ratio = np.where(d > 0, -np.expm1(-d) / np.where(d > 0, d, 1.0), 1.0)
        total += (-1) ** (k + 1) * np.exp(-k * b) * ratio / k
    return float(total.mean())


@pytest.mark.parametrize("lo,hi,n", [(20.0, 100.0, 40), (40.0, 400.0, 40), (20.0, 100.0, 2000)])
def test_tiny_losses_keep_relative_accuracy(lo, hi, n):
    """One class, well classified: L_mix ≈ 7.4e-12 (margins 20–100) or 5.1e-21 (40–400). Written as
    softplus(z̃) − ỹz̃ this lost 4 digits and all of them (0.0); the separated method returned −3e-14 at n = 2000."""
    z = np.linspace(lo, hi, n)
    model = theory.linear_model(1, weight=[1.0], intercept=0.0)
    ref = one_class_uniform_reference(z)
    value, bound = mixup_loss_error(model, z[:, None], np.ones(n), 1.0)
    assert value > 0
    assert value == pytest.approx(ref, rel=TARGET_RTOL, abs=0)
    assert abs(value - ref) <= bound + 1e-14 * ref
    if n <= 40:  # the all-pairs kernel is written without cancellation too
        pairs = mixup_loss(model, z[:, None], np.ones(n), 1.0, method="pairs", nodes=1024)
        assert pairs == pytest.approx(ref, rel=1e-9, abs=0)  # 1024 nodes: kink-free, converged to ~1e-10


def test_mpmath_reference_for_the_closed_form():
    """The closed form above against mpmath's tanh-sinh quadrature at 40 digits, one pair."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    a, b = 37.0, 180.0
    exact = mpmath.quad(lambda lam: mpmath.log1p(mpmath.exp(-(lam * a + (1 - lam) * b))), [0, 1])
    pair = one_class_uniform_reference(np.array([a, b])) * 4 - (
        one_class_uniform_reference(np.array([a])) + one_class_uniform_reference(np.array([b])))
    assert pair / 2 == pytest.approx(float(exact), rel=1e-14)


def quad_pair_loss(a, b, ya, yb, al, be) -> float:
    """``E_λ[ỹ softplus(−z̃) + (1−ỹ) softplus(z̃)]`` by QUADPACK (algebraic weight), split at the crossing."""
    def f(lam):
        t, yt = lam * a + (1 - lam) * b, lam * ya + (1 - lam) * yb
        return yt * np.logaddexp(0.0, -t) + (1 - yt) * np.logaddexp(0.0, t)
    total = integrate.quad(f, 0.0, 1.0, weight="alg", wvar=(al - 1.0, be - 1.0), epsabs=0.0, epsrel=QUAD_EPSREL,
                           limit=4000, points=None)[0]
    return total / math.exp(special.betaln(al, be))


@pytest.mark.parametrize("scale", [pytest.param(1.0, marks=pytest.mark.slow), 0.4])
def test_wide_margins_tiny_alpha_estimate_is_honest(scale):
    """α = β = 1e-4, margins up to ±250 (±100) with an intercept, n = 10: the default method's estimate is never
    below its true error (all-pairs node doubling under-reported 20× at ±210) against QUADPACK pair by pair;
    ~13 s (2 s) on one idle core, the rules of the wide case dominate."""
    rng = np.random.default_rng(65)
    n, al = 10, 1e-4
    X = rng.normal(size=(n, 2))
    model = theory.linear_model(2, weight=[150.0 * scale, 80.0 * scale], intercept=[3.0])
    z = model(torch.as_tensor(X)).detach().numpy().ravel()
    y = (z + rng.normal(size=n) * 30 * scale > 0).astype(int)
    assert np.abs(z).max() > 90
    ref = sum(quad_pair_loss(z[i], z[j], y[i], y[j], al, al) for i in range(n) for j in range(n)) / n ** 2
    value, bound = mixup_loss_error(model, X, y, al)
    assert abs(value - ref) <= bound + 1e-12 * ref
    assert value == pytest.approx(ref, rel=1e-11)


@pytest.mark.parametrize("kind", ["linear", "tanh"])
def test_row_share_is_the_documented_partial_sum_for_symmetric_rules(kind):
    """``rows=(r0, r1)`` is ``(1/n²) Σ_{r0≤i<r1} Σ_j E_λ l`` also for α = β, where the all-pairs paths fold the
    λ-rule (the fold preserves only the full sum: a shard used to get another share of the same total)."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(6, 2)), np.array([1, 0, 1, 1, 0, 0])
    model = (theory.linear_model(2, weight=[1.0, -0.5], intercept=0.2) if kind == "linear"
             else theory.smooth_mlp(2, [3], generator=torch.Generator().manual_seed(1)))
    q, al = 16, 0.7
    lam, w = _beta_rule(q, al, al)
    with torch.no_grad():
        f = lambda Z: model(torch.as_tensor(Z)).reshape(-1).numpy()
        share = 0.0
        for i in range(0, 2):
            for j in range(6):
                Z = lam[:, None] * X[i] + (1 - lam)[:, None] * X[j]
                t, yt = f(Z), lam * y[i] + (1 - lam) * y[j]
                share += w @ (yt * np.logaddexp(0, -t) + (1 - yt) * np.logaddexp(0, t))
    got = mixup_loss(model, X, y, al, nodes=q, rows=(0, 2), method="pairs")
    assert got == pytest.approx(share / 36, rel=1e-13)
