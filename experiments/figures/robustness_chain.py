"""C4/C5/C7: the robustness chain along Mixup training, with the exact quantities beside it.

At each measured epoch (the model after ``e`` epochs is re-created by training with ``epochs=e``: the
training run is deterministic in its seed, so these are the snapshots of one run):

- ``L̃_mix ≥ mean_i L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)`` — ``theory.robustness_bound`` (ℓ2, C4/C5);
- exact ``L_mix`` and exact ``L_adv(ε_mix)`` (logistic regression: closed form) or its bracket
  [PGD lower bound, certified (CROWN) upper bound] for a bias-free ReLU MLP — ``exact_comparison`` (C7).

Bottom row: the radii — ε_mix, mean ε_i, the sharper per-point radius ``m_1·dist_i`` the proof
allows, and ε* (how far the chain could go). Hollow markers: epochs at which an assumption of the theorem fails (centered data (A1), every
training point on its side (A2), homogeneity) — the chain is computed regardless, as the contract
asks, and the figure shows whether it held.
"""
from __future__ import annotations

import math

from ._common import select, train_run

NAME = "robustness_chain"
CLAIMS = "C4/C5/C7"
TITLE = "robustness chain L̃_mix ≥ mean L̃_adv(ε_i) ≥ L̃_adv(ε_mix) and exact L_mix vs L_adv(ε_mix) (ℓ2)"
VERSION = 2
PROBLEMS = [("two_moons", "logistic"), ("breast_cancer", "logistic"), ("two_moons", "mlp")]
SCALES = {
    "smoke": {"n": {"two_moons": 60, "breast_cancer": 100}, "epochs": [1, 3], "hidden": [8, 8],
              "problems": [("two_moons", "logistic"), ("two_moons", "mlp")]},
    "default": {"n": {"two_moons": 200, "breast_cancer": None}, "epochs": [1, 2, 4, 6, 8, 10, 15, 20],
                "hidden": [16, 16], "problems": PROBLEMS},
}
SCALES["paper"] = SCALES["default"]
PGD_OPTIONS = {"steps": 50, "restarts": 2}


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    return [{"dataset": ds, "model": model, "method": "mixup", "alpha": 1.0, "bias": False, "hidden": p["hidden"],
             "n_train": p["n"][ds], "lr": 0.1, "batch_size": 32, "epochs": e, "seed": 0}
            for ds, model in p["problems"] for e in p["epochs"]]


def train_config(task: dict, ctx) -> dict:
    """The training run ``compute`` performs (the runner trains such runs together as ensembles)."""
    return task


def compute(task: dict, ctx) -> dict:
    import torch

    from theory import exact_comparison, robustness_bound

    run = train_run(task, ctx.device)
    X, y = run.dataset.X_train, run.dataset.y_train
    gen = torch.Generator(device="cpu").manual_seed(task["seed"])
    rb = robustness_bound(run.model, X, y, task["alpha"], norm=2)
    cmp = exact_comparison(run.model, X, y, task["alpha"], norm=2, pgd={**PGD_OPTIONS, "generator": gen})
    return {"mixup_approx": rb.mixup_approx, "adv_at_eps_i": rb.adv_at_eps_i, "adv_at_eps_mix": rb.adv_at_eps_mix,
            "eps_mix": rb.eps_mix, "eps_star": rb.eps_star, "eps_i_mean": float(rb.eps_i.mean()),
            "eps_sharp_mean": float(rb.eps_sharp.mean()), "holds": rb.holds, "assumptions": rb.assumptions,
            "mixup_exact": cmp.mixup_exact, "adv_lower": cmp.adv_lower, "adv_upper": cmp.adv_upper,
            "exact_status": cmp.status, "exact_adversary": cmp.exact_adversary,
            "train_acc": run.history[-1]["train_acc"], "n": int(len(y))}


def rows(task: dict, result: dict) -> list[dict]:
    a = result["assumptions"]
    return [{"dataset": task["dataset"], "model": task["model"], "seed": task["seed"], "epoch": task["epochs"],
             "n": result["n"], "mixup_approx": result["mixup_approx"], "adv_at_eps_i": result["adv_at_eps_i"],
             "adv_at_eps_mix": result["adv_at_eps_mix"], "mixup_exact": result["mixup_exact"],
             "adv_exact_lower": result["adv_lower"], "adv_exact_upper": result["adv_upper"],
             "eps_mix": result["eps_mix"], "eps_i_mean": result["eps_i_mean"],
             "eps_sharp_mean": result["eps_sharp_mean"], "eps_star": result["eps_star"], "chain_holds": result["holds"],
             "exact_status": result["exact_status"],
             "adv_exact_kind": "closed form" if result["exact_adversary"] else "PGD/certified bracket",
             "assumptions_hold": all(a.values()),
             **{f"assume_{k}": v for k, v in a.items()}, "train_acc": result["train_acc"]}]


def _problems(rows):
    return list(dict.fromkeys((r["dataset"], r["model"]) for r in rows))


def summarize(rows: list[dict]) -> dict:
    out = {}
    for ds, model in _problems(rows):
        rs = select(rows, dataset=ds, model=model)
        out[f"{ds}/{model}"] = {
            "chain_holds": f"{sum(r['chain_holds'] for r in rs)}/{len(rs)}",
            "assumptions_hold": f"{sum(r['assumptions_hold'] for r in rs)}/{len(rs)}",
            "assumption_fails": {k[len("assume_"):]: sum(not r[k] for r in rs) for k in rs[0] if k.startswith("assume_")},
            "exact_status": {s: sum(r["exact_status"] == s for r in rs) for s in ("holds", "fails", "undecided")},
            "final": {k: max(rs, key=lambda r: r["epoch"])[k] for k in
                      ("epoch", "eps_mix", "eps_star", "mixup_approx", "adv_at_eps_mix", "mixup_exact",
                       "adv_exact_lower", "adv_exact_upper")},
        }
    return out


SERIES = [("mixup_approx", "L̃_mix", "o-"), ("adv_at_eps_i", "mean L̃_adv,i(ε_i)", "s-"),
          ("adv_at_eps_mix", "L̃_adv(ε_mix)", "^-"), ("mixup_exact", "L_mix (exact)", "D--")]


EPS_SERIES = [("eps_mix", "ε_mix = min_i ε_i", "o-"), ("eps_i_mean", "mean ε_i = m₁R_i c_x√d", "s-"),
              ("eps_sharp_mean", "mean m₁·dist_i (sharper radius)", "^-"),
              ("eps_star", "ε*: largest ε with L̃_mix ≥ L̃_adv(ε)", "D--")]


EPS_COLORS = ["#937860", "#DA8BC3", "#8C8C8C", "black"]


def plot(rows: list[dict], summary: dict):
    from . import style

    problems = _problems(rows)
    fig, axes = style.subplots(2, len(problems))
    for ax, eps_ax, (ds, model) in zip(axes, axes[len(problems):], problems):
        rs = sorted(select(rows, dataset=ds, model=model), key=lambda r: r["epoch"])
        ep = [r["epoch"] for r in rs]
        for k, (key, label, fmt) in enumerate(SERIES):
            color = style.PALETTE[k]
            ax.plot(ep, [r[key] for r in rs], fmt, color=color, label=label, markerfacecolor="none")
            ok = [r for r in rs if r["assumptions_hold"]]
            ax.plot([r["epoch"] for r in ok], [r[key] for r in ok], fmt[0], color=color)
        lo, hi = [r["adv_exact_lower"] for r in rs], [r["adv_exact_upper"] for r in rs]
        color = style.PALETTE[4]
        if all(r["adv_exact_kind"] == "closed form" for r in rs):
            ax.plot(ep, lo, "v--", color=color, label="L_adv(ε_mix) (exact)", markerfacecolor="none")
        else:
            ax.fill_between(ep, lo, hi, color=color, alpha=0.3, linewidth=0,
                            label="L_adv(ε_mix) ∈ [PGD, certified]")
            ax.plot(ep, lo, "v:", color=color, markersize=3)
            ax.plot(ep, hi, "^:", color=color, markersize=3)
        bias = "no bias" if model != "logistic" else "no intercept"
        ax.set_title(f"{ds}, {model} ({bias}), n = {rs[0]['n']}\nchain holds at "
                     f"{summary[f'{ds}/{model}']['chain_holds']} epochs, final ε_mix = {rs[-1]['eps_mix']:.3g}")
        style.integer_x(ax)
        ax.set_xlabel("epoch of Mixup training (α = 1)")
        ax.set_ylabel("loss")
        for k, (key, label, fmt) in enumerate(EPS_SERIES):
            vals = [(r["epoch"], r[key]) for r in rs if r[key] is not None and math.isfinite(r[key]) and r[key] > 0]
            eps_ax.plot([e for e, _ in vals], [v for _, v in vals], fmt, color=EPS_COLORS[k], label=label)
        eps_ax.set_yscale("log")
        style.integer_x(eps_ax)
        eps_ax.set_xlabel("epoch of Mixup training (α = 1)")
        eps_ax.set_ylabel("radius ε (ℓ2, standardized inputs)")
        eps_ax.set_title(f"{ds}, {model}: radii")
    style.suptitle(fig, CLAIMS, TITLE)
    fails = {}
    for problem in summary.values():
        for k, v in problem.get("assumption_fails", {}).items():
            fails[k] = fails.get(k, 0) + v
    failing = ", ".join(f"{k} ({v})" for k, v in fails.items() if v) or "none"
    style.figure_legend(fig, list(axes), ncol=4,
                        title=f"hollow markers: an assumption of C4/C5 fails at that epoch "
                              f"(failing, epochs: {failing})")
    return fig
