"""Training, models and measurements: determinism, the Mixup objective against the exact L_mix,
measurements against independent brute force, attacks against the closed form for linear models."""
import math

import numpy as np
import pytest
import torch

from experiments.datasets import Dataset, load_dataset
from experiments.devices import resolve_device
from experiments.measure import accuracy_under_attack, measure
from experiments.nets import build_model, split_at_hidden
from experiments.training import TrainConfig, TrainResult, train

BASE = dict(dataset="two_moons", n_train=64, epochs=2, batch_size=16, device="cpu")
FROZEN_LR = 1e-12  # a learning rate that leaves the model at its initialisation (float32)
OBJECTIVE_EPOCHS = 400  # full-batch epochs averaged to estimate L_mix at initialisation
MANIFOLD_DRAWS = 2000
SAMPLED_SE = 5  # tolerance in standard errors for Monte-Carlo comparisons
GAUSS_NODES = 64


def _numbers(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_same_seed_same_history_other_seed_differs():
    cfg = TrainConfig(**BASE, model="mlp", hidden=(8,), method="mixup", measure=("expansion",))
    a, b = train(cfg), train(cfg)
    assert isinstance(a, TrainResult) and a.device == "cpu"
    assert _numbers(a.history) == _numbers(b.history)
    c = train(TrainConfig(**{**BASE, "seed": 1}, model="mlp", hidden=(8,), method="mixup", measure=("expansion",)))
    assert _numbers(c.history) != _numbers(a.history)


@pytest.mark.parametrize("model, method", [("logistic", "mixup"), ("mlp", "mixup"), ("mlp", "manifold"),
                                           ("tanh_mlp", "standard")])
def test_methods_run_and_record(model, method):
    r = train(TrainConfig(**BASE, model=model, hidden=(8, 8), method=method, alpha=0.5, beta=2.0))
    assert [row["epoch"] for row in r.history] == [1, 2]
    for row in r.history:
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "train_objective"):
            assert math.isfinite(row[key])
        assert 0 <= row["train_acc"] <= 1


def test_batch_bounds_cover_data_without_singletons():
    from experiments.training import batch_bounds

    for n, bs in [(10, 3), (10, 5), (1, 4), (9, 4), (7, 7)]:
        b = batch_bounds(n, bs)
        assert [i for b0, b1 in b for i in range(b0, b1)] == list(range(n))
        assert all(b1 - b0 >= 2 for b0, b1 in b) or n == 1


def test_measure_every_keeps_last_epoch():
    r = train(TrainConfig(**{**BASE, "epochs": 5}, measure_every=2))
    assert [row["epoch"] for row in r.history] == [2, 4, 5]


def test_manifold_rejects_model_without_hidden_layer():
    with pytest.raises(ValueError, match="layer"):
        train(TrainConfig(**BASE, model="logistic", method="manifold"))


def test_config_key_is_stable_and_ignores_device():
    a = TrainConfig(dataset_kwargs=(("noise", 0.2),))
    assert a.key() == TrainConfig(dataset_kwargs=(("noise", 0.2),), device="cpu").key()
    assert a.key() != TrainConfig(dataset_kwargs=(("noise", 0.3),)).key()
    assert a.key() != TrainConfig(dataset_kwargs=(("noise", 0.2),), seed=1).key()
    hash(a)


def test_bad_config_values():
    for bad in [dict(method="cutmix"), dict(optimizer="lbfgs"), dict(epochs=0), dict(alpha=0.0),
                dict(measure=("bogus",)), dict(dtype="float16")]:
        with pytest.raises(ValueError):
            train(TrainConfig(**{**BASE, **bad}))


def _brute_mixup_logistic(w, b, X, y, alpha):
    """L_mix for a linear logistic model, α = β = 1 (λ uniform): all pairs × Gauss–Legendre."""
    assert alpha == 1.0
    t, wt = np.polynomial.legendre.leggauss(GAUSS_NODES)
    lam, wt = (t + 1) / 2, wt / 2
    z = X @ w + b
    Z = lam[:, None, None] * z[None, :, None] + (1 - lam)[:, None, None] * z[None, None, :]
    Y = lam[:, None, None] * y[None, :, None] + (1 - lam)[:, None, None] * y[None, None, :]
    L = np.logaddexp(0, Z) - Y * Z
    return float(np.tensordot(wt, L.mean((1, 2)), 1))


def test_mixup_objective_is_unbiased_for_exact_mixup_loss():
    """Full-batch Mixup epochs at a frozen model: the epoch objectives average to L_mix (docs/theory.md §2)."""
    cfg = TrainConfig(dataset="two_moons", n_train=40, batch_size=40, epochs=OBJECTIVE_EPOCHS, lr=FROZEN_LR,
                      momentum=0.0, method="mixup", alpha=1.0, device="cpu", dtype="float64")
    r = train(cfg)
    obj = np.array([row["train_objective"] for row in r.history])
    w = r.model[0].weight.detach().numpy().ravel()
    b = float(r.model[0].bias.detach())
    exact = _brute_mixup_logistic(w, b, r.dataset.X_train, r.dataset.y_train.astype(float), 1.0)
    se = obj.std(ddof=1) / math.sqrt(len(obj))
    assert abs(obj.mean() - exact) <= SAMPLED_SE * se


def test_manifold_batch_loss_estimates_mixup_loss_of_the_tail():
    """For a trained MLP, the manifold-Mixup minibatch loss (full batch, λ ~ Beta(2, 0.5), random
    partners) averages to the exact L_mix of the tail on the hidden features head(X)."""
    from theory import mixup_loss

    from experiments.training import mixed_batch_loss, soft_targets

    r = train(TrainConfig(dataset="two_moons", n_train=40, batch_size=10, epochs=30, model="mlp", hidden=(6, 6),
                          device="cpu", dtype="float64"))
    head, tail = split_at_hidden(r.model, 1)
    X = torch.as_tensor(r.dataset.X_train)
    T = soft_targets(torch.as_tensor(r.dataset.y_train), 2, torch.float64)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    with torch.no_grad():
        draws = np.array([float(mixed_batch_loss((head, tail), X, T, rng.beta(2.0, 0.5),
                                                 torch.randperm(40, generator=gen), 2))
                          for _ in range(MANIFOLD_DRAWS)])
        H = head(X).numpy()
    exact = mixup_loss(tail, H, r.dataset.y_train, 2.0, 0.5)
    assert abs(draws.mean() - exact) <= SAMPLED_SE * draws.std(ddof=1) / math.sqrt(MANIFOLD_DRAWS)


def test_tiny_alpha_mixup_full_batch_equals_standard_training():
    """Beta(ε, ε) puts λ at 0 or 1: a full-batch Mixup step is a step on a permuted batch = standard."""
    common = dict(dataset="breast_cancer", n_train=60, batch_size=60, epochs=5, lr=0.05, device="cpu",
                  dtype="float64", model="mlp", hidden=(5,))
    std = train(TrainConfig(**common, method="standard"))
    mix = train(TrainConfig(**common, method="mixup", alpha=1e-4))
    np.testing.assert_allclose([r["train_loss"] for r in mix.history], [r["train_loss"] for r in std.history],
                               rtol=1e-6)


def test_measure_matches_brute_force_and_is_finite():
    D = load_dataset("two_moons", n=30, seed=2)
    model = build_model("logistic", D.input_shape, 2, seed=3).double()
    out = measure(model, D, ("mixup", "expansion", "robustness"), 1.0)
    w, b = model[0].weight.detach().numpy().ravel(), float(model[0].bias.detach())
    assert out["mixup_loss_kind"] == "exact"
    assert out["mixup_loss"] == pytest.approx(_brute_mixup_logistic(w, b, D.X_train, D.y_train.astype(float), 1.0),
                                              rel=1e-10)
    z = D.X_train @ w + b
    assert out["exp_standard"] == pytest.approx(float(np.mean(np.logaddexp(0, z) - D.y_train * z)), rel=1e-10)
    assert out["exp_approx"] == pytest.approx(out["exp_standard"] + out["exp_r1"] + out["exp_r2"] + out["exp_r3"])
    for key in ("mixup_loss", "exp_r1", "exp_r2", "exp_r3", "exp_approx"):
        assert math.isfinite(out[key])
    assert "robustness_skipped" in out  # filled, or NaN with the reason when theory.robustness is absent
    sampled = measure(model, D, ("mixup",), 1.0, mixup_exact=False)
    assert sampled["mixup_loss_kind"] == "sampled" and sampled["mixup_loss_stderr"] > 0
    assert abs(sampled["mixup_loss"] - out["mixup_loss"]) <= SAMPLED_SE * sampled["mixup_loss_stderr"]


def test_robustness_skipped_for_multiclass():
    D = load_dataset("digits", n=40)
    model = build_model("logistic", D.input_shape, 10)
    out = measure(model, D, ("robustness",), 1.0)
    assert math.isnan(out["rob_eps_mix"]) and "binary" in out["robustness_skipped"]


def test_training_records_measurements():
    r = train(TrainConfig(**BASE, measure=("mixup", "expansion")))
    assert all(math.isfinite(row["mixup_loss"]) and math.isfinite(row["exp_approx"]) for row in r.history)
    import json

    json.dumps(r.history)


@pytest.mark.parametrize("backend", ["theory", "local"])
@pytest.mark.parametrize("norm", [2, math.inf])
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attack_accuracy_matches_linear_closed_form(norm, attack, backend):
    """For f = wᵀx + b the worst ε-perturbation lowers the signed margin by ε‖w‖_* (dual norm)."""
    D = load_dataset("breast_cancer", n=200)
    model = build_model("logistic", D.input_shape, 2, seed=1).double()
    with torch.no_grad():
        model[0].weight.mul_(5)
    w, b = model[0].weight.detach().numpy().ravel(), float(model[0].bias.detach())
    eps = 0.05
    dual = np.abs(w).sum() if norm == math.inf else np.linalg.norm(w)
    s = 2 * D.y_train - 1
    expect = np.mean(s * (D.X_train @ w + b) - eps * dual > 0)
    got = accuracy_under_attack(model, D.X_train, D.y_train, eps, norm, attack, steps=5, backend=backend)
    assert got == pytest.approx(expect, abs=1 / 200 + 1e-12)  # ties at the boundary may go either way


def test_cuda_unavailable_is_a_value_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA"):
        train(TrainConfig(**{**BASE, "device": "cuda"}))
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_cnn_trains_one_epoch_on_fake_images(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((24, 1, 8, 8)), np.arange(24) % 3
    np.savez(tmp_path / "img.npz", X=X, y=y)
    cfg = TrainConfig(dataset="npz", dataset_kwargs=(("path", str(tmp_path / "img.npz")),), model="cnn",
                      method="manifold", epochs=1, batch_size=8, device="cpu")
    r = train(cfg)
    assert r.dataset.input_shape == (1, 8, 8) and math.isfinite(r.history[0]["train_loss"])
    assert r.model(torch.zeros(2, 64)).shape == (2, 3)


def test_train_accepts_a_given_dataset():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    D = Dataset(X, (X[:, 0] > 0).astype(np.int64), X[:5], (X[:5, 0] > 0).astype(np.int64), "mine", 2, (3,), {})
    r = train(TrainConfig(epochs=1, device="cpu", dataset="ignored"), dataset=D)
    assert r.dataset is D


def test_models_shapes_split_and_seed():
    x = torch.randn(5, 12)
    for name, k, out in [("logistic", 2, (5, 1)), ("mlp", 4, (5, 4)), ("tanh_mlp", 2, (5, 1)), ("cnn", 3, (5, 3))]:
        m = build_model(name, (12,), k, hidden=(7, 7))
        assert m(x).shape == out and isinstance(m, torch.nn.Sequential)
    m = build_model("mlp", (12,), 2, hidden=(7, 7), bias=False, seed=4)
    assert all(p.ndim == 2 for p in m.parameters())  # no bias vectors
    head, tail = split_at_hidden(m, 1)
    torch.testing.assert_close(tail(head(x)), m(x))
    assert head(x).shape == (5, 7)
    same = build_model("mlp", (12,), 2, hidden=(7, 7), bias=False, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), same.parameters()))
    with pytest.raises(ValueError, match="layer"):
        split_at_hidden(m, 3)


def test_wrn16_8_parameter_count():
    # WRN-16-8 has 11.0M parameters (Zagoruyko & Komodakis 2016, Table 1) for 10 classes.
    m = build_model("wrn16_8", (3, 32, 32), 10)
    assert abs(sum(p.numel() for p in m.parameters()) - 11.0e6) < 0.05e6


@pytest.mark.slow
def test_wrn16_8_forward_shape():
    m = build_model("wrn16_8", (3, 32, 32), 10).eval()
    assert m(torch.zeros(2, 3 * 32 * 32)).shape == (2, 10)
    head, tail = split_at_hidden(m, 1)
    assert tail(head(torch.zeros(2, 3072))).shape == (2, 10)


def test_auto_attack_backend_is_the_library_attack():
    """``backend="auto"`` is the library's float64 PGD (restarts from the FGSM point), never a quieter fallback."""
    D = load_dataset("breast_cancer", n=120)
    model = build_model("mlp", D.input_shape, 2, seed=3).double()
    args = (model, D.X_train, D.y_train, 0.5, 2, "pgd")
    auto = accuracy_under_attack(*args, steps=5, backend="auto")
    assert auto == accuracy_under_attack(*args, steps=5, backend="theory")
