"""Label sets other than {0, 1} / class indices / probability rows are refused everywhere; result
objects print a few summary lines with their arrays still attributes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import theory

N, D = 12, 3


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D))
    X -= X.mean(0)
    theta = np.array([1.0, -0.5, 0.2])
    y = (X @ theta > 0).astype(int)
    return X, y, theory.linear_model(D, bias=False, weight=theta)


CALLS = {
    "mixup_loss": lambda m, X, y: theory.mixup_loss(m, X, y, 1.0),
    "mixup_loss_error": lambda m, X, y: theory.mixup_loss_error(m, X, y, 1.0),
    "mixup_loss_unmixed": lambda m, X, y: theory.mixup_loss_unmixed(m, X, y, 1.0),
    "mixup_loss_sampled": lambda m, X, y: theory.mixup_loss_sampled(m, X, y, 1.0, draws=3, generator=np.random.default_rng(0)),
    "mixup_expansion": lambda m, X, y: theory.mixup_expansion(m, X, y, 1.0),
    "adversarial_loss": lambda m, X, y: theory.adversarial_loss(m, X, y, 0.1),
    "adversarial_losses": lambda m, X, y: theory.adversarial_losses(m, X, y, 0.1),
    "adversarial_examples": lambda m, X, y: theory.adversarial_examples(m, X, y, 0.1),
    "robustness_bound": lambda m, X, y: theory.robustness_bound(m, X, y, 1.0),
    "exact_comparison": lambda m, X, y: theory.exact_comparison(m, X, y, 1.0),
    "shrunk_standard_loss": lambda m, X, y: theory.shrunk_standard_loss(m, X, y, 1.0),
    "frozen_scale_excess": lambda m, X, y: theory.frozen_scale_excess(m, X, y, 1.0),
    "regularizer_comparison": lambda m, X, y: theory.regularizer_comparison(X, y, alphas=(1.0,)),
    "generalization_gap_bound(y_train)": lambda m, X, y: theory.generalization_gap_bound(
        X, y, X, (X @ np.array([1.0, -0.5, 0.2]) > 0).astype(int), draws=10, generator=np.random.default_rng(0)),
    "generalization_gap_bound(y_test)": lambda m, X, y: theory.generalization_gap_bound(
        X, (X @ np.array([1.0, -0.5, 0.2]) > 0).astype(int), X, y, draws=10, generator=np.random.default_rng(0)),
}
BAD_LABELS = {"plus_minus_one": lambda y: 2 * y - 1, "shifted": lambda y: y + 1, "halves": lambda y: y / 2.0,
              "one_hot_not_summing": lambda y: np.stack([y, y], 1)}


@pytest.mark.parametrize("bad", BAD_LABELS)
@pytest.mark.parametrize("name", CALLS)
def test_binary_functions_refuse_other_label_sets(problem, name, bad):
    X, y, model = problem
    CALLS[name](model, X, y)  # the good labels pass
    with pytest.raises(ValueError, match=r"y(_train|_test)? .*(\{0, 1\}|binary|shape)"):
        CALLS[name](model, X, BAD_LABELS[bad](y))


def test_generalization_gap_bound_no_longer_reports_wrong_numbers(problem):
    """{−1, +1} labels used to give a negative logistic loss, ``y + 1`` a test accuracy of 1 − true."""
    X, y, _ = problem
    ok = theory.generalization_gap_bound(X, y, X, y, draws=10, generator=np.random.default_rng(0))
    assert ok["train_loss"] > 0 and ok["test_acc"] == ok["train_acc"]
    with pytest.raises(ValueError, match=r"\(y \+ 1\) / 2"):
        theory.generalization_gap_bound(X, 2 * y - 1, X, 2 * y - 1, draws=10)


def test_softmax_refuses_negative_and_fractional_classes(problem):
    X, _, _ = problem
    net = theory.relu_mlp(D, [4], 3, generator=torch.Generator().manual_seed(0))
    y = np.arange(N) % 3
    theory.mixup_loss(net, X, y, 1.0, loss="softmax")
    for bad in (y - 1, y + 0.5, np.eye(3)[y] * 2):
        with pytest.raises(ValueError, match="y"):
            theory.mixup_loss(net, X, bad, 1.0, loss="softmax")


def test_squared_loss_keeps_real_targets(problem):
    X, y, model = problem
    assert np.isfinite(theory.mixup_loss(model, X, y * 3.7 - 1.1, 1.0, loss="squared"))


def test_result_reprs_are_a_few_lines_for_n_200():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 5))
    X -= X.mean(0)
    theta = rng.standard_normal(5)
    y = (X @ theta > 0).astype(int)
    model = theory.linear_model(5, bias=False, weight=theta)
    bound = theory.robustness_bound(model, X, y, 1.0)
    objects = [bound, theory.exact_comparison(model, X, y, 1.0), theory.mixup_expansion(model, X, y, 1.0),
               theory.rademacher(X, 1.0, draws=20, generator=np.random.default_rng(0)),
               theory.mixup_loss_sampled(model, X, y, 1.0, draws=3, generator=np.random.default_rng(0))]
    for obj in objects:
        text = repr(obj)
        assert len(text) < 700 and len(text.splitlines()) <= 10, text
        assert text.startswith(type(obj).__name__ + "(")
    text = repr(bound)
    eps = bound.eps_i
    assert eps.shape == (200,)  # the array stays an attribute
    assert f"<array (200,) min {eps.min():.6g}, median {np.median(eps):.6g}, max {eps.max():.6g}>" in text
    assert f"eps_star={bound.eps_star:.6g}" in text and "holds=True" in text
