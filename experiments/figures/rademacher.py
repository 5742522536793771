"""C10: Rademacher complexity of the Mixup-induced (ellipsoid) class vs the ridge class across intrinsic dimension.

Data ``x = A z`` with ``rank(Σ₀) = r`` in ambient dimension ``d = 100`` (``theory.generalization.
lowrank_gaussian``, unit variance per coordinate on average, so ``tr Σ ≈ d`` whatever r). One task per r:
``theory.generalization.intrinsic_dimension_sweep`` (issue 4) computes the Monte-Carlo Rademacher
complexity of ``E_c = {θᵀΣ̂₀θ ≤ c}`` (exact per sign vector: ``√(c/n)‖Pξ‖``) and of the ridge ball
``{‖θ‖² ≤ c}``, with the bounds ``√(c r/n)`` and ``√(c tr Σ̂₀/n)``. The ellipsoid class grows like √r;
the ridge class stays at the ambient √d.
"""
from __future__ import annotations

import numpy as np

from ._common import loglog_slope

NAME = "rademacher"
CLAIMS = "C10"
TITLE = "Rademacher complexity: Mixup (ellipsoid) class vs ridge class across intrinsic dimension r (d = 100)"
VERSION = 1
RANKS = [1, 2, 5, 10, 20, 50, 100]
SCALES = {
    "smoke": {"ranks": [1, 10, 100], "n": 200, "draws": 200},
    "default": {"ranks": RANKS, "n": 500, "draws": 2000},
}
SCALES["paper"] = SCALES["default"]


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    return [{"r": r, "d": 100, "n": p["n"], "c": 1.0, "draws": p["draws"], "seed": 0} for r in p["ranks"]]


def compute(task: dict, ctx) -> dict:
    from theory import intrinsic_dimension_sweep

    rng = np.random.default_rng([task["seed"], task["r"]])
    (row,) = intrinsic_dimension_sweep([task["r"]], d=task["d"], n=task["n"], c=task["c"], draws=task["draws"],
                                       generator=rng)
    return row


def rows(task: dict, result: dict) -> list[dict]:
    return [{"seed": task["seed"], "draws": task["draws"], **result}]


def summarize(rows: list[dict]) -> dict:
    rs = sorted(rows, key=lambda r: r["r"])
    return {"ellipsoid_slope_vs_r": loglog_slope([r["r"] for r in rs], [r["ellipsoid"] for r in rs]),
            "ridge_slope_vs_r": loglog_slope([r["r"] for r in rs], [r["ridge"] for r in rs]),
            "ellipsoid_below_bound": all(r["ellipsoid"] <= r["ellipsoid_bound"] + 4 * r["ellipsoid_se"] for r in rs),
            "ridge_below_bound": all(r["ridge"] <= r["ridge_bound"] + 4 * r["ridge_se"] for r in rs),
            "ratio_ellipsoid_over_ridge": {str(r["r"]): r["ellipsoid"] / r["ridge"] for r in rs}}


def plot(rows: list[dict], summary: dict):
    from . import style

    rs = sorted(rows, key=lambda r: r["r"])
    r_vals = [r["r"] for r in rs]
    fig, (ax1, ax2) = style.subplots(1, 2)
    for k, (cls, label) in enumerate([("ellipsoid", "Mixup class θᵀΣ̂₀θ ≤ c"), ("ridge", "ridge class ‖θ‖² ≤ c")]):
        color = style.PALETTE[k]
        ax1.errorbar(r_vals, [r[cls] for r in rs], yerr=[2 * r[f"{cls}_se"] for r in rs], fmt="o-", color=color,
                     capsize=2, label=f"{label} (MC ± 2 se)")
        ax1.plot(r_vals, [r[f"{cls}_bound"] for r in rs], "--", color=color,
                 label="bound √(c r / n)" if cls == "ellipsoid" else "bound √(c tr Σ̂₀ / n)")
    style.log_ticks(ax1, r_vals)
    ax1.set_yscale("log")
    style.plain_log_labels(ax1, "y")
    ax1.set_xlabel("intrinsic dimension r = rank Σ₀")
    ax1.set_ylabel("empirical Rademacher complexity")
    ax1.set_title(f"d = {rs[0]['d']}, n = {rs[0]['n']}, c = {rs[0]['c']:g}")
    ax1.legend(loc="lower right")
    ax2.plot(r_vals, [r["ellipsoid_over_sqrt_r"] for r in rs], "o-", color=style.PALETTE[0],
             label="Mixup class / √(c r / n)")
    ax2.plot(r_vals, [r["ridge_over_sqrt_d"] for r in rs], "s-", color=style.PALETTE[1],
             label="ridge class / √(c d / n)")
    ax2.axhline(1.0, color="0.4", linestyle="--", linewidth=1, label="bound (= 1 after scaling)")
    style.log_ticks(ax2, r_vals)
    ax2.set_ylim(0, 1.15)
    ax2.set_xlabel("intrinsic dimension r = rank Σ₀")
    ax2.set_ylabel("Rademacher complexity / its scale")
    ax2.set_title(f"scaled (ellipsoid slope {summary['ellipsoid_slope_vs_r']:.2f} in r; "
                  f"ridge {summary['ridge_slope_vs_r']:.2f})")
    ax2.legend(loc="lower right")
    ratio = summary.get("ratio_ellipsoid_over_ridge", {})
    below = summary.get("ellipsoid_below_bound") and summary.get("ridge_below_bound")
    smallest = min(ratio, key=lambda r: float(r)) if ratio else None
    verdict = (f"Verdict (C10): {'holds' if below else 'FAILS'} — both classes below their bounds at every r"
               + (f"; at r = {smallest} the Mixup class is {ratio[smallest]:.2g} of the ridge class" if smallest else ""))
    style.suptitle(fig, CLAIMS, TITLE, verdict)
    return fig
