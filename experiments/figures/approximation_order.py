"""C2/C3: the second-order expansion's residual along the homotopy, and its relative error vs α.

Left: ``|L_mix(s) − L̃_mix(s)|`` against ``s`` on log–log axes, where
``L_mix(s) = (1/n) Σ_i E_{D̃} E_r l(θ, (x_i + s(1−λ)(r − x_i), y_i))`` (``theory.mixup_loss_unmixed``
with ``scale=s``) and ``L̃_mix(s) = L_std + s·R1 + s²·(R2 + R3)`` (``theory.mixup_expansion`` with
``scale=s``). For smooth ``h`` and ``f`` the residual is ``O(s³)`` (docs/theory.md §3): the fitted slope over
the smallest decade of s should be ≈ 3. Right: ``|L_mix − L̃_mix| / L_mix`` at ``s = 1`` across α —
the remainder is not small relative to R1 + R2 as α → 0, nor guaranteed small at α = 1.

Models are fitted by scikit-learn (logistic regression; a tanh MLP, smooth so R3 ≠ 0).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ._common import loglog_slope, select, sklearn_logistic, sklearn_tanh_mlp

NAME = "approximation_order"
CLAIMS = "C2/C3"
TITLE = "residual of the second-order expansion: O(s³) along the homotopy, and vs α"
VERSION = 1
SLOPE_FIT_DECADES = 1.0
"""The slope is fitted on the smallest decade of s: ``s ≤ 10^SLOPE_FIT_DECADES · min(s)``."""
ALPHAS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
SCALES = {
    "smoke": {"n": 80, "s_points": 5, "problems": [("two_moons", "logistic"), ("two_moons", "tanh_mlp")],
              "alphas": (0.1, 1.0, 4.0)},
    "default": {"n": 200, "s_points": 16, "s_min": 1e-3,
                "problems": [("two_moons", "logistic"), ("two_moons", "tanh_mlp"),
                             ("breast_cancer", "logistic"), ("breast_cancer", "tanh_mlp")],
                "alphas": ALPHAS},
}
SCALES["paper"] = SCALES["default"]


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    s_grid = [float(s) for s in np.logspace(np.log10(p.get("s_min", 1e-2)), 0, p["s_points"])]
    return [{"dataset": ds, "model": model, "n": p["n"], "hidden": [16, 16], "alpha": 1.0, "s": s_grid,
             "alphas": list(p["alphas"]), "seed": 0} for ds, model in p["problems"]]


def _model(task, ds):
    if task["model"] == "logistic":
        return sklearn_logistic(ds.X_train, ds.y_train)
    return sklearn_tanh_mlp(ds.X_train, ds.y_train, hidden=task["hidden"], seed=task["seed"])


def compute(task: dict, ctx) -> dict:
    import theory
    from experiments.datasets import load_dataset

    ds = load_dataset(task["dataset"], n=task["n"], seed=task["seed"])
    model = _model(task, ds).to(ctx.device)
    X, y = ds.X_train, ds.y_train
    # The terms R1, R2, R3 do not depend on s; ``Expansion.approx`` applies the homotopy scale.
    terms = theory.mixup_expansion(model, X, y, task["alpha"])
    exact_s, approx_s = [], []
    for s in task["s"]:
        exact_s.append(theory.mixup_loss_unmixed(model, X, y, task["alpha"], scale=s))
        approx_s.append(dataclasses.replace(terms, scale=s).approx)
    exact_a, approx_a, m1 = [], [], []
    for a in task["alphas"]:
        exact_a.append(theory.mixup_loss(model, X, y, a))
        approx_a.append(theory.mixup_expansion(model, X, y, a).approx)
        m1.append(theory.MixupLambda(a).m(1))
    return {"exact_s": exact_s, "approx_s": approx_s, "exact_alpha": exact_a, "approx_alpha": approx_a,
            "m1": m1, "standard": terms.standard, "n_train": len(y)}


def rows(task: dict, result: dict) -> list[dict]:
    base = {"dataset": task["dataset"], "model": task["model"], "seed": task["seed"]}
    out = []
    for s, e, a in zip(task["s"], result["exact_s"], result["approx_s"]):
        out.append({**base, "kind": "homotopy", "alpha": task["alpha"], "s": s, "exact": e, "approx": a,
                    "residual": abs(e - a)})
    for al, e, a, m1 in zip(task["alphas"], result["exact_alpha"], result["approx_alpha"], result["m1"]):
        out.append({**base, "kind": "alpha", "alpha": al, "s": 1.0, "exact": e, "approx": a,
                    "residual": abs(e - a), "rel_error": abs(e - a) / abs(e), "m1": m1})
    return out


def _problems(rows):
    return sorted({(r["dataset"], r["model"]) for r in rows})


def summarize(rows: list[dict]) -> dict:
    s_all = [r["s"] for r in rows if r["kind"] == "homotopy"]
    fit_max = min(s_all) * 10 ** SLOPE_FIT_DECADES * (1 + 1e-9) if s_all else float("nan")
    out = {"slope_fit_max_s": fit_max, "slope": {}, "rel_error_alpha1": {}}
    for ds, model in _problems(rows):
        h = [r for r in select(rows, dataset=ds, model=model, kind="homotopy") if r["s"] <= fit_max]
        out["slope"][f"{ds}/{model}"] = loglog_slope([r["s"] for r in h], [r["residual"] for r in h])
        a1 = select(rows, dataset=ds, model=model, kind="alpha", alpha=1.0)
        if a1:
            out["rel_error_alpha1"][f"{ds}/{model}"] = a1[0]["rel_error"]
    return out


def plot(rows: list[dict], summary: dict):
    from . import style

    fig, (ax1, ax2) = style.subplots(1, 2)
    for k, (ds, model) in enumerate(_problems(rows)):
        color = style.PALETTE[k % len(style.PALETTE)]
        label = f"{ds}, {model}"
        h = select(rows, dataset=ds, model=model, kind="homotopy")
        slope = summary["slope"].get(f"{ds}/{model}", float("nan"))
        ax1.loglog([r["s"] for r in h], [r["residual"] for r in h], "o-", color=color,
                   label=f"{label} (slope {slope:.2f})")
        a = select(rows, dataset=ds, model=model, kind="alpha")
        ax2.loglog([r["alpha"] for r in a], [r["rel_error"] for r in a], "o-", color=color, label=label)
    h = [r for r in rows if r["kind"] == "homotopy"]
    if h:
        s = np.array(sorted({r["s"] for r in h}))
        small = [r for r in h if r["s"] <= summary["slope_fit_max_s"] and r["residual"] > 0] or h
        anchor = np.exp(np.mean([np.log(max(r["residual"], 1e-300)) - 3 * np.log(r["s"]) for r in small]))
        ax1.loglog(s, anchor * s ** 3, "k--", linewidth=1, label="slope 3 reference")
    ax1.axvspan(min(r["s"] for r in h) if h else 0.01, summary["slope_fit_max_s"], color="0.85", alpha=0.5, zorder=0,
                label=f"slope fit (s ≤ {summary['slope_fit_max_s']:.2g})")
    ax1.set_xlabel("homotopy scale s")
    ax1.set_ylabel("|L_mix(s) − L̃_mix(s)|")
    ax1.set_title("residual vs s (α = 1)")
    style.plain_log_labels(ax1, "x", subs=(1.0,))
    ax2.axvline(1.0, color="0.5", linewidth=0.8, linestyle=":")
    alphas = sorted({r["alpha"] for r in rows if r["kind"] == "alpha"})
    if alphas:
        style.log_ticks(ax2, alphas)
        ax2.tick_params(axis="x", labelsize=7)
    ax2.set_xlabel("Mixup α (β = α)")
    ax2.set_ylabel("|L_mix − L̃_mix| / L_mix")
    ax2.set_title("relative error at s = 1 vs α")
    slopes = summary.get("slope", {})
    ok = bool(slopes) and all(abs(v - 3.0) <= 0.2 for v in slopes.values())
    verdict = (f"Verdict (C2): {'holds' if ok else 'FAILS'} — homotopy remainder slopes "
               + ", ".join(f"{v:.2f}" for v in slopes.values()) + " (expected 3 ± 0.2)")
    style.suptitle(fig, CLAIMS, TITLE, verdict)
    style.figure_legend(fig, [ax1], ncol=3)  # one legend below both panels (same colours), off the data
    return fig
