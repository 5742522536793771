"""C2/C3: the second-order expansion's residual along the homotopy, and its relative error vs α.

Left: ``|L_mix(s) − L̃_mix(s)|`` against ``s`` on log–log axes, where
``L_mix(s) = (1/n) Σ_i E_{D̃} E_r l(θ, (x_i + s(1−λ)(r − x_i), y_i))`` (``theory.mixup_loss_unmixed``
with ``scale=s``) and ``L̃_mix(s) = L_std + s·R1 + s²·(R2 + R3)`` (``theory.mixup_expansion`` with
``scale=s``). For smooth ``h`` and ``f`` the residual is ``O(s³)`` (docs/theory.md §3): the fitted slope over
the smallest decade of s should be ≈ 3. Right: ``|L_mix − L̃_mix| / L_mix`` at ``s = 1`` across α —
the remainder is not small relative to R1 + R2 as α → 0, nor guaranteed small at α = 1.

Beside the paper's expansion, the re-centred one of Carratino et al. (``form="carratino"``, docs/theory.md
§3.4–§3.5) along its own homotopy (``theory.mixup_loss_recentred`` with ``scale=s``, residual also O(s³))
and across α against the same exact ``L_mix`` (rows of kind ``homotopy_carratino``; ``approx_carratino``,
``rel_error_carratino`` in the α rows). Across α, the relative errors are averaged over the seeds (each
seed: another data subset and model fit) with 95 % t intervals.

Models are fitted by scikit-learn (logistic regression; a tanh MLP, smooth so R3 ≠ 0).

Quadrature (docs/theory.md §2): the plotted quantities are differences of nearly equal losses, so
each exact value is computed to an error far below the residual it enters, and no further. Along the
homotopy the Gauss–Jacobi rule is doubled from ``HOMOTOPY_FIRST_NODES`` nodes until two successive
rules agree to ``QUAD_TO_RESIDUAL`` × |residual| (the integrand is a polynomial in ``s(1−λ)`` up to
O(s^{2q}), so a few nodes are exact to rounding at small s). Across α, ``L_mix(α) = E_{Beta(α,α)} H`` with
one function ``H(λ)`` (the mean loss over all pairs mixed at λ) for every α: ``alpha_sweep`` tabulates H
once at nested Chebyshev–Lobatto points and integrates its interpolant against each Beta(α, α), doubling
the degree until every α's value is resolved to ``ALPHA_RTOL[model]`` (it agrees with a Gauss–Jacobi
doubling per α, ``theory.mixup_loss_error``, and for logistic regression with the separated method, to
1e-13, at a fifth to a fifteenth of the cost). At ``s = 1`` both homotopies are ``L_mix(α = 1)`` itself,
so those two points take the α-sweep's value (their ``nodes`` is the product rule's degree). Every row
stores its error estimate (``quad_error``) and the summary the largest ratio ``quad_error / residual``.

Scale: the default scale's homotopy has 8 values of s: 4 in the decade of the slope fit (1e-3 to 1e-2,
both ends, ``SLOPE_FIT_DECADES``), then 2 per decade up to 1 (where the residual only bends away from
s³); 8 α's and 5 seeds for each of the 6 problems. The exact losses of the tanh MLPs along the two
homotopies take ~2/3 of the time. Version 3 had 16 values of s (6 in the slope fit), a Gauss–Jacobi
doubling per α and homotopy rules doubled from 4 nodes; one task after another it took 267 CPU-seconds
against ~60 now (2-core machine, lightly loaded); with the same seeds its relative errors agree with these
to 1e-12 and its slopes to 0.01.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from theory import ApproximationWarning

from ._common import loglog_slope, select, sklearn_logistic, sklearn_tanh_mlp

NAME = "approximation_order"
CLAIMS = "C2/C3"
TITLE = "residual of the second-order expansion: O(s³) along the homotopy, and vs α"
VERSION = 4
EXPECTED_WARNINGS = {"expansion far from the exact loss at s = 1": ApproximationWarning}
"""The finding itself (the paper's L̃_mix is far from L_mix on these fits): counted in the data, not printed."""
HOMOTOPY_FIRST_NODES = 3
"""The homotopy's node doubling compares Q(3) with Q(6) first (exact to rounding for s ≲ 0.05: the
rules' error is O(s⁶), the residual O(s³)); 3 → 6 → 12 → … costs ~10 % less than 4 → 8 → 16 → …
here."""
HOMOTOPY_MAX_NODES = 384
QUAD_TO_RESIDUAL = 1e-4
"""Homotopy: stop doubling once |Q(q) − Q(q/2)| ≤ QUAD_TO_RESIDUAL · |Q(q) − L̃_mix(s)| (or rounding)."""
ROUNDING = 64 * float(np.finfo(np.float64).eps)
"""Relative rounding floor of a summed loss: below it two rules cannot be told apart."""
ALPHA_RTOL = {"logistic": 1e-10, "tanh_mlp": 1e-9}
"""Relative tolerance of the exact L_mix across α (single seeds' relative residuals go down to ~1e-4). Logistic
regression's margins reach ~100 on breast cancer: its integrand is nearly kinked in λ, and a Gauss–Jacobi
doubling per α once agreed by chance to 1e-9 at α = 0.1 while 1e-8 off; at 1e-10, and with the α-sweep's
product rule (all α's must agree at once), the values match the separated method's to 1e-13."""
SLOPE_FIT_DECADES = 1.0
"""The slope is fitted on the smallest decade of s: ``s ≤ 10^SLOPE_FIT_DECADES · min(s)``."""
ALPHAS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
SCALES = {
    "smoke": {"n": 80, "s_points": 5, "problems": [("two_moons", "logistic"), ("two_moons", "tanh_mlp")],
              "alphas": (0.1, 1.0, 4.0), "seeds": [0]},
    "default": {"n": 200, "s_min": 1e-3, "s_fit_points": 4, "s_per_decade": 2,
                "problems": [("two_moons", "logistic"), ("two_moons", "tanh_mlp"),
                             ("breast_cancer", "logistic"), ("breast_cancer", "tanh_mlp"),
                             ("digits01", "logistic"), ("digits01", "tanh_mlp")],
                "alphas": ALPHAS, "seeds": [0, 1, 2, 3, 4]},
}
SCALES["paper"] = SCALES["default"]


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    lo = np.log10(p.get("s_min", 1e-2))
    if "s_fit_points" in p:  # s_fit_points in the slope fit's decade(s), then s_per_decade up to s = 1
        top = lo + SLOPE_FIT_DECADES
        above = np.logspace(top, 0, round(-top * p["s_per_decade"]) + 1)[1:]
        s_grid = [float(s) for s in np.concatenate([np.logspace(lo, top, p["s_fit_points"]), above])]
    else:
        s_grid = [float(s) for s in np.logspace(lo, 0, p["s_points"])]
    return [{"dataset": ds, "model": model, "n": p["n"], "hidden": [16, 16], "alpha": 1.0, "s": s_grid,
             "alphas": list(p["alphas"]), "seed": seed} for ds, model in p["problems"] for seed in p["seeds"]]


def cost(task: dict) -> float:
    """Rough seconds on one core (for scheduling only): the tanh MLP's homotopy losses dominate."""
    return (4.0 if task["model"] == "tanh_mlp" else 0.7) * (task["n"] / 200) ** 2 * len(task["s"]) / 8


def _model(task, ds):
    if task["model"] == "logistic":
        return sklearn_logistic(ds.X_train, ds.y_train)
    return sklearn_tanh_mlp(ds.X_train, ds.y_train, hidden=task["hidden"], seed=task["seed"])


def _doubled(loss_at, approx: float) -> tuple[float, float, int]:
    """``(value, error estimate, nodes)``: ``loss_at(q)`` with rules of 3, 6, 12, … nodes
    (``HOMOTOPY_FIRST_NODES``) until two agree to ``QUAD_TO_RESIDUAL`` × |value − approx| (or to rounding).

    The returned value is the finer rule's; the estimate ``|Q(q) − Q(q/2)|`` bounds the coarser
    rule's error, so it is conservative for the returned one (Gauss rules converge geometrically on
    the analytic integrand of a smooth model)."""
    q = HOMOTOPY_FIRST_NODES
    prev = loss_at(q)
    while True:
        q *= 2
        cur = loss_at(q)
        err = abs(cur - prev)
        if err <= max(QUAD_TO_RESIDUAL * abs(cur - approx), ROUNDING * abs(cur)) or q >= HOMOTOPY_MAX_NODES:
            return cur, err, q
        prev = cur


def homotopy_point(model, X, y, alpha: float, s: float, approx: float) -> tuple[float, float, int]:
    """``(L_mix(s), error estimate, nodes)``: ``theory.mixup_loss_unmixed`` at scale ``s``, node doubling
    (:func:`_doubled`) until two rules agree far below the residual."""
    import theory

    return _doubled(lambda q: theory.mixup_loss_unmixed(model, X, y, alpha, scale=s, nodes=q), approx)


def recentred_point(model, X, y, alpha: float, s: float, approx: float) -> tuple[float, float, int]:
    """``homotopy_point`` for the re-centred homotopy (``theory.mixup_loss_recentred``): ``(value, error
    estimate, nodes per component)``."""
    import theory

    return _doubled(lambda q: theory.mixup_loss_recentred(model, X, y, alpha, scale=s, nodes=q), approx)


ALPHA_FIRST_DEGREE = 32
"""The α-sweep compares the degree-32 and degree-64 product rules first (then 128, … up to the maximum)."""
ALPHA_MAX_DEGREE = 1024


def _product_weights(alpha: float, t: np.ndarray) -> np.ndarray:
    """Weights ``W_k = E ℓ_k(λ)``, λ ~ Beta(α, α), of the interpolating polynomial through the
    Chebyshev–Lobatto points ``t`` (degree N = len(t) − 1): ``E_λ H(λ) ≈ Σ_k W_k H(t_k)``.

    ``ℓ_k`` (barycentric form, stable) has degree N, so a Gauss–Jacobi rule of N/2 + 1 nodes integrates it
    exactly; the product rule's error is at most ``max |H − p_N|`` (λ's law has total mass 1).
    """
    import theory

    N = len(t) - 1
    lam, w = theory.MixupLambda(alpha).nodes(N // 2 + 1)
    b = np.where(np.arange(N + 1) % 2, -1.0, 1.0)
    b[[0, -1]] *= 0.5
    diff = lam[:, None] - t[None, :]
    hit = diff == 0  # a node on a point (λ = ½ for odd M): ℓ_k there is the indicator of k
    with np.errstate(divide="ignore", invalid="ignore"):
        c = b / diff
        L = c / c.sum(1, keepdims=True)
    rows = hit.any(1)
    L[rows] = hit[rows]
    return w @ L


def alpha_sweep(model, X, y, alphas, rtol: float) -> tuple[list[float], list[float], int]:
    """``(L_mix(α) for each α, error estimates, degree)`` with one set of pair sums for all α.

    ``H(λ) = (1/n²) Σ_ij l(f(λx_i + (1−λ)x_j), λy_i + (1−λ)y_j)`` is the same function for every α
    (``L_mix(α) = E_{Beta(α,α)} H``) and symmetric under λ ↔ 1 − λ; it is tabulated at the
    Chebyshev–Lobatto points of [0, 1] with λ ≥ ½ (nested: doubling the degree reuses every value) and
    integrated against each Beta(α, α) by the product rule of its interpolant (``_product_weights``).
    The degree doubles from ``ALPHA_FIRST_DEGREE`` until, for every α, two successive rules agree to
    ``rtol`` relative; the estimate is ``|Q(N) − Q(N/2)|`` plus rounding, as in ``theory.mixup_loss_error``,
    which doubles a Gauss–Jacobi rule per α (n² evaluations per node and α): for the eight α's here
    that took 5–15× longer, with the same values (to 1e-13; tests/test_approximation_order.py).
    """
    import warnings

    import theory

    table: dict[tuple[int, int], float] = {}  # (k, N) in lowest terms → H at (1 + cos(πk/N))/2

    def values(N: int) -> np.ndarray:
        keys = [(k // np.gcd(k, N), N // np.gcd(k, N)) for k in range(N // 2 + 1)]
        new = sorted({key for key in keys if key not in table})
        if new:
            lam = [(1 + np.cos(np.pi * k / m)) / 2 for k, m in new]
            for key, v in zip(new, theory.mixup_loss_at(model, X, y, lam).tolist()):
                table[key] = v
        half = np.array([table[key] for key in keys])
        return np.concatenate([half, half[-2::-1]])  # H(1 − λ) = H(λ); N is even

    def rule(N: int) -> np.ndarray:
        t = (1 + np.cos(np.pi * np.arange(N + 1) / N)) / 2
        h = values(N)
        return np.array([_product_weights(a, t) @ h for a in alphas])

    N = ALPHA_FIRST_DEGREE
    prev = rule(N)
    while True:
        N *= 2
        cur = rule(N)
        err = np.abs(cur - prev) + ROUNDING * np.abs(cur)
        if np.all(err <= rtol * np.abs(cur)):
            return cur.tolist(), err.tolist(), N
        if N >= ALPHA_MAX_DEGREE:
            warnings.warn(f"approximation_order: the α-sweep's error estimate {np.max(err / np.abs(cur)):.1e} "
                          f"(relative) is above rtol = {rtol:g} at degree {N}; the rows record it",
                          theory.AccuracyWarning, stacklevel=2)
            return cur.tolist(), err.tolist(), N
        prev = cur


def _homotopy(point, terms, model, X, y, task, at_one) -> tuple[list, list, list, list]:
    """``point`` at every s of the task, except that at ``s = 1`` both homotopies are ``L_mix`` itself: the
    α-sweep's value ``at_one = (value, error, nodes)`` (resolved to ``ALPHA_RTOL``) is taken there."""
    exact, approx, err, nodes = [], [], [], []
    for s in task["s"]:
        a = dataclasses.replace(terms, scale=s).approx
        value, e, q = at_one if s == 1.0 and at_one is not None else point(model, X, y, task["alpha"], s, a)
        exact.append(value)
        approx.append(a)
        err.append(e)
        nodes.append(q)
    return exact, approx, err, nodes


def compute(task: dict, ctx) -> dict:
    import theory
    from experiments.datasets import load_dataset

    ds = load_dataset(task["dataset"], n=task["n"], seed=task["seed"])
    model = _model(task, ds).to(ctx.device)
    X, y = ds.X_train, ds.y_train
    alphas = task["alphas"]
    exact_a, err_a, degree = alpha_sweep(model, X, y, alphas, ALPHA_RTOL[task["model"]])
    k = alphas.index(task["alpha"]) if task["alpha"] in alphas else None
    at_one = None if k is None else (exact_a[k], err_a[k], degree)
    # The terms R1, R2, R3 do not depend on s; ``Expansion.approx`` applies the homotopy scale.
    terms = theory.mixup_expansion(model, X, y, task["alpha"])
    exact_s, approx_s, err_s, nodes_s = _homotopy(homotopy_point, terms, model, X, y, task, at_one)
    recentred = theory.mixup_expansion(model, X, y, task["alpha"], form="carratino")
    exact_c, approx_c, err_c, nodes_c = _homotopy(recentred_point, recentred, model, X, y, task, at_one)
    approx_a, approx_ca, m1 = [], [], []
    for a in alphas:
        approx_a.append((terms if a == task["alpha"] else theory.mixup_expansion(model, X, y, a)).approx)
        approx_ca.append((recentred if a == task["alpha"]
                          else theory.mixup_expansion(model, X, y, a, form="carratino")).approx)
        m1.append(theory.MixupLambda(a).m(1))
    return {"exact_s": exact_s, "approx_s": approx_s, "quad_error_s": err_s, "nodes_s": nodes_s,
            "exact_alpha": exact_a, "approx_alpha": approx_a, "quad_error_alpha": err_a,
            "m1": m1, "standard": terms.standard, "n_train": len(y),
            "exact_c": exact_c, "approx_c": approx_c, "quad_error_c": err_c, "nodes_c": nodes_c,
            "approx_carratino_alpha": approx_ca}


def rows(task: dict, result: dict) -> list[dict]:
    base = {"dataset": task["dataset"], "model": task["model"], "seed": task["seed"]}
    out = []
    for s, e, a, err, q in zip(task["s"], result["exact_s"], result["approx_s"], result["quad_error_s"],
                               result["nodes_s"]):
        out.append({**base, "kind": "homotopy", "alpha": task["alpha"], "s": s, "exact": e, "approx": a,
                    "residual": abs(e - a), "quad_error": err, "nodes": q})
    for s, e, a, err, q in zip(task["s"], result["exact_c"], result["approx_c"], result["quad_error_c"],
                               result["nodes_c"]):
        out.append({**base, "kind": "homotopy_carratino", "alpha": task["alpha"], "s": s, "exact": e, "approx": a,
                    "residual": abs(e - a), "quad_error": err, "nodes": q})
    for al, e, a, err, m1, c in zip(task["alphas"], result["exact_alpha"], result["approx_alpha"],
                                    result["quad_error_alpha"], result["m1"], result["approx_carratino_alpha"]):
        out.append({**base, "kind": "alpha", "alpha": al, "s": 1.0, "exact": e, "approx": a,
                    "residual": abs(e - a), "rel_error": abs(e - a) / abs(e), "quad_error": err, "m1": m1,
                    "approx_carratino": c, "rel_error_carratino": abs(e - c) / abs(e)})
    return out


def _problems(rows):
    return sorted({(r["dataset"], r["model"]) for r in rows})


def _slope(rows, ds, model, kind, fit_max) -> float:
    """Mean over seeds of the per-seed log–log slope of the residual on ``s ≤ fit_max``."""
    slopes = []
    for seed in sorted({r["seed"] for r in rows}):
        h = [r for r in select(rows, dataset=ds, model=model, kind=kind, seed=seed) if r["s"] <= fit_max]
        if h:
            slopes.append(loglog_slope([r["s"] for r in h], [r["residual"] for r in h]))
    return float(np.mean(slopes)) if slopes else float("nan")


def summarize(rows: list[dict]) -> dict:
    from experiments import stats

    s_all = [r["s"] for r in rows if r["kind"] == "homotopy"]
    fit_max = min(s_all) * 10 ** SLOPE_FIT_DECADES * (1 + 1e-9) if s_all else float("nan")
    ratios = [r["quad_error"] / r["residual"] for r in rows if r["residual"] > 0]
    out = {"slope_fit_max_s": fit_max, "slope": {}, "slope_carratino": {}, "rel_error_alpha1": {},
           "rel_error_alpha1_carratino": {}, "intervals_alpha1": {},
           "max_quad_error_over_residual": max(ratios) if ratios else float("nan"),
           "seeds": sorted({r["seed"] for r in rows})}
    for ds, model in _problems(rows):
        key = f"{ds}/{model}"
        out["slope"][key] = _slope(rows, ds, model, "homotopy", fit_max)
        out["slope_carratino"][key] = _slope(rows, ds, model, "homotopy_carratino", fit_max)
        a1 = select(rows, dataset=ds, model=model, kind="alpha", alpha=1.0)
        if a1:
            out["rel_error_alpha1"][key] = float(np.mean([r["rel_error"] for r in a1]))
            out["rel_error_alpha1_carratino"][key] = float(np.mean([r["rel_error_carratino"] for r in a1]))
            out["intervals_alpha1"][key] = {
                form: stats.mean_interval([r[col] for r in a1]).as_dict()
                for form, col in (("paper", "rel_error"), ("carratino", "rel_error_carratino"))}
    return out


def _geomean_by_s(rs):
    s = sorted({r["s"] for r in rs})
    return s, [float(np.exp(np.mean([np.log(max(r["residual"], 1e-300)) for r in rs if r["s"] == v]))) for v in s]


def plot(rows: list[dict], summary: dict):
    from experiments import stats

    from . import style

    fig, (ax1, ax2) = style.subplots(1, 2)
    fig.set_figheight(fig.get_figheight() + 2.0)  # room for the two-form legend below the panels
    for k, (ds, model) in enumerate(_problems(rows)):
        color = style.PALETTE[k % len(style.PALETTE)]
        label = f"{ds}, {model}"
        key = f"{ds}/{model}"
        slope, slope_c = summary["slope"].get(key, float("nan")), summary["slope_carratino"].get(key, float("nan"))
        s, res = _geomean_by_s(select(rows, dataset=ds, model=model, kind="homotopy"))
        ax1.loglog(s, res, "o-", color=color, markersize=3, label=f"{label}: paper (slope {slope:.2f})")
        s, res = _geomean_by_s(select(rows, dataset=ds, model=model, kind="homotopy_carratino"))
        ax1.loglog(s, res, "d:", color=color, markersize=3, label=f"{label}: re-centred (slope {slope_c:.2f})")
        a = select(rows, dataset=ds, model=model, kind="alpha")
        alphas = sorted({r["alpha"] for r in a})
        for col, fmt, marker in (("rel_error", "-", "o"), ("rel_error_carratino", ":", "d")):
            ivs = [stats.mean_interval([r[col] for r in a if r["alpha"] == al]) for al in alphas]
            mean = [i.mean for i in ivs]
            lo = [max(i.low, m / 4) if np.isfinite(i.low) else m for i, m in zip(ivs, mean)]  # log axis
            ax2.plot(alphas, mean, linestyle=fmt, marker=marker, markersize=3, color=color)
            ax2.fill_between(alphas, lo, [i.high if np.isfinite(i.high) else m for i, m in zip(ivs, mean)],
                             color=color, alpha=0.15, linewidth=0)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    h = [r for r in rows if r["kind"] == "homotopy"]
    if h:
        s = np.array(sorted({r["s"] for r in h}))
        small = [r for r in h if r["s"] <= summary["slope_fit_max_s"] and r["residual"] > 0] or h
        anchor = np.exp(np.mean([np.log(max(r["residual"], 1e-300)) - 3 * np.log(r["s"]) for r in small]))
        ax1.loglog(s, anchor * s ** 3, "k--", linewidth=1, label="slope 3 reference")
    ax1.axvspan(min(r["s"] for r in h) if h else 0.01, summary["slope_fit_max_s"], color="0.85", alpha=0.5, zorder=0,
                label=f"slope fit (s ≤ {summary['slope_fit_max_s']:.2g})")
    ax1.set_xlabel("homotopy scale s")
    ax1.set_ylabel("|exact(s) − expansion(s)|")
    quad = summary.get("max_quad_error_over_residual", float("nan"))
    ax1.set_title("residual vs s (α = 1; geometric mean over seeds)\npaper (solid), re-centred (dotted)"
                  + (f"\nquadrature error ≤ {quad:.0e} × residual (all points)" if quad == quad else ""), fontsize=9)
    style.plain_log_labels(ax1, "x", subs=(1.0,))
    ax2.axvline(1.0, color="0.5", linewidth=0.8, linestyle=":")
    alphas = sorted({r["alpha"] for r in rows if r["kind"] == "alpha"})
    if alphas:
        style.log_ticks(ax2, alphas)
        ax2.tick_params(axis="x", labelsize=7)
    ax2.set_xlabel("Mixup α (β = α)")
    ax2.set_ylabel("|L_mix − expansion| / L_mix")
    seeds = len(summary.get("seeds", [0]))
    ax2.set_title(f"relative error at s = 1 vs α\npaper (solid), re-centred (dotted)\n"
                  f"mean over {seeds} seed{'s' if seeds > 1 else ''}" + (", 95 % t bands" if seeds > 1 else ""),
                  fontsize=9)
    slopes = summary.get("slope", {})
    ok = bool(slopes) and all(abs(v - 3.0) <= 0.2 for v in slopes.values())
    verdict = (f"Verdict (C2): {'holds' if ok else 'FAILS'} — homotopy remainder slopes "
               + ", ".join(f"{v:.2f}" for v in slopes.values()) + " (expected 3 ± 0.2)")
    style.suptitle(fig, CLAIMS, TITLE, verdict)
    style.figure_legend(fig, [ax1], ncol=3)  # one legend below both panels (same colours), off the data
    return fig
