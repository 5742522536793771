"""Check of the estimators used in practice (docs/theory.md §2.7): C14, the exact expectation and variance
of one training step's Mixup loss against a simulation of the training loop."""
from __future__ import annotations

import numpy as np

from . import COMMANDS
import theory

from ._common import Result, fmt, tiny, two_moons, verdict

C14_Z = 4.5
"""Simulated mean and variance of a step must agree with the exact values within this many standard errors."""
C14_RTOL = 1e-12
"""The closed forms (uniform = L_mix; even flip = (n L_mix − L_std)/(n − 1)) hold to rounding."""
C14_DRAWS = 1500
C14_SCHEMES = ("uniform", "permutation", "flip", "flip-per-sample")


def check_c14() -> Result:
    """C14: simulated training steps agree with the exact expectation and variance (z-scores), and the
    closed forms in L_mix and L_std hold."""
    import torch

    from experiments.figures._common import sklearn_tanh_mlp
    from experiments.simulate import simulate_steps
    from experiments.training import task_loss

    expectation, variance, mixup_loss = theory.estimator_expectation, theory.estimator_variance, theory.mixup_loss
    X, y = two_moons(40, seed=2)
    net = sklearn_tanh_mlp(X, y, hidden=(8,), seed=0)  # fitted: L_std < L_mix, so the biases show
    alpha, s = 1.0, 0.1
    zs, bias, ratio = {}, {}, {}
    for B in (8, 5):  # an even batch, and an odd one (a flip pairs its middle with itself)
        for k, scheme in enumerate(C14_SCHEMES):
            kw = dict(scheme=scheme, batch_size=B, label_smoothing=s)
            e = expectation(net, X, y, alpha, **kw)
            v = variance(net, X, y, alpha, **kw)
            sim = simulate_steps(net, X, y, alpha, draws=C14_DRAWS, generator=np.random.default_rng([14, B, k]), **kw)
            zs[f"{scheme} B={B}"] = ((sim.mean - e) / sim.mean_stderr, (sim.variance - v) / sim.variance_stderr)
            if B == 8:
                bias[scheme], ratio[scheme] = e, v
    worst = max(abs(z) for pair in zs.values() for z in pair)
    # closed forms (no smoothing): uniform = L_mix, even flip = (n L_mix − L_std)/(n − 1)
    n = len(X)
    with torch.no_grad():
        f = net(torch.as_tensor(X, dtype=torch.float64))
        std = float(task_loss(f, torch.as_tensor(y, dtype=torch.float64), 2))
    mix = mixup_loss(net, X, y, alpha)
    closed = max(abs(expectation(net, X, y, alpha, scheme="uniform", batch_size=8) - mix) / mix,
                 abs(expectation(net, X, y, alpha, scheme="flip", batch_size=8) - (n * mix - std) / (n - 1))
                 / mix)
    mix_s = bias["uniform"]
    measured = {
        "max abs z (mean, variance)": fmt(worst, 3), "threshold": C14_Z,
        "z by scheme (mean, variance)": {k: f"({fmt(a, 2)}, {fmt(b, 2)})" for k, (a, b) in zs.items()},
        "closed forms, max relative difference": tiny(closed), "tolerance": C14_RTOL,
        "E[step]/L_mix - 1 at B=8": {k: fmt(v / mix_s - 1, 3) for k, v in bias.items() if k != "uniform"},
        "Var per example / per batch (flip, B=8)": fmt(ratio["flip-per-sample"] / ratio["flip"], 3),
        "problem": f"two-moons n={n}, tanh net 2-8-1 (fitted by scikit-learn), alpha=1, label smoothing 0.1, batches of 8 and 5, "
                   f"{C14_DRAWS} simulated steps per scheme",
    }
    ok = worst <= C14_Z and closed <= C14_RTOL
    return Result("C14", verdict(ok), measured, COMMANDS["C14"],
                  reason="" if ok else "simulated steps or closed forms disagree with the exact moments")


CHECKS = {"C14": check_c14}
