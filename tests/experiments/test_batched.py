"""Ensemble training (experiments.batched) against the single-model trainer, configuration by
configuration: same seeds → same histories and parameters up to float32 rounding of batched products."""
import math

import numpy as np
import pytest
import torch

from experiments import batched
from experiments.training import TrainConfig, pretrained, train

BASE = dict(n_train=72, epochs=3, batch_size=16, hidden=(12, 10), device="cpu", lr=0.05)
ATOL = 2e-5
"""float32 training: a batched matrix product may round differently from a single one; three epochs
of SGD keep the differences at ~1e-7 (measured 2e-7), far below any seed-to-seed difference."""
HISTORY_KEYS = ("train_objective", "train_loss", "train_acc", "test_loss", "test_acc")


def _assert_same(a, b):
    assert [r["epoch"] for r in a.history] == [r["epoch"] for r in b.history]
    for ra, rb in zip(a.history, b.history):
        for k in HISTORY_KEYS:
            assert ra[k] == pytest.approx(rb[k], abs=ATOL), k
        for k in set(rb) - set(HISTORY_KEYS) - {"seconds", "epoch"}:
            assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=ATOL) if isinstance(rb[k], float) else ra[k] == rb[k], k
    pa = torch.cat([p.detach().flatten() for p in a.model.parameters()])
    pb = torch.cat([p.detach().flatten() for p in b.model.parameters()])
    assert torch.allclose(pa, pb, atol=ATOL, rtol=0)


ENSEMBLES = {
    "binary mlp, standard + mixup, seeds and alphas": [
        TrainConfig(**BASE, dataset="two_moons", model="mlp", method=m, seed=s, alpha=a)
        for m in ("standard", "mixup") for s in (0, 1) for a in (0.2, 4.0)],
    "multiclass logistic, adam, asymmetric beta": [
        TrainConfig(**{**BASE, "lr": 0.01}, dataset="digits", model="logistic", method=m, seed=s, alpha=0.5,
                    beta=2.0, optimizer="adam", weight_decay=1e-3) for m in ("mixup", "standard") for s in (3, 4)],
    "manifold mixup, tanh mlp": [
        TrainConfig(**BASE, dataset="two_moons", model="tanh_mlp", method="manifold", seed=s) for s in (0, 5)],
    "float64, measure every 2 epochs": [
        TrainConfig(**{**BASE, "epochs": 4}, dataset="breast_cancer", model="mlp", method="mixup", seed=s,
                    dtype="float64", measure_every=2) for s in (0, 1)],
}


@pytest.mark.parametrize("name", list(ENSEMBLES))
def test_ensemble_equals_training_each_alone(name):
    configs = ENSEMBLES[name]
    assert len(batched.plan_groups(configs)) == 1  # really trained as one ensemble
    for a, b in zip(batched.train_many(configs), [train(c) for c in configs]):
        assert a.config == b.config
        _assert_same(a, b)


def test_seeds_differ_inside_an_ensemble():
    a, b = batched.train_many([TrainConfig(**BASE, dataset="two_moons", model="mlp", method="mixup", seed=s)
                               for s in (0, 1)])
    assert a.history[-1]["train_loss"] != b.history[-1]["train_loss"]


def test_cnn_ensemble_by_vmap_and_measurements(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 16)), np.arange(40) % 3
    np.savez(tmp_path / "seq.npz", X=X, y=y)
    kw = (("path", str(tmp_path / "seq.npz")),)
    cnn = [TrainConfig(dataset="npz", dataset_kwargs=kw, model="cnn", method=m, epochs=2, batch_size=8, seed=s,
                       device="cpu", lr=0.05) for m, s in (("mixup", 0), ("standard", 1))]
    for a, b in zip(batched.train_many(cnn), [train(c) for c in cnn]):
        _assert_same(a, b)
    measured = [TrainConfig(**{**BASE, "epochs": 2}, dataset="two_moons", model="logistic", method="mixup", seed=s,
                            measure=("mixup", "expansion")) for s in (0, 1)]
    for a, b in zip(batched.train_many(measured), [train(c) for c in measured]):
        assert a.history[-1]["mixup_loss_kind"] == "exact"
        _assert_same(a, b)


def test_plan_groups_splits_by_shape_and_caps_size():
    mk = lambda **kw: TrainConfig(**{**BASE, "dataset": "two_moons", "model": "mlp", **kw})  # noqa: E731
    configs = [mk(seed=0), mk(seed=1, method="mixup"), mk(n_train=50), mk(method="manifold"), mk(model="wrn16_8"),
               mk(seed=2, alpha=3.0)]
    groups = batched.plan_groups(configs)
    assert sorted(map(sorted, groups)) == [[0, 1, 5], [2], [3], [4]]
    assert batched.group_key(configs[4]) is None
    assert [len(g) for g in batched.plan_groups([mk(seed=s) for s in range(5)], max_group=2)] == [2, 2, 1]
    with pytest.raises(ValueError, match="max_group"):
        batched.plan_groups(configs, max_group=0)


def test_pretrained_results_are_handed_out_once():
    cfg = TrainConfig(**BASE, dataset="two_moons", model="logistic", method="mixup")
    (done,) = batched.train_many([cfg])
    with pretrained([done]):
        assert train(cfg) is done
        again = train(cfg)  # a second call trains afresh
    assert again is not done and math.isfinite(again.history[-1]["train_loss"])
