"""Bad input raises ValueError naming the argument; huge margins stay finite (docs/theory.md §0 conventions)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import theory
from theory import squared_label_constant

DT = torch.float64
HUGE = 800.0  # margins past float64 exp overflow

X_OK = np.random.default_rng(0).normal(size=(5, 3))
Y_OK = np.array([0, 1, 1, 0, 1])
MODEL = theory.linear_model(3, weight=[0.5, -0.3, 0.2], intercept=0.1)


def _call(fn, **overrides):
    """Call ``fn`` on a valid problem with some arguments replaced."""
    args = dict(model=MODEL, X=X_OK, y=Y_OK, alpha=1.0)
    args.update(overrides)
    model, X, y, alpha = args.pop("model"), args.pop("X"), args.pop("y"), args.pop("alpha")
    return fn(model, X, y, alpha, **args)


def _sampled(model, X, y, alpha, **kw):
    kw.setdefault("draws", 3)
    kw.setdefault("generator", np.random.default_rng(0))
    return theory.mixup_loss_sampled(model, X, y, alpha, **kw)


FUNCTIONS = {
    "mixup_loss": theory.mixup_loss,
    "mixup_loss_unmixed": theory.mixup_loss_unmixed,
    "mixup_loss_error": lambda *a, **k: theory.mixup_loss_error(*a, **k),
    "mixup_loss_sampled": _sampled,
    "mixup_expansion": theory.mixup_expansion,
}

BAD_INPUTS = [
    ("alpha", dict(alpha=0.0)), ("alpha", dict(alpha=-1.0)), ("alpha", dict(alpha=math.nan)),
    ("alpha", dict(alpha=math.inf)), ("alpha", dict(alpha="one")),
    ("beta", dict(beta=0.0)), ("beta", dict(beta=-2.0)), ("beta", dict(beta=math.nan)), ("beta", dict(beta=math.inf)),
    ("X", dict(X=np.where(np.eye(5, 3) > 0, np.nan, X_OK))), ("X", dict(X=np.where(np.eye(5, 3) > 0, np.inf, X_OK))),
    ("X", dict(X=np.zeros((0, 3)), y=np.zeros(0))), ("X", dict(X=X_OK[:, 0])), ("X", dict(X=[["a", "b", "c"]] * 5)),
    ("y", dict(y=Y_OK[:4])), ("y", dict(y=np.array([0, 1, 2, 0, 1]))), ("y", dict(y=np.array([0, 1, 0.5, 0, 1]))),
    ("y", dict(y=np.array([0, 1, np.nan, 0, 1]))), ("y", dict(y=np.zeros((5, 2)))),
    ("loss", dict(loss="hinge")), ("loss", dict(loss=None)),
    ("model", dict(model=lambda Z: Z[:, :2])), ("model", dict(model=lambda Z: Z[:-1, 0])),
    ("model", dict(model=lambda Z: Z.sum(1) * np.nan)), ("model", dict(model=lambda Z: "logits")),
    ("model", dict(model=42)),
]


@pytest.mark.parametrize("fname", list(FUNCTIONS))
@pytest.mark.parametrize("name, overrides", BAD_INPUTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_INPUTS)])
def test_bad_input_names_the_argument(fname, name, overrides):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        _call(FUNCTIONS[fname], **overrides)


@pytest.mark.parametrize("fname", ["mixup_loss", "mixup_loss_unmixed", "mixup_loss_error"])
@pytest.mark.parametrize("nodes", [0, -1, 2.5, True])
def test_bad_node_count(fname, nodes):
    with pytest.raises(ValueError, match="nodes"):
        _call(FUNCTIONS[fname], nodes=nodes)


@pytest.mark.parametrize("fname", ["mixup_loss_unmixed", "mixup_expansion"])
@pytest.mark.parametrize("scale", [-0.1, math.nan, math.inf])
def test_bad_scale(fname, scale):
    with pytest.raises(ValueError, match="scale"):
        _call(FUNCTIONS[fname], scale=scale)


@pytest.mark.parametrize("name, overrides", [
    ("scheme", dict(scheme="flip")), ("draws", dict(draws=1)), ("draws", dict(draws=0)),
    ("batch_size", dict(scheme="minibatch", batch_size=0)),
])
def test_bad_sampling_arguments(name, overrides):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        _call(_sampled, **overrides)


@pytest.mark.parametrize("name, overrides", [("r3", dict(r3="laplace")), ("probes", dict(probes=0))])
def test_bad_expansion_arguments(name, overrides):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        _call(theory.mixup_expansion, **overrides)


@pytest.mark.parametrize("fname", ["mixup_loss", "mixup_loss_unmixed"])
def test_bad_chunk(fname):
    with pytest.raises(ValueError, match="chunk_elements"):
        _call(FUNCTIONS[fname], chunk_elements=0)


def test_softmax_needs_several_outputs_and_valid_classes():
    with pytest.raises(ValueError, match=r"\bmodel\b"):
        _call(theory.mixup_loss, loss="softmax")  # K = 1
    softmax_model = theory.linear_model(3, 3)
    with pytest.raises(ValueError, match=r"\by\b"):
        _call(theory.mixup_loss, model=softmax_model, y=np.array([0, 1, 3, 0, 1]), loss="softmax")
    with pytest.raises(ValueError, match=r"\by\b"):
        _call(theory.mixup_expansion, model=softmax_model, y=np.full((5, 3), 0.5), loss="softmax")


def test_squared_label_constant_validates():
    for bad, name in (([], "y"), ([1.0, math.nan], "y"), ([1.0, 2.0], "alpha")):
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            squared_label_constant(bad, 0.0 if name == "alpha" else 1.0)


def test_valid_variants_accepted():
    """The same data as torch tensors, lists, bool labels, (n, 1) labels and float32 X all work alike."""
    ref = theory.mixup_loss(MODEL, X_OK, Y_OK, 1.0)
    variants = [(torch.as_tensor(X_OK), torch.as_tensor(Y_OK)), (X_OK.tolist(), Y_OK.tolist()),
                (X_OK, Y_OK.astype(bool)), (X_OK, Y_OK[:, None]), (X_OK, Y_OK.astype(float))]
    for X, y in variants:
        assert theory.mixup_loss(MODEL, X, y, 1.0) == pytest.approx(ref, rel=1e-14)
    assert theory.mixup_loss(MODEL, X_OK.astype(np.float32), Y_OK, 1.0) == pytest.approx(ref, rel=1e-6)
    assert theory.mixup_loss(MODEL, X_OK, Y_OK, 1.0, None) == theory.mixup_loss(MODEL, X_OK, Y_OK, 1.0, 1.0)


# ---------------------------------------------------------------- stability at huge margins

def _huge_margin_problems():
    rng = np.random.default_rng(1)
    y = np.arange(8) % 2
    X = rng.normal(size=(8, 2)) + 2.0 * (2 * y[:, None] - 1)
    lin = theory.linear_model(2, weight=[HUGE, HUGE], intercept=0.0)  # |margins| well past 800
    tanh = theory.smooth_mlp(2, [5], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tanh[-1].weight.mul_(3 * HUGE)
    soft = theory.linear_model(2, 3, weight=[[HUGE, HUGE], [-HUGE, -HUGE], [0.0, 0.0]])
    wrong = theory.linear_model(2, weight=[-HUGE, -HUGE], intercept=0.0)  # every point misclassified
    return [("linear", lin, X, y, "logistic"), ("tanh", tanh, X, y, "logistic"),
            ("softmax", soft, X, y * 2, "softmax"), ("wrong", wrong, X, y, "logistic"),
            ("squared", lin, X, y.astype(float), "squared")]


@pytest.mark.parametrize("case", range(5))
def test_huge_margins_stay_finite(case):
    name, model, X, y, loss = _huge_margin_problems()[case]
    with torch.no_grad():
        f = model(torch.as_tensor(X))
    assert f.abs().max() > HUGE
    if loss == "logistic" and theory.is_affine(model):  # the exact method's margin cap: refused up front
        with pytest.raises(ValueError, match=r"logits up to \|f\(x_i\)\| = .*MAX_MARGIN"):
            theory.mixup_loss(model, X, y, 0.4, loss=loss)
        values = [theory.mixup_loss(model, X, y, 0.4, loss=loss, nodes=256)] * 2
    else:
        values = [theory.mixup_loss(model, X, y, 0.4, loss=loss)] * 2
    values += [theory.mixup_loss(model, X, y, 0.4, loss=loss, shortcut=False),
              theory.mixup_loss_unmixed(model, X, y, 0.4, 2.0, loss=loss),
              theory.mixup_loss_sampled(model, X, y, 0.4, loss=loss, draws=5, generator=np.random.default_rng(0)).mean]
    e = theory.mixup_expansion(model, X, y, 0.4, loss=loss)
    values += [e.standard, e.r1, e.r2, e.r3, e.approx]
    assert all(math.isfinite(v) for v in values), values
    assert all(v >= 0 for v in values[:4])
    if not (loss == "logistic" and theory.is_affine(model)):
        assert values[0] == pytest.approx(values[2], rel=1e-9)


def test_huge_margin_linear_mixup_loss_limit():
    """|z| ≫ 1: softplus(z) − yz → max(z, 0) − yz, whose λ-integral (α = β = 1) is elementary per pair."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, 1)) * 2.0
    y = np.array([0, 1, 0, 1, 1, 0])
    theta = 5e3
    z = theta * X[:, 0]
    total = 0.0
    for i in range(6):
        for j in range(6):
            f0, f1 = z[j], z[i]  # z̃(λ) = z_j + λ(z_i − z_j), uniform λ
            if min(f0, f1) >= 0:
                pos = (f0 + f1) / 2
            elif max(f0, f1) <= 0:
                pos = 0.0
            else:
                pos = max(f0, f1) ** 2 / (2 * abs(f1 - f0))
            dy, dz = y[i] - y[j], z[i] - z[j]
            total += pos - (y[j] * z[j] + (y[j] * dz + z[j] * dy) / 2 + dy * dz / 3)
    ref = total / 36
    got = theory.mixup_loss(theory.linear_model(1, weight=[theta], intercept=0.0), X, y, 1.0, nodes=512)
    assert got == pytest.approx(ref, rel=1e-6)  # measured 7e-8 (kinks: Gauss error ~ Q⁻²)


# ------------------------------------------------------------------ one parametric validator

from theory.validation import ArgumentTypeError, check_rng, check_scalar, check_torch_generator  # noqa: E402


@pytest.mark.parametrize("value, target, kw, error", [
    ("1", float, {}, TypeError), (True, float, {}, TypeError), (None, float, {}, TypeError),
    (1.5, int, {}, TypeError), (True, int, {}, TypeError), (np.float64(2.0), int, {}, TypeError),
    (math.nan, float, {}, ValueError), (math.inf, float, {}, ValueError),
    (0.0, float, dict(min_val=0, include_boundaries="right"), ValueError),
    (0, int, dict(min_val=1), ValueError), (5, int, dict(max_val=4), ValueError),
])
def test_check_scalar_raises_type_or_value_error_naming_the_argument(value, target, kw, error):
    with pytest.raises(error, match="the_arg"):
        check_scalar(value, "the_arg", target, **kw)


def test_check_scalar_accepts_numpy_and_0d_tensors():
    assert check_scalar(np.int32(3), "n", int, min_val=1) == 3
    assert check_scalar(np.float32(0.5), "a", float) == 0.5
    assert check_scalar(torch.tensor(2.5, dtype=torch.float64), "a", float) == 2.5
    assert check_scalar(math.inf, "a", float, allow_inf=True) == math.inf


def test_type_errors_are_also_value_errors_for_old_callers():
    with pytest.raises(ValueError):
        check_scalar("x", "a", float)
    assert issubclass(ArgumentTypeError, TypeError)


@pytest.mark.parametrize("call", [
    lambda: theory.mixup_loss(MODEL, X_OK, Y_OK, "1.0"),
    lambda: theory.mixup_loss(MODEL, X_OK, Y_OK, 1.0, nodes=8.0),
    lambda: theory.MixupLambda(1.0).nodes(True),
    lambda: theory.rademacher(X_OK, 1.0, draws=10, generator=torch.Generator()),
    lambda: theory.rademacher(X_OK, 1.0, draws=10, generator="seed"),
    lambda: theory.mixup_loss_sampled(MODEL, X_OK, Y_OK, 1.0, draws=4, generator=1.5),
    lambda: theory.adversarial_loss(MODEL, X_OK, Y_OK, 0.1, method="pgd", generator=np.random.default_rng(0)),
    lambda: theory.relu_mlp(3, [4], generator="0"),
])
def test_wrong_types_raise_type_error(call):
    with pytest.raises(TypeError):
        call()


def test_generator_accepts_generator_seed_or_none():
    a = theory.rademacher(X_OK, 1.0, draws=50, generator=7).value
    b = theory.rademacher(X_OK, 1.0, draws=50, generator=np.random.default_rng(7)).value
    assert a == b
    assert np.isfinite(theory.rademacher(X_OK, 1.0, draws=50, generator=None).value)
    assert check_rng(np.int64(3)).integers(1 << 30) == np.random.default_rng(3).integers(1 << 30)
    g = check_torch_generator(5)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(5)))
    pgd = [theory.adversarial_loss(MODEL, X_OK, Y_OK, 0.1, method="pgd", generator=gen)
           for gen in (3, torch.Generator().manual_seed(3))]
    assert pgd[0] == pgd[1]
