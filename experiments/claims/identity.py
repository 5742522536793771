"""Checks of Lemma 3.1 of Zhang et al. 2021 (docs/theory.md §3): C1 identity (I), C2 the expansion's order, C3 its accuracy."""
from __future__ import annotations

import math

import numpy as np

from ._common import Result, api, as_float, data_source, figure_data, fmt, logistic_fit, tiny, two_moons, verdict

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

    mixup_loss = api("mixup_loss")

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
                  "python -m pytest -q tests/test_mixup_loss.py -k identity")


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
        approx = api("mixup_expansion")(net, X, y, 1.0, scale=s).approx
        res.append(abs(exact - approx))
    slope = float(np.polyfit(np.log(C2_SCALES), np.log(res), 1)[0])
    std = api("mixup_expansion")(net, X, y, 1.0).standard
    at_zero = abs(mixup_loss_unmixed(net, X, y, 1.0, scale=0.0) - std)
    ok = abs(slope - 3.0) <= C2_SLOPE_TOL and at_zero <= 1e-12
    measured = {"log-log slope": fmt(slope, 3), "expected": "3 +- 0.2",
                "residuals": {f"s={s}": fmt(r, 2) for s, r in zip(C2_SCALES, res)},
                "abs(L_mix(0) - L_std)": tiny(at_zero),
                "problem": "two-moons n=30, tanh net 2-16-1 with biases (R3 != 0), alpha=1"}
    return Result("C2", verdict(ok), measured,
                  "mixup-theory figures approximation_order --scale paper")


def _c3_cached() -> dict | None:
    """Final-epoch relative errors per problem from the cached ``approximation`` figure data, if present."""
    meta, rows = figure_data("approximation")
    if not rows:
        return None
    last: dict[str, tuple[float, float]] = {}
    for row in rows:
        ex, ap, epoch = as_float(row.get("exact")), as_float(row.get("approx")), as_float(row.get("epoch"))
        if not (math.isfinite(ex) and math.isfinite(ap) and ex != 0):
            continue
        key = f"{row.get('dataset', '?')}/{row.get('model', '?')}"
        if key not in last or epoch >= last[key][0]:
            last[key] = (epoch, abs(ap - ex) / abs(ex))
    if not last:
        return None
    return {"final-epoch relative error": {k: fmt(v[1], 3) for k, v in sorted(last.items())},
            "two-moons max": fmt(max((v[1] for k, v in last.items() if k.startswith("two_moons")), default=math.nan), 3),
            "source": data_source("approximation", meta)}


def mixup_fit_logistic(X, y, alpha: float, nodes: int = 16) -> np.ndarray:
    """``(θ, b)`` minimising the exact Mixup loss of logistic regression (all pairs × Gauss–Jacobi, L-BFGS).

    The end point of Mixup training without SGD noise: written here (a few lines of torch) because
    ``theory.mixup_loss`` is not differentiable; it agrees with a derivative-free minimisation of
    ``theory.mixup_loss`` (checked in tests/test_check.py).
    """
    import torch

    import theory

    lam, w = (torch.as_tensor(v) for v in theory.MixupLambda(alpha).nodes(nodes))
    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    p = torch.zeros(X.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], lr=1, max_iter=200, tolerance_grad=1e-10, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")
    mix = lambda v: lam[:, None, None] * v[None, :, None] + (1 - lam)[:, None, None] * v[None, None, :]

    def closure():
        opt.zero_grad()
        zm = mix(Xt @ p[:-1] + p[-1])
        loss = (torch.nn.functional.softplus(zm) - mix(yt) * zm).mean((1, 2)) @ w
        loss.backward()
        return loss

    opt.step(closure)
    return p.detach().numpy()


def check_c3() -> Result:
    """C3: on two-moons at α = 1, how close L̃_mix = L_std + R1 + R2 + R3 is to the exact L_mix.

    Judged on Mixup-trained models (the paper's experiment trains with Mixup): logistic regression at
    the exact Mixup minimiser here, plus the two-moons runs of the cached ``approximation`` figure data
    when present. Holds when every relative error is ≤ ``C3_RTOL``. A standard (sklearn) fit is shown
    for context.
    """
    import theory

    mixup_loss, mixup_expansion = api("mixup_loss"), api("mixup_expansion")
    X, y = two_moons(100, seed=0)
    p = mixup_fit_logistic(X, y, 1.0)
    w, b = logistic_fit(X, y, intercept=True, C=1e4)
    rel = {}
    for label, (wt, bt) in {"Mixup minimiser": (p[:-1], p[-1:]), "standard fit (context)": (w, b)}.items():
        model = theory.linear_model(2, weight=wt, intercept=bt)
        exact = mixup_loss(model, X, y, 1.0)
        rel[f"{label}, norm theta={np.linalg.norm(wt):.2f}"] = abs(mixup_expansion(model, X, y, 1.0).approx - exact) / exact
    judged = [next(iter(rel.values()))]
    measured = {"logistic regression, relative error abs(L~_mix - L_mix)/L_mix at alpha=1": {k: fmt(v, 3) for k, v in rel.items()},
                "threshold": C3_RTOL, "problem": "two-moons n=100 (noise 0.1), logistic regression with intercept"}
    cached = _c3_cached()
    if cached is not None and math.isfinite(cached["two-moons max"]):
        measured["Mixup-trained models (figure data)"] = cached
        judged.append(cached["two-moons max"])
    return Result("C3", verdict(max(judged) <= C3_RTOL), measured,
                  "mixup-theory figures approximation --scale paper")


CHECKS = {"C1": check_c1, "C2": check_c2, "C3": check_c3}
