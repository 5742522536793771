"""theory.strategies: every assumption of the robustness chain holds except the dropped ones (checked
against independent numpy computations, not only the library's flags), JSON round trip, bad input."""
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory.strategies import ASSUMPTIONS, Instance, instance_from_dict, instances, load_instance

FLAG_EXAMPLES = 12  # per (model, norm, drop) combination
DROPS = [()] + [(a,) for a in ASSUMPTIONS] + [("centered", "in_theta"), ("in_theta", "homogeneous"), ASSUMPTIONS]
COMBOS = [(m, p, dr) for m in ("logistic", "relu") for p in (2, math.inf) for dr in DROPS
          if not (p == math.inf and "norm_bound" in dr)]


def independent_flags(inst: Instance) -> dict:
    """The four assumptions evaluated in numpy from the layer weights (no theory/ code)."""
    X = inst.X
    layers = inst.layers()

    def forward(Z):
        h = Z
        for k, layer in enumerate(layers):
            h = h @ np.asarray(layer["weight"]).T + (0 if layer["bias"] is None else np.asarray(layer["bias"]))
            if inst.kind == "relu" and k < len(layers) - 1:
                h = np.maximum(h, 0)
        return h[:, 0]

    f = forward(X)
    centered = np.abs(X.mean(0)).max() <= 1e-9 * max(np.abs(X).max(), 1e-300) or not X.any()
    in_theta = bool(np.all((2 * inst.y - 1) * f >= -1e-12 * (1 + np.abs(f))))
    homogeneous = all(layer["bias"] is None or not np.any(layer["bias"]) for layer in layers)
    norm_bound = inst.c_x is None or bool(np.all(np.linalg.norm(X, axis=1) >= inst.c_x * math.sqrt(X.shape[1])))
    return {"centered": bool(centered), "in_theta": in_theta, "homogeneous": homogeneous, "norm_bound": norm_bound}


@pytest.mark.parametrize("kind,norm,drop", COMBOS, ids=[f"{m}-{p}-{'+'.join(d) or 'none'}" for m, p, d in COMBOS])
def test_exactly_the_dropped_assumptions_fail(kind, norm, drop):
    @settings(max_examples=FLAG_EXAMPLES, deadline=None, database=None)
    @given(instances(kind, norm, drop))
    def check(inst):
        expected = {name: name not in drop for name in ASSUMPTIONS}
        assert independent_flags(inst) == expected, str(inst)
        assert inst.robustness_bound().assumptions == expected, str(inst)
        assert inst.norm == norm and inst.kind == kind and inst.dropped == drop
        assert set(np.unique(inst.y)) <= {0, 1}

    check()


@settings(max_examples=FLAG_EXAMPLES, deadline=None, database=None)
@given(instances("relu", 2, ("norm_bound", "in_theta"), n=(3, 4), d=(2, 2), hidden=(2, 2), depth=(2, 2),
                 alpha=(0.5, 0.5), asymmetric=False, weight_step=None))
def test_sizes_are_respected(inst):
    assert 3 <= len(inst.y) <= 4 and inst.X.shape[1] == 2
    widths = [np.asarray(layer["weight"]).shape for layer in inst.layers()]
    assert widths == [(2, 2), (2, 2), (1, 2)]
    assert inst.alpha == 0.5 and inst.beta is None


@settings(max_examples=FLAG_EXAMPLES, deadline=None, database=None)
@given(st.sampled_from(COMBOS).flatmap(lambda c: instances(*c)))
def test_json_round_trip_is_exact(tmp_path_factory, inst):
    path = tmp_path_factory.mktemp("inst") / "instance.json"
    inst.save(path)
    back = load_instance(path)
    assert back.to_dict() == inst.to_dict()
    np.testing.assert_array_equal(back.X, inst.X)
    with torch.no_grad():
        Xt = torch.as_tensor(inst.X)
        assert torch.equal(back.model(Xt), inst.model(Xt))  # weights included, bit for bit
    a, b = back.robustness_bound(), inst.robustness_bound()
    assert (a.mixup_approx, a.adv_at_eps_i, a.holds) == (b.mixup_approx, b.adv_at_eps_i, b.holds)
    assert eval(repr(inst), {"instance_from_dict": instance_from_dict}).to_dict() == inst.to_dict()


def test_readable_print_names_weights_rows_and_labels():
    inst = instance_from_dict({"model": "logistic", "layers": [{"weight": [[0.5, -1.0]], "bias": [0.5]}],
                               "X": [[0.25, 0.0], [-0.25, 0.0]], "y": [1, 0], "alpha": 1.0, "norm": "inf",
                               "dropped": ["homogeneous"]})
    text = str(inst)
    for part in ("logistic regression", "ℓ∞", "θ = [ 0.5, -1. ]", "bias = [0.5]", "[0.25, 0.  ]  y = 1",
                 "built to violate: homogeneous"):
        assert part in text, text


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="model"):
        instances("tanh")
    with pytest.raises(ValueError, match="norm"):
        instances(norm=1)
    with pytest.raises(ValueError, match="drop"):
        instances(drop=("convex",))
    with pytest.raises(ValueError, match="norm_bound"):
        instances(norm="inf", drop=("norm_bound",))
    with pytest.raises(ValueError, match="alpha"):
        instances(alpha=(0.0, 1.0))
    with pytest.raises(TypeError, match="n"):
        instances(n=3)
    with pytest.raises(ValueError, match="lacks"):
        instance_from_dict({"model": "logistic"})
    assert theory.strategies.instances is instances  # lazily importable as an attribute


def test_math_inf_and_string_inf_are_the_same_norm():
    inst = instance_from_dict({"model": "relu", "layers": [{"weight": [[1.0]], "bias": None},
                                                           {"weight": [[2.0]], "bias": None}],
                               "X": [[1.0], [-1.0]], "y": [1, 1], "alpha": 2.0, "norm": "inf"})
    assert inst.norm == math.inf and json.loads(json.dumps(inst.to_dict()))["norm"] == "inf"
