"""Per-epoch measurements of a trained model with the float64 theory functions, and robust accuracy.

:func:`measure` evaluates, on the training set (or a fixed subsample of ``MEASURE_MAX_N`` points):

- ``"mixup"``: L_mix (docs/theory.md §2) — exact (``theory.mixup_loss``) when the all-pairs work is small,
  else ``theory.mixup_loss_sampled``'s mean and standard error; ``mixup_loss_kind`` says which;
- ``"expansion"``: ``theory.mixup_expansion`` (C2): ``exp_standard, exp_r1, exp_r2, exp_r3, exp_approx``, and
  the re-centred form's (``form="carratino"``, docs/theory.md §3.4) ``exp_c_standard, exp_c_r2, exp_c_r3,
  exp_c_approx``;
- ``"robustness"``: ``theory.robustness_bound`` (C4–C7; binary logistic only): the chain
  ``rob_mixup_approx ≥ rob_adv_at_eps_i ≥ rob_adv_at_eps_mix``, ``rob_eps_mix``, ``rob_eps_star``,
  ``rob_holds`` and the assumption flags; NaN with ``robustness_skipped`` naming the reason otherwise.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from theory.validation import check_choice, check_scalar

MEASUREMENTS = ("mixup", "expansion", "robustness")
MEASURE_MAX_N = 2000
"""Measurements use at most this many training points (a fixed random subsample, by seed)."""
EXACT_MIXUP_MAX_N = 2000
EXACT_MIXUP_MAX_WORK = 4e9
"""Exact L_mix when n ≤ EXACT_MIXUP_MAX_N and n² · nodes · (parameters after the first affine
layer) ≤ EXACT_MIXUP_MAX_WORK (measured: ~1e9 of these per second on 2 CPU cores, so a few seconds
per measurement at worst); sampled otherwise. ``measure(..., mixup_exact=True)`` forces exact."""
SAMPLED_DRAWS = 64
"""Passes of ``theory.mixup_loss_sampled`` (permutation scheme) when L_mix is not computed exactly."""
_ROB_FIELDS = ("mixup_approx", "adv_at_eps_i", "adv_at_eps_mix", "eps_mix", "eps_star")


def loss_name(n_classes: int) -> str:
    return "logistic" if n_classes == 2 else "softmax"


def measurement_subset(dataset, max_n: int = MEASURE_MAX_N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The training points the measurements use: all of them, or a fixed subsample of ``max_n``."""
    X, y = dataset.X_train, dataset.y_train
    if len(y) <= max_n:
        return X, y
    idx = np.sort(np.random.default_rng([seed, 2]).permutation(len(y))[:max_n])
    return X[idx], y[idx]


def _pair_cost(model: nn.Module) -> int:
    """Parameters the exact L_mix evaluates per mixed pair (those after the leading affine layer)."""
    from theory import is_affine

    if is_affine(model):
        return 1
    layers = list(model) if isinstance(model, nn.Sequential) else []
    skip = 0
    while skip < len(layers) and isinstance(layers[skip], (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Flatten, nn.Unflatten)):
        skip += 1
    rest = layers[skip:] if layers else [model]
    return max(1, sum(p.numel() for m in rest for p in m.parameters()))


def exact_mixup_feasible(model: nn.Module, n: int) -> bool:
    from theory import DEFAULT_NODES

    return n <= EXACT_MIXUP_MAX_N and n * n * DEFAULT_NODES * _pair_cost(model) <= EXACT_MIXUP_MAX_WORK


def _mixup(model, X, y, alpha, beta, loss, seed, exact):
    from theory import DEFAULT_NODES, mixup_loss, mixup_loss_sampled

    if exact if exact is not None else exact_mixup_feasible(model, len(y)):
        # The fixed 64-node rule, whose cost exact_mixup_feasible budgets: along training 1e-6 relative
        # is ample, and the kink-aware default costs 2.4–3.3× more on a 10-64-64-1 ReLU net and up to 8×
        # on wide single-layer nets (benchmarks/results/kinks.md).
        return {"mixup_loss": mixup_loss(model, X, y, alpha, beta, loss=loss, nodes=DEFAULT_NODES),
                "mixup_loss_stderr": 0.0, "mixup_loss_kind": "exact"}
    est = mixup_loss_sampled(model, X, y, alpha, beta, loss=loss, draws=SAMPLED_DRAWS,
                                    generator=np.random.default_rng([seed, 3]))
    return {"mixup_loss": est.mean, "mixup_loss_stderr": est.stderr, "mixup_loss_kind": "sampled"}


def _expansion(model, X, y, alpha, beta, loss):
    from theory import mixup_expansion

    e = mixup_expansion(model, X, y, alpha, beta, loss=loss)
    c = mixup_expansion(model, X, y, alpha, beta, loss=loss, form="carratino")
    return {"exp_standard": e.standard, "exp_r1": e.r1, "exp_r2": e.r2, "exp_r3": e.r3, "exp_approx": e.approx,
            "exp_c_standard": c.standard, "exp_c_r2": c.r2, "exp_c_r3": c.r3, "exp_c_approx": c.approx}


def _robustness(model, X, y, alpha, beta, n_classes):
    skipped = {f"rob_{f}": math.nan for f in _ROB_FIELDS}
    skipped.update(rob_eps_i_mean=math.nan, rob_holds=False)
    if n_classes != 2:
        return {**skipped, "robustness_skipped": "robustness_bound is for binary logistic models only"}
    from theory import robustness_bound

    try:
        rb = robustness_bound(model, X, y, alpha, beta, loss="logistic")
    except ValueError as exc:
        return {**skipped, "robustness_skipped": str(exc)}
    out = {f"rob_{f}": float(getattr(rb, f)) for f in _ROB_FIELDS}
    out["rob_eps_i_mean"] = float(np.mean(rb.eps_i))
    out["rob_holds"] = bool(rb.holds)
    out.update({f"rob_{k}": bool(v) for k, v in dict(rb.assumptions).items()})
    out["robustness_skipped"] = ""
    return out


def measure(model: nn.Module, dataset, names, alpha: float, beta: float | None = None, *, seed: int = 0,
            max_n: int = MEASURE_MAX_N, mixup_exact: bool | None = None) -> dict:
    """The measurements ``names`` (from :data:`MEASUREMENTS`) of ``model`` on the (subsampled)
    training set of ``dataset``, as a flat dict of floats/bools/strings. The model is evaluated in
    eval mode and float64 by the theory functions; its mode is restored afterwards.
    ``mixup_exact``: None chooses by :func:`exact_mixup_feasible`; True/False force exact/sampled."""
    bad = [m for m in names if m not in MEASUREMENTS]
    if bad:
        raise ValueError(f"names must be among {MEASUREMENTS}, got {bad}")
    X, y = measurement_subset(dataset, max_n, seed)
    loss = loss_name(dataset.n_classes)
    was_training = model.training
    model.eval()
    out: dict = {"measure_n": int(len(y))}
    try:
        if "mixup" in names:
            out.update(_mixup(model, X, y, alpha, beta, loss, seed, mixup_exact))
        if "expansion" in names:
            out.update(_expansion(model, X, y, alpha, beta, loss))
        if "robustness" in names:
            out.update(_robustness(model, X, y, alpha, beta, dataset.n_classes))
    finally:
        model.train(was_training)
    return out


# ----------------------------------------------------------------------------- robust accuracy

def _margin_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample loss the attacks ascend: logistic on one logit, cross-entropy on K logits."""
    if out.ndim == 1 or out.shape[1] == 1:
        return nn.functional.binary_cross_entropy_with_logits(out.reshape(-1), y.to(out.dtype), reduction="sum")
    return nn.functional.cross_entropy(out, y, reduction="sum")


def _step(g: torch.Tensor, norm) -> torch.Tensor:
    if norm == math.inf:
        return g.sign()
    return g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)


def _project(delta: torch.Tensor, eps: float, norm) -> torch.Tensor:
    if norm == math.inf:
        return delta.clamp(-eps, eps)
    nrm = delta.norm(dim=1, keepdim=True)
    return delta * torch.clamp(eps / nrm.clamp_min(1e-30), max=1.0)


def _local_attack(model, X, y, eps, norm, attack, steps, step_size, generator):
    """FGSM (one step of size ε along sign(∇) for ℓ∞ or the unit gradient for ℓ2) or PGD
    (``steps`` projected steps of ``step_size``, random start in the ε-ball when ``generator`` is given),
    in the model's own dtype: the textbook attacks (Goodfellow et al. 2015; Madry et al. 2018)."""
    delta = torch.zeros_like(X)
    if attack == "pgd" and generator is not None:
        delta = (torch.rand(X.shape, generator=generator, dtype=X.dtype).to(X.device) * 2 - 1) * eps
        delta = _project(delta, eps, norm)
    n_steps, size = (1, eps) if attack == "fgsm" else (steps, step_size if step_size is not None else 2.5 * eps / steps)
    for _ in range(n_steps):
        delta.requires_grad_(True)
        g, = torch.autograd.grad(_margin_loss(model(X + delta), y), delta)
        delta = _project(delta.detach() + size * _step(g, norm), eps, norm)
    return (X + delta).detach()


ATTACK_BACKENDS = ("auto", "theory", "local")
PGD_STEPS = 10
PGD_RESTARTS = 1


def _theory_attack_inputs(model, xb, yb, eps, norm, attack, steps, step_size, restarts, generator):
    """Adversarial inputs from ``theory.adversarial_examples`` (float64): FGSM point, or PGD's best."""
    from theory import adversarial_examples

    loss = "logistic" if _is_binary(model, xb) else "softmax"
    if attack == "fgsm":
        return adversarial_examples(model, xb, yb.cpu().numpy(), eps, loss=loss, norm=norm, method="fgsm")
    return adversarial_examples(model, xb, yb.cpu().numpy(), eps, loss=loss, norm=norm, method="pgd", steps=steps,
                                restarts=restarts, step_size=step_size, generator=generator)


def _is_binary(model, xb) -> bool:
    with torch.no_grad():
        out = model(xb[:1])
    return out.ndim == 1 or out.shape[1] == 1


def accuracy_under_attack(model: nn.Module, X, y, eps: float, norm=math.inf, attack: str = "fgsm", *,
                          steps: int = PGD_STEPS, step_size: float | None = None, restarts: int = PGD_RESTARTS,
                          batch_size: int = 1024, seed: int | None = 0, backend: str = "auto") -> float:
    """Accuracy of ``model`` on ``(X, y)`` under an FGSM or PGD perturbation of size ``eps`` in ``norm``
    (2 or inf), ascending the training loss (logistic for one logit, cross-entropy for K), in eval
    mode, batch by batch. FGSM is the paper's attack (docs/theory.md §4.8); PGD is the stronger check.
    Inputs are not clipped to a pixel box.

    PGD takes ``steps`` steps of size ``step_size`` (default ``2.5·eps/steps``).
    ``backend="theory"`` (and ``"auto"``, the default) uses ``theory.adversarial_examples`` (float64;
    PGD from the FGSM point and ``restarts`` random points of the ball, keeping each sample's
    highest-loss point); ``"local"`` runs the textbook attack in the model's own dtype (PGD from one
    random start seeded by ``seed``). The theory PGD does 3× the gradient passes (three starts) in
    float64: about 8–10× the CPU time of the local attack on a float32 40-128-128-10 MLP
    (``python -m benchmarks --only attack``).
    """
    check_choice(attack, "attack", ("fgsm", "pgd"))
    check_choice(norm, "norm", (2, math.inf))
    eps = check_scalar(eps, "eps", float, min_val=0)
    steps = check_scalar(steps, "steps", int, min_val=1)
    restarts = check_scalar(restarts, "restarts", int, min_val=0)
    check_choice(backend, "backend", ATTACK_BACKENDS)
    if backend == "auto":
        backend = "theory"
    p = next(model.parameters())
    Xt = torch.as_tensor(np.asarray(X), dtype=p.dtype, device=p.device)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64, device=p.device)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for i in range(0, len(yt), batch_size):
            xb, yb = Xt[i:i + batch_size], yt[i:i + batch_size]
            if eps == 0:
                xa = xb
            elif backend == "theory":
                xa = _theory_attack_inputs(model, xb, yb, float(eps), norm, attack, steps, step_size, restarts,
                                           gen if gen is not None else torch.Generator().manual_seed(0))
                xa = xa.to(p.dtype)
            else:
                xa = _local_attack(model, xb, yb, float(eps), norm, attack, steps, step_size, gen)
            with torch.no_grad():
                out = model(xa)
                pred = (out.reshape(-1) > 0).long() if (out.ndim == 1 or out.shape[1] == 1) else out.argmax(1)
                correct += int((pred == yb).sum())
    finally:
        model.train(was_training)
    return correct / max(len(yt), 1)
