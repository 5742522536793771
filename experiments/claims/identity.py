"""Checks of Lemma 3.1 of Zhang et al. 2021 (docs/theory.md §3): C1 identity (I), C2 the expansion's order, C3 its accuracy."""
from __future__ import annotations

import math

import numpy as np

import theory

from . import COMMANDS
from ._common import (Result, data_source, empirical_result, figure_data, fmt, interval_text, logistic_fit, tiny,
                      two_moons, typed_rows, verdict)

C1_RTOL = 1e-9
"""Identity (I) is exact; both sides use the default Gauss–Jacobi rules (≤ 1e-12 relative here)."""
C2_SCALES = (0.005, 0.01, 0.02)
C2_SLOPE_TOL = 0.2
"""The homotopy residual L_mix(s) − L̃_mix(s) must have log–log slope 3 ± this."""
C3_RTOL = 0.10
"""C3 counts as holding when |L̃_mix − L_mix| / L_mix ≤ 10 % at α = 1 (our threshold, stated in paper_checks.md)."""


def check_c1() -> Result:
    """C1: the pair sum L_mix equals the un-mixed form (I), for logistic, softmax and (up to a constant) squared loss."""
    import torch
    from sklearn.datasets import make_blobs

    import theory
    from theory import mixup_loss_unmixed, squared_label_constant

    mixup_loss = theory.mixup_loss

    X, y = two_moons(60, seed=1)
    w, b = logistic_fit(X, y, intercept=True)
    lin = theory.linear_model(2, weight=w, intercept=b)
    cases = {}
    for a, bt in [(1.0, None), (0.5, 2.0)]:
        lhs = mixup_loss(lin, X, y, a, bt)
        rhs = mixup_loss_unmixed(lin, X, y, a, bt)
        cases[f"logistic a={a} b={bt or a}"] = abs(lhs - rhs) / abs(lhs)
    Xb, yb = make_blobs(24, centers=3, n_features=4, random_state=0)
    net = theory.smooth_mlp(4, [8], 3, generator=torch.Generator().manual_seed(0))
    lhs = mixup_loss(net, Xb, yb, 0.4, loss="softmax")
    rhs = mixup_loss_unmixed(net, Xb, yb, 0.4, loss="softmax")
    cases["softmax tanh-net a=0.4"] = abs(lhs - rhs) / abs(lhs)
    lhs = mixup_loss(lin, X, y, 2.0, loss="squared") + squared_label_constant(y, 2.0)
    rhs = mixup_loss_unmixed(lin, X, y, 2.0, loss="squared")
    cases["squared a=2 (+constant)"] = abs(lhs - rhs) / abs(lhs)
    worst = max(cases.values())
    measured = {"max relative difference": tiny(worst), "tolerance": C1_RTOL,
                "cases": {k: tiny(v) for k, v in cases.items()},
                "problem": "two-moons n=60 (logistic fit with intercept), 3-class blobs n=24 (tanh net)"}
    return Result("C1", verdict(worst <= C1_RTOL), measured,
                  "python -m pytest -q tests/theory/test_mixup_loss.py -k identity")


def check_c2() -> Result:
    """C2: L_mix(s) − L_std − s·R1 − s²(R2 + R3) = O(s³) along the homotopy (slope 3 on log–log)."""
    import torch

    import theory
    from theory import mixup_loss_unmixed

    X, y = two_moons(30, seed=2)
    net = theory.smooth_mlp(2, [16], generator=torch.Generator().manual_seed(1))
    res = []
    for s in C2_SCALES:
        exact = mixup_loss_unmixed(net, X, y, 1.0, scale=s)
        approx = theory.mixup_expansion(net, X, y, 1.0, scale=s).approx
        res.append(abs(exact - approx))
    slope = float(np.polyfit(np.log(C2_SCALES), np.log(res), 1)[0])
    std = theory.mixup_expansion(net, X, y, 1.0).standard
    at_zero = abs(mixup_loss_unmixed(net, X, y, 1.0, scale=0.0) - std)
    ok = abs(slope - 3.0) <= C2_SLOPE_TOL and at_zero <= 1e-12
    measured = {"log-log slope": fmt(slope, 3), "expected": "3 +- 0.2",
                "residuals": {f"s={s}": fmt(r, 2) for s, r in zip(C2_SCALES, res)},
                "abs(L_mix(0) - L_std)": tiny(at_zero),
                "problem": "two-moons n=30, tanh net 2-16-1 with biases (R3 != 0), alpha=1"}
    return Result("C2", verdict(ok), measured,
                  "mixup-theory figures approximation_order")


def mixup_fit_logistic(X, y, alpha: float, beta: float | None = None, *, nodes: int | None = None,
                       max_iter: int = 200) -> np.ndarray:
    """``(θ, b)`` minimising the exact Mixup loss of logistic regression (L-BFGS on
    ``theory.mixup_loss_separated``: O(n) per evaluation, so n = 10⁶ is feasible).

    The end point of Mixup training without SGD noise (C3; docs/theory.md §2.6). ``nodes=None``
    integrates over λ ~ Beta(α, β) exactly; an integer uses that Gauss–Jacobi rule. It agrees with a
    derivative-free minimisation of ``theory.mixup_loss`` (tests/experiments/test_check.py).
    """
    import torch

    import theory

    Xt = torch.as_tensor(X, dtype=torch.float64)
    model = theory.linear_model(Xt.shape[1], weight=np.zeros(Xt.shape[1]), intercept=[0.0])
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=max_iter, tolerance_grad=1e-10,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = theory.mixup_loss_separated(model, Xt, y, alpha, beta, nodes=nodes)
        loss.backward()
        return loss

    opt.step(closure)
    layer = model[0]
    return np.concatenate([layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy()])


C3_SEEDS = (0, 1, 2, 3, 4)
"""Two-moons draws (sklearn ``random_state``) for the Mixup-minimiser part of C3."""


def check_c3() -> Result:
    """C3: on two-moons at α = 1, how close L̃_mix = L_std + R1 + R2 + R3 is to the exact L_mix.

    An empirical claim, judged on Mixup-trained models (the paper's experiment trains with Mixup):
    logistic regression at the exact Mixup minimiser on ``len(C3_SEEDS)`` two-moons draws, plus the
    two-moons runs of the cached ``approximation`` figure data when present. Each gives the relative
    error's 95 % t interval over seeds; supported when it lies below ``C3_RTOL``, contradicted when
    above. A standard (sklearn) fit is shown for context.
    """
    import theory
    from experiments import stats
    from experiments.figures import approximation as figure

    mixup_loss, mixup_expansion = theory.mixup_loss, theory.mixup_expansion

    def rel_error(wt, bt, X, y):
        model = theory.linear_model(2, weight=wt, intercept=bt)
        exact = mixup_loss(model, X, y, 1.0)
        return abs(mixup_expansion(model, X, y, 1.0).approx - exact) / exact, float(np.linalg.norm(wt))

    errors, norms = [], []
    for seed in C3_SEEDS:
        X, y = two_moons(100, seed=seed)
        p = mixup_fit_logistic(X, y, 1.0)
        e, nrm = rel_error(p[:-1], p[-1:], X, y)
        errors.append(e)
        norms.append(nrm)
    X, y = two_moons(100, seed=C3_SEEDS[0])
    w, b = logistic_fit(X, y, intercept=True, C=1e4)
    std_err, std_norm = rel_error(w, b, X, y)
    iv = stats.mean_interval(errors)
    intervals = {"two_moons/logistic at the exact Mixup minimiser (n=100)":
                 {**iv.as_dict(), "decision": stats.decide(iv, boundary=C3_RTOL, predicted="below")}}
    extra = {"threshold": C3_RTOL,
             "Mixup minimiser": {"mean norm theta": fmt(float(np.mean(norms)), 3),
                                 "relative errors by seed": [fmt(e, 3) for e in errors]},
             "standard fit (context, seed 0)": {"norm theta": fmt(std_norm, 3), "relative error": fmt(std_err, 3)}}
    source = "two-moons n=100 (noise 0.1), logistic regression with intercept"
    meta, rows = figure_data("approximation")
    if rows:
        rows = typed_rows(rows)
        if {"dataset", "model", "epoch", "rel_error"} <= rows[0].keys():
            cached = figure.claim_intervals(rows)
            intervals.update({f"{k} final epoch (figure data)": v for k, v in cached.items() if v["judged"]})
            extra["context (not judged)"] = {k: interval_text(v) for k, v in cached.items() if not v["judged"]}
            source += "; " + data_source("approximation", meta)
    decisions = [v["decision"] for v in intervals.values()]
    return empirical_result("C3", intervals, stats.overall(decisions), stats.tally(decisions),
                            what="relative error abs(L~_mix - L_mix)/L_mix at alpha=1 (mean over seeds, 95% t interval)",
                            source=source, command=COMMANDS["C3"], extra=extra)


CHECKS = {"C1": check_c1, "C2": check_c2, "C3": check_c3}
