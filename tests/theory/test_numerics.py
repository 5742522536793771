"""Robustness of the theory functions to the caller's data and models (docs/theory.md §0, §4):
nested Sequentials, the dtype of X for the (A1) check, numerically stable forms at large margins,
model state (train mode, BatchNorm, Dropout) and input shapes. References are closed forms, mpmath
or the same quantity computed on an equivalent plain model."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import theory
from theory import is_affine, is_piecewise_linear, split_affine_prefix

DT = torch.float64
INF = math.inf


# ---------------------------------------------------------------- nested Sequentials (structure queries)

def _nested_linear():
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Linear(3, 1))).double()


def test_structure_queries_look_through_nested_sequentials():
    inner = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    net = nn.Sequential(inner, nn.Sequential(nn.Linear(4, 1))).double()
    assert is_affine(_nested_linear())
    assert is_piecewise_linear(net) and not is_affine(net)
    assert not is_piecewise_linear(nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), nn.Linear(4, 1)))
    prefix, rest = split_affine_prefix(net)
    X = torch.randn(5, 3, dtype=DT)
    assert torch.allclose(rest(prefix(X)), net(X), rtol=0, atol=1e-15)


@pytest.mark.parametrize("norm", [2, INF])
def test_exact_method_accepts_a_linear_model_in_nested_sequentials(norm):
    """Closed form softplus(−s z + ε‖θ‖_q) computed here from the weights (before: a ValueError)."""
    model = _nested_linear()
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(6, 3)), np.array([0, 1, 1, 0, 1, 0])
    theta, b = model[0][0].weight.detach().numpy()[0], float(model[0][0].bias.detach()[0])
    z = X @ theta + b
    q = 1 if norm == INF else 2
    expected = np.mean(np.logaddexp(0, -(2 * y - 1) * z + 0.3 * np.linalg.norm(theta, q)))
    got = theory.adversarial_loss(model, X, y, 0.3, norm=norm, method="exact")
    assert got == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------------------------- (A1) centered, relative to the input dtype

def _float32_centered(n=200, scale=30.0, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 2)) * scale).astype(np.float32)
    return X - X.mean(0)


def test_float32_centered_data_counts_as_centered():
    X = _float32_centered()
    residual = np.abs(X.astype(np.float64).mean(0)).max()
    assert residual > 1e-9 * np.abs(X).max()  # not centered to float64 precision: the old check said False
    model = theory.linear_model(2, weight=[1.0, -0.5], bias=False)
    y = (X @ np.array([1.0, -0.5]) > 0).astype(int)
    for Xi in (X, torch.as_tensor(X)):
        assert theory.robustness_bound(model, Xi, y, 1.0).assumptions["centered"]
    shifted = X + np.float32(0.05 * scale_of(X))
    assert not theory.robustness_bound(model, shifted, y, 1.0).assumptions["centered"]


def scale_of(X):
    return float(np.abs(X).max())


# ---------------------------------------------------------------- stable forms at large margins (C2, C4)

MARGINS = (1.0, 40.0, 700.0, 800.0, 1e4)
STABLE_RTOL = 1e-12


def _two_point(margin):
    """Logistic regression θ = margin on X = [[1], [−1]], y = [1, 0]: both signed margins equal ``margin``."""
    return theory.linear_model(1, weight=[[margin]], bias=False), [[1.0], [-1.0]], [1, 0]


def _eps_star_closed_form(m, m1, m2):
    """ε* solves wmε + ½w(1−w)m²ε² = m1·wm + m2·w(1−w)m² (w = σ(−m) divides out):
    ½cε² + ε − (m1 + m2c) = 0 with c = (1−w)m; the root in cancellation-free form (mpmath)."""
    import mpmath
    mpmath.mp.dps = 50
    w = 1 / (1 + mpmath.exp(m))
    c = (1 - w) * m
    k = m1 + m2 * c
    return float(2 * k / (1 + mpmath.sqrt(1 + 2 * c * k)))


@pytest.mark.parametrize("margin", MARGINS)
def test_eps_star_is_exact_at_large_margins(margin):
    """Before: 467 at margin 700 and inf from 800 on (the terms underflowed); the root is ≈ 0.577."""
    model, X, y = _two_point(margin)
    rb = theory.robustness_bound(model, X, y, 1.0)
    assert rb.eps_star == pytest.approx(_eps_star_closed_form(margin, rb.m1, 1 / 6), rel=STABLE_RTOL)


@pytest.mark.parametrize("margin", MARGINS)
def test_expansion_terms_are_accurate_at_large_margins(margin):
    """standard = log1p(e^−m), R1 = m1·w·m, R2 = m2·w(1−w)m², w = σ(−m) (mpmath); before, standard was
    2.1e-18 instead of 4.25e-18 at margin 40 (h(f) − yf lost every digit)."""
    import mpmath
    mpmath.mp.dps = 50
    model, X, y = _two_point(margin)
    e = theory.mixup_expansion(model, X, y, 1.0)
    w = 1 / (1 + mpmath.exp(margin))
    expected = {"standard": mpmath.log1p(mpmath.exp(-margin)), "r1": e.m1 * w * margin,
                "r2": e.m2 * w * (1 - w) * margin ** 2}
    for name, ref in expected.items():
        got = getattr(e, name)
        if float(ref) < 2.3e-308:  # below the normal range: the float is ref rounded to a subnormal, or 0
            assert abs(got - float(ref)) <= 5e-324
        else:
            assert got == pytest.approx(float(ref), rel=STABLE_RTOL)
    scaled_ref = {"r1": e.m1 * margin * w, "r2": e.m2 * (1 - w) * margin ** 2 * w}  # divided by 2^k
    # past underflow the weight comes from exp(log w − k log 2): relative error ≈ |log w|·ε, inherent
    rel = max(STABLE_RTOL, 8 * margin * np.finfo(float).eps)
    assert e.scaled[0] == pytest.approx(float(mpmath.ldexp(scaled_ref["r1"], -e.scale_exponent)), rel=rel)
    assert e.scaled[1] == pytest.approx(float(mpmath.ldexp(scaled_ref["r2"], -e.scale_exponent)), rel=rel)


@pytest.mark.parametrize("margin", [-1e4, -745.0, -40.0, -1.0, 0.0, 3.0, 40.0, 745.0, 1e4])
@pytest.mark.parametrize("label", [0.0, 0.3, 1.0])
def test_logistic_value_and_residual_against_mpmath(margin, label):
    import mpmath
    mpmath.mp.dps = 60
    from theory._losses import get_loss
    loss = get_loss("logistic")
    F, Y = torch.tensor([[margin]], dtype=DT), torch.tensor([[label]], dtype=DT)
    f = mpmath.mpf(margin)
    ref_value = mpmath.log1p(mpmath.exp(f)) - label * f if margin < 700 else \
        label * mpmath.log1p(mpmath.exp(-f)) + (1 - label) * mpmath.log1p(mpmath.exp(f))
    ref_residual = 1 / (1 + mpmath.exp(-f)) - mpmath.mpf(label)
    for got, ref in ((float(loss.value(F, Y)), ref_value), (float(loss.residual(F, Y)), ref_residual)):
        assert got == pytest.approx(float(ref), rel=1e-14, abs=1e-320)


def test_softmax_value_residual_and_hessian_against_mpmath():
    import mpmath
    mpmath.mp.dps = 60
    from theory._losses import get_loss
    loss = get_loss("softmax")
    F = torch.tensor([[40.0, 0.0, -3.0], [1.0, 2.0, 3.0], [700.0, -20.0, 0.5]], dtype=DT)
    Y = torch.tensor([[1.0, 0, 0], [0.2, 0.5, 0.3], [1.0, 0, 0]], dtype=DT)
    value, G, A = loss.value(F, Y), loss.residual(F, Y), loss.stable_hessian(F)
    for i in range(3):
        f = [mpmath.mpf(float(v)) for v in F[i]]
        lse = mpmath.log(sum(mpmath.exp(v) for v in f))
        p = [mpmath.exp(v - lse) for v in f]
        assert float(value[i]) == pytest.approx(float(sum(float(Y[i, c]) * (lse - f[c]) for c in range(3))), rel=1e-14)
        for c in range(3):
            rest = sum(p[k] for k in range(3) if k != c)  # 1 − p_c without cancellation
            y_c = float(Y[i, c])
            assert float(G[i, c]) == pytest.approx(float((1 - y_c) * p[c] - y_c * rest), rel=1e-13, abs=1e-320)
            for k in range(3):
                ref = p[c] * rest if c == k else -p[c] * p[k]
                assert float(A[i, c, k]) == pytest.approx(float(ref), rel=1e-13, abs=1e-320)


# ---------------------------------------------------------------- inputs whose squares overflow

def _huge():
    model = theory.linear_model(2, weight=[[1.0, -1.0]], bias=False)
    return model, np.array([[1.0, 0.5], [-1.0, -0.5]]) * 1e155, [1, 0]


def test_inputs_whose_squares_overflow_raise_a_value_error_naming_x():
    """Before: NaN from the expansion and robustness_bound, NaN from glm_regularizer."""
    model, X, y = _huge()
    with pytest.raises(ValueError, match="X .*too large"):
        theory.mixup_expansion(model, X, y, 1.0)
    with pytest.raises(ValueError, match="X .*too large"):
        theory.robustness_bound(model, X, y, 1.0)
    with pytest.raises(ValueError, match="X .*too large"):
        theory.glm_regularizer(model, X, 2.0, loss="squared")


@pytest.mark.parametrize("form", ["paper", "shrinkage"])
def test_glm_regularizer_is_exactly_zero_where_the_curvature_underflows(form):
    """Margins ±5e154: σ(f)σ(−f) = e^{−5e154} times θᵀΣ̂θ ≈ 2.5e309 is 0 in float64 (both forms)."""
    model, X, _ = _huge()
    assert theory.glm_regularizer(model, X, 2.0, form=form) == 0.0
    small = theory.glm_regularizer(model, X / 1e155, 2.0, form=form)  # same code path at scale 1: finite > 0
    assert math.isfinite(small) and small > 0


@pytest.mark.parametrize("norm", [2, INF])
def test_attacks_and_certificates_stay_finite_on_huge_inputs(norm):
    net = theory.relu_mlp(2, [5], generator=torch.Generator().manual_seed(0))
    X = np.array([[1.0, 0.5], [-1.0, -0.5]]) * 1e155
    values = [theory.adversarial_loss(net, X, [1, 0], 1e154, norm=norm, method=m)
              for m in ("fgsm", "pgd", "second_order", "certified")]
    assert all(math.isfinite(v) for v in values)
    assert values[0] <= values[1] <= values[3] * (1 + 1e-12)


# ---------------------------------------------------------------- model state: eval mode, caller's model untouched

def _bn_model():
    """Linear → BatchNorm1d → ReLU → Linear, with non-trivial running statistics, left in train mode."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, dtype=DT) * 2 + 1)
        model[1].weight.copy_(torch.tensor([1.5, -0.7, 0.9, 2.0]))
        model[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
    model[3].weight.requires_grad_(False)  # a caller's flag that must survive
    return model.train()


def _bn_folded(model):
    """The eval-mode BN model as a plain Linear → ReLU → Linear (BN folded into the first layer)."""
    lin, bn, _, out = model
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        plain[0].weight.copy_(scale[:, None] * lin.weight)
        plain[0].bias.copy_(scale * (lin.bias - bn.running_mean) + bn.bias)
        plain[2].load_state_dict(out.state_dict())
    return plain


def _dropout_model():
    torch.manual_seed(4)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 1)).double().train()


def _dropout_plain(model):
    return nn.Sequential(model[0], model[1], model[3])


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()])


def _assert_unchanged(model, snap):
    state, modes, grads = snap
    now = model.state_dict()
    assert all(torch.equal(now[k], v) for k, v in state.items())
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == grads


def _state_data():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(9, 3))
    X -= X.mean(0)
    return X, (rng.random(9) < 0.5).astype(int)


STATE_CALLS = {
    "mixup_loss": lambda m, X, y: theory.mixup_loss(m, X, y, 0.5, nodes=64),  # one rule for both shapes
    "mixup_loss_small_chunks": lambda m, X, y: theory.mixup_loss(m, X, y, 0.5, chunk_elements=1 << 9),
    "mixup_loss_no_shortcut": lambda m, X, y: theory.mixup_loss(m, X, y, 0.5, shortcut=False),
    "unmixed": lambda m, X, y: theory.mixup_loss_unmixed(m, X, y, 0.5, nodes=64),  # one rule for both shapes
    "expansion": lambda m, X, y: theory.mixup_expansion(m, X, y, 0.5).approx,
    "second_order": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.2, method="second_order"),
    "pgd": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.2, method="pgd", steps=5),
    "fgsm": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.2, method="fgsm"),
    "robustness_bound": lambda m, X, y: theory.robustness_bound(m, X, y, 0.5).adv_at_eps_i,
}


@pytest.mark.parametrize("kind", ["batchnorm", "dropout"])
@pytest.mark.parametrize("call", sorted(STATE_CALLS))
def test_train_mode_models_give_the_eval_value_and_are_left_untouched(kind, call):
    """Before: BatchNorm running statistics changed and values depended on the chunk size (0.684 /
    0.695 / 0.692 eval), Dropout gave a new value per call, mixup_expansion crashed in torch.func."""
    model = _bn_model() if kind == "batchnorm" else _dropout_model()
    plain = _bn_folded(model) if kind == "batchnorm" else _dropout_plain(model)
    X, y = _state_data()
    snap = _snapshot(model)
    fn = STATE_CALLS[call]
    first, second = fn(model, X, y), fn(model, X, y)
    _assert_unchanged(model, snap)
    assert first == second
    assert first == pytest.approx(fn(plain, X, y), rel=1e-12, abs=1e-14)


def test_certified_accepts_train_mode_dropout_as_the_identity():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 1)).double().train()
    X, y = _state_data()
    snap = _snapshot(model)
    got = theory.adversarial_loss(model, X, y, 0.2, method="certified")
    _assert_unchanged(model, snap)
    assert got == theory.adversarial_loss(nn.Sequential(model[0], model[1], model[3]), X, y, 0.2, method="certified")


def test_evaluation_restores_modes_when_the_body_raises():
    from theory._models import evaluation
    model = _dropout_model()
    model[1].eval()  # mixed modes must come back as they were
    modes = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError):
        with evaluation(model):
            assert not any(m.training for m in model.modules())
            raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == modes


# ---------------------------------------------------------------- input shapes (n, …)

def _image_problem():
    torch.manual_seed(7)
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 1)).double()
    X = torch.randn(6, 1, 8, 8, dtype=DT)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    return cnn, X, y


def _sequence_problem():
    torch.manual_seed(8)
    seq = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 5, 1)).double()
    return seq, torch.randn(6, 2, 7, dtype=DT), torch.tensor([1, 0, 0, 1, 1, 0])


def _on_flat_rows(model, shape):
    """The same model as a plain callable on flattened rows (no shortcut, no structure): the reference."""
    return lambda Z: model(Z.reshape(Z.shape[0], *shape))


SHAPE_CALLS = {
    "mixup_loss": lambda m, X, y: theory.mixup_loss(m, X, y, 0.5, nodes=64),  # one rule for both shapes
    "unmixed": lambda m, X, y: theory.mixup_loss_unmixed(m, X, y, 0.5, nodes=64),  # one rule for both shapes
    "sampled": lambda m, X, y: theory.mixup_loss_sampled(m, X, y, 0.5, draws=5,
                                                         generator=np.random.default_rng(0)).mean,
    "error": lambda m, X, y: theory.mixup_loss_error(m, X, y, 0.5, nodes=8)[0],
    "expansion": lambda m, X, y: theory.mixup_expansion(m, X, y, 0.5).approx,
    "second_order_l2": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.1, method="second_order"),
    "fgsm_linf": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.1, norm=INF, method="fgsm"),
    "pgd_l2": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.1, method="pgd", steps=5),
    "pgd_linf": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.1, norm=INF, method="pgd", steps=5),
    "robustness_bound": lambda m, X, y: theory.robustness_bound(m, X, y, 0.5).adv_at_eps_i,
}


@pytest.mark.parametrize("problem", ["image", "sequence"])
@pytest.mark.parametrize("call", sorted(SHAPE_CALLS))
def test_image_and_sequence_inputs_match_the_flattened_problem(problem, call):
    """Before: "X must have shape (n, d)". Norms are over the flattened input, so every value equals
    the one of the same model called on flattened rows."""
    model, X, y = _image_problem() if problem == "image" else _sequence_problem()
    fn = SHAPE_CALLS[call]
    got = fn(model, X, y)
    assert got == pytest.approx(fn(_on_flat_rows(model, X.shape[1:]), X.reshape(X.shape[0], -1), y),
                                rel=1e-12, abs=1e-14)


def test_kink_aware_default_on_images_agrees_with_a_fine_rule():
    model, X, y = _image_problem()
    assert theory.mixup_loss(model, X, y, 0.5) == pytest.approx(
        theory.mixup_loss(model, X, y, 0.5, nodes=1024), rel=1e-9)


def test_convolutional_first_layer_shortcut_is_used_on_images():
    model, X, y = _image_problem()
    assert split_affine_prefix(model) is not None
    assert theory.mixup_loss(model, X, y, 0.5) == pytest.approx(
        theory.mixup_loss(model, X, y, 0.5, shortcut=False), rel=1e-13)


def test_linear_image_models_use_the_closed_forms():
    """Flatten → Linear on (n, 1, 8, 8): exact and certified are the closed form on flattened rows."""
    _, X, y = _image_problem()
    torch.manual_seed(9)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(64, 1)).double()
    theta, b = lin[1].weight.detach().numpy()[0], float(lin[1].bias.detach()[0])
    z = X.reshape(6, -1).numpy() @ theta + b
    s = 2 * y.numpy() - 1
    expected = np.mean(np.logaddexp(0, -s * z + 0.1 * np.linalg.norm(theta)))
    for method in ("exact", "certified"):
        assert theory.adversarial_loss(lin, X, y, 0.1, method=method) == pytest.approx(expected, rel=1e-13)


def test_adversarial_examples_keep_the_input_shape_and_box():
    model, X, y = _image_problem()
    for method in ("fgsm", "pgd"):
        Z = theory.adversarial_examples(model, X, y, 0.2, norm=INF, method=method, box=(-3.0, 3.0))
        assert Z.shape == X.shape
        assert float((Z - X).abs().max()) <= 0.2 + 1e-15 and float(Z.abs().max()) <= 3.0


@pytest.mark.parametrize("model,X,expect", [
    (nn.Sequential(nn.Linear(5, 1)), np.zeros((4, 3)), r"X of shape \(4, 3\).*nn.Linear\(5.*\(n, 5\)"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 1)), np.zeros((4, 64)),
     r"X of shape \(4, 64\).*Conv2d expects X of shape \(n, 1, H, W\)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(10, 1)), np.zeros((4, 2, 3)), r"X of shape \(4, 2, 3\).*10 features"),
])
def test_model_input_mismatch_names_x_and_the_expected_shape(model, X, expect):
    """Before: a raw RuntimeError "mat1 and mat2 shapes cannot be multiplied"."""
    with pytest.raises(ValueError, match=expect):
        theory.mixup_loss(model.double(), X, [0, 1, 0, 1], 0.5)
    with pytest.raises(ValueError, match=expect):
        theory.adversarial_loss(model.double(), X, [0, 1, 0, 1], 0.1, method="pgd")
