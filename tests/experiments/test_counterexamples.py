"""C6: drop one assumption of the robustness chain and hypothesis finds a counterexample (docs/theory.md §4, §7).

Each strategy (``theory.strategies.instances`` with one assumption in ``drop``) breaks exactly one
assumption and keeps the others: (a) data not centered, (b) labels not from the model (θ ∉ Θ), (c) a
linear model with an intercept, (d) a ReLU net with an output bias.
``find()`` shrinks to a minimal instance; the minimal ones are stored in ``experiments/data/c6_*.json``
(regenerate with ``python tests/experiments/test_counterexamples.py --write``), and the tests assert that the
stored instances fail the chain, by a margin, with only the intended assumption broken.

The softmax chain without its curvature factor κ (docs/theory.md §4.6) fails too: the
minimal instance hypothesis found (``find`` in the slow test) is pinned below.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import theory
from theory.strategies import instances, load_instance

FIXTURES = Path(__file__).resolve().parents[2] / "experiments" / "data"  # shipped as package data
FIND_SETTINGS = settings(database=None, derandomize=True, max_examples=3000, deadline=None,
                         suppress_health_check=list(HealthCheck))
VIOLATION_RTOL = 1e-6
"""A counterexample must break the chain by more than this (relative), far above rounding."""
SETTINGS_BROKEN = {"non_centered": "centered", "outside_theta": "in_theta", "intercept": "homogeneous",
                   "relu_biases": "homogeneous"}

GRID = st.integers(-8, 8)  # coordinates k/4: short, readable minimal instances
WEIGHTS = st.integers(-4, 4)  # weights k/2
ALPHAS = st.sampled_from([1.0, 0.5, 2.0, 0.2, 4.0])  # shrinks towards α = 1
SETTINGS = {"non_centered": ("logistic", "centered"), "outside_theta": ("logistic", "in_theta"),
            "intercept": ("logistic", "homogeneous"), "relu_biases": ("relu", "homogeneous")}
"""Each setting: the model family of ``theory.strategies.instances`` and the one assumption dropped."""
SIZES = dict(n=(2, 5), d=(1, 3), x_max=2.0, weight_max=2.0, weight_step=0.5, hidden=(1, 3), depth=(1, 2),
             asymmetric=False)


def _grid(draw, shape, elements, scale):
    return (draw(arrays(np.int64, shape, elements=elements)) / scale).tolist()


def _center(X):
    X = np.asarray(X, dtype=float)
    X = X - X.mean(0)
    return (X - X.mean(0)).tolist()


def cases(setting):
    """Instances (theory.strategies, one source of truth) breaking exactly the assumption of ``setting``."""
    kind, dropped = SETTINGS[setting]
    return instances(kind, 2, (dropped,), **SIZES)


def bound(inst):
    return theory.robustness_bound(inst.model, inst.X, inst.y, inst.alpha, inst.beta, norm=inst.norm, c_x=inst.c_x)


def violation(inst) -> float:
    """How much the chain fails, relative (> 0: fails); -inf unless exactly the intended assumption is broken."""
    res = bound(inst)
    broken, = inst.dropped
    flags = res.assumptions
    if flags[broken] or not all(v for k, v in flags.items() if k != broken):
        return -math.inf
    first = (res.adv_at_eps_i - res.mixup_approx) / (1 + abs(res.mixup_approx))
    second = (res.adv_at_eps_mix - res.adv_at_eps_i) / (1 + abs(res.adv_at_eps_i))
    return max(first, second)


def find_counterexample(setting):
    return find(cases(setting), lambda c: violation(c) > VIOLATION_RTOL, settings=FIND_SETTINGS)


@pytest.mark.parametrize("setting", sorted(SETTINGS_BROKEN))
def test_hypothesis_finds_a_counterexample(setting):
    inst = find_counterexample(setting)
    res = bound(inst)
    assert not res.holds
    assert not res.assumptions[SETTINGS_BROKEN[setting]]
    assert len(inst.y) <= 3  # shrinking reaches a tiny instance


def test_hypothesis_finds_a_counterexample_without_a3():
    """(A3) dropped: c_x√d above the smallest ‖x_i‖ inflates ε_i past what Mixup's R1 + R2 pays for."""
    inst = find(instances("logistic", 2, ("norm_bound",), **SIZES),
                lambda i: not i.robustness_bound().holds, settings=FIND_SETTINGS)
    res = inst.robustness_bound()
    assert not res.holds and not res.assumptions["norm_bound"]
    assert all(v for k, v in res.assumptions.items() if k != "norm_bound")
    assert inst.c_x * math.sqrt(inst.X.shape[1]) > np.linalg.norm(inst.X, axis=1).min()
    assert len(inst.y) <= 3


FIXTURE_FILES = sorted(FIXTURES.glob("c6_*.json"))


def test_every_setting_has_a_stored_counterexample():
    stored = {p.stem.removeprefix("c6_"): load_instance(p).dropped for p in FIXTURE_FILES}
    assert stored == {setting: (broken,) for setting, broken in SETTINGS_BROKEN.items()}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_stored_counterexample_fails_the_chain(path):
    inst = load_instance(path)
    res = bound(inst)
    assert not res.holds
    assert violation(inst) > VIOLATION_RTOL
    broken = SETTINGS_BROKEN[path.stem.removeprefix("c6_")]
    assert not res.assumptions[broken]
    assert all(v for k, v in res.assumptions.items() if k != broken)
    # the instance is genuinely outside the theorem: repairing the assumption restores the chain
    if broken == "centered":
        Xc = inst.X - inst.X.mean(0)
        yc = (Xc @ np.asarray(inst.layers()[0]["weight"][0]) >= 0).astype(int)
        assert theory.robustness_bound(inst.model, Xc, yc, inst.alpha).holds


# ---------------------------------------------------------------- softmax without κ

# Minimal instance found by ``find`` in test_find_softmax_counterexample_without_kappa (bias-free linear
# softmax, centered data, labels = argmax, so every assumption of the softmax chain holds).
SOFTMAX_NO_KAPPA = {"X": [[-0.125, 0.375], [0.125, -0.375]], "W": [[0.0, -1.0], [-1.0, -1.5], [0.5, -1.0]], "alpha": 1.0}


def naive_softmax_chain(case):
    """``(L̃_mix, mean L̃_adv,i(m_1 ρ_i))`` with ρ_i = |g_iᵀx_i|/‖g_i‖ from plain autograd — the
    softmax chain without κ; L̃_adv,i is the exact second-order (trust-region) value per sample."""
    X = np.asarray(case["X"], dtype=float)
    W = np.asarray(case["W"], dtype=float)
    model = theory.linear_model(X.shape[1], out=W.shape[0], bias=False, weight=W)
    y = (X @ W.T).argmax(1)
    Xt = torch.tensor(X, requires_grad=True)
    ce = torch.nn.functional.cross_entropy(model(Xt), torch.tensor(y), reduction="sum")
    (g,) = torch.autograd.grad(ce, Xt)
    g = g.numpy()
    gn = np.linalg.norm(g, axis=1)
    rho = np.where(gn > 0, np.abs((g * X).sum(1)) / np.where(gn > 0, gn, 1.0), 0.0)
    m1 = theory.MixupLambda(case["alpha"]).m(1)
    adv = [theory.adversarial_loss(model, X[i:i + 1], y[i:i + 1], m1 * rho[i], loss="softmax", method="second_order")
           for i in range(len(X))]
    mix = theory.mixup_expansion(model, X, y, case["alpha"], loss="softmax").approx
    return mix, float(np.mean(adv)), (model, X, y)


def test_softmax_chain_without_kappa_fails_and_with_kappa_holds():
    mix, naive, (model, X, y) = naive_softmax_chain(SOFTMAX_NO_KAPPA)
    assert naive > mix * (1 + VIOLATION_RTOL)
    res = theory.robustness_bound_softmax(model, X, y, SOFTMAX_NO_KAPPA["alpha"])
    assert all(res.assumptions.values())
    assert res.holds and np.min(res.kappa) < 1


@pytest.mark.slow
def test_find_softmax_counterexample_without_kappa():
    @st.composite
    def softmax_cases(draw):
        n, d, K = draw(st.integers(2, 4)), draw(st.integers(1, 3)), draw(st.integers(3, 4))
        X = _center(_grid(draw, (n, d), GRID, 4.0))
        return {"X": X, "W": _grid(draw, (K, d), WEIGHTS, 2.0), "alpha": draw(ALPHAS)}

    def fails(case):
        mix, naive, _ = naive_softmax_chain(case)
        return naive > mix * (1 + VIOLATION_RTOL) + 1e-12

    case = find(softmax_cases(), fails, settings=settings(FIND_SETTINGS, max_examples=20000))
    print(json.dumps(case))
    assert fails(case)


def write_fixtures():
    FIXTURES.mkdir(exist_ok=True)
    for setting in sorted(SETTINGS_BROKEN):
        inst = find_counterexample(setting)
        path = inst.save(FIXTURES / f"c6_{setting}.json")
        print(path, repr(inst))


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_fixtures()
