"""The robustness chain L̃_mix ≥ mean L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix) (C4, C5, C13; docs/theory.md §4) under
(A1)–(A3), its fields against an independent numpy computation, ε* semantics and the C7 comparison.

Instances come from ``theory.strategies.instances`` (every assumption holds: data centered,
bias-free models, labels from the model's own sign (θ ∈ Θ), default c_x (A3 holds)). Example counts are named constants;
together they exceed 10⁴ (each example is a tiny problem)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import beta as beta_fn, expit, log_expit

import theory
from theory import linear_model, relu_mlp, smooth_mlp
from theory.strategies import instance_from_dict, instances

C4_EXAMPLES = 4000
C5_EXAMPLES = 2500
C13_LINEAR_EXAMPLES = 2500
C13_RELU_EXAMPLES = 1000  # C4 + C5 + C13 = 10⁴ examples
C7_EXAMPLES = 300
SOFTMAX_EXAMPLES = 150
ATOL, RTOL = 1e-12, 1e-9
FIELD_RTOL = 1e-9
INF = math.inf

# Instances come from theory.strategies (one source of truth with `mixup-theory property`): data on
# a grid of step 1/4 in [-3, 3], centered (exact ties/zeros — boundary cases — are common); weights as
# floats in [-3, 3], where entries below 1e-12 snap to 0 (a boundary case kept): the theorem is about
# real numbers, and products of subnormal floats carry no significant digits.
GRID = st.integers(-12, 12)
linear_instances = instances("logistic", 2, weight_step=None)
relu_instances = instances("relu", 2, weight_step=None, d=(1, 3))


def geq(lhs, rhs):
    return lhs >= rhs - ATOL - RTOL * abs(rhs)


def labels_from(model, X):
    """y_i = 1[f(x_i) ≥ 0]: every point on its side (θ ∈ Θ), computed by the model itself."""
    with torch.no_grad():
        return (model(torch.as_tensor(X)).reshape(-1) >= 0).double().numpy()


def linear(X, theta, alpha, beta=None, norm=2):
    """A hand-written boundary instance (for ``@example``)."""
    X = np.asarray(X, dtype=float)
    model = linear_model(X.shape[1], bias=False, weight=theta)
    return instance_from_dict({"model": "logistic", "layers": [{"weight": [list(map(float, theta))], "bias": None}],
                               "X": X.tolist(), "y": labels_from(model, X).astype(int).tolist(), "alpha": alpha,
                               "beta": beta, "norm": "inf" if norm == INF else 2})


def theta_of(inst):
    return np.asarray(inst.layers()[0]["weight"][0])


coords = st.floats(-3, 3, allow_nan=False, allow_infinity=False)
alphas = st.floats(0.05, 8.0, allow_nan=False, allow_infinity=False)


def snap(a):
    return np.where(np.abs(a) < 1e-12, 0.0, a)


@st.composite
def centered_data(draw, n_max=6, d_max=4):
    """Centered grid data for the softmax chain (theory.strategies covers the binary chain)."""
    n = draw(st.integers(2, n_max))
    d = draw(st.integers(1, d_max))
    X = draw(arrays(np.int64, (n, d), elements=GRID)) / 4.0
    X = X - X.mean(0)
    return X - X.mean(0)  # twice: the first pass leaves a rounding residual of a few ulps


def safe_norm(a, axis=None):
    """‖a‖₂ without underflow for tiny entries (scaled by the largest magnitude, like BLAS nrm2)."""
    big = np.abs(a).max(axis=axis, keepdims=True)
    safe = np.where(big > 0, big, 1.0)
    out = big * np.sqrt(((a / safe) ** 2).sum(axis=axis, keepdims=True))
    return out.squeeze() if axis is None else out.squeeze(axis)


def moment(k, a, b):
    """m_k = E_{D̃}[(1−λ)^k] from the Beta-function formula (docs/theory.md §1)."""
    return (a / (a + b)) * beta_fn(a + 1, b + k) / beta_fn(a + 1, b) + (b / (a + b)) * beta_fn(b + 1, a + k) / beta_fn(b + 1, a)


def numpy_chain(X, theta, alpha, norm, beta=None):
    """The C4/C13 chain for f = θᵀx written out in numpy from docs/theory.md §4 (independent of theory/)."""
    n, d = X.shape
    b = alpha if beta is None else beta
    m1, m2 = moment(1, alpha, b), moment(2, alpha, b)
    z = X @ theta
    y = (z >= 0).astype(float)
    sig = expit(z)
    clean = -log_expit((2 * y - 1) * z)
    Sigma = X.T @ X / n
    r1 = m1 * np.mean((sig - y) * (-z))
    r2 = 0.5 * m2 * np.mean(sig * (1 - sig) * (theta @ Sigma @ theta + z ** 2))
    approx = clean.mean() + r1 + r2
    q = 1 if norm == INF else 2
    tq = np.abs(theta).sum() if q == 1 else safe_norm(theta)
    if norm == INF:
        eps_i = m1 * np.abs(z) / tq if tq > 0 else np.zeros(n)
    else:
        xn = safe_norm(X, axis=1)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            R = np.where((xn > 0) & (tq > 0), np.abs(z) / tq / xn, 0.0)
        eps_i = m1 * R * xn.min()

    def adv(eps):
        return clean + eps * np.abs(sig - y) * tq + 0.5 * eps ** 2 * sig * (1 - sig) * tq ** 2

    return approx, adv(eps_i).mean(), adv(eps_i.min()).mean(), eps_i


def check_linear(inst):
    X, theta, alpha, beta, norm = inst.X, theta_of(inst), inst.alpha, inst.beta, inst.norm
    res = theory.robustness_bound(inst.model, X, inst.y, alpha, beta, norm=norm)
    assert all(res.assumptions.values()), res.assumptions
    approx, adv_i, adv_mix, eps_i = numpy_chain(X, theta, alpha, norm, beta)
    scale = 1 + abs(approx)
    assert res.mixup_approx == pytest.approx(approx, rel=FIELD_RTOL, abs=1e-12 * scale)
    assert res.adv_at_eps_i == pytest.approx(adv_i, rel=FIELD_RTOL, abs=1e-12 * scale)
    assert res.adv_at_eps_mix == pytest.approx(adv_mix, rel=FIELD_RTOL, abs=1e-12 * scale)
    np.testing.assert_allclose(res.eps_i, eps_i, rtol=FIELD_RTOL, atol=1e-12)
    assert geq(approx, adv_i) and geq(adv_i, adv_mix)  # the theorem, on independent numbers
    assert res.holds


# ---------------------------------------------------------------- C4: logistic regression, ℓ2

@settings(max_examples=C4_EXAMPLES)
@given(linear_instances)
@example(linear([[1.0, 0.0], [-1.0, 0.0]], [0.0, 1.0], 1.0))  # all on the boundary: ε_i = 0
@example(linear(np.zeros((2, 3)), [1.0, -2.0, 0.5], 0.05))  # all points at the mean: c_x = 0
@example(linear([[2.0], [-2.0]], [1.5], 8.0))  # d = 1, R_i = 1, m_2 ≈ m_1² (near equality)
@example(linear([[1.0, 1.0], [-1.0, -1.0]], [0.0, 0.0], 1.0))  # θ = 0: no gradient, ε* = inf
@example(linear([[1.0], [-1.0]], [1.0], 0.05, beta=8.0))  # very asymmetric Beta(α, β)
def test_c4_chain_logistic_regression_l2(instance):
    assert instance.norm == 2
    check_linear(instance)


# ---------------------------------------------------------------- C13: ℓ∞

@settings(max_examples=C13_LINEAR_EXAMPLES)
@given(instances("logistic", INF, weight_step=None))
@example(linear([[1.0, 0.0], [-1.0, 0.0]], [0.0, 1.0], 1.0, norm=INF))
@example(linear([[2.0, -1.0], [-2.0, 1.0]], [1.0, 3.0], 8.0, norm=INF))
def test_c13_chain_logistic_regression_linf(instance):
    assert instance.norm == INF
    check_linear(instance)


def check_relu(inst):
    res = inst.robustness_bound()
    assert res.assumptions["centered"] and res.assumptions["in_theta"] and res.assumptions["homogeneous"]
    assert geq(res.mixup_approx, res.adv_at_eps_i) and geq(res.adv_at_eps_i, res.adv_at_eps_mix)
    assert res.holds
    assert np.all(res.eps_i <= res.eps_sharp * (1 + 1e-12) + 1e-15)
    assert geq(res.mixup_approx, res.adv_at_eps_sharp)  # the sharper per-point radius the proof allows


# ---------------------------------------------------------------- C5: bias-free ReLU nets

# found by test_c5_chain_bias_free_relu_nets_l2: logits ≈ ±100, every σ_i(1 − σ_i) underflows to ~0
SATURATED_RELU = {
    "model": "relu", "alpha": 0.05, "norm": 2, "y": [1, 1, 1, 1, 1],
    "X": [[-2.35, 2.7], [2.65, -0.30000000000000004], [-0.09999999999999995, -0.8], [-0.09999999999999995, -0.8],
          [-0.09999999999999995, -0.8]],
    "layers": [{"weight": [[0.0, 1.903435169215749], [0.23311038096416237, 2.7900210389130624],
                           [-1.6233193738870972, 1.903435169215749], [1.903435169215749, -1.400136628401531]]},
               {"weight": [[0.0, 0.7682847136415294, 2.6276193580801026, 0.0],
                           [2.6276193580801026, 0.0, 2.8677904429904295, -1.1079208014089121]]},
               {"weight": [[0.0, 0.0], [0.0, 2.6276193580801026], [2.6276193580801026, 0.0],
                           [2.6276193580801026, -1.0582836979292436], [2.6276193580801026, 0.0]]},
               {"weight": [[0.0, 2.2204659779694573, 2.2204659779694573, 2.2204659779694573, 2.2204659779694573]]}]}


@settings(max_examples=C5_EXAMPLES)
@given(relu_instances)
@example(instance_from_dict(SATURATED_RELU))  # saturated sigmoids: ε* = 0
@example(instance_from_dict({"model": "relu", "X": [[1.0, -1.0], [-1.0, 1.0]], "y": [1, 1], "alpha": 1.0,  # width 1
                             "layers": [{"weight": [[0.5, -0.25]], "bias": None}, {"weight": [[0.75]], "bias": None}]}))
def test_c5_chain_bias_free_relu_nets_l2(instance):
    assert instance.norm == 2
    check_relu(instance)


@settings(max_examples=C13_RELU_EXAMPLES)
@given(instances("relu", INF, weight_step=None, d=(1, 3)))
def test_c13_chain_bias_free_relu_nets_linf(instance):
    assert instance.norm == INF
    check_relu(instance)


# ---------------------------------------------------------------- fields, ε*, flags

def test_eps_star_is_the_root_of_the_quadratic():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    X -= X.mean(0)
    model = linear_model(3, bias=False, weight=[0.8, -1.1, 0.3])
    y = labels_from(model, X)
    res = theory.robustness_bound(model, X, y, 1.0)
    assert res.eps_star > res.eps_mix > 0
    at_star = theory.adversarial_loss(model, X, y, res.eps_star, method="second_order")
    assert at_star == pytest.approx(res.mixup_approx, rel=1e-12)
    assert theory.adversarial_loss(model, X, y, res.eps_star * 1.001, method="second_order") > res.mixup_approx
    assert res.adv_at_eps_mix == pytest.approx(
        theory.adversarial_loss(model, X, y, res.eps_mix, method="second_order"), rel=1e-12)


def test_eps_star_zero_gap_and_slope_with_curvature():
    """Saturated sigmoids: R1 + R2 = 0 and slope = 0 but curvature > 0 — ε* = 0 (was a ZeroDivisionError)."""
    from theory._robustness import largest_eps

    assert largest_eps(0.0, 0.0, 1e-300) == 0.0
    assert largest_eps(0.0, 1e-300, 0.0) == 0.0
    assert largest_eps(1.0, 0.0, 2.0) == pytest.approx(1.0)  # 1 = 2ε²/2
    inst = instance_from_dict(SATURATED_RELU)
    res = inst.robustness_bound()
    assert res.holds and res.eps_star >= 0  # no ZeroDivisionError however R1 + R2 underflows


def test_eps_star_nan_and_inf():
    X = np.array([[1.0, 1.0], [-1.0, -1.0]])
    flat = linear_model(2, bias=False, weight=[0.0, 0.0])  # no gradient: every ε qualifies
    assert theory.robustness_bound(flat, X, np.ones(2), 1.0).eps_star == math.inf
    model = linear_model(2, bias=False, weight=[2.0, 1.0])
    wrong = 1 - labels_from(model, X)  # θ ∉ Θ: R1 < 0 and here L̃_mix < L_std, so no ε qualifies
    res = theory.robustness_bound(model, X, wrong, 0.5)
    assert res.mixup_approx < theory.adversarial_loss(model, X, wrong, 0.0)
    assert math.isnan(res.eps_star)
    assert not res.assumptions["in_theta"]


def test_explicit_c_x_and_assumption_flags():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 2))
    X -= X.mean(0)
    model = linear_model(2, bias=False, weight=[1.0, 0.5])
    y = labels_from(model, X)
    c = np.linalg.norm(X, axis=1).min() / np.sqrt(2)
    res = theory.robustness_bound(model, X, y, 1.0, c_x=c / 2)
    np.testing.assert_allclose(res.eps_i, theory.robustness_bound(model, X, y, 1.0).eps_i / 2, rtol=1e-12)
    assert res.assumptions["norm_bound"]
    assert not theory.robustness_bound(model, X, y, 1.0, c_x=2 * c).assumptions["norm_bound"]
    shifted = theory.robustness_bound(model, X + 1.0, y, 1.0).assumptions
    assert not shifted["centered"]
    with_bias = linear_model(2, weight=[1.0, 0.5], intercept=0.3)
    assert not theory.robustness_bound(with_bias, X, labels_from(with_bias, X), 1.0).assumptions["homogeneous"]
    tanh = smooth_mlp(2, [4], bias=False)
    assert not theory.robustness_bound(tanh, X, labels_from(tanh, X), 1.0).assumptions["homogeneous"]
    relu = relu_mlp(2, [4, 3], bias=False)
    assert theory.robustness_bound(relu, X, labels_from(relu, X), 1.0).assumptions["homogeneous"]
    biased = relu_mlp(2, [4, 3], bias=True)
    assert not theory.robustness_bound(biased, X, labels_from(biased, X), 1.0).assumptions["homogeneous"]


def test_bad_input_raises_value_error():
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    model = linear_model(2, bias=False, weight=[1.0, 1.0])
    y = np.array([1.0, 0.0])
    for kwargs, match in [(dict(alpha=0.0), "alpha"), (dict(alpha=1.0, norm=1), "norm"),
                          (dict(alpha=1.0, loss="squared"), "loss"), (dict(alpha=1.0, c_x=-1.0), "c_x"),
                          (dict(alpha=1.0, norm=INF, c_x=1.0), "c_x")]:
        with pytest.raises(ValueError, match=match):
            theory.robustness_bound(model, X, y, **kwargs)


# ---------------------------------------------------------------- C7: exact comparison

def test_exact_comparison_linear_uses_closed_forms():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10, 3)) * 2
    X -= X.mean(0)
    theta = np.array([1.0, -0.5, 2.0])
    model = linear_model(3, bias=False, weight=theta)
    y = labels_from(model, X)
    cmp = theory.exact_comparison(model, X, y, 1.0)
    rb = theory.robustness_bound(model, X, y, 1.0)
    assert cmp.eps == rb.eps_mix and cmp.exact_adversary
    z = X @ theta
    expected = np.mean(-log_expit((2 * y - 1) * z - cmp.eps * np.linalg.norm(theta)))
    assert cmp.adv_lower == cmp.adv_upper == pytest.approx(expected, rel=1e-12)
    assert cmp.mixup_exact == theory.mixup_loss(model, X, y, 1.0)
    assert cmp.status == ("holds" if cmp.mixup_exact >= cmp.adv_upper else "fails")


def test_exact_comparison_relu_brackets():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(8, 2))
    X -= X.mean(0)
    model = relu_mlp(2, [6, 4], bias=False, generator=torch.Generator().manual_seed(4))
    y = labels_from(model, X)
    cmp = theory.exact_comparison(model, X, y, 1.0, norm=INF, pgd=dict(restarts=3))
    assert not cmp.exact_adversary
    assert cmp.adv_lower <= cmp.adv_upper * (1 + 1e-12)
    assert cmp.status in ("holds", "fails", "undecided")
    assert (cmp.status == "holds") == (cmp.mixup_exact >= cmp.adv_upper - 1e-12 - 1e-9 * cmp.adv_upper)


# ---------------------------------------------------------------- C7: the exact chain for logistic regression

@settings(max_examples=C7_EXAMPLES)
@given(st.sampled_from([2, INF]).flatmap(lambda p: instances("logistic", p, weight_step=None, asymmetric=False)))
@example(linear([[2.0], [-2.0]], [1.5], 8.0))
@example(linear(np.zeros((3, 2)), [1.0, -1.0], 0.05, norm=INF))
def test_c7_exact_chain_logistic_regression(instance):
    """Exact L_mix ≥ (1/n) Σ L_adv,i(ε^sharp_i) ≥ L_adv(ε_mix) (Jensen twice; exact_comparison docstring)."""
    X, theta, alpha, model, y = instance.X, theta_of(instance), instance.alpha, instance.model, instance.y
    cmp = instance.exact_comparison()
    m1 = alpha / (2 * alpha + 1)
    z = X @ theta
    sharp = np.mean(-log_expit((1 - m1) * np.abs(z)))  # softplus(−|z_i| + m_1|z_i|)
    assert cmp.adv_sharp == pytest.approx(sharp, rel=1e-9, abs=1e-12)
    mix = theory.mixup_loss(model, X, y, alpha)
    assert geq(mix, sharp) and geq(sharp, cmp.adv_upper)
    assert cmp.status == "holds"



C7_INTERCEPT_EXAMPLES = 150


@settings(max_examples=C7_INTERCEPT_EXAMPLES)
@given(linear_instances, st.floats(-3, 3, allow_nan=False, allow_infinity=False))
@example(linear([[-0.125], [0.125]], [0.5], 1.0), 0.5)  # the C6 intercept instance, relabelled
def test_c7_exact_chain_survives_an_intercept(instance, b):
    """With an intercept b the Jensen proof still gives L_mix ≥ (1/n) Σ softplus(−s_i z_i + m_1|θᵀx_i|), the exact
    L_adv,i at radius m_1|θᵀx_i|/‖θ‖_q in ℓ2 and ℓ∞ alike, when each point is on its side of the hyperplane
    θᵀx = 0 through the data mean (docs/theory.md §4.7)."""
    X, theta, alpha, beta = instance.X, theta_of(instance), instance.alpha, instance.beta
    model = linear_model(X.shape[1], weight=theta, intercept=[b])
    y = (X @ theta >= 0).astype(float)  # s_i θᵀx_i ≥ 0, whatever b
    a, bb = alpha, (alpha if beta is None else beta)
    m1 = moment(1, a, bb)
    z = X @ theta + b
    bound = np.mean(-log_expit((2 * y - 1) * z - m1 * np.abs(X @ theta)))  # L_adv,i at m_1|θᵀx_i|/‖θ‖_q
    assert geq(theory.mixup_loss(model, X, y, alpha, beta), bound)


# Minimal bias-free ReLU instances (found with hypothesis ``find``) where every assumption holds, the
# approximate chain holds, and the exact inequality fails: the loss is not convex in x. The first is
# f(x) = |x|/4, whose loss peaks between the two points, so mixing them raises it less than the adversary.
RELU_EXACT_FAILURES = [
    ([[-0.125], [0.125]], [[[-0.5], [0.5]], [[0.5, 0.5]]]),  # ε_mix = 1/24
    ([[-1.5], [0.5], [0.5], [0.5]], [[[-1.0]], [[2.0]]]),  # ε_mix = 0: L_mix < L_std
]


@pytest.mark.parametrize("X,weights", RELU_EXACT_FAILURES)
def test_c7_exact_inequality_can_fail_for_relu_nets(X, weights):
    from theory.strategies import model_from_layers

    X = np.asarray(X)
    model = model_from_layers([{"weight": W, "bias": None} for W in weights])
    y = labels_from(model, X)
    cmp = theory.exact_comparison(model, X, y, 1.0)
    assert all(cmp.assumptions.values())
    assert cmp.mixup_approx >= cmp.adv_approx  # the paper's (approximate) chain holds
    assert cmp.status == "fails" and cmp.mixup_exact < cmp.adv_lower - 1e-4
    # independent check of the adversary: a point of the ball with a higher loss than exact L_mix
    P = theory.adversarial_losses(model, X, y, cmp.eps, method="fgsm")
    assert P.mean() > cmp.mixup_exact


# ---------------------------------------------------------------- softmax chain (docs/theory.md §4.6)

@st.composite
def softmax_instances(draw):
    X = draw(centered_data(n_max=5, d_max=3))
    K = draw(st.integers(2, 4))
    if draw(st.booleans()):
        W = snap(draw(arrays(np.float64, (K, X.shape[1]), elements=coords)))
        model = linear_model(X.shape[1], out=K, bias=False, weight=W)
    else:
        hidden = draw(st.lists(st.integers(1, 5), min_size=1, max_size=2))
        model = relu_mlp(X.shape[1], hidden, out=K, bias=False,
                         generator=torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16))))
    return X, model, draw(alphas)


@settings(max_examples=SOFTMAX_EXAMPLES)
@given(softmax_instances())
@example((np.array([[-0.125, 0.375], [0.125, -0.375]]),  # κ < 1: the chain without κ fails here
          linear_model(2, out=3, bias=False, weight=[[0.0, -1.0], [-1.0, -1.5], [0.5, -1.0]]), 1.0))
def test_softmax_chain_with_curvature_factor(instance):
    X, model, alpha = instance
    with torch.no_grad():
        y = model(torch.as_tensor(X)).argmax(1).numpy()  # correctly classified: (y − p)ᵀf ≥ 0
    res = theory.robustness_bound_softmax(model, X, y, alpha)
    assert all(res.assumptions.values()), res.assumptions
    assert geq(res.mixup_approx, res.adv_at_eps_i) and geq(res.adv_at_eps_i, res.adv_at_eps_mix)
    assert geq(res.mixup_approx, res.adv_at_eps_sharp)
    assert res.holds and np.all((0 <= res.kappa) & (res.kappa <= 1))
    per_sample = [theory.adversarial_loss(model, X[i:i + 1], y[i:i + 1], res.eps_i[i], loss="softmax",
                                          method="second_order") for i in range(len(y))]
    assert res.adv_at_eps_i == pytest.approx(np.mean(per_sample), rel=1e-9, abs=1e-12)
    if np.isfinite(res.eps_star) and res.eps_star > 0:
        at_star = theory.adversarial_loss(model, X, y, res.eps_star, loss="softmax", method="second_order")
        assert at_star == pytest.approx(res.mixup_approx, rel=1e-9)


def test_softmax_chain_with_two_classes_is_the_binary_chain():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(7, 3))
    X -= X.mean(0)
    W = rng.normal(size=(2, 3))
    soft = linear_model(3, out=2, bias=False, weight=W)
    binary = linear_model(3, bias=False, weight=W[1] - W[0])  # logit of class 1 minus class 0
    y = (X @ (W[1] - W[0]) >= 0).astype(int)
    a = theory.robustness_bound_softmax(soft, X, y, 0.7)
    b = theory.robustness_bound(binary, X, y, 0.7)
    np.testing.assert_allclose(a.kappa, 1.0)
    np.testing.assert_allclose(a.eps_i, b.eps_i, rtol=1e-9)
    for field in ("mixup_approx", "adv_at_eps_i", "adv_at_eps_mix", "eps_star"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-9), field


def test_softmax_bound_rejects_linf():
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with pytest.raises(ValueError, match="norm"):
        theory.robustness_bound_softmax(linear_model(2, out=3, bias=False), X, [0, 1], 1.0, norm=INF)


@pytest.mark.parametrize("a", [0.125, 0.5, 0.625, 1.0])
def test_softmax_in_theta_holds_at_exact_ties(a):
    """Equal logits (every class tied) are correctly classified: (y − p)ᵀf = 0 must not round below 0."""
    X = np.array([[-0.125], [0.125]])
    model = linear_model(1, out=3, bias=False, weight=[[a], [a], [a]])
    res = theory.robustness_bound_softmax(model, X, np.zeros(2, dtype=int), 1.0)
    assert res.assumptions["in_theta"]
